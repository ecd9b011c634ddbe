"""Suspicion signals on exact cases: each finds the span it is built for and nothing on clean data."""

from dataclasses import replace

import numpy as np
import pytest

from core.engine.suspicion import (
    KINDS,
    SuspicionConfig,
    association_costs,
    bone_length_outliers,
    find_suspicions,
    mid_clip_ends,
    mirrored_labels,
    reprojection_jumps,
    single_view_spans,
    tracklet_cuts,
)
from core.types import Assignment, PersonTrack

CONFIG = SuspicionConfig()
NAMES = ("cam0", "cam1", "cam2")
JOINTS = ("left_shoulder", "left_elbow", "left_wrist", "left_hip", "left_knee", "left_ankle")


def person(frames: int = 40, first: int = 5, seed: int = 0) -> PersonTrack:
    """A person standing still, seen by three views with about 3 px of reprojection error."""
    rng = np.random.default_rng(seed)
    rest = np.array(
        [[0, 0.2, 1.4], [0, 0.45, 1.4], [0, 0.7, 1.4], [0, 0.1, 0.9], [0, 0.1, 0.5], [0, 0.1, 0.1]]
    )
    joints = np.repeat(rest[None], frames, axis=0) + rng.normal(0, 0.003, (frames, len(JOINTS), 3))
    return PersonTrack(
        person_id=7,
        frames=np.arange(first, first + frames),
        global_orient=np.zeros((frames, 3)),
        transl=np.zeros((frames, 3)),
        body_pose=np.zeros((frames, 21, 3)),
        shape=np.zeros(5),
        joints=joints,
        joint_views=np.full((frames, len(JOINTS)), 3),
        residuals_px=3.0 + rng.normal(0, 0.3, (frames, 3)),
        confidence=np.ones(frames),
        views=np.ones((frames, 3), dtype=bool),
        joint_names=JOINTS,
    )


def test_clean_tracks_raise_nothing():
    clean = person()
    assert len(reprojection_jumps(clean, NAMES, CONFIG)) == 0
    assert len(bone_length_outliers(clean, CONFIG)) == 0
    assert len(single_view_spans(clean, NAMES, CONFIG)) == 0
    assert len(mid_clip_ends(replace(clean, frames=clean.frames - 5), 40, CONFIG)) == 0


def test_a_views_reprojection_jump_is_one_span_in_clip_frames():
    residuals = person().residuals_px.copy()
    residuals[10:13, 1] = 25.0
    residuals[20:, 2] = np.nan  # a view that stops seeing the person is no jump
    found = reprojection_jumps(replace(person(), residuals_px=residuals), NAMES, CONFIG)
    assert (found.view.tolist(), found.frame_start.tolist(), found.frame_end.tolist()) == ([1], [15], [17])
    assert found.score[0] > 1 and found.reason[0].startswith("cam1: reprojection 25.0 px")


def test_a_limb_that_changes_length_is_a_chimera_span():
    joints = person().joints.copy()
    joints[20:22, 2] += [0, 0.2, 0]  # the wrist taken from someone else: forearm 0.45 m instead of 0.25
    found = bone_length_outliers(replace(person(), joints=joints), CONFIG)
    assert (found.frame_start.tolist(), found.frame_end.tolist(), found.view.tolist()) == ([25], [26], [-1])
    assert KINDS[found.kind[0]] == "bone lengths" and found.score[0] > 2


def test_one_view_spans_and_mid_clip_ends():
    views = np.ones((40, 3), dtype=bool)
    views[8:20, [0, 2]] = False  # cam1 alone for 12 frames
    views[30:32, [0, 1]] = False  # cam2 alone for 2: too brief to list
    found = single_view_spans(replace(person(), views=views), NAMES, CONFIG)
    assert (found.view.tolist(), found.frame_start.tolist(), found.frame_end.tolist()) == ([1], [13], [24])
    ends = mid_clip_ends(person(first=20), 100, CONFIG)
    assert [KINDS[k] for k in ends.kind] == ["starts mid-clip", "ends mid-clip"]
    assert (ends.frame_start.tolist(), ends.reason) == (
        [20, 59],
        ("appears at frame 20", "disappears after frame 59"),
    )


