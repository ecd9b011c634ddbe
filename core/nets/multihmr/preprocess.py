"""Multi-HMR's input square, the intrinsics it is given, and its 2D outputs back in the original frame.

Input (as the published demo does it): each frame is resized with PIL's bicubic filter to fit an S x S
square keeping its aspect (``ImageOps.contain``: the long side becomes S, the short one
``round(short / long * S)``), pasted centred on black (offset ``round(slack / 2)``, Python's rounding,
halves to even), scaled to [0, 1] and normalised with the ImageNet mean and deviation, so the padding
reads ``-mean / std``, not 0. S is the model's image size (224, 448, 672 or 896).

Square pixels are in Multi-HMR's own convention: pixel ``i`` spans ``[i, i + 1]`` (its detections sit at
``(cell + 0.5 + offset) * 14``, its camera rays pass through ``cell * 14 + 7``, and the demo's principal point
is ``S // 2``); original pixels are OpenCV's (centre of pixel ``i`` at ``i``).

Its 3D outputs (``transl``, joints, vertices) are in the camera frame of the intrinsics it was given, so
with :func:`square_intrinsics` of the original camera's K they are already in that camera's frame; only
the 2D outputs need mapping back.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float, UInt8
from PIL import Image

from core.nets.image_map import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    NetIOError,
    PixelMap,
    check_frames,
    resize_frames,
)

__all__ = [
    "DEFAULT_FOV_DEG",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "multihmr_input",
    "square_intrinsics",
    "square_pixel_map",
]

DEFAULT_FOV_DEG = 60.0
"""Field of view across the square the demo assumes when no intrinsics are known."""
_PATCH_SIZE = 14
_RESAMPLE = Image.Resampling.BICUBIC


def square_pixel_map(width: int, height: int, side: int) -> PixelMap:
    """Original pixels (OpenCV-centred) to Multi-HMR square pixels (edge-based): ``s (u + 0.5) + pad``."""
    (fitted_width, fitted_height), (left, top) = _placement(width, height, side)
    sx, sy = fitted_width / width, fitted_height / height
    return PixelMap(
        original_size=(width, height),
        network_size=(side, side),
        scale=(sx, sy),
        offset=(0.5 * sx + left, 0.5 * sy + top),
    )


def _placement(width: int, height: int, side: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(width, height) of the frame fitted in the square, and (left, top) of where it is pasted."""
    if side <= 0 or side % _PATCH_SIZE:
        raise NetIOError(f"the Multi-HMR image size must be a positive multiple of {_PATCH_SIZE}, got {side}")
    if width <= 0 or height <= 0:
        raise NetIOError(f"a frame must have a positive size, got {width} x {height}")
    if width > height:
        fitted = (side, round(height / width * side))
    elif width < height:
        fitted = (round(width / height * side), side)
    else:
        fitted = (side, side)
    if 0 in fitted:
        raise NetIOError(f"a {width} x {height} frame is too narrow to fit a {side} x {side} square")
    left, top = (round((side - fitted_side) * 0.5) for fitted_side in fitted)
    return fitted, (left, top)


def multihmr_input(
    frames: UInt8[np.ndarray, "B H W 3"], side: int
) -> tuple[Float[torch.Tensor, "B 3 S S"], PixelMap]:
    """The Multi-HMR input for a batch of same-size RGB frames, and the map to its square."""
    frames = check_frames(frames)
    (fitted_width, fitted_height), (left, top) = _placement(frames.shape[2], frames.shape[1], side)
    square = np.zeros((frames.shape[0], side, side, 3), dtype=np.uint8)
    square[:, top : top + fitted_height, left : left + fitted_width] = resize_frames(
        frames, (fitted_width, fitted_height), _RESAMPLE
    )
    # float32 scaling, float64 normalisation, float32 result: the demo's arithmetic, value for value.
    scaled = square.astype(np.float32) / np.float32(255.0)
    normalised = ((scaled - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)).astype(np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(normalised.transpose(0, 3, 1, 2)))
    return tensor, square_pixel_map(frames.shape[2], frames.shape[1], side)


def square_intrinsics(
    pixel_map: PixelMap, K: Float[np.ndarray, "*batch 3 3"] | None = None, fov_deg: float = DEFAULT_FOV_DEG
) -> Float[np.ndarray, "*batch 3 3"]:
    """The intrinsics to give Multi-HMR: the original camera's ``K`` mapped onto the square, or without
    it the demo's guess, ``fov_deg`` across the whole square: ``f = S / (2 tan(fov / 2))`` and principal
    point ``(S // 2, S // 2)``. ``pixel_map.intrinsics_to_original`` of the guess is the camera it implies
    for the original frame (its principal point is the frame's centre up to the half-pixel of padding).

    The network's ray conditioning puts the row coordinate in the x slot (see
    ``core.nets.multihmr.camera_rays``), so its rays are the geometric ones (up to a transpose) only for a
    centred principal point with ``fx == fy``; a mapped K is still what its 3D decoding (depth from ``fx``,
    back-projection of ``loc``) needs."""
    if K is not None:
        return pixel_map.intrinsics_to_network(K)
    side = pixel_map.network_size[0]
    focal = side / (2.0 * np.tan(np.radians(fov_deg) / 2.0))
    return np.array([[focal, 0.0, side // 2], [0.0, focal, side // 2], [0.0, 0.0, 1.0]])
