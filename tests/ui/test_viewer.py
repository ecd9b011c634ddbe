"""The viewer without a browser: scrubbing swaps node contents, edits rebuild the touched persons only."""

import socket

import numpy as np
import pytest

from core.engine.editing import IdentityEdit
from core.engine.pipeline import reconstruct_from_observations
from studio.session import Session
from tests.core.engine.scenes import exact_scene
from ui.viewer import SessionViewer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def run():
    scene = exact_scene(persons=2, views=3, frames=12, seed=3)
    return reconstruct_from_observations(
        scene.observations, scene.cameras, scene.config.frames, scene.config.fps
    )


@pytest.fixture
def viewer(run, tmp_path):
    viewer = SessionViewer(Session.create(tmp_path, "viewer", run), port=free_port())
    yield viewer
    viewer.stop()


def test_scrubbing_moves_each_skeleton_to_its_frame(viewer, run):
    for frame in (0, 7, 11):
        viewer.show_frame(frame)
        for person in run.persons:
            nodes = viewer._nodes[person.person_id]
            row = int(np.flatnonzero(person.frames == frame)[0])
            np.testing.assert_allclose(nodes.bones.points, nodes.skeleton[row])
            assert nodes.bones.visible  # no body model: the skeleton stands for the mesh


def test_an_edit_rebuilds_the_touched_persons_and_undo_restores_them(viewer, run):
    untouched = viewer._nodes[0]
    piece = viewer.pieces(1)[0]
    status = viewer.edit(IdentityEdit("reassign", piece=piece))
    assert "persons 1, 2 updated" in status and "saved" in status
    assert sorted(viewer._nodes) == [0, 1, 2] and viewer._nodes[0] is untouched
    assert viewer.pieces(2) == [piece]
    assert "not done: person 9 has no piece" in viewer.edit(IdentityEdit("merge", person=9, other=0))
    viewer.undo()
    assert sorted(viewer._nodes) == [0, 1] and piece in viewer.pieces(1)
    assert len(Session.open(viewer.session.directory).undone) == 1


def test_a_compared_run_is_scrubbed_with_the_first_and_can_be_hidden(run, tmp_path):
    first = Session.create(tmp_path, "first", run)
    second = Session.create(tmp_path, "second", run)
    second.edit(IdentityEdit("merge", person=1, other=0))
    viewer = SessionViewer(first, port=free_port(), compare=second)
    try:
        assert sorted(viewer._compared) == [0]
        viewer.show_frame(5)
        assert viewer._compared[0].bones.visible
        viewer._layers["compared run"].value = False
        assert not viewer._compared[0].bones.visible
    finally:
        viewer.stop()
