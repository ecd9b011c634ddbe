"""The sequences of a batch, found in a folder of sequence folders or read from a manifest (CSV or JSONL).

A sequence folder holds its clips (directly or in ``videos/``), optionally a calibration (directly or in
``calibration/``), optionally another detector's keypoints (``keypoints/`` or ``pose/``: per camera
``<camera>_json/``), or a ``sequence.json`` that says all of it as a manifest row does. A manifest row
names ``videos`` (a list, a folder, or in CSV paths joined by ``;``), ``calibration``, ``keypoints``,
``example`` (a built-in example instead of files), ``frames`` (``START:STOP:STEP``), ``fps`` (of the
keypoints), ``name`` and settings by their dotted path (CSV: a column each; JSONL: a ``settings`` object).
Paths are relative to the manifest's folder.

What is wrong with one sequence (a file it names is missing, a setting it cannot take) is kept as that
sequence's ``problem``: it fails alone and the others go on. What makes the batch itself impossible (no
sequences, two with one name, a name that cannot be a folder) is a :class:`SourceError`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.io.calibration import holds_calibration
from core.io.video import CLIP_SUFFIXES, FrameRange
from studio.runs import POSE2SIM_EXAMPLES, SYNTHETIC
from studio.settings import Setting, config_from_values

ROW_KEYS = ("name", "videos", "calibration", "keypoints", "example", "frames", "fps", "settings")
SEQUENCE_FILE = "sequence.json"
DETECTION_FOLDERS = ("keypoints", "pose")
EXAMPLE_NAMES = {"synthetic": SYNTHETIC, **{name: name for name in POSE2SIM_EXAMPLES}}
"""What a row's ``example`` may name: the page's examples, the synthetic scene by a short name."""
_NAME = re.compile(r"[A-Za-z0-9][\w.+-]*")


class SourceError(InputError):
    """A batch source that gives no batch to run (the message names the file or folder)."""


@dataclass(frozen=True)
class BatchSequence:
    """One recording to reconstruct: what a Ray task receives."""

    name: str
    """Folder of its results under the batch's output."""
    origin: str
    """Where it was found (``DIR/`` or ``manifest.csv, row 3``), for messages."""
    videos: tuple[Path, ...] = ()
    calibration: Path | None = None
    keypoints: Path | None = None
    example: str | None = None
    """A built-in example (a key of ``EXAMPLE_NAMES``) instead of files."""
    frames: str = "::"
    fps: float = 30.0
    """Frame rate of the keypoint files (with ``keypoints``)."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Dotted config paths → values, over the batch's settings."""
    problem: str | None = None
    """Why it cannot run (it then fails without being started), or None."""

    @property
    def files(self) -> tuple[Path, ...]:
        """Every input path the sequence names."""
        return (*self.videos, *(p for p in (self.calibration, self.keypoints) if p is not None))


def find_sequences(source: Path, skip: Path | None = None) -> list[BatchSequence]:
    """The sequences of ``source`` (a folder of sequence folders, or a ``.csv`` / ``.jsonl`` manifest),
    leaving out ``skip`` (the output folder, when it lies inside ``source``).

    Raises:
        SourceError: no such source, no sequence in it, a name twice or unusable as a folder name.
    """
    source = Path(source).absolute()
    if source.is_file():
        suffix = source.suffix.lower()
        if suffix not in (".csv", ".jsonl"):
            raise SourceError(f"{source}: a manifest is a .csv or .jsonl file")
        rows = _csv_rows(source) if suffix == ".csv" else _jsonl_rows(source)
        sequences = [_from_row(row, source.parent, f"{source.name}, row {n}") for n, row in rows]
    elif source.is_dir():
        folders = [p for p in sorted(source.iterdir()) if p.is_dir() and not p.name.startswith((".", "_"))]
        skipped = skip.resolve() if skip is not None else None
        sequences = [_from_folder(p) for p in folders if p.resolve() != skipped]
    else:
        raise SourceError(f"{source}: no such folder or manifest")
    if not sequences:
        raise SourceError(
            f"{source}: no sequences (expected sequence folders holding clips or videos/, "
            "or a manifest with one row per sequence)"
        )
    _check_names(sequences)
    return sequences


def _check_names(sequences: list[BatchSequence]) -> None:
    seen: dict[str, str] = {}
    for sequence in sequences:
        if not _NAME.fullmatch(sequence.name):
            raise SourceError(
                f"{sequence.origin}: name {sequence.name!r} cannot be a folder name "
                "(letters, digits, '.', '_', '+', '-'; not starting with a dot)"
            )
        if sequence.name in seen:
            raise SourceError(
                f"{seen[sequence.name]} and {sequence.origin} are both named {sequence.name!r}; "
                "give them distinct names (their results would share a folder)"
            )
        seen[sequence.name] = sequence.origin


