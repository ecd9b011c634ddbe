"""The self-calibrated rig put in a metric world: the people's size gives the scale, their standing
direction and feet the up axis and the floor (z = 0), their mean place the origin.

Every quantity is measured on the midline points (midpoints of left/right keypoint pairs), which both
BlazePose's landmarks and a body model's joints have, so the same code serves every detector.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float, Int

from core.cameras.config import CameraHints
from core.cameras.pairs import midline_keypoints, midline_names
from core.cameras.tracks import Tracks
from core.geometry import camera_centers
from core.skeleton import JOINT_NAMES
from core.types import Camera, CameraRig, Observations

SEGMENTS = (
    ("hip", "knee"),
    ("knee", "ankle"),
    ("hip", "shoulder"),
    ("shoulder", "elbow"),
    ("elbow", "wrist"),
)
"""Body segments between midline points whose length the people's 3D landmarks give in metres."""
STATURE_PER_CHAIN = 1.135
"""Standing height over the ankle–knee–hip–shoulder–head chain of midline points (an adult's ankle
height and the skull above the ears)."""
ANKLE_HEIGHT_M = 0.08
"""How far the ankles' midpoint is above the floor when a foot is on it."""


def _lengths(points: np.ndarray, names: tuple[str, ...], segments) -> np.ndarray:
    """Lengths of ``segments`` (pairs of midline names) of (..., M, 3) points, NaN where absent."""
    index = {n: k for k, n in enumerate(names)}
    out = [
        np.linalg.norm(points[..., index[a], :] - points[..., index[b], :], axis=-1)
        if a in index and b in index
        else np.full(points.shape[:-2], np.nan)
        for a, b in segments
    ]
    return np.stack(out, axis=-1)


def metric_world(
    rig: CameraRig,
    placed: set[int],
    observations: Observations,
    tracks: Int[np.ndarray, " N"],
    tracklet: Int[np.ndarray, " N"],
    X: Float[np.ndarray, "T M 3"],
    seen: Int[np.ndarray, "T M"],
    hints: CameraHints,
) -> tuple[CameraRig, str, tuple[str, ...]]:
    """``rig`` moved by the similarity that makes the people metric, upright and standing on z = 0."""
    names = midline_names(observations.keypoint_names)
    X = np.where((seen >= 2)[..., None], X, np.nan)
    count = X.shape[0]
    scale, scale_from = _scale(observations, tracks, tracklet, X, names, count, hints)
    X = X * scale
    up = _up(X, names)
    rotation = _rotation_to_z(up)
    X = X @ rotation.T
    index = {n: k for k, n in enumerate(names)}
    floor = np.nanpercentile(X[:, index["ankle"], 2], 5) - ANKLE_HEIGHT_M
    origin = np.array([*np.nanmedian(X[:, index["hip"], :2], axis=0), floor])
    cameras = []
    for camera in rig.cameras:
        R = camera.R @ rotation.T
        cameras.append(
            Camera(
                camera.name,
                camera.K,
                camera.dist,
                R,
                scale * camera.t + R @ origin,
                camera.width,
                camera.height,
            )
        )
    moved = CameraRig(tuple(cameras))
    messages = ()
    centres = camera_centers(moved.R, moved.t)[sorted(placed)]
    if (centres[:, 2] < 0).any():
        messages = ("a camera was placed below the floor: the people's standing direction is unclear",)
    return moved, scale_from, messages


def _scale(observations, tracks, tracklet, X, names, count, hints) -> tuple[float, str]:
    """Metres per rig unit: from a given height (the tallest person's), else the body priors."""
    rows = np.flatnonzero(tracks >= 0)
    if hints.height_m is not None:
        top = "ear" if "ear" in names else "head"
        chain = np.nansum(
            _lengths(X, names, (("ankle", "knee"), ("knee", "hip"), ("hip", "shoulder"), ("shoulder", top))),
            axis=-1,
        )
        person = Tracks(tracks, count).persons(tracklet)
        heights = {
            p: np.nanmedian(chain[person == p]) for p in np.unique(person) if (person == p).sum() >= 10
        }
        if heights:
            tallest = max(heights.values()) * STATURE_PER_CHAIN
            return hints.height_m / tallest, f"a height of {hints.height_m:.2f} m (the tallest person)"
    canonical, _ = midline_keypoints(
        observations.canonical_pose[rows], np.ones(observations.canonical_pose[rows].shape[:2]), JOINT_NAMES
    )
    metric = _lengths(canonical, midline_names(JOINT_NAMES), SEGMENTS)  # per observation
    measured = _lengths(X, names, SEGMENTS)[tracks[rows]]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = metric / measured
    ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
    if ratio.size == 0:
        return 1.0, "none: no body segment was triangulated"
    return float(np.median(ratio)), "body priors"


def _up(X: Float[np.ndarray, "T M 3"], names: tuple[str, ...]) -> np.ndarray:
    """The people's standing direction: the median of their trunks' directions, hips to shoulders (the
    median, not the mean, so that bending and mis-triangulated frames count little; the trunk, not the
    legs, which swing when walking). Under the Pose2Sim demo's own calibration it is 2.3° from the
    vertical (the mean 10.9°, the legs' median 3.0°, a plane through the ankles worse still: the people
    walk along one line); on the synthetic walkers 0.7°."""
    index = {n: k for k, n in enumerate(names)}
    axis = X[:, index["shoulder"]] - X[:, index["hip"]]
    axis = axis[np.isfinite(axis).all(-1)]
    standing = np.median(axis / np.linalg.norm(axis, axis=-1, keepdims=True), axis=0)
    return standing / np.linalg.norm(standing)


def _rotation_to_z(up: np.ndarray) -> np.ndarray:
    """The smallest rotation taking ``up`` onto +z."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(up, z)
    s, c = np.linalg.norm(axis), float(up @ z)
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    k = axis / s
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * cross + (1 - c) * cross @ cross
