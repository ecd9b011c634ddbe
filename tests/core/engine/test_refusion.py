"""Re-fusion after an identity edit, on an exact scene."""

import dataclasses

import numpy as np
import pytest

from core.engine.editing import IdentityEdit, apply_edit
from core.engine.pipeline import reconstruct_from_observations
from core.engine.refusion import refuse, warm_starts
from tests.core.engine.scenes import exact_scene


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
    edited, affected = apply_edit(run.assignment, IdentityEdit("reassign", piece=piece))  # a new person
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

    merged, affected = apply_edit(edited, IdentityEdit("merge", person=new, other=1))
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
    edited, affected = apply_edit(run.assignment, IdentityEdit("swap", person=0, other=1, frame=10))
    person = edited.person_of(run.tracklets.observation_tracklet, run.observations.frame)
    starts = warm_starts(marked, person, np.array(sorted(affected)), "toy")
    for pid, other in ((0, 1), (1, 0)):
        start = starts[pid]
        np.testing.assert_array_equal(start.global_orient[start.frames < 10], pid)
        np.testing.assert_array_equal(start.global_orient[start.frames >= 10], other)
    assert warm_starts(marked, person, np.array([0]), "anny") == {}
