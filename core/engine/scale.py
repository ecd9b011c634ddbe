"""Head–pelvis scale adjustment: bring the scene to the metric scale of the human bodies.

A scene prior's scale is only near-metric; body models are metric. If the scene is s times too small,
every person is triangulated s times too close to the cameras while their body keeps its true size, so
the projected body looks 1/s times too big. Comparing, for every person, frame and view, the projected
head–pelvis length of the fused body (ℓ_smpl) with the detected one (ℓ_img) measures this:

    r = robust mean over samples of ℓ_smpl / ℓ_img,   s* = r · s

and scaling the scene (camera centres, points) and the people's positions by r removes it. The
correction is re-measured after it is applied (``iterations``) so that the small perspective bias of a
body not exactly fronto-parallel vanishes too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from jaxtyping import Bool, Float, Int
from scipy.spatial.transform import Rotation

from core.geometry import project_points
from core.skeleton import HEAD
from core.types import CameraRig, Observations, PersonTrack


@dataclass(frozen=True)
class ScaleConfig:
    """How the scene scale is corrected."""

    mode: Literal["auto", "fixed", "off"] = "auto"
    """auto: head–pelvis ratio; fixed: multiply by ``fixed_factor``; off: leave the scene as it is."""
    fixed_factor: float = 1.0
    """Factor applied in ``fixed`` mode."""
    iterations: int = 3
    """Measure–apply rounds in ``auto`` mode."""
    outlier_threshold: float = 3.0
    """Samples farther than this many robust standard deviations (1.4826 MAD) from the median are ignored."""
    min_pixel_length: float = 8.0
    """Samples whose detected head–pelvis length is shorter than this (pixels) are ignored."""


@dataclass(frozen=True)
class ScaleEstimate:
    """The factor applied and the evidence for it (samples of the first round)."""

    factor: float
    samples: Float[np.ndarray, " S"]
    person: Int[np.ndarray, " S"]
    frame: Int[np.ndarray, " S"]
    view: Int[np.ndarray, " S"]
    inlier: Bool[np.ndarray, " S"]


def head_pelvis_ratios(
    persons: tuple[PersonTrack, ...],
    observations: Observations,
    person_of_observation: Int[np.ndarray, " N"],
    cameras: CameraRig,
    num_frames: int,
    min_pixel_length: float,
) -> tuple[Float[np.ndarray, " S"], Int[np.ndarray, " S"]]:
    """ℓ_smpl / ℓ_img for every observation of a fused person; returns the ratios and their observations."""
    if not persons:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    num_persons = max(p.person_id for p in persons) + 1
    head_pelvis = np.full((num_persons, num_frames, 2, 3), np.nan)  # fused head and pelvis, world
    for p in persons:
        names = p.joint_names
        head_pelvis[p.person_id, p.frames] = p.joints[:, [names.index("head"), names.index("pelvis")]]
    obs = np.flatnonzero((person_of_observation >= 0) & (person_of_observation < num_persons))
    fused = head_pelvis[person_of_observation[obs], observations.frame[obs]]  # (S, 2, 3)
    view = observations.view[obs]
    projected = project_points(fused, cameras.K[view], cameras.dist[view], cameras.R[view], cameras.t[view])
    length_model = np.linalg.norm(projected[:, 0] - projected[:, 1], axis=-1)
    length_image = np.linalg.norm(observations.head2d[obs] - observations.pelvis2d[obs], axis=-1)
    keep = np.isfinite(length_model) & (length_image >= min_pixel_length)
    return length_model[keep] / length_image[keep], obs[keep]


def monocular_scale(observations: Observations, cameras: CameraRig, config: ScaleConfig) -> float:
    """Scene-units→metres factor from each observation alone: its own body at its own position estimate.

    Association compares positions against a gate in metres before any fusion exists; this gives it a
    first, per-view estimate of the ratio that :func:`adjust_scale` later refines on the fused bodies.
    Returns 1 when there is no usable sample.
    """
    if len(observations) == 0:
        return 1.0
    head_offset = Rotation.from_rotvec(observations.global_orient_cam).apply(
        observations.canonical_pose[:, HEAD]
    )
    points = np.stack(
        [observations.position_cam + head_offset, observations.position_cam], axis=1
    )  # (N, 2, 3)
    view = observations.view
    projected = project_points(points, cameras.K[view], cameras.dist[view], np.eye(3), np.zeros(3))
    length_model = np.linalg.norm(projected[:, 0] - projected[:, 1], axis=-1)
    length_image = np.linalg.norm(observations.head2d - observations.pelvis2d, axis=-1)
    keep = np.isfinite(length_model) & (length_image >= config.min_pixel_length)
    factor, _ = robust_mean(length_model[keep] / length_image[keep], config.outlier_threshold)
    return factor if np.isfinite(factor) and factor > 0 else 1.0


def robust_mean(samples: Float[np.ndarray, " S"], threshold: float) -> tuple[float, Bool[np.ndarray, " S"]]:
    """Mean of the samples within ``threshold`` robust standard deviations of the median."""
    if samples.size == 0:
        return float("nan"), np.zeros(0, dtype=bool)
    median = np.median(samples)
    spread = 1.4826 * np.median(np.abs(samples - median))
    inlier = np.abs(samples - median) <= threshold * spread if spread > 0 else samples == median
    return float(samples[inlier].mean()), inlier


def scale_persons(persons: tuple[PersonTrack, ...], factor: float) -> tuple[PersonTrack, ...]:
    """Move each person's position by ``factor`` about the world origin; bodies keep their metric size."""
    return tuple(
        replace(p, transl=p.transl * factor, joints=p.joints + (factor - 1.0) * p.transl[:, None])
        for p in persons
    )


def adjust_scale(
    persons: tuple[PersonTrack, ...],
    observations: Observations,
    person_of_observation: Int[np.ndarray, " N"],
    cameras: CameraRig,
    num_frames: int,
    config: ScaleConfig,
) -> tuple[tuple[PersonTrack, ...], CameraRig, ScaleEstimate]:
    """Estimate and apply the scene scale correction; returns scaled persons, cameras and the estimate."""

    def measure(persons, cameras):
        return head_pelvis_ratios(
            persons, observations, person_of_observation, cameras, num_frames, config.min_pixel_length
        )

    first_ratios, first_obs = measure(persons, cameras)
    first_mean, first_inlier = robust_mean(first_ratios, config.outlier_threshold)
    total = config.fixed_factor if config.mode == "fixed" else 1.0
    if config.mode == "fixed":
        persons, cameras = scale_persons(persons, total), cameras.scaled(total)
    elif config.mode == "auto":
        factor = first_mean
        for round_ in range(config.iterations):
            if round_:
                factor, _ = robust_mean(measure(persons, cameras)[0], config.outlier_threshold)
            if not np.isfinite(factor):
                break
            total *= factor
            persons, cameras = scale_persons(persons, factor), cameras.scaled(factor)
    estimate = ScaleEstimate(
        factor=total,
        samples=first_ratios,
        person=person_of_observation[first_obs],
        frame=observations.frame[first_obs],
        view=observations.view[first_obs],
        inlier=first_inlier,
    )
    return persons, cameras, estimate
