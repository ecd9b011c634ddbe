"""The calibration file's cameras carried into an estimated world: exact on a known similarity."""

import numpy as np
from scipy.spatial.transform import Rotation

from core.cameras.alignment import carried_into
from core.evaluation.synthetic import SyntheticConfig, make_scene
from core.geometry import project_points


def test_cameras_carried_by_a_known_similarity_land_on_the_moved_rig_and_see_the_same_pixels():
    rig = make_scene(SyntheticConfig(persons=1, views=4, frames=1)).true_cameras
    s, Q, u = 0.37, Rotation.from_rotvec([0.3, -1.2, 2.0]).as_matrix(), np.array([4.0, -1.0, 2.5])
    moved = rig.scaled(s)  # the same rig in a world scaled by s, then rotated by Q and shifted by u
    moved = type(rig)(
        tuple(
            type(c)(c.name, c.K, c.dist, c.R @ Q.T, c.t - c.R @ Q.T @ u, c.width, c.height)
            for c in moved.cameras
        )
    )
    carried = carried_into(rig, moved)
    np.testing.assert_allclose(carried.centers, moved.centers, atol=1e-9)
    np.testing.assert_allclose(carried.R, moved.R, atol=1e-9)
    points = np.random.default_rng(1).uniform(-1, 1, (20, 3)) + [0, 0, 1]
    before = project_points(points, rig.K[:, None], rig.dist[:, None], rig.R[:, None], rig.t[:, None])
    after = project_points(
        s * points @ Q.T + u,
        carried.K[:, None],
        carried.dist[:, None],
        carried.R[:, None],
        carried.t[:, None],
    )
    np.testing.assert_allclose(after, before, atol=1e-7)


def test_fewer_than_three_shared_cameras_give_no_overlay():
    rig = make_scene(SyntheticConfig(persons=1, views=4, frames=1)).true_cameras
    two = type(rig)(rig.cameras[:2])
    assert carried_into(rig, two) is None
    assert carried_into(two, rig) is None
