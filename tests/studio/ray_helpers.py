"""What the Ray tests share: the demo clips they need, comparing two runs' results, finding the processes
running a task."""

from pathlib import Path

import numpy as np
import pytest

from core.reconstruction import Reconstruction
from studio.assets import examples_directory

needs_demo_clips = pytest.mark.skipif(
    not (examples_directory() / "Demo_MultiPerson" / "videos").is_dir(),
    reason="example clips not installed (python -m studio assets)",
)


def assert_same(first: Reconstruction, second: Reconstruction) -> None:
    """The same persons, frames, joints (to float noise of other thread counts) and assignment."""
    assert [p.person_id for p in first.persons] == [p.person_id for p in second.persons]
    for a, b in zip(first.persons, second.persons, strict=True):
        np.testing.assert_array_equal(a.frames, b.frames)
        np.testing.assert_allclose(a.joints, b.joints, atol=1e-5)
    for field in ("view", "tracklet", "frame_start", "frame_end", "person"):
        np.testing.assert_array_equal(getattr(first.assignment, field), getattr(second.assignment, field))
    assert first.diagnostics.scale_factor == pytest.approx(second.diagnostics.scale_factor, abs=1e-9)


def task_processes(task: str) -> list[int]:
    """Processes Ray titled with the task's name (``ray::<task>``) while they run it."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if command.startswith(f"ray::{task}".encode()):
            found.append(int(entry.name))
    return found
