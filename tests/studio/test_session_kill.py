"""Processes killed (SIGKILL) at random points of creating sessions and saving edits: afterwards every
session is absent or complete, listed, opens with its log's edits, and loses no edit that was saved.

Each try forks a worker (from a fork server that imported the studio once, so a try costs a fraction of
a second) that creates tiny sessions and edits them, writing in a journal what it is about to do and
what it did; it is killed after a random delay. An edit may be lost only if its call had not returned.
"""

import json
import multiprocessing
import os
import random
import time
from pathlib import Path

import pytest

from core.engine.editing import EditError
from studio.session import SessionStore
from tests.studio.sessions import assert_follows_log, logged_edits, random_edit, tiny_run


def work(root: str, journal: str, seed: int, run) -> None:
    """Create sessions and edit or undo in them until killed; journal lines ``{session, before, intent}``
    before and ``{session, done}`` after each change (edit lists as JSON)."""
    rng, store = random.Random(seed), SessionStore(Path(root))
    out = os.open(journal, os.O_WRONLY | os.O_APPEND)

    def note(**line) -> None:
        os.write(out, (json.dumps(line) + "\n").encode())

    recent = [info.directory for info in store.list()[:2]]
    while True:
        if not recent or rng.random() < 0.3:
            session = store.create(f"try {seed}", run)
            note(session=str(session.directory), done=[])
            recent.append(session.directory)
        session = store.open(rng.choice(recent[-3:]))
        before = [e.to_json() for e in session.edits]
        if before and rng.random() < 0.25:
            note(session=str(session.directory), before=before, intent=before[:-1])
            session.undo()
            note(session=str(session.directory), done=before[:-1])
            continue
        edit = random_edit(rng, session.current.assignment)
        note(session=str(session.directory), before=before, intent=[*before, edit.to_json()])
        try:
            session.edit(edit)
        except EditError:
            note(session=str(session.directory), done=before)
        else:
            note(session=str(session.directory), done=[*before, edit.to_json()])


def journal_states(journal: Path) -> dict[str, list]:
    """Per session, the edit lists its log may hold: the last one done, and one in progress if any."""
    states: dict[str, list] = {}
    for line in journal.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # the line being written when the worker was killed
            continue
        states[entry["session"]] = [entry["done"]] if "done" in entry else [entry["before"], entry["intent"]]
    return states


def hidden_entries(root: Path) -> list[Path]:
    """What is under a hidden name in ``root`` and in its sessions: staging, or a leftover."""
    return [p for folder in [root, *root.iterdir()] if folder.is_dir() for p in folder.glob(".*")]


def follows_log(directory: Path) -> bool:
    try:
        assert_follows_log(directory)
    except (AssertionError, ValueError):
        return False
    return True


def kill_at_random(tmp_path: Path, tries: int) -> dict[str, int]:
    root, journal = tmp_path / "sessions", tmp_path / "journal"
    journal.touch()
    root.mkdir()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    run, rng = tiny_run(), random.Random(0)
    leftovers = 0
    for seed in range(tries):
        leftovers += len(hidden_entries(root))  # what the last kill left (the next store removes it)
        worker = context.Process(target=work, args=(str(root), str(journal), seed, run))
        worker.start()
        time.sleep(rng.uniform(0.02, 0.4))
        worker.kill()
        worker.join()
        assert worker.exitcode == -9, f"try {seed}: the worker ended by itself ({worker.exitcode})"
    leftovers += len(hidden_entries(root))
    behind = sum(not follows_log(p) for p in root.iterdir() if not p.name.startswith("."))
    store = SessionStore(root)
    assert hidden_entries(root) == []
    states = journal_states(journal)
    listed = {str(info.directory) for info in store.list()}
    assert listed == {str(p) for p in root.iterdir()}  # every folder is a complete session
    assert set(states) <= listed  # every session whose creation returned is there
    edits = 0
    for directory in sorted(listed):
        logged = [e.to_json() for e in store.open(Path(directory)).edits]
        assert logged in states.get(directory, [[]]), directory  # no saved edit lost
        assert [e.to_json() for e in logged_edits(Path(directory))] == logged
        assert_follows_log(Path(directory))
        edits += len(logged)
    return {"sessions": len(listed), "edits": edits, "leftovers": leftovers, "current/ behind": behind}


def test_kills_during_create_and_edit_leave_sessions_absent_or_complete(tmp_path):
    counts = kill_at_random(tmp_path, tries=20)
    print(counts)
    assert counts["sessions"] >= 10


@pytest.mark.slow
def test_a_hundred_and_fifty_kills(tmp_path):
    counts = kill_at_random(tmp_path, tries=150)
    print(counts)
    assert counts["sessions"] >= 75
