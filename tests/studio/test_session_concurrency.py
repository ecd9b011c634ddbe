"""The page's reads and two viewers' edits of one session in threads: no edit lost, reads consistent,
``current/`` on disk following the log."""

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from core.engine.editing import EditError, apply_edits
from studio.session import SessionStore
from tests.studio.sessions import assert_follows_log, logged_edits, random_edit, tiny_run

EDITS_PER_VIEWER = 55


def viewer(store, directory, seed):
    """A viewer's clicks: edits (some refused, when another viewer's edit landed first) and undos;
    what was done, in order, as each call returned."""
    rng, session, done = random.Random(seed), store.open(directory), []
    while sum(1 for d in done if d != "undo") < EDITS_PER_VIEWER:
        if rng.random() < 0.2:
            if session.undo():
                done.append("undo")
            continue
        edit = random_edit(rng, session.current.assignment)
        try:
            session.edit(edit)
        except EditError:
            continue
        done.append(edit)
    return done


def page(store, directory, session, stop):
    """The page's callbacks: open the session, show its run and edit count, list the sessions."""
    reads = 0
    while not stop.is_set():
        opened = store.open(directory)
        assert opened is session  # one object for the page and every viewer
        state = opened.state
        expected, _ = apply_edits(opened.base.assignment, state.edits)
        np.testing.assert_array_equal(state.current.assignment.person, expected.person)
        assert [info.directory for info in store.list()] == [directory]
        reads += 1
        stop.wait(0.005)  # clicks, not a busy loop
    return reads


def test_page_reads_interleaved_with_two_viewers_edits_lose_nothing(tmp_path):
    store = SessionStore(tmp_path)
    session = store.create("shared", tiny_run())
    stop = threading.Event()
    with ThreadPoolExecutor(4) as pool:
        pages = [pool.submit(page, store, session.directory, session, stop) for _ in range(2)]
        viewers = [pool.submit(viewer, store, session.directory, seed) for seed in (1, 2)]
        done = [d for v in viewers for d in v.result()]
        stop.set()
        reads = sum(p.result() for p in pages)
    edits = [d for d in done if d != "undo"]
    assert len(edits) >= 100 and reads > 0
    logged = logged_edits(session.directory)
    assert len(logged) == len(edits) - done.count("undo") and logged == session.edits
    assert all(edit in edits for edit in logged)
    current = assert_follows_log(session.directory)  # on disk, as written: no repair needed
    reopened = SessionStore(tmp_path).open(session.directory)
    assert reopened.edits == logged
    for written, shown in zip(current.persons, session.current.persons, strict=True):
        np.testing.assert_array_equal(written.joints, shown.joints)
