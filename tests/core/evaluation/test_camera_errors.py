"""Camera errors on exact cases: a rig moved by a known similarity, and one camera rotated."""

import dataclasses

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.evaluation.camera_errors import camera_errors
from core.evaluation.synthetic import SyntheticConfig, make_scene
from core.types import CameraRig


def _rig():
    return make_scene(SyntheticConfig(persons=1, views=4, frames=1, seed=2)).true_cameras


def _moved(rig: CameraRig, scale: float, rotation: np.ndarray, shift: np.ndarray) -> CameraRig:
    """The same cameras in a world X' = scale · rotation · X + shift."""
    return CameraRig(
        tuple(
            dataclasses.replace(c, R=c.R @ rotation.T, t=scale * c.t - c.R @ rotation.T @ shift)
            for c in rig.cameras
        )
    )


def test_a_similarity_of_the_world_changes_only_scale_and_up():
    rig = _rig()
    tilt = Rotation.from_euler("xz", [7.0, 40.0], degrees=True).as_matrix()
    errors = camera_errors(rig, _moved(rig, 1.5, tilt, np.array([1.0, -2.0, 0.5])))
    np.testing.assert_allclose(errors.rotation_deg, 0.0, atol=1e-6)
    np.testing.assert_allclose(errors.centre_cm, 0.0, atol=1e-6)
    np.testing.assert_allclose(errors.focal_percent, 0.0, atol=1e-9)
    assert errors.scale_percent == pytest.approx(50.0)
    assert errors.up_deg == pytest.approx(7.0, abs=1e-6)


def test_one_camera_turned_and_zoomed_shows_in_its_pairs_and_focal():
    rig = _rig()
    turned = Rotation.from_euler("y", 2.0, degrees=True).as_matrix()
    first = rig.cameras[0]
    K = first.K.copy()
    K[:2, :2] *= 1.1
    cameras = (dataclasses.replace(first, R=turned @ first.R, t=turned @ first.t, K=K), *rig.cameras[1:])
    errors = camera_errors(rig, CameraRig(cameras))
    np.testing.assert_allclose(errors.rotation_deg, [2, 2, 2, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(errors.focal_percent, [10, 0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(errors.centre_cm, 0.0, atol=1e-6)  # turned about its own centre
