"""The camera stage's benchmark (``python -m studio bench-cameras``): cameras from the people against
known cameras, on a synthetic scene or on an example's clips against its calibration file.

The example is detected once in stand-in cameras (as an uncalibrated run is); the same detections are
then placed in the calibration's cameras and in the estimated ones, and the engine run on both, so
that the downstream comparison differs by the cameras alone.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from core.cameras.config import CameraConfig
from core.cameras.people import SelfCalibration
from core.cameras.sources import stand_in_rig
from core.config import ReconstructionConfig
from core.engine.pipeline import reconstruct_from_observations
from core.engine.video_pipeline import self_calibrate
from core.evaluation.camera_errors import camera_errors
from core.evaluation.synthetic import SyntheticConfig, make_scene
from core.geometry import umeyama_sim3
from core.io.calibration import match_clips, read_calibration
from core.io.video import FrameRange, probe_clips
from core.perception import BlazePose, PerceptionResult, observe_clips
from core.reconstruction import Reconstruction
from core.types import CameraRig, Observations
from studio.assets import example_inputs


@dataclass(frozen=True)
class CameraBenchScene:
    """The synthetic scene of the benchmark: people of identical appearance walking among cameras of
    unknown focal lengths, seen with keypoint noise, misses, false positives and mirrored labels."""

    persons: int = 5
    views: int = 6
    frames: int = 150
    seed: int = 0
    keypoint_noise_px: float = 2.0
    miss_rate: float = 0.05
    false_positive_rate: float = 0.02
    mirrored_rate: float = 0.3
    """Fraction of the detections of a person seen from behind whose left and right are swapped."""

    def synthetic(self) -> SyntheticConfig:
        return SyntheticConfig(
            persons=self.persons,
            views=self.views,
            frames=self.frames,
            seed=self.seed,
            identical_appearance=True,
            keypoint_noise_px=self.keypoint_noise_px,
            miss_rate=self.miss_rate,
            false_positive_rate=self.false_positive_rate,
            mirrored_rate=self.mirrored_rate,
        )


def _timed_self_calibration(
    observations: Observations, rig: CameraRig, num_frames: int, config: ReconstructionConfig
) -> tuple[SelfCalibration, float]:
    start = time.perf_counter()
    sizes = [(c.width, c.height) for c in rig.cameras]
    found = self_calibrate(observations, sizes, rig.names, num_frames, config)
    return found, time.perf_counter() - start


def synthetic_bench(scene_config: CameraBenchScene, cameras: CameraConfig | None = None) -> dict:
    """Self-calibration on a synthetic scene, scored against its true cameras and identities."""
    scene = make_scene(scene_config.synthetic())
    config = ReconstructionConfig(cameras=cameras or CameraConfig())
    found, seconds = _timed_self_calibration(
        scene.observations, scene.true_cameras, scene_config.frames, config
    )
    return {
        "scene": asdict(scene_config),
        **_scored(scene.true_cameras, found, seconds),
        "identity_errors": identity_errors(found.track, scene.observation_identity),
    }


def identity_errors(track: np.ndarray, identity: np.ndarray) -> dict:
    """How many of the self-calibration's cross-view groups (one person at one frame) join
    observations of different people, or a false positive, out of how many."""
    grouped = track >= 0
    _, group = np.unique(track[grouped], return_inverse=True)
    who = identity[grouped]
    lowest = np.full(group.max(initial=-1) + 1, np.iinfo(np.int64).max)
    highest = np.full_like(lowest, np.iinfo(np.int64).min)
    np.minimum.at(lowest, group, who)
    np.maximum.at(highest, group, who)
    wrong = (lowest != highest) | (lowest < 0)
    return {"groups": int(lowest.size), "wrong": int(wrong.sum())}


@dataclass(frozen=True)
class ExampleDetections:
    """An example's people detected in stand-in cameras, and its calibration file's cameras."""

    perception: PerceptionResult
    observer: BlazePose
    stand_in: CameraRig
    truth: CameraRig
    num_frames: int
    fps: float


def detect_example(name: str, config: ReconstructionConfig) -> ExampleDetections:
    """BlazePose over all frames of the example's clips, in cameras that know nothing but the image size."""
    videos, calibration = example_inputs(name)
    clips = probe_clips(videos)
    sizes, names = [(c.width, c.height) for c in clips], [c.name for c in clips]
    truth = match_clips(read_calibration(calibration), sizes, names, calibration)
    stand_in = stand_in_rig(sizes, names, config.cameras.hints)
    observer = BlazePose(config.perception)
    perception = observe_clips(observer, clips, FrameRange(), stand_in)
    return ExampleDetections(perception, observer, stand_in, truth, clips[0].num_frames, clips[0].fps)


