"""Multi-HMR (Baradel et al. 2024): whole-image multi-person SMPL-X regression, checkpoint-compatible.

A DINOv2 encoder turns a square, ImageNet-normalised image into patch tokens. Every patch scores the
presence of a person's head there; each detected patch regresses a sub-patch offset, and all detected
persons of an image are decoded together by the Human Prediction Head (``core.nets.multihmr.hph``),
conditioned on the patch tokens and on the camera through per-patch ray embeddings
(``core.nets.multihmr.camera_rays``).

The state dict equals the published checkpoints' without their ``smpl_layer.*`` entries: SMPL-X is posed
by ``core.nets.multihmr.smplx_posing.SmplxPoser`` from the user's own model file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import nn

from core.nets.multihmr.camera_rays import FourierRayEmbedding, patch_centre_rays
from core.nets.multihmr.geometry import backproject, depth_from_log_nearness, rotmat_from_6d
from core.nets.multihmr.hph import HumanPredictionHead
from core.nets.vit import DINOV2_SIZES, DinoV2

PATCH_SIZE = 14
HPH_HEAD_DIM = 32
"""Per-head width of the HPH attention: fixed by the reference model, not recoverable from shapes."""
SCORE_CLAMP = 1e-4
"""Scores are kept in ``[SCORE_CLAMP, 1 − SCORE_CLAMP]``."""

BackboneSize = Literal["s", "b", "l", "g"]
Detections = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""``(image, row, col, stack)`` int64 index tensors, one entry per person; ``stack`` is always 0."""


class PatchEncoder(nn.Module):
    """The torch.hub DINOv2 (no registers) that Multi-HMR wraps: patch tokens after the final norm."""

    def __init__(self, size: BackboneSize, depth: int | None = None) -> None:
        """DINOv2 of ``size``; ``depth`` keeps only its first blocks (a truncated backbone, for toy runs)."""
        super().__init__()
        dim, full_depth, heads = DINOV2_SIZES[size]
        depth = full_depth if depth is None else depth
        self.encoder = DinoV2(
            dim, depth, heads, with_mask_token=True, pos_embed_resize="scale_offset", patch_size=PATCH_SIZE
        )

    def forward(self, images: Float[torch.Tensor, "B 3 S S"]) -> Float[torch.Tensor, "B N D"]:
        return self.encoder.split_tokens(self.encoder(images))[2]


def _regression_mlp(dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, out_dim))


