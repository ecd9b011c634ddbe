"""Reading Pi3X's per-patch features and per-pixel depth at a point Multi-HMR found.

Multi-HMR works on a padded square, Pi3X on a resized grid; a point goes square → original frame → Pi3X
grid through the two preprocessing maps (``PixelMap.inverse().then``), once, as numbers, so the forward
only applies one affine map. Pi3X's grid is OpenCV-centred: pixel ``i`` has its centre at ``i`` and patch
``j`` (pixels ``14 j … 14 j + 13``) its centre at ``14 j + 6.5``. Reads are bilinear (differentiable in
the features, so the fusion MLP's gradient reaches them), clamped at the border.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int

from core.nets.image_map import PixelMap

PATCH_SIZE = 14


def square_to_grid(square: PixelMap, grid: PixelMap) -> PixelMap:
    """The map from Multi-HMR square pixels to Pi3X grid pixels, for frames of one size."""
    return square.inverse().then(grid)


def apply_map(
    pixel_map: PixelMap, pixels: Float[torch.Tensor, "*batch 2"]
) -> Float[torch.Tensor, "*batch 2"]:
    """``pixel_map`` on a tensor of pixels (any device and float type)."""
    scale = pixels.new_tensor(pixel_map.scale)
    offset = pixels.new_tensor(pixel_map.offset)
    return pixels * scale + offset


def _normalised(pixels: Float[torch.Tensor, "P 2"], width: int, height: int) -> Float[torch.Tensor, "P 2"]:
    """OpenCV-centred pixels as ``grid_sample`` coordinates (``align_corners=False``: -1 and 1 are the
    outer edges, i.e. pixels -0.5 and size - 0.5)."""
    size = pixels.new_tensor([width, height])
    return (pixels + 0.5) / size * 2 - 1


def _sample(
    maps: Float[torch.Tensor, "I C H W"], image: Int[torch.Tensor, " P"], points: Float[torch.Tensor, "P 2"]
) -> Float[torch.Tensor, "P C"]:
    """Bilinear reads of ``maps[image]`` at normalised ``points``, each from its own image."""
    grid = points[:, None, None, :].to(maps.dtype)  # (P, 1, 1, 2)
    read = F.grid_sample(maps[image], grid, mode="bilinear", padding_mode="border", align_corners=False)
    return read[:, :, 0, 0]


def patch_features_at(
    features: Float[torch.Tensor, "I T C"],
    rows: int,
    cols: int,
    image: Int[torch.Tensor, " P"],
    pixels: Float[torch.Tensor, "P 2"],
) -> Float[torch.Tensor, "P C"]:
    """Pi3X's decoder features (registers first, then ``rows × cols`` patches row-major, per image) read
    at Pi3X grid ``pixels`` of images ``image``."""
    patches = features[:, features.shape[1] - rows * cols :]
    maps = patches.transpose(1, 2).unflatten(2, (rows, cols))  # (I, C, rows, cols)
    return _sample(maps, image, _normalised(pixels, cols * PATCH_SIZE, rows * PATCH_SIZE))


def depth_at(
    depth: Float[torch.Tensor, "I H W"], image: Int[torch.Tensor, " P"], pixels: Float[torch.Tensor, "P 2"]
) -> Float[torch.Tensor, " P"]:
    """Pi3X's metric depth (z of ``local_points``) read at Pi3X grid ``pixels`` of images ``image``."""
    height, width = depth.shape[-2:]
    return _sample(depth[:, None], image, _normalised(pixels, width, height))[:, 0]
