"""A batch's output folder: ``DIR/<name>/`` per sequence, each appearing whole or not at all.

A finished sequence's folder holds the Reconstruction's files and ``summary.json``; a failed one's holds
``error.json`` only. Each is written by the driver (so a cluster's workers need no shared output disk)
in a hidden staging folder renamed into place; a rerun finds the finished ones by their summary.
"""

from __future__ import annotations

import errno
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Literal

from core.errors import InputError
from core.staging import remove_abandoned, replace_folder, staging_path
from studio.batch.sequences import BatchSequence
from studio.batch.work import SequenceOutcome
from studio.summary import summarize

SUMMARY = "summary.json"
ERROR = "error.json"
Status = Literal["done", "failed"]


class OutputDiskFull(InputError):
    """The output folder's disk filled while a result was written (what was finished is kept)."""


def status(out: Path, name: str) -> Status | None:
    """What a sequence's folder says of it: done, failed, or nothing yet."""
    folder = Path(out) / name
    if (folder / SUMMARY).is_file():
        return "done"
    return "failed" if (folder / ERROR).is_file() else None


def read_record(out: Path, name: str) -> dict:
    """The sequence's ``summary.json`` or ``error.json``, whichever it has."""
    folder = Path(out) / name
    path = folder / (SUMMARY if (folder / SUMMARY).is_file() else ERROR)
    return json.loads(path.read_text())


def remove_abandoned_writes(out: Path) -> list[Path]:
    """Clear what writes killed midway left in ``out`` (staging folders of processes that are gone)."""
    return remove_abandoned(Path(out))


def write_outcome(out: Path, sequence: BatchSequence, outcome: SequenceOutcome) -> Status:
    """Write the sequence's results (or its error) to ``out/<name>/`` atomically; the status written.

    Raises:
        OutputDiskFull: the disk filled; the folder is left as it was before.
    """
    target = Path(out) / sequence.name
    staged = staging_path(target, "batch")
    try:
        staged.mkdir(parents=True)
        record = _record(sequence, outcome)
        if outcome.error is None:
            outcome.reconstruction.write_files(staged)
        _write_json(staged / (SUMMARY if outcome.error is None else ERROR), record)
        replace_folder(staged, target)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OutputDiskFull(
                f"{out}: the disk is full (writing {sequence.name}); the sequences finished so far are "
                "kept: free some space and run the batch again, it goes on where it stopped"
            ) from error
        raise
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return "done" if outcome.error is None else "failed"


def _record(sequence: BatchSequence, outcome: SequenceOutcome) -> dict:
    run = {
        "sequence": sequence.name,
        "origin": sequence.origin,
        "inputs": [str(p) for p in sequence.files] or [sequence.example],
        "frame_range": sequence.frames,
        "settings": dict(sequence.settings),
        "seconds": round(outcome.seconds, 3),
        "worker": asdict(outcome.worker) if outcome.worker else None,
    }
    if outcome.error is not None:
        return {**run, "error": outcome.error.to_dict()}
    return {**run, **summarize(outcome.reconstruction), "ground_truth": outcome.ground_truth}


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=1, default=str))
