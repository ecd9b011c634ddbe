"""The batch driver: one Ray task per sequence, results written as they arrive, a bar over sequences.

At most ``workers`` tasks are in flight, so that "running" on the bar is what runs and a full output disk
stops the batch with little work lost. A task whose worker dies is retried by Ray; one that still fails
is recorded as failed like bad input, and the other sequences go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from core.config import ReconstructionConfig
from studio.batch.outputs import OutputDiskFull, remove_abandoned_writes, status, write_outcome
from studio.batch.ray_cluster import RayCluster
from studio.batch.report import table_rows, write_table
from studio.batch.sequences import BatchSequence
from studio.batch.work import SequenceError, SequenceOutcome, reconstruct_sequence

POLL_S = 1.0
"""How often the bar refreshes while no task ends."""


@dataclass(frozen=True)
class BatchOptions:
    address: str | None = None
    """A running cluster (auto, HOST:PORT, ray://HOST:PORT); None: a local Ray on this machine."""
    workers: int | None = None
    """Sequences in flight at once; None: as many as the cluster has room for."""
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    retry_failed: bool = False
    """Run again the sequences that failed before (finished ones are always skipped)."""
    retries: int = 3
    """Times Ray runs a task again when its worker dies."""


@dataclass
class BatchResult:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Finished (or failed, without ``retry_failed``) in an earlier run."""
    rows: list[dict] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    """The table and plot written."""


def run_batch(
    sequences: list[BatchSequence], out: Path, config: ReconstructionConfig, options: BatchOptions
) -> BatchResult:
    """Reconstruct every sequence not finished yet into ``out/<name>/``; the table of all of them."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_abandoned_writes(out)
    result = BatchResult()
    todo = []
    for sequence in sequences:
        before = status(out, sequence.name)
        if before == "done" or (before == "failed" and not options.retry_failed):
            result.skipped.append(sequence.name)
        else:
            todo.append(sequence)
    runnable = [s for s in todo if s.problem is None]
    for sequence in todo:  # bad input fails here, without a task
        if sequence.problem is not None:
            write_outcome(out, sequence, reconstruct_sequence(sequence, config))
            result.failed.append(sequence.name)
    if runnable:
        with RayCluster(options.address) as cluster:
            _run_tasks(cluster, runnable, out, config, options, result)
    result.rows = table_rows(out, sequences)
    result.files = write_table(out, result.rows)
    return result


def _run_tasks(
    cluster: RayCluster,
    sequences: list[BatchSequence],
    out: Path,
    config: ReconstructionConfig,
    options: BatchOptions,
    result: BatchResult,
) -> None:
    ray = cluster.ray
    workers = options.workers or cluster.capacity(options.cpus_per_task, options.gpus_per_task)
    task = cluster.remote(reconstruct_sequence, options.cpus_per_task, options.gpus_per_task, options.retries)
    device = "cuda" if options.gpus_per_task > 0 else "cpu"
    waiting, in_flight = list(reversed(sequences)), {}
    with tqdm(total=len(sequences), unit="seq", desc="sequences", mininterval=POLL_S) as bar:
        try:
            while waiting or in_flight:
                while waiting and len(in_flight) < workers:
                    sequence = waiting.pop()
                    in_flight[task.remote(sequence, config, device)] = sequence
                bar.set_postfix(done=len(result.done), failed=len(result.failed), running=len(in_flight))
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    sequence = in_flight.pop(ref)
                    state = write_outcome(out, sequence, _outcome(ray, ref, sequence))
                    (result.done if state == "done" else result.failed).append(sequence.name)
                    bar.update()
            bar.set_postfix(done=len(result.done), failed=len(result.failed), running=0)
        except (OutputDiskFull, KeyboardInterrupt):
            for ref in in_flight:
                ray.cancel(ref, force=True)
            raise


def _outcome(ray, ref, sequence: BatchSequence) -> SequenceOutcome:
    """The task's outcome, or a failure saying how Ray gave up on it (its worker died every time)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return SequenceOutcome(sequence.name, None, SequenceError(type(error).__name__, message), 0.0, None)
