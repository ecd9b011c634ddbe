"""Geometric refinement of the assignment: a tracker's identity swap is cut out and put right."""

import dataclasses

import numpy as np
import pytest

from core.engine.fusion import FusionConfig, fuse
from core.engine.refinement import (
    RefinementConfig,
    fit_errors,
    match_per_frame,
    pieces_from_labels,
    refine_assignment,
    without_brief_single_view_persons,
)
from core.types import Assignment, Tracklets
from tests.core.engine.scenes import exact_scene, hand_observations, identity_tracklets

FRAMES = 30


@pytest.fixture(scope="module")
def scene():
    return exact_scene(persons=2, views=3, frames=FRAMES, seed=0)


def swapped_tracking(scene, view=1, at=15):
    """Tracklets of a tracker that swaps the two people in ``view`` at frame ``at``, and the assignment
    association makes of them (each tracklet goes to the person of its first part)."""
    obs, who = scene.observations, scene.observation_identity
    swap = (obs.view == view) & (obs.frame >= at)
    tracklets = Tracklets.from_labels(obs.view * 2 + np.where(swap, 1 - who, who), obs.view, obs.frame)
    first_person = np.zeros(len(tracklets), dtype=np.int64)
    first_person[tracklets.observation_tracklet[obs.frame == 0]] = who[obs.frame == 0]
    return tracklets, Assignment.from_tracklet_persons(tracklets, first_person)


def refine(scene, observations, tracklets, assignment):
    person = assignment.person_of(tracklets.observation_tracklet, observations.frame)
    persons = fuse(observations, person, scene.cameras, FRAMES, FusionConfig())
    return refine_assignment(
        observations, tracklets, assignment, persons, scene.cameras, FRAMES, RefinementConfig()
    )


def test_an_identity_swap_inside_a_tracklet_is_cut_and_each_part_goes_to_its_person(scene):
    obs, who = scene.observations, scene.observation_identity
    tracklets, assignment = swapped_tracking(scene)
    track = tracklets.observation_tracklet
    assert (assignment.person_of(track, obs.frame) != who).sum() == 30  # view 1, frames 15–29, both people
    refined = refine(scene, obs, tracklets, assignment)
    np.testing.assert_array_equal(refined.person_of(track, obs.frame), who)
    swapped = np.flatnonzero(tracklets.view == 1)
    columns = np.stack([refined.tracklet, refined.frame_start, refined.frame_end], axis=1)
    pieces = {tuple(row) for row in columns.tolist()}
    assert pieces == {(k, 0, 29) for k in np.flatnonzero(tracklets.view != 1)} | {
        (k, s, e) for k in swapped for s, e in ((0, 14), (15, 29))
    }


def test_a_correct_assignment_is_left_as_it_is(scene):
    obs, who = scene.observations, scene.observation_identity
    tracklets = identity_tracklets(scene)
    person = np.zeros(len(tracklets), dtype=np.int64)
    person[tracklets.observation_tracklet] = who
    assignment = Assignment.from_tracklet_persons(tracklets, person)
    refined = refine(scene, obs, tracklets, assignment)
    for name in ("view", "tracklet", "frame_start", "frame_end", "person"):
        np.testing.assert_array_equal(getattr(refined, name), getattr(assignment, name))


def single_view_person(scene, others: bool):
    """Person 1 seen by view 0 only; person 0 by every view (``others``) or not at all."""
    obs, who = scene.observations, scene.observation_identity
    keep = ((who == 0) & others) | ((who == 1) & (obs.view == 0))
    sub, sub_who = obs.take(keep), who[keep]
    tracklets = Tracklets.from_labels(sub.view * 2 + sub_who, sub.view, sub.frame)
    person = np.zeros(len(tracklets), dtype=np.int64)
    person[tracklets.observation_tracklet] = sub_who
    return sub, sub_who, tracklets, Assignment.from_tracklet_persons(tracklets, person)


