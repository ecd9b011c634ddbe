"""Self-calibration end to end on synthetic rigs, and what it says about input it cannot calibrate from."""

from dataclasses import replace

import numpy as np
import pytest

from core.config import ReconstructionConfig
from core.engine.video_pipeline import self_calibrate
from core.evaluation.camera_errors import camera_errors
from core.evaluation.synthetic import SyntheticConfig, make_scene
from studio.camera_bench import identity_errors


def _scene(frames=40, **overrides):
    config = SyntheticConfig(
        persons=3,
        views=4,
        frames=frames,
        identical_appearance=True,
        mirrored_rate=0.3,
        seed=0,
        **overrides,
    )
    return make_scene(config)


def _calibrate(scene, observations=None, frames=None, views=None):
    rig = scene.true_cameras
    cameras = rig.cameras if views is None else rig.cameras[:views]
    sizes = [(c.width, c.height) for c in cameras]
    names = [c.name for c in cameras]
    observations = scene.observations if observations is None else observations
    frames = int(scene.observations.frame.max()) + 1 if frames is None else frames
    return self_calibrate(observations, sizes, names, frames, ReconstructionConfig())


@pytest.fixture(scope="module")
def scene():
    return _scene()


def test_the_cameras_of_look_alike_people_with_mirrored_labels_are_found(scene):
    found = _calibrate(scene)
    assert found.report.placed == scene.true_cameras.names
    errors = camera_errors(scene.true_cameras, found.rig).summary()
    assert errors["rotation_deg_median"] < 1.0 and errors["rotation_deg_max"] < 2.0
    assert errors["focal_percent_max"] < 8.0
    assert abs(errors["scale_percent"]) < 5.0  # from the body priors alone
    assert errors["up_deg"] < 3.0
    assert identity_errors(found.track, scene.observation_identity)["wrong"] == 0
    table = found.report.table()
    assert all(row["verdict"] == "placed" and row["inliers"] > 100 for row in table)
    assert all(row["reprojection_px"] < 5.0 for row in table)


def test_a_view_that_sees_nobody_is_named_and_the_others_are_placed(scene):
    observations = scene.observations.take(scene.observations.view != 3)
    found = _calibrate(scene, observations)
    assert found.report.placed == scene.true_cameras.names[:3]
    assert found.report.cameras[3].reason == "nobody is detected in it"
    assert len(found.rig) == 3


def test_a_single_view_and_too_few_frames_say_why_nothing_is_placed(scene):
    one = _calibrate(scene, scene.observations.take(scene.observations.view == 0), views=1)
    assert not one.report.placed and "one view" in one.report.cameras[0].reason
    short = scene.observations.take(scene.observations.frame < 8)
    few = _calibrate(scene, short, frames=8)
    assert not few.report.placed and "8 frames" in few.report.cameras[0].reason
    assert "no camera placed" in few.report.messages[0]


def test_views_that_share_nobody_with_the_first_pair_are_left_out_with_the_reason(scene):
    obs = scene.observations
    # views 0 and 1 see the first half of the clip, views 2 and 3 the second: two rigs nothing joins (one
    # person walking alone in two views is no evidence: any similar walk elsewhere looks the same)
    keep = np.where(obs.view <= 1, obs.frame < 20, obs.frame >= 20)
    found = _calibrate(scene, obs.take(keep))
    assert len(found.report.placed) == 2
    for camera in found.report.cameras:
        assert camera.placed or "agree with the placed views" in camera.reason


def test_people_standing_still_are_reported_as_a_poor_calibration(scene):
    obs = scene.observations
    first = {}
    for row in np.lexsort((obs.frame, obs.view)):
        first.setdefault((obs.view[row], scene.observation_identity[row]), row)
    source = np.array([first[obs.view[n], scene.observation_identity[n]] for n in range(len(obs))])
    jitter = np.random.default_rng(0).normal(0, 1, obs.keypoints2d.shape)
    found = _calibrate(scene, replace(obs, keypoints2d=obs.keypoints2d[source] + jitter))
    assert any("barely move" in message for message in found.report.messages)
