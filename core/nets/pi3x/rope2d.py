"""2-D rotary position embedding over (row, col) token positions, as the Pi3X decoders use it.

Attention scores between rotated queries and keys depend only on the difference of their positions,
which is what lets the same decoder attend within a frame and across frames of any patch grid.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import nn


class RoPE2D(nn.Module):
    """Rotates the first half of each head's channels by the row and the second half by the column.

    Inside each half the channel pairs are ``(i, i + quarter)`` (the "rotate half" layout) and pair ``i``
    turns by ``position * base ** (-2 i / half)``. Holds no state, so one instance serves every block.
    """

    def __init__(self, base: float = 100.0) -> None:
        super().__init__()
        self.base = base

    def frequencies(self, half: int, device: torch.device) -> Float[torch.Tensor, " Q"]:
        """Angular step per unit position of each of the ``half / 2`` channel pairs of one axis."""
        exponents = torch.arange(0, half, 2, device=device, dtype=torch.float32) / half
        return 1.0 / (self.base**exponents)

    def forward(
        self, tokens: Float[torch.Tensor, "B H N C"], positions: Int[torch.Tensor, "B N 2"]
    ) -> Float[torch.Tensor, "B H N C"]:
        """Rotated tokens, in the tokens' dtype; the angles are always computed in float32."""
        half = tokens.shape[-1] // 2
        angles = positions.float()[..., None] * self.frequencies(half, tokens.device)  # (B, N, 2, Q)
        angles = torch.cat([angles, angles], dim=-1)[:, None]  # (B, 1, N, 2, half)
        axes = tokens.float().unflatten(-1, (2, half))  # (B, H, N, 2, half): row half, column half
        first, second = axes.chunk(2, dim=-1)
        turned = torch.cat([-second, first], dim=-1)
        rotated = axes * angles.cos() + turned * angles.sin()
        return rotated.flatten(-2).to(tokens.dtype)


def token_positions(
    rows: int, cols: int, num_special: int, device: torch.device | None = None
) -> Int[torch.Tensor, "T 2"]:
    """RoPE positions of ``num_special`` leading tokens at (0, 0), then the patches row-major at (r+1, c+1).

    The one-step offset keeps every patch away from the position shared by the special tokens.
    """
    row = torch.arange(1, rows + 1, device=device).repeat_interleave(cols)
    col = torch.arange(1, cols + 1, device=device).repeat(rows)
    patches = torch.stack([row, col], dim=-1)
    return torch.cat([patches.new_zeros(num_special, 2), patches])
