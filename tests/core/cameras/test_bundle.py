"""The bundle adjustment recovers exact cameras and points from perturbed ones on noise-free pixels."""

import numpy as np
from scipy.spatial.transform import Rotation

from core.cameras.bundle import BundleCameras, Segments, _Problem, adjust, project, right_jacobians


def _scene(rng):
    V, P = 4, 300
    angles = np.arange(V) * 2 * np.pi / V
    centres = np.stack([4 * np.cos(angles), 4 * np.sin(angles), np.full(V, 1.8)], axis=1)
    rotvec, t = [], []
    for c in centres:
        forward = -c / np.linalg.norm(c)
        right = np.cross(forward, [0, 0, 1.0])
        right /= np.linalg.norm(right)
        R = np.stack([right, np.cross(forward, right), forward])
        rotvec.append(Rotation.from_matrix(R).as_rotvec())
        t.append(-R @ c)
    cameras = BundleCameras(
        np.array(rotvec),
        np.array(t),
        rng.uniform(900, 1300, V),
        rng.uniform(-0.05, 0.05, V),
        np.tile([960.0, 540.0], (V, 1)),
    )
    points = rng.uniform([-1.5, -1.5, 0.0], [1.5, 1.5, 1.8], (P, 3))
    view = np.repeat(np.arange(V), P)
    point = np.tile(np.arange(P), V)
    return cameras, points, view, point, project(cameras, view, points[point])


def test_adjustment_recovers_the_cameras_from_a_perturbed_start():
    rng = np.random.default_rng(0)
    truth, points, view, point, pixels = _scene(rng)
    start = BundleCameras(
        truth.rotvec + np.r_[[np.zeros(3)], rng.normal(0, 0.02, (3, 3))],
        truth.t + np.r_[[np.zeros(3)], rng.normal(0, 0.05, (3, 3))],
        truth.focal * rng.uniform(0.93, 1.07, 4),
        np.zeros(4),
        truth.principal,
    )
    noisy = points + rng.normal(0, 0.03, points.shape)
    fixed = np.array([0])
    cameras, adjusted, _ = adjust(start, noisy, view, point, pixels, 2.0, fixed, 2, 200, k1_sigma=1.0)
    error = np.linalg.norm(project(cameras, view, adjusted[point]) - pixels, axis=1)
    assert np.median(error) < 0.05

    # one camera fixed leaves the scale free: compare up to it
    def centres(c):
        return -np.einsum("vji,vj->vi", c.R, c.t)

    scale = np.linalg.norm(np.diff(centres(cameras), axis=0), axis=1) / np.linalg.norm(
        np.diff(centres(truth), axis=0), axis=1
    )
    assert np.ptp(scale) < 0.01
    scale = scale[0]
    assert abs(scale - 1) < 0.05
    np.testing.assert_allclose(cameras.focal, truth.focal, rtol=0.01)
    np.testing.assert_allclose(cameras.k1, truth.k1, atol=0.005)
    angle = (Rotation.from_rotvec(cameras.rotvec).inv() * Rotation.from_rotvec(truth.rotvec)).magnitude()
    assert np.degrees(angle).max() < 0.2


def test_fixed_intrinsics_stay_as_given():
    rng = np.random.default_rng(1)
    truth, points, view, point, pixels = _scene(rng)
    cameras, _, _ = adjust(truth, points, view, point, pixels, 2.0, np.array([0]), 0, 20)
    np.testing.assert_array_equal(cameras.focal, truth.focal)
    np.testing.assert_array_equal(cameras.k1, truth.k1)


def test_the_analytic_jacobian_is_the_residuals_derivative():
    """Central differences of every parameter, with k1 and the principal point, a fixed camera and body
    segments."""
    rng = np.random.default_rng(2)
    cameras, points, view, point, pixels = _scene(rng)
    keep = rng.choice(view.size, 40, replace=False)
    used, point = np.unique(point[keep], return_inverse=True)
    view, pixels, points = view[keep], pixels[keep] + rng.normal(0, 1, (40, 2)), points[used]
    segments = Segments(np.array([0, 1, 2]), np.array([3, 4, 5]), np.array([0, 0, 1]), 50.0)
    problem = _Problem(cameras, view, point, pixels, np.array([1]), 3, (0.05, 40.0), segments)
    x = np.concatenate(
        [
            np.concatenate([cameras.rotvec, cameras.t], axis=1)[problem.free].ravel(),
            np.stack([rng.normal(0, 0.01, 4), cameras.k1, *rng.normal(0, 5, (2, 4))], axis=1).ravel(),
            points.ravel(),
            [0.1, -0.2],
        ]
    )
    analytic = problem.jacobian(x, 2.0).toarray()
    step = 1e-6
    numeric = np.stack(
        [
            (problem.residuals(x + step * e, 2.0) - problem.residuals(x - step * e, 2.0)) / (2 * step)
            for e in np.eye(x.size)
        ],
        axis=1,
    )
    np.testing.assert_allclose(analytic, numeric, atol=1e-4 * np.abs(numeric).max())


def test_right_jacobians_match_the_rotation_vectors_derivative():
    rotvec = np.array([[0.3, -1.1, 2.2], [1e-8, 0.0, 0.0]])
    analytic = right_jacobians(rotvec)
    for omega, J in zip(rotvec, analytic, strict=True):
        R = Rotation.from_rotvec(omega)
        for k, e in enumerate(np.eye(3) * 1e-7):
            change = (R.inv() * Rotation.from_rotvec(omega + e)).as_rotvec() / 1e-7
            np.testing.assert_allclose(change, J[:, k], atol=1e-5)


def test_the_principal_point_is_recovered_when_refined():
    rng = np.random.default_rng(3)
    truth, points, view, point, _ = _scene(rng)
    truth = BundleCameras(
        truth.rotvec, truth.t, truth.focal, truth.k1, truth.principal + rng.uniform(-15, 15, (4, 2))
    )
    pixels = project(truth, view, points[point])
    start = BundleCameras(
        truth.rotvec, truth.t, truth.focal * 1.03, np.zeros(4), np.tile([960.0, 540.0], (4, 1))
    )
    fixed = np.array([0])
    cameras, _, _ = adjust(
        start, points, view, point, pixels, 2.0, fixed, 3, 200, k1_sigma=1.0, principal_sigma_px=200.0
    )
    # a principal point shift trades with a small rotation, so that it is only loosely determined
    assert np.abs(start.principal - truth.principal).max() > 10.0
    np.testing.assert_allclose(cameras.principal, truth.principal, atol=2.0)
    np.testing.assert_allclose(cameras.focal, truth.focal, rtol=0.005)
    held, _, _ = adjust(start, points, view, point, pixels, 2.0, fixed, 2, 200, k1_sigma=1.0)
    np.testing.assert_array_equal(held.principal, start.principal)  # not refined below level 3
