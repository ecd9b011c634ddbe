"""Multi-view fusion on exact scenes: the truth is recovered; outliers, averages, single views, residuals."""

import dataclasses

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.engine.association import world_positions
from core.engine.fusion import FusionConfig, PersonCells, fuse, reprojection_residuals
from tests.core.engine.scenes import exact_scene, hand_observations


def cells_of(scene, observations=None, person=None):
    obs = scene.observations if observations is None else observations
    person = scene.observation_identity if person is None else person
    return PersonCells.build(
        obs, person, int(person.max()) + 1, scene.config.frames, len(scene.cameras)
    ).index


@pytest.fixture(scope="module")
def scene():
    return exact_scene(persons=2, views=3, frames=30, seed=0)


@pytest.mark.parametrize("triangulate", [True, False])
def test_exact_scene_is_fused_to_the_truth(scene, triangulate):
    obs, who = scene.observations, scene.observation_identity
    persons = fuse(obs, who, scene.cameras, 30, FusionConfig(triangulate=triangulate))
    assert [p.person_id for p in persons] == [0, 1]
    for p in persons:
        np.testing.assert_array_equal(p.frames, np.arange(30))
        np.testing.assert_allclose(p.joints, scene.joints[p.person_id], atol=1e-6)
        np.testing.assert_allclose(p.transl, scene.transl[p.person_id], atol=1e-6)
        np.testing.assert_allclose(p.shape, scene.shape[p.person_id], atol=1e-9)
        orient_error = Rotation.from_rotvec(p.global_orient).inv() * Rotation.from_rotvec(
            scene.global_orient[p.person_id]
        )
        assert orient_error.magnitude().max() < 1e-9
        assert p.views.all()
        # Confidence is the mean score of the views that saw the person.
        own = who == p.person_id
        np.testing.assert_allclose(p.confidence, np.bincount(obs.frame[own], obs.score[own]) / 3)


def mean_position_error(scene, persons):
    return np.mean(
        [np.linalg.norm(p.transl - scene.transl[p.person_id, p.frames], axis=-1).mean() for p in persons]
    )


def test_triangulation_beats_averaging_when_monocular_depth_is_noisy():
    scene = exact_scene(persons=2, views=3, frames=30, seed=1, depth_noise=0.05, keypoint_noise_px=1.0)
    obs, who = scene.observations, scene.observation_identity
    triangulated = mean_position_error(
        scene, fuse(obs, who, scene.cameras, 30, FusionConfig(triangulate=True))
    )
    averaged = mean_position_error(scene, fuse(obs, who, scene.cameras, 30, FusionConfig(triangulate=False)))
    assert triangulated < 0.03 and averaged > 0.1
    assert triangulated < 0.25 * averaged


@pytest.mark.parametrize(
    ("views", "bad_view", "offset_px"),
    [
        (4, 2, (0.0, 200.0)),  # 200 px down
        (4, 1, (500.0, 0.0)),  # 500 px sideways
        (3, 1, (300.0, -200.0)),
    ],
)
def test_a_view_with_a_corrupted_pelvis_is_rejected_and_the_position_stays_exact(views, bad_view, offset_px):
    scene = exact_scene(persons=2, views=views, frames=30, seed=0)
    obs, who = scene.observations, scene.observation_identity
    corrupted = (who == 0) & (obs.view == bad_view) & (obs.frame >= 10) & (obs.frame < 20)
    pelvis2d = obs.pelvis2d.copy()
    pelvis2d[corrupted] += offset_px
    bad = dataclasses.replace(obs, pelvis2d=pelvis2d)
    person = fuse(bad, who, scene.cameras, 30, FusionConfig(outlier_distance=0.3))[0]
    expected_views = np.ones((30, views), bool)
    expected_views[10:20, bad_view] = False
    np.testing.assert_array_equal(person.views, expected_views)
    np.testing.assert_allclose(person.transl, scene.transl[0], atol=1e-6)
    np.testing.assert_allclose(person.joints, scene.joints[0], atol=1e-6)


