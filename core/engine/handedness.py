"""Left/right consistency: undo a 2D detector's left-right confusion using the other views.

Keypoint detectors often label a person seen from behind mirror-wise: its left elbow as the right one.
One such view among several is an outlier that robust triangulation drops, but two flipped views out
of four form a consistent pair, and each limb then ends up triangulated from whichever pair wins,
hundreds of pixels away from the other pair's detections. For every person and frame, each view's
labelling (as detected or swapped) is chosen greedily, view after view, as the one whose keypoint rays
pass closest to the rays of the views already settled; swapped detections have their left and right
keypoints exchanged.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from jaxtyping import Bool, Float, Int

from core.engine.fusion import PersonCells
from core.geometry import line_distances, pixel_rays
from core.types import CameraRig, Observations

_CELLS_PER_CHUNK = 1024


def mirror_permutation(names: tuple[str, ...]) -> Int[np.ndarray, " K"]:
    """Index of each keypoint's mirror image (left_x ↔ right_x; others map to themselves)."""
    index = {name: k for k, name in enumerate(names)}
    mirror = {"left_": "right_", "right_": "left_"}
    return np.array(
        [
            index.get(mirror[name[: name.index("_") + 1]] + name[name.index("_") + 1 :], k)
            if name.startswith(("left_", "right_"))
            else k
            for k, name in enumerate(names)
        ]
    )


def _pair_costs(
    centers: Float[np.ndarray, "C V 3"],
    directions: Float[np.ndarray, "C V K 3"],
    weight: Float[np.ndarray, "C V K"],
    permutation: Int[np.ndarray, " K"],
) -> Float[np.ndarray, "C V V 2"]:
    """Mean ray distance between every two views of a cell, with the second view as detected (0) or
    mirrored (1); NaN where no keypoint is confident in both."""
    d = np.moveaxis(directions, 2, 1)  # (C, K, V, 3)
    w = np.moveaxis(weight, 2, 1)  # (C, K, V)
    c = np.broadcast_to(centers[:, None], d.shape)
    costs = []
    for order in (np.arange(permutation.size), permutation):
        distance, sine = line_distances(c, d, c, d[:, order])  # (C, K, V, V)
        pair_weight = np.minimum(w[..., :, None], w[:, order, None, :]) * (sine > 1e-6)
        total = pair_weight.sum(axis=1)
        with np.errstate(invalid="ignore"):
            costs.append(np.where(total > 0, (pair_weight * distance).sum(axis=1) / total, np.nan))
    return np.stack(costs, axis=-1)


def choose_mirrored(costs: Float[np.ndarray, "C V V 2"], present: Bool[np.ndarray, "C V"]) -> np.ndarray:
    """Greedy labelling per cell: the first present view is kept as detected, every next view takes
    the labelling that agrees best with the views settled before it; if that mirrors most views, the
    complement (the same consistency) is used instead. Returns (C, V) booleans."""
    C, V = present.shape
    mirrored = np.zeros((C, V), dtype=bool)
    settled = np.zeros((C, V), dtype=bool)
    for view in range(V):  # views in turn, all cells at once
        # The relation to a settled view u is mirrored[u] xor this view's choice.
        to_view = costs[:, :, view]  # (C, V, 2)
        as_detected = np.take_along_axis(to_view, mirrored[..., None].astype(int), axis=-1)[..., 0]
        as_mirrored = np.take_along_axis(to_view, (~mirrored)[..., None].astype(int), axis=-1)[..., 0]
        use = settled & np.isfinite(as_detected) & np.isfinite(as_mirrored)
        detected_cost = np.where(use, as_detected, 0.0).sum(axis=1)
        mirrored_cost = np.where(use, as_mirrored, 0.0).sum(axis=1)
        mirrored[:, view] = present[:, view] & use.any(axis=1) & (mirrored_cost < detected_cost)
        settled[:, view] |= present[:, view]
    majority = mirrored.sum(axis=1) > present.sum(axis=1) / 2  # keep most views as the detector said
    return np.where(majority[:, None], present & ~mirrored, mirrored)


def orient_left_right(
    observations: Observations,
    person: Int[np.ndarray, " N"],
    cameras: CameraRig,
    num_frames: int,
    min_confidence: float,
) -> tuple[Observations, Int[np.ndarray, " M"]]:
    """Observations with mirrored detections corrected, and the indices of those corrected.

    Only bare keypoints (``Observations.bare_keypoints``) are touched: a body-model
    estimate carries its own pose, which a label swap would contradict.
    """
    permutation = mirror_permutation(observations.keypoint_names)
    if (
        not observations.bare_keypoints
        or len(cameras) < 2
        or (permutation == np.arange(permutation.size)).all()
    ):
        return observations, np.zeros(0, dtype=np.int64)
    num_persons = int(person.max()) + 1 if person.size else 0
    cells = PersonCells.build(observations, person, num_persons, num_frames, len(cameras)).index
    cells = cells.reshape(-1, len(cameras))
    cells = cells[(cells >= 0).sum(axis=1) >= 2]
    flip = np.zeros(len(observations), dtype=bool)
    view = observations.view
    for start in range(0, cells.shape[0], _CELLS_PER_CHUNK):  # bounded memory
        chunk = cells[start : start + _CELLS_PER_CHUNK]
        present = chunk >= 0
        rows = np.where(present, chunk, 0)
        origins, directions = pixel_rays(
            observations.keypoints2d[rows],
            cameras.K[view[rows]],
            cameras.dist[view[rows]],
            cameras.R[view[rows]],
            cameras.t[view[rows]],
        )
        confidence = observations.keypoint_confidence[rows]
        weight = np.where(present[..., None] & (confidence >= min_confidence), confidence, 0.0)
        weight = np.where(np.isfinite(directions).all(axis=-1), weight, 0.0)
        costs = _pair_costs(origins[:, :, 0], np.nan_to_num(directions), weight, permutation)
        mirrored = choose_mirrored(costs, present)
        flip[chunk[mirrored]] = True
    if not flip.any():
        return observations, np.zeros(0, dtype=np.int64)
    keypoints = observations.keypoints2d.copy()
    confidence = observations.keypoint_confidence.copy()
    keypoints[flip] = keypoints[flip][:, permutation]
    confidence[flip] = confidence[flip][:, permutation]
    return replace(observations, keypoints2d=keypoints, keypoint_confidence=confidence), np.flatnonzero(flip)
