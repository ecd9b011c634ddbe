"""Identity edits on exact assignments, and their JSON records."""

import json

import numpy as np
import pytest

from core.engine.editing import (
    EditError,
    Merge,
    Reassign,
    Split,
    Swap,
    apply_edit,
    apply_edits,
    edit_from_json,
)
from core.types import Assignment


def assignment(rows):
    """Rows (view, tracklet, start, end, person)."""
    view, tracklet, start, end, person = (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
    return Assignment(view, tracklet, start, end, person)


BASE = assignment([(0, 0, 0, 9, 0), (1, 1, 0, 9, 0), (0, 2, 0, 9, 1), (1, 3, 2, 7, 1)])


def rows(a):
    return list(zip(a.view, a.tracklet, a.frame_start, a.frame_end, a.person, strict=True))


def test_reassign_to_an_existing_or_a_new_person():
    edited, affected = apply_edit(BASE, Reassign(1, 1))
    assert rows(edited)[1] == (1, 1, 0, 9, 1) and affected == {0, 1}
    edited, affected = apply_edit(BASE, Reassign(3))
    assert rows(edited)[3] == (1, 3, 2, 7, 2) and affected == {1, 2}
    assert rows(edited)[:3] == rows(BASE)[:3]


def test_split_keeps_the_first_part_in_place_and_appends_the_second():
    edited, affected = apply_edit(BASE, Split(0, 4))
    assert rows(edited) == [(0, 0, 0, 3, 0), *rows(BASE)[1:], (0, 0, 4, 9, 0)]
    assert affected == {0}
    np.testing.assert_array_equal(
        edited.person_of(np.array([0, 0, 0]), np.array([3, 4, 9])),
        BASE.person_of(np.zeros(3, int), [3, 4, 9]),
    )


@pytest.mark.parametrize("frame", [0, 10, -1])
def test_a_split_outside_the_piece_is_refused(frame):
    with pytest.raises(EditError, match="does not cut piece 0"):
        apply_edit(BASE, Split(0, frame))


def test_merge_moves_every_piece_and_keeps_other_ids():
    edited, affected = apply_edit(BASE, Merge(1, 0))
    assert (edited.person == 0).all() and affected == {0, 1}
    with pytest.raises(EditError, match="person 5 has no piece"):
        apply_edit(BASE, Merge(5, 0))
    with pytest.raises(EditError, match="into itself"):
        apply_edit(BASE, Merge(0, 0))


def test_swap_from_a_frame_on_splits_the_pieces_that_span_it():
    edited, _ = apply_edit(BASE, Swap(0, 1, 5))
    tracklet = np.array([0, 1, 2, 3])
    np.testing.assert_array_equal(edited.person_of(tracklet, np.full(4, 4)), [0, 0, 1, 1])
    np.testing.assert_array_equal(edited.person_of(tracklet, np.full(4, 5)), [1, 1, 0, 0])
    np.testing.assert_array_equal(edited.person_of(tracklet, np.full(4, 9)), [1, 1, 0, -1])
    assert len(edited) == 8


def test_unknown_pieces_are_refused():
    with pytest.raises(EditError, match="piece 9 does not exist"):
        apply_edit(BASE, Reassign(9, 0))
    with pytest.raises(EditError, match="not an identity edit"):
        apply_edit(BASE, ("merge", 0, 1))


def test_edits_round_trip_through_json_and_replay():
    edits = [Split(0, 4), Reassign(4), Merge(0, 1), Swap(1, 2, 3), Reassign(2, 1)]
    as_json = [e.to_json() for e in edits]
    assert as_json[1] == {"kind": "reassign", "piece": 4, "person": None}
    again = [edit_from_json(json.loads(json.dumps(e))) for e in as_json]
    assert again == edits
    replayed, touched = apply_edits(BASE, again)
    assert rows(replayed) == rows(apply_edits(BASE, edits)[0]) and touched == {0, 1, 2}


def test_the_first_json_layout_with_minus_one_for_absent_is_read():
    old = [
        {"kind": "split", "piece": 0, "person": -1, "other": -1, "frame": 4},
        {"kind": "reassign", "piece": 4, "person": -1, "other": -1, "frame": -1},
        {"kind": "reassign", "piece": 1, "person": 1, "other": -1, "frame": -1},
        {"kind": "merge", "piece": -1, "person": 0, "other": 1, "frame": -1},
        {"kind": "swap", "piece": -1, "person": 1, "other": 2, "frame": 3},
    ]
    assert [edit_from_json(e) for e in old] == [
        Split(0, 4),
        Reassign(4),
        Reassign(1, 1),
        Merge(0, 1),
        Swap(1, 2, 3),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "rename", "piece": 0}, "unknown edit kind 'rename'"),
        ({"piece": 0}, "unknown edit kind None"),
        ({"kind": "split", "piece": 0}, "split edit: frame must be an integer ≥ 0, not None"),
        ({"kind": "merge", "person": "1", "other": 0}, "merge edit: person must be an integer ≥ 0, not '1'"),
        ({"kind": "swap", "person": 0, "other": 1, "frame": -1}, "swap edit: frame must be"),
    ],
)
def test_a_malformed_record_is_a_clear_error(data, message):
    with pytest.raises(ValueError, match=message):
        edit_from_json(data)
