"""Rotation averaging on unit quaternions (scipy ``xyzw`` order)."""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

from core.geometry._batched import unit


def average_quaternions_xyzw(
    quats: Float[np.ndarray, "*batch N 4"], weights: Float[np.ndarray, "*batch N"]
) -> Float[np.ndarray, "*batch 4"]:
    """Weighted rotation average of unit quaternions (Markley et al. 2007), scipy ``xyzw`` order.

    Returns the eigenvector of the largest eigenvalue of ``sum_i w_i q_i q_i^T`` (inputs are normalised
    first). Because ``q`` and ``-q`` enter through ``q q^T``, the result is independent of input signs.

    Args:
        quats: Quaternions ``(x, y, z, w)``, shape ``(..., N, 4)``; non-finite rows are ignored.
        weights: Non-negative weights, shape ``(..., N)``.

    Returns:
        Unit quaternion ``(x, y, z, w)`` with ``w >= 0`` (if ``w == 0`` the largest-magnitude component is
        made positive), shape ``(..., 4)``; NaN where the total usable weight is zero.

    Example:
        >>> import numpy as np
        >>> q = np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, -1.0]])
        >>> average_quaternions_xyzw(q, np.ones(2))
        array([0., 0., 0., 1.])
    """
    quats = unit(np.asarray(quats, dtype=float))
    weights = np.asarray(weights, dtype=float)
    shape = np.broadcast_shapes(quats.shape, weights.shape + (4,))
    quats = np.broadcast_to(quats, shape)
    weights = np.broadcast_to(weights, shape[:-1])
    usable = np.isfinite(quats).all(axis=-1) & np.isfinite(weights) & (weights > 0)
    w = np.where(usable, weights, 0.0)
    q = np.where(usable[..., None], quats, 0.0)

    M = np.swapaxes(q * w[..., None], -1, -2) @ q  # (..., 4, 4) = sum_i w_i q_i q_i^T
    _, vecs = np.linalg.eigh(M)
    avg = vecs[..., :, -1]

    big = np.take_along_axis(avg, np.argmax(np.abs(avg), axis=-1)[..., None], axis=-1)[..., 0]
    w_comp = avg[..., 3]
    sign = np.where(np.abs(w_comp) > 1e-12, np.sign(w_comp), np.sign(big))
    avg = avg * np.where(sign == 0, 1.0, sign)[..., None]
    avg = avg / np.linalg.norm(avg, axis=-1, keepdims=True)
    return np.where((w.sum(axis=-1) > 0)[..., None], avg, np.nan)
