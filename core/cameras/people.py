"""Self-calibration: the cameras of an uncalibrated rig from the people it sees.

The people's keypoints over time are correspondences between the views (``pairs``: which tracklet of
one view is which of another, and each view pair's epipolar geometry). From there:

1. focal lengths: given, or the one shared value under which the view pairs' essential matrices hold
   the most matches (searched on a grid of fields of view; the bundle adjustment refines each);
2. the view pair with the most matches is placed by its essential matrix (PoseLib), the people's
   points are triangulated, and each further view is placed on them by PoseLib's absolute pose;
3. a sparse bundle adjustment over cameras (pose, focal, k1) and points; the observations are then
   paired again under the adjusted cameras and the adjustment repeated;
4. the metric world (``world``): scale from the people's body size, z up, the floor at z = 0.

The matched points are the flip-invariant midline keypoints, so a person labelled mirror-wise in one
view (seen from behind) still matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import poselib
from jaxtyping import Float, Int
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.transform import Rotation

from core.cameras.bundle import BundleCameras, adjust, project
from core.cameras.config import CameraConfig
from core.cameras.pairs import FrameTable, ViewPair, match_view_pair, midline_keypoints, pair_under
from core.cameras.report import CalibrationReport, CameraEstimate
from core.cameras.world import metric_world
from core.geometry import triangulate_pixels
from core.types import Camera, CameraRig, Observations, Tracklets

_FIELDS_OF_VIEW = np.radians(np.arange(30.0, 101.0, 5.0))
"""Horizontal fields of view tried for the shared initial focal length."""
_MIN_VIEW_POINTS = 30
"""A view is placed on at least this many inlier 2D–3D keypoint correspondences."""


@dataclass(frozen=True)
class _Tracks:
    """Observations of the same person at the same frame across views: ``track[n]`` of observation n
    (-1: in no track)."""

    track: Int[np.ndarray, " N"]
    count: int


def calibrate_from_people(
    observations: Observations,
    tracklets: Tracklets,
    num_frames: int,
    sizes: Sequence[tuple[int, int]],
    names: Sequence[str],
    config: CameraConfig,
) -> tuple[CameraRig, CalibrationReport]:
    """Cameras (metric world, z up, floor at z = 0) from the people's keypoints; the views that could
    not be placed are left out of the rig and named in the report."""
    settings = config.people
    V = len(sizes)
    longest = np.array([max(size) for size in sizes], dtype=float)
    table = FrameTable.build(tracklets, observations.frame, num_frames)
    pairs = {}
    for i in range(V):
        for j in range(i + 1, V):
            found = match_view_pair(
                i, j, observations, tracklets, table, max(longest[i], longest[j]), settings
            )
            if found is not None and found.inliers >= settings.min_pair_matches:
                pairs[i, j] = found
    midline, confidence = midline_keypoints(
        observations.keypoints2d, observations.keypoint_confidence, observations.keypoint_names
    )
    valid = confidence >= settings.min_keypoint_confidence
    principal = np.array([(w / 2.0, h / 2.0) for w, h in sizes])
    focal = _initial_focals(pairs, midline, valid, sizes, config.hints)
    reasons = {v: "it shares no person with the other views" for v in range(V) if not _in_any(pairs, v)}
    if not pairs:
        return _unplaced(names, focal, reasons, "no two views share a person")
    seed = max(pairs.values(), key=lambda p: p.inliers)
    cameras = BundleCameras(np.zeros((V, 3)), np.zeros((V, 3)), focal, np.zeros(V), principal)
    cameras = _place_pair(cameras, seed, midline, valid, longest)
    placed = {seed.first, seed.second}
    tracks = _tracks(observations, {(seed.first, seed.second): seed}, V)
    while True:
        candidates = [v for v in range(V) if v not in placed and v not in reasons]
        if not candidates:
            break
        X, seen = _triangulate(cameras, placed, tracks, observations, midline, valid)
        best = None
        for v in candidates:
            pose = _place_view(cameras, v, X, seen, tracks, observations, midline, valid, longest[v])
            if pose is not None and (best is None or pose[2] > best[3]):
                best = (v, pose[0], pose[1], pose[2])
        if best is None:
            reasons.update({v: "too few of its keypoints agree with the placed views" for v in candidates})
            break
        v, rotvec, t, _ = best
        cameras.rotvec[v], cameras.t[v] = rotvec, t
        placed.add(v)
        tracks = _attach(
            v, cameras, X, tracks, observations, midline, valid, settings.epipolar_threshold * longest[v]
        )
    fixed = np.array([seed.first])
    for intrinsics in (0, 1, 2 if settings.refine_k1 else 1):
        cameras, inliers, error = _bundle(
            cameras, placed, tracks, observations, midline, valid, fixed, intrinsics, settings
        )
        repaired = _repaired(cameras, placed, observations, midline, valid, longest, settings)
        tracks = _tracks(observations, repaired, V)
    rig = _rig(cameras, sizes, names)
    X, seen = _triangulate(cameras, placed, tracks, observations, midline, valid)
    world, scale_from, messages = metric_world(
        rig, placed, observations, tracks.track, tracklets.observation_tracklet, X, seen, config.hints
    )
    report = CalibrationReport(
        source="people",
        cameras=tuple(
            CameraEstimate(
                name,
                v in placed,
                reasons.get(v, ""),
                float(cameras.focal[v]),
                float(error[v]) if v in placed else float("nan"),
                int(inliers[v]) if v in placed else 0,
            )
            for v, name in enumerate(names)
        ),
        scale_from=scale_from,
        messages=messages,
    )
    return CameraRig(tuple(world.cameras[v] for v in sorted(placed))), report


def _in_any(pairs: dict[tuple[int, int], ViewPair], view: int) -> bool:
    return any(view in key for key in pairs)


def _unplaced(
    names: Sequence[str], focal: np.ndarray, reasons: dict[int, str], why: str
) -> tuple[CameraRig, CalibrationReport]:
    estimates = tuple(
        CameraEstimate(name, False, reasons.get(v, why), float(focal[v])) for v, name in enumerate(names)
    )
    return CameraRig(()), CalibrationReport("people", estimates, messages=(f"no camera placed: {why}",))


def _pinhole(focal: float, principal: np.ndarray, size: tuple[int, int]) -> dict:
    return {
        "model": "SIMPLE_PINHOLE",
        "width": int(size[0]),
        "height": int(size[1]),
        "params": [float(focal), float(principal[0]), float(principal[1])],
    }


def _pair_points(pair: ViewPair, midline: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = pair.observations1, pair.observations2
    both = valid[a] & valid[b]
    return midline[a][both], midline[b][both]


def _initial_focals(
    pairs: dict[tuple[int, int], ViewPair],
    midline: np.ndarray,
    valid: np.ndarray,
    sizes: Sequence[tuple[int, int]],
    hints,
) -> np.ndarray:
    """Each camera's starting focal length: the hint, or the shared field of view under which the view
    pairs' essential matrices keep the most matches."""
    widths = np.array([w for w, _ in sizes], dtype=float)
    if hints.focal_px:
        return np.broadcast_to(np.asarray(hints.focal_px, dtype=float), widths.shape).copy()
    if hints.fov_deg is not None:
        return widths / 2 / np.tan(np.radians(hints.fov_deg) / 2)
    principal = [(w / 2.0, h / 2.0) for w, h in sizes]
    best, best_score = widths / 2 / np.tan(np.radians(60.0) / 2), -1
    for fov in _FIELDS_OF_VIEW:
        focal = widths / 2 / np.tan(fov / 2)
        score = 0
        for (i, j), pair in pairs.items():
            x1, x2 = _pair_points(pair, midline, valid)
            threshold = 0.01 * max(max(sizes[i]), max(sizes[j]))
            _, info = poselib.estimate_relative_pose(
                x1,
                x2,
                _pinhole(focal[i], principal[i], sizes[i]),
                _pinhole(focal[j], principal[j], sizes[j]),
                {"max_epipolar_error": threshold, "max_iterations": 1000},
                {"max_iterations": 0},
            )
            score += info["num_inliers"]
        if score > best_score:
            best, best_score = focal, score
    return best


