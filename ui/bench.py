"""``python -m ui.bench``: how fast the viewer scrubs and how fast an identity edit shows.

The synthetic example (3 persons, 4 views, 100 frames, Anny bodies) is reconstructed into a temporary
session and opened in a viewer. Then: every frame is shown once (the server-side cost of a frame
change: vertex arrays swapped into existing nodes and queued to the clients), and a series of edits is
applied, each timed from the click to the updated scene (re-fusion, warm-started re-fit of the touched
persons, re-posing, saving). Prints one line per figure.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import tyro

from core.engine.editing import IdentityEdit
from studio.runs import RunSettings, run_synthetic
from studio.session import Session
from ui.viewer import SessionViewer


def main(port: int = 8099, frames: int = 100) -> None:
    """Benchmark scrubbing and identity edits on the synthetic example.

    Args:
        port: Port of the (unvisited) viewer.
        frames: Frames of the synthetic scene.
    """
    result = run_synthetic(RunSettings(), lambda stage, fraction: None, frames=frames)
    with tempfile.TemporaryDirectory() as root:
        session = Session.create(Path(root), "bench", result.reconstruction)
        viewer = SessionViewer(session, port=port)
        try:
            persons = len(session.current.persons)
            seconds = []
            for frame in range(session.current.num_frames):
                start = time.perf_counter()
                viewer.show_frame(frame)
                seconds.append(time.perf_counter() - start)
            ms = 1000 * np.array(seconds)
            print(f"frame change, {persons} persons: mean {ms.mean():.1f} ms, max {ms.max():.1f} ms")
            assignment = session.current.assignment
            piece = int(np.flatnonzero(assignment.view == 0)[0])
            middle = int((assignment.frame_start[piece] + assignment.frame_end[piece]) // 2)
            edits = [
                ("split a piece", IdentityEdit("split", piece=piece, frame=middle)),
                ("reassign it to a new person", IdentityEdit("reassign", piece=len(assignment), person=-1)),
                ("merge the new person back", IdentityEdit("merge", person=persons, other=0)),
                ("swap two persons from a frame on", IdentityEdit("swap", person=0, other=1, frame=middle)),
            ]
            for label, edit in edits:
                start = time.perf_counter()
                viewer.edit(edit)
                print(f"{label}: {time.perf_counter() - start:.2f} s")
            start = time.perf_counter()
            viewer.undo()
            print(f"undo the swap: {time.perf_counter() - start:.2f} s")
        finally:
            viewer.stop()


if __name__ == "__main__":
    tyro.cli(main)
