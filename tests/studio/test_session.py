"""Sessions: edits saved at once, undo and redo, one object per folder, the log as the truth, recovery."""

import json
import os
import shutil
import weakref

import numpy as np
import pytest

from core.engine.editing import EditError, Merge, Reassign, Split, Swap
from studio.session import SCHEMA, SessionFormatError, SessionStore, list_sessions
from tests.core.test_staging import a_finished_process
from tests.studio.sessions import assert_follows_log, tiny_run


@pytest.fixture(scope="module")
def run():
    return tiny_run(persons=2, views=3, frames=20, seed=2)


def person_ids(reconstruction):
    return [p.person_id for p in reconstruction.persons]


def tree(directory):
    """Every file under ``directory`` with its bytes: what a read must leave as it was."""
    return {p: p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_an_edit_is_saved_at_once_and_the_session_reopens_as_left(run, tmp_path):
    session = SessionStore(tmp_path).create("two people", run, {"gate": 1.0})
    piece = int(np.flatnonzero(run.assignment.person == 1)[0])
    affected = session.edit(Reassign(piece))
    assert affected == {1, 2} and person_ids(session.current) == [0, 1, 2]
    reopened = SessionStore(tmp_path).open(session.directory)  # a fresh store reads the disk
    assert reopened is not session
    assert reopened.edits == [Reassign(piece)] and reopened.settings == {"gate": 1.0}
    assert person_ids(reopened.current) == [0, 1, 2]
    for before, after in zip(session.current.persons, reopened.current.persons, strict=True):
        np.testing.assert_array_equal(before.joints, after.joints)
    (info,) = SessionStore(tmp_path).list()
    assert (info.directory, info.name, info.persons, info.edits) == (session.directory, "two people", 3, 1)
    assert json.loads((session.directory / "session.json").read_text())["schema"] == SCHEMA


def test_undo_and_redo(run, tmp_path):
    session = SessionStore(tmp_path).create("undo", run)
    assert session.undo() == frozenset() and session.redo() == frozenset()
    session.edit(Merge(1, 0))
    assert person_ids(session.current) == [0]
    assert session.undo() == {0, 1}
    assert person_ids(session.current) == [0, 1]
    np.testing.assert_allclose(session.current.persons[1].joints, run.persons[1].joints, atol=1e-9)
    assert SessionStore(tmp_path).open(session.directory).undone == [Merge(1, 0)]
    session.redo()
    assert person_ids(SessionStore(tmp_path).open(session.directory).current) == [0]
    session.undo()
    session.edit(Split(0, 5))  # a new edit clears the redo list
    assert session.undone == [] and len(session.current.assignment) == len(run.assignment) + 1
    assert_follows_log(session.directory)


def test_a_refused_edit_changes_nothing_on_disk(run, tmp_path):
    session = SessionStore(tmp_path).create("bad", run)
    before = tree(session.directory)
    with pytest.raises(EditError):
        session.edit(Merge(7, 0))
    assert tree(session.directory) == before


def test_one_session_object_per_folder_until_released_and_dropped(run, tmp_path):
    store = SessionStore(tmp_path)
    created = store.create("shared", run)
    spelled_otherwise = tmp_path / "x" / ".." / created.directory.name
    assert store.open(created.directory) is created and store.open(spelled_otherwise) is created
    store.release(created.directory)
    assert store.open(created.directory) is created  # still held (by a compare viewer, say): not read again
    created.edit(Merge(1, 0))
    store.release(created.directory)
    directory, alive, created = created.directory, weakref.ref(created), None
    assert alive() is None  # released and held by no one: gone from memory
    again = store.open(directory)
    assert again.directory == directory and again.edits == [Merge(1, 0)]  # read again from disk


def test_opening_and_listing_write_nothing(run, tmp_path):
    session = SessionStore(tmp_path).create("read only", run)
    session.edit(Merge(1, 0))
    before = tree(tmp_path)
    store = SessionStore(tmp_path)
    opened = store.open(session.directory)
    assert person_ids(opened.current) == [0] and len(store.list()) == 1
    assert tree(tmp_path) == before


def test_a_log_ahead_of_current_is_repaired_on_opening(run, tmp_path):
    """A kill between the two writes of an edit: the log has it, current/ does not."""
    session = SessionStore(tmp_path).create("crash", run)
    log = json.loads((session.directory / "session.json").read_text())
    log["edits"] = [Merge(1, 0).to_json()]
    (session.directory / "session.json").write_text(json.dumps(log))
    reopened = SessionStore(tmp_path).open(session.directory)
    assert person_ids(reopened.current) == [0]
    assert person_ids(assert_follows_log(session.directory)) == [0]


def test_a_current_ahead_of_the_log_is_rebuilt_even_without_edits(run, tmp_path):
    """What a kill during the first edit's save left before the log was written first."""
    session = SessionStore(tmp_path).create("ahead", run)
    log = (session.directory / "session.json").read_text()
    session.edit(Merge(1, 0))
    (session.directory / "session.json").write_text(log)  # the log without the edit
    reopened = SessionStore(tmp_path).open(session.directory)
    assert reopened.edits == [] and person_ids(reopened.current) == [0, 1]
    assert person_ids(assert_follows_log(session.directory)) == [0, 1]


@pytest.mark.parametrize("damage", ["missing", "half written"])
def test_a_session_whose_current_vanished_is_listed_and_opens(run, tmp_path, damage):
    session = SessionStore(tmp_path).create("vanished", run)
    session.edit(Split(0, 5))
    if damage == "missing":  # a kill between Reconstruction.save's two renames
        shutil.rmtree(session.directory / "current")
    else:
        (session.directory / "current" / "arrays.npz").unlink()
    store = SessionStore(tmp_path)
    (info,) = store.list()
    assert (info.name, info.persons, info.edits) == ("vanished", 2, 1)
    assert store.open(session.directory).edits == [Split(0, 5)]
    assert len(assert_follows_log(session.directory).assignment) == len(run.assignment) + 1


def test_a_first_schema_log_is_read_and_rewritten_by_the_next_edit(run, tmp_path):
    session = SessionStore(tmp_path).create("old", run)
    old = {  # as the studio wrote it before the schema key: -1 for absent fields, no persons
        "name": "old",
        "created": 1.0,
        "settings": {},
        "edits": [{"kind": "reassign", "piece": 0, "person": -1, "other": -1, "frame": -1}],
        "undone": [],
    }
    (session.directory / "session.json").write_text(json.dumps(old))
    store = SessionStore(tmp_path)
    opened = store.open(session.directory)
    assert opened.edits == [Reassign(0)] and person_ids(opened.current) == [0, 1, 2]
    assert [(i.persons, i.edits) for i in store.list()] == [(3, 1)]  # persons counted in current/
    opened.edit(Merge(2, 0))
    log = json.loads((session.directory / "session.json").read_text())
    assert log["schema"] == SCHEMA and log["edits"][0] == {"kind": "reassign", "piece": 0, "person": None}


def test_a_newer_schema_or_a_broken_log_is_refused_naming_the_file(run, tmp_path):
    session = SessionStore(tmp_path).create("future", run)
    log = json.loads((session.directory / "session.json").read_text())
    (session.directory / "session.json").write_text(json.dumps({**log, "schema": SCHEMA + 1}))
    store = SessionStore(tmp_path)
    with pytest.raises(SessionFormatError, match=rf"session.json: session schema {SCHEMA + 1} is newer"):
        store.open(session.directory)
    (session.directory / "session.json").write_text(json.dumps({**log, "edits": [{"kind": "rename"}]}))
    with pytest.raises(SessionFormatError, match="session.json: .*unknown edit kind 'rename'"):
        store.open(session.directory)
    assert store.list() == []


def test_a_store_starting_removes_what_killed_processes_left_and_nothing_else(run, tmp_path):
    session = SessionStore(tmp_path).create("kept", run)
    dead = a_finished_process()
    leftovers = [
        tmp_path / f".20240101-000000-run-0a0b0c0d.creating-{dead}-0011",  # a killed create
        session.directory / f".current.saving-{dead}-2233",  # a killed save
        session.directory / f".current.retired-{dead}-2233",
        session.directory / ".current.k2j4_x9q",  # named before staging names carried a writer
        session.directory / ".current.old",
    ]
    for path in leftovers:
        (path / "base").mkdir(parents=True)
    (session.directory / ".session.json.4f2a9c.tmp").write_text("{")
    users = [tmp_path / "notes", tmp_path / ".git", session.directory / "exports-1"]
    for path in users:
        path.mkdir()
    SessionStore(tmp_path)
    assert not any(path.exists() for path in leftovers)
    assert all(path.exists() for path in users)
    assert sorted(os.listdir(session.directory)) == ["base", "current", "exports-1", "session.json"]


def test_folders_that_are_not_sessions_are_skipped(run, tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "session.json").write_text("{not json")
    SessionStore(tmp_path).create("good", run)
    assert [info.name for info in list_sessions(tmp_path)] == ["good"]


def test_the_schema_version_moves_with_the_layout_of_the_edits():
    """Changing what an edit writes needs a new SCHEMA (and the old layout still read): this pins both."""
    layout = {e.kind: sorted(e.to_json()) for e in (Reassign(0), Split(0, 1), Merge(0, 1), Swap(0, 1, 2))}
    assert (SCHEMA, layout) == (
        2,
        {
            "reassign": ["kind", "person", "piece"],
            "split": ["frame", "kind", "piece"],
            "merge": ["kind", "other", "person"],
            "swap": ["frame", "kind", "other", "person"],
        },
    )
