"""Per-view 3D hints from BlazePose: where a person is in the camera frame and how they stand.

The landmark model gives metric 3D landmarks around the hip centre, in axes aligned with the view
direction of the person's crop, but no distance. Placing that metric body so that it projects onto its
2D landmarks through the camera's intrinsics fixes the distance (a bigger image body is nearer): with the
rotation known, the translation solves a linear least-squares problem. Before that, the body is turned by
the rotation from the optical axis to the ray through its hips, because a person off the image centre is
seen from the side of that ray, not along the optical axis.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float
from scipy.spatial.transform import Rotation

from core.geometry import undistort_pixels
from core.keypoints import BLAZEPOSE_NAMES
from core.skeleton import JOINT_NAMES, body_frame

_L = {name: i for i, name in enumerate(BLAZEPOSE_NAMES)}
_HIPS = [_L["left_hip"], _L["right_hip"]]
_EARS = [_L["left_ear"], _L["right_ear"]]

# Each SMPL-X body joint as a weighted sum of BlazePose landmarks (hip centre, shoulder centre and the
# spine points between them; the head is the midpoint of the ears).
_JOINT_WEIGHTS = np.zeros((len(JOINT_NAMES), len(BLAZEPOSE_NAMES)))
for _joint, _mix in {
    "pelvis": {"left_hip": 0.5, "right_hip": 0.5},
    "spine1": {"left_hip": 0.4, "right_hip": 0.4, "left_shoulder": 0.1, "right_shoulder": 0.1},
    "spine2": {"left_hip": 0.275, "right_hip": 0.275, "left_shoulder": 0.225, "right_shoulder": 0.225},
    "spine3": {"left_hip": 0.2, "right_hip": 0.2, "left_shoulder": 0.3, "right_shoulder": 0.3},
    "neck": {"left_shoulder": 0.5, "right_shoulder": 0.5},
    "left_collar": {"left_shoulder": 0.75, "right_shoulder": 0.25},
    "right_collar": {"left_shoulder": 0.25, "right_shoulder": 0.75},
    "head": {"left_ear": 0.5, "right_ear": 0.5},
    "left_foot": {"left_foot_index": 1.0},
    "right_foot": {"right_foot_index": 1.0},
}.items():
    for _name, _w in _mix.items():
        _JOINT_WEIGHTS[JOINT_NAMES.index(_joint), _L[_name]] = _w
for _joint in JOINT_NAMES:
    if _joint in _L and not _JOINT_WEIGHTS[JOINT_NAMES.index(_joint)].any():
        _JOINT_WEIGHTS[JOINT_NAMES.index(_joint), _L[_joint]] = 1.0


def head_and_pelvis(keypoints: Float[np.ndarray, "N 33 D"]) -> tuple[np.ndarray, np.ndarray]:
    """The head (midpoint of the ears) and pelvis (midpoint of the hips) of BlazePose landmarks."""
    return keypoints[:, _EARS].mean(axis=1), keypoints[:, _HIPS].mean(axis=1)


def _rotation_to_rays(rays: Float[np.ndarray, "N 3"]) -> Float[np.ndarray, "N 3 3"]:
    """The smallest rotation taking the optical axis (0, 0, 1) onto each ray."""
    rays = rays / np.linalg.norm(rays, axis=-1, keepdims=True)
    axis = np.cross(np.array([0.0, 0.0, 1.0]), rays)
    angle = np.arctan2(np.linalg.norm(axis, axis=-1), rays[:, 2])
    norm = np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-12)
    return Rotation.from_rotvec(axis / norm * angle[:, None]).as_matrix()


def place_in_camera(
    keypoints2d: Float[np.ndarray, "N 33 2"],
    weight: Float[np.ndarray, "N 33"],
    world: Float[np.ndarray, "N 33 3"],
    K: Float[np.ndarray, "N 3 3"],
    dist: Float[np.ndarray, "N 5"],
) -> tuple[Float[np.ndarray, "N 33 3"], Float[np.ndarray, "N 3"]]:
    """Metric landmarks placed in the camera frame so that they project onto ``keypoints2d``.

    Returns the placed landmarks and the translation of the hip centre (the world landmarks' origin).
    Minimises, per person, sum_j w_j |x_j (Z_j + t_z) - (X_j + t_x)|² (same for y) over t, where
    (x_j, y_j) are undistorted normalised image coordinates: linear in t, solved batched.
    """
    xy = undistort_pixels(keypoints2d, K, dist)  # (N, 33, 2)
    _, pelvis_xy = head_and_pelvis(xy)
    rotation = _rotation_to_rays(np.concatenate([pelvis_xy, np.ones_like(pelvis_xy[:, :1])], axis=-1))
    body = np.einsum("nij,nkj->nki", rotation, world)
    # Rows [1, 0, -x] t = x Z - X and [0, 1, -y] t = y Z - Y for every landmark.
    zeros, ones = np.zeros_like(xy[..., 0]), np.ones_like(xy[..., 0])
    A = np.stack(
        [np.stack([ones, zeros, -xy[..., 0]], -1), np.stack([zeros, ones, -xy[..., 1]], -1)], axis=2
    )  # (N, 33, 2, 3)
    b = xy * body[..., 2:] - body[..., :2]  # (N, 33, 2)
    w = weight[..., None, None]
    normal = np.einsum("nkri,nkrj->nij", w * A, A) + 1e-9 * np.eye(3)
    rhs = np.einsum("nkri,nkr->ni", w * A, b)
    t = np.linalg.solve(normal, rhs[..., None])[..., 0]
    return body + t[:, None], t


def body_orientation(landmarks: Float[np.ndarray, "N 33 3"]) -> Float[np.ndarray, "N 3 3"]:
    """Rotation from the SMPL-X canonical body frame to the landmarks' frame (``skeleton.body_frame``)."""
    return body_frame(
        *(landmarks[:, _L[n]] for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder"))
    )


def canonical_joints(
    landmarks: Float[np.ndarray, "N 33 3"], orientation: Float[np.ndarray, "N 3 3"]
) -> Float[np.ndarray, "N 22 3"]:
    """SMPL-X's 22 body joints from the landmarks, root-relative, in the canonical body frame."""
    joints = np.einsum("jk,nkd->njd", _JOINT_WEIGHTS, landmarks)
    return np.einsum("nji,nkj->nki", orientation, joints - joints[:, :1])
