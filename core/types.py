"""The data model shared by the engine, the studio and the UI (see DESIGN.md, "Data model").

Per-observation data is stored column-wise (struct of arrays): a scene has tens of thousands of
observations and every stage works on all of them at once, so one Python object per detection would
make the engine loop in Python. Row ``i`` of every array of :class:`Observations` is one person seen in
one view at one frame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Bool, Float, Int

from core.geometry import camera_centers

BODY_POSE_JOINTS = 21
"""SMPL-X body pose: 21 joints below the pelvis, axis-angle, parent-relative."""


@dataclass(frozen=True)
class Camera:
    """A pinhole camera with OpenCV distortion; world metres, z up; camera frame OpenCV."""

    name: str
    K: Float[np.ndarray, "3 3"]
    """Intrinsics in pixels."""
    dist: Float[np.ndarray, 5]
    """OpenCV distortion (k1, k2, p1, p2, k3)."""
    R: Float[np.ndarray, "3 3"]
    """Rotation world→camera: ``X_cam = R @ X_world + t``."""
    t: Float[np.ndarray, 3]
    """Translation world→camera, in world units."""
    width: int
    height: int

    @property
    def center(self) -> Float[np.ndarray, 3]:
        """Camera centre in the world frame."""
        return camera_centers(self.R, self.t)


@dataclass(frozen=True)
class CameraRig:
    """The V cameras of a scene, with their parameters stacked for batched geometry."""

    cameras: tuple[Camera, ...]

    def __len__(self) -> int:
        return len(self.cameras)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cameras)

    @property
    def K(self) -> Float[np.ndarray, "V 3 3"]:
        return np.stack([c.K for c in self.cameras]) if self.cameras else np.zeros((0, 3, 3))

    @property
    def dist(self) -> Float[np.ndarray, "V 5"]:
        return np.stack([c.dist for c in self.cameras]) if self.cameras else np.zeros((0, 5))

    @property
    def R(self) -> Float[np.ndarray, "V 3 3"]:
        return np.stack([c.R for c in self.cameras]) if self.cameras else np.zeros((0, 3, 3))

    @property
    def t(self) -> Float[np.ndarray, "V 3"]:
        return np.stack([c.t for c in self.cameras]) if self.cameras else np.zeros((0, 3))

    @property
    def centers(self) -> Float[np.ndarray, "V 3"]:
        return camera_centers(self.R, self.t)

    def scaled(self, factor: float) -> CameraRig:
        """The same rig in a world scaled by ``factor`` about its origin (rotations unchanged)."""
        return CameraRig(tuple(dataclasses.replace(c, t=c.t * factor) for c in self.cameras))


@dataclass(frozen=True)
class Observations:
    """All per-view, per-frame person estimates of a scene; row ``i`` is one detection.

    Everything a human prior network (or the embedded detector) says about one person in one image:
    2D evidence in pixels, and 3D estimates in that view's camera frame, in scene units.
    """

    view: Int[np.ndarray, " N"]
    frame: Int[np.ndarray, " N"]
    score: Float[np.ndarray, " N"]
    """Detection confidence in [0, 1]; also the fusion weight."""
    bbox: Float[np.ndarray, "N 4"]
    """x0, y0, x1, y1 in pixels."""
    keypoints2d: Float[np.ndarray, "N K 2"]
    """2D keypoints in pixels, named by ``keypoint_names``."""
    keypoint_confidence: Float[np.ndarray, "N K"]
    head2d: Float[np.ndarray, "N 2"]
    """Head anchor in pixels (used by the head–pelvis scale adjustment)."""
    pelvis2d: Float[np.ndarray, "N 2"]
    """Pelvis anchor in pixels (the ray that triangulates the person's position)."""
    position_cam: Float[np.ndarray, "N 3"]
    """Estimated pelvis position in the camera frame, in scene units."""
    global_orient_cam: Float[np.ndarray, "N 3"]
    """Body orientation in the camera frame, axis-angle (SMPL-X convention)."""
    body_pose: Float[np.ndarray, "N 21 3"]
    """SMPL-X-layout body pose, parent-relative axis-angle (view-invariant)."""
    shape: Float[np.ndarray, "N B"]
    """Body shape coefficients of ``shape_model`` (view-invariant)."""
    canonical_pose: Float[np.ndarray, "N 22 3"]
    """Root-relative 3D joints in the SMPL-X canonical body frame, metres, in the order of
    ``core.skeleton.JOINT_NAMES`` (view-invariant; used by association and the first scale estimate)."""
    embedding: Float[np.ndarray, "N D"]
    """Appearance embedding for per-view tracking."""
    keypoint_names: tuple[str, ...] = ()
    shape_model: str = "skeleton"

    def __len__(self) -> int:
        return int(self.view.shape[0])

    @property
    def bare_keypoints(self) -> bool:
        """No body model behind these estimates (``shape_model == "none"``, e.g. BlazePose's landmarks):
        a person's joints come from triangulating the keypoints, not from averaged body parameters."""
        return self.shape_model == "none"

    def take(self, index: Int[np.ndarray, " M"] | Bool[np.ndarray, " N"]) -> Observations:
        """The observations selected by an index or mask, every array sliced alike."""
        arrays = {
            f.name: getattr(self, f.name)[index]
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }
        return dataclasses.replace(self, **arrays)


@dataclass(frozen=True)
class Tracklets:
    """Per-view tracks: which observations are the same person within one view over time.

    Tracklet ids are indices into the per-tracklet arrays and are unique over all views.
    """

    observation_tracklet: Int[np.ndarray, " N"]
    """Tracklet of each observation; -1 for observations left out (too short a track)."""
    view: Int[np.ndarray, " K"]
    first_frame: Int[np.ndarray, " K"]
    last_frame: Int[np.ndarray, " K"]
    length: Int[np.ndarray, " K"]
    """Number of observations in the tracklet."""

    def __len__(self) -> int:
        return int(self.view.shape[0])

    @staticmethod
    def from_labels(
        labels: Int[np.ndarray, " N"], view: Int[np.ndarray, " N"], frame: Int[np.ndarray, " N"]
    ) -> Tracklets:
        """Build tracklets from arbitrary per-observation labels (-1 = none), relabelled 0..K-1.

        Ids are ordered by (view, first frame) so that they are stable for a given tracking result.
        """
        valid = labels >= 0
        unique, inverse = np.unique(labels[valid], return_inverse=True)
        count = unique.shape[0]
        first = np.full(count, np.iinfo(np.int64).max)
        last = np.full(count, -1)
        np.minimum.at(first, inverse, frame[valid])
        np.maximum.at(last, inverse, frame[valid])
        track_view = np.zeros(count, dtype=np.int64)
        track_view[inverse] = view[valid]
        order = np.lexsort((first, track_view))
        rank = np.empty(count, dtype=np.int64)
        rank[order] = np.arange(count)
        relabelled = np.full(labels.shape, -1, dtype=np.int64)
        relabelled[valid] = rank[inverse]
        return Tracklets(
            observation_tracklet=relabelled,
            view=track_view[order],
            first_frame=first[order],
            last_frame=last[order],
            length=np.bincount(rank[inverse], minlength=count).astype(np.int64),
        )


@dataclass(frozen=True)
class Assignment:
    """Which person each (view, tracklet, frame range) belongs to. This is what an annotator edits."""

    view: Int[np.ndarray, " A"]
    tracklet: Int[np.ndarray, " A"]
    frame_start: Int[np.ndarray, " A"]
    """First frame of the piece, inclusive."""
    frame_end: Int[np.ndarray, " A"]
    """Last frame of the piece, inclusive."""
    person: Int[np.ndarray, " A"]

    def __len__(self) -> int:
        return int(self.view.shape[0])

    @staticmethod
    def from_tracklet_persons(tracklets: Tracklets, person: Int[np.ndarray, " K"]) -> Assignment:
        """One piece per assigned tracklet, spanning the whole tracklet."""
        keep = person >= 0
        return Assignment(
            view=tracklets.view[keep],
            tracklet=np.flatnonzero(keep),
            frame_start=tracklets.first_frame[keep],
            frame_end=tracklets.last_frame[keep],
            person=person[keep],
        )

    def person_of(
        self, tracklet: Int[np.ndarray, " N"], frame: Int[np.ndarray, " N"]
    ) -> Int[np.ndarray, " N"]:
        """Person of each (tracklet, frame); -1 where no piece covers it. Vectorised lookup."""
        if len(self) == 0:
            return np.full(tracklet.shape, -1, dtype=np.int64)
        order = np.lexsort((self.frame_start, self.tracklet))
        keys = self.tracklet[order] * (1 << 32) + self.frame_start[order]
        query = tracklet.astype(np.int64) * (1 << 32) + frame
        row = np.searchsorted(keys, query, side="right") - 1  # last piece starting at or before the query
        row_ok = row >= 0
        row = np.maximum(row, 0)
        hit = (
            row_ok
            & (tracklet >= 0)
            & (self.tracklet[order][row] == tracklet)
            & (self.frame_end[order][row] >= frame)
        )
        return np.where(hit, self.person[order][row], -1).astype(np.int64)


@dataclass(frozen=True)
class PersonTrack:
    """One real person over the frames where at least one view saw them, in the world frame."""

    person_id: int
    frames: Int[np.ndarray, " F"]
    global_orient: Float[np.ndarray, "F 3"]
    """World-frame body orientation, axis-angle (SMPL-X convention: canonical body is y-up)."""
    transl: Float[np.ndarray, "F 3"]
    """World-frame translation in metres, in the semantics of ``shape_model``: the pelvis position for
    the skeleton, bare keypoints (``none``) and Anny; SMPL-X's own ``transl`` for ``smplx`` (its pelvis
    is at J₀(β) + transl)."""
    body_pose: Float[np.ndarray, "F 21 3"]
    shape: Float[np.ndarray, " B"]
    joints: Float[np.ndarray, "F J 3"]
    """World-frame 3D joints, metres, named by ``joint_names``."""
    joint_views: Int[np.ndarray, "F J"]
    """Views each joint stands on: 2 or more where triangulated, 1 where placed on one view's ray, 0
    where guessed (no confident view, or an implausible limb); the body fit trusts them accordingly."""
    residuals_px: Float[np.ndarray, "F V"]
    """Mean 2D keypoint reprojection error per view in pixels; NaN where the view did not see the person."""
    confidence: Float[np.ndarray, " F"]
    views: Bool[np.ndarray, "F V"]
    """Which views contributed to each frame."""
    shape_model: str = "skeleton"
    joint_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class JointRejections:
    """Fused joint positions rejected as faster than a human joint (``core.engine.joint_speed``), one
    row each."""

    person: Int[np.ndarray, " R"] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    frame: Int[np.ndarray, " R"] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    joint: Int[np.ndarray, " R"] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Index into the person's ``joint_names``."""
    speed: Float[np.ndarray, " R"] = field(default_factory=lambda: np.zeros(0))
    """Metres per second of the jump off the joint's accepted positions."""

    def __len__(self) -> int:
        return int(self.person.shape[0])

    def take(self, index: Int[np.ndarray, " M"] | Bool[np.ndarray, " R"]) -> JointRejections:
        return JointRejections(self.person[index], self.frame[index], self.joint[index], self.speed[index])

    @staticmethod
    def concatenate(parts: Sequence[JointRejections]) -> JointRejections:
        return JointRejections(
            *(
                np.concatenate([getattr(part, name) for part in parts])
                for name in ("person", "frame", "joint", "speed")
            )
        )


@dataclass(frozen=True)
class Diagnostics:
    """What a researcher needs to see why a case failed."""

    stage_seconds: dict[str, float] = field(default_factory=dict)
    scale_factor: float = 1.0
    """Factor applied to the scene and the human translations by the scale adjustment."""
    scale_samples: Float[np.ndarray, " S"] = field(default_factory=lambda: np.zeros(0))
    """Per-sample head–pelvis ratios ℓ_smpl / ℓ_img of the first scale iteration."""
    scale_sample_person: Int[np.ndarray, " S"] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    scale_sample_frame: Int[np.ndarray, " S"] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    scale_sample_view: Int[np.ndarray, " S"] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    scale_sample_inlier: Bool[np.ndarray, " S"] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    association_cost: Float[np.ndarray, "K K"] = field(default_factory=lambda: np.zeros((0, 0)))
    """Mean cost between tracklets over their shared frames (inf where not comparable)."""
    association_shared_frames: Int[np.ndarray, "K K"] = field(
        default_factory=lambda: np.zeros((0, 0), dtype=np.int64)
    )
    mirrored_observations: Int[np.ndarray, " M"] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Observations whose left and right keypoints fusion exchanged to agree with the other views."""
    rejected_joints: JointRejections = field(default_factory=JointRejections)
    dropped_observations: int = 0
    """Observations removed on input because an essential field was not finite."""
    sync_offsets: Int[np.ndarray, " V"] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Each view's frame offset against the first (the instant at its frame t is at frame t + offset of
    the view), where the views were put in step; empty where they were taken as in step."""
    sync_confidence: Float[np.ndarray, " V"] = field(default_factory=lambda: np.zeros(0))
    """How far each estimated offset stands out, in [0, 1] (1 where given)."""
    recalled_observations: Int[np.ndarray, " V"] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Per view, the people its detector missed that were found where the other views placed them
    (empty where no second look ran)."""
    messages: tuple[str, ...] = ()
