"""The one command line of the studio: ``python -m studio <command> --help``."""

from __future__ import annotations

import dataclasses
import json as jsonlib
import sys
import typing
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Literal

import tyro
from tyro.conf import OmitSubcommandPrefixes, Positional, arg
from tyro.constructors import ConstructorRegistry, StructConstructorSpec, StructFieldSpec, StructTypeInfo

from core.config import ReconstructionConfig
from core.engine.pipeline import reconstruct_from_observations
from core.errors import InputError
from core.evaluation.scoring import evaluate
from core.evaluation.synthetic import SyntheticConfig, make_scene
from core.io.video import FrameRange
from core.keypoints import KeypointLayout
from core.reconstruction import Reconstruction, ReconstructionFormatError
from studio.assets import (
    example_inputs,
    install_body_model,
    install_dome_example,
    install_examples,
    install_models,
)
from studio.batch_commands import batch, bench_batch
from studio.bench import format_table, run_bench
from studio.export import (
    describe_body_export,
    export_body_glb,
    export_calib_toml,
    export_joints_json,
    export_openpose_json,
    export_points_ply,
    export_smplx_npz,
)
from studio.nets_commands import NetsCommand
from studio.progress import StageBars
from studio.settings import ALL_FRAMES, Setting, field_docstrings
from studio.summary import format_summary, summarize
from studio.training_commands import bench_training, evaluate_network, make_data, train


def bench(
    persons: int = 3,
    views: int = 4,
    frames: int = 300,
    seed: int = 0,
    scale_error: float = 1.0,
    identical_appearance: bool = False,
    json: bool = False,
) -> None:
    """Benchmark the engine on a synthetic scene with ground truth: accuracy, ablations, frames/s.

    Args:
        persons: People walking in the scene.
        views: Cameras around them.
        frames: Frames to simulate.
        seed: Random seed of the scene and its observations.
        scale_error: Global scale of the scene as the engine receives it (1: correct).
        identical_appearance: Everyone looks the same (embeddings carry no identity).
        json: Print one JSON object instead of a table.
    """
    config = SyntheticConfig(
        persons=persons,
        views=views,
        frames=frames,
        seed=seed,
        scale_error=scale_error,
        identical_appearance=identical_appearance,
    )
    result = run_bench(config)
    print(jsonlib.dumps(result, indent=1) if json else format_table(result))


def bench_body(
    frames: int = 100,
    persons: int = 3,
    seed: int = 0,
    noise: float = 0.01,
    scene: Path | None = None,
    json: bool = False,
) -> None:
    """Benchmark the body fit on synthetic Anny bodies (joint error, stature error, ms per person-frame),
    or, with --scene, on a saved reconstruction (reprojection of the fitted bodies, feet on the floor).

    Args:
        frames: Frames per track (30 frames/s).
        persons: Tracks, one random adult body each.
        seed: Random seed of bodies, poses, noise and occlusions.
        noise: Standard deviation of the noise on each target coordinate, metres.
        scene: A directory written by `reconstruct` or `example`: fit its persons again with Anny and
            score the fits against the detections instead.
        json: Print one JSON object instead of a table.
    """
    from core.body.anny_backend import AnnyBody
    from core.body.config import FitConfig

    if scene is not None:
        from studio.body_scene_bench import format_scene_table, score_scene_fit

        scores = score_scene_fit(Reconstruction.load(scene), AnnyBody(), FitConfig())
        print(jsonlib.dumps([asdict(s) for s in scores], indent=1) if json else format_scene_table(scores))
        return
    from studio.body_bench import BodyBenchConfig, format_body_table, result_to_dict, run_body_bench

    config = BodyBenchConfig(frames=frames, persons=persons, seed=seed, noise=noise)
    result = run_body_bench(AnnyBody(), config)
    print(jsonlib.dumps(result_to_dict(result), indent=1) if json else format_body_table(result))