def test_a_lone_person_only_one_view_sees_keeps_its_tracklet(scene):
    sub, sub_who, tracklets, assignment = single_view_person(scene, others=False)
    refined = refine(scene, sub, tracklets, assignment)
    np.testing.assert_array_equal(refined.person_of(tracklets.observation_tracklet, sub.frame), sub_who)


def test_a_person_only_one_view_sees_keeps_its_tracklet_beside_people_several_views_see(scene):
    sub, sub_who, tracklets, assignment = single_view_person(scene, others=True)
    refined = refine(scene, sub, tracklets, assignment)
    np.testing.assert_array_equal(refined.person_of(tracklets.observation_tracklet, sub.frame), sub_who)


def test_fit_errors_are_keypoint_medians_in_box_heights(scene):
    obs, who = scene.observations, scene.observation_identity
    persons = fuse(obs, who, scene.cameras, FRAMES, FusionConfig())
    errors = fit_errors(obs, persons, scene.cameras, FRAMES, 0.5)
    own = errors[np.arange(len(obs)), who]
    np.testing.assert_allclose(own, 0.0, atol=1e-9)
    assert (errors[np.arange(len(obs)), 1 - who] > 0.2).all()
    # Shift every keypoint of one detection by a 3-4-5 triangle of 10 px: the error is 50 px per box height.
    keypoints = obs.keypoints2d.copy()
    keypoints[7] += [30.0, 40.0]
    # Low-confidence keypoints are not compared, however wrong.
    confidence = obs.keypoint_confidence.copy()
    keypoints[8, :10] += 500.0
    confidence[8, :10] = 0.4
    shifted = dataclasses.replace(obs, keypoints2d=keypoints, keypoint_confidence=np.maximum(confidence, 0.0))
    errors = fit_errors(shifted, persons, scene.cameras, FRAMES, 0.5)
    height = obs.bbox[7, 3] - obs.bbox[7, 1]
    np.testing.assert_allclose(errors[7, who[7]], 50.0 / height, rtol=1e-9)
    np.testing.assert_allclose(errors[8, who[8]], 0.0, atol=1e-9)


def test_fit_errors_are_infinite_where_the_person_is_absent_or_supported_by_no_other_view(scene):
    obs, who = scene.observations, scene.observation_identity
    persons = list(fuse(obs, who, scene.cameras, FRAMES, FusionConfig()))
    late = persons[1]
    keep = late.frames >= 10  # person 1 exists from frame 10 on
    views = late.views[keep].copy()
    views[late.frames[keep] >= 20] = [True, False, False]  # and only view 0 sees them from frame 20
    persons[1] = dataclasses.replace(
        late,
        frames=late.frames[keep],
        joints=late.joints[keep],
        joint_views=late.joint_views[keep],
        views=views,
    )
    errors = fit_errors(obs, persons, scene.cameras, FRAMES, 0.5)[:, 1]
    early, alone, theirs = obs.frame < 10, (obs.frame >= 20), who == 1
    assert np.isinf(errors[early]).all()
    assert np.isinf(errors[alone & (obs.view == 0)]).all()  # its only support is the observation's own view
    assert np.isfinite(errors[theirs & alone & (obs.view != 0)]).all()  # view 0 supports it for views 1, 2
    assert np.isfinite(errors[theirs & ~early & ~alone]).all()
    # Someone else's observation more than a body height away cannot fit them: not compared in full.
    far = np.flatnonzero(~theirs & ~early & ~alone)
    assert (errors[far] > 0.1).all() and np.isfinite(errors[far]).all()


