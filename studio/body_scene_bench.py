"""The body fit on a real reconstruction: how closely the fitted bodies match what the cameras saw.

Every person of a saved reconstruction is fitted again (timed) with the current ``FitConfig``; then
the fitted model's keypoints (its joints and surface points plus the per-track keypoint offsets of the
fit) are projected into every view and compared with the detections that the triangulation stood on:
keypoints confident enough, of joints triangulated from two views or more, and within the
triangulation's outlier threshold of the triangulated joint (``FusionConfig.keypoint_max_error_px``).
The same figure over every confident detection is printed too, with the mean 3D distance to the
triangulated joints and the height of the body's lowest foot point above the fitted floor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from core.body.config import FitConfig
from core.body.model import BodyModel
from core.body.tracks import fit_person
from core.engine.fusion import PersonCells, keypoint_errors
from core.engine.pipeline import assigned_observations
from core.reconstruction import Reconstruction

_FEET = ("left_heel", "right_heel", "left_foot_index", "right_foot_index")


@dataclass(frozen=True)
class PersonFitScore:
    person_id: int
    frames: int
    seconds: float
    """Wall time of the person's fit."""
    reprojection_px: float
    """Mean distance of the fitted keypoints to the detections the triangulation stood on, pixels."""
    reprojection_all_px: float
    """The same over every confident detection of the person."""
    joint_error_mm: float
    """Mean 3D distance of the fitted keypoints to the joints triangulated from two views or more."""
    foot_height_cm: float
    """Median over frames of the lowest foot point's height above the floor; NaN without a floor."""


def score_scene_fit(
    reconstruction: Reconstruction, model: BodyModel, fit: FitConfig, device: str = "cpu"
) -> list[PersonFitScore]:
    """Fit every person of ``reconstruction`` again and score the fits (module docstring)."""
    rec = reconstruction
    fusion = rec.config.fusion
    observations, person, _ = assigned_observations(
        rec.observations, rec.tracklets, rec.assignment, rec.cameras, rec.num_frames, rec.config
    )
    num_persons = int(person.max()) + 1 if person.size else 0
    cells = PersonCells.build(observations, person, num_persons, rec.num_frames, len(rec.cameras)).index
    scores = []
    for track in rec.persons:
        start = time.perf_counter()
        result = fit_person(track, model, fit, device)
        seconds = time.perf_counter() - start
        if result is None:
            continue
        obs = cells[track.person_id][track.frames]
        fitted, counts, names = keypoint_errors(
            result.keypoints,
            result.keypoint_names,
            observations,
            obs,
            rec.cameras,
            fusion.min_keypoint_confidence,
        )
        triangulated, _, triangulated_names = keypoint_errors(
            track.joints, track.joint_names, observations, obs, rec.cameras, fusion.min_keypoint_confidence
        )
        column = [track.joint_names.index(n) for n in names]
        on_triangulation = triangulated[..., [triangulated_names.index(n) for n in names]]
        supported = counts & (track.joint_views[:, None, column] >= 2)
        supported &= on_triangulation <= fusion.keypoint_max_error_px
        scores.append(
            PersonFitScore(
                person_id=track.person_id,
                frames=len(track.frames),
                seconds=seconds,
                reprojection_px=float(fitted[supported].mean()),
                reprojection_all_px=float(fitted[counts].mean()),
                joint_error_mm=1000 * _joint_error(result, track),
                foot_height_cm=100 * _median_foot_height(result.joints, model, rec.ground),
            )
        )
    return scores


def _joint_error(result, track) -> float:
    column = [track.joint_names.index(n) for n in result.keypoint_names]
    triangulated = track.joint_views[:, column] >= 2
    distance = np.linalg.norm(result.keypoints - track.joints[:, column], axis=-1)
    return float(distance[triangulated].mean())


def _median_foot_height(joints: np.ndarray, model: BodyModel, ground: np.ndarray) -> float:
    feet = [model.joint_names.index(n) for n in _FEET if n in model.joint_names]
    if not feet or not np.isfinite(ground).all():
        return float("nan")
    height = joints[:, feet] @ ground[:3] + ground[3]
    return float(np.median(height.min(axis=1)))


def format_scene_table(scores: list[PersonFitScore]) -> str:
    """One row per person."""
    lines = [
        f"{'person':>6} {'frames':>6} {'ms/frame':>8} {'reproj px':>9} {'all conf. px':>12} "
        f"{'3D mm':>6} {'foot above floor cm':>19}"
    ]
    for s in scores:
        lines.append(
            f"{s.person_id:>6} {s.frames:>6} {1000 * s.seconds / s.frames:>8.1f} {s.reprojection_px:>9.1f} "
            f"{s.reprojection_all_px:>12.1f} {s.joint_error_mm:>6.1f} {s.foot_height_cm:>19.1f}"
        )
    return "\n".join(lines)