def _place_pair(
    cameras: BundleCameras, pair: ViewPair, midline: np.ndarray, valid: np.ndarray, longest: np.ndarray
) -> BundleCameras:
    """The pair's second camera placed relative to its first (at the origin) by the essential matrix."""
    i, j = pair.first, pair.second
    x1, x2 = _pair_points(pair, midline, valid)
    size = lambda v: (int(2 * cameras.principal[v, 0]), int(2 * cameras.principal[v, 1]))  # noqa: E731
    pose, _ = poselib.estimate_relative_pose(
        x1,
        x2,
        _pinhole(cameras.focal[i], cameras.principal[i], size(i)),
        _pinhole(cameras.focal[j], cameras.principal[j], size(j)),
        {"max_epipolar_error": 0.01 * max(longest[i], longest[j])},
        {},
    )
    rotvec, t = cameras.rotvec.copy(), cameras.t.copy()
    rotvec[j], t[j] = Rotation.from_matrix(pose.R).as_rotvec(), pose.t
    return BundleCameras(rotvec, t, cameras.focal, cameras.k1, cameras.principal)


def _tracks(observations: Observations, pairs: dict[tuple[int, int], ViewPair], V: int) -> _Tracks:
    """Observations linked by the view pairs' matches, grouped; a group holding two observations of one
    view (two people confused somewhere) is dropped."""
    N = len(observations)
    first = np.concatenate([p.observations1 for p in pairs.values()] or [np.zeros(0, dtype=np.int64)])
    second = np.concatenate([p.observations2 for p in pairs.values()] or [np.zeros(0, dtype=np.int64)])
    graph = coo_matrix((np.ones(first.size), (first, second)), shape=(N, N))
    _, label = connected_components(graph, directed=False)
    size = np.bincount(label, minlength=N)
    per_view = np.zeros((N, V), dtype=np.int64)
    np.add.at(per_view, (label, observations.view), 1)
    good = (size[label] >= 2) & (per_view[label].max(axis=1) == 1)
    _, track = np.unique(np.where(good, label, -1), return_inverse=True)
    track = np.where(good, track - (0 if good.all() else 1), -1)
    return _Tracks(track, int(track.max(initial=-1)) + 1)


