"""Identity correction: an annotator's edits of who is who, and the re-fusion of the persons they touch.

The assignment (which person each (view, tracklet, frame span) piece feeds) is the only thing an
annotator edits. An edit is a small JSON-able record applied to an assignment by a pure function, so
that a session is its original run plus a list of edits: undo is replaying one edit fewer, and a saved
session reopens exactly as left. Pieces are named by their row in the assignment; an edit never
reorders rows (a split keeps the first part in place and appends the second), so replaying the same
edits gives the same rows. Person ids are never renumbered: a person emptied by a merge or a reassign
disappears, a new person takes the next unused id, and every other person keeps its id and colour.

What an edit changes downstream (re-fusing and re-fitting the persons it touched) is
``core.engine.refusion``'s job.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np

from core.errors import InputError
from core.types import Assignment

EditKind = Literal["reassign", "split", "merge", "swap"]


class EditError(InputError):
    """An edit that does not apply to the assignment (a piece or person that is not there, a frame
    outside the piece)."""


@dataclass(frozen=True)
class IdentityEdit:
    """One annotator action.

    - ``reassign``: piece ``piece`` now feeds ``person`` (-1: a new person).
    - ``split``: piece ``piece`` is cut before ``frame``; the part from ``frame`` on is a new piece of
      the same person (appended), which can then be reassigned.
    - ``merge``: every piece of ``person`` now feeds ``other``.
    - ``swap``: from ``frame`` on, the pieces of ``person`` and ``other`` trade persons (pieces that
      span ``frame`` are split there first).
    """

    kind: EditKind
    piece: int = -1
    person: int = -1
    other: int = -1
    frame: int = -1

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(data: dict) -> IdentityEdit:
        return IdentityEdit(**{k: (v if k == "kind" else int(v)) for k, v in data.items()})


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


def _require_person(assignment: Assignment, person: int) -> None:
    if person < 0 or not (assignment.person == person).any():
        raise EditError(f"person {person} has no piece")


def apply_edit(assignment: Assignment, edit: IdentityEdit) -> tuple[Assignment, frozenset[int]]:
    """The edited assignment and the persons whose pieces changed (to fuse again)."""
    a = assignment
    if edit.kind in ("reassign", "split") and not 0 <= edit.piece < len(a):
        raise EditError(f"piece {edit.piece} does not exist (the assignment has {len(a)} pieces)")
    if edit.kind == "reassign":
        before = int(a.person[edit.piece])
        target = edit.person if edit.person >= 0 else int(a.person.max(initial=-1)) + 1
        person = a.person.copy()
        person[edit.piece] = target
        return _with_rows(a, person=person), frozenset({before, target})
    if edit.kind == "split":
        start, end = int(a.frame_start[edit.piece]), int(a.frame_end[edit.piece])
        if not start < edit.frame <= end:
            raise EditError(f"frame {edit.frame} does not cut piece {edit.piece} (frames {start}–{end})")
        return _split_rows(a, np.array([edit.piece]), edit.frame), frozenset({int(a.person[edit.piece])})
    if edit.kind == "merge":
        _require_person(a, edit.person)
        _require_person(a, edit.other)
        if edit.person == edit.other:
            raise EditError(f"person {edit.person} cannot be merged into itself")
        person = np.where(a.person == edit.person, edit.other, a.person)
        return _with_rows(a, person=person), frozenset({edit.person, edit.other})
    if edit.kind == "swap":
        _require_person(a, edit.person)
        _require_person(a, edit.other)
        pair = np.isin(a.person, [edit.person, edit.other])
        spanning = np.flatnonzero(pair & (a.frame_start < edit.frame) & (a.frame_end >= edit.frame))
        a = _split_rows(a, spanning, edit.frame)
        later = np.isin(a.person, [edit.person, edit.other]) & (a.frame_start >= edit.frame)
        swapped = np.where(a.person == edit.person, edit.other, edit.person)
        return _with_rows(a, person=np.where(later, swapped, a.person)), frozenset({edit.person, edit.other})
    raise EditError(f"unknown edit {edit.kind!r}")


def apply_edits(assignment: Assignment, edits: list[IdentityEdit]) -> tuple[Assignment, frozenset[int]]:
    """All ``edits`` in order, and every person any of them touched."""
    touched: set[int] = set()
    for edit in edits:
        assignment, affected = apply_edit(assignment, edit)
        touched |= affected
    return assignment, frozenset(touched)
