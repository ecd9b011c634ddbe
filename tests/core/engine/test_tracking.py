"""Per-view tracking: the Sinkhorn transport with a dustbin, and tracklets on exact hand-built cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from core.engine.tracking import TrackingConfig, sinkhorn_with_dustbin, track
from tests.core.engine.scenes import concat, exact_scene, hand_observations, same_partition, walkers

# --- sinkhorn_with_dustbin ------------------------------------------------------------------------------


@st.composite
def transport_problems(draw):
    B = draw(st.integers(1, 3))
    M = draw(st.integers(0, 4))
    N = draw(st.integers(0, 4))
    cost = draw(hnp.arrays(float, (B, M, N), elements=st.floats(0.0, 3.0)))
    row_valid = draw(hnp.arrays(bool, (B, M)))
    col_valid = draw(hnp.arrays(bool, (B, N)))
    return cost, row_valid, col_valid


@settings(max_examples=60, deadline=None)
@given(transport_problems())
def test_sinkhorn_plan_has_the_documented_marginals(problem):
    cost, row_valid, col_valid = problem
    B, M, N = cost.shape
    plan = sinkhorn_with_dustbin(cost, row_valid, col_valid, 1.5, temperature=0.5, iterations=500)
    assert plan.shape == (B, M + 1, N + 1)
    assert np.all(np.isfinite(plan)) and np.all(plan >= 0)
    rows, cols = plan.sum(axis=2), plan.sum(axis=1)
    # Every real track and detection carries one unit of mass; padding carries none at all.
    np.testing.assert_allclose(rows[:, :M][row_valid], 1.0, atol=1e-6)
    np.testing.assert_allclose(cols[:, :N][col_valid], 1.0, atol=1e-6)
    assert np.all(plan[:, :M][~row_valid] == 0.0)
    assert np.all(np.swapaxes(plan[:, :, :N], 1, 2)[~col_valid] == 0.0)
    # The dustbins take the surplus of the other side.
    has_rows, has_cols = row_valid.any(axis=1), col_valid.any(axis=1)
    np.testing.assert_allclose(rows[:, M][has_cols], col_valid.sum(axis=1)[has_cols], atol=1e-6)
    np.testing.assert_allclose(cols[:, N][has_rows], row_valid.sum(axis=1)[has_rows], atol=1e-6)
    # Matches (> 0.5) are one-to-one.
    matched = plan[:, :M, :N] > 0.5
    assert np.all(matched.sum(axis=2) <= 1) and np.all(matched.sum(axis=1) <= 1)


@settings(max_examples=40, deadline=None)
@given(st.permutations(list(range(5))), st.integers(0, 5))
def test_sinkhorn_recovers_a_clear_permutation_with_default_settings(permutation, extra):
    # 5 tracks, 5 + extra detections; track m is the detection permutation[m] (cost 0), the rest are far.
    config = TrackingConfig()
    M, N = 5, 5 + extra
    cost = np.full((1, M, N), 5.0)
    cost[0, np.arange(M), permutation] = 0.0
    plan = sinkhorn_with_dustbin(
        cost,
        np.ones((1, M), bool),
        np.ones((1, N), bool),
        config.unmatched_cost,
        config.temperature,
        config.sinkhorn_iterations,
    )
    matched = plan[0, :M, :N] > 0.5
    expected = np.zeros((M, N), bool)
    expected[np.arange(M), permutation] = True
    np.testing.assert_array_equal(matched, expected)
    # Surplus detections go to the dustbin row.
    np.testing.assert_array_equal(plan[0, M, M:N] > 0.5, np.ones(extra, bool))


def test_far_detection_goes_to_the_dustbin_and_an_unseen_track_to_the_dustbin_column():
    cost = np.array(
        [
            [0.1, 9.0, 9.0],  # track 0 ↔ detection 0
            [9.0, 0.2, 9.0],  # track 1 ↔ detection 1
            [9.0, 9.0, 9.0],  # track 2 sees nothing
        ]
    )[None]
    cost[0, :, 2] = 10.0  # detection 2 is far from every track
    plan = sinkhorn_with_dustbin(cost, np.ones((1, 3), bool), np.ones((1, 3), bool), 1.5, 0.05, 30)
    matched = plan[0, :3, :3] > 0.5
    np.testing.assert_array_equal(np.argwhere(matched), [[0, 0], [1, 1]])
    assert plan[0, 3, 2] > 0.99  # detection 2 → dustbin row: starts a new tracklet
    assert plan[0, 2, 3] > 0.99  # track 2 → dustbin column: unmatched this frame


def test_padding_rows_and_columns_carry_no_mass_even_when_cheap():
    # Padding row 1 and padding column 0 have the lowest costs; they must still be ignored.
    cost = np.array([[[0.0, 0.3, 4.0], [0.0, 0.0, 0.0]]])
    row_valid = np.array([[True, False]])
    col_valid = np.array([[False, True, True]])
    plan = sinkhorn_with_dustbin(cost, row_valid, col_valid, 1.5, 0.05, 30)
    assert np.all(plan[0, 1] == 0.0) and np.all(plan[0, :, 0] == 0.0)
    # The only real track takes the only cheap real detection; detection 2 is too costly: dustbin.
    # (30 rounds leave this unbalanced problem ~2 % short of convergence, hence 0.95 rather than 1.)
    assert plan[0, 0, 1] > 0.95 and plan[0, 2, 2] > 0.95
    np.testing.assert_array_equal(np.argwhere(plan[0, :2, :3] > 0.5), [[0, 1]])


def test_sinkhorn_all_empty_problem_is_finite():
    plan = sinkhorn_with_dustbin(
        np.zeros((2, 3, 2)), np.zeros((2, 3), bool), np.zeros((2, 2), bool), 1.5, 0.05, 30
    )
    assert np.all(np.isfinite(plan))
    assert np.all(plan[:, :3, :] == 0.0) and np.all(plan[:, :, :2] == 0.0)


# --- track ----------------------------------------------------------------------------------------------


def line(start, velocity, frames):
    """Pelvis pixels of a person moving at constant velocity, at the given frames."""
    frames = np.asarray(frames)
    return np.asarray(start, float) + np.asarray(velocity, float) * frames[:, None]


def test_one_tracklet_per_person_through_a_short_gap_with_constant_velocity_prediction():
    # Person 0 moves 30 px/frame (0.15 box heights) and is missed for 5 frames: without the velocity
    # prediction it would reappear 0.9 box heights (cost 1.8 > unmatched 1.5) away from where it was lost.
    seen0 = np.r_[0:12, 17:30]
    obs, who = walkers(
        {0: line([100, 300], [30, 0], seen0), 1: line([1500, 800], [-5, 0], np.arange(30))},
        {0: seen0, 1: np.arange(30)},
    )
    tracklets = track(obs, 1, TrackingConfig())
    assert len(tracklets) == 2
    assert same_partition(tracklets.observation_tracklet, who)
    first = tracklets.observation_tracklet[who == 0][0]
    assert (tracklets.first_frame[first], tracklets.last_frame[first], tracklets.length[first]) == (0, 29, 25)


def test_person_who_appears_later_starts_a_new_tracklet():
    obs, who = walkers(
        {0: line([200, 500], [4, 0], np.arange(30)), 1: line([1600, 500], [-4, 0], np.arange(12, 30))},
        {0: np.arange(30), 1: np.arange(12, 30)},
    )
    tracklets = track(obs, 1, TrackingConfig())
    assert same_partition(tracklets.observation_tracklet, who)
    np.testing.assert_array_equal(tracklets.first_frame, [0, 12])
    np.testing.assert_array_equal(tracklets.length, [30, 18])


def test_a_gap_longer_than_max_missed_frames_splits_the_track():
    seen0 = np.r_[0:10, 30:40]  # 20 missed frames > 15
    obs, who = walkers(
        {0: np.tile([300.0, 500.0], (20, 1)), 1: np.tile([1500.0, 500.0], (40, 1))},
        {0: seen0, 1: np.arange(40)},
    )
    tracklets = track(obs, 1, TrackingConfig(max_missed_frames=15))
    assert len(tracklets) == 3
    labels = tracklets.observation_tracklet
    piece = np.where(who == 0, np.where(obs.frame < 20, 0, 1), 2)
    assert same_partition(labels, piece)
    np.testing.assert_array_equal(tracklets.first_frame, [0, 0, 30])
    np.testing.assert_array_equal(tracklets.last_frame, [9, 39, 39])


@pytest.mark.parametrize(("missed", "pieces"), [(2, 1), (3, 1), (4, 2), (6, 2)])
def test_max_missed_frames_is_the_number_of_frames_a_track_survives_without_detection(missed, pieces):
    # TrackingConfig: "A track survives this many frames without a detection before it ends."
    seen = np.r_[0:10, 10 + missed : 20 + missed]
    obs, _ = walkers({0: np.tile([300.0, 500.0], (20, 1))}, {0: seen})
    tracklets = track(obs, 1, TrackingConfig(max_missed_frames=3, min_tracklet_frames=1))
    assert len(tracklets) == pieces


def test_short_tracklets_are_dropped_as_false_positives():
    rng = np.random.default_rng(0)
    paths = {0: np.tile([300.0, 500.0], (30, 1)), 1: np.tile([1500.0, 500.0], (30, 1))}
    frames = {0: np.arange(30), 1: np.arange(30)}
    # Ghosts far from both people, each still for its own few frames: 1, 3 and 4 frames are dropped,
    # exactly min_tracklet_frames (5) is kept.
    for ghost, (start, count) in enumerate([(3, 1), (8, 3), (14, 4), (20, 5)], start=2):
        frames[ghost] = np.arange(start, start + count)
        paths[ghost] = np.tile([900.0, 150.0 + 250 * (ghost - 2)], (count, 1))
    embedding = {p: rng.normal(size=4) for p in paths}
    obs, who = walkers(paths, frames, embedding=embedding)
    tracklets = track(obs, 1, TrackingConfig(min_tracklet_frames=5))
    labels = tracklets.observation_tracklet
    assert np.all(labels[np.isin(who, [2, 3, 4])] == -1)
    kept = who[labels >= 0]
    assert same_partition(labels[labels >= 0], kept)
    np.testing.assert_array_equal(np.sort(tracklets.length), [5, 30, 30])


def test_identical_embeddings_track_well_separated_people_by_position():
    # Three people walking in parallel 300 px apart, all with one appearance.
    frames = np.arange(40)
    paths = {p: line([200, 200 + 300 * p], [12, 1], frames) for p in range(3)}
    obs, who = walkers(paths, {p: frames for p in range(3)})
    assert np.all(obs.embedding == obs.embedding[0])
    tracklets = track(obs, 1, TrackingConfig())
    assert len(tracklets) == 3 and same_partition(tracklets.observation_tracklet, who)


@pytest.mark.parametrize("identical_appearance", [False, True])
def test_exact_synthetic_scene_gives_one_pure_tracklet_per_view_and_person(identical_appearance):
    scene = exact_scene(
        persons=3,
        views=3,
        frames=40,
        seed=1,
        identical_appearance=identical_appearance,
        false_positive_rate=0.3,
    )
    obs, who = scene.observations, scene.observation_identity
    assert (who < 0).sum() > 10  # false positives were planted
    tracklets = track(obs, 3, TrackingConfig())
    assert len(tracklets) == 9
    assert same_partition(tracklets.observation_tracklet, np.where(who >= 0, obs.view * 3 + who, -1))
    # Tracklets never span views.
    kept = tracklets.observation_tracklet >= 0
    np.testing.assert_array_equal(tracklets.view[tracklets.observation_tracklet[kept]], obs.view[kept])


def test_views_are_tracked_independently_in_one_batch():
    # The same pixel paths in views 0 and 2 (view 1 sees nothing): one tracklet per view and person.
    frames = np.arange(20)
    paths = {0: line([300, 500], [10, 0], frames), 1: line([1500, 500], [-10, 0], frames)}
    a, who_a = walkers(paths, {0: frames, 1: frames}, view=0)
    b, who_b = walkers(paths, {0: frames, 1: frames}, view=2)
    obs = concat(a, b)
    tracklets = track(obs, 3, TrackingConfig())
    assert same_partition(tracklets.observation_tracklet, obs.view * 2 + np.r_[who_a, who_b])
    np.testing.assert_array_equal(tracklets.view, [0, 0, 2, 2])


def test_frames_without_any_detection_are_skipped():
    # No detection at all in frames 10..19 (10 missed frames < 15): the tracks continue.
    frames = np.r_[0:10, 20:30]
    obs, who = walkers(
        {0: np.tile([300.0, 500.0], (20, 1)), 1: np.tile([1500.0, 500.0], (20, 1))}, {0: frames, 1: frames}
    )
    tracklets = track(obs, 1, TrackingConfig())
    assert same_partition(tracklets.observation_tracklet, who)
    np.testing.assert_array_equal(tracklets.length, [20, 20])


def test_empty_observations_give_no_tracklet():
    empty = hand_observations(np.zeros(0), np.zeros(0), np.zeros((0, 2)))
    tracklets = track(empty, 2, TrackingConfig())
    assert len(tracklets) == 0
    assert tracklets.observation_tracklet.shape == (0,)
