"""The body-fitting benchmark: synthetic bodies of known shape and pose, fitted back from noisy joints.

Each person is a body of the model itself with random plausible shape (Anny: adult phenotypes within
[0, 1]), a smooth random pose (arms lowered, a gait on the hips and knees, sinusoids of a few tenths of
a radian on every joint) and a walk (pelvis moving at about 1.2 m/s along a slowly turning heading,
30 frames/s, world y up). The targets are the model's own joints named in BlazePose/COCO
(``REQUIRED_JOINTS`` but ``head``, ``pelvis`` and ``head_top``) plus Gaussian noise, fitted with
``core.body.fitting.fit_track``; scores are against the clean joints, so a perfect fit is 0 mm.

Two variants of every track: ``all_visible``, and ``legs_occluded`` (knees, ankles, heels and toes
unseen in two runs of frames, ``occluded_fraction`` of the track in all).

Stature, as the benchmark defines it: in the zero pose (T-pose, canonical frame, y up), the height of
the top of the head (``head_top``, else ``head``) above the lowest foot point (heels and toes, else
the ankles). Its error compares the fitted shape with the true one.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float

from core.body.config import FitConfig
from core.body.fitting import fit_track
from core.body.model import BODY_JOINTS, REQUIRED_JOINTS, BodyModel, BodyParameters

FPS = 30.0
ANNY_PHENOTYPE_RANGES = {
    "gender": (0.0, 1.0),
    "age": (0.6, 1.0),
    "muscle": (0.1, 0.9),
    "weight": (0.1, 0.9),
    "height": (0.05, 0.95),
    "proportions": (0.1, 0.9),
}
"""Plausible adults: Anny's phenotypes drawn uniformly in these ranges (age 0.6: about 16 years)."""
TARGET_JOINTS = tuple(n for n in REQUIRED_JOINTS if n not in ("head", "pelvis", "head_top"))
"""Joints fitted and scored: COCO-17 (BlazePose's names), heels and toes."""
LEG_JOINTS = ("knee", "ankle", "heel", "foot_index", "foot")
"""Name parts of the joints hidden in the occluded variant."""
_TOP = ("head_top", "head")
_BOTTOM = (("left_heel", "right_heel", "left_foot_index", "right_foot_index"), ("left_ankle", "right_ankle"))


@dataclass(frozen=True)
class BodyBenchConfig:
    """The synthetic tracks of the body benchmark."""

    frames: int = 100
    """Frames per track (30 frames/s)."""
    persons: int = 3
    """Tracks, one body each."""
    seed: int = 0
    """Random seed of shapes, poses, walks, noise and occlusions."""
    noise: float = 0.01
    """Standard deviation of the Gaussian noise on each target coordinate, metres."""
    occluded_fraction: float = 0.2
    """Share of frames whose legs are unseen in the ``legs_occluded`` variant."""


@dataclass(frozen=True)
class SyntheticTrack:
    """One synthetic person: true parameters and clean joints (world frame, metres)."""

    parameters: BodyParameters
    joints: Float[np.ndarray, "T J 3"]
    """The model's joints, ``model.joint_names``."""


@dataclass(frozen=True)
class VariantScore:
    """Scores of one variant over all tracks."""

    mpjpe_mm: float
    """Mean distance between fitted and clean joints over the fitted joints, frames and tracks, mm."""
    mpjpe_hidden_mm: float
    """The same over the targets left out (occluded); NaN if none."""
    stature_error_cm: list[float]
    """Fitted minus true stature per track, cm."""
    ms_per_person_frame: float
    """Wall time of ``fit_track`` over all tracks divided by persons × frames."""
    seconds_per_track: list[float]
    iterations: list[int]
    """Adam steps taken per track."""


@dataclass(frozen=True)
class BodyBenchResult:
    config: BodyBenchConfig
    fit: FitConfig
    model: str
    threads: int
    """``torch.get_num_threads()`` during the run."""
    variants: dict[str, VariantScore]


def _names_in(model: BodyModel, names: tuple[str, ...]) -> list[int]:
    return [model.joint_names.index(n) for n in names if n in model.joint_names]


