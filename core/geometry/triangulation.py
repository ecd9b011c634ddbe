"""Rays to 3D points: weighted and robust (leave-one-out) triangulation, point-ray and line-line distances."""

from __future__ import annotations

import numpy as np
from jaxtyping import Bool, Float

from core.geometry._batched import transpose, unit
from core.geometry.camera import pixel_rays

# Normal-equation matrices whose smallest/largest eigenvalue ratio is below this are considered singular
# (near-parallel rays); for two rays this corresponds to an angle of roughly 1.4e-5 rad between them.
_MIN_RCOND = 1e-10


def triangulate_rays(
    origins: Float[np.ndarray, "*batch V 3"],
    directions: Float[np.ndarray, "*batch V 3"],
    weights: Float[np.ndarray, "*batch V"],
) -> Float[np.ndarray, "*batch 3"]:
    """Weighted least-squares intersection of rays.

    Minimises ``sum_v w_v * dist(X, ray_v)^2`` by solving the 3x3 normal equations
    ``sum_v w_v (I - d_v d_v^T) X = sum_v w_v (I - d_v d_v^T) o_v``. Views with zero (or non-finite) weight,
    or with non-finite origin/direction, are ignored.

    Args:
        origins: Ray origins in the world frame, metres, shape ``(..., V, 3)``.
        directions: Ray directions in the world frame (normalised internally), shape ``(..., V, 3)``.
        weights: Non-negative per-view weights, shape ``(..., V)``.

    Returns:
        Triangulated points, metres, world frame, shape ``(...,  3)``. NaN where fewer than two views have
        positive weight or the rays are (near-)parallel.

    Example:
        >>> import numpy as np
        >>> o = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
        >>> d = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])
        >>> triangulate_rays(o, d, np.ones(2)).round(12)
        array([0., 0., 1.])
    """
    origins = np.asarray(origins, dtype=float)
    directions = unit(np.asarray(directions, dtype=float))
    weights = np.asarray(weights, dtype=float)
    shape = np.broadcast_shapes(origins.shape, directions.shape, weights.shape + (3,))
    origins = np.broadcast_to(origins, shape)
    directions = np.broadcast_to(directions, shape)
    weights = np.broadcast_to(weights, shape[:-1])

    usable = (
        np.isfinite(weights)
        & (weights > 0)
        & np.isfinite(origins).all(axis=-1)
        & np.isfinite(directions).all(axis=-1)
    )
    w = np.where(usable, weights, 0.0)
    o = np.where(usable[..., None], origins, 0.0)
    d = np.where(usable[..., None], directions, 0.0)

    # Projectors onto the plane orthogonal to each ray: (..., V, 3, 3).
    proj = np.eye(3) - d[..., :, None] * d[..., None, :]
    wp = w[..., None, None] * proj
    A = wp.sum(axis=-3)
    b = (wp @ o[..., None])[..., 0].sum(axis=-2)

    eig = np.linalg.eigvalsh(A)
    with np.errstate(divide="ignore", invalid="ignore"):
        well_conditioned = eig[..., 0] > _MIN_RCOND * eig[..., -1]
    good = (usable.sum(axis=-1) >= 2) & well_conditioned & (eig[..., -1] > 0)
    A_safe = np.where(good[..., None, None], A, np.eye(3))
    b_safe = np.where(good[..., None], b, 0.0)
    X = np.linalg.solve(A_safe, b_safe[..., None])[..., 0]
    return np.where(good[..., None], X, np.nan)


def point_ray_distances(
    points: Float[np.ndarray, "*batch 3"],
    origins: Float[np.ndarray, "*batch V 3"],
    directions: Float[np.ndarray, "*batch V 3"],
) -> Float[np.ndarray, "*batch V"]:
    """Perpendicular distance from each point to each of its V rays (lines, not half-lines).

    Args:
        points: Points in the world frame, metres, shape ``(..., 3)``.
        origins: Ray origins, metres, shape ``(..., V, 3)``.
        directions: Ray directions (normalised internally), shape ``(..., V, 3)``.

    Returns:
        Distances in metres, shape ``(..., V)``.

    Example:
        >>> import numpy as np
        >>> point_ray_distances(np.array([1.0, 0.0, 5.0]), np.zeros((1, 3)), np.array([[0.0, 0.0, 2.0]]))
        array([1.])
    """
    points = np.asarray(points, dtype=float)
    origins = np.asarray(origins, dtype=float)
    directions = unit(np.asarray(directions, dtype=float))
    return np.linalg.norm(np.cross(points[..., None, :] - origins, directions), axis=-1)


