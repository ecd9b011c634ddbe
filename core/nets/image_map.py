"""Where an original frame's pixels land in a network's input image, and back.

Pi3X and Multi-HMR both see a resized (Multi-HMR: also padded) copy of each frame, so their 2D outputs
and the intrinsics they are given live in that copy. Per axis the copy is an affine map ``u' = a u + b``;
it is held once here, so pixels and intrinsics go through the same numbers in both directions, and the
frames are resized here with the library the published code uses (PIL), whose filters neither OpenCV
nor torch reproduce bit for bit.

Original pixels are always in OpenCV's convention (pixel ``i`` has its centre at ``i``, as everywhere in
``core``); the network side uses the network's own convention, stated by the function building the map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, UInt8
from PIL import Image

from core.errors import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""The normalisation both networks were trained with (Pi3X applies it inside its forward)."""

__all__ = ["NetIOError", "PixelMap", "check_frames", "resize_frames"]


class NetIOError(InputError):
    """Frames or network outputs these mappings cannot work with; the message says what was given."""


def check_frames(frames: np.ndarray) -> UInt8[np.ndarray, "N H W 3"]:
    """The frames as a non-empty ``(N, H, W, 3)`` uint8 RGB batch, or a NetIOError saying why not."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise NetIOError(
            f"frames must be an (N, H, W, 3) uint8 RGB array, got shape {frames.shape} of {frames.dtype}"
        )
    if 0 in frames.shape:
        raise NetIOError(f"frames must hold at least one non-empty image, got shape {frames.shape}")
    return frames


def resize_frames(
    frames: UInt8[np.ndarray, "N H W 3"], size: tuple[int, int], resample: Image.Resampling
) -> UInt8[np.ndarray, "N h w 3"]:
    """Every frame resized to ``size = (width, height)`` by PIL with ``resample``, as the references do."""
    return np.stack([np.asarray(Image.fromarray(frame).resize(size, resample)) for frame in frames])


@dataclass(frozen=True)
class PixelMap:
    """Per-axis affine map from original pixels to network pixels: ``network = scale * original + offset``."""

    original_size: tuple[int, int]
    """(width, height) of the original frames."""
    network_size: tuple[int, int]
    """(width, height) of the network's input image."""
    scale: tuple[float, float]
    """(x, y) network pixels per original pixel."""
    offset: tuple[float, float]
    """(x, y) network position of the original coordinate 0."""

    @property
    def matrix(self) -> Float[np.ndarray, "3 3"]:
        """The map on homogeneous pixels; intrinsics map as ``matrix @ K``."""
        (sx, sy), (ox, oy) = self.scale, self.offset
        return np.array([[sx, 0.0, ox], [0.0, sy, oy], [0.0, 0.0, 1.0]])

    @property
    def inverse_matrix(self) -> Float[np.ndarray, "3 3"]:
        """The map from network pixels back to original pixels, written out (no numerical inverse)."""
        return self.inverse().matrix

    def inverse(self) -> PixelMap:
        """The map from network pixels back to original pixels."""
        (sx, sy), (ox, oy) = self.scale, self.offset
        return PixelMap(self.network_size, self.original_size, (1.0 / sx, 1.0 / sy), (-ox / sx, -oy / sy))

    def then(self, other: PixelMap) -> PixelMap:
        """This map followed by ``other``, whose original image is this one's network image (e.g.
        Multi-HMR's square → the original frame → the Pi3X grid: ``square.inverse().then(grid)``)."""
        if other.original_size != self.network_size:
            raise NetIOError(
                f"cannot chain a map onto a {self.network_size} image with one from {other.original_size}"
            )
        (sx, sy), (ox, oy) = self.scale, self.offset
        (tx, ty), (px, py) = other.scale, other.offset
        return PixelMap(
            self.original_size, other.network_size, (sx * tx, sy * ty), (ox * tx + px, oy * ty + py)
        )

    def to_network(self, pixels: Float[np.ndarray, "*batch 2"]) -> Float[np.ndarray, "*batch 2"]:
        """Original pixel positions in network pixels."""
        return np.asarray(pixels, dtype=float) * np.array(self.scale) + np.array(self.offset)

    def to_original(self, pixels: Float[np.ndarray, "*batch 2"]) -> Float[np.ndarray, "*batch 2"]:
        """Network pixel positions (e.g. a network's 2D outputs) in original pixels."""
        return (np.asarray(pixels, dtype=float) - np.array(self.offset)) / np.array(self.scale)

    def intrinsics_to_network(self, K: Float[np.ndarray, "*batch 3 3"]) -> Float[np.ndarray, "*batch 3 3"]:
        """Intrinsics of the original frames as intrinsics of the network image (same camera frame)."""
        return self.matrix @ np.asarray(K, dtype=float)

    def intrinsics_to_original(self, K: Float[np.ndarray, "*batch 3 3"]) -> Float[np.ndarray, "*batch 3 3"]:
        """Intrinsics of the network image as intrinsics of the original frames (same camera frame)."""
        return self.inverse_matrix @ np.asarray(K, dtype=float)
