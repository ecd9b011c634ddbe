"""Per-view 3D hints from 2D keypoints alone, for detections that come without metric landmarks
(OpenPose, RTMPose and the like, read from their files).

Nothing in one image says how deep each joint is, so the hints are coarse and say so: the person is a
flat figure facing the camera at the distance where the least foreshortened of its limbs and trunk has an
average adult's length (a foreshortened segment looks short, never long); its orientation is that
figure's (left along the hips, up along the trunk, facing the camera or turned away as the left/right
labels say); its pose is an average adult's rest pose. Association then matches people by position, the
body priors give the first scale, and the joints come from triangulating the keypoints, as with any
bare keypoints.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float
from scipy.spatial.transform import Rotation

from core.geometry import undistort_pixels
from core.perception.observer import PersonColumns
from core.skeleton import HEAD, JOINT_NAMES, PELVIS, SHAPE_DIM, body_frame, rest_joints
from core.types import BODY_POSE_JOINTS, CameraRig, Observations

_REST = rest_joints(np.zeros(SHAPE_DIM))
SEGMENTS = tuple(
    (a, b)
    for side in ("left", "right")
    for a, b in (("shoulder", "hip"), ("hip", "knee"), ("knee", "ankle"), ("shoulder", "elbow"))
    for a, b in [(f"{side}_{a}", f"{side}_{b}")]
)
"""Segments whose average length sets a person's distance (the trunk's sides, thighs, shins, upper arms)."""
_LENGTH = np.array(
    [np.linalg.norm(_REST[JOINT_NAMES.index(a)] - _REST[JOINT_NAMES.index(b)]) for a, b in SEGMENTS]
)
HEAD_PER_TRUNK = np.linalg.norm(_REST[HEAD] - _REST[PELVIS]) / np.linalg.norm(
    _REST[[JOINT_NAMES.index("left_shoulder"), JOINT_NAMES.index("right_shoulder")]].mean(axis=0)
    - _REST[PELVIS]
)
"""How far the head is above the pelvis, in units of the shoulders' midpoint above it (average adult)."""
FALLBACK_DISTANCE = 5.0
"""Metres, for a person none of whose segments is seen (both ends confident) when nobody else's is."""
FACING_CAMERA = np.diag([1.0, -1.0, -1.0])
"""The canonical body (left +x, up +y, forward +z) upright and facing the camera (x right, y down, z
ahead): the orientation of a person whose hips and shoulders are not all seen."""
MIN_CONFIDENCE = 0.3
"""Keypoints below this confidence do not place the person."""