def bench_cameras(
    persons: int = 5,
    views: int = 6,
    frames: int = 150,
    seed: int = 0,
    mirrored_rate: float = 0.3,
    example: str | None = None,
    height: float | None = None,
    json: bool = False,
) -> None:
    """Benchmark cameras from the people: rotation, centre, focal, scale and up errors against known
    cameras, on a synthetic scene (people of identical appearance, unknown focal lengths, noise, misses,
    false positives, mirrored labels) or, with --example, on an example's clips against its calibration.

    Args:
        persons: People walking in the synthetic scene.
        views: Cameras around them.
        frames: Frames to simulate.
        seed: Random seed of the scene and its observations.
        mirrored_rate: Fraction of the detections of a person seen from behind labelled left for right.
        example: An example installed by `assets` (e.g. Demo_MultiPerson): detect its people in all
            frames, calibrate from them, and also compare the engine's output with the calibrated run's.
        height: The tallest person's height in metres, as the scale hint.
        json: Print one JSON object instead of lines.
    """
    from studio.camera_bench import (
        CameraBenchScene,
        detect_example,
        example_bench,
        format_camera_bench,
        synthetic_bench,
        with_height,
    )

    config = with_height(ReconstructionConfig(), height)
    if example is None:
        scene = CameraBenchScene(
            persons=persons, views=views, frames=frames, seed=seed, mirrored_rate=mirrored_rate
        )
        result = synthetic_bench(scene, config.cameras)
    else:
        result = example_bench(detect_example(example, config), config)
    print(jsonlib.dumps(result, indent=1) if json else format_camera_bench(result))


def demo(out: Path = Path("runs/demo"), seed: int = 0, scale_error: float = 0.8) -> None:
    """Reconstruct the embedded synthetic example (3 people, 4 views, 300 frames) and save it.

    Args:
        out: Directory the reconstruction is written to.
        seed: Random seed of the scene.
        scale_error: Global scale error of the scene given to the engine.
    """
    scene = make_scene(SyntheticConfig(seed=seed, scale_error=scale_error))
    reconstruction = reconstruct_from_observations(
        scene.observations, scene.cameras, scene.config.frames, scene.config.fps
    )
    reconstruction.save(out)
    evaluation = asdict(evaluate(reconstruction, scene))
    width = max(map(len, evaluation))
    print(f"reconstruction of the synthetic example written to {out}")
    for key, value in evaluation.items():
        print(f"  {key:<{width}}  {value:.4g}" if isinstance(value, float) else f"  {key:<{width}}  {value}")
    for stage, seconds in reconstruction.diagnostics.stage_seconds.items():
        print(f"  {stage + ' s':<{width}}  {seconds:.3f}")


_DEFAULT_CONFIG = ReconstructionConfig()


def bench_dome(config: ReconstructionConfig = _DEFAULT_CONFIG, json: bool = False) -> None:
    """Benchmark detection on CMU's Panoptic dome (installed by `assets`): per view, how many of the
    people in full view (labelled by hand) are detected, by the detector alone and with the finer tiles
    and recall, and the persons reconstructed at each of its five instants.

    Args:
        config: Settings of every stage (the two runs differ in the detector's second look only).
        json: Print one JSON object instead of lines.
    """
    from studio.dome_bench import dome_bench, format_dome_bench

    result = dome_bench(config)
    print(jsonlib.dumps(result, indent=1) if json else format_dome_bench(result))


SHORT_FLAGS = {
    "cameras.source": "cameras",
    "sync.offsets": "sync",
    "cameras.hints.fov_deg": "fov",
    "cameras.hints.focal_px": "focal",
    "cameras.hints.height_m": "height",
    "body.model": "body",
    "body.smplx.model_dir": "smplx-dir",
    "networks.scene": "scene",
    "networks.pi3x_ckpt": "pi3x-ckpt",
    "networks.humans": "humans",
    "networks.mhmr_ckpt": "mhmr-ckpt",
    "networks.chromm_ckpt": "chromm-ckpt",
}
"""Config fields set by a short flag (``--body``) instead of their ``--config.*`` path, which is gone."""


