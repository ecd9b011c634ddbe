"""``python -m ui.bench``: the viewer's memory, how fast it scrubs and how fast an identity edit shows.

The synthetic example (3 persons, 4 views, ``--frames`` frames, Anny bodies) is reconstructed into a
temporary session, with a stand-in clip per view (the frame number on grey, a quarter of the camera's
size, a keyframe every 2 s) so that the viewer decodes thumbnails as for a real capture; or
``--session`` names an existing session, copied first (it is edited). Then:

- the viewer's memory: a fresh process opens the session's viewer, a headless browser connects (a
  websocket client that the server counts as a browser and that reads every message), every frame is
  shown with its thumbnails; the process's peak resident memory (``ru_maxrss``) is printed;
- the server-side cost of a frame change (vertex arrays swapped into existing nodes, queued to the
  clients);
- identity edits, each timed from the call to the saved session (re-fusion of the frames it changed,
  warm-started re-fit around them, saving; with the process's CPU time, which on shared cores tells
  what the wall time would be on idle ones) and to the updated scene (re-posing): a piece of about 100
  frames (or a tenth of the clip if shorter) reassigned to another person and back, to a new person,
  then a swap from the middle of the clip on and a merge (edits that change half or all of it).
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import resource
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import numpy as np
import tyro
import viser
from viser._messages import ViewerCameraMessage
from websockets.sync.client import connect

from core.config import ReconstructionConfig
from core.engine.editing import IdentityEdit, Merge, Reassign, Split, Swap
from studio.runs import run_synthetic
from studio.session import SessionStore
from studio.stand_in_clips import with_stand_in_clips
from ui.viewer import SessionViewer

_PIECE_FRAMES = 100
_CLIP_SCALE = 4
"""Stand-in clips are the camera's size divided by this."""
_WAIT_S = 60.0


def main(frames: int = 100, session: Path | None = None, port: int = 8099, threads: int = 0) -> None:
    """Benchmark the viewer's memory, scrubbing and identity edits.

    Args:
        frames: Frames of the synthetic scene (ignored with ``session``).
        session: An existing session folder to benchmark instead of the synthetic example (copied).
        port: Port of the viewers (two in turn: this one and the next).
        threads: Torch threads for the fits (0: torch's default). On cores shared with other work, 1
            keeps torch's thread pool from waiting on threads that are not running (with 2, a fit
            took up to 25 times as long).
    """
    if threads:
        import torch

        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as root:
        directory = Path(root) / "bench"
        if session is None:
            result = run_synthetic(ReconstructionConfig(), lambda stage, fraction: None, frames=frames)
            reconstruction = with_stand_in_clips(result.reconstruction, Path(root), _CLIP_SCALE)
            directory = SessionStore(Path(root)).create("bench", reconstruction).directory
        else:
            shutil.copytree(session, directory)
        _viewer_memory(directory, port)
        _edits(SessionStore(Path(root)).open(directory), port + 1)


@contextlib.contextmanager
def headless_client(url: str) -> Iterator[None]:
    """A browser stand-in connected to the Viser server at ``url`` (``http://host:port``) until the
    block ends: it sends the camera message that makes the server count it as a client, and reads
    (and drops) every message the server sends."""
    socket = connect(
        url.replace("http://", "ws://"), subprotocols=[f"viser-v{viser.__version__}"], max_size=None
    )
    camera = ViewerCameraMessage(
        (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 5.0), 1.0, 0.01, 100.0, 480, 640, (0.0, 0.0, 0.0), (0.0, 0.0, 1.0)
    )
    socket.send(msgspec.msgpack.encode(camera.as_serializable_dict()))

    def read() -> None:
        with contextlib.suppress(Exception):  # until the connection closes
            while True:
                socket.recv()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield
    finally:
        socket.close()
        reader.join()


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + _WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {_WAIT_S:.0f} s for {what}")
        time.sleep(0.002)