def test_matching_is_one_to_one_within_each_view_and_frame():
    # Observations 0, 1: view 0 frame 0; 2: view 0 frame 1; 3: view 1 frame 0; 4: view 1 frame 0.
    obs = hand_observations([0, 0, 0, 1, 1], [0, 0, 1, 0, 0], np.zeros((5, 2)))
    errors = np.array(
        [
            [0.01, 0.05],  # both prefer person 0, and 0.05 + 0.02 < 0.01 + 0.08
            [0.02, 0.08],
            [0.01, 0.02],  # another frame: person 0 is free again
            [0.03, np.inf],
            [0.5, np.inf],  # fits nobody
        ]
    )
    np.testing.assert_array_equal(match_per_frame(obs, errors, max_error=0.1), [1, 0, 0, 0, -1])
    # With a stricter threshold only person 0 fits the first two: the better fit takes it.
    np.testing.assert_array_equal(match_per_frame(obs, errors, max_error=0.04), [0, -1, 0, 0, -1])
    assert (match_per_frame(obs, np.zeros((5, 0)), 0.1) == -1).all()


def test_majority_vote_removes_a_blip_and_cuts_at_a_real_change():
    frames = np.arange(20)
    obs = hand_observations(np.r_[np.zeros(20), np.ones(20)], np.r_[frames, frames], np.zeros((40, 2)))
    tracklets = Tracklets.from_labels(np.r_[np.zeros(20), np.ones(20)].astype(np.int64), obs.view, obs.frame)
    label = np.r_[[0] * 10 + [1] * 10, [-1] * 20]
    label[4] = 1  # a one-frame blip
    label[25:28] = 0  # tracklet 1 is nobody except for three frames
    assignment = pieces_from_labels(obs, tracklets, label, np.array([7, 3]), window=5)
    np.testing.assert_array_equal(assignment.tracklet, [0, 0, 1])
    np.testing.assert_array_equal(assignment.view, [0, 0, 1])
    np.testing.assert_array_equal(assignment.frame_start, [0, 10, 5])
    np.testing.assert_array_equal(assignment.frame_end, [9, 19, 7])
    np.testing.assert_array_equal(assignment.person, [7, 3, 7])  # person ids, not columns


def test_a_short_track_only_one_view_sees_is_dropped_as_a_false_positive(scene):
    sub, sub_who, tracklets, assignment = single_view_person(scene, others=True)
    short = RefinementConfig(min_single_view_frames=FRAMES + 1)  # longer than any tracklet here
    person = assignment.person_of(tracklets.observation_tracklet, sub.frame)
    persons = fuse(sub, person, scene.cameras, FRAMES, FusionConfig())
    refined = refine_assignment(sub, tracklets, assignment, persons, scene.cameras, FRAMES, short)
    labels = refined.person_of(tracklets.observation_tracklet, sub.frame)
    np.testing.assert_array_equal(labels[sub_who == 1], -1)
    np.testing.assert_array_equal(labels[sub_who == 0], 0)


def test_with_no_fused_person_nothing_is_assigned(scene):
    obs = scene.observations
    tracklets = identity_tracklets(scene)
    unassigned = Assignment.from_tracklet_persons(tracklets, np.full(len(tracklets), -1))
    refined = refine_assignment(obs, tracklets, unassigned, (), scene.cameras, FRAMES, RefinementConfig())
    assert len(refined) == 0
    np.testing.assert_array_equal(refined.person_of(tracklets.observation_tracklet, obs.frame), -1)


def test_a_person_one_view_sees_briefly_is_dropped_and_the_others_are_kept() -> None:
    pieces = Assignment(  # person 7: view 0 for 5 frames (a ghost); 8: view 1 for 40; 9: two views, 5 frames
        view=np.array([0, 1, 0, 2]),
        tracklet=np.array([0, 1, 2, 3]),
        frame_start=np.array([10, 0, 50, 50]),
        frame_end=np.array([14, 39, 54, 54]),
        person=np.array([7, 8, 9, 9]),
    )
    kept = without_brief_single_view_persons(pieces, 30)
    assert kept.person.tolist() == [8, 9, 9] and kept.tracklet.tolist() == [1, 2, 3]
    split = dataclasses.replace(pieces, frame_start=np.array([10, 0, 50, 50]), person=np.array([7, 7, 9, 9]))
    assert without_brief_single_view_persons(split, 30).person.tolist() == [7, 7, 9, 9]  # two views: kept
