"""Head–pelvis scale adjustment: a mis-scaled exact scene is brought back to the true metric world."""

import dataclasses

import numpy as np
import pytest

from core.engine.fusion import FusionConfig, fuse
from core.engine.pipeline import reconstruct_from_observations
from core.engine.scale import (
    ScaleConfig,
    adjust_scale,
    head_pelvis_ratios,
    monocular_scale,
    robust_mean,
    scale_persons,
)
from tests.core.engine.scenes import exact_scene


def fused(scene):
    obs, who = scene.observations, scene.observation_identity
    return fuse(obs, who, scene.cameras, scene.config.frames, FusionConfig())


def adjust(scene, config, persons=None):
    persons = fused(scene) if persons is None else persons
    obs, who = scene.observations, scene.observation_identity
    return adjust_scale(persons, obs, who, scene.cameras, scene.config.frames, config)


@pytest.mark.parametrize("scale_error", [0.7, 1.4])
def test_auto_scale_recovers_the_true_metric_world(scale_error):
    scene = exact_scene(persons=2, views=3, frames=30, seed=0, scale_error=scale_error)
    persons, cameras, estimate = adjust(scene, ScaleConfig())
    assert estimate.factor == pytest.approx(1 / scale_error, rel=1e-3)
    np.testing.assert_allclose(cameras.centers, scene.true_cameras.centers, atol=1e-3)
    np.testing.assert_allclose(cameras.R, scene.true_cameras.R)
    for p in persons:
        np.testing.assert_allclose(p.transl, scene.transl[p.person_id], atol=1e-3)
        np.testing.assert_allclose(p.joints, scene.joints[p.person_id], atol=1e-3)
    # The evidence is the first round's samples: one per observation, all ≈ 1/s.
    obs = scene.observations
    assert estimate.samples.shape == (len(obs),)
    np.testing.assert_allclose(estimate.samples, 1 / scale_error, rtol=0.05)
    order = np.lexsort((estimate.view, estimate.frame, estimate.person))
    truth = np.lexsort((obs.view, obs.frame, scene.observation_identity))
    np.testing.assert_array_equal(estimate.person[order], scene.observation_identity[truth])
    np.testing.assert_array_equal(estimate.frame[order], obs.frame[truth])
    np.testing.assert_array_equal(estimate.view[order], obs.view[truth])


def test_re_measuring_removes_the_perspective_bias_of_the_first_round():
    scene = exact_scene(persons=2, views=3, frames=30, seed=1, scale_error=0.7)
    persons = fused(scene)
    one = adjust(scene, ScaleConfig(iterations=1), persons)[2].factor
    three = adjust(scene, ScaleConfig(iterations=3), persons)[2].factor
    assert abs(three * 0.7 - 1) < 0.01 * abs(one * 0.7 - 1)


@pytest.mark.parametrize("scale_error", [0.7, 1.4])
def test_pipeline_on_a_mis_scaled_exact_scene_lands_in_the_true_world(scale_error):
    scene = exact_scene(persons=2, views=3, frames=30, seed=1, scale_error=scale_error)
    result = reconstruct_from_observations(scene.observations, scene.cameras, 30, 30.0)
    assert result.diagnostics.scale_factor == pytest.approx(1 / scale_error, rel=1e-3)
    np.testing.assert_allclose(result.cameras.centers, scene.true_cameras.centers, atol=1e-3)
    assert len(result.persons) == 2
    for p in result.persons:
        error = min(np.abs(p.joints - scene.joints[q, p.frames]).max() for q in range(2))
        assert error < 1e-3


def test_mode_off_leaves_everything_unchanged():
    scene = exact_scene(persons=2, views=2, frames=20, seed=2, scale_error=0.7)
    before = fused(scene)
    persons, cameras, estimate = adjust(scene, ScaleConfig(mode="off"), before)
    assert estimate.factor == 1.0
    np.testing.assert_array_equal(cameras.t, scene.cameras.t)
    for p, q in zip(persons, before, strict=True):
        np.testing.assert_array_equal(p.transl, q.transl)
        np.testing.assert_array_equal(p.joints, q.joints)
    assert estimate.samples.size > 0  # the evidence is still measured and reported


def test_mode_fixed_applies_the_fixed_factor():
    scene = exact_scene(persons=2, views=2, frames=20, seed=2, scale_error=0.7)
    before = fused(scene)
    persons, cameras, estimate = adjust(scene, ScaleConfig(mode="fixed", fixed_factor=2.5), before)
    assert estimate.factor == 2.5
    np.testing.assert_allclose(cameras.t, 2.5 * scene.cameras.t)
    np.testing.assert_allclose(cameras.centers, 2.5 * scene.cameras.centers)
    for p, q in zip(persons, before, strict=True):
        np.testing.assert_allclose(p.transl, 2.5 * q.transl)
        # Bodies keep their metric size: only the position moves.
        np.testing.assert_allclose(p.joints - p.transl[:, None], q.joints - q.transl[:, None], atol=1e-12)


