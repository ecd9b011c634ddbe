"""Cross-view association: exact scenes give the true persons; gating, consistency, merging, weights."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.engine.association import AssociationConfig, associate, pairwise_costs, world_positions
from core.engine.scale import ScaleConfig, monocular_scale
from core.engine.tracking import TrackingConfig, track
from core.evaluation.synthetic import SyntheticConfig, make_scene
from core.geometry import pixel_rays
from core.types import Tracklets
from tests.core.engine.scenes import exact_scene, identity_tracklets, same_partition


def observation_persons(result, tracklets):
    labels = tracklets.observation_tracklet
    return np.where(labels >= 0, result.tracklet_person[labels], -1)


def tracklets_from(observations, labels):
    return Tracklets.from_labels(labels, observations.view, observations.frame)


@pytest.fixture(scope="module")
def scene():
    return exact_scene(persons=3, views=3, frames=40, seed=0)


@pytest.mark.parametrize("scale_error", [1.0, 0.7])
def test_exact_scene_after_tracking_groups_each_true_person(scale_error):
    scene = exact_scene(persons=3, views=3, frames=40, seed=2, scale_error=scale_error)
    obs = scene.observations
    tracklets = track(obs, 3, TrackingConfig())
    metres_per_unit = monocular_scale(obs, scene.cameras, ScaleConfig())
    result = associate(obs, tracklets, scene.cameras, AssociationConfig(), metres_per_unit)
    assert same_partition(observation_persons(result, tracklets), scene.observation_identity)
    # The assignment covers every tracklet over its whole span with the same person.
    person = result.assignment.person_of(tracklets.observation_tracklet, obs.frame)
    np.testing.assert_array_equal(person, observation_persons(result, tracklets))


def test_exact_scene_with_true_tracklets_gives_true_persons(scene):
    tracklets = identity_tracklets(scene)
    result = associate(scene.observations, tracklets, scene.cameras, AssociationConfig())
    assert same_partition(observation_persons(result, tracklets), scene.observation_identity)
    assert result.tracklet_person.max() == 2


def test_person_seen_in_one_view_only_stays_a_separate_person(scene):
    obs, who = scene.observations, scene.observation_identity
    keep = ~((who == 2) & (obs.view > 0))  # person 2 is seen by view 0 only
    sub, sub_who = obs.take(keep), who[keep]
    tracklets = tracklets_from(sub, sub.view * 3 + sub_who)
    result = associate(sub, tracklets, scene.cameras, AssociationConfig())
    persons = observation_persons(result, tracklets)
    assert same_partition(persons, sub_who)
    assert np.unique(sub.view[persons == persons[sub_who == 2][0]]).tolist() == [0]


@pytest.mark.parametrize(("gate", "persons"), [(1.0, 2), (100.0, 1)])
def test_gate_keeps_two_distant_single_view_people_apart(scene, gate, persons):
    # Person 0 is seen by view 0 only and person 1 by view 1 only: they share every frame and never
    # conflict, so only the gate (their mean cost is ~3.2 m) keeps them apart.
    obs, who = scene.observations, scene.observation_identity
    keep = ((who == 0) & (obs.view == 0)) | ((who == 1) & (obs.view == 1))
    sub = obs.take(keep)
    tracklets = tracklets_from(sub, who[keep])
    result = associate(sub, tracklets, scene.cameras, AssociationConfig(gate=gate))
    assert result.tracklet_person.max() + 1 == persons
    assert result.costs.mean_cost[0, 1] > 1.0 and result.costs.shared_frames[0, 1] == 40


@pytest.mark.parametrize("seed", range(4))
def test_tracklets_of_one_view_that_overlap_in_time_are_never_one_person(seed):
    # A noisy scene with many misses and false positives, tracked with a short memory so that people
    # break into many fragments: the result must still be a consistent clustering.
    scene = make_scene(
        SyntheticConfig(persons=3, views=3, frames=60, seed=seed, miss_rate=0.25, false_positive_rate=0.2)
    )
    obs = scene.observations
    tracklets = track(obs, 3, TrackingConfig(max_missed_frames=1, min_tracklet_frames=2))
    result = associate(
        obs, tracklets, scene.cameras, AssociationConfig(), monocular_scale(obs, scene.cameras, ScaleConfig())
    )
    person = result.tracklet_person
    assert len(tracklets) > 9 and (person >= 0).all()
    for a in range(len(tracklets)):
        for b in range(a + 1, len(tracklets)):
            overlap = (
                tracklets.first_frame[a] <= tracklets.last_frame[b]
                and tracklets.first_frame[b] <= tracklets.last_frame[a]
            )
            if tracklets.view[a] == tracklets.view[b] and overlap:
                assert person[a] != person[b], (a, b)
    # At most one observation per (person, view, frame).
    persons = observation_persons(result, tracklets)
    keys = np.stack([persons, obs.view, obs.frame], axis=1)[persons >= 0]
    assert np.unique(keys, axis=0).shape[0] == keys.shape[0]
    # Persons are numbered 0..P-1 in order of first appearance (in tracklet order).
    _, first = np.unique(person, return_index=True)
    np.testing.assert_array_equal(np.argsort(first), np.arange(person.max() + 1))


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 8), st.integers(5, 35))
def test_a_tracklet_fragmented_in_two_pieces_is_merged_back(scene, tracklet, cut):
    obs, who = scene.observations, scene.observation_identity
    labels = obs.view * 3 + who
    labels = np.where((labels == tracklet) & (obs.frame >= cut), 100, labels)  # second piece
    tracklets = tracklets_from(obs, labels)
    assert len(tracklets) == 10
    result = associate(obs, tracklets, scene.cameras, AssociationConfig())
    assert same_partition(observation_persons(result, tracklets), who)


def test_fragment_of_the_first_view_is_merged_after_the_per_view_assignment(scene):
    # View 0 is processed first, so its two pieces of person 0 start as two persons; only the merge
    # stage can join them.
    obs, who = scene.observations, scene.observation_identity
    labels = np.where((who == 0) & (obs.view == 0) & (obs.frame >= 20), 100, obs.view * 3 + who)
    tracklets = tracklets_from(obs, labels)
    result = associate(obs, tracklets, scene.cameras, AssociationConfig())
    pieces = np.unique(tracklets.observation_tracklet[(who == 0) & (obs.view == 0)])
    assert pieces.size == 2 and result.tracklet_person[pieces[0]] == result.tracklet_person[pieces[1]]
    assert result.tracklet_person.max() == 2


def test_pose_weight_zero_gives_the_same_persons_on_an_exact_scene(scene):
    tracklets = identity_tracklets(scene)
    default = associate(scene.observations, tracklets, scene.cameras, AssociationConfig())
    position_only = associate(
        scene.observations, tracklets, scene.cameras, AssociationConfig(pose_weight=0.0)
    )
    np.testing.assert_array_equal(default.tracklet_person, position_only.tracklet_person)


def swapped_in_view_1(observations, who, *fields):
    """The observations with persons 0 and 1 of view 1 exchanging the given fields at every frame."""
    values = {name: getattr(observations, name).copy() for name in fields}
    for frame in np.unique(observations.frame):
        here = (observations.frame == frame) & (observations.view == 1)
        a, b = np.flatnonzero(here & (who == 0)), np.flatnonzero(here & (who == 1))
        for name, value in values.items():
            value[a], value[b] = getattr(observations, name)[b], getattr(observations, name)[a]
    return dataclasses.replace(observations, **values)


def test_swapped_canonical_poses_mislead_pose_only_association():
    scene = exact_scene(persons=2, views=2, frames=40, seed=0)
    obs, who = scene.observations, scene.observation_identity
    # In view 1, person 0 reports person 1's canonical pose and vice versa.
    swapped = swapped_in_view_1(obs, who, "canonical_pose")
    tracklets = identity_tracklets(scene, swapped)  # ids: (view 0: p0, p1), (view 1: p0, p1)
    by_position = associate(swapped, tracklets, scene.cameras, AssociationConfig(ray_weight=0.0))
    by_pose = associate(
        swapped,
        tracklets,
        scene.cameras,
        AssociationConfig(position_weight=0.0, pose_weight=1.0, ray_weight=0.0),
    )
    assert same_partition(by_position.tracklet_person, [0, 1, 0, 1])
    assert same_partition(by_pose.tracklet_person, [0, 1, 1, 0])


def test_keypoint_rays_associate_when_monocular_depths_are_swapped():
    """Calibrated rays decide even when each view's depth estimate puts its two people the wrong way round."""
    scene = exact_scene(persons=2, views=2, frames=40, seed=0)
    obs, who = scene.observations, scene.observation_identity
    misleading = swapped_in_view_1(obs, who, "position_cam", "canonical_pose")
    tracklets = identity_tracklets(scene, misleading)
    paper = associate(misleading, tracklets, scene.cameras, AssociationConfig(ray_weight=0.0, gate=10.0))
    rays = associate(
        misleading,
        tracklets,
        scene.cameras,
        AssociationConfig(position_weight=0.0, pose_weight=0.0, ray_weight=1.0),
    )
    assert same_partition(paper.tracklet_person, [0, 1, 1, 0])
    assert same_partition(rays.tracklet_person, [0, 1, 0, 1])


