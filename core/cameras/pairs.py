"""Which tracklet of one view is which of another, while the cameras are unknown.

Two views see the same person when that person's keypoints, pooled over the frames both tracklets
share, obey one epipolar geometry; two different people moving about do not. For every pair of views,
each candidate tracklet pair (enough shared frames) yields a fundamental matrix by PoseLib's RANSAC;
the few best serve as seeds, every candidate is scored against each seed's matrix, and the seed that
the most keypoint matches agree with decides which candidates are the same person. The matches used
here are the midpoints of left/right keypoint pairs (and the keypoints on the body's midline), which a
detector that labels a person seen from behind mirror-wise still gets right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import poselib
from jaxtyping import Float, Int

from core.cameras.config import SelfCalibrationConfig
from core.engine.handedness import mirror_permutation
from core.types import Observations, Tracklets

_SEEDS = 6
"""Candidate tracklet pairs whose own epipolar geometry is tried as the view pair's."""
_MIN_CANDIDATE_MATCHES = 24
"""A candidate tracklet pair needs this many midline matches for its own fundamental matrix."""


def midline_keypoints(
    keypoints: Float[np.ndarray, "N K 2"], confidence: Float[np.ndarray, "N K"], names: tuple[str, ...]
) -> tuple[Float[np.ndarray, "N M 2"], Float[np.ndarray, "N M"]]:
    """Points that a left/right label swap leaves in place: the midpoint of each left/right pair, and
    each keypoint on the body's midline; their confidence the lower of the pair's.

    >>> xy, c = midline_keypoints(np.array([[[0.0, 0], [2, 2], [4, 0]]]), np.ones((1, 3)),
    ...                           ("nose", "left_eye", "right_eye"))
    >>> xy.tolist(), c.tolist()
    ([[[0.0, 0.0], [3.0, 1.0]]], [[1.0, 1.0]])
    """
    mirror = mirror_permutation(names)
    k = np.arange(len(names))
    sided = np.array(["left" in n or "right" in n for n in names])
    first = (k < mirror) | ((k == mirror) & ~sided)
    a, b = k[first], mirror[first]
    return 0.5 * (keypoints[:, a] + keypoints[:, b]), np.minimum(confidence[:, a], confidence[:, b])


def midline_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """The name of each of :func:`midline_keypoints`' points: ``knee`` for the left and right knees.

    >>> midline_names(("nose", "left_knee", "right_knee"))
    ('nose', 'knee')
    """
    mirror = mirror_permutation(names)
    return tuple(
        name.removeprefix("left_").removeprefix("right_")
        for k, name in enumerate(names)
        if k < mirror[k] or (k == mirror[k] and "left" not in name and "right" not in name)
    )


@dataclass(frozen=True)
class FrameTable:
    """Each tracklet's observation at each frame (-1: none), for finding shared frames at once."""

    index: Int[np.ndarray, "K F"]

    @staticmethod
    def build(tracklets: Tracklets, frame: Int[np.ndarray, " N"], num_frames: int) -> FrameTable:
        index = np.full((len(tracklets), num_frames), -1, dtype=np.int64)
        rows = np.flatnonzero(tracklets.observation_tracklet >= 0)
        index[tracklets.observation_tracklet[rows], frame[rows]] = rows
        return FrameTable(index)


@dataclass(frozen=True)
class ViewPair:
    """The epipolar geometry of two views and their observations of the same people."""

    first: int
    second: int
    fundamental: Float[np.ndarray, "3 3"]
    observations1: Int[np.ndarray, " Q"]
    """Observation pairs (rows of the observations), one person at one frame seen by both views."""
    observations2: Int[np.ndarray, " Q"]
    inliers: int
    """Midline keypoint matches of these pairs within the epipolar threshold."""
    cost: Float[np.ndarray, " Q"] | None = None
    """Each observation pair's median epipolar error (pixels), when known: the surest pairs first."""


