"""Multi-HMR's Human Prediction Head (HPH): one query token per detected person, decoded jointly.

Each person's token attends to the other persons of its image (self-attention, padding masked out) and to
the image's dense features (cross-attention); learned row/column embeddings mark, in both the queries and
the context, which cells hold a detection. The decoded token regresses SMPL-X parameters as residuals to
mean-pose buffers. Attribute names follow the published checkpoint (``transformer.transformer.layers``,
``to_qkv``, ``to_out.0``, ``fn.net.3``...), so its state dict loads without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import nn

NUM_EXPRESSION = 10
"""SMPL-X expression coefficients the head regresses."""
NUM_KID_BETAS = 11
"""Length of the checkpoint's (unused) ``init_betas_kid`` buffer: 10 mean betas and the kid blend weight."""


def _split_heads(x: Float[torch.Tensor, "B N HD"], heads: int) -> Float[torch.Tensor, "B H N D"]:
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def _merge_heads(x: Float[torch.Tensor, "B H N D"]) -> Float[torch.Tensor, "B N HD"]:
    return x.transpose(1, 2).flatten(2)


class PersonSelfAttention(nn.Module):
    """Attention among the persons of one image; padded person slots are never attended to."""

    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * heads * head_dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * head_dim, dim))

    def forward(
        self, x: Float[torch.Tensor, "B P C"], person_mask: Bool[torch.Tensor, "B P"]
    ) -> Float[torch.Tensor, "B P C"]:
        q, k, v = (_split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=person_mask[:, None, None, :])
        return self.to_out(_merge_heads(attended))


class ContextCrossAttention(nn.Module):
    """Attention from each person token to every feature of its image."""

    def __init__(self, dim: int, context_dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_kv = nn.Linear(context_dim, 2 * heads * head_dim, bias=False)
        self.to_q = nn.Linear(dim, heads * head_dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * head_dim, dim))

    def forward(
        self, x: Float[torch.Tensor, "B P C"], context: Float[torch.Tensor, "B N K"]
    ) -> Float[torch.Tensor, "B P C"]:
        k, v = (_split_heads(t, self.heads) for t in self.to_kv(context).chunk(2, dim=-1))
        attended = F.scaled_dot_product_attention(_split_heads(self.to_q(x), self.heads), k, v)
        return self.to_out(_merge_heads(attended))


class FeedForward(nn.Module):
    """Linear, exact GELU, linear. The checkpoint stores the second linear at index 3 of ``net``."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim), nn.GELU(), nn.Identity(), nn.Linear(hidden_dim, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PreNorm(nn.Module):
    """``fn(LayerNorm(x), ...)``; the residual is added by the caller."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x), *args)


class PersonLayers(nn.Module):
    """``depth`` × (self-attention, cross-attention, MLP), each pre-normed with a residual."""

    def __init__(
        self, dim: int, context_dim: int, depth: int, heads: int, head_dim: int, mlp_dim: int
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PreNorm(dim, PersonSelfAttention(dim, heads, head_dim)),
                    PreNorm(dim, ContextCrossAttention(dim, context_dim, heads, head_dim)),
                    PreNorm(dim, FeedForward(dim, mlp_dim)),
                ]
            )
            for _ in range(depth)
        )

    def forward(
        self,
        x: Float[torch.Tensor, "B P C"],
        context: Float[torch.Tensor, "B N K"],
        person_mask: Bool[torch.Tensor, "B P"],
    ) -> Float[torch.Tensor, "B P C"]:
        for self_attention, cross_attention, feed_forward in self.layers:
            x = x + self_attention(x, person_mask)
            x = x + cross_attention(x, context)
            x = x + feed_forward(x)
        return x


class PersonDecoder(nn.Module):
    """Embeds the person tokens (plus one learned offset shared by all) and runs the layers."""

    def __init__(
        self, token_dim: int, dim: int, context_dim: int, depth: int, heads: int, head_dim: int, mlp_dim: int
    ) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.zeros(1, 1, dim))
        self.to_token_embedding = nn.Linear(token_dim, dim)
        self.transformer = PersonLayers(dim, context_dim, depth, heads, head_dim, mlp_dim)

    def forward(
        self,
        tokens: Float[torch.Tensor, "B P T"],
        context: Float[torch.Tensor, "B N K"],
        person_mask: Bool[torch.Tensor, "B P"],
    ) -> Float[torch.Tensor, "B P C"]:
        x = self.to_token_embedding(tokens) + self.pos_embedding
        return self.transformer(x, context, person_mask)


def _slots_in_image(image: Int[torch.Tensor, " P"], num_images: int) -> Int[torch.Tensor, " P"]:
    """Each person's rank among the persons of its image, in the given order."""
    counts = F.one_hot(image, num_images).cumsum(0)
    return counts.gather(1, image[:, None])[:, 0] - 1


