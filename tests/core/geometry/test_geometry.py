"""Tests for core.geometry on exact synthetic cases with known answers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from core.geometry import (
    apply_sim3,
    average_quaternions_xyzw,
    camera_centers,
    distort_normalized,
    pixel_rays,
    point_ray_distances,
    project_points,
    triangulate_pixels,
    triangulate_rays,
    triangulate_rays_robust,
    umeyama_sim3,
    undistort_normalized,
    undistort_pixels,
    world_to_camera,
)

# ---------------------------------------------------------------------------------------------------------
# Fixtures / helpers
# ---------------------------------------------------------------------------------------------------------


def _look_at(center: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera (R, t) of an OpenCV camera at ``center`` looking at ``target`` (world up = +z)."""
    z = target - center
    z = z / np.linalg.norm(z)
    x = np.cross(z, np.array([0.0, 0.0, 1.0]))
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return R, -R @ center


def _ring_rig(n_views: int = 5, radius: float = 4.0) -> dict[str, np.ndarray]:
    """Cameras on a ring around the origin, 1.5 m high, with mild distortion."""
    angles = np.linspace(0.0, 2.0 * np.pi, n_views, endpoint=False)
    centers = np.stack([radius * np.cos(angles), radius * np.sin(angles), np.full(n_views, 1.5)], axis=-1)
    Rt = [_look_at(c, np.array([0.0, 0.0, 1.0])) for c in centers]
    R = np.stack([r for r, _ in Rt])
    t = np.stack([tt for _, tt in Rt])
    K = np.broadcast_to(
        np.array([[1200.0, 0.0, 960.0], [0.0, 1180.0, 540.0], [0.0, 0.0, 1.0]]), (n_views, 3, 3)
    )
    dist = np.stack([np.array([0.1, -0.05, 0.001, -0.0015, 0.01]) * (1.0 + 0.2 * v) for v in range(n_views)])
    return {"K": K.copy(), "dist": dist, "R": R, "t": t, "centers": centers}


def _random_sim3(rng: np.random.Generator, batch: tuple[int, ...] = ()) -> tuple[np.ndarray, ...]:
    n = int(np.prod(batch)) if batch else 1
    R = Rotation.random(n, rng=rng).as_matrix().reshape(batch + (3, 3))
    scale = rng.uniform(0.3, 3.0, size=batch)
    t = rng.normal(size=batch + (3,))
    return scale, R, t


# ---------------------------------------------------------------------------------------------------------
# Camera transforms and projection
# ---------------------------------------------------------------------------------------------------------


def test_camera_centre_maps_to_camera_origin() -> None:
    rig = _ring_rig()
    centers = camera_centers(rig["R"], rig["t"])
    np.testing.assert_allclose(centers, rig["centers"], atol=1e-12)
    cam = world_to_camera(centers[:, None, :], rig["R"], rig["t"])
    np.testing.assert_allclose(cam, 0.0, atol=1e-12)


def test_world_to_camera_broadcasts_points_over_views() -> None:
    rig = _ring_rig()
    pts = np.random.default_rng(0).normal(size=(7, 3))
    out = world_to_camera(pts, rig["R"], rig["t"])
    assert out.shape == (5, 7, 3)
    np.testing.assert_allclose(out[2], pts @ rig["R"][2].T + rig["t"][2], atol=1e-12)


def test_project_point_matches_hand_computation() -> None:
    # Rotation of 90 degrees about the camera z axis.
    R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    t = np.array([0.1, -0.1, 1.0])
    X = np.array([0.3, 0.4, 1.0])
    K = np.array([[800.0, 2.0, 320.0], [0.0, 790.0, 240.0], [0.0, 0.0, 1.0]])
    k1, k2, p1, p2, k3 = 0.1, 0.01, 0.001, -0.002, 0.001
    dist = np.array([k1, k2, p1, p2, k3])

    # X_cam = R X + t = (-0.4 + 0.1, 0.3 - 0.1, 1.0 + 1.0) = (-0.3, 0.2, 2.0).
    x, y = -0.3 / 2.0, 0.2 / 2.0
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    expected = np.array([800.0 * xd + 2.0 * yd + 320.0, 790.0 * yd + 240.0])

    out = project_points(X[None], K, dist, R, t)
    assert out.shape == (1, 2)
    np.testing.assert_allclose(out[0], expected, rtol=0, atol=1e-10)


