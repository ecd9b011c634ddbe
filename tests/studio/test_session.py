"""Sessions: edits saved at once, undo and redo, reopening exactly as left, recovery after a crash."""

import json

import numpy as np
import pytest

from core.engine.editing import EditError, IdentityEdit
from core.engine.pipeline import reconstruct_from_observations
from studio.session import Session, list_sessions
from tests.core.engine.scenes import exact_scene


@pytest.fixture(scope="module")
def run():
    scene = exact_scene(persons=2, views=3, frames=20, seed=2)
    return reconstruct_from_observations(
        scene.observations, scene.cameras, scene.config.frames, scene.config.fps
    )


def person_ids(reconstruction):
    return [p.person_id for p in reconstruction.persons]


def test_an_edit_is_saved_at_once_and_the_session_reopens_as_left(run, tmp_path):
    session = Session.create(tmp_path, "two people", run, {"gate": 1.0})
    piece = int(np.flatnonzero(run.assignment.person == 1)[0])
    affected = session.edit(IdentityEdit("reassign", piece=piece))
    assert affected == {1, 2} and person_ids(session.current) == [0, 1, 2]
    reopened = Session.open(session.directory)
    assert reopened.edits == [IdentityEdit("reassign", piece=piece)] and reopened.settings == {"gate": 1.0}
    assert person_ids(reopened.current) == [0, 1, 2]
    for before, after in zip(session.current.persons, reopened.current.persons, strict=True):
        np.testing.assert_array_equal(before.joints, after.joints)
    (info,) = list_sessions(tmp_path)
    assert (info.name, info.persons, info.edits) == ("two people", 3, 1)


def test_undo_and_redo(run, tmp_path):
    session = Session.create(tmp_path, "undo", run)
    assert session.undo() == frozenset() and session.redo() == frozenset()
    session.edit(IdentityEdit("merge", person=1, other=0))
    assert person_ids(session.current) == [0]
    assert session.undo() == {0, 1}
    assert person_ids(session.current) == [0, 1]
    np.testing.assert_allclose(session.current.persons[1].joints, run.persons[1].joints, atol=1e-9)
    assert Session.open(session.directory).undone == [IdentityEdit("merge", person=1, other=0)]
    session.redo()
    assert person_ids(Session.open(session.directory).current) == [0]
    session.undo()
    session.edit(IdentityEdit("split", piece=0, frame=5))  # a new edit clears the redo list
    assert session.undone == [] and len(session.current.assignment) == len(run.assignment) + 1


def test_a_refused_edit_changes_nothing_on_disk(run, tmp_path):
    session = Session.create(tmp_path, "bad", run)
    before = (session.directory / "session.json").read_text()
    with pytest.raises(EditError):
        session.edit(IdentityEdit("merge", person=7, other=0))
    assert (session.directory / "session.json").read_text() == before


def test_a_crash_between_the_two_writes_is_repaired_on_opening(run, tmp_path):
    session = Session.create(tmp_path, "crash", run)
    metadata = json.loads((session.directory / "session.json").read_text())
    metadata["edits"] = [IdentityEdit("merge", person=1, other=0).to_json()]  # written, current/ not
    (session.directory / "session.json").write_text(json.dumps(metadata))
    reopened = Session.open(session.directory)
    assert person_ids(reopened.current) == [0]
    assert person_ids(Session.open(session.directory).current) == [0]


def test_folders_that_are_not_sessions_are_skipped(run, tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "session.json").write_text("{not json")
    Session.create(tmp_path, "good", run)
    assert [info.name for info in list_sessions(tmp_path)] == ["good"]
