"""All views in one frame, for given focal lengths: the best view pair by its essential matrix, then each
further view on the people already triangulated.

The first pair is the one with the most matches whose essential-matrix rotation the people's own 3D
estimates agree with (``landmarks``): a wrong focal length or a wrong choice among the essential
matrix's solutions turns the views far from how the people's bodies say they are turned.

Who is who in a new view is not trusted from the view pairs (a pair with a poor view may have paired
the wrong people): every person of the new view at a frame is tried against every triangulated person
of that frame, and PoseLib's absolute-pose RANSAC takes the wrong pairings as outliers. The new view's
observations then join the tracks they reproject onto.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import poselib
from scipy.spatial.transform import Rotation

from core.cameras.bundle import BundleCameras, project
from core.cameras.landmarks import pair_readings, reading_error_deg
from core.cameras.pairs import ViewPair
from core.cameras.tracks import Tracks, triangulate_tracks
from core.types import Observations

MIN_VIEW_POINTS = 30
"""A view is placed on at least this many inlier 2D–3D keypoint correspondences."""
_RANSAC = {"min_iterations": 100, "max_iterations": 2000}


@dataclass(frozen=True)
class Keypoints:
    """The matched keypoints of every observation (midline points), which are confident, and the
    inlier threshold per view (pixels)."""

    points: np.ndarray
    valid: np.ndarray
    threshold: np.ndarray


@dataclass
class Placement:
    cameras: BundleCameras
    placed: set[int]
    tracks: Tracks
    reasons: dict[int, str] = field(default_factory=dict)
    """Why each view that is not placed is not."""
    landmark_error_deg: float = 0.0
    """Median angle between the first pair's relative rotation and the people's readings of it."""
    messages: list[str] = field(default_factory=list)


def pinhole(cameras: BundleCameras, view: int) -> dict:
    """PoseLib's camera for ``view`` (its distortion ignored: placing needs no pixel precision)."""
    cx, cy = cameras.principal[view]
    return {
        "model": "SIMPLE_PINHOLE",
        "width": int(2 * cx),
        "height": int(2 * cy),
        "params": [float(cameras.focal[view]), float(cx), float(cy)],
    }


def pair_points(pair: ViewPair, keypoints: Keypoints) -> tuple[np.ndarray, np.ndarray]:
    """The confident keypoints of a view pair's matched observations, as two aligned point lists."""
    a, b = pair.observations1, pair.observations2
    both = keypoints.valid[a] & keypoints.valid[b]
    return keypoints.points[a][both], keypoints.points[b][both]


def place_views(
    cameras: BundleCameras,
    seeds: list[ViewPair],
    candidates: list[int],
    observations: Observations,
    keypoints: Keypoints,
    max_landmark_deg: float,
) -> Placement:
    """The first of ``seeds`` (the surest first) whose essential-matrix rotation the landmarks agree
    with (within ``max_landmark_deg``, median) placed (its first view at the origin, unit baseline), then
    each of ``candidates`` in turn, the one with the most inliers first. When no seed agrees, the first
    is placed and a message says so."""
    tried = []
    for seed in seeds:
        placed = _place_pair(cameras, seed, keypoints)
        R = placed.R
        readings = pair_readings(observations.global_orient_cam, seed.observations1, seed.observations2)
        error = float(np.median(reading_error_deg(readings, R[seed.second] @ R[seed.first].T)))
        tried.append((seed, placed, error))
        if error <= max_landmark_deg:
            break
    seed, cameras, error = tried[-1] if tried[-1][2] <= max_landmark_deg else tried[0]
    messages = []
    if error > max_landmark_deg:
        messages.append(
            f"the people's body orientations disagree with every view pair's epipolar rotation (by "
            f"{error:.0f}° at best): the cameras may be wrong; a focal length or field-of-view hint helps"
        )
    views = len(cameras.focal)
    placement = Placement(
        cameras,
        {seed.first, seed.second},
        Tracks.from_pairs(observations, [seed], views),
        landmark_error_deg=error,
        messages=messages,
    )
    waiting = [v for v in candidates if v not in placement.placed]
    while waiting:
        X, seen = triangulate_tracks(
            placement.cameras,
            placement.placed,
            placement.tracks,
            observations,
            keypoints.points,
            keypoints.valid,
        )
        poses = {v: _place_view(placement, v, X, seen, observations, keypoints) for v in waiting}
        poses = {v: pose for v, pose in poses.items() if pose is not None}
        if not poses:
            placement.reasons.update(
                {v: "too few of its keypoints agree with the placed views" for v in waiting}
            )
            break
        view = max(poses, key=lambda v: poses[v][2])
        rotvec, t = placement.cameras.rotvec.copy(), placement.cameras.t.copy()
        rotvec[view], t[view] = poses[view][0], poses[view][1]
        placement.cameras = replace(placement.cameras, rotvec=rotvec, t=t)
        placement.placed.add(view)
        placement.tracks = _attach(placement, view, X, observations, keypoints)
        waiting.remove(view)
    return placement