def sample_shapes(model: BodyModel, persons: int, rng: np.random.Generator) -> Float[np.ndarray, "P S"]:
    """Random plausible shapes: Anny adults (``ANNY_PHENOTYPE_RANGES``); else neutral + N(0, 0.5²)."""
    if model.name == "anny":
        low, high = np.array(list(ANNY_PHENOTYPE_RANGES.values())).T
        return rng.uniform(low, high, (persons, model.shape_dim))
    neutral = model.neutral_shape(1)[0].numpy()
    return neutral + rng.normal(0.0, 0.5, (persons, model.shape_dim))


def _zero_pose(shape: Float[torch.Tensor, "B S"]) -> BodyParameters:
    batch = shape.shape[0]
    return BodyParameters(
        torch.zeros(batch, 3), torch.zeros(batch, 3), torch.zeros(batch, BODY_JOINTS, 3), shape.float()
    )


def _zero_pose_joints(model: BodyModel, shape: Float[np.ndarray, "B S"]) -> Float[np.ndarray, "B J 3"]:
    with torch.no_grad():
        return model(_zero_pose(torch.as_tensor(shape)), vertices=False).joints.numpy()


def _lowest_foot_points(model: BodyModel) -> list[int]:
    return next(index for names in _BOTTOM if (index := _names_in(model, names)))


def stature(model: BodyModel, shape: Float[np.ndarray, "B S"]) -> Float[np.ndarray, " B"]:
    """Height of the head top above the lowest foot point in the zero pose, metres (module docstring)."""
    joints = _zero_pose_joints(model, shape)
    top = _names_in(model, _TOP)[0]
    return joints[:, top, 1] - joints[:, _lowest_foot_points(model), 1].min(1)


def synthetic_track(
    model: BodyModel, shape: Float[np.ndarray, " S"], frames: int, rng: np.random.Generator
) -> SyntheticTrack:
    """A body of ``shape`` walking with a smooth random pose for ``frames`` frames (module docstring)."""
    t = np.arange(frames)[:, None, None] / FPS  # seconds, (T, 1, 1)
    pose = np.zeros((1, BODY_JOINTS, 3))
    pose[0, 15, 2], pose[0, 16, 2] = -1.1, 1.1  # shoulders (joints 16, 17): arms lowered
    pose[0, 17, 1], pose[0, 18, 1] = -0.3, 0.3  # elbows slightly bent
    stride = 2 * np.pi * rng.uniform(0.8, 1.0) * t[..., 0]  # (T, 1) gait phase
    gait = np.zeros((frames, BODY_JOINTS, 3))
    gait[:, 0, 0], gait[:, 1, 0] = -0.4 * np.sin(stride[:, 0]), 0.4 * np.sin(stride[:, 0])  # hips
    gait[:, 3, 0] = 0.3 * (1 + np.sin(stride[:, 0] + 1.0))  # knees: flexion only
    gait[:, 4, 0] = 0.3 * (1 + np.sin(stride[:, 0] + 1.0 + np.pi))
    frequency = rng.uniform(0.2, 1.0, (1, BODY_JOINTS, 3))  # Hz
    wobble = rng.uniform(0.05, 0.25, (1, BODY_JOINTS, 3)) * np.sin(
        2 * np.pi * frequency * t + rng.uniform(0, 2 * np.pi, (1, BODY_JOINTS, 3))
    )
    body_pose = pose + gait + wobble
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0.0, 0.01, frames))  # radians about y
    tilt = 0.05 * np.sin(2 * np.pi * 0.5 * t[:, 0, 0])
    global_orient = np.stack([tilt, heading, np.zeros(frames)], axis=1)
    step = 1.2 / FPS * np.stack([np.sin(heading), np.zeros(frames), np.cos(heading)], axis=1)
    transl = np.cumsum(step, axis=0)
    transl[:, 1] = -stature_floor(model, shape)
    parameters = BodyParameters(
        *(
            torch.tensor(np.asarray(a), dtype=torch.float32)
            for a in (global_orient, transl, body_pose, np.broadcast_to(shape, (frames, len(shape))))
        )
    )
    with torch.no_grad():
        joints = model(parameters, vertices=False).joints.numpy().astype(float)
    return SyntheticTrack(parameters, joints)


def stature_floor(model: BodyModel, shape: Float[np.ndarray, " S"]) -> float:
    """Height of the lowest foot point below the pelvis in the zero pose (negative), metres."""
    joints = _zero_pose_joints(model, np.asarray(shape)[None])[0]
    pelvis = model.joint_names.index("pelvis") if "pelvis" in model.joint_names else 0
    return float(joints[_lowest_foot_points(model), 1].min() - joints[pelvis, 1])


