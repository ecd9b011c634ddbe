"""Geometry-driven recall: a person the other views place in 3D, looked for again in a view that missed them.

BlazePose's detector finds people by their faces, so it misses people turned away, seen from above, or
whose face the frame cuts, although its landmark model reads such bodies well once shown where they are.
The fused persons say where that is: each person's joints, projected into a view that did not see them
at a frame where enough other views did, give the region the landmark model runs on. What it reads is
kept only where it lands on the projection (the same person, not a neighbour or the floor) and is not
someone the view already detected.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Bool, Float, Int

from core.geometry import project_points
from core.keypoints import BLAZEPOSE_NAMES
from core.perception.config import RecallConfig
from core.perception.landmarker import Landmarks
from core.perception.roi import Regions
from core.types import CameraRig, Observations, PersonTrack

_HIPS = [BLAZEPOSE_NAMES.index("left_hip"), BLAZEPOSE_NAMES.index("right_hip")]
_SHOULDERS = [BLAZEPOSE_NAMES.index("left_shoulder"), BLAZEPOSE_NAMES.index("right_shoulder")]
_TORSO = [*_HIPS, *_SHOULDERS]
_J = len(BLAZEPOSE_NAMES)
_SAME_TORSO = 0.25
"""A recalled person whose shoulders and hips lie this close (in body heights) to a detection's is that
detection's person read differently, whose limbs may disagree (the detection may be mis-assigned, which
world tracking corrects; a second copy would split the person): recall only adds people a view has no
detection of. Two people's torsos, even overlapping in the image, lie further apart."""


@dataclass(frozen=True)
class RecallRequests:
    """Where to look again: one region per (person, view, frame) the view missed."""

    person: Int[np.ndarray, " Q"]
    view: Int[np.ndarray, " Q"]
    frame: Int[np.ndarray, " Q"]
    center: Float[np.ndarray, "Q 2"]
    side: Float[np.ndarray, " Q"]
    up: Float[np.ndarray, "Q 2"]
    """The regions' centre, side and up direction (:class:`~core.perception.roi.Regions`)."""
    expected: Float[np.ndarray, "Q 33 2"]
    """The person's landmarks projected into the view (OpenCV pixel centres); NaN where not projected."""

    def __len__(self) -> int:
        return int(self.person.shape[0])

    @property
    def regions(self) -> Regions:
        return Regions(self.center, self.side, self.up)

    def take(self, index: Int[np.ndarray, " M"] | Bool[np.ndarray, " Q"]) -> RecallRequests:
        return RecallRequests(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})

    @staticmethod
    def concatenate(parts: Sequence[RecallRequests]) -> RecallRequests:
        """The requests of ``parts`` in order; none where there are no parts."""
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return RecallRequests(
                empty, empty, empty, np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2)), np.zeros((0, _J, 2))
            )
        fields = dataclasses.fields(RecallRequests)
        return RecallRequests(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields})


def recall_requests(
    persons: Sequence[PersonTrack], cameras: CameraRig, config: RecallConfig, region_scale: float
) -> RecallRequests:
    """The regions where each person should be in the views that missed them, at frames where at least
    ``config.min_views`` views saw them and enough of their projected body is inside the image."""
    parts = [_person_requests(p, cameras, config, region_scale) for p in persons]
    return RecallRequests.concatenate([p for p in parts if p is not None])