def _pair_points(
    midline: Float[np.ndarray, "N M 2"],
    valid: np.ndarray,
    table: FrameTable,
    a: int,
    b: int,
) -> tuple[Float[np.ndarray, "P 2"], Float[np.ndarray, "P 2"]]:
    """The midline keypoints seen confidently by both tracklets at their shared frames."""
    both = (table.index[a] >= 0) & (table.index[b] >= 0)
    rows_a, rows_b = table.index[a, both], table.index[b, both]
    seen = valid[rows_a] & valid[rows_b]
    return midline[rows_a][seen], midline[rows_b][seen]


def sampson_errors(
    F: Float[np.ndarray, "3 3"], x1: Float[np.ndarray, "P 2"], x2: Float[np.ndarray, "P 2"]
) -> Float[np.ndarray, " P"]:
    """First-order geometric distance (pixels) of each match from the epipolar geometry ``F``."""
    h1 = np.concatenate([x1, np.ones_like(x1[:, :1])], axis=1)
    h2 = np.concatenate([x2, np.ones_like(x2[:, :1])], axis=1)
    Fx1, Ftx2 = h1 @ F.T, h2 @ F
    numerator = np.einsum("pi,pi->p", h2, Fx1)
    denominator = Fx1[:, 0] ** 2 + Fx1[:, 1] ** 2 + Ftx2[:, 0] ** 2 + Ftx2[:, 1] ** 2
    return np.abs(numerator) / np.sqrt(np.maximum(denominator, 1e-12))


def _fundamental(x1: np.ndarray, x2: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray] | None:
    """PoseLib's robust fundamental matrix and its inlier mask; None if it finds none."""
    if x1.shape[0] < 8:
        return None
    F, info = poselib.estimate_fundamental(
        x1, x2, {"max_epipolar_error": threshold, "min_iterations": 200, "max_iterations": 2000}, {}
    )
    inliers = np.asarray(info["inliers"], dtype=bool)
    if not np.isfinite(F).all() or inliers.sum() < 8:
        return None
    return F, inliers


def match_view_pair(
    first: int,
    second: int,
    observations: Observations,
    tracklets: Tracklets,
    table: FrameTable,
    image_size: float,
    config: SelfCalibrationConfig,
) -> ViewPair | None:
    """Views ``first`` and ``second``'s epipolar geometry and their observations of the same people;
    None when no candidate tracklet pair agrees on one.

    Seeds are the tracklet pairs whose own keypoints fit one fundamental matrix best; from each, the
    observations of the two views are paired frame by frame under the current geometry (a tracklet
    that swaps people midway is thus followed no further than it is right), the geometry is estimated
    again from all the pairs, and so on; the seed that ends with the most agreeing matches wins.
    """
    midline, confidence = midline_keypoints(
        observations.keypoints2d, observations.keypoint_confidence, observations.keypoint_names
    )
    valid = confidence >= config.min_keypoint_confidence
    threshold = config.epipolar_threshold * image_size
    ours = np.flatnonzero(tracklets.view == first)
    theirs = np.flatnonzero(tracklets.view == second)
    shared = ((table.index[ours][:, None] >= 0) & (table.index[theirs][None] >= 0)).sum(-1)
    seeds = []
    for i, j in zip(*np.nonzero(shared >= config.min_shared_frames), strict=True):
        x1, x2 = _pair_points(midline, valid, table, ours[i], theirs[j])
        found = _fundamental(x1, x2, threshold) if x1.shape[0] >= _MIN_CANDIDATE_MATCHES else None
        if found is not None and found[1].mean() >= config.min_inlier_ratio:
            seeds.append((int(found[1].sum()), found[0]))
    rows1, rows2 = _same_frame_pairs(observations, first, second)
    best = None
    for _, F in sorted(seeds, key=lambda s: -s[0])[:_SEEDS]:
        found = _grow(F, rows1, rows2, midline, valid, threshold, config.min_inlier_ratio)
        if found is not None and (best is None or found.inliers > best.inliers):
            best = found
    if best is None:
        return None
    return ViewPair(
        first, second, best.fundamental, best.observations1, best.observations2, best.inliers, best.cost
    )


