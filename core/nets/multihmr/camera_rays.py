"""Multi-HMR's camera conditioning: a viewing ray per patch, expanded into Fourier features.

The network was trained with one quirk that a checkpoint-compatible model must keep: the pixel handed to
``K⁻¹`` is ``(row centre, column centre)``, i.e. the *row* coordinate sits in the x slot. With a
centred principal point and ``fx == fy`` this is just a transpose of the ray field, which the learned
weights absorb; with any other ``K`` the rays are not the geometric ones, and they must not be "fixed".
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import nn


def patch_centre_rays(
    K: Float[torch.Tensor, "B 3 3"], rows: int, cols: int, patch_size: int
) -> Float[torch.Tensor, "B N 3"]:
    """``K⁻¹ [row·p + p//2, col·p + p//2, 1]`` for every patch, row-major (rows × cols tokens).

    The third component is exactly 1 for an upper-triangular ``K``. Computed in float32 even under
    autocast: bfloat16 rays would be coarser than a patch at high resolution.
    """
    with torch.autocast(K.device.type, enabled=False):
        row, col = torch.meshgrid(
            torch.arange(rows, device=K.device), torch.arange(cols, device=K.device), indexing="ij"
        )
        half = patch_size // 2
        pixels = torch.stack([row * patch_size + half, col * patch_size + half, torch.ones_like(row)], -1)
        pixels = pixels.reshape(1, rows * cols, 3).float()
        return pixels @ torch.linalg.inv(K.float()).transpose(1, 2)


class FourierRayEmbedding(nn.Module):
    """``[ray, sin(π·ray_a·f_k), cos(π·ray_a·f_k)]`` with ``f = linspace(1, max_resolution/2, bands)``.

    Sines and cosines are laid out axis-major (all bands of x, then y, then z). No learned weights, so it
    adds nothing to the state dict.
    """

    def __init__(self, num_bands: int = 16, max_resolution: int = 64, num_axes: int = 3) -> None:
        super().__init__()
        self.num_bands = num_bands
        self.max_resolution = max_resolution
        self.num_axes = num_axes

    @property
    def channels(self) -> int:
        return self.num_axes * (1 + 2 * self.num_bands)

    def forward(self, rays: Float[torch.Tensor, "B N A"]) -> Float[torch.Tensor, "B N C"]:
        with torch.autocast(rays.device.type, enabled=False):
            rays = rays.float()
            bands = torch.linspace(1.0, self.max_resolution / 2, self.num_bands, device=rays.device)
            phases = (rays[..., :, None] * bands).flatten(-2)
            return torch.cat([rays, torch.sin(math.pi * phases), torch.cos(math.pi * phases)], dim=-1)

    @staticmethod
    def bands_for_channels(channels: int, num_axes: int = 3) -> int:
        """The band count giving ``channels`` output features (inverse of ``channels``)."""
        bands, remainder = divmod(channels - num_axes, 2 * num_axes)
        if remainder or bands < 1:
            raise ValueError(f"{channels} channels is no Fourier ray embedding of {num_axes} axes")
        return bands
