"""Identity correction: an annotator's edits of who is who, and the re-fusion of the persons they touch.

The assignment (which person each (view, tracklet, frame span) piece feeds) is the only thing an
annotator edits. An edit is a small frozen record, one class per kind, applied by a pure function, so
that a session is its original run plus a list of edits: undo is replaying one edit fewer, and a saved
session reopens exactly as left. Pieces are named by their row in the assignment; an edit never
reorders rows (a split keeps the first part in place and appends the second), so replaying the same
edits gives the same rows. Person ids are never renumbered: a person emptied by a merge or a reassign
disappears, a new person takes the next unused id, and every other person keeps its id and colour.

What an edit changes downstream (re-fusing and re-fitting the persons it touched) is
``core.engine.refusion``'s job.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import ClassVar

import numpy as np

from core.errors import InputError
from core.types import Assignment


class EditError(InputError):
    """An edit that does not apply to the assignment (a piece or person that is not there, a frame
    outside the piece)."""


class _Record:
    """What every edit record shares: its ``kind`` (the key of its JSON form)."""

    kind: ClassVar[str]

    def to_json(self) -> dict:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class Reassign(_Record):
    """Piece ``piece`` now feeds ``person`` (None: a new person, the next unused id)."""

    piece: int
    person: int | None = None
    kind: ClassVar[str] = "reassign"


@dataclass(frozen=True)
class Split(_Record):
    """Piece ``piece`` is cut before ``frame``; the part from ``frame`` on is a new piece of the same
    person (appended), which can then be reassigned."""

    piece: int
    frame: int
    kind: ClassVar[str] = "split"


@dataclass(frozen=True)
class Merge(_Record):
    """Every piece of ``person`` now feeds ``other``."""

    person: int
    other: int
    kind: ClassVar[str] = "merge"


@dataclass(frozen=True)
class Swap(_Record):
    """From ``frame`` on, the pieces of ``person`` and ``other`` trade persons (pieces that span
    ``frame`` are split there first)."""

    person: int
    other: int
    frame: int
    kind: ClassVar[str] = "swap"


IdentityEdit = Reassign | Split | Merge | Swap
"""One annotator action."""

_KINDS: dict[str, type[IdentityEdit]] = {k.kind: k for k in (Reassign, Split, Merge, Swap)}


def edit_from_json(data: dict) -> IdentityEdit:
    """The edit ``to_json`` wrote; also the first layout, where every record had ``piece``, ``person``,
    ``other`` and ``frame`` and -1 meant absent (a reassign to -1: to a new person).

    Raises:
        ValueError: an unknown kind, or a field the kind needs that is missing or not an integer.
    """
    if not isinstance(data, dict) or data.get("kind") not in _KINDS:
        kind = data.get("kind") if isinstance(data, dict) else data
        raise ValueError(f"unknown edit kind {kind!r} (known: {', '.join(_KINDS)})")
    record = _KINDS[data["kind"]]
    values = {}
    for f in fields(record):
        value = data.get(f.name)
        if record is Reassign and f.name == "person" and value in (None, -1):
            values[f.name] = None
        elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            values[f.name] = value
        else:
            raise ValueError(f"{data['kind']} edit: {f.name} must be an integer ≥ 0, not {value!r}")
    return record(**values)


def _with_rows(assignment: Assignment, **columns: np.ndarray) -> Assignment:
    return replace(assignment, **{k: np.asarray(v, dtype=np.int64) for k, v in columns.items()})


def _split_rows(assignment: Assignment, rows: np.ndarray, frame: int) -> Assignment:
    """Rows ``rows`` (each spanning ``frame``, starting before it) cut before ``frame``; the second
    parts appended in the order of ``rows``."""
    a = assignment
    end = a.frame_end.copy()
    end[rows] = frame - 1
    return _with_rows(
        a,
        view=np.concatenate([a.view, a.view[rows]]),
        tracklet=np.concatenate([a.tracklet, a.tracklet[rows]]),
        frame_start=np.concatenate([a.frame_start, np.full(len(rows), frame)]),
        frame_end=np.concatenate([end, a.frame_end[rows]]),
        person=np.concatenate([a.person, a.person[rows]]),
    )


def _require_piece(assignment: Assignment, piece: int) -> None:
    if not 0 <= piece < len(assignment):
        raise EditError(f"piece {piece} does not exist (the assignment has {len(assignment)} pieces)")


def _require_person(assignment: Assignment, person: int) -> None:
    if person < 0 or not (assignment.person == person).any():
        raise EditError(f"person {person} has no piece")


def apply_edit(assignment: Assignment, edit: IdentityEdit) -> tuple[Assignment, frozenset[int]]:
    """The edited assignment and the persons whose pieces changed (to fuse again)."""
    a = assignment
    match edit:
        case Reassign(piece, person):
            _require_piece(a, piece)
            before = int(a.person[piece])
            target = person if person is not None else int(a.person.max(initial=-1)) + 1
            column = a.person.copy()
            column[piece] = target
            return _with_rows(a, person=column), frozenset({before, target})
        case Split(piece, frame):
            _require_piece(a, piece)
            start, end = int(a.frame_start[piece]), int(a.frame_end[piece])
            if not start < frame <= end:
                raise EditError(f"frame {frame} does not cut piece {piece} (frames {start}–{end})")
            return _split_rows(a, np.array([piece]), frame), frozenset({int(a.person[piece])})
        case Merge(person, other):
            _require_person(a, person)
            _require_person(a, other)
            if person == other:
                raise EditError(f"person {person} cannot be merged into itself")
            return _with_rows(a, person=np.where(a.person == person, other, a.person)), frozenset(
                {person, other}
            )
        case Swap(person, other, frame):
            _require_person(a, person)
            _require_person(a, other)
            pair = np.isin(a.person, [person, other])
            spanning = np.flatnonzero(pair & (a.frame_start < frame) & (a.frame_end >= frame))
            a = _split_rows(a, spanning, frame)
            later = np.isin(a.person, [person, other]) & (a.frame_start >= frame)
            swapped = np.where(a.person == person, other, person)
            return _with_rows(a, person=np.where(later, swapped, a.person)), frozenset({person, other})
    raise EditError(f"not an identity edit: {edit!r}")


def apply_edits(assignment: Assignment, edits: list[IdentityEdit]) -> tuple[Assignment, frozenset[int]]:
    """All ``edits`` in order, and every person any of them touched."""
    touched: set[int] = set()
    for edit in edits:
        assignment, affected = apply_edit(assignment, edit)
        touched |= affected
    return assignment, frozenset(touched)