def test_scale_persons_moves_positions_about_the_origin_and_keeps_body_size():
    scene = exact_scene(persons=1, views=2, frames=5, seed=0)
    (p,) = fused(scene)
    (q,) = scale_persons((p,), 0.5)
    np.testing.assert_allclose(q.transl, 0.5 * p.transl)
    np.testing.assert_allclose(q.joints - q.transl[:, None], p.joints - p.transl[:, None], atol=1e-12)


def test_head_pelvis_ratios_are_one_on_an_exact_metric_scene():
    scene = exact_scene(persons=2, views=3, frames=10, seed=3)
    obs, who = scene.observations, scene.observation_identity
    ratios, index = head_pelvis_ratios(fused(scene), obs, who, scene.cameras, 10, 8.0)
    np.testing.assert_allclose(ratios, 1.0, atol=1e-9)
    np.testing.assert_array_equal(np.sort(index), np.arange(len(obs)))


def test_robust_mean_ignores_planted_outliers():
    inliers = np.linspace(0.9, 1.1, 101)
    samples = np.concatenate([inliers, np.full(20, 5.0), np.full(10, -3.0)])
    samples = np.random.default_rng(0).permutation(samples)
    mean, inlier = robust_mean(samples, threshold=3.0)
    assert mean == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(inlier, (samples > 0.5) & (samples < 1.5))


def test_robust_mean_with_zero_spread_keeps_the_median_values_and_empty_is_nan():
    mean, inlier = robust_mean(np.array([2.0, 2.0, 9.0, 2.0, 2.0]), threshold=3.0)
    assert mean == 2.0 and inlier.tolist() == [True, True, False, True, True]
    mean, inlier = robust_mean(np.zeros(0), threshold=3.0)
    assert np.isnan(mean) and inlier.shape == (0,)


def test_auto_scale_ignores_a_few_corrupted_head_detections():
    scene = exact_scene(persons=2, views=3, frames=30, seed=0, scale_error=0.7)
    obs = scene.observations
    head2d = obs.head2d.copy()
    rows = np.arange(0, len(obs), 10)  # 10 % of the head detections half-way to the pelvis
    head2d[rows] = 0.5 * (head2d[rows] + obs.pelvis2d[rows])
    bad = dataclasses.replace(obs, head2d=head2d)
    persons = fuse(bad, scene.observation_identity, scene.cameras, 30, FusionConfig())
    _, cameras, estimate = adjust_scale(
        persons, bad, scene.observation_identity, scene.cameras, 30, ScaleConfig()
    )
    assert estimate.factor == pytest.approx(1 / 0.7, rel=1e-3)
    assert estimate.samples.shape == (len(obs),)  # one sample per observation, in observation order
    assert not estimate.inlier[rows].any() and estimate.inlier.sum() > 0.85 * len(obs)


@pytest.mark.parametrize("scale_error", [1.0, 0.7, 1.4])
def test_monocular_scale_is_one_over_the_scene_scale(scale_error):
    scene = exact_scene(persons=2, views=3, frames=20, seed=0, scale_error=scale_error)
    factor = monocular_scale(scene.observations, scene.cameras, ScaleConfig())
    if scale_error == 1.0:
        assert factor == pytest.approx(1.0, abs=1e-9)
    else:
        # A first estimate: the body is placed at the mis-scaled depth whole, so a body that is not
        # fronto-parallel leaves a small perspective bias (adjust_scale's later rounds remove it).
        assert factor == pytest.approx(1 / scale_error, rel=0.015)


def test_monocular_scale_without_usable_samples_is_one():
    scene = exact_scene(persons=1, views=2, frames=5, seed=0, scale_error=0.7)
    obs = scene.observations
    assert monocular_scale(obs.take(np.zeros(0, dtype=int)), scene.cameras, ScaleConfig()) == 1.0
    assert monocular_scale(obs, scene.cameras, ScaleConfig(min_pixel_length=1e6)) == 1.0


def test_empty_input_gives_factor_one():
    scene = exact_scene(persons=1, views=2, frames=5, seed=0, scale_error=0.7)
    empty = scene.observations.take(np.zeros(0, dtype=int))
    persons, cameras, estimate = adjust_scale(
        (), empty, np.zeros(0, dtype=int), scene.cameras, 5, ScaleConfig()
    )
    assert persons == () and estimate.factor == 1.0 and estimate.samples.shape == (0,)
    np.testing.assert_array_equal(cameras.t, scene.cameras.t)
    # Persons whose head–pelvis lengths are all too short to measure: no sample, factor 1.
    before = fused(scene)
    obs, who = scene.observations, scene.observation_identity
    persons, cameras, estimate = adjust_scale(
        before, obs, who, scene.cameras, 5, ScaleConfig(min_pixel_length=1e6)
    )
    assert estimate.factor == 1.0
    np.testing.assert_array_equal(persons[0].transl, before[0].transl)