def _occlusion(frames: int, fraction: float, rng: np.random.Generator) -> Bool[np.ndarray, " T"]:
    """Frames hidden: one run of frames in each half of the track, ``fraction`` of it in all."""
    hidden = np.zeros(frames, dtype=bool)
    total = int(round(min(max(fraction, 0.0), 1.0) * frames))
    half = frames // 2
    for first, last, length in ((0, half, total // 2), (half, frames, total - total // 2)):
        length = min(length, last - first)
        start = first + rng.integers(0, last - first - length + 1)
        hidden[start : start + length] = True
    return hidden


def run_body_bench(
    model: BodyModel, config: BodyBenchConfig, fit: FitConfig | None = None, device: str = "cpu"
) -> BodyBenchResult:
    """Generate the tracks, fit both variants of each, score them (see the module docstring)."""
    fit = fit or FitConfig()
    rng = np.random.default_rng(config.seed)
    shapes = sample_shapes(model, config.persons, rng)
    tracks = [synthetic_track(model, shape, config.frames, rng) for shape in shapes]
    use = tuple(n for n in TARGET_JOINTS if n in model.joint_names)
    index = _names_in(model, use)
    legs = np.array([any(part in n for part in LEG_JOINTS) for n in use])
    frames = np.arange(config.frames)
    variants = {}
    everything = [np.ones((config.frames, len(use)), dtype=bool) for _ in tracks]
    occluded = []
    for _ in tracks:
        mask = np.ones((config.frames, len(use)), dtype=bool)
        mask[np.ix_(_occlusion(config.frames, config.occluded_fraction, rng), legs)] = False
        occluded.append(mask)
    noise = [rng.normal(0.0, config.noise, (config.frames, len(use), 3)) for _ in tracks]
    for name, visible in (("all_visible", everything), ("legs_occluded", occluded)):
        errors, hidden_errors, statures, seconds, iterations = [], [], [], [], []
        for track, seen, offsets in zip(tracks, visible, noise, strict=True):
            clean = track.joints[:, index]
            targets = np.where(seen[..., None], clean + offsets, np.nan)
            start = time.perf_counter()
            result = fit_track(model, frames, targets, use, seen.astype(float), fit, device)
            seconds.append(time.perf_counter() - start)
            iterations.append(result.iterations)
            distance = np.linalg.norm(result.joints[:, index] - clean, axis=-1)
            errors.append(distance.ravel())
            hidden_errors.append(distance[~seen])
            true, fitted = stature(model, np.stack([track.parameters.shape[0].numpy(), result.shape]))
            statures.append(100 * float(fitted - true))
        hidden = np.concatenate(hidden_errors)
        variants[name] = VariantScore(
            mpjpe_mm=1000 * float(np.concatenate(errors).mean()),
            mpjpe_hidden_mm=1000 * float(hidden.mean()) if hidden.size else float("nan"),
            stature_error_cm=statures,
            ms_per_person_frame=1000 * sum(seconds) / (config.persons * config.frames),
            seconds_per_track=seconds,
            iterations=iterations,
        )
    return BodyBenchResult(config, fit, model.name, torch.get_num_threads(), variants)


def result_to_dict(result: BodyBenchResult) -> dict:
    """The result as JSON-able values (NaN as None)."""

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, float) and not np.isfinite(value):
            return None
        return value

    return clean(asdict(result))


def format_body_table(result: BodyBenchResult) -> str:
    """The result as a readable table, one row per variant."""
    c = result.config
    lines = [
        f"body fit benchmark: model={result.model}, persons={c.persons}, frames={c.frames}, seed={c.seed}, "
        f"noise={1000 * c.noise:g} mm, threads={result.threads}",
        f"{'variant':<14} {'MPJPE mm':>9} {'hidden mm':>9} {'stature err cm (per track)':>28} "
        f"{'ms/person-frame':>15}  iterations",
    ]
    for name, v in result.variants.items():
        stature_text = " ".join(f"{s:+.2f}" for s in v.stature_error_cm)
        lines.append(
            f"{name:<14} {v.mpjpe_mm:>9.1f} {v.mpjpe_hidden_mm:>9.1f} {stature_text:>28} "
            f"{v.ms_per_person_frame:>15.1f}  {' '.join(map(str, v.iterations))}"
        )
    return "\n".join(lines)