def test_body_pose_of_two_views_rotating_about_one_axis_averages_to_the_midpoint(scene):
    rng = np.random.default_rng(0)
    axes = rng.normal(size=(21, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    a, b = 0.2, 1.4
    obs = hand_observations(
        [0, 1],
        [0, 0],
        [[900.0, 500.0], [1000.0, 500.0]],
        body_pose=np.stack([a * axes, b * axes]),
        score=[0.7, 0.7],
    )
    (person,) = fuse(obs, np.array([0, 0]), scene.cameras, 1, FusionConfig())
    np.testing.assert_allclose(person.body_pose[0], 0.5 * (a + b) * axes, atol=1e-9)


def test_global_orientation_is_the_same_world_rotation_seen_through_each_camera(scene):
    world = Rotation.from_rotvec([0.3, -1.1, 0.4])
    cams = scene.cameras.cameras[:2]
    orient_cam = np.stack([(Rotation.from_matrix(c.R) * world).as_rotvec() for c in cams])
    obs = hand_observations([0, 1], [0, 0], [[900.0, 500.0], [1000.0, 500.0]], global_orient_cam=orient_cam)
    (person,) = fuse(obs, np.array([0, 0]), scene.cameras, 1, FusionConfig())
    assert (Rotation.from_rotvec(person.global_orient[0]).inv() * world).magnitude() < 1e-9


def test_a_person_seen_by_a_single_view_keeps_its_monocular_position():
    scene = exact_scene(persons=2, views=3, frames=20, seed=2, depth_noise=0.1)
    obs, who = scene.observations, scene.observation_identity
    keep = ~((who == 0) & (obs.view > 0)) & ~((who == 1) & (obs.view == 2) & (obs.frame < 10))
    sub, sub_who = obs.take(keep), who[keep]
    persons = fuse(sub, sub_who, scene.cameras, 20, FusionConfig(triangulate=True))
    monocular = world_positions(sub, scene.cameras)
    single = persons[0]
    np.testing.assert_allclose(single.transl, monocular[sub_who == 0], atol=1e-12)
    assert np.linalg.norm(single.transl - scene.transl[0], axis=-1).max() > 0.05  # truly monocular
    np.testing.assert_array_equal(single.views, np.tile([True, False, False], (20, 1)))
    # Person 1 is seen by views 0 and 1 only for frames 0..9: still triangulated exactly.
    np.testing.assert_allclose(persons[1].transl, scene.transl[1], atol=1e-6)
    np.testing.assert_array_equal(persons[1].views[:10], np.tile([True, True, False], (10, 1)))


def test_person_ids_restricts_the_persons_fused():
    scene = exact_scene(persons=3, views=2, frames=15, seed=4, depth_noise=0.05, pose_noise_rad=0.1)
    obs, who = scene.observations, scene.observation_identity
    everyone = fuse(obs, who, scene.cameras, 15, FusionConfig())
    only = fuse(obs, who, scene.cameras, 15, FusionConfig(), person_ids=np.array([0, 2]))
    assert [p.person_id for p in only] == [0, 2]
    for p in only:
        ref = everyone[p.person_id]
        for field in ("frames", "transl", "joints", "body_pose", "global_orient", "shape", "views"):
            np.testing.assert_allclose(getattr(p, field), getattr(ref, field), atol=1e-12)
    assert fuse(obs, who, scene.cameras, 15, FusionConfig(), person_ids=np.array([], dtype=int)) == ()


def test_shape_is_the_score_weighted_mean_over_views_and_frames():
    scene = exact_scene(persons=2, views=2, frames=10, seed=3, shape_noise=0.3)
    obs, who = scene.observations, scene.observation_identity
    persons = fuse(obs, who, scene.cameras, 10, FusionConfig())
    for p in persons:
        own = who == p.person_id
        expected = (obs.score[own, None] * obs.shape[own]).sum(0) / obs.score[own].sum()
        np.testing.assert_allclose(p.shape, expected, atol=1e-12)


def test_person_cells_keep_the_higher_scoring_of_two_observations_in_one_cell():
    obs = hand_observations([0, 0, 1], [2, 2, 2], np.zeros((3, 2)), score=[0.9, 0.95, 0.3])
    cells = PersonCells.build(obs, np.array([0, 0, 0]), 1, 4, 2).index
    assert cells.shape == (1, 4, 2)
    np.testing.assert_array_equal(cells[0, 2], [1, 2])
    assert (np.delete(cells[0], 2, axis=0) == -1).all()


def test_reprojection_residuals_are_zero_on_exact_data_and_nan_where_unseen(scene):
    obs, who = scene.observations, scene.observation_identity
    unseen = (who == 0) & (obs.view == 2) & (obs.frame >= 10) & (obs.frame < 20)
    sub, sub_who = obs.take(~unseen), who[~unseen]
    persons = fuse(sub, sub_who, scene.cameras, 30, FusionConfig())
    cells = cells_of(scene, sub, sub_who)
    residuals = reprojection_residuals(persons[0], sub, cells[0], scene.cameras)
    assert residuals.shape == (30, 3)
    assert np.isnan(residuals[10:20, 2]).all()
    seen = np.ones((30, 3), bool)
    seen[10:20, 2] = False
    assert np.nanmax(residuals) < 1e-6 and np.isfinite(residuals[seen]).all()


def test_reprojection_residual_is_the_mean_keypoint_error_ignoring_zero_confidence(scene):
    obs, who = scene.observations, scene.observation_identity
    row = np.flatnonzero((who == 1) & (obs.view == 1) & (obs.frame == 7))[0]
    keypoints = obs.keypoints2d.copy()
    keypoints[row] += [3.0, 4.0]  # every keypoint 5 px off (pelvis2d, used to triangulate, is not)
    keypoints[row, 5] += [1000.0, 0.0]  # and one far off, but with zero confidence
    confidence = obs.keypoint_confidence.copy()
    confidence[row, 5] = 0.0
    moved = dataclasses.replace(obs, keypoints2d=keypoints, keypoint_confidence=confidence)
    person = fuse(moved, who, scene.cameras, 30, FusionConfig())[1]
    residuals = reprojection_residuals(person, moved, cells_of(scene)[1], scene.cameras)
    assert residuals[7, 1] == pytest.approx(5.0, abs=1e-6)
    residuals[7, 1] = 0.0
    assert np.abs(residuals).max() < 1e-6


def test_no_assigned_observation_gives_no_person(scene):
    obs = scene.observations
    assert fuse(obs, np.full(len(obs), -1), scene.cameras, 30, FusionConfig()) == ()