def _from_folder(folder: Path) -> BatchSequence:
    origin = f"{folder}/"
    if (folder / SEQUENCE_FILE).is_file():
        rows = _json_objects(folder / SEQUENCE_FILE, [(1, (folder / SEQUENCE_FILE).read_text())])
        return _from_row({"name": folder.name, **rows[0][1]}, folder, f"{folder / SEQUENCE_FILE}")
    clips = _clips_in(folder) or _clips_in(folder / "videos")
    calibration = next((p for p in (folder / "calibration", folder) if holds_calibration(p)), None)
    keypoints = next((folder / d for d in DETECTION_FOLDERS if (folder / d).is_dir()), None)
    sequence = BatchSequence(folder.name, origin, tuple(clips), calibration, keypoints)
    if not clips and keypoints is None:
        problem = (
            f"{origin}: no clips ({', '.join(CLIP_SUFFIXES)}) in it or in videos/, "
            f"and no detections in {' or '.join(d + '/' for d in DETECTION_FOLDERS)}"
        )
        return replace(sequence, problem=problem)
    return _with_problem(sequence)


def _clips_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in CLIP_SUFFIXES)


def _csv_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        with path.open(newline="") as file:
            reader = csv.DictReader(file, skipinitialspace=True)
            raw = list(reader)
            columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise SourceError(f"{path}: unreadable manifest ({error})") from error
    settings = [c for c in columns if c not in ROW_KEYS]
    try:
        kinds = {column: Setting(column).kind for column in settings}
    except InputError as error:
        expected = ", ".join(ROW_KEYS)
        raise SourceError(f"{path}: a column is neither {expected} nor a setting ({error})") from None
    rows = []
    for n, record in enumerate(raw, 2):  # row 1 is the header
        row = {
            k: v.strip() for k, v in record.items() if k in ROW_KEYS and k != "settings" and v and v.strip()
        }
        if "videos" in row:
            row["videos"] = [p.strip() for p in row["videos"].split(";") if p.strip()]
        row["settings"] = {
            c: _csv_value(c, kinds[c], record[c]) for c in settings if (record[c] or "").strip()
        }
        rows.append((n, row))
    return rows


def _csv_value(path: str, kind: str, text: str) -> Any:
    """A CSV cell as the value a widget would give (CSV has no booleans)."""
    text = text.strip()
    if kind == "flag":
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise SourceError(f"{path}: {text!r} is not true or false")
        return text.lower() in ("true", "1", "yes")
    return text


def _jsonl_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise SourceError(f"{path}: unreadable manifest ({error})") from error
    return _json_objects(path, [(n, line) for n, line in enumerate(lines, 1) if line.strip()])


def _json_objects(path: Path, lines: Iterable[tuple[int, str]]) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for n, line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise SourceError(f"{path}, line {n}: not JSON ({error})") from error
        if not isinstance(row, dict):
            raise SourceError(f"{path}, line {n}: a row is a JSON object")
        unknown = sorted(set(row) - set(ROW_KEYS))
        if unknown:
            raise SourceError(
                f"{path}, line {n}: unknown keys {', '.join(unknown)}; "
                f"a row has {', '.join(ROW_KEYS)} (settings by their dotted path inside 'settings')"
            )
        rows.append((n, row))
    return rows


def _from_row(row: Mapping[str, Any], base: Path, origin: str) -> BatchSequence:
    """A manifest row as a sequence; what is wrong with it becomes its ``problem``."""
    videos = row.get("videos") or []
    videos = [videos] if isinstance(videos, str) else list(videos)
    paths = [base / p for p in videos]
    if len(paths) == 1 and paths[0].is_dir():
        paths = _clips_in(paths[0])
    calibration = base / row["calibration"] if row.get("calibration") else None
    keypoints = base / row["keypoints"] if row.get("keypoints") else None
    example = row.get("example") or None
    name = str(
        row.get("name") or example or (paths[0].parent.name if paths else keypoints.name if keypoints else "")
    )
    sequence = BatchSequence(
        name=name,
        origin=origin,
        videos=tuple(paths),
        calibration=calibration,
        keypoints=keypoints,
        example=example,
        frames=str(row.get("frames") or "::"),
        fps=float(row.get("fps") or 30.0),
        settings=dict(row.get("settings") or {}),
    )
    return _with_problem(sequence)


def _with_problem(sequence: BatchSequence) -> BatchSequence:
    problem = None
    missing = [p for p in sequence.files if not p.exists()]
    if missing:
        problem = f"{sequence.origin}: no such file: {', '.join(map(str, missing))}"
    elif sequence.example is None and not sequence.videos and sequence.keypoints is None:
        problem = f"{sequence.origin}: names no videos, keypoints or example"
    elif sequence.example is not None and sequence.example not in EXAMPLE_NAMES:
        problem = (
            f"{sequence.origin}: unknown example {sequence.example!r}; one of {', '.join(EXAMPLE_NAMES)}"
        )
    else:
        try:
            FrameRange.parse(sequence.frames)
            config_from_values(sequence.settings)
        except InputError as error:
            problem = f"{sequence.origin}: {error}"
    return replace(sequence, problem=problem)