def _person_requests(
    person: PersonTrack, cameras: CameraRig, config: RecallConfig, region_scale: float
) -> RecallRequests | None:
    if not set(BLAZEPOSE_NAMES) <= set(person.joint_names):
        return None
    order = [person.joint_names.index(name) for name in BLAZEPOSE_NAMES]
    placed = person.views.sum(axis=1) >= config.min_views  # (F,)
    missing = placed[:, None] & ~person.views  # (F, V)
    frame_at, view = np.nonzero(missing)
    if not len(view):
        return None
    joints = person.joints[frame_at][:, order]  # (Q, 33, 3)
    expected = project_points(joints, cameras.K[view], cameras.dist[view], cameras.R[view], cameras.t[view])
    size = np.array([[c.width, c.height] for c in cameras.cameras], dtype=float)[view]
    inside = np.all((expected >= 0) & (expected <= size[:, None] - 1), axis=-1)  # NaN (behind) is outside
    hips = expected[:, _HIPS].mean(axis=1)
    shoulders = expected[:, _SHOULDERS].mean(axis=1)
    keep = (inside.mean(axis=1) >= config.min_inside) & inside[:, _HIPS].all(axis=1)
    keep &= np.isfinite(shoulders).all(axis=1)
    if not keep.any():
        return None
    expected, hips, shoulders = expected[keep], hips[keep], shoulders[keep]
    up = shoulders - hips
    up /= np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-9)
    reach = np.nanmax(np.linalg.norm(expected - hips[:, None], axis=-1), axis=1)
    return RecallRequests(
        np.full(int(keep.sum()), person.person_id),
        view[keep],
        person.frames[frame_at[keep]],
        center=hips + 0.5,  # the landmark model's pixel convention
        side=2 * reach * region_scale,
        up=up,
        expected=expected,
    )


def image_height(points: Float[np.ndarray, "R K 2"]) -> Float[np.ndarray, " R"]:
    """A body's size in the image: the larger side of its landmarks' bounding box (NaN ignored)."""
    return np.maximum(np.nanmax(points, axis=1) - np.nanmin(points, axis=1), 1e-6).max(axis=-1)


def kept_recalls(
    found: Landmarks,
    requests: RecallRequests,
    detected: Observations,
    min_presence: float,
    gate: float,
    duplicate_distance: float,
) -> Bool[np.ndarray, " Q"]:
    """Which recalled people to keep: present, on the projection, and neither someone ``detected`` in the
    same view and frame nor a weaker copy of another recall there (two persons projected onto one)."""
    points = found.image - 0.5  # OpenCV pixel centres, as observations hold them
    height = image_height(requests.expected)
    readable = (found.visibility > 0.5) & np.isfinite(requests.expected).all(axis=-1)
    gap = np.where(readable, np.linalg.norm(points - requests.expected, axis=-1), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a read with no readable landmark: NaN
        on_projection = np.nanmedian(gap, axis=1) < gate * height  # NaN compares False
    keep = (found.presence >= min_presence) & on_projection
    base = max(int(detected.view.max(initial=0)), int(requests.view.max(initial=0))) + 1
    key = requests.frame * base + requests.view
    detected_key = detected.frame * base + detected.view
    by_key = np.argsort(detected_key, kind="stable")
    low, high = (np.searchsorted(detected_key[by_key], key, side) for side in ("left", "right"))
    for q in np.flatnonzero(keep & (high > low)):  # one pass per candidate, against the few of its image
        same = detected.keypoints2d[by_key[low[q] : high[q]]]
        overlaps = _overlap(points[q], same, height[q], duplicate_distance)
        if (overlaps | _same_torso(points[q], same, height[q])).any():
            keep[q] = False
    kept = np.flatnonzero(keep)
    kept = kept[np.lexsort((-found.presence[kept], key[kept]))]  # by image, strongest first
    for group in np.split(kept, np.flatnonzero(np.diff(key[kept])) + 1):
        for i in range(1, len(group)):
            stronger = group[:i][keep[group[:i]]]
            if _overlap(points[group[i]], points[stronger], height[group[i]], duplicate_distance).any():
                keep[group[i]] = False
    return keep


def _same_torso(
    points: Float[np.ndarray, "33 2"], others: Float[np.ndarray, "M 33 2"], height: float
) -> Bool[np.ndarray, " M"]:
    """Which of ``others`` have their shoulders and hips where ``points`` has them (within
    ``_SAME_TORSO`` body heights on average): the same person, whatever the limbs."""
    gap = np.linalg.norm(others[:, _TORSO] - points[_TORSO], axis=-1).mean(axis=1)
    return gap < _SAME_TORSO * height


def _overlap(
    points: Float[np.ndarray, "33 2"], others: Float[np.ndarray, "M 33 2"], height: float, distance: float
) -> Bool[np.ndarray, " M"]:
    """Which of ``others`` half of whose landmarks lie within ``distance`` body heights of ``points``."""
    return (np.linalg.norm(others - points, axis=-1) < distance * height).mean(axis=1) >= 0.5