def test_project_points_behind_camera_is_nan() -> None:
    pts = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [0.1, 0.1, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = project_points(pts, np.eye(3), np.zeros(5), np.eye(3), np.zeros(3))
    assert np.isfinite(out[0]).all()
    assert np.isnan(out[1:]).all()


def test_project_points_batched_over_views_matches_per_view() -> None:
    rig = _ring_rig()
    pts = np.random.default_rng(1).normal(scale=0.5, size=(11, 3)) + [0, 0, 1]
    batched = project_points(pts, rig["K"], rig["dist"], rig["R"], rig["t"])
    assert batched.shape == (5, 11, 2)
    for v in range(5):
        single = project_points(pts, rig["K"][v], rig["dist"][v], rig["R"][v], rig["t"][v])
        np.testing.assert_allclose(batched[v], single, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Distortion
# ---------------------------------------------------------------------------------------------------------


def _image_grid(fx: float, width: int = 1920, height: int = 1080, n: int = 41) -> np.ndarray:
    """Normalized coordinates of a grid covering a width x height image with focal fx (principal centred)."""
    u, v = np.meshgrid(np.linspace(0, width, n), np.linspace(0, height, n))
    return np.stack([(u - width / 2) / fx, (v - height / 2) / fx], axis=-1).reshape(-1, 2)


@pytest.mark.parametrize("k1", np.linspace(-0.3, 0.3, 7))
def test_undistort_inverts_distort_over_typical_image(k1: float) -> None:
    dist = np.array([k1, 0.5 * abs(k1) * 0.1, 0.002, -0.002, 0.01])
    # Undistorted rays filling the field of view of a 1920x1080 camera with f = 1500 px.
    xy = _image_grid(1500.0)
    np.testing.assert_allclose(
        undistort_normalized(distort_normalized(xy, dist), dist), xy, rtol=0, atol=1e-9
    )
    # Distorted pixels filling the image of a camera with f = 2000 px.
    xy_d = _image_grid(2000.0)
    np.testing.assert_allclose(
        distort_normalized(undistort_normalized(xy_d, dist), dist), xy_d, rtol=0, atol=1e-9
    )


def test_distortion_zero_is_identity_and_broadcasts_per_view() -> None:
    xy = np.random.default_rng(2).uniform(-0.5, 0.5, size=(4, 6, 2))
    np.testing.assert_array_equal(distort_normalized(xy, np.zeros(5)), xy)
    dist = np.random.default_rng(3).uniform(-0.1, 0.1, size=(4, 1, 5))
    out = distort_normalized(xy, dist)
    assert out.shape == (4, 6, 2)
    np.testing.assert_allclose(out[1], distort_normalized(xy[1], dist[1, 0]), atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(
    k1=st.floats(-0.3, 0.3),
    k2=st.floats(-0.05, 0.05),
    p1=st.floats(-0.003, 0.003),
    p2=st.floats(-0.003, 0.003),
    k3=st.floats(-0.01, 0.01),
    x=st.floats(-0.6, 0.6),
    y=st.floats(-0.35, 0.35),
)
def test_distortion_round_trip_property(
    k1: float, k2: float, p1: float, p2: float, k3: float, x: float, y: float
):
    dist = np.array([k1, k2, p1, p2, k3])
    xy = np.array([x, y])
    np.testing.assert_allclose(
        undistort_normalized(distort_normalized(xy, dist), dist), xy, rtol=0, atol=1e-9
    )


def test_undistort_pixels_recovers_normalized_camera_coordinates() -> None:
    rig = _ring_rig()
    pts = np.random.default_rng(4).normal(scale=0.4, size=(9, 3)) + [0, 0, 1]
    pix = project_points(pts, rig["K"], rig["dist"], rig["R"], rig["t"])
    cam = world_to_camera(pts, rig["R"], rig["t"])
    np.testing.assert_allclose(
        undistort_pixels(pix, rig["K"], rig["dist"]), cam[..., :2] / cam[..., 2:], rtol=0, atol=1e-10
    )


# ---------------------------------------------------------------------------------------------------------
# Rays and triangulation
# ---------------------------------------------------------------------------------------------------------


def test_pixel_rays_pass_through_source_points() -> None:
    rig = _ring_rig()
    pts = np.random.default_rng(5).normal(scale=0.4, size=(13, 3)) + [0, 0, 1]
    pix = project_points(pts, rig["K"], rig["dist"], rig["R"], rig["t"])
    origins, directions = pixel_rays(pix, rig["K"], rig["dist"], rig["R"], rig["t"])
    assert origins.shape == directions.shape == (5, 13, 3)
    np.testing.assert_allclose(np.linalg.norm(directions, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(origins, np.broadcast_to(rig["centers"][:, None], (5, 13, 3)), atol=1e-12)
    # (V, N, 3) rays vs the N points: put N in front so the V rays per point are the ray axis.
    d = point_ray_distances(pts, origins.swapaxes(0, 1), directions.swapaxes(0, 1))
    assert d.shape == (13, 5)
    np.testing.assert_allclose(d, 0.0, atol=1e-9)
    # Rays point forward, towards the points.
    assert (np.einsum("vnk,vnk->vn", pts[None] - origins, directions) > 0).all()


def test_point_ray_distance_known_value() -> None:
    o = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    d = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    np.testing.assert_allclose(point_ray_distances(np.array([5.0, 3.0, 4.0]), o, d), [5.0, np.hypot(4, 2)])


def test_triangulate_rays_exact_and_batched() -> None:
    rig = _ring_rig()
    rng = np.random.default_rng(6)
    pts = rng.normal(scale=0.4, size=(3, 17, 3)) + [0, 0, 1]  # (T, J, 3)
    pix = project_points(pts[..., None, :, :], rig["K"], rig["dist"], rig["R"], rig["t"])  # (T, V, J, 2)
    origins, directions = pixel_rays(pix, rig["K"], rig["dist"], rig["R"], rig["t"])  # (T, V, J, 3)
    origins, directions = np.moveaxis(origins, -3, -2), np.moveaxis(directions, -3, -2)  # (T, J, V, 3)
    weights = rng.uniform(0.2, 1.0, size=(3, 17, 5))
    X = triangulate_rays(origins, directions, weights)
    assert X.shape == (3, 17, 3)
    np.testing.assert_allclose(X, pts, rtol=0, atol=1e-9)


def test_triangulate_pixels_exact() -> None:
    rig = _ring_rig()
    pts = np.random.default_rng(7).normal(scale=0.4, size=(4, 6, 3)) + [0, 0, 1]  # (T, J, 3)
    pix = project_points(pts[..., None, :, :], rig["K"], rig["dist"], rig["R"], rig["t"])  # (T, V, J, 2)
    pix = np.moveaxis(pix, -3, -2)  # (T, J, V, 2)
    X = triangulate_pixels(pix, np.ones(pix.shape[:-1]), rig["K"], rig["dist"], rig["R"], rig["t"])
    np.testing.assert_allclose(X, pts, rtol=0, atol=1e-9)


def test_triangulation_zero_weight_view_with_garbage_is_ignored() -> None:
    rig = _ring_rig()
    X = np.array([0.2, -0.1, 1.3])
    pix = project_points(X[None], rig["K"], rig["dist"], rig["R"], rig["t"])[:, 0]  # (V, 2)
    pix[1] = [5000.0, -3000.0]
    weights = np.array([1.0, 0.0, 0.5, 2.0, 1.0])
    out = triangulate_pixels(pix, weights, rig["K"], rig["dist"], rig["R"], rig["t"])
    np.testing.assert_allclose(out, X, rtol=0, atol=1e-9)
    # NaN pixels in a zero-weight (or any) view are ignored too.
    pix[1] = np.nan
    out = triangulate_pixels(pix, np.ones(5), rig["K"], rig["dist"], rig["R"], rig["t"])
    np.testing.assert_allclose(out, X, rtol=0, atol=1e-9)


def test_triangulation_degenerate_cases_give_nan_without_warnings() -> None:
    origins = np.array([[[0.0, 0, 0], [1.0, 0, 0], [0.0, 1, 0]]] * 4)
    directions = np.array([[[0.0, 0, 1], [-1.0, 0, 1], [0, -1.0, 1]]] * 4)
    weights = np.array(
        [
            [1.0, 0.0, 0.0],  # single view
            [0.0, 0.0, 0.0],  # no view
            [1.0, 1.0, 1.0],  # fine
            [1.0, 0.0, 0.0],  # replaced below with parallel rays
        ]
    )
    directions[3, 1] = [0.0, 0.0, 1.0]
    weights[3, 1] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = triangulate_rays(origins, directions, weights)
    assert np.isnan(out[[0, 1, 3]]).all()
    np.testing.assert_allclose(out[2], [0.0, 0.0, 1.0], atol=1e-12)


def _naive_triangulate(origins: np.ndarray, directions: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Reference: explicit Python loops over batch elements and views."""
    out = np.full(origins.shape[:-2] + (3,), np.nan)
    for idx in np.ndindex(origins.shape[:-2]):
        A = np.zeros((3, 3))
        b = np.zeros(3)
        n_views = 0
        for v in range(origins.shape[-2]):
            w = weights[idx + (v,)]
            if w <= 0:
                continue
            n_views += 1
            d = directions[idx + (v,)] / np.linalg.norm(directions[idx + (v,)])
            P = np.eye(3) - np.outer(d, d)
            A += w * P
            b += w * P @ origins[idx + (v,)]
        if n_views >= 2:
            out[idx] = np.linalg.solve(A, b)
    return out


def test_triangulate_rays_matches_naive_loop_on_noisy_rays() -> None:
    rng = np.random.default_rng(8)
    origins = rng.normal(scale=3.0, size=(4, 3, 6, 3))
    targets = rng.normal(size=(4, 3, 1, 3))
    directions = targets - origins + rng.normal(scale=0.05, size=origins.shape)
    weights = rng.uniform(0.0, 1.0, size=(4, 3, 6)) * (rng.uniform(size=(4, 3, 6)) > 0.3)
    weights[0, 0] = [1.0, 0, 0, 0, 0, 0]
    out = triangulate_rays(origins, directions, weights)
    np.testing.assert_allclose(out, _naive_triangulate(origins, directions, weights), rtol=0, atol=1e-10)
    assert np.isnan(out[0, 0]).all()


def test_triangulation_is_weighted_least_squares_optimum() -> None:
    rng = np.random.default_rng(9)
    origins = rng.normal(scale=3.0, size=(6, 3))
    directions = -origins + rng.normal(scale=0.1, size=(6, 3))
    weights = rng.uniform(0.1, 2.0, size=6)
    X = triangulate_rays(origins, directions, weights)

    def cost(p: np.ndarray) -> np.ndarray:
        return (weights * point_ray_distances(p, origins, directions) ** 2).sum(axis=-1)

    perturbed = X + rng.normal(scale=1e-3, size=(50, 3))
    assert (cost(perturbed) > cost(X)).all()


def test_robust_triangulation_rejects_outlier() -> None:
    rng = np.random.default_rng(10)
    X = np.array([0.3, -0.2, 1.1])
    origins = rng.normal(scale=4.0, size=(6, 3))
    directions = X - origins
    directions[4] = rng.normal(size=3) + np.cross(directions[4], [0.0, 0.0, 1.0])  # wildly off
    points, inliers = triangulate_rays_robust(origins, directions, np.ones(6), threshold=0.05)
    np.testing.assert_allclose(points, X, rtol=0, atol=1e-9)
    assert inliers.tolist() == [True, True, True, True, False, True]


def test_robust_triangulation_batched_and_min_views() -> None:
    rng = np.random.default_rng(11)
    X = rng.normal(size=(3, 3))
    origins = rng.normal(scale=4.0, size=(3, 5, 3))
    directions = X[:, None, :] - origins
    directions[0, 1] += [3.0, -2.0, 1.0]
    directions[2, 3] += [-2.0, 3.0, 2.0]
    weights = np.ones((3, 5))
    points, inliers = triangulate_rays_robust(origins, directions, weights, threshold=0.01)
    np.testing.assert_allclose(points, X, rtol=0, atol=1e-9)
    expected = np.ones((3, 5), dtype=bool)
    expected[0, 1] = expected[2, 3] = False
    np.testing.assert_array_equal(inliers, expected)
    # With min_views = 5 nothing may be dropped: result equals the plain linear solution.
    points_all, inliers_all = triangulate_rays_robust(
        origins, directions, weights, threshold=0.01, min_views=5
    )
    assert inliers_all.all()
    np.testing.assert_allclose(points_all, triangulate_rays(origins, directions, weights), atol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Quaternion averaging
# ---------------------------------------------------------------------------------------------------------


def test_average_quaternions_sign_invariant() -> None:
    rng = np.random.default_rng(12)
    base = Rotation.random(rng=rng)
    q = (Rotation.from_rotvec(rng.normal(scale=0.2, size=(6, 3))) * base).as_quat()
    w = rng.uniform(0.1, 1.0, size=6)
    flipped = q * np.array([1, -1, -1, 1, -1, 1])[:, None]
    a = average_quaternions_xyzw(q, w)
    np.testing.assert_allclose(average_quaternions_xyzw(flipped, w), a, atol=1e-12)
    assert a[3] >= 0
    np.testing.assert_allclose(np.linalg.norm(a), 1.0, atol=1e-12)


def test_average_of_identical_rotations_is_that_rotation() -> None:
    q = Rotation.from_rotvec([0.3, -1.2, 2.0]).as_quat(canonical=True)
    qs = np.stack([q, -q, q, q])
    np.testing.assert_allclose(average_quaternions_xyzw(qs, np.array([1.0, 2.0, 0.5, 3.0])), q, atol=1e-12)


@pytest.mark.parametrize(("a", "b"), [(0.2, 1.0), (-0.7, 2.1), (2.5, 3.0)])
def test_average_two_rotations_same_axis_is_midpoint(a: float, b: float) -> None:
    axis = np.array([1.0, 2.0, -0.5]) / np.linalg.norm([1.0, 2.0, -0.5])
    q = Rotation.from_rotvec(np.stack([a * axis, b * axis])).as_quat()
    expected = Rotation.from_rotvec((a + b) / 2 * axis).as_quat(canonical=True)
    out = average_quaternions_xyzw(q, np.ones(2))
    np.testing.assert_allclose(out, expected * np.sign(expected[3]), atol=1e-12)


def test_zero_weight_removes_input_and_batched() -> None:
    rng = np.random.default_rng(13)
    q = Rotation.random(3 * 5, rng=rng).as_quat().reshape(3, 5, 4)
    w = rng.uniform(0.1, 1.0, size=(3, 5))
    w0 = w.copy()
    w0[:, 2] = 0.0
    out = average_quaternions_xyzw(q, w0)
    assert out.shape == (3, 4)
    np.testing.assert_allclose(
        out, average_quaternions_xyzw(np.delete(q, 2, axis=1), np.delete(w, 2, axis=1))
    )
    assert np.isnan(average_quaternions_xyzw(q[0], np.zeros(5))).all()


def _naive_markley(q: np.ndarray, w: np.ndarray) -> np.ndarray:
    M = np.zeros((4, 4))
    for qi, wi in zip(q, w, strict=True):
        qi = qi / np.linalg.norm(qi)
        M += wi * np.outer(qi, qi)
    vals, vecs = np.linalg.eigh(M)
    v = vecs[:, np.argmax(vals)]
    return v if v[3] >= 0 else -v


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 8),
    spread=st.floats(0.0, 1.0),
)
def test_average_quaternions_property(seed: int, n: int, spread: float) -> None:
    rng = np.random.default_rng(seed)
    base = Rotation.random(rng=rng)
    q = (Rotation.from_rotvec(rng.normal(scale=spread, size=(n, 3))) * base).as_quat()
    w = rng.uniform(0.05, 1.0, size=n)
    signs = rng.choice([-1.0, 1.0], size=(n, 1))
    perm = rng.permutation(n)
    out = average_quaternions_xyzw(q, w)
    np.testing.assert_allclose(np.linalg.norm(out), 1.0, atol=1e-12)
    assert out[3] >= 0
    np.testing.assert_allclose(average_quaternions_xyzw(signs * q[perm], w[perm]), out, atol=1e-9)
    np.testing.assert_allclose(out, _naive_markley(q, w), atol=1e-9)
    # The average maximises sum_i w_i (q_i . q)^2 over unit quaternions, in particular over the inputs.
    score = lambda p: (w * (q @ p) ** 2).sum()  # noqa: E731
    assert all(score(out) >= score(qi) - 1e-12 for qi in q)


# ---------------------------------------------------------------------------------------------------------
# Umeyama / Sim(3)
# ---------------------------------------------------------------------------------------------------------


def test_umeyama_recovers_known_sim3() -> None:
    rng = np.random.default_rng(14)
    scale, R, t = _random_sim3(rng)
    src = rng.normal(size=(20, 3))
    tgt = apply_sim3(src, scale, R, t)
    s_hat, R_hat, t_hat = umeyama_sim3(src, tgt)
    np.testing.assert_allclose(s_hat, scale, rtol=0, atol=1e-9)
    np.testing.assert_allclose(R_hat, R, rtol=0, atol=1e-9)
    np.testing.assert_allclose(t_hat, t, rtol=0, atol=1e-9)


def test_umeyama_batched_matches_per_element_loop() -> None:
    rng = np.random.default_rng(15)
    scale, R, t = _random_sim3(rng, (4, 3))
    src = rng.normal(size=(4, 3, 10, 3))
    tgt = apply_sim3(src, scale, R, t) + rng.normal(scale=0.01, size=src.shape)
    weights = rng.uniform(0.1, 1.0, size=(4, 3, 10))
    s_b, R_b, t_b = umeyama_sim3(src, tgt, weights)
    assert s_b.shape == (4, 3) and R_b.shape == (4, 3, 3, 3) and t_b.shape == (4, 3, 3)
    for i, j in np.ndindex(4, 3):
        s1, R1, t1 = umeyama_sim3(src[i, j], tgt[i, j], weights[i, j])
        np.testing.assert_allclose(s_b[i, j], s1, atol=1e-12)
        np.testing.assert_allclose(R_b[i, j], R1, atol=1e-12)
        np.testing.assert_allclose(t_b[i, j], t1, atol=1e-12)
    np.testing.assert_allclose(s_b, scale, atol=0.05)


def test_umeyama_reflection_returns_proper_rotation() -> None:
    rng = np.random.default_rng(16)
    src = rng.normal(size=(15, 3))
    tgt = src * np.array([1.0, 1.0, -1.0])  # a mirror image: no rotation can match it
    for with_scale in (True, False):
        s, R, t = umeyama_sim3(src, tgt, with_scale=with_scale)
        np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    # With scale fixed, compare with scipy's (proper-rotation) Kabsch solution on centred points.
    s, R, t = umeyama_sim3(src, tgt, with_scale=False)
    assert s == 1.0
    ref, _ = Rotation.align_vectors(tgt - tgt.mean(0), src - src.mean(0))
    np.testing.assert_allclose(R, ref.as_matrix(), atol=1e-9)


def test_umeyama_ignores_nan_rows_and_zero_weights() -> None:
    rng = np.random.default_rng(17)
    scale, R, t = _random_sim3(rng)
    src = rng.normal(size=(12, 3))
    tgt = apply_sim3(src, scale, R, t)
    tgt[3] = [100.0, 5.0, -7.0]  # garbage, removed by zero weight
    src[5, 1] = np.nan
    tgt[8] = np.nan
    w = np.ones(12)
    w[3] = 0.0
    s_hat, R_hat, t_hat = umeyama_sim3(src, tgt, w)
    np.testing.assert_allclose(s_hat, scale, atol=1e-9)
    np.testing.assert_allclose(R_hat, R, atol=1e-9)
    np.testing.assert_allclose(t_hat, t, atol=1e-9)
    s0, R0, t0 = umeyama_sim3(src, tgt, np.zeros(12))
    assert np.isnan(s0) and np.isnan(R0).all() and np.isnan(t0).all()


def test_umeyama_without_scale_is_rigid() -> None:
    rng = np.random.default_rng(18)
    _, R, t = _random_sim3(rng)
    src = rng.normal(size=(9, 3))
    s, R_hat, t_hat = umeyama_sim3(src, apply_sim3(src, 1.0, R, t), with_scale=False)
    assert s == 1.0
    np.testing.assert_allclose(R_hat, R, atol=1e-9)
    np.testing.assert_allclose(t_hat, t, atol=1e-9)


def test_apply_sim3_matches_naive() -> None:
    rng = np.random.default_rng(19)
    scale, R, t = _random_sim3(rng, (2,))
    pts = rng.normal(size=(2, 4, 3))
    out = apply_sim3(pts, scale, R, t)
    for b in range(2):
        for n in range(4):
            np.testing.assert_allclose(out[b, n], scale[b] * R[b] @ pts[b, n] + t[b], atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(3, 30),
    log_scale=st.floats(-3.0, 3.0),
)
def test_umeyama_recovers_sim3_property(seed: int, n: int, log_scale: float) -> None:
    rng = np.random.default_rng(seed)
    src = rng.normal(size=(n, 3))
    # Keep the source well spread (non-collinear) so the rotation is unique.
    src += np.eye(3)[np.arange(n) % 3] * 2.0
    R = Rotation.random(rng=rng).as_matrix()
    t = rng.normal(scale=5.0, size=3)
    scale = float(np.exp(log_scale))
    tgt = apply_sim3(src, scale, R, t)
    s_hat, R_hat, t_hat = umeyama_sim3(src, tgt)
    np.testing.assert_allclose(s_hat, scale, rtol=1e-9)
    np.testing.assert_allclose(R_hat, R, atol=1e-9)
    np.testing.assert_allclose(apply_sim3(src, s_hat, R_hat, t_hat), tgt, atol=1e-8 * max(scale, 1.0))
