"""Two array helpers every geometry module needs, batched over leading dimensions."""

from __future__ import annotations

import numpy as np


def transpose(m: np.ndarray) -> np.ndarray:
    """Swap the last two axes (a batch of matrices transposed)."""
    return np.swapaxes(m, -1, -2)


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to unit length along its last axis (NaN for zero vectors)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)
