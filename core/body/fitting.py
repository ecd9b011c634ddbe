"""Fit a body model to a person's fused 3D keypoints: pose per frame, one shape for the whole track.

All frames of a person are one batched problem (one model call per iteration for all frames), solved
by Adam on SMPL-X-layout parameters:

    Σ_f,j c_fj ‖J_model(f, j) − J_target(f, j)‖²                 data (weights 0 where unseen)
  + w_smooth Σ_f ‖θ_f − θ_f−1‖² over consecutive frames            temporal (pose, orientation, position)
  + w_pose ‖θ‖² + w_shape ‖β − β_neutral‖²                          priors

Each frame starts from its own pelvis position and hip/shoulder orientation, so a frame never waits
for its predecessor, and a joint unseen in some frames (legs occluded) is carried by the smoothness
term and the prior from the frames around it. The model is called for joints only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch
from jaxtyping import Float, Int

from core.body.config import FitConfig
from core.body.model import BODY_JOINTS, BodyModel, BodyParameters


@dataclass(frozen=True)
class FitResult:
    """One person's fitted track (numpy, world frame)."""

    global_orient: Float[np.ndarray, "F 3"]
    transl: Float[np.ndarray, "F 3"]
    body_pose: Float[np.ndarray, "F 21 3"]
    shape: Float[np.ndarray, " S"]
    joints: Float[np.ndarray, "F J 3"]
    """The model's joints, named by the model."""
    error_m: Float[np.ndarray, " F"]
    """Mean distance between fitted and target joints per frame (seen joints only); NaN if none."""


def _orientation_from_targets(
    targets: Float[np.ndarray, "F J 3"], names: tuple[str, ...]
) -> Float[np.ndarray, "F 3"]:
    """Canonical-body-to-world rotations from the hips (left) and hip-to-shoulder direction (up)."""
    needed = ("left_hip", "right_hip", "left_shoulder", "right_shoulder")
    if not all(n in names for n in needed):
        return np.zeros((targets.shape[0], 3))
    lh, rh, ls, rs = (targets[:, names.index(n)] for n in needed)
    left = lh - rh
    up = (ls + rs - lh - rh) / 2
    left = left / np.maximum(np.linalg.norm(left, axis=-1, keepdims=True), 1e-9)
    up = up - np.sum(up * left, axis=-1, keepdims=True) * left
    up = up / np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-9)
    matrix = np.stack([left, up, np.cross(left, up)], axis=-1)
    valid = np.isfinite(matrix).all(axis=(1, 2)) & (np.abs(np.linalg.det(matrix) - 1) < 1e-3)
    rotvec = roma.rotmat_to_rotvec(torch.as_tensor(np.where(valid[:, None, None], matrix, np.eye(3))))
    return rotvec.numpy()


def _consecutive_difference(values: torch.Tensor, consecutive: torch.Tensor) -> torch.Tensor:
    """Sum of squared changes between consecutive frames (pairs across a gap do not count)."""
    return ((values[1:] - values[:-1]) ** 2).flatten(1).sum(-1)[consecutive].sum()


def _weighted_centroid(joints: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (joints * weight[..., None]).sum(1) / weight.sum(1, keepdim=True).clamp_min(1e-9)


def fit_track(
    model: BodyModel,
    frames: Int[np.ndarray, " F"],
    targets: Float[np.ndarray, "F J 3"],
    target_names: tuple[str, ...],
    weights: Float[np.ndarray, "F J"],
    config: FitConfig,
    device: str = "cpu",
) -> FitResult:
    """Fit ``model`` to one person's target joints (matched to the model's joints by name)."""
    common = [n for n in target_names if n in model.joint_names]
    if not common:
        raise ValueError(f"no joint of {target_names} is a joint of the {model.name} model")
    target_index = [target_names.index(n) for n in common]
    model_index = torch.tensor([model.joint_names.index(n) for n in common], device=device)
    target = np.asarray(targets, dtype=float)[:, target_index]
    weight = np.where(np.isfinite(target).all(-1), np.asarray(weights, dtype=float)[:, target_index], 0.0)
    F = target.shape[0]

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.nan_to_num(array), dtype=torch.float32, device=device)

    def pose(transl: torch.Tensor) -> torch.Tensor:
        parameters = BodyParameters(orient, transl, body_pose, shape.expand(F, -1))
        return model(parameters, vertices=False).joints[:, model_index]

    target_t, weight_t = tensor(target), tensor(weight)
    orient = tensor(_orientation_from_targets(target, tuple(common))).requires_grad_(True)
    body_pose = torch.zeros((F, BODY_JOINTS, 3), device=device, requires_grad=True)
    neutral = model.neutral_shape(1).to(device=device, dtype=torch.float32)[0]
    shape = neutral.clone().requires_grad_(True)
    # Each frame starts with its weighted joint centroid on the target's, whatever the model's transl
    # convention (pelvis or origin).
    with torch.no_grad():
        start = torch.zeros(F, 3, device=device)
        offset = _weighted_centroid(target_t, weight_t) - _weighted_centroid(pose(start), weight_t)
    transl = offset.clone().requires_grad_(True)

    consecutive = torch.as_tensor(np.diff(frames) == 1, device=device)
    optimizer = torch.optim.Adam([orient, transl, body_pose, shape], lr=config.learning_rate)
    for _ in range(config.iterations):
        optimizer.zero_grad()
        residual = ((pose(transl) - target_t) ** 2).sum(-1)
        loss = (weight_t * residual).sum()
        loss = loss + config.smoothness_weight * sum(
            _consecutive_difference(v, consecutive) for v in (orient, transl, body_pose)
        )
        loss = loss + config.pose_prior_weight * (body_pose**2).sum()
        loss = loss + config.shape_prior_weight * F * ((shape - neutral) ** 2).sum()
        loss.backward()
        optimizer.step()

    with torch.no_grad():
        parameters = BodyParameters(orient, transl, body_pose, shape.expand(F, -1))
        posed = model(parameters, vertices=False).joints
        distance = torch.linalg.norm(posed[:, model_index] - target_t, dim=-1).cpu().numpy()
    seen = weight > 0
    with np.errstate(invalid="ignore"):
        error = np.where(seen, distance, 0.0).sum(1) / seen.sum(1)
    return FitResult(
        global_orient=orient.detach().cpu().numpy().astype(float),
        transl=transl.detach().cpu().numpy().astype(float),
        body_pose=body_pose.detach().cpu().numpy().astype(float),
        shape=shape.detach().cpu().numpy().astype(float),
        joints=posed.cpu().numpy().astype(float),
        error_m=error,
    )
