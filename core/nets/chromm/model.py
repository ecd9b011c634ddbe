"""CHROMM's network: Pi3X and Multi-HMR joined after decoding, as the paper describes it.

Per view, Pi3X decodes the scene (points, confidence, cameras, metric scale) and Multi-HMR's backbone
finds heads (score map, max-pool suppression, threshold, sub-patch offset). Late fusion: each head's
Multi-HMR context token (patch token and camera-ray embedding) is concatenated with Pi3X's decoder
feature read at the head's pixel (the concatenation of the last two decoder blocks) and mapped by
``fuse`` to the person's query, which Multi-HMR's prediction head decodes against the image's context
into 6D rotations of 53 joints, shape and expression. The head's translation is a residual on Pi3X's
metric depth at the head pixel (or, for the paper's ablation, a depth or a translation regressed
directly). The query also regresses a coarse pelvis; the patch token there regresses a sub-patch offset
and a pelvis score (coarse-to-fine), which feed the head–pelvis scale adjustment.

Sizes are constructor arguments (``ChrommSizes``), with a tiny configuration for tests; the Pi3X and
Multi-HMR parts keep their checkpoint names under ``scene.`` and ``human.``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import nn

from core.nets.chromm.grid import apply_map, depth_at, patch_features_at
from core.nets.chromm.placement import TranslationMode, head_positions, pelvis_cells, refined_pelvis
from core.nets.image_map import PixelMap
from core.nets.multihmr.geometry import rotmat_from_6d
from core.nets.multihmr.model import MultiHMR, suppress_non_maxima
from core.nets.pi3x.model import PATCH_SIZE, Pi3X
from core.nets.pi3x.preprocess import PIXEL_LIMIT

_TINY_PI3X = dict(
    encoder_depth=1,
    decoder_depth=2,
    point_decoder_depth=1,
    conf_decoder_depth=1,
    camera_decoder_depth=1,
    metric_decoder_depth=1,
    dim=128,
    camera_dim=64,
    metric_dim=64,
    num_registers=2,
    encoder_registers=0,
    use_multimodal=False,
    head_width=64,
)
_TINY_MULTIHMR = dict(
    backbone="s", backbone_depth=4, image_size=224, hph_depth=1, hph_heads=2, hph_dim=64, hph_mlp_dim=64
)


@dataclass(frozen=True)
class ChrommSizes:
    """Everything that shapes the network; saved with its checkpoints. The defaults are the paper's:
    the released Pi3X and Multi-HMR-L at 896 pixels."""

    pi3x: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``Pi3X`` (empty: the released model)."""
    multihmr: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``MultiHMR`` (empty: Multi-HMR-L at 896 pixels)."""
    fuse_hidden: int = 1024
    """Hidden width of ``MLP_fuse``."""
    pelvis_hidden: int = 512
    """Hidden width of the coarse and fine pelvis heads."""
    translation: TranslationMode = "depth_residual"
    """How the head's position is regressed (the paper's ablation)."""
    scene_pixels: int = PIXEL_LIMIT
    """Pixel budget of Pi3X's input (as released: ``PIXEL_LIMIT``; the tiny one keeps 224² renders)."""

    @staticmethod
    def tiny() -> ChrommSizes:
        """A configuration small enough for tests and toy training on a CPU: Pi3X and Multi-HMR-S truncated,
        both at 224 pixels."""
        return ChrommSizes(
            dict(_TINY_PI3X), dict(_TINY_MULTIHMR), fuse_hidden=64, pelvis_hidden=32, scene_pixels=224 * 224
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ChrommPersons:
    """The persons of a batch of views, one row each (ordered by view, then row-major cell). Pixels are
    Multi-HMR square pixels (edge-based); 3D is in each view's camera frame, metres."""

    view: Int[torch.Tensor, " P"]
    score: Float[torch.Tensor, " P"]
    head2d: Float[torch.Tensor, "P 2"]
    head3d: Float[torch.Tensor, "P 3"]
    coarse_depth: Float[torch.Tensor, " P"]
    """Pi3X's metric depth at the head pixel."""
    pelvis2d_coarse: Float[torch.Tensor, "P 2"]
    pelvis2d: Float[torch.Tensor, "P 2"]
    """The refined pelvis, or the coarse one where the refinement left the image."""
    pelvis_refined: torch.Tensor
    pelvis_logit: Float[torch.Tensor, " P"]
    """The fine head's pelvis score (a logit: the paper's pelvis BCE)."""
    rotmat: Float[torch.Tensor, "P 53 3 3"]
    """Global orientation, 21 body, 15 + 15 hand joints and the jaw (SMPL-X layout, camera frame)."""
    shape: Float[torch.Tensor, "P B"]
    expression: Float[torch.Tensor, "P 10"]
    token: Float[torch.Tensor, "P C"]
    """The fused query (the tracking embedding: the paper matches frames by head tokens)."""

    def __len__(self) -> int:
        return int(self.view.shape[0])


@dataclass(frozen=True)
class ScenePass:
    """One Pi3X pass on the views of an instant: its outputs and the decoder features persons read."""

    outputs: dict[str, torch.Tensor]
    features: Float[torch.Tensor, "N T F"]
    rows: int
    cols: int


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))


