"""The transformer stacks of Pi3X after the encoder: its frame/global decoder blocks and the head decoders.

Module names (``projects``, ``blocks``, ``linear_out``, ``cross_attn.q_proj``, ``norm_y``...) follow the
published checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import nn

from core.nets.pi3x.rope2d import RoPE2D
from core.nets.vit import LAYER_NORM_EPS, Mlp, TransformerBlock

HEAD_DIM = 64
"""Channels per attention head in every Pi3X transformer."""


def decoder_block(dim: int, rope: RoPE2D | None) -> TransformerBlock:
    """One block of the main decoder (or of the unused pose-injection stack): LayerScale and q/k norm."""
    return TransformerBlock(dim, dim // HEAD_DIM, layer_scale=True, qk_norm=True, rope=rope)


class HeadDecoder(nn.Module):
    """Projects the concatenated decoder features, runs plain RoPE blocks over them, maps to ``out_dim``."""

    def __init__(self, in_dim: int, dim: int, out_dim: int, depth: int, rope: RoPE2D) -> None:
        super().__init__()
        self.projects = nn.Linear(in_dim, dim)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, dim // HEAD_DIM, layer_scale=False, rope=rope) for _ in range(depth)
        )
        self.linear_out = nn.Linear(dim, out_dim)

    def forward(
        self, tokens: Float[torch.Tensor, "B T Din"], positions: Int[torch.Tensor, "B T 2"]
    ) -> Float[torch.Tensor, "B T Dout"]:
        x = self.projects(tokens)
        for block in self.blocks:
            x = block(x, positions)
        return self.linear_out(x)


class CrossAttention(nn.Module):
    """Multi-head attention of queries onto a separate context, with RoPE on both sides."""

    def __init__(self, dim: int, rope: RoPE2D) -> None:
        super().__init__()
        self.num_heads = dim // HEAD_DIM
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope

    def heads(self, x: Float[torch.Tensor, "B N D"]) -> Float[torch.Tensor, "B H N C"]:
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def forward(
        self,
        queries: Float[torch.Tensor, "B Q D"],
        context: Float[torch.Tensor, "B M D"],
        query_positions: Int[torch.Tensor, "B Q 2"],
        context_positions: Int[torch.Tensor, "B M 2"],
    ) -> Float[torch.Tensor, "B Q D"]:
        q = self.rope(self.heads(self.q_proj(queries)), query_positions)
        k = self.rope(self.heads(self.k_proj(context)), context_positions)
        v = self.heads(self.v_proj(context))
        attended = F.scaled_dot_product_attention(q, k, v)
        return self.proj(attended.transpose(1, 2).flatten(2))


class ContextBlock(nn.Module):
    """Pre-norm cross-attention onto a separately normalised context, then an MLP; no self-attention."""

    def __init__(self, dim: int, rope: RoPE2D, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.norm_y = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.cross_attn = CrossAttention(dim, rope)
        self.norm3 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(
        self,
        x: Float[torch.Tensor, "B Q D"],
        context: Float[torch.Tensor, "B M D"],
        positions: Int[torch.Tensor, "B Q 2"],
        context_positions: Int[torch.Tensor, "B M 2"],
    ) -> Float[torch.Tensor, "B Q D"]:
        x = x + self.cross_attn(self.norm2(x), self.norm_y(context), positions, context_positions)
        return x + self.mlp(self.norm3(x))


class ContextDecoder(nn.Module):
    """Query tokens that only read from a context (the metric-scale token reading every frame's tokens)."""

    def __init__(self, in_dim: int, dim: int, out_dim: int, depth: int, rope: RoPE2D) -> None:
        super().__init__()
        self.projects_x = nn.Linear(in_dim, dim)
        self.projects_y = nn.Linear(in_dim, dim)
        self.blocks = nn.ModuleList(ContextBlock(dim, rope) for _ in range(depth))
        self.linear_out = nn.Linear(dim, out_dim)

    def forward(
        self,
        queries: Float[torch.Tensor, "B Q Din"],
        context: Float[torch.Tensor, "B M Din"],
        query_positions: Int[torch.Tensor, "B Q 2"],
        context_positions: Int[torch.Tensor, "B M 2"],
    ) -> Float[torch.Tensor, "B Q Dout"]:
        x, context = self.projects_x(queries), self.projects_y(context)
        for block in self.blocks:
            x = block(x, context, query_positions, context_positions)
        return self.linear_out(x)
