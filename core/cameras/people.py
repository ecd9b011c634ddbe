"""Self-calibration: the cameras of an uncalibrated rig from the people it sees.

The people's keypoints over time are correspondences between the views (``pairs``: which tracklet of
one view is which of another, and each view pair's epipolar geometry). From there:

1. focal lengths: given, or chosen among shared fields of view on a grid: for each, the views are placed
   (``placement``) and adjusted on a sample of frames, and the one that the people's keypoints agree
   with best is kept (two views alone cannot tell it: the usual rig, cameras at head height looking at
   the same place, is the critical configuration of focal lengths from a fundamental matrix);
2. all frames: the views placed, then rounds of sparse bundle adjustment (``bundle``), the observations
   paired again under the adjusted cameras after each. The first round adjusts the midline points with
   the intrinsics fixed; the next ones every keypoint (left and right agreed across views first) with
   each person's bone lengths constant over time, which is what pins the focal lengths, and then k1;
3. the metric world (``world``): scale from the people's body size, z up, the floor at z = 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from core.cameras.bundle import BundleCameras, Segments, adjust, project
from core.cameras.config import CameraConfig, CameraHints, SelfCalibrationConfig
from core.cameras.pairs import FrameTable, ViewPair, match_view_pair, midline_keypoints, pair_under
from core.cameras.placement import Keypoints, Placement, place_views
from core.cameras.report import CalibrationReport, CameraEstimate
from core.cameras.sources import focal_hints
from core.cameras.tracks import Tracks, rig_of, triangulate_tracks
from core.cameras.world import metric_world
from core.engine.handedness import orient_left_right
from core.keypoints import LIMBS
from core.types import CameraRig, Observations, Tracklets

FIELDS_OF_VIEW_DEG = (35, 50, 65, 80)
"""Horizontal fields of view tried for the shared starting focal length."""
BONES = (
    *LIMBS,
    ("left_shoulder", "right_shoulder"),
    ("left_hip", "right_hip"),
    ("left_shoulder", "left_hip"),
    ("right_shoulder", "right_hip"),
)
"""Keypoint pairs a body holds at a constant distance (where the layout has both)."""
_SAMPLE_FRAMES = 16
"""Frames the focal length search adjusts on."""


@dataclass(frozen=True)
class SelfCalibration:
    """The cameras the people gave, and which observations they took for one person at one frame."""

    rig: CameraRig
    """The placed views' cameras (metric world, z up, floor at z = 0), in clip order."""
    report: CalibrationReport
    track: np.ndarray
    """Each observation's cross-view group (one person at one frame; -1: in none)."""


@dataclass(frozen=True)
class _Fit:
    """What a bundle adjustment leaves: the cameras, and per view its inliers and median error (px)."""

    cameras: BundleCameras
    inliers: np.ndarray
    error: np.ndarray
    cost: float


def calibrate_from_people(
    observations: Observations,
    tracklets: Tracklets,
    num_frames: int,
    sizes: Sequence[tuple[int, int]],
    names: Sequence[str],
    config: CameraConfig,
) -> SelfCalibration:
    """Cameras (metric world, z up, floor at z = 0) from the people's keypoints; the views that could
    not be placed are left out of the rig and named, with the reason, in the report."""
    settings = config.people
    V = len(sizes)
    if V < 2:
        why = "one view: the cameras are found from two or more views of the people"
        return _unplaced(names, {}, why, len(observations))
    if num_frames < settings.min_shared_frames:
        why = (
            f"the clips have {num_frames} frames; matching people across views needs at least "
            f"{settings.min_shared_frames}"
        )
        return _unplaced(names, {}, why, len(observations))
    longest = np.array([max(size) for size in sizes], dtype=float)
    midline, confidence = midline_keypoints(
        observations.keypoints2d, observations.keypoint_confidence, observations.keypoint_names
    )
    keypoints = Keypoints(
        midline, confidence >= settings.min_keypoint_confidence, settings.epipolar_threshold * longest
    )
    pairs = _view_pairs(observations, tracklets, num_frames, longest, settings)
    seen = np.bincount(observations.view, minlength=V) > 0
    reasons = {
        v: "it shares no person with the other views (or its clip is not synchronised with theirs)"
        if seen[v]
        else "nobody is detected in it"
        for v in range(V)
        if not any(v in k for k in pairs)
    }
    principal = np.array([(w / 2.0, h / 2.0) for w, h in sizes])
    if not pairs:
        return _unplaced(names, reasons, "no two views share a person", len(observations))
    seeds = sorted(pairs.values(), key=lambda p: -p.inliers)
    candidates = [v for v in range(V) if v not in reasons]
    start = [
        BundleCameras(np.zeros((V, 3)), np.zeros((V, 3)), focal, np.zeros(V), principal)
        for focal in _focal_candidates(sizes, config.hints)
    ]
    if len(start) > 1:
        sample = _sample(observations, tracklets, num_frames)
        scored = [_trial(cameras, seeds, candidates, sample, keypoints, settings) for cameras in start]
        start = [start[int(np.argmin(scored))]]
    placement = place_views(
        start[0], seeds, candidates, observations, keypoints, settings.max_landmark_rotation_deg
    )
    placement.reasons.update(reasons)
    fit, tracks = _refine(placement, observations, tracklets, keypoints, settings)
    placed = placement.placed
    rig = rig_of(fit.cameras, sizes, names)
    X, seen = triangulate_tracks(fit.cameras, placed, tracks, observations, keypoints.points, keypoints.valid)
    world, scale_from, messages = metric_world(
        rig, placed, observations, tracks.track, tracklets.observation_tracklet, X, seen, config.hints
    )
    estimates = tuple(
        CameraEstimate(name, True, "", float(fit.cameras.focal[v]), float(fit.error[v]), int(fit.inliers[v]))
        if v in placed
        else CameraEstimate(name, False, placement.reasons.get(v, "not placed"))
        for v, name in enumerate(names)
    )
    still = _barely_moving(observations, tracklets.observation_tracklet)
    doubts = (*placement.messages, *_doubts(fit, placed, names, still, settings))
    report = CalibrationReport("people", estimates, scale_from, (*doubts, *messages))
    return SelfCalibration(CameraRig(tuple(world.cameras[v] for v in sorted(placed))), report, tracks.track)


