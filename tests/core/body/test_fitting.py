"""Fitting on a toy body model with exactly known joints (the SMPL-X-layout skeleton in torch)."""

import numpy as np
import pytest
import roma
import torch

from core.body.config import FitConfig
from core.body.fitting import (
    _interpolate_rotvecs,
    _keyframes,
    _limb_swings,
    fit_track,
    offset_anchors,
    offset_points,
)
from core.body.model import BodyOutput, BodyParameters
from core.skeleton import _LEVELS, JOINT_NAMES, PARENTS, forward_kinematics, rest_joints

FRAMES = 40


class ToySkeleton:
    """core.skeleton's forward kinematics in torch: transl is the pelvis, no mesh."""

    name = "toy"
    shape_dim = 5
    joint_names = JOINT_NAMES
    faces = np.zeros((0, 3), dtype=np.int64)

    def neutral_shape(self, batch):
        return torch.zeros(batch, self.shape_dim)

    def __call__(self, parameters: BodyParameters, vertices: bool = True) -> BodyOutput:
        rotvecs = torch.cat([parameters.global_orient[:, None], parameters.body_pose], dim=1)
        local = roma.rotvec_to_rotmat(rotvecs)  # (B, 22, 3, 3)
        template = torch.as_tensor(rest_joints(np.zeros(5)), dtype=torch.float32)
        directions = torch.as_tensor(rest_joints(np.eye(5)) - rest_joints(np.zeros(5)), dtype=torch.float32)
        rest = template + torch.einsum("bk,kjc->bjc", parameters.shape, directions)
        bones = rest - rest[:, np.maximum(PARENTS, 0)]
        world = [None] * 22
        joints = [None] * 22
        world[0], joints[0] = local[:, 0], parameters.transl
        for level in _LEVELS:
            for j in level:
                p = PARENTS[j]
                world[j] = world[p] @ local[:, j]
                joints[j] = joints[p] + (world[p] @ bones[:, j, :, None])[..., 0]
        return BodyOutput(joints=torch.stack(joints, dim=1), vertices=None)


