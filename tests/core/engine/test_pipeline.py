"""The test-time pipeline end to end on small scenes, and its documented behaviour on bad input."""

import dataclasses

import numpy as np
import pytest

from core.engine.pipeline import reconstruct_from_observations
from core.errors import InputError
from core.evaluation.scoring import evaluate
from core.evaluation.synthetic import SyntheticConfig, make_scene
from core.skeleton import JOINT_NAMES
from tests.core.engine.scenes import exact_scene


def run(scene, observations=None, cameras=None):
    return reconstruct_from_observations(
        scene.observations if observations is None else observations,
        scene.cameras if cameras is None else cameras,
        scene.config.frames,
        scene.config.fps,
    )


def test_small_scene_is_reconstructed_accurately(small_scene, small_reconstruction):
    evaluation = evaluate(small_reconstruction, small_scene)
    assert evaluation.persons_found == 3
    assert evaluation.association_precision == 1.0 and evaluation.association_recall == 1.0
    assert evaluation.scale_rel_error < 0.02
    assert evaluation.wa_mpjpe_mm < 0.5 * evaluation.single_view_wa_mpjpe_mm
    assert set(small_reconstruction.diagnostics.stage_seconds) >= {
        "tracking",
        "association",
        "fusion",
        "scale",
    }
    for person in small_reconstruction.persons:
        seen = np.isfinite(person.residuals_px)
        assert seen.any() and np.nanmean(person.residuals_px) < 25.0  # pixels, with 2 px keypoint noise


def test_empty_scene_gives_no_person_and_says_so(small_scene):
    reconstruction = run(small_scene, small_scene.observations.take(np.zeros(0, dtype=int)))
    assert reconstruction.persons == ()
    assert any("no person found" in m for m in reconstruction.diagnostics.messages)


def test_single_view_keeps_each_tracklet_as_a_person_with_monocular_positions():
    scene = make_scene(SyntheticConfig(persons=2, views=1, frames=40, seed=3, false_positive_rate=0.0))
    reconstruction = run(scene)
    assert len(reconstruction.persons) == 2
    assert any("single view" in m for m in reconstruction.diagnostics.messages)
    assert all(np.isfinite(p.joints).all() for p in reconstruction.persons)


def test_non_finite_observations_are_dropped_and_counted(small_scene):
    obs = small_scene.observations
    position = obs.position_cam.copy()
    position[[0, 5, 9]] = np.nan
    keypoints = obs.keypoints2d.copy()
    keypoints[1, 3] = np.inf
    corrupted = dataclasses.replace(obs, position_cam=position, keypoints2d=keypoints)
    reconstruction = run(small_scene, corrupted)
    assert reconstruction.diagnostics.dropped_observations == 3
    assert len(reconstruction.observations) == len(obs) - 3
    assert all(np.isfinite(p.joints).all() and np.isfinite(p.transl).all() for p in reconstruction.persons)
    assert np.isfinite(reconstruction.observations.keypoints2d).all()


def test_frames_without_detections_leave_gaps_not_crashes(small_scene):
    obs = small_scene.observations
    kept = obs.take((obs.frame < 20) | (obs.frame >= 30))
    reconstruction = run(small_scene, kept)
    for person in reconstruction.persons:
        assert not np.isin(np.arange(20, 30), person.frames).any()


def test_observations_of_an_unknown_view_are_an_input_error(small_scene):
    cameras = dataclasses.replace(small_scene.cameras, cameras=small_scene.cameras.cameras[:2])
    with pytest.raises(InputError, match="view 2 but there are 2 cameras"):
        run(small_scene, cameras=cameras)


def test_no_cameras_is_an_input_error(small_scene):
    with pytest.raises(InputError, match="no cameras"):
        run(small_scene, cameras=dataclasses.replace(small_scene.cameras, cameras=()))


@pytest.mark.parametrize("frames", [1, 3, 4])
@pytest.mark.parametrize("shape_model", ["skeleton", "none"])
def test_a_clip_shorter_than_a_tracklet_keeps_the_people_seen_in_every_frame(frames, shape_model):
    scene = exact_scene(persons=2, views=3, frames=frames)
    # "none": bare keypoints, as BlazePose gives, which also go through the geometric refinement.
    observations = dataclasses.replace(
        scene.observations, shape_model=shape_model, keypoint_names=JOINT_NAMES
    )
    reconstruction = run(scene, observations)
    assert len(reconstruction.persons) == 2
    person = reconstruction.assignment.person_of(
        reconstruction.tracklets.observation_tracklet, observations.frame
    )
    for found in reconstruction.persons:
        truth = np.unique(scene.observation_identity[person == found.person_id])
        assert truth.size == 1  # one true person, seen by every view in every frame
        assert (found.views.sum(axis=1) == 3).all() and found.frames.tolist() == list(range(frames))
        joints = found.joints[:, [found.joint_names.index(n) for n in JOINT_NAMES]]
        np.testing.assert_allclose(joints, scene.joints[truth[0]], atol=1e-9)
    assert any(f"the clip has {frames} frame" in m for m in reconstruction.diagnostics.messages)


def test_a_short_clip_still_drops_a_detection_that_flickers():
    scene = exact_scene(persons=2, views=3, frames=4, false_positive_rate=1.0)
    assert (scene.observation_identity < 0).sum() > 4  # about one false detection per view and frame
    reconstruction = run(scene)
    assert len(reconstruction.persons) == 2
    person = reconstruction.assignment.person_of(
        reconstruction.tracklets.observation_tracklet, scene.observations.frame
    )
    assert (person[scene.observation_identity < 0] == -1).all()


def test_a_clip_as_long_as_a_tracklet_needs_is_left_alone():
    reconstruction = run(exact_scene(persons=2, views=3, frames=5))
    assert len(reconstruction.persons) == 2 and reconstruction.diagnostics.messages == ()
