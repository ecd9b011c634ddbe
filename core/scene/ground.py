"""The ground plane fallback: a floor fitted to where people's feet touch it, textured from the views.

Without a scene network there is no point cloud, but people stand on something. The up direction is the
people's own (pelvis → head, averaged), the floor height is the most supported height of their lowest
foot points (a 1D vote, so that one person on a step or a treadmill does not tilt the plane between two
levels), and the normal is refined by a least-squares fit when the contacts span an area. The plane is
sampled on a grid around the people and coloured by the median of the views that see each point.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, UInt8

from core.geometry import project_points
from core.types import CameraRig, PersonTrack

_FOOT_JOINTS = ("left_heel", "right_heel", "left_foot_index", "right_foot_index", "left_foot", "right_foot")


@dataclass(frozen=True)
class GroundConfig:
    """How the floor is found and sampled."""

    contact_band: float = 0.05
    """Foot points within this height of their person's lowest (10th percentile) count as contacts."""
    vote_tolerance: float = 0.03
    """Contacts within this distance of a candidate floor height support it."""
    spacing: float = 0.02
    """Grid step of the sampled floor points."""
    margin: float = 1.5
    """The floor extends this far beyond the people's positions."""
    max_points: int = 250_000
    """The grid is coarsened to stay under this many points."""


@dataclass(frozen=True)
class GroundPlane:
    """n · x + d = 0 with unit normal n pointing up; plus the contacts that support it."""

    normal: Float[np.ndarray, 3]
    offset: float
    contacts: Float[np.ndarray, "M 3"]

    def height(self, points: Float[np.ndarray, "*batch 3"]) -> Float[np.ndarray, " *batch"]:
        """Signed distance above the plane."""
        return points @ self.normal + self.offset


def fit_ground(persons: Sequence[PersonTrack], config: GroundConfig) -> GroundPlane | None:
    """The floor under the people, or None when no person has feet and a head to go by."""
    ups, feet = [], []
    for person in persons:
        names = person.joint_names
        if "head" not in names or "pelvis" not in names:
            continue
        ups.append(person.joints[:, names.index("head")] - person.joints[:, names.index("pelvis")])
        feet.append(person.joints[:, [names.index(n) for n in _FOOT_JOINTS if n in names]])
    if not ups:
        return None
    up_samples = np.concatenate(ups)
    up_samples = up_samples[np.isfinite(up_samples).all(axis=1)]
    if up_samples.size == 0:
        return None
    up = up_samples.sum(axis=0)
    up /= np.linalg.norm(up)
    contacts = []
    for foot in feet:
        points = foot.reshape(-1, 3)
        points = points[np.isfinite(points).all(axis=1)]
        if points.shape[0] == 0:
            continue
        height = points @ up
        contacts.append(points[height <= np.percentile(height, 10) + config.contact_band])
    if not contacts:
        return None
    contacts = np.concatenate(contacts)
    height = contacts @ up
    ordered = np.sort(height)
    tolerance = config.vote_tolerance
    support = np.searchsorted(ordered, height + tolerance, "right") - np.searchsorted(
        ordered, height - tolerance, "left"
    )
    best = np.flatnonzero(support == support.max())
    floor = np.min(height[best])  # ties: the lower level is the floor
    inliers = contacts[np.abs(height - floor) <= config.vote_tolerance]
    normal = _refined_normal(inliers, up)
    offset = -float(np.median(inliers @ normal))
    return GroundPlane(normal=normal, offset=offset, contacts=inliers)


def _refined_normal(points: Float[np.ndarray, "M 3"], up: Float[np.ndarray, 3]) -> Float[np.ndarray, 3]:
    """The least-squares plane normal of the contacts when they span an area (not a line) and it stays
    within 20° of the people's up; else the people's up."""
    if points.shape[0] < 10:
        return up
    _, singular, vt = np.linalg.svd(points - points.mean(axis=0), full_matrices=False)
    spread = singular / np.sqrt(points.shape[0])
    normal = vt[2] * np.sign(vt[2] @ up)
    if spread[1] < 0.2 or normal @ up < np.cos(np.radians(20)):
        return up
    return normal


def sample_ground(
    plane: GroundPlane,
    around: Float[np.ndarray, "P 3"],
    cameras: CameraRig,
    images: Sequence[Sequence[UInt8[np.ndarray, "H W 3"]]],
    config: GroundConfig,
) -> tuple[Float[np.ndarray, "N 3"], UInt8[np.ndarray, "N 3"]]:
    """Floor points on a grid covering ``around`` (people's positions) plus a margin, coloured by the
    per-channel median over every view and image (``images[v]``: a few frames of view v) that sees them;
    points no view sees are left out."""
    normal = plane.normal
    helper = np.eye(3)[np.argmin(np.abs(normal))]
    u = np.cross(normal, helper)
    u /= np.linalg.norm(u)
    w = np.cross(normal, u)
    origin = -plane.offset * normal
    coords = (around - origin) @ np.stack([u, w], axis=1)  # (P, 2)
    low, high = coords.min(axis=0) - config.margin, coords.max(axis=0) + config.margin
    spacing = max(config.spacing, float(np.sqrt(np.prod(high - low) / config.max_points)))
    a, b = np.meshgrid(np.arange(low[0], high[0], spacing), np.arange(low[1], high[1], spacing))
    points = origin + a.reshape(-1, 1) * u + b.reshape(-1, 1) * w
    samples = []
    for view in range(len(cameras)):
        camera = cameras.cameras[view]
        pixels = project_points(points, camera.K, camera.dist, camera.R, camera.t)
        inside = np.isfinite(pixels).all(axis=1)
        pixels = np.where(inside[:, None], pixels, -1.0)  # behind the camera: never inside
        col, row = np.round(pixels[:, 0]).astype(np.int64), np.round(pixels[:, 1]).astype(np.int64)
        inside &= (col >= 0) & (col < camera.width) & (row >= 0) & (row < camera.height)
        for image in images[view]:
            colour = np.full((points.shape[0], 3), np.nan)
            colour[inside] = image[row[inside], col[inside]]
            samples.append(colour)
    if not samples:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: points no view sees
        colours = np.nanmedian(np.stack(samples), axis=0)
    seen = np.isfinite(colours).all(axis=1)
    return points[seen], colours[seen].astype(np.uint8)
