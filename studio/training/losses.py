"""CHROMM's training losses, on the persons the network regressed for the ground-truth head cells.

The predicted body is the body model (core's interface: Anny, or SMPL-X from the user's files) posed by
the regressed rotations and shape and hung from the regressed head position, in each view's camera
frame; the true one is the same model posed by the ground truth. Terms (the paper's, its weights in
``LossWeights``): 3D vertex and joint L1 about the pelvis (metres) and of the placed head (apart: at toy
scale the placement's metres of error would drown the pose's centimetres), 2D reprojection L1 of the
joints (in square widths),
body-parameter L1 (rotation matrices of the 22 body joints, shape), head-detection BCE on the score map,
pelvis BCE with the coarse and fine pelvis L1 (in patches), and, in stage 2, a Chamfer distance between
the body's visible vertices and Pi3X's points of that person.

Shapes: the network's first ``shape_dim`` shape outputs are offsets from the body model's neutral shape
(Anny's phenotypes, SMPL-X's zero betas), so that a zero output is an average adult for either model.

Head–pelvis scale adjustment (the paper's test-time step, made differentiable): per instant,
``r = mean over persons of ℓ_body / ℓ_img``, the projected head–pelvis length of the placed body over the
one the network's 2D head and pelvis give, and every head position (and Pi3X's points) is multiplied by
``r``. A wrong 2D pelvis then moves the bodies, which is how the Chamfer term trains the pelvis heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import roma
import torch
import torch.nn.functional as F
from jaxtyping import Float

from core.body.model import BodyModel, BodyOutput, BodyParameters
from core.nets.chromm.model import PATCH_SIZE, ChrommPersons, ScenePass
from core.nets.chromm.placement import pelvis_cells
from studio.training.batch import NetworkInputs, Targets

BODY_ROTATIONS = 22
"""Global orientation and the 21 body joints: what the body models pose (hands and jaw are not)."""
MIN_PIXEL_LENGTH = 8.0
"""Head–pelvis lengths shorter than this (square pixels) do not vote for the scale."""
VISIBLE_TOLERANCE = 0.1
"""A vertex this far (metres) behind the depth map at its pixel still counts as visible."""
CHAMFER_POINTS = 256
"""Pi3X points per person in the Chamfer term (a random subset of its mask)."""


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (the paper's λ = 5 for the 3D terms)."""

    vertices: float = 5.0
    """3D vertex L1 about the pelvis, metres."""
    joints: float = 5.0
    """3D joint L1 about the pelvis, metres."""
    translation: float = 1.0
    """3D L1 of the regressed head, metres: where the body is, apart from its pose. Never rescaled by
    the head–pelvis factor, which would leave the head's distance unsupervised (r undoes its scale)."""
    reprojection: float = 1.0
    """2D joint L1, in widths of the square."""
    parameters: float = 1.0
    """Rotation-matrix and shape L1."""
    detection: float = 1.0
    """Head-detection BCE, positives and negatives weighted alike."""
    pelvis: float = 1.0
    """Pelvis BCE plus coarse and fine pelvis L1 in patches."""
    chamfer: float = 1.0
    """Visible body vertices ↔ Pi3X's points of the person, metres (stage 2)."""


@dataclass(frozen=True)
class Placement:
    """Bodies in each view's camera frame."""

    joints: Float[torch.Tensor, "Q J 3"]
    vertices: Float[torch.Tensor, "Q N 3"]
    scale: torch.Tensor
    """The head–pelvis factor applied (1 when the adjustment is off)."""


def true_bodies(model: BodyModel, targets: Targets) -> BodyOutput:
    """The ground-truth bodies of the queries, camera frame."""
    return model(BodyParameters(targets.global_orient, targets.transl, targets.body_pose, targets.shape))


