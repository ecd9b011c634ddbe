"""Clips (or detection files) not started together: each view's frame offset, and the views put in step.

With the cameras known, the same instant seen by two views obeys their epipolar geometry: a person's
keypoints in one view lie on the epipolar lines of the same person's keypoints in the other. For every
view pair and every candidate offset between them, each frame of one view is paired with the frame that
many later in the other, each detection pair scored by the RMS Sampson distance of their common
keypoints, each frame by its best pair (the same person, whoever else is in view), and the offset by the
mean over frames. People move, so a wrong offset puts a moving joint off its epipolar line; the best
offset stands out the more the people move. The views' offsets are then the ones all pairs agree with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int

from core.engine.handedness import mirror_permutation
from core.errors import InputError
from core.geometry import undistort_pixels
from core.types import CameraRig, Observations

MIN_CONFIDENCE = 0.5
"""Keypoints below this confidence do not vote."""
MIN_COMMON_KEYPOINTS = 5
"""A detection pair scores only on at least this many keypoints confident in both."""
MIN_FRAMES = 5
"""An offset scores only where at least this many frames pair."""
MIN_SHARED = 0.5
"""… and at least this share of the most frames any offset pairs."""
_PAIRS = 50_000
"""Detection pairs scored at once (memory: about 10 kB each with 33 keypoints)."""


@dataclass(frozen=True)
class SyncConfig:
    """Whether the views started together and, if not, how they are put in step."""

    offsets: str = "off"
    """off: the clips (or keypoint files) are in step; auto: each view's frame offset from the clips'
    sound where every clip has some, else from the people seen by the calibrated cameras; or O1,O2,…:
    one offset per view, the first 0 (the instant at frame t of the first view is at frame t + O of the
    other)."""
    max_offset_frames: int = 60
    """How far either way a view's offset is searched (auto)."""


@dataclass(frozen=True)
class SyncOffsets:
    """Each view's offset: the instant at frame t of the first view is at frame t + offset of view v."""

    offset: Int[np.ndarray, " V"]
    confidence: Float[np.ndarray, " V"]
    """1 − the view's pairs' cost at its offset over their cost at the best offset more than a frame
    away: 0 when another offset fits as well, towards 1 as it stands out (the first view: 1)."""
    cost: Float[np.ndarray, " V"]
    """The view's pair with the first at its offset: epipolar cost over that pair's median cost."""


def epipolar_offsets(observations: Observations, cameras: CameraRig, max_offset: int) -> SyncOffsets:
    """The offset of every view against the first, searched within ±``max_offset`` frames.

    Every view pair scores every relative offset (``_offset_costs``, each pair's costs over their median
    so that pairs weigh alike); the offsets are then the ones all pairs agree with best: started from each
    view's pair with the first, each view in turn takes the offset that minimises its pairs' summed
    costs, until none changes. A view whose pair with the first sees little (a weak view, people who
    barely move) is so held by its pairs with the others.
    """
    V = len(cameras)
    normalised = undistort_pixels(
        observations.keypoints2d, cameras.K[observations.view], cameras.dist[observations.view]
    )
    confident = observations.keypoint_confidence >= MIN_CONFIDENCE
    relative = np.arange(-2 * max_offset, 2 * max_offset + 1)  # o_j − o_i of two views' offsets
    curves = np.full((V, V, relative.size), np.nan)
    for i in range(V):
        for j in range(i + 1, V):
            costs = _offset_costs(observations, normalised, confident, cameras, i, j, relative)
            scale = np.nanmedian(costs) if np.isfinite(costs).any() else np.nan
            curves[i, j] = costs / scale
            curves[j, i] = curves[i, j, ::-1]  # o_i − o_j = −(o_j − o_i)
    candidates = np.arange(-max_offset, max_offset + 1)
    offset = np.zeros(V, dtype=np.int64)
    for v in range(1, V):  # start: each view against the first alone
        offset[v] = candidates[_best(curves[0, v, candidates + 2 * max_offset])]
    for _ in range(V * V):  # coordinate descent over the views; a few sweeps settle it
        previous = offset.copy()
        for v in range(1, V):
            offset[v] = candidates[_best(_summed(curves, offset, v, candidates, max_offset))]
        if (offset == previous).all():
            break
    confidence, cost = np.ones(V), np.zeros(V)
    for v in range(1, V):
        total = _summed(curves, offset, v, candidates, max_offset)
        away = np.abs(candidates - offset[v]) > 1
        runner_up = np.nanmin(total[away]) if np.isfinite(total[away]).any() else np.nan
        at = total[offset[v] + max_offset]
        confidence[v] = float(np.clip(1 - at / runner_up, 0, 1)) if np.isfinite(runner_up) else 0.0
        cost[v] = curves[0, v, offset[v] + 2 * max_offset]
    return SyncOffsets(offset, confidence, cost)


def _summed(curves, offset, v: int, candidates, max_offset: int) -> np.ndarray:
    """View ``v``'s pairs' mean cost for each candidate offset of it, the others' offsets held."""
    others = np.array([u for u in range(len(offset)) if u != v])
    index = candidates[None, :] - offset[others][:, None] + 2 * max_offset  # o_v − o_u
    values = curves[others[:, None], v, index]  # (others, candidates)
    seen = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        return np.where(seen.any(axis=0), np.nansum(values, axis=0) / np.maximum(seen.sum(axis=0), 1), np.nan)


def _best(costs: np.ndarray) -> int:
    return int(np.nanargmin(costs)) if np.isfinite(costs).any() else len(costs) // 2