def naive_pairwise(observations, tracklets, cameras, config, metres_per_unit):
    """Per-pair Python-loop reference of pairwise_costs."""
    K = len(tracklets)
    cost_sum = np.zeros((K, K))
    shared = np.zeros((K, K), dtype=np.int64)
    conflict = np.zeros((K, K), dtype=bool)
    members = [np.flatnonzero(tracklets.observation_tracklet == k) for k in range(K)]
    rays = keypoint_rays(observations, cameras)
    for a in range(K):
        for b in range(K):
            if tracklets.view[a] == tracklets.view[b]:
                conflict[a, b] = (
                    tracklets.first_frame[a] <= tracklets.last_frame[b]
                    and tracklets.first_frame[b] <= tracklets.last_frame[a]
                )
                continue
            for i in members[a]:
                for j in members[b]:
                    if observations.frame[i] != observations.frame[j]:
                        continue
                    Ri, ti = cameras.cameras[observations.view[i]].R, cameras.cameras[observations.view[i]].t
                    Rj, tj = cameras.cameras[observations.view[j]].R, cameras.cameras[observations.view[j]].t
                    xi = Ri.T @ (observations.position_cam[i] - ti)
                    xj = Rj.T @ (observations.position_cam[j] - tj)
                    pi = observations.canonical_pose[i] - observations.canonical_pose[i][0]
                    pj = observations.canonical_pose[j] - observations.canonical_pose[j][0]
                    rms = np.sqrt(np.mean(np.sum((pi - pj) ** 2, axis=-1)))
                    cost_sum[a, b] += (
                        config.position_weight * metres_per_unit * np.linalg.norm(xi - xj)
                        + config.pose_weight * rms
                        + config.ray_weight
                        * metres_per_unit
                        * naive_ray_distance(observations, rays, i, j, config)
                    )
                    shared[a, b] += 1
    return cost_sum, shared, conflict


