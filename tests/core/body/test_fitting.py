"""Fitting on a toy body model with exactly known joints (the SMPL-X-layout skeleton in torch)."""

import numpy as np
import pytest
import roma
import torch

from core.body.config import FitConfig
from core.body.fitting import fit_track
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


@pytest.fixture(scope="module")
def truth():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, FRAMES)[:, None, None]
    body_pose = 0.3 * np.sin(t + rng.uniform(0, 2 * np.pi, (1, 21, 3))) * rng.uniform(0.2, 1.0, (1, 21, 3))
    heading = np.linspace(0, 1.0, FRAMES)
    global_orient = np.stack([np.zeros(FRAMES), heading, np.zeros(FRAMES)], axis=1)
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
