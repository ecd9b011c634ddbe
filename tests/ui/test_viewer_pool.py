"""The page's viewers share the store's sessions and are stopped, and freed, once nobody looks at them."""

import gc
import time
import weakref

import pytest

from studio.session import SessionStore
from tests.ui.test_viewer import free_port
from ui.viewer_pool import ViewerPool


@pytest.fixture
def store(run, tmp_path):
    store = SessionStore(tmp_path)
    for name in ("a", "b"):
        store.create(name, run)
    return store


def folders(store):
    by_name = {info.name: info.directory for info in store.list()}
    return by_name["a"], by_name["b"]


def pool_of(store, **timing) -> ViewerPool:
    return ViewerPool(store, "127.0.0.1", free_port(), check_seconds=3600, **timing)


def test_a_viewer_holds_the_stores_session_and_goes_when_its_tab_shows_another(store):
    a, b = folders(store)
    pool = pool_of(store, idle_seconds=3600, keep=0)
    try:
        first = pool.open(a, shown_by="tab")
        assert first.session is store.open(a)  # one Session for the page and the viewer
        gone = weakref.ref(first)
        del first
        pool.open(b, shown_by="tab")  # the tab now shows b: a is idle, beyond the 0 kept
        assert len(pool) == 1
        gc.collect()
        assert gone() is None  # stopped and freed, not only forgotten
        assert pool.release_idle() == []  # b is still shown
        pool.leave("tab")
        assert pool.release_idle() == [b.resolve()] and len(pool) == 0
    finally:
        pool.close()


def test_idle_viewers_beyond_the_kept_ones_go_at_once_the_others_after_the_idle_time(store):
    a, b = folders(store)
    pool = pool_of(store, idle_seconds=0.5, keep=1)
    try:
        pool.open(a, shown_by="first tab")
        pool.open(b, shown_by="second tab")
        pool.leave("first tab")
        pool.leave("second tab")
        assert pool.release_idle() == [a.resolve()]  # the least recently used of the idle two
        time.sleep(0.6)
        assert pool.release_idle() == [b.resolve()]
    finally:
        pool.close()