LIMB_KEYPOINTS = [
    f"{side}_{part}"
    for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
    for side in ("left", "right")
]


def naive_ray_distance(observations, rays, i, j, config):
    """Confidence-weighted mean distance between the two observations' rays of the same limb keypoint."""
    total = weight_sum = 0.0
    for k, name in enumerate(observations.keypoint_names):
        ci, cj = observations.keypoint_confidence[i, k], observations.keypoint_confidence[j, k]
        if name not in LIMB_KEYPOINTS or min(ci, cj) < config.min_keypoint_confidence:
            continue
        (oa, da), (ob, db) = rays[i][k], rays[j][k]
        normal = np.cross(da, db)
        total += min(ci, cj) * abs((ob - oa) @ normal) / np.linalg.norm(normal)
        weight_sum += min(ci, cj)
    return total / weight_sum if weight_sum else 0.0


def keypoint_rays(observations, cameras):
    """(origin, direction) of every keypoint of every observation, one camera at a time."""
    rays = []
    for n in range(len(observations)):
        cam = cameras.cameras[observations.view[n]]
        origin, direction = pixel_rays(observations.keypoints2d[n], cam.K, cam.dist, cam.R, cam.t)
        rays.append(list(zip(origin, direction, strict=True)))
    return rays


@pytest.mark.parametrize("pair_budget", [2_000_000, 40])
def test_pairwise_costs_equal_a_naive_per_pair_reference(pair_budget):
    scene = make_scene(
        SyntheticConfig(persons=2, views=3, frames=20, seed=5, miss_rate=0.15, false_positive_rate=0.3)
    )
    obs = scene.observations
    # Canonical poses are root-relative: a per-observation offset of the whole pose must not count.
    offset = np.random.default_rng(0).normal(size=(len(obs), 1, 3))
    obs = dataclasses.replace(obs, canonical_pose=obs.canonical_pose + offset)
    tracklets = track(obs, 3, TrackingConfig(max_missed_frames=1, min_tracklet_frames=2))
    assert (tracklets.observation_tracklet < 0).any()  # some observations are left out
    config = AssociationConfig(position_weight=0.7, pose_weight=0.4, ray_weight=0.6, pair_budget=pair_budget)
    costs = pairwise_costs(obs, tracklets, scene.cameras, config, metres_per_unit=1.3)
    cost_sum, shared, conflict = naive_pairwise(obs, tracklets, scene.cameras, config, 1.3)
    np.testing.assert_array_equal(costs.shared_frames, shared)
    # The ray term is computed in single precision (micrometres on these metre-scale lines).
    np.testing.assert_allclose(costs.cost_sum, cost_sum, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(costs.conflict, conflict)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(shared > 0, cost_sum / shared, np.inf)
    np.testing.assert_allclose(costs.mean_cost, mean, rtol=1e-6, atol=1e-6)
    assert np.isinf(np.diag(costs.mean_cost)).all() and (shared > 0).any()


def test_world_positions_of_an_exact_scene_are_the_true_pelvis_positions():
    scene = exact_scene(persons=2, views=2, frames=10, seed=3, scale_error=0.8)
    obs, who = scene.observations, scene.observation_identity
    positions = world_positions(obs, scene.cameras)
    np.testing.assert_allclose(positions, 0.8 * scene.transl[who, obs.frame], atol=1e-9)


def test_empty_tracklets_give_no_person(scene):
    obs = scene.observations.take(np.zeros(0, dtype=np.int64))
    tracklets = tracklets_from(obs, np.zeros(0, dtype=np.int64))
    result = associate(obs, tracklets, scene.cameras, AssociationConfig())
    assert result.tracklet_person.shape == (0,) and len(result.assignment) == 0