def line_distances(
    origins_a: Float[np.ndarray, "*batch A 3"],
    directions_a: Float[np.ndarray, "*batch A 3"],
    origins_b: Float[np.ndarray, "*batch B 3"],
    directions_b: Float[np.ndarray, "*batch B 3"],
) -> tuple[Float[np.ndarray, "*batch A B"], Float[np.ndarray, "*batch A B"]]:
    """Distance between every line of set a and every line of set b, and the sine of their angle.

    With Plücker coordinates (d, m = o × d) of unit-direction lines the distance is
    ``|d_a · m_b + d_b · m_a| / |d_a × d_b|``: two matrix products per batch, no per-pair cross products.
    Parallel lines (sine near 0) get a meaningless distance; callers mask them with the sine. Computed
    in the inputs' precision.

    Example:
        >>> import numpy as np
        >>> o = np.array([[0.0, 0.0, 0.0]]); d = np.array([[1.0, 0.0, 0.0]])
        >>> distance, sine = line_distances(o, d, np.array([[0.0, 0.0, 2.0]]), np.array([[0.0, 1.0, 0.0]]))
        >>> distance.round(6).tolist(), sine.round(6).tolist()
        ([[2.0]], [[1.0]])
    """
    directions_a = np.nan_to_num(unit(directions_a))  # zero directions (padding) stay zero
    directions_b = np.nan_to_num(unit(directions_b))
    moments_a = np.cross(origins_a, directions_a)
    moments_b = np.cross(origins_b, directions_b)
    reciprocal = directions_a @ transpose(moments_b) + moments_a @ transpose(directions_b)
    cosine = directions_a @ transpose(directions_b)
    sine = np.sqrt(np.maximum(1.0 - cosine**2, 0.0))
    return np.abs(reciprocal) / np.maximum(sine, 1e-9), sine


