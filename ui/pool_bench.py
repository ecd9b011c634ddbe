"""``python -m ui.pool_bench``: the server's memory after sessions are opened in viewers and left.

Sessions of the synthetic example (3 persons with Anny bodies, 4 views) are opened one after another
through the page's ``ViewerPool``, each by a tab of its own, then left (the tabs close; no browser is
connected). Once the idle time has passed, the pool's release runs; the server's resident
memory is printed before the first open, with every viewer open, and after the release.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from pathlib import Path

import tyro

from core.config import ReconstructionConfig
from core.io.video import FrameRange
from studio.runs import run_synthetic, save_run
from studio.session import SessionStore
from ui.viewer_pool import ViewerPool


def resident_mb() -> float:
    """This process's resident memory (Linux ``/proc``), MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(sessions: int = 10, frames: int = 100, idle_seconds: float = 1.0, first_port: int = 8300) -> None:
    """Open ``sessions`` sessions in viewers, leave them, and measure the memory given back.

    Args:
        sessions: Sessions opened one after another.
        frames: Frames of each session's synthetic scene.
        idle_seconds: The pool's idle time before a left viewer is stopped.
        first_port: First port of the (unvisited) viewers.
    """
    result = run_synthetic(ReconstructionConfig(), lambda stage, fraction: None, frames)
    with tempfile.TemporaryDirectory() as root:
        store = SessionStore(Path(root))
        folders = [save_run(store, f"run {i}", result, FrameRange()).directory for i in range(sessions)]
        for folder in folders:
            store.release(folder)  # as after a restart: every open reads its session from disk
        del result
        pool = ViewerPool(store, "127.0.0.1", first_port, idle_seconds=idle_seconds, keep=sessions)
        try:
            gc.collect()
            start = resident_mb()
            for i, folder in enumerate(folders):
                pool.open(folder, shown_by=f"tab {i}")
            gc.collect()
            opened, viewers = resident_mb(), len(pool)
            for i in range(sessions):
                pool.leave(f"tab {i}")  # the tabs are closed
            time.sleep(idle_seconds)
            released = pool.release_idle()
            gc.collect()
            left = resident_mb()
        finally:
            pool.close()
    print(f"start: {start:.0f} MB resident")
    print(f"{viewers} viewers open: {opened:.0f} MB (+{opened - start:.0f} MB)")
    print(f"{len(released)} sessions released, {len(pool)} viewers left: {left:.0f} MB")
    print(f"left after release: {100 * (left - start) / start:+.1f} % of the start")


if __name__ == "__main__":
    tyro.cli(main)
