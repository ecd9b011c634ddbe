import numpy as np

from core.evaluation.synthetic import SyntheticConfig, make_scene
from core.geometry import project_points
from core.skeleton import HEAD, PELVIS
from tests.core.engine.scenes import EXACT


def test_same_seed_same_scene():
    a = make_scene(SyntheticConfig(persons=2, views=2, frames=20, seed=7))
    b = make_scene(SyntheticConfig(persons=2, views=2, frames=20, seed=7))
    np.testing.assert_array_equal(a.observations.keypoints2d, b.observations.keypoints2d)
    np.testing.assert_array_equal(a.joints, b.joints)


def test_people_stand_on_the_ground_inside_the_arena():
    scene = make_scene(SyntheticConfig(persons=4, views=2, frames=90, seed=2))
    feet = scene.joints[..., [7, 8, 10, 11], 2]
    assert np.all(feet.min(axis=-1) > -0.15) and np.all(feet.min(axis=-1) < 0.2)
    assert np.linalg.norm(scene.transl[..., :2], axis=-1).max() < 2.5 * 1.05


def test_exact_observations_are_projections_of_the_truth_in_a_scaled_scene():
    scene = make_scene(SyntheticConfig(persons=2, views=3, frames=15, seed=4, scale_error=1.4, **EXACT))
    obs, who = scene.observations, scene.observation_identity
    assert (who >= 0).all()
    truth = scene.joints[who, obs.frame]  # (N, 22, 3)
    cams = scene.true_cameras
    pixels = project_points(truth, cams.K[obs.view], cams.dist[obs.view], cams.R[obs.view], cams.t[obs.view])
    np.testing.assert_allclose(obs.keypoints2d, pixels, atol=1e-9)
    np.testing.assert_allclose(obs.pelvis2d, pixels[:, PELVIS], atol=1e-9)
    np.testing.assert_allclose(obs.head2d, pixels[:, HEAD], atol=1e-9)
    # The engine's cameras and depths are 1.4 × the metric truth, consistently.
    scaled = scene.cameras
    world = np.einsum("nji,nj->ni", scaled.R[obs.view], obs.position_cam - scaled.t[obs.view])
    np.testing.assert_allclose(world, 1.4 * truth[:, PELVIS], atol=1e-9)


def test_faults_are_present_when_asked_for():
    config = SyntheticConfig(persons=3, views=4, frames=100, seed=5, false_positive_rate=0.2, miss_rate=0.2)
    scene = make_scene(config)
    who = scene.observation_identity
    assert (who == -1).sum() > 0.1 * config.views * config.frames
    visible_max = config.persons * config.views * config.frames
    assert (who >= 0).sum() < 0.85 * visible_max


def test_identical_appearance_removes_identity_from_embeddings():
    scene = make_scene(
        SyntheticConfig(
            persons=3,
            views=2,
            frames=10,
            seed=1,
            identical_appearance=True,
            embedding_noise=0.0,
            false_positive_rate=0.0,
        )
    )
    assert np.ptp(scene.observations.embedding, axis=0).max() == 0.0
