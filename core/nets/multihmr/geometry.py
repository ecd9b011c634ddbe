"""The small geometric decodings Multi-HMR applies to its raw outputs: 6D rotations, depth, (back)projection.

All of them run in float32 with autocast off: they turn network outputs into metres and pixels, where
bfloat16's 8-bit mantissa would cost centimetres.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float

TRAINING_FOV_DEGREES = 60.0
"""Field of view of the normalising camera the depth is regressed for."""
DEPTH_EPS = 1e-10
"""Offset of the log-depth encoding ``y = log(d + eps)``."""
MAX_DEPTH = 50.0
"""Depths are clamped to ``[0, MAX_DEPTH]`` metres."""


def _float32(device: torch.device) -> torch.autocast:
    return torch.autocast(device.type, enabled=False)


def rotmat_from_6d(x: Float[torch.Tensor, "... 6"]) -> Float[torch.Tensor, "... 3 3"]:
    """Rotation whose first two columns are Gram-Schmidt of ``a1 = x[0:3]`` and ``a2 = x[3:6]``."""
    with _float32(x.device):
        a1, a2 = x.float().unflatten(-1, (2, 3)).unbind(-2)
        b1 = a1 / a1.norm(dim=-1, keepdim=True)
        b2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
        b2 = b2 / b2.norm(dim=-1, keepdim=True)
        return torch.stack([b1, b2, torch.linalg.cross(b1, b2, dim=-1)], dim=-1)


def normalising_focal(image_size: int) -> float:
    """Focal length (pixels) of a ``TRAINING_FOV_DEGREES`` camera over a square image of this size."""
    return image_size / (2 * math.tan(math.radians(TRAINING_FOV_DEGREES) / 2))


def depth_from_log_nearness(
    y: Float[torch.Tensor, "P 1"], fx: Float[torch.Tensor, "P 1"], image_size: int
) -> Float[torch.Tensor, "P 1"]:
    """Metric depth from the regressed value: ``exp(y · fx / f_n) − eps``, clamped to ``[0, MAX_DEPTH]``.

    ``y`` is a log-depth for the normalising camera; scaling it by ``fx / f_n`` transfers it to the real
    focal. Only ``fx`` is used, as in training (``fy`` is ignored).
    """
    with _float32(y.device):
        log_depth = y.float() * (fx.float() / normalising_focal(image_size))
        return (torch.exp(log_depth) - DEPTH_EPS).clamp(0.0, MAX_DEPTH)


def backproject(
    pixels: Float[torch.Tensor, "P 2"], depth: Float[torch.Tensor, "P 1"], K: Float[torch.Tensor, "P 3 3"]
) -> Float[torch.Tensor, "P 3"]:
    """``K⁻¹ [u, v, 1] · depth``: the camera-frame point at that depth along the pixel's ray."""
    with _float32(pixels.device):
        homogeneous = F.pad(pixels.float(), (0, 1), value=1.0)
        rays = (torch.linalg.inv(K.float()) @ homogeneous[..., None])[..., 0]
        return rays * depth.float()


def project(
    points: Float[torch.Tensor, "P N 3"], K: Float[torch.Tensor, "P 3 3"]
) -> Float[torch.Tensor, "P N 2"]:
    """Pinhole projection to pixels: ``K (X / Z)``, first two coordinates."""
    with _float32(points.device):
        normalised = points / points[..., 2:]
        return (normalised @ K.float().transpose(-1, -2))[..., :2]
