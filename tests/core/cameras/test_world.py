"""The people's metric world on an exact case: a synthetic rig moved by a known similarity comes back
upright, metric and standing on z = 0."""

import dataclasses

import numpy as np
from scipy.spatial.transform import Rotation

from core.cameras.config import CameraHints
from core.cameras.pairs import midline_keypoints
from core.cameras.world import metric_world
from core.evaluation.camera_errors import camera_errors
from core.evaluation.synthetic import SyntheticConfig, make_scene
from core.skeleton import JOINT_NAMES
from core.types import CameraRig


def _moved(rig: CameraRig, scale: float, rotation: np.ndarray, shift: np.ndarray) -> CameraRig:
    """The same cameras in a world X' = scale · rotation · X + shift (camera frames rescaled alike)."""
    return CameraRig(
        tuple(
            dataclasses.replace(c, R=c.R @ rotation.T, t=scale * c.t - c.R @ rotation.T @ shift)
            for c in rig.cameras
        )
    )


def test_a_moved_rig_comes_back_upright_metric_and_on_the_floor():
    config = SyntheticConfig(persons=2, views=4, frames=80, false_positive_rate=0.0, shape_noise=0.0, seed=4)
    scene = make_scene(config)
    observations = scene.observations
    identity = scene.observation_identity
    # one track per person and frame: that person's true joints
    track = np.where(identity >= 0, identity * config.frames + observations.frame, -1)
    joints = scene.joints.reshape(-1, 22, 3)  # (P * T, 22, 3)
    X, _ = midline_keypoints(joints, np.ones(joints.shape[:2]), JOINT_NAMES)
    scale, rotation = 0.37, Rotation.from_euler("xyz", [25.0, -10.0, 70.0], degrees=True).as_matrix()
    shift = np.array([3.0, -1.0, 2.0])
    moved = _moved(scene.true_cameras, scale, rotation, shift)
    X_moved = scale * X @ rotation.T + shift
    seen = np.full(X.shape[:2], 2)
    tracklet = np.where(identity >= 0, identity, -1)
    rig, scale_from, messages = metric_world(
        moved, set(range(4)), observations, track, tracklet, X_moved, seen, CameraHints()
    )
    assert scale_from == "body priors" and messages == ()
    errors = camera_errors(scene.true_cameras, rig)
    assert errors.up_deg < 3.0
    assert abs(errors.scale_percent) < 3.0
    np.testing.assert_allclose(errors.rotation_deg, 0.0, atol=1e-6)  # a similarity changes no pair
    heights = rig.centers[:, 2]
    # the floor from the ankles (within a few cm) and the up axis (1° is 10 cm at the cameras)
    np.testing.assert_allclose(heights, scene.true_cameras.centers[:, 2], atol=0.2)