def _place_pair(cameras: BundleCameras, pair: ViewPair, keypoints: Keypoints) -> BundleCameras:
    x1, x2 = pair_points(pair, keypoints)
    i, j = pair.first, pair.second
    pose, _ = poselib.estimate_relative_pose(
        x1,
        x2,
        pinhole(cameras, i),
        pinhole(cameras, j),
        {**_RANSAC, "max_epipolar_error": float(max(keypoints.threshold[i], keypoints.threshold[j]))},
        {},
    )
    rotvec, t = np.zeros_like(cameras.rotvec), np.zeros_like(cameras.t)
    rotvec[j], t[j] = Rotation.from_matrix(pose.R).as_rotvec(), pose.t
    return replace(cameras, rotvec=rotvec, t=t)


def _candidates(
    view: int, tracks: Tracks, has_point: np.ndarray, observations: Observations
) -> tuple[np.ndarray, np.ndarray]:
    """Every (observation of ``view``, track with points) at the same frame."""
    frame = tracks.frames(observations)
    known = np.flatnonzero(has_point)
    order = known[np.argsort(frame[known], kind="stable")]
    frames = frame[order]
    mine = np.flatnonzero(observations.view == view)
    lo = np.searchsorted(frames, observations.frame[mine], "left")
    hi = np.searchsorted(frames, observations.frame[mine], "right")
    count = hi - lo
    offsets = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return np.repeat(mine, count), order[np.repeat(lo, count) + offsets]


def _place_view(placement: Placement, view: int, X, seen, observations: Observations, keypoints: Keypoints):
    """``view``'s pose (rotation vector, translation, inliers) from its keypoints against the people
    already triangulated; None if too few agree."""
    obs, track = _candidates(view, placement.tracks, (seen >= 2).any(axis=1), observations)
    points = X[track]
    use = keypoints.valid[obs] & (seen[track] >= 2) & np.isfinite(points).all(-1)
    if use.sum() < MIN_VIEW_POINTS:
        return None
    pose, info = poselib.estimate_absolute_pose(
        keypoints.points[obs][use],
        points[use],
        pinhole(placement.cameras, view),
        {**_RANSAC, "max_reproj_error": float(keypoints.threshold[view])},
        {},
    )
    if info["num_inliers"] < MIN_VIEW_POINTS:
        return None
    return Rotation.from_matrix(pose.R).as_rotvec(), np.asarray(pose.t), int(info["num_inliers"])


def _attach(placement: Placement, view: int, X, observations: Observations, keypoints: Keypoints) -> Tracks:
    """The tracks with the newly placed ``view``'s observations added where one reprojects onto a
    track's points (each observation and each track paired with its best match only)."""
    tracks = placement.tracks
    obs, track = _candidates(view, tracks, np.isfinite(X).all(-1).any(-1), observations)
    points = X[track]
    M = points.shape[1]
    pixels = project(placement.cameras, np.full(obs.size * M, view), points.reshape(-1, 3)).reshape(
        obs.size, M, 2
    )
    error = np.linalg.norm(pixels - keypoints.points[obs], axis=-1)
    use = keypoints.valid[obs] & np.isfinite(error)
    with np.errstate(all="ignore"):
        median = np.nanmedian(np.where(use, error, np.nan), axis=1)
    cost = np.where((use.sum(1) >= 4) & (median < keypoints.threshold[view]), median, np.inf)
    best_obs = np.full(len(observations), np.inf)
    best_track = np.full(tracks.count, np.inf)
    np.minimum.at(best_obs, obs, cost)
    np.minimum.at(best_track, track, cost)
    chosen = np.isfinite(cost) & (cost <= best_obs[obs]) & (cost <= best_track[track])
    joined = tracks.track.copy()
    joined[obs[chosen]] = track[chosen]
    return Tracks(joined, tracks.count)
