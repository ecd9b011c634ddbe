"""Re-fusion after an identity edit, on an exact scene: only the frames an edit changes are redone."""

import dataclasses

import numpy as np
import pytest
import torch

from core.body.config import FitConfig
from core.body.model import BodyParameters
from core.body.tracks import fit_persons
from core.engine.editing import Merge, Reassign, Split, Swap, apply_edit
from core.engine.fusion import fuse
from core.engine.pipeline import assigned_observations, reconstruct_from_observations, with_residuals
from core.engine.refusion import PER_FRAME_FIELDS, refuse, warm_starts
from core.skeleton import JOINT_NAMES
from tests.core.body.test_fitting import ToySkeleton
from tests.core.engine.scenes import exact_scene

SPAN = (25, 35)
"""Frames (start, stop) of the piece the edits below move."""


@pytest.fixture(scope="module")
def scene_and_run():
    scene = exact_scene(persons=2, views=3, frames=20, seed=1)
    run = reconstruct_from_observations(
        scene.observations, scene.cameras, scene.config.frames, scene.config.fps
    )
    return scene, run


def test_refusing_after_an_edit_changes_the_touched_persons_only(scene_and_run):
    _, run = scene_and_run
    assert len(run.persons) == 2
    view0 = np.flatnonzero(run.assignment.view == 0)
    piece = int(view0[run.assignment.person[view0] == 1][0])
    edited, affected = apply_edit(run.assignment, Reassign(piece))  # a new person
    new = int(edited.person.max())
    result = refuse(run, edited, affected, None, run.config.body.fit)
    assert [p.person_id for p in result.persons] == [0, 1, new]
    unchanged = result.persons[0]
    assert unchanged is run.persons[0]  # not touched, not recomputed
    moved = result.persons[2]
    assert moved.views[:, 0].all() and not moved.views[:, 1:].any()  # only the view-0 piece feeds it
    assert not result.persons[1].views[:, 0].any()
    # the remaining views of person 1 still triangulate it where it was
    np.testing.assert_allclose(result.persons[1].transl, run.persons[1].transl, atol=1e-6)

    merged, affected = apply_edit(edited, Merge(new, 1))
    back = refuse(result, merged, affected, None, run.config.body.fit)
    assert [p.person_id for p in back.persons] == [0, 1]
    np.testing.assert_allclose(back.persons[1].joints, run.persons[1].joints, atol=1e-9)


def test_warm_starts_take_each_frame_from_the_person_its_detections_fed_before(scene_and_run):
    _, run = scene_and_run
    # mark each person's fitted pose with its id, as if fitted with a "toy" model
    persons = tuple(
        dataclasses.replace(
            p, shape_model="toy", global_orient=np.full((len(p.frames), 3), float(p.person_id))
        )
        for p in run.persons
    )
    marked = dataclasses.replace(run, persons=persons)
    edited, affected = apply_edit(run.assignment, Swap(0, 1, 10))
    person = edited.person_of(run.tracklets.observation_tracklet, run.observations.frame)
    starts = warm_starts(marked, person, np.array(sorted(affected)), "toy")
    for pid, other in ((0, 1), (1, 0)):
        start = starts[pid]
        np.testing.assert_array_equal(start.global_orient[start.frames < 10], pid)
        np.testing.assert_array_equal(start.global_orient[start.frames >= 10], other)
    assert warm_starts(marked, person, np.array([0]), "anny") == {}


@pytest.fixture(scope="module")
def long_run():
    """A 60-frame run whose person 1 has, in view 0, a piece of its own over the frames of ``SPAN``.

    Both persons have one shape: the mean shape of a person's observations is the one thing fusion
    takes from a whole track, which a splice takes from the changed frames only.
    """
    scene = exact_scene(persons=2, views=3, frames=60, seed=1)
    obs = scene.observations
    obs = dataclasses.replace(obs, shape=np.broadcast_to(obs.shape[0], obs.shape.shape).copy())
    run = reconstruct_from_observations(obs, scene.cameras, scene.config.frames, scene.config.fps)
    a = run.assignment
    piece = int(np.flatnonzero((a.view == 0) & (a.person == 1))[0])
    a, _ = apply_edit(a, Split(piece, SPAN[0]))
    cut, affected = apply_edit(a, Split(len(a) - 1, SPAN[1]))
    assert (cut.frame_start[len(a) - 1], cut.frame_end[len(a) - 1]) == (SPAN[0], SPAN[1] - 1)
    split = refuse(run, cut, affected, None, run.config.body.fit)
    assert all(a is b for a, b in zip(split.persons, run.persons, strict=True))  # a split moves nothing
    return split, len(a) - 1


