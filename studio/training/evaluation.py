"""``python -m studio evaluate-network``: how well a CHROMM checkpoint does on held-out samples, with the
baselines its targets compare against.

Bodies are regressed for the ground-truth head cells (as in training), so the body, head and pelvis
figures are those of the persons, not of the detector, whose precision and recall are measured apart
(a detection matches a true head within ``MATCH_PATCHES`` patches). Figures:

- ``mpjpe_mm`` / ``pa_mpjpe_mm``: the 22 body joints, pelvis-aligned / Procrustes-aligned, camera frame;
- ``baseline_mean_pose_mpjpe_mm``: the same for the evaluated persons' mean pose (the mean camera-frame
  global orientation and body pose, the neutral shape); ``baseline_true_orientation_mpjpe_mm``: the
  mean body pose with each person's true orientation, a baseline given what it cannot guess;
- ``head_error_mm``: the head's 3D error as regressed (``predicted``) and with the same head pixel placed
  at Pi3X's depth there (``pi3x_depth``: Δd = 0);
- ``pelvis_px``: the 2D pelvis error in original pixels, ``coarse`` and ``fine``;
- ``scale_error``: per instant, Pi3X's depth scale s against the truth (median ratio over known
  pixels), ``without`` and ``with`` the head–pelvis factor r of the regressed bodies hung at Pi3X's depth
  (in its scale, as the engine's are): |s − 1| and |r·s − 1|.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import roma
import torch
from scipy.optimize import linear_sum_assignment

from core.body.model import BodyModel, BodyParameters
from core.nets.chromm.model import Chromm, ChrommPersons
from core.nets.chromm.placement import head_positions
from core.nets.multihmr.model import suppress_non_maxima
from studio.training.batch import TrainingExample, training_example
from studio.training.encoded import EncodedCache, frozen_encoded
from studio.training.losses import BODY_ROTATIONS, head_pelvis_factor, predicted_bodies, true_bodies
from studio.training.sample import MultiViewSample

MATCH_PATCHES = 1.5
"""A detected head within this many patches of a true one is that person's detection."""


@dataclass(frozen=True)
class NetworkScores:
    samples: int
    persons: int
    mpjpe_mm: float
    pa_mpjpe_mm: float
    baseline_mean_pose_mpjpe_mm: float
    baseline_true_orientation_mpjpe_mm: float
    head_error_mm: dict[str, float]
    pelvis_px: dict[str, float]
    scale_error: dict[str, float]
    detection: dict[str, float]

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class _Tally:
    """Per-person (arrays) and per-instant (floats) errors gathered over the samples."""

    joints: list[np.ndarray] = field(default_factory=list)
    aligned: list[np.ndarray] = field(default_factory=list)
    truth: list[np.ndarray] = field(default_factory=list)
    """True body joints, pelvis-aligned (Q, 22, 3), for the baseline."""
    orient: list[np.ndarray] = field(default_factory=list)
    body_pose: list[np.ndarray] = field(default_factory=list)
    head: list[np.ndarray] = field(default_factory=list)
    head_at_depth: list[np.ndarray] = field(default_factory=list)
    pelvis_coarse: list[np.ndarray] = field(default_factory=list)
    pelvis_fine: list[np.ndarray] = field(default_factory=list)
    scale_without: list[float] = field(default_factory=list)
    scale_with: list[float] = field(default_factory=list)
    true_positives: int = 0
    detections: int = 0
    heads: int = 0


def evaluate_network(
    model: Chromm,
    data: Sequence[MultiViewSample],
    body_model: BodyModel,
    limit: int | None = None,
    threshold: float = 0.3,
    nms_kernel: int = 3,
    cache: EncodedCache | None = None,
) -> NetworkScores:
    """Score ``model`` on the first ``limit`` samples of ``data`` (all by default)."""
    device = next(model.parameters()).device
    tally = _Tally()
    count = len(data) if limit is None else min(limit, len(data))
    with torch.no_grad():
        for index in range(count):
            example = training_example(data[index], model.sizes).to(device)
            _score_example(model, example, body_model, threshold, nms_kernel, cache, tally)
    return _scores(tally, count, body_model, device)


