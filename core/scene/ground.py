"""The ground plane fallback: a floor fitted to where people's feet touch it, textured from the views.

Without a scene network there is no point cloud, but people stand on something. With a calibration the
world's up is known (+z) and is the floor's normal: only its height is fitted. Without one, up is the
people's own (pelvis → head, averaged: a guess that a bending person tilts, hence used only then), refined
by a least-squares fit when the contacts span an area. Either way the height is the most supported height
of the people's lowest foot points (a 1D vote, so that one person on a step or a mis-triangulated foot
does not move the plane between two levels). The plane is sampled on a grid around the people and coloured
by the median, over frames spread over the clip and every view, of the samples no person stands in front of.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Bool, Float, Int, UInt8

from core.geometry import project_points
from core.types import Camera, CameraRig, PersonTrack

_FOOT_JOINTS = ("left_heel", "right_heel", "left_foot_index", "right_foot_index", "left_foot", "right_foot")

WORLD_UP = np.array([0.0, 0.0, 1.0])
"""The studio's world convention, exact in a calibrated world: +z is up."""

_UNSEEN_GREY = 128
"""Colour of floor points seen only behind people when no floor point is seen bare at all."""

_MEDIAN_CHUNK = 1 << 16
"""Floor points whose samples are sorted at once (bounds the median's memory)."""


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
    texture_frames: int = 20
    """The floor's colour is the median over this many frames spread over the clip."""
    limb_width: float = 0.15
    """People are masked out of the floor's colour as bands along their limbs this thick, as a fraction
    of each person's extent in the image (generous: clothes, shadows, keypoint errors)."""


@dataclass(frozen=True)
class GroundPlane:
    """n · x + d = 0 with unit normal n pointing up; plus the contacts that support it."""

    normal: Float[np.ndarray, 3]
    offset: float
    contacts: Float[np.ndarray, "M 3"]

    def height(self, points: Float[np.ndarray, "*batch 3"]) -> Float[np.ndarray, " *batch"]:
        """Signed distance above the plane."""
        return points @ self.normal + self.offset


@dataclass(frozen=True)
class TextureFrame:
    """One synchronized frame of every view, and where the people are in it."""

    images: Sequence[UInt8[np.ndarray, "H W 3"]]
    """One image per view."""
    people: Sequence[Bool[np.ndarray, "H W"]]
    """Per view, where people are in that image (not floor)."""


def fit_ground(
    persons: Sequence[PersonTrack], config: GroundConfig, up: Float[np.ndarray, 3] | None = None
) -> GroundPlane | None:
    """The floor under the people, or None when no person has feet (or, with ``up`` unknown, none has a
    head and pelvis to estimate it from).

    Args:
        persons: The people, whose lowest foot points are the floor contacts.
        config: Contact band and vote tolerance.
        up: The world's up when known (``WORLD_UP`` in a calibrated world): the normal is then exactly
            ``up`` and only the height is fitted. None: estimated from the people.
    """
    known = up is not None
    up = _people_up(persons) if up is None else np.asarray(up, dtype=float) / np.linalg.norm(up)
    if up is None:
        return None
    contacts = _lowest_foot_points(persons, up, config.contact_band)
    if contacts.shape[0] == 0:
        return None
    height = contacts @ up
    ordered = np.sort(height)
    tolerance = config.vote_tolerance
    support = np.searchsorted(ordered, height + tolerance, "right") - np.searchsorted(
        ordered, height - tolerance, "left"
    )
    best = np.flatnonzero(support == support.max())
    floor = np.min(height[best])  # ties: the lower level is the floor
    inliers = contacts[np.abs(height - floor) <= config.vote_tolerance]
    normal = up if known else _refined_normal(inliers, up)
    offset = -float(np.median(inliers @ normal))
    return GroundPlane(normal=normal, offset=offset, contacts=inliers)


def _people_up(persons: Sequence[PersonTrack]) -> Float[np.ndarray, 3] | None:
    """The pelvis → head direction summed over people and frames; None without a head and pelvis."""
    ups = [
        p.joints[:, p.joint_names.index("head")] - p.joints[:, p.joint_names.index("pelvis")]
        for p in persons
        if "head" in p.joint_names and "pelvis" in p.joint_names
    ]
    samples = np.concatenate(ups) if ups else np.zeros((0, 3))
    samples = samples[np.isfinite(samples).all(axis=1)]
    if samples.size == 0:
        return None
    up = samples.sum(axis=0)
    return up / np.linalg.norm(up)


