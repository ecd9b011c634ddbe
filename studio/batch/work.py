"""One sequence reconstructed: the body of a batch's Ray task, also callable in-process (serial loops).

It never raises for the sequence's own faults: an error comes back as data (type, message, the file at
fault), so that Ray retries only what is worth retrying (a worker that died), not bad input.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import platform
import resource
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from core.config import ReconstructionConfig
from core.errors import InputError
from core.io.video import FrameRange
from core.reconstruction import Reconstruction, ReconstructionFormatError
from studio.batch.sequences import EXAMPLE_NAMES, BatchSequence
from studio.runs import run_example
from studio.settings import config_from_values


@dataclass(frozen=True)
class SequenceError:
    """Why a sequence failed, as ``error.json`` and the batch table say it."""

    type: str
    message: str
    file: str | None = None
    """The input file at fault, where the error names one."""
    traceback: str | None = None
    """Only for an internal error (a bug), not for bad input."""

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class WorkerStats:
    """Where a sequence ran and what memory its process held after it (to watch for growth)."""

    host: str
    pid: int
    rss_mb: float
    """Resident memory after the sequence (shared pages included: Ray's object store maps into it)."""
    private_mb: float
    """The part of it that is this process's own."""
    peak_rss_mb: float
    """The process's peak resident memory so far."""


@dataclass(frozen=True)
class SequenceOutcome:
    name: str
    reconstruction: Reconstruction | None
    error: SequenceError | None
    seconds: float
    worker: WorkerStats | None
    """None where the worker died before it could say."""
    ground_truth: dict | None = None
    """Ground-truth metrics (the synthetic example)."""


def reconstruct_sequence(
    sequence: BatchSequence, config: ReconstructionConfig, device: str = "cpu"
) -> SequenceOutcome:
    """Reconstruct ``sequence`` with ``config`` overridden by its own settings, on ``device``."""
    bound_heap_growth()
    start = time.perf_counter()
    reconstruction, error, ground_truth = None, None, None
    try:
        if sequence.problem is not None:
            raise InputError(sequence.problem)
        reconstruction, ground_truth = _reconstruct(
            sequence, config_from_values(sequence.settings, config), device
        )
    except (InputError, ReconstructionFormatError) as bad_input:
        error = SequenceError(
            type(bad_input).__name__, str(bad_input), _file_at_fault(sequence, str(bad_input))
        )
    except Exception as bug:  # recorded for this sequence; the batch goes on
        error = SequenceError(type(bug).__name__, f"internal error: {bug}", traceback=traceback.format_exc())
    release_freed_memory()
    return SequenceOutcome(
        sequence.name, reconstruction, error, time.perf_counter() - start, worker_stats(), ground_truth
    )


def _reconstruct(
    sequence: BatchSequence, config: ReconstructionConfig, device: str
) -> tuple[Reconstruction, dict | None]:
    frames = FrameRange.parse(sequence.frames)
    if sequence.example is not None:
        result = run_example(EXAMPLE_NAMES[sequence.example], config, frames, _no_progress)
        return result.reconstruction, result.ground_truth
    if sequence.keypoints is not None:
        from core.engine.keypoint_pipeline import reconstruct_from_keypoints

        reconstruction = reconstruct_from_keypoints(
            sequence.keypoints,
            sequence.calibration,
            sequence.videos,
            fps=sequence.fps,
            frames=frames,
            config=config,
            device=device,
        )
        return reconstruction, None
    from core.engine.video_pipeline import reconstruct_from_videos

    return reconstruct_from_videos(sequence.videos, sequence.calibration, frames, config, device=device), None


def _no_progress(stage: str, fraction: float) -> None:
    """A task reports its end, not its stages."""


def _file_at_fault(sequence: BatchSequence, message: str) -> str | None:
    """The input path the message names (the longest, so a clip wins over its folder)."""
    named = [str(p) for p in sequence.files if str(p) in message]
    return max(named, key=len) if named else None


def worker_stats() -> WorkerStats:
    """This process's host, pid, resident, private and peak resident memory (Linux: /proc, ru_maxrss)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    memory = _smaps_rollup()
    rss = memory.get("Rss", peak * 1024) / 1024
    private = (memory.get("Private_Clean", 0) + memory.get("Private_Dirty", 0)) / 1024 if memory else rss
    return WorkerStats(platform.node(), os.getpid(), round(rss, 1), round(private, 1), round(peak, 1))


def _smaps_rollup() -> dict[str, int]:
    """``/proc/self/smaps_rollup`` in KiB by field; empty where there is none (not Linux)."""
    try:
        lines = Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]
    except OSError:
        return {}
    return {name.rstrip(":"): int(value) for name, value, *_ in (line.split() for line in lines)}


M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8
"""glibc's ``mallopt`` parameters (malloc.h)."""


@functools.cache
def bound_heap_growth() -> None:
    """Keep a worker that runs sequence after sequence from growing (once per process; glibc only).

    glibc serves a freed large block's size from its heap afterwards (its mmap threshold rises up to
    32 MB), so the frames and arrays of each sequence fragment the heap: a worker's peak memory rose by
    15 % over 20 runs of one same sequence. A fixed threshold of 4 MB keeps every frame in its own
    mapping, returned when freed (glibc's 128 kB default costs about 10 % in page faults), and two arenas
    keep the detector's threads from holding one each.
    """
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, 4 * 2**20)
        libc.mallopt(M_ARENA_MAX, 2)


def release_freed_memory() -> None:
    """Hand the heap's freed pages back to the system after a sequence."""
    gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc
        return None