def _score_example(
    model: Chromm,
    example: TrainingExample,
    body_model: BodyModel,
    threshold: float,
    nms_kernel: int,
    cache: EncodedCache | None,
    tally: _Tally,
) -> None:
    inputs, targets = example.inputs, example.targets
    encoded = frozen_encoded(model, example.key, inputs, cache)
    scores = model.human.score_map(encoded.tokens)
    _count_detections(suppress_non_maxima(scores, nms_kernel) >= threshold, targets.heads, tally)
    if not len(targets):
        return
    cells = (targets.view, targets.row, targets.col)
    persons = model.find_persons(encoded.seen, encoded.tokens, inputs.K, inputs.square_to_grid, cells=cells)
    placed = predicted_bodies(body_model, persons, inputs.K, scale_adjustment=False)
    truth = true_bodies(body_model, targets)
    pelvis = body_model.joint_names.index("pelvis")
    head = body_model.joint_names.index("head")
    predicted = (placed.joints[:, :BODY_ROTATIONS] - placed.joints[:, pelvis : pelvis + 1]).cpu().numpy()
    true = (truth.joints[:, :BODY_ROTATIONS] - truth.joints[:, pelvis : pelvis + 1]).cpu().numpy()
    tally.joints.append(np.linalg.norm(predicted - true, axis=-1))
    tally.aligned.append(np.linalg.norm(_procrustes(predicted, true) - true, axis=-1))
    tally.truth.append(true)
    tally.orient.append(targets.global_orient.cpu().numpy())
    tally.body_pose.append(targets.body_pose.cpu().numpy())
    true_head = truth.joints[:, head]
    K = inputs.K[persons.view].float()
    at_depth = head_positions(
        "depth_residual", persons.head2d, K, persons.coarse_depth, torch.zeros_like(true_head)
    )
    tally.head.append((persons.head3d - true_head).norm(dim=-1).cpu().numpy())
    tally.head_at_depth.append((at_depth - true_head).norm(dim=-1).cpu().numpy())
    per_square_pixel = np.array(inputs.square_to_grid.scale) / np.array(inputs.grid_map.scale)  # original px
    tally.pelvis_coarse.append(_pixel_error(persons.pelvis2d_coarse, targets.pelvis2d, per_square_pixel))
    tally.pelvis_fine.append(_pixel_error(persons.pelvis2d, targets.pelvis2d, per_square_pixel))
    if targets.depth is not None:
        depth = encoded.seen.outputs["local_points"][0, ..., 2].float()
        _tally_scale(depth, targets.depth, persons, at_depth, inputs.K, body_model, tally)


def _tally_scale(
    depth: torch.Tensor,
    true_depth: torch.Tensor,
    persons: ChrommPersons,
    at_depth: torch.Tensor,
    K: torch.Tensor,
    body_model: BodyModel,
    tally: _Tally,
) -> None:
    """Pi3X's depth scale s (median ratio to the truth) and the head–pelvis factor r of the bodies hung
    at Pi3X's depth (in its scale, as the engine's fused bodies are): |s − 1| and |r·s − 1|."""
    known = torch.isfinite(true_depth) & (true_depth > 0) & (depth > 0)
    if not known.any():
        return
    s = float(torch.median(depth[known] / true_depth[known]))
    joints = predicted_bodies(body_model, replace(persons, head3d=at_depth), K, scale_adjustment=False).joints
    head, pelvis = (body_model.joint_names.index(name) for name in ("head", "pelvis"))
    r = float(head_pelvis_factor(joints[:, head], joints[:, pelvis], persons, K))
    tally.scale_without.append(abs(s - 1))
    tally.scale_with.append(abs(r * s - 1))


def _pixel_error(predicted: torch.Tensor, truth: torch.Tensor, to_original: np.ndarray) -> np.ndarray:
    """Square-pixel points' distance in original pixels (per-axis scales of the two maps)."""
    return np.linalg.norm((predicted - truth).cpu().numpy() * to_original, axis=-1)