def predicted_bodies(
    model: BodyModel,
    persons: ChrommPersons,
    K: Float[torch.Tensor, "V 3 3"],
    scale_adjustment: bool,
) -> Placement:
    """The regressed bodies hung from their heads (scaled by the head–pelvis factor when asked)."""
    count = len(persons)
    rotvec = roma.rotmat_to_rotvec(persons.rotmat[:, :BODY_ROTATIONS].float())
    shape = model.neutral_shape(count).to(rotvec) + persons.shape[:, : model.shape_dim].float()
    posed = model(BodyParameters(rotvec[:, 0], rotvec.new_zeros(count, 3), rotvec[:, 1:], shape))
    head = model.joint_names.index("head")
    lift = persons.head3d - posed.joints[:, head]
    scale = persons.head3d.new_ones(())
    if scale_adjustment:
        pelvis = model.joint_names.index("pelvis")
        joints = posed.joints + lift[:, None]
        scale = head_pelvis_factor(joints[:, head], joints[:, pelvis], persons, K)
    lift = lift + (scale - 1) * persons.head3d
    return Placement(posed.joints + lift[:, None], posed.vertices + lift[:, None], scale)


def head_pelvis_factor(
    head: Float[torch.Tensor, "Q 3"],
    pelvis: Float[torch.Tensor, "Q 3"],
    persons: ChrommPersons,
    K: Float[torch.Tensor, "V 3 3"],
) -> torch.Tensor:
    """``r``: the mean of the placed bodies' projected head–pelvis lengths over the network's own."""
    K = K[persons.view]
    measured = (project(head, K) - project(pelvis, K)).norm(dim=-1)
    detected = (persons.head2d - persons.pelvis2d).norm(dim=-1)
    usable = detected >= MIN_PIXEL_LENGTH
    if not usable.any():
        return head.new_ones(())
    return (measured[usable] / detected[usable]).mean()


def project(points: Float[torch.Tensor, "Q *J 3"], K: Float[torch.Tensor, "Q 3 3"]) -> torch.Tensor:
    """Camera-frame points to pixels of their view's ``K`` (depth floored at 1 cm)."""
    K = K.reshape(K.shape[0], *([1] * (points.dim() - 2)), 3, 3)
    pixels = (K @ points[..., None])[..., 0]
    return pixels[..., :2] / pixels[..., 2:].clamp_min(0.01)


def chromm_losses(
    persons: ChrommPersons,
    scores: Float[torch.Tensor, "V g g"],
    seen: ScenePass,
    inputs: NetworkInputs,
    targets: Targets,
    model: BodyModel,
    weights: LossWeights,
    scale_adjustment: bool,
    chamfer: bool,
) -> dict[str, torch.Tensor]:
    """Each term (weighted) and their sum, ``"total"``, for one instant."""
    terms = {"detection": weights.detection * detection_loss(scores, targets.heads)}
    if len(targets):
        side = inputs.squares.shape[-1]
        truth = true_bodies(model, targets)
        placed = predicted_bodies(model, persons, inputs.K, scale_adjustment)
        K = inputs.K[persons.view]
        in_front = (truth.joints[..., 2] > 0.05)[..., None]
        pixel_error = (project(placed.joints, K) - project(truth.joints, K)).abs().sum(-1, keepdim=True)
        in_view = (pixel_error * in_front).sum() / (side * in_front.sum()).clamp_min(1)
        pelvis, head = (model.joint_names.index(name) for name in ("pelvis", "head"))
        pose = placed.vertices - placed.joints[:, pelvis : pelvis + 1]
        true_pose = truth.vertices - truth.joints[:, pelvis : pelvis + 1]
        joints = placed.joints - placed.joints[:, pelvis : pelvis + 1]
        true_joints = truth.joints - truth.joints[:, pelvis : pelvis + 1]
        head_error = (persons.head3d - truth.joints[:, head]).abs().mean()  # as regressed, never rescaled
        terms |= {
            "vertices": weights.vertices * (pose - true_pose).abs().mean(),
            "joints": weights.joints * (joints - true_joints).abs().mean(),
            "translation": weights.translation * head_error,
            "reprojection": weights.reprojection * in_view,
            "parameters": weights.parameters * parameter_loss(persons, targets, model),
            "pelvis": weights.pelvis * pelvis_loss(persons, targets.pelvis2d, side),
        }
        if chamfer and targets.masks is not None:
            terms["chamfer"] = weights.chamfer * chamfer_loss(placed, persons, seen, inputs, targets)
    terms["total"] = torch.stack(list(terms.values())).sum()
    return terms