class Chromm(nn.Module):
    """The scene branch (``scene``: Pi3X), the human branch (``human``: Multi-HMR) and the new modules."""

    def __init__(
        self, sizes: ChrommSizes | None = None, scene: Pi3X | None = None, human: MultiHMR | None = None
    ) -> None:
        """A network of ``sizes``; given ``scene`` and ``human`` (loaded priors, of those sizes) are used
        as they are, and only the new modules are initialised."""
        super().__init__()
        self.sizes = sizes = sizes or ChrommSizes()
        self.scene = scene if scene is not None else Pi3X(**sizes.pi3x)
        self.human = human if human is not None else MultiHMR(**sizes.multihmr)
        head = self.human.x_attention_head
        context_dim = head.cross_queries_x.shape[1]
        scene_dim = 2 * self.scene.register_token.shape[-1]
        token_dim = head.decpose.in_features
        self.fuse = _mlp(context_dim + scene_dim, sizes.fuse_hidden, context_dim)
        self.translation_head = nn.Linear(token_dim, 3)
        self.coarse_pelvis = _mlp(context_dim, sizes.pelvis_hidden, 2)
        self.fine_pelvis = _mlp(self.human.mlp_offset[0].in_features, sizes.pelvis_hidden, 3)

    def new_modules(self) -> tuple[nn.Module, ...]:
        """What CHROMM adds to its two priors, freshly initialised."""
        return (self.fuse, self.translation_head, self.coarse_pelvis, self.fine_pelvis)

    def trained_parameters(self) -> dict[str, nn.Parameter]:
        """What the paper's first training stage trains: the new modules and the SMPL-X decoder, less
        Multi-HMR's camera head (``deccam``: the translation comes from the depth residual instead)."""
        frozen = ("scene.", "human.backbone.", "human.mlp_classif.", "human.mlp_offset.", "human.camera.")
        return {
            name: parameter
            for name, parameter in self.named_parameters()
            if not name.startswith(frozen) and not name.startswith("human.x_attention_head.deccam.")
        }

    def encoders(self) -> tuple[nn.Module, ...]:
        """What stays frozen: Pi3X whole, and Multi-HMR's backbone, detection and ray embedding."""
        human = self.human
        return (self.scene, human.backbone, human.mlp_classif, human.mlp_offset, human.camera)

    def forward(
        self,
        scene_images: Float[torch.Tensor, "1 N 3 h w"],
        squares: Float[torch.Tensor, "N 3 S S"],
        K: Float[torch.Tensor, "N 3 3"],
        square_to_grid: PixelMap,
        threshold: float = 0.3,
        nms_kernel: int = 3,
        cells: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[dict[str, torch.Tensor], ChrommPersons]:
        """The scene (Pi3X's outputs) and the persons of ``N`` views of one instant.

        ``scene_images`` and ``squares`` are the Pi3X and Multi-HMR inputs of the same frames, ``K`` the
        square intrinsics, ``square_to_grid`` the map between the two (``grid.square_to_grid``). Persons
        are the cells whose suppressed score reaches ``threshold``, or the given ``cells`` (view, row,
        column: the ground-truth heads, as training queries them).
        """
        seen, tokens = self.see(scene_images), self.human.backbone(squares)
        return seen.outputs, self.find_persons(seen, tokens, K, square_to_grid, threshold, nms_kernel, cells)

    def see(self, scene_images: Float[torch.Tensor, "1 N 3 h w"]) -> ScenePass:
        """The scene branch alone: one Pi3X pass, kept whole for ``find_persons``."""
        outputs, features = self.scene.reconstruct(scene_images)
        rows, cols = (size // PATCH_SIZE for size in scene_images.shape[-2:])
        return ScenePass(outputs, features, rows, cols)

    def find_persons(
        self,
        seen: ScenePass,
        tokens: Float[torch.Tensor, "N G D"],
        K: Float[torch.Tensor, "N 3 3"],
        square_to_grid: PixelMap,
        threshold: float = 0.3,
        nms_kernel: int = 3,
        cells: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> ChrommPersons:
        """The human branch past its backbone (``tokens``: ``human.backbone`` of the squares) and the
        fusion, on a scene pass of the same views (see ``forward``). Both inputs come from the frozen
        encoders, so that training may read them from a cache."""
        features, scene, rows, cols = seen.features, seen.outputs, seen.rows, seen.cols
        human = self.human
        scores = human.score_map(tokens)
        if cells is None:
            cells = torch.where(suppress_non_maxima(scores, nms_kernel) >= threshold)
        view, row, col = cells
        context = human.context(tokens, K)
        _, _, head2d = human.head_pixels(tokens, view, row, col)
        grid_pixels = apply_map(square_to_grid, head2d)
        scene_features = patch_features_at(features, rows, cols, view, grid_pixels)
        coarse_depth = depth_at(scene["local_points"][0, ..., 2], view, grid_pixels)

        cell_context = context[view, row * human.grid_size + col]
        query = self.fuse(torch.cat([cell_context, scene_features.to(cell_context.dtype)], dim=-1))
        decoded = human.x_attention_head.decode(context, view, row, col, query)
        body = human.x_attention_head.regress(decoded)
        regressed = self.translation_head(decoded).float()
        head3d = head_positions(
            self.sizes.translation, head2d, K[view].float(), coarse_depth.float(), regressed
        )

        size = human.image_size
        coarse = head2d + PATCH_SIZE * self.coarse_pelvis(query).float()
        pelvis_row, pelvis_col = pelvis_cells(coarse, size)
        fine = self.fine_pelvis(tokens[view, pelvis_row * human.grid_size + pelvis_col]).float()
        pelvis2d, refined = refined_pelvis(coarse, fine[:, :2], size)
        return ChrommPersons(
            view=view,
            score=scores[view, row, col],
            head2d=head2d,
            head3d=head3d,
            coarse_depth=coarse_depth,
            pelvis2d_coarse=coarse,
            pelvis2d=pelvis2d,
            pelvis_refined=refined,
            pelvis_logit=fine[:, 2],
            rotmat=rotmat_from_6d(body["pose6d"].unflatten(-1, (-1, 6))),
            shape=body["betas"],
            expression=body["expression"],
            token=query.float(),
        )