def triangulate_rays_robust(
    origins: Float[np.ndarray, "*batch V 3"],
    directions: Float[np.ndarray, "*batch V 3"],
    weights: Float[np.ndarray, "*batch V"],
    threshold: float,
    min_views: int = 2,
) -> tuple[Float[np.ndarray, "*batch 3"], Bool[np.ndarray, "*batch V"]]:
    """Ray triangulation with greedy outlier rejection.

    Starts from :func:`triangulate_rays` with all positively weighted views, then repeatedly drops, per
    batch element, the single view whose ray is farthest from the current point if that distance exceeds
    ``threshold`` and more than ``min_views`` views remain, and re-solves. Stops when no batch element
    changes (at most V rounds, each fully batched).

    Args:
        origins: Ray origins, world frame, metres, shape ``(..., V, 3)``.
        directions: Ray directions, world frame, shape ``(..., V, 3)``.
        weights: Non-negative per-view weights, shape ``(..., V)``; zero means the view is absent.
        threshold: Maximum accepted point-to-ray distance, metres.
        min_views: Never drop views below this count.

    Returns:
        ``(points, inliers)``: points of shape ``(..., 3)`` in metres (NaN where triangulation fails) and
        the boolean mask of views kept, shape ``(..., V)``.

    Example:
        >>> import numpy as np
        >>> X = np.array([0.0, 0.0, 3.0])
        >>> o = np.array([[1.0, 0, 0], [-1.0, 0, 0], [0, 1.0, 0], [0, -1.0, 0]])
        >>> d = X - o
        >>> d[3] = [1.0, 0.0, 0.0]
        >>> p, inl = triangulate_rays_robust(o, d, np.ones(4), threshold=0.01)
        >>> bool(np.allclose(p, X)), inl.tolist()
        (True, [True, True, True, False])
    """
    origins = np.asarray(origins, dtype=float)
    directions = np.asarray(directions, dtype=float)
    weights = np.asarray(weights, dtype=float)
    shape = np.broadcast_shapes(origins.shape, directions.shape, weights.shape + (3,))
    origins = np.broadcast_to(origins, shape)
    directions = np.broadcast_to(directions, shape)
    weights = np.broadcast_to(weights, shape[:-1])
    n_views = shape[-2]

    active = (
        np.isfinite(weights)
        & (weights > 0)
        & np.isfinite(origins).all(axis=-1)
        & np.isfinite(directions).all(axis=-1)
    )
    batch_shape = shape[:-2]
    origins, directions = origins.reshape(-1, n_views, 3), directions.reshape(-1, n_views, 3)
    weights, active = weights.reshape(-1, n_views), active.reshape(-1, n_views).copy()
    points = triangulate_rays(origins, directions, np.where(active, weights, 0.0))
    for _ in range(n_views):
        dists = np.where(active, point_ray_distances(points, origins, directions), -np.inf)
        drop = np.isfinite(points).all(axis=-1) & (dists.max(axis=-1) > threshold)
        drop = np.flatnonzero(drop & (active.sum(axis=-1) > min_views))
        if drop.size == 0:
            break
        # An outlier pulls the joint fit towards itself, so the largest residual can sit on a good view:
        # drop the view whose removal leaves the smallest worst residual (leave-one-out, batched over the
        # elements that still have an outlier only).
        o, d, a = origins[drop, None], directions[drop, None], active[drop]
        loo_active = a[:, None, :] & ~np.eye(n_views, dtype=bool)  # (S, candidate, V)
        loo_points = triangulate_rays(o, d, np.where(loo_active, weights[drop, None, :], 0.0))
        loo_worst = np.where(loo_active, point_ray_distances(loo_points, o, d), -np.inf).max(axis=-1)
        loo_worst = np.where(a & np.isfinite(loo_points).all(axis=-1), loo_worst, np.inf)
        active[drop, np.argmin(loo_worst, axis=-1)] = False
        points[drop] = triangulate_rays(
            origins[drop], directions[drop], np.where(active[drop], weights[drop], 0.0)
        )
    return points.reshape(*batch_shape, 3), active.reshape(*batch_shape, n_views)


def triangulate_pixels(
    pixels: Float[np.ndarray, "*batch V 2"],
    weights: Float[np.ndarray, "*batch V"],
    K: Float[np.ndarray, "V 3 3"],
    dist: Float[np.ndarray, "V 5"],
    R: Float[np.ndarray, "V 3 3"],
    t: Float[np.ndarray, "V 3"],
) -> Float[np.ndarray, "*batch 3"]:
    """Triangulate one world point per batch element from its distorted pixel observations in V views.

    Args:
        pixels: Distorted pixel coordinates per view, shape ``(..., V, 2)``; NaN pixels are ignored.
        weights: Per-view weights (e.g. keypoint confidences), shape ``(..., V)``; zero means absent.
        K: Per-view intrinsics in pixels, shape ``(V, 3, 3)``.
        dist: Per-view OpenCV distortion, shape ``(V, 5)``.
        R: Per-view world-to-camera rotations, shape ``(V, 3, 3)``.
        t: Per-view world-to-camera translations, metres, shape ``(V, 3)``.

    Returns:
        World points, metres, shape ``(..., 3)``; NaN where fewer than two usable views or degenerate.

    Example:
        >>> import numpy as np
        >>> from core.geometry import project_points
        >>> K = np.broadcast_to(np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]]), (2, 3, 3))
        >>> R = np.broadcast_to(np.eye(3), (2, 3, 3))
        >>> t = np.array([[0.0, 0, 0], [-1.0, 0, 0]])
        >>> X = np.array([[0.2, 0.1, 2.0]])
        >>> uv = project_points(X, K, np.zeros((2, 5)), R, t)[:, 0]
        >>> bool(np.allclose(triangulate_pixels(uv, np.ones(2), K, np.zeros((2, 5)), R, t), X[0]))
        True
    """
    pixels = np.asarray(pixels, dtype=float)
    origins, directions = pixel_rays(pixels[..., None, :], K, dist, R, t)
    return triangulate_rays(origins[..., 0, :], directions[..., 0, :], weights)