_STILL = 0.05
"""People whose keypoints move less than this many body heights (RMS) over the clip barely move (the
demo's people exercising in place: 0.13 over 40 frames; standing still with 1 px noise: 0.007)."""


def _doubts(fit: _Fit, placed: set[int], names, still: bool, settings) -> list[str]:
    """What makes the estimate poor although it was found: views whose keypoints miss (unsynchronised
    clips), and people who barely move (near-degenerate geometry)."""
    doubts = [
        f"{names[v]}: its keypoints miss the adjusted cameras by {fit.error[v]:.0f} px (median): is its "
        "clip synchronised with the others?"
        for v in sorted(placed)
        if fit.error[v] > 3 * settings.reprojection_scale_px
    ]
    if still:
        doubts.append(
            "the people barely move, which leaves the cameras poorly determined: a clip where they walk "
            "about calibrates better"
        )
    return doubts


def _barely_moving(observations: Observations, tracklet: np.ndarray) -> bool:
    """Whether no tracklet's keypoints move over ``_STILL`` of a body height (RMS over its clip):
    people standing still give the views little to agree on, whereas walking or swinging limbs do."""
    keypoints = observations.keypoints2d
    kept = tracklet >= 0
    if not kept.any():
        return False
    _, group = np.unique(tracklet[kept], return_inverse=True)
    count = np.bincount(group)
    points = keypoints[kept].reshape(kept.sum(), -1)
    mean = np.stack([np.bincount(group, weights=column) for column in points.T], axis=1) / count[:, None]
    variance = np.bincount(group, weights=((points - mean[group]) ** 2).mean(axis=1) * 2) / count
    height = keypoints[kept, :, 1].max(axis=1) - keypoints[kept, :, 1].min(axis=1)
    body = np.bincount(group, weights=height) / count
    long_enough = count >= 10
    spread = np.sqrt(variance[long_enough]) / np.maximum(body[long_enough], 1.0)
    return bool(spread.size) and float(spread.max()) < _STILL


def _view_pairs(observations, tracklets, num_frames, longest, settings) -> dict[tuple[int, int], ViewPair]:
    """Every view pair that shares enough matches to be placed relative to each other."""
    V = len(longest)
    table = FrameTable.build(tracklets, observations.frame, num_frames)
    pairs = {}
    for i in range(V):
        for j in range(i + 1, V):
            size = max(longest[i], longest[j])
            found = match_view_pair(i, j, observations, tracklets, table, size, settings)
            if found is not None and found.inliers >= settings.min_pair_matches:
                pairs[i, j] = found
    return pairs


def _unplaced(names: Sequence[str], reasons: dict[int, str], why: str, count: int) -> SelfCalibration:
    estimates = tuple(CameraEstimate(name, False, reasons.get(v, why)) for v, name in enumerate(names))
    report = CalibrationReport("people", estimates, messages=(f"no camera placed: {why}",))
    return SelfCalibration(CameraRig(()), report, np.full(count, -1))


