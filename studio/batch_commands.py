"""``python -m studio batch | bench-batch``: many sequences on Ray (imported by the commands, not here)."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path

from tyro.conf import Positional

from core.config import ReconstructionConfig

_DEFAULT_CONFIG = ReconstructionConfig()


def batch(
    source: Positional[Path],
    out: Path,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_task: float = 1.0,
    gpus_per_task: float = 0.0,
    retry_failed: bool = False,
    retries: int = 3,
    config: ReconstructionConfig = _DEFAULT_CONFIG,
) -> None:
    """Reconstruct many sequences, one Ray task each, on this machine or a Ray cluster.

    Each sequence is written whole to OUT/<name>/ (the reconstruction and summary.json), or its error to
    OUT/<name>/error.json; a rerun skips the finished ones. OUT/batch.csv, batch.json and batch.png
    tabulate them all.

    Args:
        source: A folder of sequence folders (clips or videos/, a calibration or calibration/, keypoints/
            or pose/ with another detector's files, or a sequence.json), or a manifest (.csv or .jsonl:
            name, videos, calibration, keypoints, example, frames, fps and settings by dotted path).
        out: Folder of the results.
        address: A running Ray cluster (auto, HOST:PORT of `ray start --head`, or ray://HOST:10001);
            without one a local Ray is started on this machine. Inputs must be readable at the same paths
            on every node (a shared disk); results come back to this machine.
        workers: Sequences reconstructed at once (default: as many as the cluster's CPUs and GPUs allow).
        cpus_per_task: CPUs each sequence's task reserves.
        gpus_per_task: GPUs each task reserves (> 0: the networks and the body fit run on CUDA).
        retry_failed: Also run again the sequences that failed before.
        retries: Times a task is run again when its worker dies.
        config: Settings of every stage, for every sequence (a manifest's settings override them).
    """
    from studio.batch.report import format_rows
    from studio.batch.runner import BatchOptions, run_batch
    from studio.batch.sequences import find_sequences

    sequences = find_sequences(source, skip=out)
    options = BatchOptions(address, workers, cpus_per_task, gpus_per_task, retry_failed, retries)
    result = run_batch(sequences, out, config, options)
    print(format_rows(result.rows))
    skipped = f", {len(result.skipped)} skipped (finished or failed before)" if result.skipped else ""
    print(f"{len(result.done)} done, {len(result.failed)} failed{skipped}; table in {result.files[0]}")


def bench_batch(
    frames: int = 24, sequences: int = 20, workers: int = 2, out: Path | None = None, json: bool = False
) -> None:
    """Benchmark the batch runner on cuts of the demo clips: Ray's overhead against a serial loop over
    4 short sequences, and a worker's memory over many sequences.

    Args:
        frames: Frames per short sequence.
        sequences: Sequences of the memory run (one worker).
        workers: Ray workers of the overhead run besides the one-worker run.
        out: Folder for the runs' results (default: a temporary folder).
        json: Print one JSON object instead of lines.
    """
    from studio.batch.bench import BatchBench, format_batch_bench, run_batch_bench

    result = run_batch_bench(BatchBench(frames, sequences, workers), out)
    print(jsonlib.dumps(result, indent=1) if json else format_batch_bench(result))
