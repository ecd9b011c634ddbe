"""Batched multi-view camera geometry in plain numpy.

Every later stage of the engine (2D keypoints to 3D joints, camera calibration checks, evaluation
alignment) needs the same handful of operations: move points between the world and a camera, apply or
remove lens distortion, cast rays through pixels, intersect rays from several views, average rotations
and fit a similarity transform between point sets. They live here once, vectorised over arbitrary
leading batch dimensions, so callers never loop over frames, persons, joints or views.

Conventions:
    * World coordinates are in metres.
    * Camera frame is OpenCV: x right, y down, z forward (along the optical axis).
    * Extrinsics ``R`` (3x3) and ``t`` (3,) map world to camera: ``X_cam = R @ X_world + t``; the camera
      centre in the world frame is ``C = -R^T t``.
    * Intrinsics ``K`` are the usual 3x3 pinhole matrix in pixels.
    * Distortion is the OpenCV 5-vector ``(k1, k2, p1, p2, k3)`` applied to normalized image coordinates.
    * Quaternions are in scipy / roma order ``(x, y, z, w)``; function names say so.

Axis vocabulary for shapes: T frames, V views, P persons, J joints, N points.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Bool, Float

__all__ = [
    "apply_sim3",
    "average_quaternions_xyzw",
    "camera_centers",
    "distort_normalized",
    "pixel_rays",
    "point_ray_distances",
    "project_points",
    "triangulate_pixels",
    "triangulate_rays",
    "triangulate_rays_robust",
    "umeyama_sim3",
    "undistort_normalized",
    "undistort_pixels",
    "world_to_camera",
]

# Points closer to the camera plane than this (metres, camera z) are treated as behind the camera.
_MIN_DEPTH = 1e-9
# Normal-equation matrices whose smallest/largest eigenvalue ratio is below this are considered singular
# (near-parallel rays); for two rays this corresponds to an angle of roughly 1.4e-5 rad between them.
_MIN_RCOND = 1e-10


def _transpose(m: np.ndarray) -> np.ndarray:
    return np.swapaxes(m, -1, -2)


def world_to_camera(
    points_world: Float[np.ndarray, "*batch N 3"],
    R: Float[np.ndarray, "*batch 3 3"],
    t: Float[np.ndarray, "*batch 3"],
) -> Float[np.ndarray, "*batch N 3"]:
    """Transform world points into the camera frame, ``X_cam = R X_world + t``.

    Args:
        points_world: Points in the world frame, metres, shape ``(..., N, 3)``.
        R: World-to-camera rotation, shape ``(..., 3, 3)``.
        t: World-to-camera translation, metres, shape ``(..., 3)``.

    Returns:
        Points in the OpenCV camera frame, metres, shape ``(..., N, 3)``.

    Example:
        >>> import numpy as np
        >>> world_to_camera(np.array([[1.0, 2.0, 3.0]]), np.eye(3), np.array([0.0, 0.0, 1.0]))
        array([[1., 2., 4.]])
    """
    points_world = np.asarray(points_world, dtype=float)
    R = np.asarray(R, dtype=float)
    t = np.asarray(t, dtype=float)
    return points_world @ _transpose(R) + t[..., None, :]


def camera_centers(
    R: Float[np.ndarray, "*batch 3 3"], t: Float[np.ndarray, "*batch 3"]
) -> Float[np.ndarray, "*batch 3"]:
    """Camera centres in the world frame, ``C = -R^T t``.

    Args:
        R: World-to-camera rotation, shape ``(..., 3, 3)``.
        t: World-to-camera translation, metres, shape ``(..., 3)``.

    Returns:
        Camera centres in world coordinates, metres, shape ``(..., 3)``.

    Example:
        >>> import numpy as np
        >>> camera_centers(np.eye(3), np.array([1.0, 2.0, 3.0]))
        array([-1., -2., -3.])
    """
    R = np.asarray(R, dtype=float)
    t = np.asarray(t, dtype=float)
    return -(_transpose(R) @ t[..., None])[..., 0]


def distort_normalized(
    xy: Float[np.ndarray, "*batch 2"], dist: Float[np.ndarray, "*batch 5"]
) -> Float[np.ndarray, "*batch 2"]:
    """Apply the OpenCV radial-tangential distortion model to normalized image coordinates.

    With ``r^2 = x^2 + y^2`` and ``radial = 1 + k1 r^2 + k2 r^4 + k3 r^6``::

        x_d = x radial + 2 p1 x y + p2 (r^2 + 2 x^2)
        y_d = y radial + p1 (r^2 + 2 y^2) + 2 p2 x y

    Args:
        xy: Undistorted normalized coordinates ``(X/Z, Y/Z)`` in the camera frame (unitless), shape
            ``(..., 2)``.
        dist: OpenCV distortion ``(k1, k2, p1, p2, k3)``, shape ``(..., 5)``, broadcast against ``xy``'s
            leading dimensions.

    Returns:
        Distorted normalized coordinates, shape ``(..., 2)``.

    Example:
        >>> import numpy as np
        >>> distort_normalized(np.array([0.1, 0.0]), np.array([0.5, 0.0, 0.0, 0.0, 0.0]))
        array([0.1005, 0.    ])
    """
    xy = np.asarray(xy, dtype=float)
    dist = np.asarray(dist, dtype=float)
    x, y = xy[..., 0], xy[..., 1]
    k1, k2, p1, p2, k3 = (dist[..., i] for i in range(5))
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    return np.stack(np.broadcast_arrays(xd, yd), axis=-1)


def undistort_normalized(
    xy_distorted: Float[np.ndarray, "*batch 2"],
    dist: Float[np.ndarray, "*batch 5"],
    iterations: int = 20,
) -> Float[np.ndarray, "*batch 2"]:
    """Invert :func:`distort_normalized` with batched Newton iterations.

    Starts from the distorted coordinates and runs ``iterations`` Newton steps on the 2x2 system
    ``distort(xy) = xy_distorted`` using the analytic Jacobian (converges quadratically over the image of
    ordinary lenses; e.g. ``|k1| <= 0.3`` round-trips to well below 1e-9).

    Args:
        xy_distorted: Distorted normalized coordinates, shape ``(..., 2)``.
        dist: OpenCV distortion ``(k1, k2, p1, p2, k3)``, shape ``(..., 5)``.
        iterations: Number of Newton steps.

    Returns:
        Undistorted normalized coordinates ``(X/Z, Y/Z)``, shape ``(..., 2)``.

    Example:
        >>> import numpy as np
        >>> d = np.array([0.2, -0.05, 0.001, 0.002, 0.01])
        >>> xy = np.array([0.3, -0.2])
        >>> bool(np.allclose(undistort_normalized(distort_normalized(xy, d), d), xy, atol=1e-12))
        True
    """
    target = np.asarray(xy_distorted, dtype=float)
    dist = np.asarray(dist, dtype=float)
    k1, k2, p1, p2, k3 = (dist[..., i] for i in range(5))
    x, y = np.broadcast_arrays(target[..., 0], target[..., 1], k1)[:2]
    x, y = x.copy(), y.copy()
    tx, ty = target[..., 0], target[..., 1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(iterations):
            r2 = x * x + y * y
            radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
            # d(radial)/d(r2); d(r2)/dx = 2x.
            dradial = k1 + r2 * (2.0 * k2 + 3.0 * k3 * r2)
            fx = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x) - tx
            fy = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y - ty
            a = radial + 2.0 * x * x * dradial + 2.0 * p1 * y + 6.0 * p2 * x
            # The Jacobian [[a, b], [b, d]] is symmetric for this model.
            b = 2.0 * x * y * dradial + 2.0 * p1 * x + 2.0 * p2 * y
            d = radial + 2.0 * y * y * dradial + 6.0 * p1 * y + 2.0 * p2 * x
            det = a * d - b * b
            ok = np.abs(det) > 1e-300
            det = np.where(ok, det, 1.0)
            x = x - np.where(ok, (d * fx - b * fy) / det, 0.0)
            y = y - np.where(ok, (a * fy - b * fx) / det, 0.0)
    return np.stack([x, y], axis=-1)


def _normalized_to_pixels(xy: np.ndarray, K: np.ndarray) -> np.ndarray:
    homog = np.concatenate([xy, np.ones_like(xy[..., :1])], axis=-1)
    pix = homog @ _transpose(K)
    return pix[..., :2] / pix[..., 2:3]


def project_points(
    points_world: Float[np.ndarray, "*batch N 3"],
    K: Float[np.ndarray, "*batch 3 3"],
    dist: Float[np.ndarray, "*batch 5"],
    R: Float[np.ndarray, "*batch 3 3"],
    t: Float[np.ndarray, "*batch 3"],
) -> Float[np.ndarray, "*batch N 2"]:
    """Project world points to distorted pixel coordinates.

    Args:
        points_world: Points in the world frame, metres, shape ``(..., N, 3)``.
        K: Intrinsics in pixels, shape ``(..., 3, 3)``.
        dist: OpenCV distortion ``(k1, k2, p1, p2, k3)``, shape ``(..., 5)``.
        R: World-to-camera rotation, shape ``(..., 3, 3)``.
        t: World-to-camera translation, metres, shape ``(..., 3)``.

    Returns:
        Pixel coordinates ``(u, v)``, shape ``(..., N, 2)``; NaN for points with camera depth
        ``z <= 1e-9`` (on or behind the camera plane).

    Example:
        >>> import numpy as np
        >>> K = np.array([[100.0, 0.0, 50.0], [0.0, 100.0, 40.0], [0.0, 0.0, 1.0]])
        >>> project_points(np.array([[0.1, 0.2, 1.0]]), K, np.zeros(5), np.eye(3), np.zeros(3))
        array([[60., 60.]])
    """
    K = np.asarray(K, dtype=float)
    dist = np.asarray(dist, dtype=float)
    cam = world_to_camera(points_world, R, t)
    z = cam[..., 2:3]
    valid = z > _MIN_DEPTH
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = np.where(valid, cam[..., :2] / np.where(valid, z, 1.0), np.nan)
    xy_d = distort_normalized(xy, dist[..., None, :])
    return _normalized_to_pixels(xy_d, K)


def undistort_pixels(
    pixels: Float[np.ndarray, "*batch N 2"],
    K: Float[np.ndarray, "*batch 3 3"],
    dist: Float[np.ndarray, "*batch 5"],
) -> Float[np.ndarray, "*batch N 2"]:
    """Convert distorted pixels to undistorted normalized image coordinates.

    Args:
        pixels: Distorted pixel coordinates ``(u, v)``, shape ``(..., N, 2)``.
        K: Intrinsics in pixels, shape ``(..., 3, 3)``.
        dist: OpenCV distortion ``(k1, k2, p1, p2, k3)``, shape ``(..., 5)``.

    Returns:
        Undistorted normalized coordinates ``(X/Z, Y/Z)`` in the camera frame, shape ``(..., N, 2)``.

    Example:
        >>> import numpy as np
        >>> K = np.array([[100.0, 0.0, 50.0], [0.0, 100.0, 40.0], [0.0, 0.0, 1.0]])
        >>> undistort_pixels(np.array([[60.0, 60.0]]), K, np.zeros(5))
        array([[0.1, 0.2]])
    """
    pixels = np.asarray(pixels, dtype=float)
    K_inv = np.linalg.inv(np.asarray(K, dtype=float))
    dist = np.asarray(dist, dtype=float)
    xy_d = _normalized_to_pixels(pixels, K_inv)
    return undistort_normalized(xy_d, dist[..., None, :])


def pixel_rays(
    pixels: Float[np.ndarray, "*batch N 2"],
    K: Float[np.ndarray, "*batch 3 3"],
    dist: Float[np.ndarray, "*batch 5"],
    R: Float[np.ndarray, "*batch 3 3"],
    t: Float[np.ndarray, "*batch 3"],
) -> tuple[Float[np.ndarray, "*batch N 3"], Float[np.ndarray, "*batch N 3"]]:
    """Back-project distorted pixels to world-frame rays.

    Args:
        pixels: Distorted pixel coordinates ``(u, v)``, shape ``(..., N, 2)``.
        K: Intrinsics in pixels, shape ``(..., 3, 3)``.
        dist: OpenCV distortion ``(k1, k2, p1, p2, k3)``, shape ``(..., 5)``.
        R: World-to-camera rotation, shape ``(..., 3, 3)``.
        t: World-to-camera translation, metres, shape ``(..., 3)``.

    Returns:
        ``(origins, directions)``, both shape ``(..., N, 3)`` in the world frame: origins are the camera
        centre (metres) broadcast per pixel, directions are unit vectors pointing forward through the
        pixel.

    Example:
        >>> import numpy as np
        >>> K = np.array([[100.0, 0.0, 50.0], [0.0, 100.0, 40.0], [0.0, 0.0, 1.0]])
        >>> o, d = pixel_rays(np.array([[50.0, 40.0]]), K, np.zeros(5), np.eye(3), np.array([1.0, 2.0, 3.0]))
        >>> o, d
        (array([[-1., -2., -3.]]), array([[0., 0., 1.]]))
    """
    R = np.asarray(R, dtype=float)
    xy = undistort_pixels(pixels, K, dist)
    d_cam = np.concatenate([xy, np.ones_like(xy[..., :1])], axis=-1)
    # Row-vector form of R^T d_cam.
    d_world = d_cam @ R
    d_world = d_world / np.linalg.norm(d_world, axis=-1, keepdims=True)
    centers = camera_centers(R, t)[..., None, :]
    shape = np.broadcast_shapes(centers.shape, d_world.shape)
    return np.broadcast_to(centers, shape).copy(), np.broadcast_to(d_world, shape).copy()


def _unit(v: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)


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
    directions = _unit(np.asarray(directions, dtype=float))
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
    directions = _unit(np.asarray(directions, dtype=float))
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
    directions_a = np.nan_to_num(_unit(directions_a))  # zero directions (padding) stay zero
    directions_b = np.nan_to_num(_unit(directions_b))
    moments_a = np.cross(origins_a, directions_a)
    moments_b = np.cross(origins_b, directions_b)
    reciprocal = directions_a @ _transpose(moments_b) + moments_a @ _transpose(directions_b)
    cosine = directions_a @ _transpose(directions_b)
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
    quats = _unit(np.asarray(quats, dtype=float))
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
    sigma = _transpose(wn[..., None] * tgt_c) @ src_c
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
    return scale[..., None, None] * (points @ _transpose(R)) + t[..., None, :]