def suppress_non_maxima(scores: Float[torch.Tensor, "B H W"], kernel: int) -> Float[torch.Tensor, "B H W"]:
    """Zero every score that is not the maximum of its ``kernel × kernel`` neighbourhood (CenterNet style).

    Even kernels look one cell further up/left than down/right. ``kernel <= 1`` keeps every score.
    """
    if kernel <= 1:
        return scores
    rows, cols = scores.shape[-2:]
    pooled = F.max_pool2d(scores[:, None], kernel, stride=1, padding=kernel // 2)[:, 0, :rows, :cols]
    return scores * (pooled == scores)


class MultiHMR(nn.Module):
    """Detects people in a square image and regresses each one's SMPL-X pose, shape and placement.

    Per-person outputs (P persons over the batch, ordered by image, then row-major cell):
    ``image`` (P,), ``cell`` (P, 2) row/column, ``scores`` (P,), ``offset`` (P, 2) in patches, ``loc``
    (P, 2) head pixel (x, y) in the square image, ``log_depth`` (P, 1) the raw depth regression, ``dist``
    (P, 1) head depth in metres, ``rotmat`` (P, 53, 3, 3) (global orientation, 21 body, 15 + 15 hand
    joints, jaw), ``shape`` (P, betas), ``expression`` (P, 10) and ``transl`` (P, 3) the head in camera
    coordinates; plus ``score_map`` (B, H, W) over the patch grid. Geometry is float32 even under autocast.
    """

    def __init__(
        self,
        backbone: BackboneSize = "l",
        image_size: int = 896,
        hph_depth: int = 2,
        hph_heads: int = 8,
        hph_head_dim: int = HPH_HEAD_DIM,
        hph_dim: int = 1024,
        hph_mlp_dim: int = 1024,
        num_betas: int = 10,
        num_rotations: int = 53,
        num_bands: int = 16,
        max_resolution: int = 64,
        backbone_depth: int | None = None,
    ) -> None:
        """``backbone_depth`` truncates DINOv2 to its first blocks (None: all, as released)."""
        super().__init__()
        if image_size % PATCH_SIZE:
            raise ValueError(f"image size {image_size} is not a multiple of the patch size {PATCH_SIZE}")
        self.image_size = image_size
        self.grid_size = image_size // PATCH_SIZE
        self.backbone = PatchEncoder(backbone, backbone_depth)
        self.camera = FourierRayEmbedding(num_bands, max_resolution)
        dim = DINOV2_SIZES[backbone][0]
        self.mlp_classif = _regression_mlp(dim, 1)
        self.mlp_offset = _regression_mlp(dim, 2)
        self.x_attention_head = HumanPredictionHead(
            context_dim=dim + self.camera.channels,
            grid_size=self.grid_size,
            num_rotations=num_rotations,
            num_betas=num_betas,
            dim=hph_dim,
            depth=hph_depth,
            heads=hph_heads,
            head_dim=hph_head_dim,
            mlp_dim=hph_mlp_dim,
        )

    @classmethod
    def from_key_shapes(cls, shapes: Mapping[str, Sequence[int]]) -> MultiHMR:
        """The model a checkpoint's key → shape table describes; ``smpl_layer.*`` keys are ignored."""
        return cls(**cls.arguments_from_key_shapes(shapes))

    @staticmethod
    def arguments_from_key_shapes(shapes: Mapping[str, Sequence[int]]) -> dict[str, int | str]:
        """The constructor's arguments that a checkpoint's key → shape table describes."""
        width = shapes["backbone.encoder.cls_token"][-1]
        sizes = [name for name, (dim, _, _) in DINOV2_SIZES.items() if dim == width]
        if not sizes:
            raise ValueError(f"no DINOv2 size is {width} wide")
        depth = _count_indices(shapes, r"backbone\.encoder\.blocks\.(\d+)\.norm1\.weight")
        if depth != DINOV2_SIZES[sizes[0]][1]:
            raise ValueError(f"a {width}-wide DINOv2 has {DINOV2_SIZES[sizes[0]][1]} blocks, not {depth}")
        grid_size, context_dim = shapes["x_attention_head.cross_queries_x"]
        layer = "x_attention_head.transformer.transformer.layers.0"
        return dict(
            backbone=sizes[0],
            image_size=grid_size * PATCH_SIZE,
            hph_depth=_count_indices(
                shapes, r"x_attention_head\.transformer\.transformer\.layers\.(\d+)\.0\.norm\.weight"
            ),
            hph_heads=shapes[f"{layer}.0.fn.to_qkv.weight"][0] // (3 * HPH_HEAD_DIM),
            hph_dim=shapes["x_attention_head.transformer.pos_embedding"][-1],
            hph_mlp_dim=shapes[f"{layer}.2.fn.net.0.weight"][0],
            num_betas=shapes["x_attention_head.decshape.weight"][0],
            num_rotations=shapes["x_attention_head.decpose.weight"][0] // 6,
            num_bands=FourierRayEmbedding.bands_for_channels(context_dim - width),
        )

    def score_map(self, tokens: Float[torch.Tensor, "B N D"]) -> Float[torch.Tensor, "B H W"]:
        """Per-patch probability that a person's head is there, clamped away from 0 and 1."""
        logits = self.mlp_classif(tokens).float()
        scores = logits.sigmoid().clamp(SCORE_CLAMP, 1 - SCORE_CLAMP)
        return scores.reshape(len(tokens), self.grid_size, self.grid_size)

    def forward_persons(
        self, x: Float[torch.Tensor, "B 3 S S"], K: Float[torch.Tensor, "B 3 3"], idx: Detections
    ) -> dict[str, torch.Tensor]:
        """The outputs for given person cells (the training-style path: no thresholding, no NMS)."""
        image, row, col, _stack = idx
        tokens = self.backbone(x)
        return self._decode(x, K, tokens, self.score_map(tokens), image, row, col)

    def detect(
        self,
        x: Float[torch.Tensor, "B 3 S S"],
        K: Float[torch.Tensor, "B 3 3"],
        det_thresh: float,
        nms_kernel_size: int,
    ) -> dict[str, torch.Tensor]:
        """The outputs for every cell whose score, after max-pool NMS, reaches ``det_thresh``."""
        tokens = self.backbone(x)
        scores = self.score_map(tokens)
        image, row, col = torch.where(suppress_non_maxima(scores, nms_kernel_size) >= det_thresh)
        return self._decode(x, K, tokens, scores, image, row, col)

    def context(
        self, tokens: Float[torch.Tensor, "B N D"], K: Float[torch.Tensor, "B 3 3"]
    ) -> Float[torch.Tensor, "B N C"]:
        """What the HPH attends to: each patch token with the embedding of its camera ray."""
        rays = patch_centre_rays(K, self.grid_size, self.grid_size, PATCH_SIZE)
        return torch.cat([tokens, self.camera(rays)], dim=-1)

    def head_pixels(
        self,
        tokens: Float[torch.Tensor, "B N D"],
        image: Int[torch.Tensor, " P"],
        row: Int[torch.Tensor, " P"],
        col: Int[torch.Tensor, " P"],
    ) -> tuple[Float[torch.Tensor, "P D"], Float[torch.Tensor, "P 2"], Float[torch.Tensor, "P 2"]]:
        """Each detected cell's token, its sub-patch offset and the head pixel ``(cell + 0.5 + offset) · 14``
        (x, y) in the square."""
        cell_tokens = tokens[image, row * self.grid_size + col]
        offset = self.mlp_offset(cell_tokens).float()
        return cell_tokens, offset, (torch.stack([col, row], dim=-1) + 0.5 + offset) * PATCH_SIZE

    def _decode(
        self,
        x: Float[torch.Tensor, "B 3 S S"],
        K: Float[torch.Tensor, "B 3 3"],
        tokens: Float[torch.Tensor, "B N D"],
        scores: Float[torch.Tensor, "B H W"],
        image: Int[torch.Tensor, " P"],
        row: Int[torch.Tensor, " P"],
        col: Int[torch.Tensor, " P"],
    ) -> dict[str, torch.Tensor]:
        """All persons' outputs at once: offsets per cell, then the HPH over each image's persons jointly."""
        context = self.context(tokens, K)
        cell_tokens, offset, loc = self.head_pixels(tokens, image, row, col)
        head = self.x_attention_head(context, image, row, col)
        person_K = K[image].float()
        log_depth = head["cam"][:, :1]
        dist = depth_from_log_nearness(log_depth, person_K[:, :1, 0], x.shape[-1])
        return {
            "image": image,
            "cell": torch.stack([row, col], dim=-1),
            "scores": scores[image, row, col],
            "offset": offset,
            "loc": loc,
            "log_depth": log_depth,
            "dist": dist,
            "rotmat": rotmat_from_6d(head["pose6d"].unflatten(-1, (-1, 6))),
            "shape": head["betas"],
            "expression": head["expression"],
            "transl": backproject(loc, dist, person_K),
            "score_map": scores,
            "token": cell_tokens.float(),
        }


def _count_indices(shapes: Mapping[str, Sequence[int]], pattern: str) -> int:
    """How many consecutive module indices (0, 1, ...) the keys matching ``pattern`` cover."""
    found = {int(match.group(1)) for key in shapes if (match := re.fullmatch(pattern, key))}
    if found != set(range(len(found))):
        raise ValueError(f"non-consecutive indices for {pattern}: {sorted(found)}")
    return len(found)
