"""The page's 3D viewers: one Viser server per opened session (or compared pair), each on its own port,
stopped once idle so that the server's memory does not grow with every session opened.

A viewer is in use while a browser tab shows it (the tab's last Run, Open or Compare) or a browser is
connected to it. Of the idle ones, the ``keep`` most recently used stay for ``idle_seconds``; the others
are stopped at once, and the sessions no remaining viewer holds are released from the store (the next
open reads them again). Every viewer takes its session from the store under the pool's lock, so that
the page and every viewer of a folder share one ``Session``.
"""

from __future__ import annotations

import ctypes
import gc
import socket
import threading
import time
from pathlib import Path

from studio.session import SessionStore
from ui.viewer import SessionViewer

_Key = tuple[Path, Path | None]
"""(session folder, compared session folder or None)."""


def _stop(viewers: list[SessionViewer]) -> None:
    """Stop ``viewers`` and free them (emptying the list: nothing holds them after; their Viser callbacks
    form reference cycles), then hand the heap they held back to the system: glibc keeps freed memory
    for reuse otherwise (a no-op elsewhere)."""
    while viewers:
        viewers.pop().stop()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class ViewerPool:
    """The viewers of one server, started on demand and released when idle."""

    def __init__(
        self,
        store: SessionStore,
        host: str,
        first_port: int,
        idle_seconds: float = 300.0,
        keep: int = 2,
        check_seconds: float = 10.0,
    ) -> None:
        self.store, self.host = store, host
        self._next_port = first_port
        self._idle_seconds, self._keep = idle_seconds, keep
        self._viewers: dict[_Key, SessionViewer] = {}
        self._used: dict[_Key, float] = {}
        """Last time each viewer was in use (``time.monotonic``)."""
        self._opened: dict[_Key, float] = {}
        """Last time each viewer was opened: the most recent of those last in use at once."""
        self._shown: dict[tuple[str, str], _Key] = {}
        """(tab, "main" or "compare") → the viewer that tab shows."""
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._release_loop, args=(check_seconds,), daemon=True).start()

    def __len__(self) -> int:
        return len(self._viewers)

    def open(
        self, directory: Path, compare: Path | None = None, shown_by: str | None = None
    ) -> SessionViewer:
        """The viewer of the session in ``directory`` (with ``compare``'s persons too), started once;
        ``shown_by`` (a tab's id) keeps it while that tab shows it."""
        key = (Path(directory).resolve(), Path(compare).resolve() if compare else None)
        with self._lock:
            if key not in self._viewers:
                session = self.store.open(key[0])
                other = self.store.open(key[1]) if key[1] else None
                viewer = SessionViewer(session, self.host, self._free_port(), other)
                print(f"3D viewer of {session.name}: {viewer.url}")
                self._viewers[key] = viewer
            if shown_by is not None:
                self._shown[shown_by, "compare" if compare else "main"] = key
            self._used[key] = self._opened[key] = time.monotonic()
            viewer = self._viewers[key]
        self.release_idle()
        return viewer

    def leave(self, tab: str) -> None:
        """``tab`` is gone: the viewers it showed may be released once no browser watches them."""
        with self._lock:
            for slot in [slot for slot in self._shown if slot[0] == tab]:
                del self._shown[slot]

    def release_idle(self) -> list[Path]:
        """Stop the idle viewers beyond the ``keep`` most recent and those idle ``idle_seconds``;
        the session folders released from the store."""
        now = time.monotonic()
        with self._lock:
            shown = set(self._shown.values())
            idle = []
            for key, viewer in self._viewers.items():
                if key in shown or viewer.server.get_clients():
                    self._used[key] = now
                else:
                    idle.append(key)
            idle.sort(key=lambda key: (self._used[key], self._opened[key]), reverse=True)
            gone = [
                k for i, k in enumerate(idle) if i >= self._keep or now - self._used[k] >= self._idle_seconds
            ]
            stopped = [self._viewers.pop(key) for key in gone]
            for key in gone:
                del self._used[key], self._opened[key]
            held = {folder for key in self._viewers for folder in key if folder is not None}
            released = sorted({folder for key in gone for folder in key if folder is not None} - held)
            for folder in released:
                self.store.release(folder)
        if stopped:
            _stop(stopped)
        return released

    def _release_loop(self, check_seconds: float) -> None:
        while not self._closed.wait(check_seconds):
            self.release_idle()

    def _free_port(self) -> int:
        while True:
            port, self._next_port = self._next_port, self._next_port + 1
            with socket.socket() as probe:
                if probe.connect_ex((self.host, port)) != 0:
                    return port

    def close(self) -> None:
        """Stop every viewer (the server is shutting down)."""
        self._closed.set()
        with self._lock:
            viewers, self._viewers = list(self._viewers.values()), {}
        _stop(viewers)