def _focal_candidates(sizes: Sequence[tuple[int, int]], hints: CameraHints) -> list[np.ndarray]:
    """The starting focal lengths to try: the hint's, or one per field of view of the grid."""
    widths = np.array([w for w, _ in sizes], dtype=float)
    given = focal_hints(hints, len(sizes))
    if given is not None:
        return [given]
    fields = [hints.fov_deg] if hints.fov_deg is not None else FIELDS_OF_VIEW_DEG
    return [widths / 2 / np.tan(np.radians(fov) / 2) for fov in fields]


@dataclass(frozen=True)
class _Sample:
    observations: Observations
    tracklets: Tracklets
    index: np.ndarray
    """Each sampled observation's row in the full observations."""
    row: np.ndarray
    """Each observation's row in the sample (-1: not in it)."""


def _sample(observations: Observations, tracklets: Tracklets, num_frames: int) -> _Sample:
    frames = np.unique(np.linspace(0, num_frames - 1, _SAMPLE_FRAMES).round().astype(int))
    index = np.flatnonzero(np.isin(observations.frame, frames))
    sampled = replace(tracklets, observation_tracklet=tracklets.observation_tracklet[index])
    row = np.full(len(observations), -1)
    row[index] = np.arange(index.size)
    return _Sample(observations.take(index), sampled, index, row)


def _trial(cameras, seeds, candidates, sample: _Sample, keypoints: Keypoints, settings) -> float:
    """How well the people's keypoints agree with cameras started from ``cameras``' focal lengths, on a
    sample of frames: the mean squared robust residual after placing and adjusting (focal lengths
    free); a view left unplaced costs as much as its keypoints missing by the inlier threshold."""
    local = Keypoints(keypoints.points[sample.index], keypoints.valid[sample.index], keypoints.threshold)
    placement = place_views(
        cameras,
        [_sampled(seed, sample) for seed in seeds],
        candidates,
        sample.observations,
        local,
        settings.max_landmark_rotation_deg,
    )
    fit, _ = _refine(
        placement, sample.observations, sample.tracklets, local, replace(settings, frame_stride=1)
    )
    unplaced = len(candidates) - len(placement.placed)
    return fit.cost + unplaced * float(np.max(keypoints.threshold)) ** 2


def _sampled(pair: ViewPair, sample: _Sample) -> ViewPair:
    """A view pair's matches within the sample, in the sample's rows."""
    a, b = sample.row[pair.observations1], sample.row[pair.observations2]
    kept = (a >= 0) & (b >= 0)
    cost = None if pair.cost is None else pair.cost[kept]
    return replace(pair, observations1=a[kept], observations2=b[kept], cost=cost)


def _refine(
    placement: Placement,
    observations: Observations,
    tracklets: Tracklets,
    keypoints: Keypoints,
    settings: SelfCalibrationConfig,
) -> tuple[_Fit, Tracks]:
    """The placed views' rounds of adjustment (see the module), pairing the observations again after
    each; the last fit and tracks."""
    stride = settings.frame_stride
    fit = _bundle(placement, placement.tracks, observations, keypoints, None, 0, settings, stride)
    tracks = _repaired(fit.cameras, placement.placed, observations, keypoints, settings)
    rounds = (1, 2 + settings.refine_principal) if settings.refine_k1 else (1, 1)
    for intrinsics in rounds:
        placement.cameras = fit.cameras
        oriented = _oriented(fit.cameras, placement.placed, tracks, observations)
        confident = oriented.keypoint_confidence >= settings.min_keypoint_confidence
        full = Keypoints(oriented.keypoints2d, confident, keypoints.threshold)
        persons = tracks.persons(tracklets.observation_tracklet)
        body = (oriented.keypoint_names, persons)
        fit = _bundle(placement, tracks, observations, full, body, intrinsics, settings, stride)
        tracks = _repaired(fit.cameras, placement.placed, observations, keypoints, settings)
    return fit, tracks


def _oriented(
    cameras: BundleCameras, placed: set[int], tracks: Tracks, observations: Observations
) -> Observations:
    """Observations whose left and right labels agree across the views of their track (a detector
    labels a person seen from behind mirror-wise)."""
    V = len(cameras.focal)
    rig = rig_of(
        cameras, [(int(2 * x), int(2 * y)) for x, y in cameras.principal], [str(v) for v in range(V)]
    )
    person = np.where(np.isin(observations.view, sorted(placed)), tracks.track, -1)
    one_frame = replace(observations, frame=np.zeros_like(observations.frame))
    oriented, _ = orient_left_right(one_frame, person, rig, 1, 0.0)
    return replace(oriented, frame=observations.frame)


