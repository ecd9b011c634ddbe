"""Clips (and a calibration) in, a Reconstruction out: ingest → scene network → detection → the engine →
body models → ground plane.

Every failure a user can cause (unreadable clip, clips out of step, a calibration whose cameras do not
match the clips) is an ``InputError`` naming the file, raised before the slow detection starts. What
goes wrong later (a view where nobody is seen, a black or frozen clip, a view that agrees with no other
one) becomes a message in the result, which is still written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from core.body.tracks import fit_persons, load_body_model
from core.cameras.people import SelfCalibration, calibrate_from_people
from core.cameras.report import CalibrationReport
from core.cameras.sources import camera_source, stand_in_rig
from core.config import ReconstructionConfig
from core.engine.clip_sync import ClipsInStep, after_detection, before_detection
from core.engine.pipeline import fit_to_clip, reconstruct_from_observations
from core.engine.recall_pass import with_recalled_people
from core.engine.timing import timed
from core.engine.tracking import track
from core.errors import InputError
from core.io.calibration import match_clips, read_calibration
from core.io.video import ClipInfo, FrameRange, iter_synchronized, probe_clips
from core.nets.chromm.model import Chromm
from core.nets.config import NetworksConfig
from core.nets.multihmr.model import MultiHMR
from core.nets.pi3x.preprocess import PIXEL_LIMIT
from core.perception import (
    BlazePose,
    ChrommObserver,
    MultiHMRObserver,
    Observer,
    PerceptionResult,
    SharedScenePasses,
    load_chromm_network,
    load_multihmr,
    observe_clips,
)
from core.reconstruction import Reconstruction
from core.scene.ground import WORLD_UP, TextureFrame, fit_ground, sample_ground
from core.scene.people_masks import people_masks
from core.scene.pi3x_scene import (
    FrameGeometry,
    SceneEstimate,
    SceneModel,
    estimate_scene,
    frame_geometry,
    load_pi3x,
)
from core.types import CameraRig, Observations

StageProgress = Callable[[str, float], None]
"""Called with (stage, fraction of that stage done)."""


def load_inputs(
    videos: Sequence[Path], calibration: Path | None, frames: FrameRange, in_step: bool = True
) -> tuple[tuple[ClipInfo, ...], CameraRig | None, np.ndarray]:
    """Probe the clips, read the calibration (if any) and check that they belong together (``in_step``:
    of one length too); no decoding."""
    clips = probe_clips([Path(v) for v in videos], in_step)
    if calibration is None:
        return clips, None, frames.indices(clips[0].num_frames)
    rig = read_calibration(Path(calibration))
    rig = match_clips(rig, [(c.width, c.height) for c in clips], [c.name for c in clips], Path(calibration))
    return clips, rig, frames.indices(clips[0].num_frames)


def check_network_choices(networks: NetworksConfig) -> None:
    """Refuse combinations that cannot work before anything slow starts."""
    if networks.head_depth == "pi3x" and (networks.scene != "pi3x" or networks.humans != "multihmr"):
        raise InputError("head depth from Pi3X needs --scene pi3x and --humans multihmr")


def reconstruct_from_videos(
    videos: Sequence[Path],
    calibration: Path | None,
    frames: FrameRange | None = None,
    config: ReconstructionConfig | None = None,
    progress: StageProgress | None = None,
    model_dir: Path | None = None,
    device: str = "cpu",
) -> Reconstruction:
    """Reconstruct the people (with a body model fitted to each) and the scene seen in synchronized clips.
    ``device`` is where the networks run and the body model is fitted. The cameras come from
    ``config.cameras.source``: the calibration, Pi3X (``config.networks.scene``), or the people
    themselves (self-calibration after detection; a view it cannot place is left out, with a message)."""
    config = config or ReconstructionConfig()
    networks = config.networks
    frames = frames or FrameRange()
    report = progress or (lambda stage, fraction: None)
    seconds: dict[str, float] = {}
    with timed(seconds, "ingest"):
        check_network_choices(networks)
        source = camera_source(config.cameras, networks, calibration)
        clips, cameras, indices = load_inputs(videos, calibration, frames, config.sync.offsets == "off")
        in_step = before_detection(clips, frames, config.sync, source == "file")
        clips, frames = in_step.clips, in_step.frames
        indices = frames.indices(clips[0].num_frames)
        reference = cameras if source != "file" else None
        if source == "people":
            sizes, names = [(c.width, c.height) for c in clips], [c.name for c in clips]
            cameras = stand_in_rig(sizes, names, config.cameras.hints)
        humans_net, passes, scene_net = _load_networks(networks, device)
    report("ingest", 1.0)

    scene = None
    if scene_net is not None:
        with timed(seconds, "scene network"):
            given = cameras if source == "file" else None
            scene = _estimate_scene(scene_net, clips, frames, indices, given, networks, device)
            cameras = scene.cameras
        report("scene network", 1.0)
    frame_depth = None
    if networks.head_depth == "pi3x":
        frame_depth = _frame_depth(scene_net, [c.name for c in clips], cameras, networks, device)
    del scene_net  # held on by frame_depth only when the heads need it

    with timed(seconds, "detection"):
        observer, perception = _detect(
            clips, frames, cameras, config, humans_net, passes, frame_depth, report, model_dir, device
        )
    if in_step.from_people:
        with timed(seconds, "sync"):
            in_step, perception = after_detection(in_step, perception, observer, cameras, config.sync)
            clips, frames = in_step.clips, in_step.frames
            indices = frames.indices(clips[0].num_frames)
    calibration_report = None
    views_kept = np.arange(len(clips))
    if source == "people":
        with timed(seconds, "cameras"):
            placed = place_cameras_from_people(
                perception, observer, sizes, names, [str(c.path) for c in clips], len(indices), config
            )
            cameras, calibration_report, views_kept = placed.cameras, placed.report, placed.views
            perception, config = placed.perception, placed.config
            clips = tuple(clips[v] for v in views_kept)
        report("cameras", 1.0)

    fps = clips[0].fps / frames.step
    with timed(seconds, "recall"):
        recalled = with_recalled_people(perception, observer, clips, frames, cameras, fps, config)
        perception = recalled.perception
    report("recall", 1.0)
    reconstruction = people_with_bodies(
        perception, cameras, len(indices), fps, config, report, seconds, device
    )
    with timed(seconds, "scene"):
        up = None if source == "pi3x" else WORLD_UP  # Pi3X's world is only roughly upright
        reconstruction = add_ground(reconstruction, clips, frames, indices, config, up, scene)
    report("scene", 1.0)
    diagnostics = reconstruction.diagnostics
    return replace(
        reconstruction,
        diagnostics=replace(
            diagnostics,
            stage_seconds=seconds,
            messages=perception.messages
            + (calibration_report.messages if calibration_report else ())
            + diagnostics.messages,
            **_sync_diagnostics(in_step, views_kept),
            recalled_observations=recalled.per_view,
        ),
        clips=tuple(str(c.path) for c in clips),
        first_frame=round(clips[0].start / clips[0].stride) + int(indices[0]),
        view_frames=view_frames(clips, frames, indices),
        frame_step=frames.step,
        calibration=calibration_report or CalibrationReport(source),
        reference_cameras=reference,
    )


def view_frames(
    clips: Sequence[ClipInfo], frames: FrameRange, indices: np.ndarray
) -> tuple[tuple[int, float], ...]:
    """Per view, its file's frame at reconstruction frame 0 and per reconstruction frame, where the
    clips are windows of their files or read at a common rate (else none: the first frame and step say
    it for all)."""
    if all(c.start == 0 and c.stride == 1 for c in clips):
        return ()
    return tuple((int(c.file_frames(indices[0])), frames.step * c.stride) for c in clips)


def _sync_diagnostics(in_step: ClipsInStep, views: np.ndarray) -> dict[str, np.ndarray]:
    """The kept views' offsets and confidences, where the clips were put in step."""
    if in_step.offsets is None:
        return {}
    return {
        "sync_offsets": in_step.offsets.offset[views],
        "sync_confidence": in_step.offsets.confidence[views],
    }