def _table(tracks: _Tracks, observations: Observations, V: int) -> np.ndarray:
    """Each track's observation in each view (-1: none)."""
    table = np.full((tracks.count, V), -1, dtype=np.int64)
    rows = np.flatnonzero(tracks.track >= 0)
    table[tracks.track[rows], observations.view[rows]] = rows
    return table


def _intrinsics(cameras: BundleCameras) -> tuple[np.ndarray, np.ndarray]:
    V = len(cameras.focal)
    K = np.zeros((V, 3, 3))
    K[:, 0, 0] = K[:, 1, 1] = cameras.focal
    K[:, :2, 2] = cameras.principal
    K[:, 2, 2] = 1.0
    dist = np.zeros((V, 5))
    dist[:, 0] = cameras.k1
    return K, dist


def _triangulate(
    cameras: BundleCameras,
    placed: set[int],
    tracks: _Tracks,
    observations: Observations,
    midline: np.ndarray,
    valid: np.ndarray,
) -> tuple[Float[np.ndarray, "T M 3"], Int[np.ndarray, "T M"]]:
    """Each track's midline points from the placed views that see them, and by how many views."""
    V = len(cameras.focal)
    table = _table(tracks, observations, V)
    use = np.isin(np.arange(V), sorted(placed))[None] & (table >= 0)
    rows = np.where(use, table, 0)
    pixels = np.moveaxis(midline[rows], 1, 2)  # (T, M, V, 2)
    weight = np.moveaxis(np.where(use[..., None], valid[rows], False), 1, 2).astype(float)
    K, dist = _intrinsics(cameras)
    X = triangulate_pixels(pixels, weight, K, dist, cameras.R, cameras.t)
    return X, (weight > 0).sum(-1)


def _candidates(
    view: int, X: np.ndarray, seen: np.ndarray, tracks: _Tracks, observations: Observations
) -> tuple[np.ndarray, np.ndarray]:
    """Every (observation of ``view``, triangulated track) at the same frame: who is who in the new
    view is not known yet, so every person there is tried against every person placed."""
    has_point = (seen >= 2).any(axis=1)
    track_frame = np.full(tracks.count, -1)
    rows = np.flatnonzero(tracks.track >= 0)
    track_frame[tracks.track[rows]] = observations.frame[rows]
    mine = np.flatnonzero(observations.view == view)
    known = np.flatnonzero(has_point)
    order = known[np.argsort(track_frame[known], kind="stable")]
    frames = track_frame[order]
    lo = np.searchsorted(frames, observations.frame[mine], "left")
    hi = np.searchsorted(frames, observations.frame[mine], "right")
    count = hi - lo
    obs = np.repeat(mine, count)
    offsets = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return obs, order[np.repeat(lo, count) + offsets]