def _viewer_memory(directory: Path, port: int) -> None:
    """Print the peak memory of a fresh process that shows every frame of the session's viewer."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_scrub_in_fresh_process, args=(directory, port, results))
    child.start()
    frames, views, seconds, peak_mb = results.get()
    child.join()
    print(
        f"viewer process, {frames} frames × {views} views, every frame shown with its thumbnails "
        f"in {seconds:.1f} s: peak memory {peak_mb:.0f} MB"
    )


def _scrub_in_fresh_process(directory: Path, port: int, results) -> None:
    viewer = SessionViewer(SessionStore(directory.parent).open(directory), port=port)
    try:
        with headless_client(viewer.url):
            _until(lambda: viewer.server.get_clients(), "the headless client")
            rec = viewer.reconstruction
            start = time.perf_counter()
            for frame in range(rec.num_frames):
                viewer.show_frame(frame)
                _until(functools.partial(_decoded, viewer, frame), f"frame {frame}'s thumbnails")
            seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
        results.put((rec.num_frames, len(rec.cameras), seconds, peak_mb))
    finally:
        viewer.stop()


def _decoded(viewer: SessionViewer, frame: int) -> bool:
    return viewer._thumbnails is not None and viewer._thumbnails.get(frame) is not None


def _edits(session, port: int) -> None:
    """Print the cost of a frame change and of a series of identity edits."""
    viewer = SessionViewer(session, port=port)
    try:
        rec = session.current
        seconds = []
        for frame in range(rec.num_frames):
            start = time.perf_counter()
            viewer.show_frame(frame)
            seconds.append(time.perf_counter() - start)
        ms = 1000 * np.array(seconds)
        print(f"frame change, {len(rec.persons)} persons: mean {ms.mean():.1f} ms, max {ms.max():.1f} ms")
        first, second = (p.person_id for p in rec.persons[:2])
        a = rec.assignment
        rows = np.flatnonzero(a.person == first)
        piece = int(rows[np.argmax(a.frame_end[rows] - a.frame_start[rows])])  # its longest
        start, end = int(a.frame_start[piece]), int(a.frame_end[piece])
        length = min(_PIECE_FRAMES, max((end - start + 1) // 10, 2))
        cut = (start + end - length) // 2
        middle = rec.num_frames // 2
        _timed(viewer, f"split a piece of person {first} at frame {cut}", Split(piece, cut))
        _timed(viewer, f"split it again at frame {cut + length}", Split(len(a), cut + length))
        _timed(viewer, f"reassign its {length}-frame part to person {second}", Reassign(len(a), second))
        _timed(viewer, "undo that", None)
        _timed(viewer, f"reassign the {length}-frame part to a new person", Reassign(len(a)))
        _timed(viewer, "undo that", None)
        _timed(
            viewer, f"swap persons {first} and {second} from frame {middle} on", Swap(first, second, middle)
        )
        _timed(viewer, f"merge person {second} into {first}", Merge(second, first))
    finally:
        viewer.stop()


def _timed(viewer: SessionViewer, label: str, edit: IdentityEdit | None) -> None:
    """Apply ``edit`` (undo if None) through the viewer; print the time to the saved session and to
    the updated scene."""
    saved = []

    def action():
        start, cpu = time.perf_counter(), time.process_time()
        affected = viewer.session.undo() if edit is None else viewer.session.edit(edit)
        saved.append((time.perf_counter() - start, time.process_time() - cpu))
        return affected

    start = time.perf_counter()
    status = viewer._run(action, label)
    shown = time.perf_counter() - start
    if not saved or status.startswith("not done"):
        raise RuntimeError(f"{label}: {status}")
    print(f"{label}: saved in {saved[0][0]:.2f} s ({saved[0][1]:.2f} s of CPU), shown in {shown:.2f} s")


if __name__ == "__main__":
    tyro.cli(main)