def detection_loss(scores: Float[torch.Tensor, "V g g"], heads: Float[torch.Tensor, "V g g"]) -> torch.Tensor:
    """BCE of the score map, the mean over positives and over negatives weighted alike (a few heads
    among hundreds of cells)."""
    scores, heads = scores.float(), heads.to(scores.device)
    positive = -(scores.log() * heads).sum() / heads.sum().clamp_min(1)
    negative = -((1 - scores).log() * (1 - heads)).sum() / (1 - heads).sum().clamp_min(1)
    return 0.5 * (positive + negative)


def parameter_loss(persons: ChrommPersons, targets: Targets, model: BodyModel) -> torch.Tensor:
    """L1 of the 22 body rotations (as matrices: no wrap-around) and of the shape offsets."""
    true_rotations = roma.rotvec_to_rotmat(torch.cat([targets.global_orient[:, None], targets.body_pose], 1))
    rotations = (persons.rotmat[:, :BODY_ROTATIONS].float() - true_rotations).abs().mean()
    offsets = targets.shape - model.neutral_shape(len(targets)).to(targets.shape)
    shape = (persons.shape[:, : model.shape_dim].float() - offsets).abs().mean()
    return rotations + shape


def pelvis_loss(persons: ChrommPersons, truth: Float[torch.Tensor, "Q 2"], side: int) -> torch.Tensor:
    """Coarse and fine pelvis L1 (patches) and the BCE of the fine head's score: 1 where the patch it
    read holds the true pelvis."""
    coarse = (persons.pelvis2d_coarse - truth).abs().sum(-1).mean() / PATCH_SIZE
    refined = persons.pelvis_refined
    fine = (
        ((persons.pelvis2d - truth).abs().sum(-1) * refined).sum() / refined.sum().clamp_min(1) / PATCH_SIZE
    )
    row, col = pelvis_cells(persons.pelvis2d_coarse, side)
    held = (torch.floor(truth[:, 1] / PATCH_SIZE) == row) & (torch.floor(truth[:, 0] / PATCH_SIZE) == col)
    score = F.binary_cross_entropy_with_logits(persons.pelvis_logit.float(), held.float())
    return coarse + fine + score


def chamfer_loss(
    placed: Placement, persons: ChrommPersons, seen: ScenePass, inputs: NetworkInputs, targets: Targets
) -> torch.Tensor:
    """Mean over persons of the symmetric Chamfer distance between the body's vertices in front of Pi3X's
    (scaled) depth at their pixel and ``CHAMFER_POINTS`` of Pi3X's (scaled) points drawn from the
    person's mask; persons without either are left out."""
    view = persons.view
    points = seen.outputs["local_points"][0].float() * placed.scale  # (V, h, w, 3)
    height, width = points.shape[1:3]
    mask = (targets.masks.to(view.device)[view] == targets.person.to(view.device)[:, None, None]).flatten(1)
    has_mask = mask.any(dim=1)
    draw = torch.multinomial(mask.float() + ~has_mask[:, None], CHAMFER_POINTS, replacement=True)  # (Q, C)
    cloud = points.flatten(1, 2)[view[:, None], draw]  # (Q, C, 3)

    to_grid = inputs.square_to_grid
    pixel = project(placed.vertices, inputs.K[view]) * placed.vertices.new_tensor(
        to_grid.scale
    ) + placed.vertices.new_tensor(to_grid.offset)  # (Q, N, 2) on Pi3X's grid
    col = pixel[..., 0].round().long().clamp(0, width - 1)
    row = pixel[..., 1].round().long().clamp(0, height - 1)
    behind = points[view[:, None], row, col, 2] + VISIBLE_TOLERANCE  # (Q, N)
    visible = placed.vertices[..., 2] <= behind
    used = has_mask & visible.any(dim=1)
    if not used.any():
        return placed.vertices.new_zeros(())
    pairwise = torch.cdist(placed.vertices, cloud)  # (Q, N, C)
    to_cloud = (pairwise.min(dim=2).values * visible).sum(1) / visible.sum(1).clamp_min(1)
    to_body = pairwise.masked_fill(~visible[..., None], torch.inf).min(dim=1).values.mean(1)
    return (to_cloud + to_body)[used].mean()
