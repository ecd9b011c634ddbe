"""The views' relative rotation read from the people's body orientations, and its use in placing views."""

from dataclasses import replace

import numpy as np
from scipy.spatial.transform import Rotation

from core.cameras.bundle import BundleCameras
from core.cameras.landmarks import HALF_TURN, angle_deg, pair_readings, reading_error_deg
from core.cameras.pairs import ViewPair, midline_keypoints
from core.cameras.placement import Keypoints, place_views
from core.evaluation.synthetic import SyntheticConfig, make_scene


def _scene(orient_noise_rad=0.0):
    config = SyntheticConfig(
        persons=2,
        views=3,
        frames=30,
        keypoint_noise_px=0.5,
        miss_rate=0.0,
        false_positive_rate=0.0,
        occlusion=False,
        orient_noise_rad=orient_noise_rad,
        seed=5,
    )
    return make_scene(config)


def _true_pair(scene, first, second):
    """The observation pairs of two views that are one person at one frame, from the ground truth."""
    obs, identity = scene.observations, scene.observation_identity
    a = np.flatnonzero((obs.view == first) & (identity >= 0))
    b = np.flatnonzero((obs.view == second) & (identity >= 0))
    same = (obs.frame[a, None] == obs.frame[b]) & (identity[a, None] == identity[b])
    i, j = np.nonzero(same)
    return ViewPair(first, second, np.eye(3), a[i], b[j], int(i.size))


def _relative(scene, first, second):
    R = scene.true_cameras.R
    return R[second] @ R[first].T


def test_exact_body_orientations_give_the_views_relative_rotation():
    scene = _scene()
    pair = _true_pair(scene, 0, 2)
    readings = pair_readings(scene.observations.global_orient_cam, pair.observations1, pair.observations2)
    np.testing.assert_allclose(angle_deg(readings[:, 0], _relative(scene, 0, 2)), 0.0, atol=1e-5)


def test_a_mirror_wise_label_swap_reads_right_and_a_wrong_pairing_does_not():
    rng = np.random.default_rng(0)
    truth = Rotation.random(random_state=1).as_matrix()
    O1 = Rotation.random(200, random_state=2).as_matrix()
    noise = Rotation.from_rotvec(rng.normal(0, np.radians(5), (200, 3))).as_matrix()
    O2 = noise @ truth @ O1
    mirrored = rng.random(200) < 0.4
    O2[mirrored] = O2[mirrored] @ HALF_TURN  # the second view labels these people mirror-wise
    wrong = rng.random(200) < 0.2
    O2[wrong] = Rotation.random(int(wrong.sum()), random_state=3).as_matrix()  # another person
    orient = Rotation.from_matrix(np.concatenate([O1, O2])).as_rotvec()
    error = reading_error_deg(pair_readings(orient, np.arange(200), 200 + np.arange(200)), truth)
    assert (error[~wrong] < 20.0).mean() > 0.95 and (error[wrong] < 20.0).mean() < 0.2
    assert np.median(error) < 20.0  # the placement's check
    direct = angle_deg(pair_readings(orient, np.arange(200), 200 + np.arange(200))[:, 0], truth)
    assert (direct[mirrored & ~wrong] > 90.0).all()  # read directly, the swapped ones are half a turn off


def test_placing_skips_a_view_pair_whose_rotation_the_bodies_contradict():
    scene = _scene(orient_noise_rad=0.1)
    obs = scene.observations
    rig = scene.true_cameras
    midline, confidence = midline_keypoints(obs.keypoints2d, obs.keypoint_confidence, obs.keypoint_names)
    keypoints = Keypoints(midline, confidence >= 0.5, np.full(3, 8.0))
    cameras = BundleCameras(
        np.zeros((3, 3)), np.zeros((3, 3)), rig.K[:, 0, 0], np.zeros(3), rig.K[:, :2, 2].copy()
    )
    surest, other = _true_pair(scene, 0, 1), _true_pair(scene, 0, 2)
    scrambled = obs.global_orient_cam.copy()
    in_view_1 = obs.view == 1
    scrambled[in_view_1] = Rotation.random(int(in_view_1.sum()), random_state=4).as_rotvec()
    contradicted = replace(obs, global_orient_cam=scrambled)

    placement = place_views(cameras, [surest, other], [0, 1, 2], contradicted, keypoints, 35.0)
    assert not placement.messages and placement.landmark_error_deg < 35.0
    R = placement.cameras.R
    assert angle_deg(R[2] @ R[0].T, _relative(scene, 0, 2)) < 1.0  # the pair (0, 2) seeded it: no message

    trusted = place_views(cameras, [surest, other], [0, 1, 2], obs, keypoints, 35.0)
    R = trusted.cameras.R
    assert angle_deg(R[1] @ R[0].T, _relative(scene, 0, 1)) < 1.0  # the surest pair when it agrees

    nobody_agrees = replace(obs, global_orient_cam=Rotation.random(len(obs), random_state=6).as_rotvec())
    doubted = place_views(cameras, [surest, other], [0, 1, 2], nobody_agrees, keypoints, 35.0)
    assert doubted.messages and "disagree" in doubted.messages[0]