class HumanPredictionHead(nn.Module):
    """Joint decoding of every detected person into 6D rotations, betas, expression and a camera triple.

    ``init_*`` are buffers holding the mean parameters the residuals are added to; they come with the
    checkpoint (placeholders here: identity rotations, zero shape and camera).
    """

    def __init__(
        self,
        context_dim: int,
        grid_size: int,
        num_rotations: int = 53,
        num_betas: int = 10,
        dim: int = 1024,
        depth: int = 2,
        heads: int = 8,
        head_dim: int = 32,
        mlp_dim: int = 1024,
    ) -> None:
        super().__init__()
        pose_dim = 6 * num_rotations
        self.cross_queries_x = nn.Parameter(torch.zeros(grid_size, context_dim))
        self.cross_queries_y = nn.Parameter(torch.zeros(grid_size, context_dim))
        self.cross_values_x = nn.Parameter(torch.zeros(grid_size, context_dim))
        self.cross_values_y = nn.Parameter(torch.zeros(grid_size, context_dim))
        identity_6d = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).repeat(num_rotations)
        self.register_buffer("init_body_pose", identity_6d[None])
        self.register_buffer("init_betas", torch.zeros(1, num_betas))
        self.register_buffer("init_betas_kid", torch.zeros(1, NUM_KID_BETAS))
        self.register_buffer("init_cam", torch.zeros(1, 3))
        self.register_buffer("init_expression", torch.zeros(1, NUM_EXPRESSION))
        token_dim = context_dim + pose_dim + num_betas + 3
        self.transformer = PersonDecoder(token_dim, dim, context_dim, depth, heads, head_dim, mlp_dim)
        self.decpose = nn.Linear(dim, pose_dim)
        self.decshape = nn.Linear(dim, num_betas)
        self.deccam = nn.Linear(dim, 3)
        self.decexpression = nn.Linear(dim, NUM_EXPRESSION)

    def forward(
        self,
        context: Float[torch.Tensor, "B N K"],
        image: Int[torch.Tensor, " P"],
        row: Int[torch.Tensor, " P"],
        col: Int[torch.Tensor, " P"],
    ) -> dict[str, torch.Tensor]:
        """Per-person ``pose6d`` (P, 6R), ``betas``, ``expression`` and ``cam`` (P, 3), all float32.

        ``context`` holds each image's features on a row-major grid; persons are given by
        image, row and column (none gives empty outputs). Only images with persons are decoded, padded to the
        largest person count.
        """
        return self.regress(self.decode(context, image, row, col))

    def regress(self, decoded: Float[torch.Tensor, "P C"]) -> dict[str, torch.Tensor]:
        """The SMPL-X parameters and camera triple of decoded person tokens, as residuals to the means."""
        heads = {
            "pose6d": (self.decpose, self.init_body_pose),
            "betas": (self.decshape, self.init_betas),
            "cam": (self.deccam, self.init_cam),
            "expression": (self.decexpression, self.init_expression),
        }
        return {name: head(decoded).float() + init.float() for name, (head, init) in heads.items()}

    def decode(
        self,
        context: Float[torch.Tensor, "B N K"],
        image: Int[torch.Tensor, " P"],
        row: Int[torch.Tensor, " P"],
        col: Int[torch.Tensor, " P"],
        queries: Float[torch.Tensor, "P K"] | None = None,
    ) -> Float[torch.Tensor, "P C"]:
        """Each person's decoded token. Its query is the context at its cell unless ``queries`` are given
        (CHROMM's fused tokens), plus the learned row and column embeddings either way."""
        if not len(image):
            return context.new_zeros(0, self.decpose.in_features)
        used, image_slot = torch.unique(image, return_inverse=True)
        person_slot = _slots_in_image(image_slot, len(used))
        cell = row * self.cross_queries_x.shape[0] + col
        context = context[used]
        at_cells = context[image_slot, cell]
        queries = (
            (at_cells if queries is None else queries) + self.cross_queries_x[row] + self.cross_queries_y[col]
        )
        marked = at_cells + self.cross_values_x[row] + self.cross_values_y[col]
        context = context.index_put((image_slot, cell), marked)

        inits = (self.init_body_pose, self.init_betas, self.init_cam)
        tokens = torch.cat([queries, *(init.expand(len(queries), -1) for init in inits)], dim=-1)
        slots = (len(used), int(person_slot.max()) + 1)
        padded = tokens.new_zeros(*slots, tokens.shape[-1]).index_put((image_slot, person_slot), tokens)
        person_mask = torch.zeros(slots, dtype=torch.bool, device=tokens.device)
        person_mask = person_mask.index_put(
            (image_slot, person_slot), torch.tensor(True, device=tokens.device)
        )
        return self.transformer(padded, context, person_mask)[image_slot, person_slot]
