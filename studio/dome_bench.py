"""Detection on real footage other than the demo (``python -m studio bench-dome``): the Panoptic dome's
five views at five instants, against the people in full view labelled by hand.

Each instant is reconstructed on its own (the instants are minutes apart, each with other people): as
the detector alone sees it (coarse windows, no second look), with the defaults (recall of the people
the other views place), and with the finer tiles as well (where a view finds fewer people than two
others). A labelled person counts as detected in a view when an observation's nose lies within the
labels' radius.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np

from core.config import ReconstructionConfig
from core.engine.video_pipeline import reconstruct_from_videos
from core.io.video import FrameRange
from core.reconstruction import Reconstruction
from studio.assets import DOME, DOME_SOURCE, example_inputs

LABELS = DOME_SOURCE / "people_in_full_view.json"


@dataclass(frozen=True)
class DomeScore:
    """Per instant and view: labelled people in full view, how many of them were detected, and all the
    observations there; per instant the persons reconstructed."""

    labelled: np.ndarray
    """(T, V) people in full view."""
    detected: np.ndarray
    """(T, V) of those, the ones an observation lies on."""
    observations: np.ndarray
    """(T, V) observations (people read, in full view or not)."""
    persons: np.ndarray
    """(T,) persons reconstructed at each instant."""
    seconds: float


SETTINGS = {
    "detector alone": (0.0, False),
    "recall (default)": (0.0, True),
    "finer tiles and recall": (0.5, True),
}
"""Each setting's finer tile scale and recall switch."""


def detection_config(
    config: ReconstructionConfig, fine_tile_scale: float, recall: bool
) -> ReconstructionConfig:
    """``config`` with the finer tiles at ``fine_tile_scale`` (0: none) and recall on or off."""
    perception = config.perception
    return replace(
        config,
        perception=replace(
            perception,
            detector=replace(perception.detector, fine_tile_scale=fine_tile_scale),
            recall=replace(perception.recall, enabled=recall),
        ),
    )


def score_dome(config: ReconstructionConfig) -> DomeScore:
    """Reconstruct each instant of the installed dome example and score its detections."""
    labels = json.loads(LABELS.read_text())
    videos, calibration = example_inputs(DOME)
    config = replace(config, body=replace(config.body, model="none"))
    instants = sorted(labels["people"])
    labelled, detected, seen, persons, seconds = [], [], [], [], 0.0
    for t, instant in enumerate(instants):
        rec = reconstruct_from_videos(videos, calibration, FrameRange(t, t + 1), config)
        seconds += sum(rec.diagnostics.stage_seconds.values())
        people = [
            np.array(labels["people"][instant][name], float).reshape(-1, 2) for name in rec.cameras.names
        ]
        labelled.append([len(p) for p in people])
        detected.append([_found(p, _noses(rec, v), labels["radius_px"]) for v, p in enumerate(people)])
        seen.append(np.bincount(rec.observations.view, minlength=len(people)))
        persons.append(len(rec.persons))
    return DomeScore(np.array(labelled), np.array(detected), np.array(seen), np.array(persons), seconds)


def _noses(rec: Reconstruction, view: int) -> np.ndarray:
    return rec.observations.keypoints2d[rec.observations.view == view][:, 0]


def _found(people: np.ndarray, noses: np.ndarray, radius: float) -> int:
    """How many of ``people`` have a nose within ``radius`` pixels."""
    if not len(people) or not len(noses):
        return 0
    return int((np.linalg.norm(people[:, None] - noses[None], axis=-1).min(axis=1) < radius).sum())


def dome_bench(config: ReconstructionConfig) -> dict:
    """Every setting's scores as one JSON-able dict."""
    result = {}
    for name, (fine, recall) in SETTINGS.items():
        score = score_dome(detection_config(config, fine, recall))
        result[name] = {
            "detected_share": float(score.detected.sum() / score.labelled.sum()),
            "detected_per_view": score.detected.sum(axis=0).tolist(),
            "labelled_per_view": score.labelled.sum(axis=0).tolist(),
            "observations_per_view": score.observations.sum(axis=0).tolist(),
            "worst_view_share": float((score.detected.sum(axis=0) / score.labelled.sum(axis=0)).min()),
            "persons_per_instant": score.persons.tolist(),
            "seconds": round(score.seconds, 2),
        }
    return result


def format_dome_bench(result: dict) -> str:
    lines = []
    for name, r in result.items():
        per_view = ", ".join(
            f"{d}/{n}" for d, n in zip(r["detected_per_view"], r["labelled_per_view"], strict=True)
        )
        lines.append(
            f"{name}: {r['detected_share']:.1%} of the people in full view detected (per view {per_view}; "
            f"worst view {r['worst_view_share']:.0%}); observations per view {r['observations_per_view']}; "
            f"persons per instant {r['persons_per_instant']} (3 each); {r['seconds']} s"
        )
    return "\n".join(lines)
