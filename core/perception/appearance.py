"""Appearance embeddings for per-view tracking: what colours a person wears, above and below the hips.

The landmark model's segmentation says which crop pixels are the person, and the crop is upright with
the hip centre in its middle, so the upper half holds the torso and the lower half the legs. A coarse
hue × saturation × value histogram of each half, weighted by the segmentation, tells people in
different clothes apart and does not depend on pose details. Square-rooted and unit-normalised, so that
the L2 distance between two embeddings is the Hellinger distance of their histograms (0 … √2).
"""

from __future__ import annotations

import cv2
import numpy as np
from jaxtyping import Float, UInt8

_HUE_BINS, _SATURATION_BINS, _VALUE_BINS = 8, 3, 3
_BINS = _HUE_BINS * _SATURATION_BINS * _VALUE_BINS
EMBEDDING_DIM = 2 * _BINS


def colour_embeddings(
    crops: UInt8[np.ndarray, "R S S 3"], person_probability: Float[np.ndarray, "R S S"]
) -> Float[np.ndarray, "R D"]:
    """One embedding per upright RGB crop, from its person pixels (all crops in one histogram pass)."""
    count, size = crops.shape[0], crops.shape[1]
    if count == 0:
        return np.zeros((0, EMBEDDING_DIM))
    hsv = cv2.cvtColor(crops.reshape(count * size, size, 3), cv2.COLOR_RGB2HSV).reshape(crops.shape)
    hue = hsv[..., 0].astype(np.int64) * _HUE_BINS // 180  # OpenCV hue is 0..179
    saturation = hsv[..., 1].astype(np.int64) * _SATURATION_BINS // 256
    value = hsv[..., 2].astype(np.int64) * _VALUE_BINS // 256
    colour_bin = (hue * _SATURATION_BINS + saturation) * _VALUE_BINS + value
    lower_half = (np.arange(size) >= size // 2)[None, :, None]
    region_bin = colour_bin + _BINS * lower_half + EMBEDDING_DIM * np.arange(count)[:, None, None]
    weight = np.where(person_probability > 0.5, person_probability, 0.0)
    histogram = np.bincount(region_bin.ravel(), weights=weight.ravel(), minlength=count * EMBEDDING_DIM)
    embedding = np.sqrt(histogram.reshape(count, EMBEDDING_DIM))
    return embedding / np.maximum(np.linalg.norm(embedding, axis=-1, keepdims=True), 1e-12)
