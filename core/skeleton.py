"""A kinematic skeleton of SMPL-X's 22 body joints with a linear bone-length shape model.

The engine speaks SMPL-X-layout parameters (global orientation, translation, 21 body joint rotations,
a shape vector). Meshes come from real body models (Anny, SMPL-X); this skeleton is the light stand-in
that turns those parameters into joints for synthetic ground truth and for the fused result, without
any model file. Canonical frame as SMPL-X: y up, the body faces +z, its left is +x; the pelvis is the
origin, so ``transl`` is the pelvis position.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float
from scipy.spatial.transform import Rotation

JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)
PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19])
PELVIS = 0
HEAD = JOINT_NAMES.index("head")

# Rest joint positions of an average adult in T-pose, canonical frame, metres.
_TEMPLATE = np.array(
    [
        [0.00, 0.00, 0.00],
        [0.06, -0.09, 0.00],
        [-0.06, -0.09, 0.00],
        [0.00, 0.11, -0.02],
        [0.10, -0.47, 0.00],
        [-0.10, -0.47, 0.00],
        [0.00, 0.25, -0.01],
        [0.09, -0.87, -0.04],
        [-0.09, -0.87, -0.04],
        [0.00, 0.31, 0.01],
        [0.12, -0.93, 0.08],
        [-0.12, -0.93, 0.08],
        [0.00, 0.52, -0.02],
        [0.08, 0.42, -0.01],
        [-0.08, 0.42, -0.01],
        [0.00, 0.60, 0.03],
        [0.18, 0.45, -0.01],
        [-0.18, 0.45, -0.01],
        [0.43, 0.43, -0.03],
        [-0.43, 0.43, -0.03],
        [0.68, 0.44, -0.01],
        [-0.68, 0.44, -0.01],
    ]
)
_LEGS = np.array([1, 2, 4, 5, 7, 8, 10, 11])
_ARMS = np.array([16, 17, 18, 19, 20, 21])
_TORSO = np.array([3, 6, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21])
SHAPE_DIM = 5
"""Shape coefficients: stature, leg length, arm span, torso length, width (≈ 5 % per unit each)."""


def _shape_directions() -> Float[np.ndarray, "5 22 3"]:
    directions = np.zeros((SHAPE_DIM, len(JOINT_NAMES), 3))
    directions[0] = 0.06 * _TEMPLATE
    directions[1, _LEGS, 1] = 0.05 * _TEMPLATE[_LEGS, 1]
    directions[2, _ARMS, 0] = 0.05 * (_TEMPLATE[_ARMS, 0] - np.sign(_TEMPLATE[_ARMS, 0]) * 0.18)
    directions[3, _TORSO, 1] = 0.05 * _TEMPLATE[_TORSO, 1]
    directions[4, :, 0] = 0.05 * _TEMPLATE[:, 0]
    return directions


def depth_levels(parents) -> list[np.ndarray]:
    """Joints grouped by depth below the root (the root excluded), shallowest first: forward kinematics
    walks a tree one level at a time, every joint of a level at once."""
    depth = np.zeros(len(parents), dtype=int)
    for j in range(1, len(parents)):
        depth[j] = depth[parents[j]] + 1
    return [np.flatnonzero(depth == d) for d in range(1, depth.max() + 1)]


_LEVELS = depth_levels(PARENTS)


def rest_joints(shape: Float[np.ndarray, "*batch B"]) -> Float[np.ndarray, "*batch 22 3"]:
    """Rest (T-pose) joint positions for shape coefficients, canonical frame, metres."""
    shape = np.asarray(shape, dtype=float)[..., :SHAPE_DIM]
    return _TEMPLATE + np.einsum("...k,kjc->...jc", shape, _shape_directions()[: shape.shape[-1]])


def forward_kinematics(
    global_orient: Float[np.ndarray, "*batch 3"],
    body_pose: Float[np.ndarray, "*batch 21 3"],
    shape: Float[np.ndarray, "*batch B"],
    transl: Float[np.ndarray, "*batch 3"],
) -> Float[np.ndarray, "*batch 22 3"]:
    """Posed joints from SMPL-X-layout parameters (axis-angle), batched over any leading axes.

    The chain is walked one tree depth at a time, every joint of that depth at once.

    >>> joints = forward_kinematics(np.zeros(3), np.zeros((21, 3)), np.zeros(5), np.array([0, 0, 1.0]))
    >>> bool(np.allclose(joints[0], [0, 0, 1.0]))
    True
    """
    global_orient = np.asarray(global_orient, dtype=float)
    batch = np.broadcast_shapes(
        global_orient.shape[:-1], body_pose.shape[:-2], shape.shape[:-1], transl.shape[:-1]
    )
    rotvecs = np.concatenate(
        [
            np.broadcast_to(global_orient, (*batch, 3))[..., None, :],
            np.broadcast_to(body_pose, (*batch, 21, 3)),
        ],
        axis=-2,
    )
    local = Rotation.from_rotvec(rotvecs.reshape(-1, 3)).as_matrix().reshape(*batch, 22, 3, 3)
    rest = np.broadcast_to(rest_joints(shape), (*batch, 22, 3))
    bones = rest - rest[..., np.maximum(PARENTS, 0), :]  # (..., 22, 3) offset from the parent joint
    world_rot = np.empty_like(local)
    joints = np.empty((*batch, 22, 3))
    world_rot[..., 0, :, :] = local[..., 0, :, :]
    joints[..., 0, :] = np.broadcast_to(transl, (*batch, 3))
    for level in _LEVELS:
        parent = PARENTS[level]
        parent_rot = world_rot[..., parent, :, :]
        world_rot[..., level, :, :] = parent_rot @ local[..., level, :, :]
        joints[..., level, :] = joints[..., parent, :] + np.einsum(
            "...ij,...j->...i", parent_rot, bones[..., level, :]
        )
    return joints


def canonical_joints(
    body_pose: Float[np.ndarray, "*batch 21 3"], shape: Float[np.ndarray, "*batch B"]
) -> Float[np.ndarray, "*batch 22 3"]:
    """Root-relative joints in the body's own frame: the view-invariant pose used for association."""
    batch = body_pose.shape[:-2]
    return forward_kinematics(np.zeros((*batch, 3)), body_pose, shape, np.zeros((*batch, 3)))


def body_frame(
    left_hip: Float[np.ndarray, "*batch 3"],
    right_hip: Float[np.ndarray, "*batch 3"],
    left_shoulder: Float[np.ndarray, "*batch 3"],
    right_shoulder: Float[np.ndarray, "*batch 3"],
) -> Float[np.ndarray, "*batch 3 3"]:
    """Rotation from the canonical body frame (left +x, up +y, forward +z) to the frame these points are
    in: left along the hip line, up along the hip-to-shoulder direction made orthogonal to it.

    >>> frame = body_frame(*np.array([[1.0, 0, 0], [-1, 0, 0], [1, 2, 0], [-1, 2, 0]]))
    >>> bool(np.allclose(frame, np.eye(3)))
    True
    """
    left = left_hip - right_hip
    left = left / np.maximum(np.linalg.norm(left, axis=-1, keepdims=True), 1e-12)
    up = (left_shoulder + right_shoulder - left_hip - right_hip) / 2
    up = up - np.sum(up * left, axis=-1, keepdims=True) * left
    up = up / np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-12)
    return np.stack([left, up, np.cross(left, up)], axis=-1)
