"""Synthetic multi-person multi-view scenes with ground truth, and the faulty observations of them.

The engine is model-agnostic: whatever network produced the per-view estimates, tracking, association,
fusion and scale see the same :class:`~core.types.Observations`. These scenes let every stage be proven
where the truth is known. People walk and turn on the ground plane (z = 0) inside an arena watched by V
cameras; each view then "detects" them with the faults real estimators have: 2D keypoint noise,
monocular depth error that grows with distance, a wrong global scene scale, pose and orientation noise,
missed detections, false positives, occlusion by a nearer person, and optionally identical appearance.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from jaxtyping import Float, Int
from scipy.spatial.transform import Rotation

from core.engine.handedness import mirror_permutation
from core.geometry import project_points
from core.skeleton import (
    HEAD,
    JOINT_NAMES,
    PELVIS,
    SHAPE_DIM,
    canonical_joints,
    forward_kinematics,
    rest_joints,
)
from core.types import Camera, CameraRig, Observations

# SMPL-X canonical body (y up, facing +z) → world z up, facing +x when the heading is 0.
_CANONICAL_TO_WORLD = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
# Monocular estimators get the torso far better than the limbs: pose error scale per body-pose joint.
_TORSO_POSE = [JOINT_NAMES.index(n) - 1 for n in ("spine1", "spine2", "spine3", "neck", "head")]
_POSE_ERROR_PROFILE = np.where(np.isin(np.arange(21), _TORSO_POSE), 0.5, 1.0)[:, None]


@dataclass(frozen=True)
class SyntheticConfig:
    """A synthetic scene and how badly its observations are corrupted."""

    persons: int = 3
    """Number of people walking in the arena."""
    views: int = 4
    """Number of cameras around the arena."""
    frames: int = 300
    """Number of frames."""
    fps: float = 30.0
    """Frame rate of the clips."""
    seed: int = 0
    """Random seed: the same seed gives the same scene and observations."""
    scale_error: float = 1.0
    """Global scene scale s: cameras and monocular depths given to the engine are s × the truth."""
    identical_appearance: bool = False
    """Everyone looks the same (as uniformed subjects): embeddings carry no identity."""
    arena_radius: float | None = None
    """People stay within this distance of the arena centre, metres (None: about 6.5 m² per person)."""
    camera_distance: float | None = None
    """Distance of the cameras from the arena centre, metres (None: 4 m outside the arena)."""
    image_width: int = 1920
    image_height: int = 1080
    keypoint_noise_px: float = 2.0
    """Standard deviation of 2D keypoint, head and pelvis noise, pixels."""
    depth_noise: float = 0.05
    """Relative monocular depth error per frame (0.05: ±30 cm at 6 m, growing with distance)."""
    pose_noise_rad: float = 0.12
    """Standard deviation of per-frame body pose noise per axis-angle component, radians."""
    pose_bias_rad: float = 0.15
    """Standard deviation of a body pose error fixed per (view, person), as monocular estimators make."""
    depth_bias: float = 0.03
    """Relative depth error fixed per (view, person) (a misjudged body size)."""
    orient_noise_rad: float = 0.05
    """Standard deviation of global orientation noise per axis-angle component, radians."""
    shape_noise: float = 0.3
    """Standard deviation of shape coefficient noise."""
    miss_rate: float = 0.05
    """Probability that a visible person is not detected in a view."""
    false_positive_rate: float = 0.02
    """Expected number of false detections per view and frame."""
    occlusion: bool = True
    """Drop a person hidden behind a nearer one in a view."""
    mirrored_rate: float = 0.0
    """Fraction of the detections of a person seen from behind whose left and right keypoint labels are
    swapped, as 2D detectors do."""
    embedding_dim: int = 16
    embedding_noise: float = 0.15
    """Standard deviation of embedding noise per component (identity embeddings have unit norm)."""


@dataclass(frozen=True)
class SyntheticScene:
    """Ground truth (metric world, z up) and the observations an engine gets from it."""

    config: SyntheticConfig
    true_cameras: CameraRig
    """Cameras in the true metric world."""
    cameras: CameraRig
    """Cameras as the scene prior reports them: the world scaled by ``config.scale_error``."""
    global_orient: Float[np.ndarray, "P T 3"]
    transl: Float[np.ndarray, "P T 3"]
    body_pose: Float[np.ndarray, "P T 21 3"]
    shape: Float[np.ndarray, "P B"]
    joints: Float[np.ndarray, "P T 22 3"]
    observations: Observations
    observation_identity: Int[np.ndarray, " N"]
    """True person of each observation; -1 for false positives."""


def make_scene(config: SyntheticConfig) -> SyntheticScene:
    """Simulate people, cameras and per-view observations (deterministic for a seed)."""
    if config.views < 1 or config.frames < 1 or config.persons < 0:
        raise ValueError(f"a synthetic scene needs views ≥ 1, frames ≥ 1, persons ≥ 0; got {config}")
    rng = np.random.default_rng(config.seed)
    arena = config.arena_radius or max(2.5, np.sqrt(6.5 * config.persons / np.pi))
    config = replace(config, arena_radius=arena, camera_distance=config.camera_distance or arena + 4.0)
    true_cameras = _make_cameras(config, rng)
    global_orient, transl, body_pose, shape = _make_motion(config, rng)
    joints = forward_kinematics(global_orient, body_pose, shape[:, None], transl)
    observations, identity = _observe(config, rng, true_cameras, global_orient, body_pose, shape, joints)
    return SyntheticScene(
        config=config,
        true_cameras=true_cameras,
        cameras=true_cameras.scaled(config.scale_error),
        global_orient=global_orient,
        transl=transl,
        body_pose=body_pose,
        shape=shape,
        joints=joints,
        observations=observations,
        observation_identity=identity,
    )


def look_at(center: Float[np.ndarray, 3], target: Float[np.ndarray, 3]) -> tuple[np.ndarray, np.ndarray]:
    """World→camera (R, t) of an OpenCV camera at ``center`` looking at ``target``, world z up."""
    forward = target - center
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    return R, -R @ center


def _make_cameras(config: SyntheticConfig, rng: np.random.Generator) -> CameraRig:
    angles = np.arange(config.views) * 2 * np.pi / config.views + rng.uniform(-0.15, 0.15, config.views)
    cameras = []
    for v, angle in enumerate(angles):
        distance = config.camera_distance + rng.uniform(-0.5, 0.5)
        center = np.array([distance * np.cos(angle), distance * np.sin(angle), rng.uniform(1.6, 2.6)])
        R, t = look_at(center, np.array([*rng.uniform(-0.3, 0.3, 2), 1.0]))
        focal = rng.uniform(1000.0, 1300.0)
        K = np.array(
            [
                [focal, 0.0, config.image_width / 2 + rng.uniform(-8, 8)],
                [0.0, focal, config.image_height / 2 + rng.uniform(-8, 8)],
                [0.0, 0.0, 1.0],
            ]
        )
        dist = np.array([rng.uniform(-0.08, 0.02), rng.uniform(-0.01, 0.01), 0.0, 0.0, 0.0])
        cameras.append(Camera(f"cam{v:02d}", K, dist, R, t, config.image_width, config.image_height))
    return CameraRig(tuple(cameras))


def _make_motion(config: SyntheticConfig, rng: np.random.Generator):
    """Each person walks an ellipse of their own (so they keep turning), with a walking gait."""
    P, T = config.persons, config.frames
    time = np.arange(T) / config.fps
    centers = rng.uniform(-0.4, 0.4, (P, 2)) * config.arena_radius
    radii = (
        rng.uniform(0.7, 1.3, (P, 2)) * (config.arena_radius - np.linalg.norm(centers, axis=1))[:, None] * 0.8
    )
    tilt = rng.uniform(0, np.pi, P)
    speed = rng.uniform(0.9, 1.4, P)
    omega = speed / radii.mean(axis=1) * rng.choice([-1.0, 1.0], P)
    phase = rng.uniform(0, 2 * np.pi, P)
    angle = omega[:, None] * time + phase[:, None]  # (P, T)
    local = np.stack([radii[:, :1] * np.cos(angle), radii[:, 1:] * np.sin(angle)], axis=-1)
    local_velocity = (
        np.stack([-radii[:, :1] * np.sin(angle), radii[:, 1:] * np.cos(angle)], axis=-1)
        * omega[:, None, None]
    )
    rotation = np.stack([np.cos(tilt), -np.sin(tilt), np.sin(tilt), np.cos(tilt)], axis=-1).reshape(
        P, 1, 2, 2
    )
    ground = centers[:, None] + np.einsum("ptij,ptj->pti", rotation, local)
    velocity = np.einsum("ptij,ptj->pti", rotation, local_velocity)
    heading = np.arctan2(velocity[..., 1], velocity[..., 0])

    shape = rng.normal(0.0, 0.8, (P, SHAPE_DIM))
    stride = 1.3 * (1 + 0.06 * shape[:, :1])
    distance = np.concatenate(
        [np.zeros((P, 1)), np.cumsum(np.linalg.norm(np.diff(ground, axis=1), axis=-1), axis=1)], 1
    )
    gait = 2 * np.pi * distance / stride + rng.uniform(0, 2 * np.pi, (P, 1))
    body_pose = gait_pose(gait, rng.uniform(0.85, 1.15, (P, 1)), rng.normal(0, 0.03, (P, 1, 21, 3)))

    pelvis_height = -rest_joints(shape)[:, [7, 8, 10, 11], 1].min(axis=1)
    transl = np.concatenate([ground, np.broadcast_to(pelvis_height[:, None, None], (P, T, 1))], axis=-1)
    return upright_orient(heading), transl, body_pose, shape


def upright_orient(heading: Float[np.ndarray, "*B"]) -> Float[np.ndarray, "*B 3"]:
    """Axis-angle global orientation of an upright body (canonical y up → world z up) facing ``heading``
    (radians about the world z axis from +x).

    >>> np.round(upright_orient(np.array(0.0)), 4).tolist()
    [1.2092, 1.2092, 1.2092]
    """
    heading = np.asarray(heading, dtype=float)
    world = Rotation.from_euler("z", heading.reshape(-1, 1)) * Rotation.from_matrix(_CANONICAL_TO_WORLD)
    return world.as_rotvec().reshape(*heading.shape, 3)


def gait_pose(
    gait: Float[np.ndarray, "P T"], amplitude: Float[np.ndarray, "P 1"], offset: np.ndarray
) -> Float[np.ndarray, "P T 21 3"]:
    """A walking cycle in SMPL-X body-pose layout (index = joint - 1), plus a per-person style offset.

    Args:
        gait: phase of the stride, radians (2π per stride, one step of each leg; 0 and π: legs
            together).
        amplitude: stride size relative to an average walk (1: hips ±0.45 rad, knees up to 0.6 rad).
        offset: added to every axis-angle (broadcast, e.g. ``(P, 1, 21, 3)``): a personal style.
    """
    P, T = gait.shape
    pose = np.zeros((P, T, 21, 3))
    swing = amplitude * np.sin(gait)
    pose[..., 0, 0] = -0.45 * swing  # left hip flexion
    pose[..., 1, 0] = 0.45 * swing  # right hip
    pose[..., 3, 0] = 0.6 * amplitude * np.maximum(0, np.sin(gait + np.pi / 2))  # left knee
    pose[..., 4, 0] = 0.6 * amplitude * np.maximum(0, np.sin(gait - np.pi / 2))  # right knee
    pose[..., 2, 1] = 0.12 * swing  # spine twist
    pose[..., 17, 1] = -0.3  # elbows bent a little
    pose[..., 18, 1] = 0.3
    arm_down = Rotation.from_euler("z", np.full((P * T, 1), 1.25)).as_matrix().reshape(P, T, 3, 3)
    left = Rotation.from_euler("x", (0.5 * swing).reshape(-1, 1)).as_matrix().reshape(P, T, 3, 3)
    right = Rotation.from_euler("x", (-0.5 * swing).reshape(-1, 1)).as_matrix().reshape(P, T, 3, 3)
    pose[..., 15, :] = (
        Rotation.from_matrix((np.swapaxes(arm_down, -1, -2) @ left).reshape(-1, 3, 3))
        .as_rotvec()
        .reshape(P, T, 3)
    )
    pose[..., 16, :] = Rotation.from_matrix((arm_down @ right).reshape(-1, 3, 3)).as_rotvec().reshape(P, T, 3)
    return pose + offset


def _observe(config, rng, cameras: CameraRig, global_orient, body_pose, shape, joints):
    """Per-view detections of the true people, plus false positives, sorted by (frame, view)."""
    P, T, V = config.persons, config.frames, len(cameras)
    s = config.scale_error
    K, dist, R, t = cameras.K, cameras.dist, cameras.R, cameras.t
    flat = joints.reshape(1, P * T, 22, 3)
    pixels = project_points(flat, K[:, None], dist[:, None], R[:, None], t[:, None]).reshape(V, P, T, 22, 2)
    cam_points = np.einsum("vij,ptkj->vptki", R, joints) + t[:, None, None, None]  # (V, P, T, 22, 3)
    pelvis_depth = cam_points[..., PELVIS, 2]

    inside = np.all(
        (pixels[..., [PELVIS, HEAD], 0] > 0)
        & (pixels[..., [PELVIS, HEAD], 0] < config.image_width)
        & (pixels[..., [PELVIS, HEAD], 1] > 0)
        & (pixels[..., [PELVIS, HEAD], 1] < config.image_height),
        axis=-1,
    )
    detected = inside & (pelvis_depth > 0.5) & (rng.random((V, P, T)) >= config.miss_rate)
    if config.occlusion and P > 1:
        height = np.linalg.norm(pixels[..., HEAD, :] - pixels[..., PELVIS, :], axis=-1) * 2.2  # (V, P, T)
        gap = np.linalg.norm(
            pixels[:, :, None, :, PELVIS] - pixels[:, None, :, :, PELVIS], axis=-1
        )  # (V,P,P,T)
        nearer = pelvis_depth[:, None] < pelvis_depth[:, :, None] - 0.3
        hidden = (nearer & (gap < 0.25 * height[:, :, None]) & inside[:, None]).any(axis=2)
        detected &= ~hidden

    v_idx, p_idx, t_idx = np.nonzero(detected)
    n = v_idx.shape[0]
    noise = config.keypoint_noise_px
    keypoints = pixels[v_idx, p_idx, t_idx] + rng.normal(0, noise, (n, 22, 2))
    mirrored = _seen_from_behind(joints[p_idx, t_idx], R[v_idx]) & (rng.random(n) < config.mirrored_rate)
    keypoints[mirrored] = keypoints[mirrored][:, mirror_permutation(JOINT_NAMES)]
    pelvis_cam = cam_points[v_idx, p_idx, t_idx, PELVIS]
    depth_bias = rng.normal(0, config.depth_bias, (V, P))[v_idx, p_idx]
    depth_error = depth_bias + rng.normal(0, config.depth_noise, n)
    orient_cam = Rotation.from_rotvec(rng.normal(0, config.orient_noise_rad, (n, 3))) * (
        Rotation.from_matrix(R[v_idx]) * Rotation.from_rotvec(global_orient[p_idx, t_idx])
    )
    pose_bias = rng.normal(0, config.pose_bias_rad, (V, P, 21, 3))[v_idx, p_idx] * _POSE_ERROR_PROFILE
    pose_noise = rng.normal(0, config.pose_noise_rad, (n, 21, 3)) * _POSE_ERROR_PROFILE
    pose = body_pose[p_idx, t_idx] + pose_bias + pose_noise
    person_shape = shape[p_idx] + rng.normal(0, config.shape_noise, (n, SHAPE_DIM))
    identity_embedding = rng.normal(0, 1, (P, config.embedding_dim))
    identity_embedding /= np.linalg.norm(identity_embedding, axis=-1, keepdims=True)
    if config.identical_appearance:
        identity_embedding[:] = identity_embedding[:1]
    true_obs = dict(
        view=v_idx,
        frame=t_idx,
        keypoints2d=keypoints,
        head2d=pixels[v_idx, p_idx, t_idx, HEAD] + rng.normal(0, noise, (n, 2)),
        pelvis2d=pixels[v_idx, p_idx, t_idx, PELVIS] + rng.normal(0, noise, (n, 2)),
        position_cam=s * pelvis_cam * (1 + depth_error)[:, None],
        global_orient_cam=orient_cam.as_rotvec(),
        body_pose=pose,
        shape=person_shape,
        embedding=identity_embedding[p_idx]
        + rng.normal(0, config.embedding_noise, (n, config.embedding_dim)),
    )
    fake = _false_positives(config, rng, cameras)
    columns = {key: np.concatenate([true_obs[key], fake[key]]) for key in true_obs}
    identity = np.concatenate([p_idx, np.full(fake["view"].shape[0], -1)])
    order = np.lexsort((columns["view"], columns["frame"]))
    columns = {key: value[order] for key, value in columns.items()}
    identity = identity[order]
    total = identity.shape[0]
    keypoints = columns["keypoints2d"]
    height = keypoints[..., 1].max(axis=1) - keypoints[..., 1].min(axis=1)
    bbox = np.concatenate(
        [keypoints.min(axis=1) - 0.08 * height[:, None], keypoints.max(axis=1) + 0.08 * height[:, None]],
        axis=1,
    )
    bbox[:, 1] -= 0.12 * height  # the head top is above the head joint
    observations = Observations(
        score=rng.uniform(0.6, 1.0, total),
        bbox=bbox,
        keypoint_confidence=rng.uniform(0.6, 1.0, (total, 22)),
        canonical_pose=canonical_joints(columns["body_pose"], columns["shape"]),
        keypoint_names=JOINT_NAMES,
        shape_model="skeleton",
        **columns,
    )
    return observations, identity


def _seen_from_behind(joints: Float[np.ndarray, "N 22 3"], R: Float[np.ndarray, "N 3 3"]) -> np.ndarray:
    """Whether each person faces away from its camera: their forward direction (left hip → right hip
    turned about the world's up) points away from it, along the camera's viewing direction."""
    left = joints[:, JOINT_NAMES.index("left_hip")] - joints[:, JOINT_NAMES.index("right_hip")]
    forward = np.cross(left, [0.0, 0.0, 1.0])
    return np.einsum("ni,ni->n", forward, R[:, 2]) > 0


def _false_positives(config, rng, cameras: CameraRig) -> dict[str, np.ndarray]:
    """Ghost people at random places, new at every frame, seen in one view each."""
    V, T = len(cameras), config.frames
    count = rng.poisson(config.false_positive_rate, (V, T))
    view = np.repeat(np.tile(np.arange(V)[:, None], (1, T)).reshape(-1), count.reshape(-1))
    frame = np.repeat(np.tile(np.arange(T)[None], (V, 1)).reshape(-1), count.reshape(-1))
    n = view.shape[0]
    pixel = rng.uniform(
        [0.2 * config.image_width, 0.4 * config.image_height],
        [0.8 * config.image_width, 0.7 * config.image_height],
        (n, 2),
    )
    K, R, t = cameras.K[view], cameras.R[view], cameras.t[view]
    ray_cam = np.einsum("nij,nj->ni", np.linalg.inv(K), np.concatenate([pixel, np.ones((n, 1))], axis=1))
    pelvis_cam = ray_cam * rng.uniform(2.0, 10.0, (n, 1))
    pelvis_world = np.einsum("nji,nj->ni", R, pelvis_cam - t)
    orient = Rotation.from_euler("z", rng.uniform(-np.pi, np.pi, (n, 1))) * Rotation.from_matrix(
        _CANONICAL_TO_WORLD
    )
    pose = rng.normal(0, 0.2, (n, 21, 3))
    shape = rng.normal(0, 1, (n, SHAPE_DIM))
    joints = forward_kinematics(orient.as_rotvec(), pose, shape, pelvis_world)
    pixels = project_points(joints, K, cameras.dist[view], R, t)
    pixels = np.nan_to_num(pixels, nan=0.0)
    return dict(
        view=view,
        frame=frame,
        keypoints2d=pixels,
        head2d=pixels[:, HEAD],
        pelvis2d=pixels[:, PELVIS],
        position_cam=config.scale_error * pelvis_cam,
        global_orient_cam=(Rotation.from_matrix(R) * orient).as_rotvec(),
        body_pose=pose,
        shape=shape,
        embedding=rng.normal(0, 1 / np.sqrt(config.embedding_dim), (n, config.embedding_dim)),
    )
