"""``python -m studio bench-batch``: what Ray costs over a serial loop, and whether a worker's memory grows.

Both sides start cold: the serial loop runs in a fresh interpreter (imports and model loading included,
as a Ray worker pays them), timed from its start to its end; a Ray run is timed from ``ray.init`` to its
shutdown. The memory run keeps one worker for every sequence and reads its peak resident memory as each
sequence's ``summary.json`` records it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from core.config import ReconstructionConfig
from studio.batch.demo_cuts import write_cut
from studio.batch.runner import BatchOptions, run_batch
from studio.batch.sequences import find_sequences

DEMO_FRAMES = 100
"""Frames of Demo_MultiPerson's clips, which the cuts are taken from."""


@dataclass(frozen=True)
class BatchBench:
    frames: int = 24
    """Frames of each of the 4 short sequences of the overhead run."""
    sequences: int = 20
    """Sequences of the memory run."""
    workers: int = 2
    """Workers of the parallel run besides the one-worker run."""
    memory_frames: int = 12
    """Frames of each sequence of the memory run."""


def cuts(folder: Path, count: int, frames: int) -> Path:
    """``count`` sequence folders of ``frames`` frames each, spread over the demo clips."""
    starts = [round(i * (DEMO_FRAMES - frames) / max(1, count - 1)) for i in range(count)]
    for i, start in enumerate(starts):
        write_cut(folder / f"cut{i:02d}_{start:03d}", start, start + frames)
    return folder


def serial_loop(source: str) -> None:
    """Every sequence of ``source`` reconstructed one after the other in this process (the baseline)."""
    from studio.batch.work import reconstruct_sequence

    for sequence in find_sequences(Path(source)):
        outcome = reconstruct_sequence(sequence, ReconstructionConfig())
        if outcome.error is not None:
            raise SystemExit(f"{sequence.name}: {outcome.error.message}")


def _timed_serial(source: Path) -> float:
    start = time.perf_counter()
    code = f"from studio.batch.bench import serial_loop; serial_loop({str(source)!r})"
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def repeated(cut: Path, count: int, manifest: Path) -> Path:
    """A JSONL manifest naming ``cut`` ``count`` times: growth there is a leak, not a larger sequence."""
    row = {"videos": str(cut / "videos"), "calibration": str(cut / "calibration")}
    manifest.write_text("".join(json.dumps({"name": f"again{i:02d}", **row}) + "\n" for i in range(count)))
    return manifest


def _timed_batch(source: Path, out: Path, workers: int, cpus_per_task: float = 1.0) -> float:
    start = time.perf_counter()
    options = BatchOptions(workers=workers, cpus_per_task=cpus_per_task)
    result = run_batch(find_sequences(source), out, ReconstructionConfig(), options)
    if result.failed or result.skipped:
        raise RuntimeError(f"bench batch: failed {result.failed}, skipped {result.skipped}")
    return time.perf_counter() - start


def run_batch_bench(bench: BatchBench, out: Path | None = None) -> dict:
    """The overhead and memory figures (see the module's docstring), also saved as ``bench_batch.json``."""
    root = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="bench_batch_"))
    short = cuts(root / "short", 4, bench.frames)
    serial = _timed_serial(short)
    one = _timed_batch(short, root / "ray_one_worker", 1, cpus_per_task=os.cpu_count() or 1)
    parallel = _timed_batch(short, root / "ray_parallel", bench.workers)
    many = cuts(root / "many", bench.sequences, bench.memory_frames)
    again = repeated(next(iter(sorted(many.iterdir()))), bench.sequences, root / "repeated.jsonl")
    result = {
        "short_sequences": 4,
        "frames_per_sequence": bench.frames,
        "serial_loop_s": round(serial, 2),
        "ray_one_worker_s": round(one, 2),
        "ray_overhead_fraction": round((one - serial) / serial, 4),
        "parallel_workers": bench.workers,
        "ray_parallel_s": round(parallel, 2),
        "memory_sequences": bench.sequences,
        "memory_distinct": _memory_run(many, root / "ray_memory"),
        "memory_repeated": _memory_run(again, root / "ray_memory_repeated"),
        "results": str(root),
    }
    (root / "bench_batch.json").write_text(json.dumps(result, indent=1))
    return result


def _memory_run(source: Path, out: Path) -> dict:
    """One worker over every sequence of ``source``: its memory after each, as the summaries say."""
    _timed_batch(source, out, 1)
    workers = [
        json.loads((out / s.name / "summary.json").read_text())["worker"] for s in find_sequences(source)
    ]
    peak = [w["peak_rss_mb"] for w in workers]
    return {
        "one_worker_process": len({w["pid"] for w in workers}) == 1,
        "peak_rss_mb": peak,
        "private_mb": [w["private_mb"] for w in workers],
        "peak_rss_growth_after_2": round(peak[-1] / peak[1] - 1, 4),
    }


def format_batch_bench(result: dict) -> str:
    r, count = result, result["memory_sequences"]
    lines = [
        f"4 sequences of {r['frames_per_sequence']} frames: serial loop {r['serial_loop_s']} s, Ray with "
        f"1 worker {r['ray_one_worker_s']} s (overhead {100 * r['ray_overhead_fraction']:+.1f} %), "
        f"with {r['parallel_workers']} workers {r['ray_parallel_s']} s"
    ]
    for kind in ("distinct", "repeated"):
        m = r[f"memory_{kind}"]
        several = "" if m["one_worker_process"] else " (several processes!)"
        lines.append(
            f"{count} {kind} sequences on one worker{several}: peak RSS {m['peak_rss_mb'][1]} MB after 2, "
            f"{m['peak_rss_mb'][-1]} MB after {count} ({100 * m['peak_rss_growth_after_2']:+.1f} %); "
            f"private {m['private_mb'][1]} → {m['private_mb'][-1]} MB"
        )
    return "\n".join([*lines, f"results in {r['results']}"])