class FlatObserver:
    """Observations from 2D keypoints (``columns``: ``view``, ``keypoints2d``, ``confidence``) of a
    layout named by ``names``, with the hints of this module."""

    def __init__(self, names: tuple[str, ...]):
        self.names = names
        index = {n: k for k, n in enumerate(names)}
        missing = [n for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder") if n not in index]
        if missing:
            raise ValueError(f"the keypoint layout lacks {missing}: a person cannot be oriented")
        self._segments = np.array([(index[a], index[b]) for a, b in SEGMENTS])
        self._hips = [index["left_hip"], index["right_hip"]]
        self._shoulders = [index["left_shoulder"], index["right_shoulder"]]
        self._head = [index[n] for n in ("left_ear", "right_ear", "nose", "head_top") if n in index]

    def to_observations(self, columns: PersonColumns, frame: np.ndarray, cameras: CameraRig) -> Observations:
        view = columns["view"].astype(np.int64)
        keypoints, confidence = columns["keypoints2d"], columns["confidence"]
        n = len(view)
        seen = confidence >= MIN_CONFIDENCE
        pelvis = _anchor(keypoints, seen, self._hips)
        xy = undistort_pixels(
            np.concatenate([keypoints, pelvis[:, None]], axis=1), cameras.K[view], cameras.dist[view]
        )
        distance = self._distance(xy[:, :-1], seen)
        flat = distance[:, None, None] * np.concatenate([xy, np.ones_like(xy[..., :1])], axis=-1)
        hips, shoulders = flat[:, self._hips], flat[:, self._shoulders]
        orientation = body_frame(hips[:, 0], hips[:, 1], shoulders[:, 0], shoulders[:, 1])
        torso = seen[:, self._hips].all(axis=1) & seen[:, self._shoulders].all(axis=1)
        orientation[~(torso & (np.linalg.det(orientation) > 0.5))] = FACING_CAMERA
        return Observations(
            view=view,
            frame=frame.astype(np.int64),
            score=_mean_confidence(confidence),
            bbox=_boxes(keypoints, confidence > 0),
            keypoints2d=keypoints,
            keypoint_confidence=confidence,
            head2d=self._head_anchor(keypoints, seen, pelvis),
            pelvis2d=pelvis,
            position_cam=flat[:, -1],
            global_orient_cam=Rotation.from_matrix(orientation).as_rotvec() if n else np.zeros((0, 3)),
            body_pose=np.zeros((n, BODY_POSE_JOINTS, 3)),
            shape=np.zeros((n, 0)),
            canonical_pose=np.broadcast_to(_REST - _REST[PELVIS], (n, *_REST.shape)).copy(),
            embedding=np.zeros((n, 0)),
            keypoint_names=self.names,
            shape_model="none",
        )

    def _head_anchor(self, keypoints: np.ndarray, seen: np.ndarray, pelvis: np.ndarray) -> np.ndarray:
        """The head: the mean of the head keypoints a person has; else the trunk extended beyond the
        shoulders as far as an average adult's head is above its pelvis (layouts or people without a
        head keypoint); else the mean of what it has."""
        head = _anchor(keypoints, seen, self._head)
        shoulders = keypoints[:, self._shoulders].mean(axis=1)
        extended = pelvis + HEAD_PER_TRUNK * (shoulders - pelvis)
        has_head = seen[:, self._head].any(axis=1) if self._head else np.zeros(len(seen), dtype=bool)
        has_trunk = seen[:, self._shoulders].all(axis=1)
        return np.where((~has_head & has_trunk)[:, None], extended, head)

    def _distance(self, xy: Float[np.ndarray, "N K 2"], seen: np.ndarray) -> Float[np.ndarray, " N"]:
        """Each person's distance: the average length of its least foreshortened segment over its
        length in normalised image units."""
        a, b = self._segments[:, 0], self._segments[:, 1]
        apparent = np.linalg.norm(xy[:, a] - xy[:, b], axis=-1) / _LENGTH  # (N, S): per metre
        apparent = np.where(seen[:, a] & seen[:, b], apparent, 0.0).max(axis=1)
        with np.errstate(divide="ignore"):
            distance = np.where(apparent > 0, 1.0 / apparent, np.nan)
        known = np.isfinite(distance)
        return np.where(known, distance, np.median(distance[known]) if known.any() else FALLBACK_DISTANCE)


def _mean_confidence(confidence: np.ndarray) -> np.ndarray:
    found = confidence > 0
    return (confidence * found).sum(axis=1) / np.maximum(found.sum(axis=1), 1)


def _anchor(keypoints: np.ndarray, seen: np.ndarray, index: list[int]) -> np.ndarray:
    """The mean of the ``index`` keypoints each person has, or of all it has where it has none of them."""
    weight = np.zeros(seen.shape)
    weight[:, index] = seen[:, index]
    weight = np.where(weight.sum(axis=1, keepdims=True) > 0, weight, seen)
    weight = np.where(weight.sum(axis=1, keepdims=True) > 0, weight, 1.0)
    return np.einsum("nk,nkd->nd", weight, keypoints) / weight.sum(axis=1, keepdims=True)


def _boxes(keypoints: np.ndarray, found: np.ndarray) -> np.ndarray:
    """The found keypoints' bounding box with a tenth of its size as margin."""
    low = np.where(found[..., None], keypoints, np.inf).min(axis=1)
    high = np.where(found[..., None], keypoints, -np.inf).max(axis=1)
    margin = 0.1 * np.maximum(high - low, 0.0).max(axis=-1, keepdims=True)
    return np.concatenate([low - margin, high + margin], axis=1)