def test_a_tracklet_whose_pieces_go_to_two_persons_is_a_cut():
    assignment = Assignment(
        view=np.array([0, 0, 1]),
        tracklet=np.array([0, 0, 1]),
        frame_start=np.array([50, 0, 0]),
        frame_end=np.array([99, 49, 99]),
        person=np.array([1, 0, 1]),
    )
    cuts = tracklet_cuts(assignment, NAMES)
    assert (cuts.person.tolist(), cuts.view.tolist(), cuts.frame_start.tolist()) == ([1], [0], [50])
    assert cuts.reason == ("cam0: tracklet 0 goes from person 0 to person 1 at frame 50",)


def test_a_whole_reconstruction_lists_an_injected_swap_worst_first(small_reconstruction):
    clean = find_suspicions(small_reconstruction)
    assert np.all(np.diff(clean.score) <= 0) and len(clean.reason) == len(clean)
    a = small_reconstruction.assignment
    first = int(np.argmax(a.frame_end - a.frame_start))  # split a long piece and give its end to another
    middle = int((a.frame_start[first] + a.frame_end[first]) // 2)
    other = int(next(p for p in np.unique(a.person) if p != a.person[first]))
    swapped = Assignment(
        view=np.r_[a.view, a.view[first]],
        tracklet=np.r_[a.tracklet, a.tracklet[first]],
        frame_start=np.r_[a.frame_start, middle + 1],
        frame_end=np.r_[np.where(np.arange(len(a)) == first, middle, a.frame_end), a.frame_end[first]],
        person=np.r_[a.person, other],
    )
    found = find_suspicions(replace(small_reconstruction, assignment=swapped))
    cut = np.flatnonzero(found.kind == KINDS.index("tracklet cut"))
    assert len(cut) == (clean.kind == KINDS.index("tracklet cut")).sum() + 1
    assert middle + 1 in found.frame_start[cut]


def test_mirrored_detections_group_into_runs_per_person_and_view():
    class Rows:
        view = np.array([0, 0, 0, 0, 1, 1])
        frame = np.array([3, 4, 5, 9, 4, 5])

    persons = np.array([2, 2, 2, 2, 2, -1])
    found = mirrored_labels(Rows, np.array([0, 1, 2, 3, 4, 5]), persons, NAMES)
    rows = sorted(zip(found.view.tolist(), found.frame_start.tolist(), found.frame_end.tolist(), strict=True))
    assert rows == [(0, 3, 5), (0, 9, 9), (1, 4, 4)]
    assert "cam0: left and right exchanged in 3 frames" in found.reason


def test_a_tracklet_that_agrees_loosely_with_its_persons_others_is_a_weak_link():
    assignment = Assignment(
        view=np.array([0, 1, 2, 0]),
        tracklet=np.array([0, 1, 2, 3]),
        frame_start=np.array([0, 0, 10, 0]),
        frame_end=np.array([99, 99, 60, 99]),
        person=np.array([0, 0, 0, 1]),
    )
    cost = np.full((4, 4), np.inf)
    for a, b, c in ((0, 1, 0.2), (0, 2, 0.9), (1, 2, 0.8)):
        cost[a, b] = cost[b, a] = c
    found = association_costs(assignment, cost, 1.0, NAMES, CONFIG)  # threshold 0.7 × the gate
    assert (found.view.tolist(), found.frame_start.tolist(), found.frame_end.tolist()) == ([2], [10], [60])
    assert found.score[0] == pytest.approx(0.85 / 0.7)
    assert found.reason == ("cam2: tracklet 2 joins person 0 at mean cost 0.85 (gate 1)",)
    assert len(association_costs(assignment, np.zeros((0, 0)), 1.0, NAMES, CONFIG)) == 0
