"""Similarity (Sim(3)) alignment of point sets: Umeyama's closed form and its application."""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

from core.geometry._batched import transpose


def umeyama_sim3(
    source: Float[np.ndarray, "*batch N 3"],
    target: Float[np.ndarray, "*batch N 3"],
    weights: Float[np.ndarray, "*batch N"] | None = None,
    with_scale: bool = True,
) -> tuple[Float[np.ndarray, "*batch"], Float[np.ndarray, "*batch 3 3"], Float[np.ndarray, "*batch 3"]]:
    """Least-squares similarity transform between point sets (Umeyama 1991), batched.

    Finds ``scale, R, t`` minimising ``sum_i w_i |target_i - (scale R source_i + t)|^2`` with ``R`` a
    proper rotation (reflections are corrected, ``det R = +1``).

    Args:
        source: Source points, shape ``(..., N, 3)`` (any consistent unit, typically metres).
        target: Target points, same unit, shape ``(..., N, 3)``.
        weights: Optional non-negative per-point weights, shape ``(..., N)``; ``None`` means all ones.
            Rows where ``source`` or ``target`` has a NaN are treated as zero weight.
        with_scale: If False, the scale is fixed to 1 (rigid SE(3) fit).

    Returns:
        ``(scale, R, t)`` with shapes ``(...)``, ``(..., 3, 3)``, ``(..., 3)`` such that
        ``target ~= scale * R @ source + t``. All NaN where the total usable weight is zero; scale is NaN
        if the weighted source points all coincide and ``with_scale`` is True.

    Example:
        >>> import numpy as np
        >>> src = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
        >>> s, R, t = umeyama_sim3(src, 2.0 * src + 1.0)
        >>> float(np.round(s, 12)), bool(np.allclose(R, np.eye(3))), t.round(12)
        (2.0, True, array([1., 1., 1.]))
    """
    source = np.asarray(source, dtype=float)
    target = np.asarray(target, dtype=float)
    shape = np.broadcast_shapes(source.shape, target.shape)
    if weights is None:
        weights = np.ones(shape[:-1])
    weights = np.asarray(weights, dtype=float)
    shape = np.broadcast_shapes(shape, weights.shape + (3,))
    source = np.broadcast_to(source, shape)
    target = np.broadcast_to(target, shape)
    weights = np.broadcast_to(weights, shape[:-1])

    usable = (
        np.isfinite(source).all(axis=-1)
        & np.isfinite(target).all(axis=-1)
        & np.isfinite(weights)
        & (weights > 0)
    )
    w = np.where(usable, weights, 0.0)
    src = np.where(usable[..., None], source, 0.0)
    tgt = np.where(usable[..., None], target, 0.0)

    total = w.sum(axis=-1)
    ok = total > 0
    total_safe = np.where(ok, total, 1.0)
    wn = w / total_safe[..., None]
    mu_s = (wn[..., None] * src).sum(axis=-2)
    mu_t = (wn[..., None] * tgt).sum(axis=-2)
    src_c = np.where(usable[..., None], src - mu_s[..., None, :], 0.0)
    tgt_c = np.where(usable[..., None], tgt - mu_t[..., None, :], 0.0)

    # Cross-covariance Sigma = sum_i wn_i (t_i - mu_t)(s_i - mu_s)^T.
    sigma = transpose(wn[..., None] * tgt_c) @ src_c
    U, D, Vt = np.linalg.svd(sigma)
    reflect = np.linalg.det(U) * np.linalg.det(Vt) < 0
    S = np.ones(D.shape)
    S[..., 2] = np.where(reflect, -1.0, 1.0)
    R = (U * S[..., None, :]) @ Vt

    if with_scale:
        var_s = (wn * (src_c**2).sum(axis=-1)).sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(var_s > 0, (D * S).sum(axis=-1) / np.where(var_s > 0, var_s, 1.0), np.nan)
    else:
        scale = np.ones(D.shape[:-1])
    t = mu_t - scale[..., None] * (R @ mu_s[..., None])[..., 0]

    scale = np.where(ok, scale, np.nan)
    R = np.where(ok[..., None, None], R, np.nan)
    t = np.where(ok[..., None], t, np.nan)
    return scale, R, t


def apply_sim3(
    points: Float[np.ndarray, "*batch N 3"],
    scale: Float[np.ndarray, "*batch"],
    R: Float[np.ndarray, "*batch 3 3"],
    t: Float[np.ndarray, "*batch 3"],
) -> Float[np.ndarray, "*batch N 3"]:
    """Apply a similarity transform, ``scale * R @ p + t``, to every point.

    Args:
        points: Points, shape ``(..., N, 3)``.
        scale: Scale factors, shape ``(...)``.
        R: Rotations, shape ``(..., 3, 3)``.
        t: Translations (same unit as ``points``), shape ``(..., 3)``.

    Returns:
        Transformed points, shape ``(..., N, 3)``.

    Example:
        >>> import numpy as np
        >>> apply_sim3(np.array([[1.0, 0.0, 0.0]]), 2.0, np.eye(3), np.array([0.0, 1.0, 0.0]))
        array([[2., 1., 0.]])
    """
    points = np.asarray(points, dtype=float)
    scale = np.asarray(scale, dtype=float)
    R = np.asarray(R, dtype=float)
    t = np.asarray(t, dtype=float)
    return scale[..., None, None] * (points @ transpose(R)) + t[..., None, :]