def _same_frame_pairs(observations: Observations, first: int, second: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (observation of ``first``, observation of ``second``) at the same frame."""
    a = np.flatnonzero(observations.view == first)
    b = np.flatnonzero(observations.view == second)
    fa, fb = observations.frame[a], observations.frame[b]
    order = np.argsort(fb, kind="stable")
    lo, hi = np.searchsorted(fb[order], fa, "left"), np.searchsorted(fb[order], fa, "right")
    count = hi - lo
    rows1 = np.repeat(a, count)
    offsets = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    rows2 = b[order][np.repeat(lo, count) + offsets]
    return rows1, rows2


def pair_under(
    F: np.ndarray,
    first: int,
    second: int,
    observations: Observations,
    midline: np.ndarray,
    valid: np.ndarray,
    threshold: float,
    min_ratio: float,
) -> tuple[Int[np.ndarray, " Q"], Int[np.ndarray, " Q"], Float[np.ndarray, " Q"]]:
    """The observation pairs of views ``first`` and ``second`` that are one person under ``F``, and each
    pair's median epipolar error."""
    rows1, rows2 = _same_frame_pairs(observations, first, second)
    paired, cost = _pair_frames(F, rows1, rows2, midline, valid, threshold, min_ratio)
    return rows1[paired], rows2[paired], cost[paired]


def _pair_frames(
    F: np.ndarray,
    rows1: np.ndarray,
    rows2: np.ndarray,
    midline: np.ndarray,
    valid: np.ndarray,
    threshold: float,
    min_ratio: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Which same-frame observation pairs are one person under ``F``: enough midline keypoints within
    ``threshold``, and each observation's best partner being the other's (mutual best by median error);
    and each pair's median error."""
    x1, x2 = midline[rows1], midline[rows2]
    both = valid[rows1] & valid[rows2]
    error = sampson_errors(F, x1.reshape(-1, 2), x2.reshape(-1, 2)).reshape(both.shape)
    error = np.where(both, error, np.nan)
    with np.errstate(all="ignore"):
        median = np.nanmedian(np.where(both.any(1, keepdims=True), error, np.inf), axis=1)
        agree = (error < threshold).sum(1) >= min_ratio * both.sum(1)
    ok = agree & (both.sum(1) >= 4) & (median < threshold)
    return ok & _mutual_best(rows1, rows2, np.where(ok, median, np.inf)), median


def _mutual_best(rows1: np.ndarray, rows2: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Pairs that are the cheapest of both their observations' pairs."""
    best1 = np.full(max(rows1.max(initial=0), rows2.max(initial=0)) + 1, np.inf)
    best2 = best1.copy()
    np.minimum.at(best1, rows1, cost)
    np.minimum.at(best2, rows2, cost)
    return np.isfinite(cost) & (cost <= best1[rows1]) & (cost <= best2[rows2])


@dataclass(frozen=True)
class _Grown:
    fundamental: np.ndarray
    observations1: np.ndarray
    observations2: np.ndarray
    inliers: int
    cost: np.ndarray


def _grow(
    F: np.ndarray,
    rows1: np.ndarray,
    rows2: np.ndarray,
    midline: np.ndarray,
    valid: np.ndarray,
    threshold: float,
    min_ratio: float,
    rounds: int = 3,
) -> _Grown | None:
    """From one seed's geometry, alternately pair the observations under it and re-estimate it from
    all the pairs (one person's matches alone fit it too closely to judge another's)."""
    found = None
    for _ in range(rounds):
        paired, cost = _pair_frames(F, rows1, rows2, midline, valid, threshold, min_ratio)
        if not paired.any():
            return found
        a, b = rows1[paired], rows2[paired]
        seen = valid[a] & valid[b]
        estimate = _fundamental(midline[a][seen], midline[b][seen], threshold)
        if estimate is None:
            return found
        F = estimate[0]
        found = _Grown(F, a, b, int(estimate[1].sum()), cost[paired])
    return found