def _offset_costs(
    observations, normalised, confident, cameras: CameraRig, i: int, j: int, candidates
) -> np.ndarray:
    """The mean over view ``i``'s frames of the best detection pair's RMS epipolar distance (pixels),
    for each candidate offset of view ``j`` relative to view ``i`` (NaN where too few frames pair)."""
    mirror = mirror_permutation(observations.keypoint_names)
    first, other = np.flatnonzero(observations.view == i), np.flatnonzero(observations.view == j)
    costs = np.full(candidates.size, np.nan)
    if not first.size or not other.size:
        return costs
    gap = observations.frame[other][None, :] - observations.frame[first][:, None]
    a, b = np.nonzero(np.abs(gap) <= np.abs(candidates).max())  # the detection pairs any offset pairs
    pair_cost = np.concatenate(
        [
            _pair_costs(
                normalised,
                confident,
                mirror,
                cameras,
                i,
                j,
                first[a[k : k + _PAIRS]],
                other[b[k : k + _PAIRS]],
            )
            for k in range(0, a.size, _PAIRS)
        ]
        or [np.zeros(0)]
    )
    gap = gap[a, b]
    frames, frame_of = np.unique(observations.frame[first][a], return_inverse=True)
    paired = np.zeros(candidates.size, dtype=np.int64)
    for k, delta in enumerate(candidates):  # one pass per offset, batched over frames and pairs
        at = gap == delta
        per_frame = np.full(frames.size, np.inf)
        np.minimum.at(per_frame, frame_of[at], pair_cost[at])
        seen = np.isfinite(per_frame)
        paired[k] = seen.sum()
        if paired[k]:
            costs[k] = np.mean(per_frame[seen])
    # An offset that leaves the views little in common scores on few, chance frames: not counted.
    return np.where(paired >= max(MIN_FRAMES, MIN_SHARED * paired.max()), costs, np.nan)


def _pair_costs(
    normalised, confident, mirror, cameras: CameraRig, i: int, j: int, rows_i, rows_j
) -> np.ndarray:
    """RMS Sampson distance (pixels) of detection ``rows_i`` of view ``i`` and ``rows_j`` of view
    ``j``, pair by pair, over the keypoints confident in both (inf with too few); the lesser of the
    labels as they are and mirrored (``mirror``: each keypoint's left/right twin), since a detector
    labels a person seen from behind mirror-wise in one view and not in another."""
    essential = _essential(cameras, i, j)
    x_i = np.concatenate([normalised[rows_i], np.ones((*normalised[rows_i].shape[:2], 1))], axis=-1)
    lines_j = np.einsum("ab,pkb->pka", essential, x_i)  # epipolar lines in view j
    focal = np.mean([cameras.K[i, 0, 0], cameras.K[j, 0, 0]])
    costs = []
    for order in (np.arange(normalised.shape[1]), mirror):
        x_j = np.concatenate(
            [normalised[rows_j][:, order], np.ones((*normalised[rows_j].shape[:2], 1))], axis=-1
        )
        lines_i = np.einsum("ba,pkb->pka", essential, x_j)  # and in view i
        residual = np.einsum("pka,pka->pk", x_j, lines_j)
        sampson = residual**2 / (
            lines_j[..., 0] ** 2 + lines_j[..., 1] ** 2 + lines_i[..., 0] ** 2 + lines_i[..., 1] ** 2
        )
        both = confident[rows_i] & confident[rows_j][:, order]
        with np.errstate(invalid="ignore"):
            rms = focal * np.sqrt(np.nanmean(np.where(both, sampson, np.nan), axis=1))
        costs.append(np.where(both.sum(axis=1) >= MIN_COMMON_KEYPOINTS, rms, np.inf))
    return np.minimum(*costs)


def _essential(cameras: CameraRig, i: int, j: int) -> Float[np.ndarray, "3 3"]:
    """The essential matrix of views ``i`` → ``j``: x_jᵀ E x_i = 0 for normalised image points."""
    R = cameras.R[j] @ cameras.R[i].T
    t = cameras.t[j] - R @ cameras.t[i]
    cross = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    return cross @ R


def in_step(
    view: Int[np.ndarray, " N"],
    frame: Int[np.ndarray, " N"],
    offsets: Int[np.ndarray, " V"],
    frames_per_view: Int[np.ndarray, " V"],
) -> tuple[Int[np.ndarray, " M"], Int[np.ndarray, " M"], int]:
    """Rows on one clock, trimmed to the span every view covers: the rows kept, their frame there
    (frame t of view v becomes t − offset[v] − start, ``start`` the first common instant on the first
    view's clock) and the span's length."""
    aligned = frame - offsets[view]
    start = int(np.max(-offsets))
    stop = int(np.min(frames_per_view - offsets))
    kept = np.flatnonzero((aligned >= start) & (aligned < stop))
    return kept, aligned[kept] - start, max(stop - start, 0)


def parse_offsets(text: str, views: int) -> Int[np.ndarray, " V"]:
    """``O1,O2,…``: one integer offset per view, the first 0 (its clock is the reference)."""
    try:
        offsets = np.array([int(part) for part in text.split(",")], dtype=np.int64)
    except ValueError:
        raise InputError(
            f"--sync {text!r}: auto, off, or one integer frame offset per view (O1,O2,…)"
        ) from None
    if offsets.size != views or offsets[0] != 0:
        raise InputError(f"--sync {text!r}: give {views} offsets, one per view, the first 0")
    return offsets