def _count_detections(detected: torch.Tensor, heads: torch.Tensor, tally: _Tally) -> None:
    """Match each view's detected cells to its true head cells one to one within ``MATCH_PATCHES``."""
    for view in range(len(heads)):
        found = torch.nonzero(detected[view]).cpu().numpy().astype(float)
        true = torch.nonzero(heads[view]).cpu().numpy().astype(float)
        tally.detections += len(found)
        tally.heads += len(true)
        if len(found) and len(true):
            distance = np.linalg.norm(found[:, None] - true[None], axis=-1)
            rows, cols = linear_sum_assignment(distance)
            tally.true_positives += int((distance[rows, cols] <= MATCH_PATCHES).sum())


def _procrustes(predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Each predicted joint set moved onto the true one by the best similarity (batched Umeyama)."""
    mu_p, mu_t = predicted.mean(1, keepdims=True), true.mean(1, keepdims=True)
    p, t = predicted - mu_p, true - mu_t
    u, sigma, vt = np.linalg.svd(np.einsum("qji,qjk->qik", p, t))
    sign = np.sign(np.linalg.det(np.einsum("qij,qjk->qik", u, vt)))
    d = np.stack([np.ones_like(sign), np.ones_like(sign), sign], -1)
    rotation = np.einsum("qij,qj,qjk->qik", u, d, vt)  # applied as p @ rotation
    scale = (sigma * d).sum(-1) / (p**2).sum((1, 2))
    return scale[:, None, None] * p @ rotation + mu_t


def _baseline(tally: _Tally, body_model: BodyModel, device: torch.device, true_orient: bool) -> float:
    """MPJPE of the evaluated persons' mean pose with the neutral shape: the mean camera-frame global
    orientation too, or (``true_orient``) each person's own."""
    orient = torch.as_tensor(np.concatenate(tally.orient), dtype=torch.float32, device=device)
    poses = torch.as_tensor(np.concatenate(tally.body_pose), dtype=torch.float32, device=device)
    rotations = roma.rotvec_to_rotmat(torch.cat([orient[:, None], poses], dim=1))  # (Q, 22, 3, 3)
    mean = roma.rotmat_to_rotvec(roma.special_procrustes(rotations.mean(0)))
    count = len(orient)
    orient = orient if true_orient else mean[0].expand(count, -1)
    shape = body_model.neutral_shape(count).to(orient)
    output = body_model(
        BodyParameters(orient, orient.new_zeros(count, 3), mean[1:].expand(count, -1, -1), shape),
        vertices=False,
    )
    pelvis = body_model.joint_names.index("pelvis")
    joints = (output.joints[:, :BODY_ROTATIONS] - output.joints[:, pelvis : pelvis + 1]).cpu().numpy()
    return float(np.linalg.norm(joints - np.concatenate(tally.truth), axis=-1).mean() * 1000)


def _scores(tally: _Tally, count: int, body_model: BodyModel, device: torch.device) -> NetworkScores:
    def mean(values: list, unit: float = 1.0) -> float:
        return (
            float(np.mean(np.concatenate(values) if np.ndim(values[0]) else values) * unit)
            if values
            else np.nan
        )

    def mean_mm(values: list[np.ndarray]) -> float:
        return mean(values, 1000.0)

    persons = sum(len(j) for j in tally.joints)
    nan = float("nan")
    return NetworkScores(
        samples=count,
        persons=persons,
        mpjpe_mm=mean_mm(tally.joints),
        pa_mpjpe_mm=mean_mm(tally.aligned),
        baseline_mean_pose_mpjpe_mm=_baseline(tally, body_model, device, False) if persons else nan,
        baseline_true_orientation_mpjpe_mm=_baseline(tally, body_model, device, True) if persons else nan,
        head_error_mm={"predicted": mean_mm(tally.head), "pi3x_depth": mean_mm(tally.head_at_depth)},
        pelvis_px={"coarse": mean(tally.pelvis_coarse), "fine": mean(tally.pelvis_fine)},
        scale_error={"without": mean(tally.scale_without), "with": mean(tally.scale_with)},
        detection={
            "precision": tally.true_positives / max(tally.detections, 1),
            "recall": tally.true_positives / max(tally.heads, 1),
        },
    )
