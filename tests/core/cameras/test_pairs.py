"""Epipolar errors on exact geometry, and which tracklet of one view is which of another."""

import numpy as np

from core.cameras.config import SelfCalibrationConfig
from core.cameras.pairs import FrameTable, match_view_pair, sampson_errors
from core.engine.tracking import TrackingConfig, track
from core.evaluation.synthetic import SyntheticConfig, make_scene


def _fundamental(camera_i, camera_j):
    R = camera_j.R @ camera_i.R.T
    t = camera_j.t - R @ camera_i.t
    cross = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    return np.linalg.inv(camera_j.K).T @ cross @ R @ np.linalg.inv(camera_i.K)


def _clean_scene():
    config = SyntheticConfig(
        persons=2,
        views=3,
        frames=60,
        identical_appearance=True,
        keypoint_noise_px=0.5,
        miss_rate=0.0,
        false_positive_rate=0.0,
        occlusion=False,
        seed=3,
    )
    return make_scene(config)


def test_sampson_error_is_zero_on_exact_correspondences_and_grows_off_the_line():
    scene = _clean_scene()
    ci, cj = scene.true_cameras.cameras[:2]
    F = _fundamental(ci, cj)
    X = np.array([[0.3, -0.2, 1.0], [-0.5, 0.4, 1.5]])

    def pixels(c):
        x = X @ c.R.T + c.t
        x = x @ c.K.T
        return x[:, :2] / x[:, 2:]

    x1, x2 = pixels(ci), pixels(cj)
    np.testing.assert_allclose(sampson_errors(F, x1, x2), 0.0, atol=1e-6)
    assert (sampson_errors(F, x1, x2 + [0.0, 5.0]) > 0.5).all()


def test_the_same_person_is_matched_across_two_views_although_everyone_looks_alike():
    scene = _clean_scene()
    observations = scene.observations
    tracklets = track(observations, 3, TrackingConfig())
    table = FrameTable.build(tracklets, observations.frame, 60)
    pair = match_view_pair(0, 1, observations, tracklets, table, 1920.0, SelfCalibrationConfig())
    assert pair is not None
    identity = scene.observation_identity
    assert pair.observations1.size >= 60  # both people at most frames
    assert (identity[pair.observations1] == identity[pair.observations2]).mean() > 0.98