def full_refusion(run, assignment, affected):
    """What fusing the touched persons over the whole clip gives (the reference)."""
    person = assignment.person_of(run.tracklets.observation_tracklet, run.observations.frame)
    oriented, _, _ = assigned_observations(
        run.observations, run.tracklets, assignment, run.cameras, run.num_frames, run.config
    )
    ids = np.array(sorted(affected))
    fused = fuse(oriented, person, run.cameras, run.num_frames, run.config.fusion, person_ids=ids)
    return {
        p.person_id: p
        for p in with_residuals(fused, oriented, person, run.cameras, run.num_frames, run.config)
    }


def inside_rows(track):
    return (track.frames >= SPAN[0]) & (track.frames < SPAN[1])


@pytest.mark.parametrize("target", [0, None])
def test_an_edit_fuses_again_only_the_frames_it_changes(long_run, target):
    run, piece = long_run
    edited, affected = apply_edit(run.assignment, Reassign(piece, target))
    result = {p.person_id: p for p in refuse(run, edited, affected, None, run.config.body.fit).persons}
    full = full_refusion(run, edited, affected)
    assert sorted(result) == sorted({0, 1} | affected)
    for pid in affected:
        spliced, reference = result[pid], full[pid]
        np.testing.assert_array_equal(spliced.frames, reference.frames)
        inside = inside_rows(spliced)
        if pid not in (0, 1):  # a new person: fused whole
            assert inside.all()
        for name in PER_FRAME_FIELDS:  # inside the piece: what fusing the whole clip gives
            np.testing.assert_allclose(
                getattr(spliced, name)[inside], getattr(reference, name)[inside], atol=1e-9
            )
        if pid in (0, 1):  # outside: exactly as before the edit
            old = run.persons[pid]
            kept = (old.frames < SPAN[0]) | (old.frames >= SPAN[1])
            for name in PER_FRAME_FIELDS:
                np.testing.assert_array_equal(getattr(spliced, name)[~inside], getattr(old, name)[kept])
    assert not result[1].views[inside_rows(result[1]), 0].any()  # the piece no longer feeds person 1


def posed_joints(body, track):
    """The model's joints (but the two the fit leaves out) at every frame of ``track``."""
    parameters = BodyParameters(
        *(
            torch.as_tensor(np.array(a), dtype=torch.float32)
            for a in (track.global_orient, track.transl, track.body_pose)
        ),
        torch.as_tensor(track.shape, dtype=torch.float32).expand(len(track.frames), -1),
    )
    with torch.no_grad():
        joints = body(parameters, vertices=False).joints.numpy()
    return joints[:, [j for j, n in enumerate(JOINT_NAMES) if n not in ("head", "pelvis")]]


def test_an_edit_fits_again_only_around_the_frames_it_changes(long_run):
    run, piece = long_run
    # no per-keypoint offsets: they are one more unknown that every frame of a track shares
    body, fit = ToySkeleton(), FitConfig(warm_iterations=5, offset_prior_weight=0.0)
    # as if fitted with the toy model: the exact scene's poses are the toy skeleton's
    fitted = tuple(dataclasses.replace(p, shape_model=body.name, shape=p.shape[:5]) for p in run.persons)
    run = dataclasses.replace(run, persons=fitted)
    edited, affected = apply_edit(run.assignment, Reassign(piece, 0))
    result = {p.person_id: p for p in refuse(run, edited, affected, body, fit).persons}
    # the reference: every frame of the touched persons fitted again, from the same warm starts
    person = edited.person_of(run.tracklets.observation_tracklet, run.observations.frame)
    starts = warm_starts(run, person, np.array(sorted(affected)), body.name)
    starts = {pid: dataclasses.replace(s, shape=run.persons[pid].shape) for pid, s in starts.items()}
    full = {
        p.person_id: p
        for p in fit_persons(tuple(full_refusion(run, edited, affected).values()), body, fit, "cpu", starts)
    }
    for pid in affected:
        old, spliced, reference = run.persons[pid], result[pid], full[pid]
        np.testing.assert_array_equal(spliced.shape, old.shape)
        np.testing.assert_array_equal(spliced.frames, old.frames)
        inside = inside_rows(spliced)
        for name in ("global_orient", "transl", "body_pose"):  # elsewhere: exactly as before
            np.testing.assert_array_equal(getattr(spliced, name)[~inside], getattr(old, name)[~inside])
        ours, theirs = (posed_joints(body, t)[inside] for t in (spliced, reference))
        per_frame = np.linalg.norm(ours - theirs, axis=-1).mean(axis=1)
        # what fitting the whole track gives (float32 rounding, which Adam's normalised steps amplify,
        # may move a frame by a few millimetres)
        assert np.median(per_frame) < 1e-5 and per_frame.mean() < 0.002
    # the piece moved person 0's fused joints at its frames: its fit there had to change
    piece_rows = inside_rows(result[0])
    moved = posed_joints(body, full[0])[piece_rows] - posed_joints(body, run.persons[0])[piece_rows]
    assert np.linalg.norm(moved, axis=-1).mean() > 0.015