def _segments(names: tuple[str, ...], persons: np.ndarray, T: int, weight: float) -> tuple[np.ndarray, ...]:
    """For every track and bone of the layout: its two points (track × keypoint) and its length id
    (person × bone)."""
    index = {n: k for k, n in enumerate(names)}
    bones = np.array([(index[a], index[b]) for a, b in BONES if a in index and b in index])
    if bones.size == 0:
        return ()
    K = len(names)
    _, person = np.unique(persons, return_inverse=True)
    tracks = np.repeat(np.arange(T), len(bones))
    bone = np.tile(np.arange(len(bones)), T)
    return (
        tracks * K + bones[bone, 0],
        tracks * K + bones[bone, 1],
        person[tracks] * len(bones) + bone,
    )


def _bundle(
    placement: Placement,
    tracks: Tracks,
    observations: Observations,
    keypoints: Keypoints,
    body: tuple[tuple[str, ...], np.ndarray] | None,
    intrinsics: int,
    settings: SelfCalibrationConfig,
    stride: int,
) -> _Fit:
    """One adjustment of the placed cameras and the tracks' points (every ``stride``-th frame), with
    ``body`` = (keypoint names, each track's person) holding each person's bones constant."""
    cameras, placed = placement.cameras, placement.placed
    V = len(cameras.focal)
    X, seen = triangulate_tracks(cameras, placed, tracks, observations, keypoints.points, keypoints.valid)
    T, K = seen.shape
    rows = np.flatnonzero(
        (tracks.track >= 0) & np.isin(observations.view, sorted(placed)) & (observations.frame % stride == 0)
    )
    point = tracks.track[rows, None] * K + np.arange(K)
    use = (
        keypoints.valid[rows] & (seen.reshape(-1)[point] >= 2) & np.isfinite(X.reshape(-1, 3)[point]).all(-1)
    )
    view = np.broadcast_to(observations.view[rows, None], point.shape)[use]
    point, pixels = point[use], keypoints.points[rows][use]
    kept, point = np.unique(point, return_inverse=True)
    segments = None
    if body is not None:
        found = _segments(body[0], body[1], T, settings.bone_weight)
        if found:
            compact = np.full(T * K, -1)
            compact[kept] = np.arange(kept.size)
            first, second, length = compact[found[0]], compact[found[1]], found[2]
            both = (first >= 0) & (second >= 0)
            _, length = np.unique(length[both], return_inverse=True)
            segments = Segments(first[both], second[both], length, settings.bone_weight)
    adjusted, points, cost = adjust(
        cameras,
        X.reshape(-1, 3)[kept],
        view,
        point,
        pixels,
        settings.reprojection_scale_px,
        np.array([min(placed)]),
        intrinsics,
        settings.max_bundle_iterations,
        k1_sigma=settings.k1_prior,
        segments=segments,
        principal_sigma_px=settings.principal_prior * float(2 * cameras.principal.max()),
    )
    error = np.linalg.norm(project(adjusted, view, points[point]) - pixels, axis=1)
    inliers = np.bincount(view[error < 3 * settings.reprojection_scale_px], minlength=V)
    median = np.array([np.median(error[view == v]) if (view == v).any() else np.nan for v in range(V)])
    return _Fit(adjusted, inliers, median, cost / max(view.size, 1))


def _fundamental(cameras: BundleCameras, i: int, j: int) -> np.ndarray:
    """The fundamental matrix of views ``i`` → ``j`` (distortion ignored)."""
    K = np.zeros((2, 3, 3))
    K[:, 0, 0] = K[:, 1, 1] = cameras.focal[[i, j]]
    K[:, :2, 2] = cameras.principal[[i, j]]
    K[:, 2, 2] = 1.0
    R = cameras.R
    R_ij = R[j] @ R[i].T
    t = cameras.t[j] - R_ij @ cameras.t[i]
    cross = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    return np.linalg.inv(K[1]).T @ cross @ R_ij @ np.linalg.inv(K[0])


def _repaired(cameras, placed, observations, keypoints: Keypoints, settings) -> Tracks:
    """The tracks again, from every placed view pair's observations paired under the adjusted cameras."""
    pairs = []
    for i in sorted(placed):
        for j in sorted(placed):
            if i < j:
                F = _fundamental(cameras, i, j)
                threshold = max(keypoints.threshold[i], keypoints.threshold[j])
                a, b, cost = pair_under(
                    F,
                    i,
                    j,
                    observations,
                    keypoints.points,
                    keypoints.valid,
                    threshold,
                    settings.min_inlier_ratio,
                )
                pairs.append(ViewPair(i, j, F, a, b, int(a.size), cost))
    return Tracks.from_pairs(observations, pairs, len(cameras.focal))
