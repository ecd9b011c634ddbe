"""Vision-transformer parts shared by Pi3X and Multi-HMR: the pre-norm block and the DINOv2 encoder.

Module and parameter names follow the published checkpoints (``attn.qkv``, ``ls1.gamma``, ``mlp.fc1``,
``patch_embed.proj``...), so their state dicts load without renaming.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import nn

LAYER_NORM_EPS = 1e-6
Rope = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""Rotary embedding: ``rope(tokens (B, heads, N, head_dim), positions (B, N, 2)) -> tokens``."""


class LayerScale(nn.Module):
    """Learned per-channel scale of a residual branch."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """Two linear layers with an exact GELU between them."""

    def __init__(self, dim: int, hidden_dim: int, out_dim: int | None = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, out_dim or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` projection, optional per-head q/k norm and RoPE.

    The q/k LayerNorms keep torch's default eps (1e-5), unlike the blocks' (1e-6), as Pi3X trained them.
    """

    def __init__(self, dim: int, num_heads: int, qk_norm: bool = False, rope: Rope | None = None) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        if qk_norm:
            self.q_norm = nn.LayerNorm(head_dim)
            self.k_norm = nn.LayerNorm(head_dim)
        self.qk_norm = qk_norm
        self.rope = rope

    def forward(self, x: Float[torch.Tensor, "B N C"], positions: torch.Tensor | None = None) -> torch.Tensor:
        batch, tokens, channels = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, channels // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        if self.qk_norm:
            q, k = self.q_norm(q).to(v.dtype), self.k_norm(k).to(v.dtype)
        if self.rope is not None:
            q, k = self.rope(q, positions), self.rope(k, positions)
        attended = F.scaled_dot_product_attention(q, k, v)
        return self.proj(attended.transpose(1, 2).reshape(batch, tokens, channels))


class TransformerBlock(nn.Module):
    """Pre-norm block ``x + ls1(attn(norm1 x))``, then ``x + ls2(mlp(norm2 x))``; no LayerScale when off."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        layer_scale: bool = True,
        qk_norm: bool = False,
        rope: Rope | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = SelfAttention(dim, num_heads, qk_norm=qk_norm, rope=rope)
        self.ls1 = LayerScale(dim) if layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim) if layer_scale else nn.Identity()

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), positions))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Non-overlapping patches to tokens by one strided convolution, row-major."""

    def __init__(self, patch_size: int, in_channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: Float[torch.Tensor, "B C H W"]) -> Float[torch.Tensor, "B N D"]:
        return self.proj(images).flatten(2).transpose(1, 2)


PosEmbedResize = Literal["size_antialias", "scale_offset"]
"""How the 37×37 position table is resized to a patch grid. ``size_antialias``: bicubic to the exact
size with antialiasing (the register-token DINOv2 that Pi3X uses); ``scale_offset``: bicubic by the scale
factor ``(n + 0.1) / 37`` without antialiasing (the torch.hub DINOv2 that Multi-HMR loads)."""

DINOV2_SIZES = {"s": (384, 12, 6), "b": (768, 12, 12), "l": (1024, 24, 16), "g": (1536, 40, 24)}
"""Width, depth and heads of the DINOv2 ViT sizes."""


class DinoV2(nn.Module):
    """DINOv2 ViT/14 encoder: [cls, registers, patches] tokens, learned position table, final LayerNorm."""

    def __init__(
        self,
        dim: int = 1024,
        depth: int = 24,
        num_heads: int = 16,
        num_registers: int = 0,
        with_mask_token: bool = False,
        pos_embed_resize: PosEmbedResize = "size_antialias",
        patch_size: int = 14,
        pos_grid: int = 37,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.num_registers = num_registers
        self.pos_embed_resize = pos_embed_resize
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + pos_grid * pos_grid, dim))
        if num_registers:
            self.register_tokens = nn.Parameter(torch.zeros(1, num_registers, dim))
        if with_mask_token:
            self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.patch_embed = PatchEmbed(patch_size, 3, dim)
        self.blocks = nn.ModuleList(TransformerBlock(dim, num_heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)

    def position_embedding(self, rows: int, cols: int) -> Float[torch.Tensor, "1 N D"]:
        """The position table for a ``rows × cols`` patch grid, class entry first."""
        table = self.pos_embed.float()
        side = math.isqrt(table.shape[1] - 1)
        if rows == cols == side:
            return self.pos_embed
        grid = table[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        if self.pos_embed_resize == "size_antialias":
            resized = F.interpolate(grid, size=(rows, cols), mode="bicubic", antialias=True)
        else:
            scale = ((rows + 0.1) / side, (cols + 0.1) / side)
            resized = F.interpolate(grid, scale_factor=scale, mode="bicubic", antialias=False)
        patches = resized.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)
        return torch.cat([table[:, :1], patches], dim=1).to(self.pos_embed.dtype)

    def tokens(self, images: Float[torch.Tensor, "B 3 H W"]) -> Float[torch.Tensor, "B T D"]:
        """Input tokens of the first block: ``[cls, registers, patches]`` with positions added."""
        rows, cols = images.shape[-2] // self.patch_size, images.shape[-1] // self.patch_size
        patches = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(len(patches), -1, -1), patches], dim=1)
        x = x + self.position_embedding(rows, cols).to(x.dtype)
        if self.num_registers:
            registers = self.register_tokens.expand(len(x), -1, -1)
            x = torch.cat([x[:, :1], registers, x[:, 1:]], dim=1)
        return x

    def forward(
        self, images: Float[torch.Tensor, "B 3 H W"], block_outputs: list[torch.Tensor] | None = None
    ) -> Float[torch.Tensor, "B T D"]:
        """All tokens after the final LayerNorm; ``block_outputs`` (if given) collects each block's output."""
        x = self.tokens(images)
        for block in self.blocks:
            x = block(x)
            if block_outputs is not None:
                block_outputs.append(x)
        return self.norm(x)

    def split_tokens(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(cls (B, D), registers (B, R, D), patches (B, N, D)) from the output tokens."""
        first_patch = 1 + self.num_registers
        return tokens[:, 0], tokens[:, 1:first_patch], tokens[:, first_patch:]
