"""Pi3X's output heads: the dense convolutional head (points, confidence) and the camera-pose head.

Both run in float32 even under autocast: they produce the geometry (log-depth, rotations) where bf16
rounding would show. Module names follow the published checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import nn


def replicate_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """3×3 convolution that pads by repeating the border, so image edges see no artificial zeros."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, padding_mode="replicate")


def view_plane_uv(
    height: int, width: int, aspect: float, dtype: torch.dtype, device: torch.device
) -> Float[torch.Tensor, "2 H W"]:
    """Pixel-centre (u, v) coordinates on a view plane whose half-diagonal is 1 at aspect ``width/height``.

    Fed to the conv head next to its features so that it knows where each pixel lies in the image.
    """
    diagonal = math.sqrt(1 + aspect**2)
    u_end = aspect / diagonal * (width - 1) / width
    v_end = 1 / diagonal * (height - 1) / height
    u = torch.linspace(-u_end, u_end, width, dtype=dtype, device=device)
    v = torch.linspace(-v_end, v_end, height, dtype=dtype, device=device)
    return torch.stack([u.expand(height, width), v[:, None].expand(height, width)])


class ResidualConvBlock(nn.Module):
    """(GroupNorm, ReLU, 3×3 conv) twice around an identity skip; the hidden width is twice the input's."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.GroupNorm(1, channels),
            nn.ReLU(),
            replicate_conv(channels, hidden),
            nn.GroupNorm(hidden // 32, hidden),
            nn.ReLU(),
            replicate_conv(hidden, channels),
        )

    def forward(self, x: Float[torch.Tensor, "B C H W"]) -> Float[torch.Tensor, "B C H W"]:
        return x + self.layers(x)


class ConvHead(nn.Module):
    """Patch tokens to full-resolution maps: three ×2 upsampling stages, a bilinear resize, output convs.

    A (u, v) grid is appended to the features before every upsampling stage and before the output convs.
    Each entry of ``out_channels`` gets its own output branch (e.g. ``[2, 1]`` for xy and log-depth).
    """

    def __init__(
        self,
        in_dim: int,
        out_channels: Sequence[int],
        stage_dims: Sequence[int] = (256, 128, 64),
        res_blocks: int = 2,
        last_dim: int = 32,
        patch_size: int = 14,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        stage_inputs = [in_dim, *stage_dims[:-1]]
        self.upsample_blocks = nn.ModuleList(
            nn.Sequential(
                nn.Sequential(nn.ConvTranspose2d(cin + 2, cout, 2, stride=2), replicate_conv(cout, cout)),
                *(ResidualConvBlock(cout, 2 * cout) for _ in range(res_blocks)),
            )
            for cin, cout in zip(stage_inputs, stage_dims, strict=True)
        )
        self.output_block = nn.ModuleList(
            nn.Sequential(
                replicate_conv(stage_dims[-1] + 2, last_dim), nn.ReLU(), nn.Conv2d(last_dim, out, 1)
            )
            for out in out_channels
        )

    def forward(
        self, tokens: Float[torch.Tensor, "B T C"], rows: int, cols: int
    ) -> list[Float[torch.Tensor, "B O H W"]]:
        """One (B, out, rows·patch, cols·patch) map per output branch."""
        height, width = rows * self.patch_size, cols * self.patch_size
        x = tokens.transpose(1, 2).unflatten(2, (rows, cols))
        for stage in self.upsample_blocks:
            x = stage(self.with_uv(x, width / height))
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
        x = self.with_uv(x, width / height)
        return [branch(x) for branch in self.output_block]

    @staticmethod
    def with_uv(x: Float[torch.Tensor, "B C H W"], aspect: float) -> Float[torch.Tensor, "B C+2 H W"]:
        uv = view_plane_uv(x.shape[-2], x.shape[-1], aspect, x.dtype, x.device)
        return torch.cat([x, uv.expand(len(x), -1, -1, -1)], dim=1)


def closest_rotation(matrices: Float[torch.Tensor, "... 3 3"]) -> Float[torch.Tensor, "... 3 3"]:
    """The rotation nearest (Frobenius) to each matrix after scaling its rows to unit length.

    With ``M = U S Vᵀ`` that is ``U diag(1, 1, det(U Vᵀ)) Vᵀ``: the sign flip turns a reflection into a
    proper rotation.
    """
    u, _, vh = torch.linalg.svd(F.normalize(matrices, dim=-1))
    det = torch.linalg.det(u @ vh)
    signs = torch.stack([torch.ones_like(det), torch.ones_like(det), det], dim=-1)
    return (u * signs[..., None, :]) @ vh


def pose_matrix(
    rotation: Float[torch.Tensor, "... 3 3"], translation: Float[torch.Tensor, "... 3"]
) -> Float[torch.Tensor, "... 4 4"]:
    """Homogeneous ``[[R, t], [0, 1]]``."""
    top = torch.cat([rotation, translation[..., None]], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


class ResidualMlp(nn.Module):
    """Three ReLU-activated linear layers added to their input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.res_conv1 = nn.Linear(dim, dim)
        self.res_conv2 = nn.Linear(dim, dim)
        self.res_conv3 = nn.Linear(dim, dim)

    def forward(self, x: Float[torch.Tensor, "... D"]) -> Float[torch.Tensor, "... D"]:
        return x + F.relu(self.res_conv3(F.relu(self.res_conv2(F.relu(self.res_conv1(x))))))


class CameraEstimate(NamedTuple):
    """The camera head's camera-to-world rotation and translation, with the values they come from."""

    features: Float[torch.Tensor, "B D"]
    translation: Float[torch.Tensor, "B 3"]
    rotation_9d: Float[torch.Tensor, "B 9"]
    rotation: Float[torch.Tensor, "B 3 3"]


class CameraHead(nn.Module):
    """Per-frame camera pose from the patch tokens: token MLPs, mean over tokens, MLPs, then R and t."""

    def __init__(self, dim: int = 512, res_blocks: int = 2) -> None:
        super().__init__()
        self.res_conv = nn.ModuleList(ResidualMlp(dim) for _ in range(res_blocks))
        self.more_mlps = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU())
        self.fc_t = nn.Linear(dim, 3)
        self.fc_rot = nn.Linear(dim, 9)

    def forward(self, tokens: Float[torch.Tensor, "B T D"]) -> CameraEstimate:
        x = tokens
        for block in self.res_conv:
            x = block(x)
        features = self.more_mlps(x.mean(dim=1))
        translation, rotation_9d = self.fc_t(features), self.fc_rot(features)
        rotation = closest_rotation(rotation_9d.unflatten(-1, (3, 3)))
        return CameraEstimate(features, translation, rotation_9d, rotation)
