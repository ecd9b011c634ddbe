"""Camera model in plain numpy: world↔camera, OpenCV lens distortion, projection and pixel rays.

Vectorised over arbitrary leading batch dimensions. Conventions: see ``core.geometry``.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

from core.geometry._batched import transpose

# Points closer to the camera plane than this (metres, camera z) are treated as behind the camera.
_MIN_DEPTH = 1e-9


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
    return points_world @ transpose(R) + t[..., None, :]


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
    return -(transpose(R) @ t[..., None])[..., 0]


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


_CONVERGED = 1e-14
"""Newton steps below this (normalized coordinates, about 1e-11 px) change nothing more."""


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
            step_x = np.where(ok, (d * fx - b * fy) / det, 0.0)
            step_y = np.where(ok, (a * fy - b * fx) / det, 0.0)
            x, y = x - step_x, y - step_y
            if not (np.abs(step_x) > _CONVERGED).any() and not (np.abs(step_y) > _CONVERGED).any():
                break  # every point converged (quadratically: a few steps for ordinary lenses)
    return np.stack([x, y], axis=-1)


def _normalized_to_pixels(xy: np.ndarray, K: np.ndarray) -> np.ndarray:
    homog = np.concatenate([xy, np.ones_like(xy[..., :1])], axis=-1)
    pix = homog @ transpose(K)
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