def self_calibrate(
    observations: Observations,
    sizes: Sequence[tuple[int, int]],
    names: Sequence[str],
    num_frames: int,
    config: ReconstructionConfig,
) -> SelfCalibration:
    """The cameras from the people detected in stand-in cameras, tracked per view first as a run does."""
    tracklets = track(observations, len(sizes), fit_to_clip(config, num_frames)[0].tracking)
    return calibrate_from_people(observations, tracklets, num_frames, sizes, names, config.cameras)


@dataclass(frozen=True)
class PeopleCameras:
    """What the camera stage leaves when the people calibrate the cameras."""

    cameras: CameraRig
    report: CalibrationReport
    views: np.ndarray
    """The views placed (indices into the views given)."""
    perception: PerceptionResult
    """The placed views' detections, in the found cameras."""
    config: ReconstructionConfig
    """The run's settings, the scale adjustment off where a height hint fixed the scale."""


def place_cameras_from_people(
    perception: PerceptionResult,
    observer: Observer,
    sizes: Sequence[tuple[int, int]],
    names: Sequence[str],
    sources: Sequence[str],
    num_frames: int,
    config: ReconstructionConfig,
) -> PeopleCameras:
    """The cameras from the people, and the detections placed in them; an error if no view is placed.
    ``sources``: what each view was read from (clip or folder), for the messages."""
    found = self_calibrate(perception.observations, sizes, names, num_frames, config)
    rig, calibration = found.rig, found.report
    if not len(rig):
        why = "; ".join(f"{c.name}: {c.reason}" for c in calibration.cameras)
        raise InputError(f"the cameras could not be found from the people ({why})")
    views = np.array([list(names).index(name) for name in rig.names])
    messages = [
        f"{sources[v]}: camera not placed ({c.reason}); the view is left out"
        for v, c in enumerate(calibration.cameras)
        if not c.placed
    ]
    if config.cameras.hints.height_m is not None:  # the height fixes the scale
        config = replace(config, scale=replace(config.scale, mode="off"))
    return PeopleCameras(
        rig,
        replace(calibration, messages=(*calibration.messages, *messages)),
        views,
        perception.placed_in(observer, rig, views),
        config,
    )