def _place_view(
    cameras: BundleCameras,
    view: int,
    X: np.ndarray,
    seen: np.ndarray,
    tracks: _Tracks,
    observations: Observations,
    midline: np.ndarray,
    valid: np.ndarray,
    longest: float,
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """``view``'s pose from its keypoints against the people already triangulated (PoseLib's absolute
    pose; the pairings of the wrong people are its outliers); None if too few agree."""
    obs, track = _candidates(view, X, seen, tracks, observations)
    points = X[track]
    use = valid[obs] & (seen[track] >= 2) & np.isfinite(points).all(-1)
    if use.sum() < _MIN_VIEW_POINTS:
        return None
    size = (int(2 * cameras.principal[view, 0]), int(2 * cameras.principal[view, 1]))
    pose, info = poselib.estimate_absolute_pose(
        midline[obs][use],
        points[use],
        _pinhole(cameras.focal[view], cameras.principal[view], size),
        {"max_reproj_error": 0.01 * longest},
        {},
    )
    if info["num_inliers"] < _MIN_VIEW_POINTS:
        return None
    return Rotation.from_matrix(pose.R).as_rotvec(), np.asarray(pose.t), int(info["num_inliers"])


def _attach(
    view: int,
    cameras: BundleCameras,
    X: np.ndarray,
    tracks: _Tracks,
    observations: Observations,
    midline: np.ndarray,
    valid: np.ndarray,
    threshold: float,
) -> _Tracks:
    """The tracks with the newly placed ``view``'s observations added where one reprojects onto a
    track's points (each observation and track paired with its best match only)."""
    seen = np.isfinite(X).all(-1).astype(int) * 2
    obs, track = _candidates(view, X, seen, tracks, observations)
    points = X[track]
    M = points.shape[1]
    pixels = project(cameras, np.full(obs.size * M, view), points.reshape(-1, 3)).reshape(obs.size, M, 2)
    error = np.linalg.norm(pixels - midline[obs], axis=-1)
    use = valid[obs] & np.isfinite(error)
    with np.errstate(all="ignore"):
        median = np.nanmedian(np.where(use, error, np.nan), axis=1)
    cost = np.where((use.sum(1) >= 4) & (median < threshold), median, np.inf)
    best_obs = np.full(len(observations), np.inf)
    best_track = np.full(tracks.count, np.inf)
    np.minimum.at(best_obs, obs, cost)
    np.minimum.at(best_track, track, cost)
    chosen = np.isfinite(cost) & (cost <= best_obs[obs]) & (cost <= best_track[track])
    joined = tracks.track.copy()
    joined[obs[chosen]] = track[chosen]
    return _Tracks(joined, tracks.count)


def _bundle(cameras, placed, tracks, observations, midline, valid, fixed, intrinsics, settings):
    """One bundle adjustment of the placed cameras and the tracks' points; the per-view inlier counts
    and median reprojection errors after it."""
    V = len(cameras.focal)
    X, seen = _triangulate(cameras, placed, tracks, observations, midline, valid)
    stride = settings.frame_stride
    rows = np.flatnonzero(
        (tracks.track >= 0) & np.isin(observations.view, sorted(placed)) & (observations.frame % stride == 0)
    )
    T, M = seen.shape
    point = tracks.track[rows, None] * M + np.arange(M)
    use = valid[rows] & (seen.reshape(-1)[point] >= 2) & np.isfinite(X.reshape(-1, 3)[point]).all(-1)
    view = np.broadcast_to(observations.view[rows, None], point.shape)[use]
    point, pixels = point[use], midline[rows][use]
    kept, point = np.unique(point, return_inverse=True)
    cameras, points = adjust(
        cameras,
        X.reshape(-1, 3)[kept],
        view,
        point,
        pixels,
        settings.reprojection_scale_px,
        fixed,
        intrinsics,
        settings.max_bundle_iterations,
    )
    error = np.linalg.norm(project(cameras, view, points[point]) - pixels, axis=1)
    inliers = np.bincount(view[error < 3 * settings.reprojection_scale_px], minlength=V)
    median = np.array([np.median(error[view == v]) if (view == v).any() else np.nan for v in range(V)])
    return cameras, inliers, median


def _fundamental_between(cameras: BundleCameras, i: int, j: int) -> np.ndarray:
    K, _ = _intrinsics(cameras)
    R = cameras.R
    R_ij = R[j] @ R[i].T
    t_ij = cameras.t[j] - R_ij @ cameras.t[i]
    cross = np.array([[0, -t_ij[2], t_ij[1]], [t_ij[2], 0, -t_ij[0]], [-t_ij[1], t_ij[0], 0]])
    return np.linalg.inv(K[j]).T @ cross @ R_ij @ np.linalg.inv(K[i])


def _repaired(cameras, placed, observations, midline, valid, longest, settings):
    """Every placed view pair's observations paired again under the adjusted cameras."""
    repaired = {}
    for i in sorted(placed):
        for j in sorted(placed):
            if i < j:
                F = _fundamental_between(cameras, i, j)
                a, b = pair_under(
                    F,
                    i,
                    j,
                    observations,
                    midline,
                    valid,
                    settings.epipolar_threshold * max(longest[i], longest[j]),
                    settings.min_inlier_ratio,
                )
                repaired[i, j] = ViewPair(i, j, F, a, b, int(a.size))
    return repaired


def _rig(cameras: BundleCameras, sizes: Sequence[tuple[int, int]], names: Sequence[str]) -> CameraRig:
    K, dist = _intrinsics(cameras)
    R = cameras.R
    return CameraRig(
        tuple(
            Camera(name, K[v], dist[v], R[v], cameras.t[v].copy(), int(sizes[v][0]), int(sizes[v][1]))
            for v, name in enumerate(names)
        )
    )
