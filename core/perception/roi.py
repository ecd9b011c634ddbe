"""Rotated square regions of interest: where a person is, upright, and the affine maps to and from them.

A region is a centre, a side length and an "up" unit vector in image pixels. Coordinates here are
continuous with pixel i spanning [i, i + 1] (the models' normalised convention); OpenCV's integer pixel
centres are these minus 0.5. BlazePose aligns it with
the person's hip centre and the point its model predicts above the hips, so the landmark model always
sees an upright body of the same size whatever the pose of the person in the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from jaxtyping import Float


@dataclass(frozen=True)
class Regions:
    """R rotated squares in image pixels."""

    center: Float[np.ndarray, "R 2"]
    side: Float[np.ndarray, " R"]
    up: Float[np.ndarray, "R 2"]
    """Unit vector of the region's upward direction in the image."""

    def __len__(self) -> int:
        return int(self.side.shape[0])

    @staticmethod
    def from_keypoints(
        center: Float[np.ndarray, "R 2"], toward: Float[np.ndarray, "R 2"], scale: float
    ) -> Regions:
        """The square around the circle centred at ``center`` through ``toward``, enlarged by ``scale``,
        whose up direction points from ``center`` to ``toward``."""
        offset = toward - center
        radius = np.maximum(np.linalg.norm(offset, axis=-1), 1e-6)
        return Regions(center=center, side=2 * radius * scale, up=offset / radius[:, None])

    def crop_to_image(self, crop_size: int) -> Float[np.ndarray, "R 2 3"]:
        """Affine maps from crop pixels (size crop_size) to image pixels."""
        right = np.stack([-self.up[:, 1], self.up[:, 0]], axis=-1)  # the crop's +x in the image
        down = -self.up
        scale = (self.side / crop_size)[:, None]
        linear = np.stack([right * scale, down * scale], axis=-1)  # (R, 2, 2): columns are crop axes
        origin = self.center - linear @ np.full(2, crop_size / 2)
        return np.concatenate([linear, origin[:, :, None]], axis=-1)

    def box(self) -> Float[np.ndarray, "R 4"]:
        """Axis-aligned x0, y0, x1, y1 bounds of the rotated squares."""
        corners = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
        points = apply_affine(self.crop_to_image(1), np.broadcast_to(corners, (len(self), 4, 2)))
        return np.concatenate([points.min(axis=1), points.max(axis=1)], axis=1)


def apply_affine(affine: Float[np.ndarray, "R 2 3"], points: Float[np.ndarray, "R K 2"]) -> np.ndarray:
    """Points mapped by each region's affine."""
    return np.einsum("rij,rkj->rki", affine[:, :, :2], points) + affine[:, None, :, 2]


def crop_regions(pyramid: list[np.ndarray], regions: Regions, size: int) -> np.ndarray:
    """The regions resampled to size×size (R, size, size, 3) uint8, each from the pyramid level closest
    to its resolution so that downsampling never aliases; zero outside the image."""
    crops = np.zeros((len(regions), size, size, 3), dtype=np.uint8)
    affines = regions.crop_to_image(size)
    levels = np.clip(np.floor(np.log2(np.maximum(regions.side / size, 1.0))), 0, len(pyramid) - 1)
    for i, (affine, level) in enumerate(zip(affines, levels.astype(int), strict=True)):
        affine = affine / 2**level
        # pyrDown centres a pixel of the next level on the even pixel below it, not between the two, so
        # continuous coordinates map as x_L = x_0 / 2^L + (1 - 2^-L) / 2.
        affine[:, 2] += (1 - 2.0**-level) / 2
        affine[:, 2] += affine[:, :2].sum(axis=1) * 0.5 - 0.5  # to OpenCV's pixel-centre convention
        cv2.warpAffine(
            pyramid[level],
            affine,
            (size, size),
            dst=crops[i],
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
        )
    return crops


def image_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """The image and its successive half-resolution versions (Gaussian pyramid)."""
    pyramid = [image]
    for _ in range(levels - 1):
        pyramid.append(cv2.pyrDown(pyramid[-1]))
    return pyramid