def short_flag_registry() -> ConstructorRegistry:
    """tyro's view of the config dataclasses holding a ``SHORT_FLAGS`` field: that field renamed to its
    flag, its help the field's docstring, like every field of those classes."""
    renamed = {Setting(path).owner_field: flag for path, flag in SHORT_FLAGS.items()}
    owners = {owner for owner, _ in renamed}
    registry = ConstructorRegistry()

    @registry.struct_rule
    def rename(info: StructTypeInfo) -> StructConstructorSpec | None:
        if info.type not in owners:
            return None
        default = info.default if isinstance(info.default, info.type) else info.type()
        hints, docs = typing.get_type_hints(info.type), field_docstrings(info.type)
        specs = []
        for field in dataclasses.fields(info.type):
            hint = hints[field.name]
            if (info.type, field.name) in renamed:
                hint = Annotated[hint, arg(name=renamed[info.type, field.name], prefix_name=False)]
            specs.append(
                StructFieldSpec(field.name, hint, getattr(default, field.name), docs.get(field.name))
            )
        return StructConstructorSpec(instantiate=info.type, fields=tuple(specs))

    return registry


def reconstruct(
    out: Path,
    videos: tuple[Path, ...] = (),
    calibration: Path | None = None,
    keypoints: Path | None = None,
    keypoint_layout: KeypointLayout | None = None,
    image_size: tuple[int, int] | None = None,
    fps: float = 30.0,
    frames: str = ALL_FRAMES,
    device: Literal["cpu", "cuda"] = "cpu",
    config: ReconstructionConfig = _DEFAULT_CONFIG,
) -> None:
    """Reconstruct the people in synchronized clips, or in another detector's keypoints, and save the
    result to OUT.

    Args:
        out: Directory the reconstruction is written to.
        videos: One clip per camera, in the calibration's camera order (with --keypoints: the clips the
            keypoints were found in, one per camera folder, optional).
        calibration: Qualisys .qca.txt, Pose2Sim Calib.toml, EasyMocap intri/extri.yml or COLMAP text;
            optional: without one the cameras come from the people (--cameras people) or from Pi3X.
        keypoints: Instead of clips, a folder of OpenPose-style JSON per camera (<camera>_json/, one file
            per frame), cameras in the natural order of the folder names.
        keypoint_layout: The keypoints' layout (recognised from the files when not given).
        image_size: Width and height of the images the keypoints were found in (with --keypoints and no
            calibration; a calibration's sizes are checked against it).
        fps: The keypoints' frame rate (with --keypoints).
        frames: Frame range START:STOP:STEP of the clips or keypoint files (Python slice syntax).
        device: Where the networks run and the body model is fitted; the embedded detector and the engine
            run on the CPU.
        config: Settings of every stage (the common choices by short flags: --cameras, --fov, --focal,
            --height, --body, --smplx-dir, --scene, --pi3x-ckpt, --humans, --mhmr-ckpt, --chromm-ckpt,
            --sync).
    """
    from core.device import resolve_device

    if bool(videos) == (keypoints is not None):
        raise InputError(
            "give the clips (--videos) or another detector's keypoints (--keypoints DIR), one of them"
        )
    device = resolve_device(device)
    with StageBars() as bars:
        if keypoints is not None:
            from core.engine.keypoint_pipeline import reconstruct_from_keypoints

            reconstruction = reconstruct_from_keypoints(
                keypoints,
                calibration,
                videos,
                keypoint_layout,
                image_size,
                fps,
                FrameRange.parse(frames),
                config,
                progress=bars.update,
                device=device,
            )
        else:
            from core.engine.video_pipeline import reconstruct_from_videos

            reconstruction = reconstruct_from_videos(
                videos, calibration, FrameRange.parse(frames), config, progress=bars.update, device=device
            )
    reconstruction.save(out)
    print(f"reconstruction written to {out}")
    print(format_summary(summarize(reconstruction)))


def example(
    name: Literal["Demo_MultiPerson", "Demo_SinglePerson", "Panoptic_Dome"] = "Demo_MultiPerson",
    out: Path | None = None,
    frames: str = ALL_FRAMES,
    config: ReconstructionConfig = _DEFAULT_CONFIG,
) -> None:
    """Reconstruct a real example installed by `assets` (the Pose2Sim demo scenes: 4 calibrated cameras;
    CMU's Panoptic dome: 5 calibrated HD cameras, 5 instants of 3 people).

    Args:
        name: Which scene: two people and a bystander, one person, or three people in the dome.
        out: Directory the reconstruction is written to (default runs/NAME).
        frames: Frame range START:STOP:STEP.
        config: Settings of every stage.
    """
    videos, calibration = example_inputs(name)
    reconstruct(out or Path("runs") / name, tuple(videos), calibration, frames=frames, config=config)