def _truth_parameters():
    """Orientation and body pose of ``truth`` (torch, float64)."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, FRAMES)[:, None, None]
    body_pose = 0.3 * np.sin(t + rng.uniform(0, 2 * np.pi, (1, 21, 3))) * rng.uniform(0.2, 1.0, (1, 21, 3))
    heading = np.linspace(0, 1.0, FRAMES)
    global_orient = np.stack([np.zeros(FRAMES), heading, np.zeros(FRAMES)], axis=1)
    return torch.as_tensor(global_orient), torch.as_tensor(body_pose)


@pytest.fixture(scope="module")
def truth():
    global_orient, body_pose = (a.numpy() for a in _truth_parameters())
    transl = np.stack([np.linspace(0, 2, FRAMES), np.full(FRAMES, 0.9), np.zeros(FRAMES)], axis=1)
    shape = np.array([1.0, -0.5, 0.8, 0.3, -0.6])
    joints = forward_kinematics(global_orient, body_pose, np.broadcast_to(shape, (FRAMES, 5)), transl)
    return joints


def test_noisy_keypoints_are_fitted_within_15_mm_of_the_clean_joints(truth):
    noisy = truth + np.random.default_rng(1).normal(0, 0.01, truth.shape)
    result = fit_track(
        ToySkeleton(), np.arange(FRAMES), noisy, JOINT_NAMES, np.ones(noisy.shape[:2]), FitConfig()
    )
    error = np.linalg.norm(result.joints - truth, axis=-1).mean()
    assert error < 0.015
    assert np.isfinite(result.body_pose).all() and result.shape.shape == (5,)


def test_legs_unseen_for_some_frames_are_carried_by_the_neighbouring_frames(truth):
    legs = [JOINT_NAMES.index(n) for n in JOINT_NAMES if "knee" in n or "ankle" in n or "foot" in n]
    targets = truth.copy()
    targets[15:20, legs] = np.nan  # occluded: no target at all
    weights = np.ones(truth.shape[:2])
    result = fit_track(ToySkeleton(), np.arange(FRAMES), targets, JOINT_NAMES, weights, FitConfig())
    hidden = np.linalg.norm(result.joints[15:20, legs] - truth[15:20, legs], axis=-1)
    assert np.isfinite(result.joints).all()
    assert hidden.mean() < 0.05
    assert np.isnan(result.error_m).sum() == 0


def test_keypoints_off_the_joints_by_a_constant_offset_in_their_bone_frame_are_fitted_with_it(truth):
    # Keypoints that are not the model's joints (a detector's hips sit 4 cm off the skeleton's): each is
    # the joint plus an offset fixed in the frame of the bone it hangs from, which the fit recovers.
    config = FitConfig()
    rng = np.random.default_rng(3)
    offsets = rng.uniform(-0.04, 0.04, (len(JOINT_NAMES), 3))
    anchor = torch.as_tensor(offset_anchors(JOINT_NAMES))
    params = _truth_parameters()
    shifted = truth + offset_points(*params, anchor, torch.as_tensor(offsets, dtype=torch.float64)).numpy()
    weights = np.ones(truth.shape[:2])
    result = fit_track(ToySkeleton(), np.arange(FRAMES), shifted, JOINT_NAMES, weights, config)
    without = fit_track(
        ToySkeleton(), np.arange(FRAMES), shifted, JOINT_NAMES, weights, FitConfig(offset_prior_weight=0)
    )

    def error(points, reference):
        return np.linalg.norm(points - reference, axis=-1).mean()

    assert error(result.keypoints, shifted) < 0.01
    assert error(without.keypoints, shifted) > 0.02
    assert error(result.joints, truth) < error(without.joints, truth)
    assert np.abs(without.offsets).max() == 0 and result.keypoint_names == JOINT_NAMES


def test_offset_anchors_are_the_bone_a_point_hangs_from():
    names = ("pelvis", "left_knee", "right_wrist", "nose", "left_ear", "right_heel", "left_foot_index")
    expected = ("pelvis", "left_hip", "right_elbow", "head", "head", "right_ankle", "left_ankle")
    assert [JOINT_NAMES[i] for i in offset_anchors(names)] == list(expected)


class BoundedToySkeleton(ToySkeleton):
    shape_bounds = (-0.2, 0.2)


def test_a_shape_beyond_the_model_bounds_is_fitted_on_the_bound(truth):
    # truth's shape is (1, -0.5, 0.8, 0.3, -0.6): every coefficient lies beyond ±0.2
    weights = np.ones(truth.shape[:2])
    free = fit_track(ToySkeleton(), np.arange(FRAMES), truth, JOINT_NAMES, weights, FitConfig())
    bounded = fit_track(BoundedToySkeleton(), np.arange(FRAMES), truth, JOINT_NAMES, weights, FitConfig())
    assert np.abs(free.shape).max() > 0.5
    assert np.all(np.abs(bounded.shape) <= 0.2 + 1e-7)
    assert bounded.shape[0] == pytest.approx(0.2)
    assert np.isfinite(bounded.joints).all()


def test_limb_swings_put_the_elbows_wrists_knees_and_ankles_on_their_targets():
    rng = np.random.default_rng(2)
    limbs = [JOINT_NAMES.index(n) for n in ("left_hip", "right_hip", "left_knee", "right_knee")]
    limbs += [JOINT_NAMES.index(n) for n in ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow")]
    body_pose = np.zeros((6, 21, 3))
    body_pose[:, [j - 1 for j in limbs]] = rng.uniform(-1.2, 1.2, (6, len(limbs), 3))  # twists too
    global_orient = rng.uniform(-1.0, 1.0, (6, 3))
    shape = np.zeros((6, 5))
    targets = forward_kinematics(global_orient, body_pose, shape, np.zeros((6, 3)))
    rest = rest_joints(np.zeros(5))
    as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    pose = _limb_swings(
        {n: as_tensor(rest[i]) for i, n in enumerate(JOINT_NAMES)},
        {n: as_tensor(targets[:, i]) for i, n in enumerate(JOINT_NAMES)},
        {n: torch.ones(6, dtype=torch.bool) for n in JOINT_NAMES},
        as_tensor(global_orient),
    )
    posed = forward_kinematics(global_orient, pose.numpy(), shape, np.zeros((6, 3)))
    ends = [i for i, n in enumerate(JOINT_NAMES) if n.split("_")[-1] in ("knee", "ankle", "elbow", "wrist")]
    assert np.allclose(posed[:, ends], targets[:, ends], atol=1e-5)


def test_limb_swings_leave_a_limb_at_rest_where_its_target_is_unseen():
    orient = torch.zeros(2, 3)
    points = torch.as_tensor(rest_joints(np.zeros(5)), dtype=torch.float32)
    rest = {n: points[i] for i, n in enumerate(JOINT_NAMES)}
    moved = torch.tensor([0.0, 0.0, 0.3])  # the left elbow forward, the rest at rest
    targets = {n: p.expand(2, 3) + moved * (n == "left_elbow") for n, p in rest.items()}
    seen = {n: torch.tensor([True, n != "left_elbow"]) for n in JOINT_NAMES}
    pose = _limb_swings(rest, targets, seen, orient)
    shoulder = JOINT_NAMES.index("left_shoulder") - 1
    assert pose[0, shoulder].norm() > 0.1 and pose[1].abs().max() < 1e-6


def test_key_frames_spread_over_the_track_and_their_rotations_are_slerped_in_between():
    assert _keyframes(100, 12).tolist()[:2] == [0, 9] and _keyframes(100, 12)[-1] == 99
    assert len(_keyframes(100, 12)) == 12 and _keyframes(5, 12).tolist() == [0, 1, 2, 3, 4]
    keys = np.array([0, 4])
    values = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    between = _interpolate_rotvecs(values, keys, 6)
    assert torch.allclose(between[:, 2], torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0, 1.0]), atol=1e-6)
    assert torch.allclose(between[:, :2], torch.zeros(6, 2))


def test_early_stop_and_threads(truth):
    config = FitConfig(tolerance=0.5, threads=1)
    before = torch.get_num_threads()
    result = fit_track(ToySkeleton(), np.arange(FRAMES), truth, JOINT_NAMES, np.ones(truth.shape[:2]), config)
    assert result.iterations < config.iterations + config.refine_iterations
    assert torch.get_num_threads() == before


def test_one_stage_fits_every_frame_with_the_shape_when_the_track_is_short(truth):
    short = truth[:8]
    result = fit_track(
        ToySkeleton(), np.arange(8), short, JOINT_NAMES, np.ones(short.shape[:2]), FitConfig(shape_frames=12)
    )
    assert result.joints.shape == short.shape
    assert np.linalg.norm(result.joints - short, axis=-1).mean() < 0.02