def people_with_bodies(
    perception: PerceptionResult,
    cameras: CameraRig,
    num_frames: int,
    fps: float,
    config: ReconstructionConfig,
    report: StageProgress,
    seconds: dict[str, float],
    device: str,
) -> Reconstruction:
    """The engine's stages on the detections, then the configured body model fitted to every person
    (none: the skeletons stay); their seconds added to ``seconds``."""
    reconstruction = reconstruct_from_observations(
        perception.observations, cameras, num_frames, fps, config, lambda stage, _fraction: report(stage, 1.0)
    )
    seconds.update(reconstruction.diagnostics.stage_seconds)
    with timed(seconds, "body"):
        body = load_body_model(config.body, device)
        if body is not None:
            persons = fit_persons(reconstruction.persons, body, config.body.fit, device)
            reconstruction = replace(reconstruction, persons=persons)
    report("body", 1.0)
    return reconstruction


def _spread(indices: np.ndarray, frames: FrameRange, count: int) -> FrameRange:
    """At most ``count`` frames spread evenly over the selected ones."""
    step = -(-len(indices) // max(count, 1)) * frames.step  # ceil: never more than count
    return FrameRange(int(indices[0]), int(indices[-1]) + 1, step)


def _estimate_scene(
    model: SceneModel,
    clips: Sequence[ClipInfo],
    frames: FrameRange,
    indices: np.ndarray,
    calibration: CameraRig | None,
    networks: NetworksConfig,
    device: str,
) -> SceneEstimate:
    """Pi3X on all views of a few frames spread over the range."""
    images = []
    for _, views in iter_synchronized(clips, _spread(indices, frames, networks.scene_frames)):
        images.append(np.stack(views))
        if len(images) == networks.scene_frames:
            break
    pixels = model.pixel_limit if isinstance(model, SharedScenePasses) else PIXEL_LIMIT
    return estimate_scene(model, images, [c.name for c in clips], calibration, networks, device, pixels)


def _frame_depth(
    model: SceneModel, names: Sequence[str], world: CameraRig, networks: NetworksConfig, device: str
) -> Callable[[np.ndarray], FrameGeometry]:
    """Pi3X again on each frame's views, for that frame's depths only (carried into ``world``)."""

    def depth(views: np.ndarray) -> FrameGeometry:
        return frame_geometry(model, views, names, world, networks, device, max_points=0)[0]

    return depth


def _load_networks(
    networks: NetworksConfig, device: str
) -> tuple[MultiHMR | Chromm | None, SharedScenePasses | None, SceneModel | None]:
    """The human network the run asks for (none for the embedded BlazePose), CHROMM's kept passes, and
    the scene network: CHROMM's own Pi3X, keeping its passes, when CHROMM is loaded."""
    humans_net = None
    if networks.humans == "multihmr":
        humans_net = load_multihmr(networks, device)
    elif networks.humans == "chromm":
        humans_net = load_chromm_network(networks, device)
    passes = SharedScenePasses(humans_net) if isinstance(humans_net, Chromm) else None
    scene_net = None
    if networks.scene == "pi3x":
        scene_net = passes if passes is not None else load_pi3x(networks, device)
    return humans_net, passes, scene_net


def _detect(
    clips: Sequence[ClipInfo],
    frames: FrameRange,
    cameras: CameraRig,
    config: ReconstructionConfig,
    humans_net: MultiHMR | Chromm | None,
    passes: SharedScenePasses | None,
    frame_depth: Callable[[np.ndarray], FrameGeometry] | None,
    report: StageProgress,
    model_dir: Path | None,
    device: str,
) -> tuple[Observer, PerceptionResult]:
    """The observer, and the people in every selected frame of every view, by CHROMM or Multi-HMR when
    loaded (Multi-HMR's heads at Pi3X's depth of the same frame with ``frame_depth``; CHROMM reusing the
    scene frames' ``passes``), else by BlazePose."""
    if isinstance(humans_net, Chromm):
        observer = ChrommObserver(humans_net, config.networks, device, passes)
    elif humans_net is not None:
        observer = MultiHMRObserver(humans_net, config.networks, device, frame_depth)
    else:
        observer = BlazePose(config.perception, model_dir)
    return observer, observe_clips(
        observer, clips, frames, cameras, lambda done, total: report("detection", done / total)
    )


def add_ground(
    reconstruction: Reconstruction,
    clips: Sequence[ClipInfo],
    frames: FrameRange,
    indices: np.ndarray,
    config: ReconstructionConfig,
    up: np.ndarray | None,
    scene: SceneEstimate | None = None,
) -> Reconstruction:
    """Fit the floor to the people's feet (its normal ``up`` when the world's up is known); the scene's
    points are Pi3X's when it ran (in the engine's scale), else the floor coloured from frames spread over
    the range (``indices``: the clips' frames) with the people masked out, none without clips."""
    plane = fit_ground(reconstruction.persons, config.ground, up)
    if scene is not None:
        factor = reconstruction.diagnostics.scale_factor
        ground = np.full(4, np.nan) if plane is None else np.append(plane.normal, plane.offset)
        return replace(
            reconstruction, points=scene.points * factor, point_colors=scene.colours, ground=ground
        )
    if plane is None:
        return replace(
            reconstruction,
            diagnostics=replace(
                reconstruction.diagnostics,
                messages=(*reconstruction.diagnostics.messages, "no floor: no person to stand on it"),
            ),
        )
    if not clips:
        return replace(reconstruction, ground=np.append(plane.normal, plane.offset))
    masks = partial(
        people_masks,
        observations=reconstruction.observations,
        persons=reconstruction.persons,
        cameras=reconstruction.cameras,
        limb_width=config.ground.limb_width,
    )
    texture = _texture_frames(clips, frames, indices, masks, config.ground.texture_frames)
    around = np.concatenate([p.transl for p in reconstruction.persons])
    points, colours = sample_ground(plane, around, reconstruction.cameras, texture, config.ground)
    return replace(
        reconstruction,
        points=points,
        point_colors=colours,
        ground=np.append(plane.normal, plane.offset),
    )


def _texture_frames(
    clips: Sequence[ClipInfo],
    frames: FrameRange,
    indices: np.ndarray,
    people: Callable[[int], Sequence[np.ndarray]],
    count: int,
) -> Iterator[TextureFrame]:
    """``count`` frames spread over the range, decoded in one pass, each with where the people are in
    each view (``people`` of its reconstruction frame number)."""
    for index, views in iter_synchronized(clips, _spread(indices, frames, count)):
        yield TextureFrame(views, people((index - int(indices[0])) // frames.step))