def summary(directory: Positional[Path], json: bool = False) -> None:
    """Persons, frame spans, reprojection errors, scale factor and seconds per stage of a saved run.

    Args:
        directory: A directory written by `reconstruct` or `demo`.
        json: Print one JSON object instead of text.
    """
    result = summarize(Reconstruction.load(directory))
    print(jsonlib.dumps(result, indent=1) if json else format_summary(result))


def export(
    directory: Positional[Path],
    out: Path,
    format: Literal["joints-json", "ply", "calib-toml", "openpose-json", "smplx-npz", "glb"] = "joints-json",
    coarse: bool = False,
) -> None:
    """Write a saved reconstruction in a format other tools read.

    Args:
        directory: A directory written by `reconstruct` or `demo`.
        out: The file to write (joints-json, ply, calib-toml: a name ending in .toml), or the folder to
            write one file per person into (smplx-npz, glb) or one folder per camera (openpose-json).
        format: joints-json: {person_id: {frame: {joint: [x, y, z]}}} in world metres; ply: the scene
            points (the textured floor) with their colours; calib-toml: the cameras as a Pose2Sim
            Calib.toml (intrinsics, distortion, Rodrigues rotation and translation, world→camera);
            openpose-json: every detection as OpenPose JSON, <camera>_json/<camera>_<frame>.json, in
            the detector's layout (BlazePose's 33: Pose2Sim's BLAZEPOSE); smplx-npz: person_<id>.npz,
            each fitted person's body parameters per frame in AMASS's SMPL-X layout (poses, trans,
            betas, Anny phenotypes, frames, mocap_frame_rate); glb: person_<id>.glb, each fitted
            person's mesh per frame (nodes frame_<n>) and the camera frustums, glTF y up.
        coarse: glb with Anny: the viewer's 1,229-vertex mesh instead of the full one (built once,
            about a minute).
    """
    reconstruction = Reconstruction.load(directory)
    if format == "glb":
        print(describe_body_export(export_body_glb(reconstruction, out, coarse), format, out))
    elif format == "smplx-npz":
        print(describe_body_export(export_smplx_npz(reconstruction, out), format, out))
    elif format == "openpose-json":
        written = export_openpose_json(reconstruction, out)
        print(f"{format} written to {out}: {', '.join(p.name for p in written)}")
    elif format == "calib-toml":
        export_calib_toml(reconstruction, out)
        print(f"{format} written to {out}: {', '.join(reconstruction.cameras.names)}")
    else:
        writers = {"joints-json": export_joints_json, "ply": export_points_ply}
        writers[format](reconstruction, out)
        print(f"{format} written to {out}")


def assets(examples: bool = True) -> None:
    """Download or build, once, what the studio needs at run time: BlazePose's models, Anny's mesh (about
    40 s) and the example clips.

    Args:
        examples: Also install the Pose2Sim demo scenes and the Panoptic dome's clips.
    """
    print(f"models in {install_models()}")
    print(f"Anny body model in {install_body_model()}")
    if examples:
        print(f"examples in {install_examples()}")
        print(f"dome example in {install_dome_example()}")


def nets(command: OmitSubcommandPrefixes[NetsCommand]) -> None:
    """Pi3X and Multi-HMR: equivalence with reference fixtures, speed and memory benchmarks."""
    command.run()


def main(args: Sequence[str] | None = None) -> None:
    """Dispatch ``python -m studio <command>``; input errors end with their message, not a traceback."""
    commands = {
        "bench": bench,
        "bench-body": bench_body,
        "bench-cameras": bench_cameras,
        "bench-dome": bench_dome,
        "demo": demo,
        "reconstruct": reconstruct,
        "example": example,
        "summary": summary,
        "export": export,
        "assets": assets,
        "nets": nets,
        "train": train,
        "make-data": make_data,
        "bench-training": bench_training,
        "evaluate-network": evaluate_network,
        "batch": batch,
        "bench-batch": bench_batch,
    }
    try:
        tyro.extras.subcommand_cli_from_dict(commands, args=args, registry=short_flag_registry())
    except (InputError, ReconstructionFormatError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