def _lowest_foot_points(
    persons: Sequence[PersonTrack], up: Float[np.ndarray, 3], band: float
) -> Float[np.ndarray, "M 3"]:
    """Each person's foot points within ``band`` of their own 10th-percentile height along ``up``."""
    contacts = [np.zeros((0, 3))]
    for person in persons:
        names = person.joint_names
        points = person.joints[:, [names.index(n) for n in _FOOT_JOINTS if n in names]].reshape(-1, 3)
        points = points[np.isfinite(points).all(axis=1)]
        if points.shape[0] == 0:
            continue
        height = points @ up
        contacts.append(points[height <= np.percentile(height, 10) + band])
    return np.concatenate(contacts)


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
    frames: Iterable[TextureFrame],
    config: GroundConfig,
) -> tuple[Float[np.ndarray, "N 3"], UInt8[np.ndarray, "N 3"]]:
    """Floor points on a grid covering ``around`` (people's positions) plus a margin, coloured by the
    per-channel median over every view and frame that sees them where no person is. Points seen only
    behind people get the median colour of the others; points no view sees are left out. ``frames`` is
    consumed one at a time: only the floor's pixels are kept."""
    points = _grid(plane, around, config)
    pixels = [_floor_pixels(points, camera) for camera in cameras.cameras]
    seen = np.any([inside for _, _, inside in pixels], axis=0)
    points = points[seen]
    pixels = [(col[seen], row[seen], inside[seen]) for col, row, inside in pixels]
    samples, bare = [], []
    for frame in frames:
        for (col, row, inside), image, people in zip(pixels, frame.images, frame.people, strict=True):
            samples.append(image[row, col])
            bare.append(inside & ~people[row, col])
    if not samples:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.uint8)
    colours, found = _masked_median(samples, bare)
    fill = np.median(colours[found], axis=0) if found.any() else np.full(3, _UNSEEN_GREY)
    colours[~found] = fill.astype(np.uint8)
    return points, colours


def _grid(
    plane: GroundPlane, around: Float[np.ndarray, "P 3"], config: GroundConfig
) -> Float[np.ndarray, "N 3"]:
    """Points of the plane on a square grid over the box of ``around`` grown by the margin."""
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
    return origin + a.reshape(-1, 1) * u + b.reshape(-1, 1) * w


def _floor_pixels(
    points: Float[np.ndarray, "N 3"], camera: Camera
) -> tuple[Int[np.ndarray, " N"], Int[np.ndarray, " N"], Bool[np.ndarray, " N"]]:
    """Column, row (0 where not inside) and whether each point projects inside the image."""
    pixels = project_points(points, camera.K, camera.dist, camera.R, camera.t)
    inside = np.isfinite(pixels).all(axis=1)
    pixels = np.where(inside[:, None], pixels, -1.0)  # behind the camera: never inside
    pixels = np.clip(pixels, -1.0, max(camera.width, camera.height))  # far off-axis: huge after distortion
    col, row = np.round(pixels[:, 0]).astype(np.int64), np.round(pixels[:, 1]).astype(np.int64)
    inside &= (col >= 0) & (col < camera.width) & (row >= 0) & (row < camera.height)
    return np.where(inside, col, 0), np.where(inside, row, 0), inside


def _masked_median(
    samples: Sequence[UInt8[np.ndarray, "N 3"]], valid: Sequence[Bool[np.ndarray, " N"]]
) -> tuple[UInt8[np.ndarray, "N 3"], Bool[np.ndarray, " N"]]:
    """Per point and channel, the median of the valid samples (the two middle ones averaged, rounded
    down), and whether the point has any."""
    count = samples[0].shape[0]
    colours = np.zeros((count, 3), dtype=np.uint8)
    found = np.zeros(count, dtype=bool)
    for start in range(0, count, _MEDIAN_CHUNK):
        chunk = slice(start, start + _MEDIAN_CHUNK)
        values = np.stack([s[chunk] for s in samples]).astype(np.uint16)  # (K, n, 3)
        ok = np.stack([v[chunk] for v in valid])  # (K, n)
        values[~ok] = 256  # sorts after every colour
        values.sort(axis=0)
        k = ok.sum(axis=0)[None, :, None]
        lower = np.take_along_axis(values, np.maximum(k - 1, 0) // 2, axis=0)
        upper = np.take_along_axis(values, k // 2, axis=0)
        colours[chunk] = np.where(k > 0, (lower + upper) // 2, 0)[0]
        found[chunk] = k[0, :, 0] > 0
    return colours, found