def example_bench(detections: ExampleDetections, config: ReconstructionConfig | None = None) -> dict:
    """Self-calibration on an example's detections against its calibration file, and the engine run on
    both rigs: persons, reprojection, and how far the joints are apart after the cameras' Sim(3)."""
    config = config or ReconstructionConfig()
    d = detections
    found, seconds = _timed_self_calibration(d.perception.observations, d.stand_in, d.num_frames, config)
    result = _scored(d.truth, found, seconds)
    if len(found.rig) < 2:
        return result
    views = np.array([d.truth.names.index(n) for n in found.rig.names])
    runs = {}
    for label, rig in (
        ("calibrated", CameraRig(tuple(d.truth.cameras[v] for v in views))),
        ("people", found.rig),
    ):
        observations = d.perception.placed_in(d.observer, rig, views).observations
        runs[label] = reconstruct_from_observations(observations, rig, d.num_frames, d.fps, config)
    result["downstream"] = _downstream(runs["calibrated"], runs["people"])
    return result


def _scored(truth: CameraRig, found: SelfCalibration, seconds: float) -> dict:
    report = found.report
    errors = camera_errors(truth, found.rig).summary() if len(found.rig) >= 3 else None
    return {
        "cameras": report.table(),
        "scale_from": report.scale_from,
        "messages": list(report.messages),
        "errors": errors,
        "seconds": round(seconds, 2),
    }


def _downstream(calibrated: Reconstruction, people: Reconstruction) -> dict:
    """Persons and reprojection of both runs; joints of persons matched by their nearest mean position,
    compared frame by frame after the Sim(3) that carries the estimated camera centres onto the true."""
    scale, R, t = umeyama_sim3(people.cameras.centers, calibrated.cameras.centers)
    distances = []
    for mine in people.persons:
        carried = scale * mine.joints @ R.T + t
        best = None
        for theirs in calibrated.persons:
            frames, a, b = np.intersect1d(mine.frames, theirs.frames, return_indices=True)
            if frames.size:
                gap = np.linalg.norm(carried[a] - theirs.joints[b], axis=-1)
                gap = gap[np.isfinite(gap)]
                if gap.size and (best is None or np.median(gap) < np.median(best)):
                    best = gap
        if best is not None:
            distances.append(best)
    joined = np.concatenate(distances) if distances else np.zeros(0)
    return {
        "persons": {"calibrated": len(calibrated.persons), "people": len(people.persons)},
        "reprojection_px": {"calibrated": _reprojection(calibrated), "people": _reprojection(people)},
        "joint_cm_median": round(float(100 * np.median(joined)), 2) if joined.size else None,
    }


def _reprojection(reconstruction: Reconstruction) -> list[float]:
    return [
        round(float(np.nanmean(p.residuals_px)), 2)
        for p in reconstruction.persons
        if np.isfinite(p.residuals_px).any()
    ]


def format_camera_bench(result: dict) -> str:
    """The benchmark's figures as lines for a terminal."""
    lines = []
    errors = result["errors"]
    if errors is None:
        lines.append("fewer than 3 cameras placed: no errors")
    else:
        lines += [
            f"rotation  {errors['rotation_deg_median']:.2f}° median, {errors['rotation_deg_max']:.2f}° max "
            "(relative, per camera pair)",
            f"centres   {errors['centre_cm_max']:.1f} cm max (after a Sim(3))",
            f"focal     {errors['focal_percent_max']:.2f} % max",
            f"scale     {errors['scale_percent']:+.2f} % ({result['scale_from']})",
            f"up        {errors['up_deg']:.2f}°",
        ]
    if "identity_errors" in result:
        ids = result["identity_errors"]
        lines.append(f"identity  {ids['wrong']} of {ids['groups']} cross-view groups join different people")
    for row in result["cameras"]:
        error = row["reprojection_px"]
        lines.append(
            f"  {row['camera']}: focal {row['focal_px'] or float('nan'):.0f} px, "
            f"{'n/a' if error is None else f'{error:.2f} px'}, {row['inliers']} inliers, {row['verdict']}"
        )
    lines.append(f"self-calibration {result['seconds']:.1f} s")
    if "downstream" in result:
        down = result["downstream"]
        lines.append(
            f"downstream: persons {down['persons']['people']} (calibrated {down['persons']['calibrated']}), "
            f"reprojection {down['reprojection_px']['people']} px "
            f"(calibrated {down['reprojection_px']['calibrated']}), joints {down['joint_cm_median']} cm "
            "median from the calibrated run's"
        )
    lines += [f"note: {m}" for m in result["messages"]]
    return "\n".join(lines)


def with_height(config: ReconstructionConfig, height_m: float | None) -> ReconstructionConfig:
    """``config`` with the tallest person's height as the scale hint."""
    hints = replace(config.cameras.hints, height_m=height_m)
    return replace(config, cameras=replace(config.cameras, hints=hints))
