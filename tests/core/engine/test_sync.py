"""Views not started together: offsets from the epipolar geometry on a synthetic scene with known
offsets, and the arithmetic of putting them in step."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.engine.sync import epipolar_offsets, in_step, parse_offsets
from core.errors import InputError
from core.evaluation.synthetic import SyntheticConfig, make_scene

TRUE_OFFSETS = np.array([0, 7, -12, 3])


def shifted(observations, offsets, frames):
    """Each view's observations as its own clip numbers them: the instant t at frame t + offset."""
    frame = observations.frame + offsets[observations.view]
    return replace(observations, frame=frame).take(np.flatnonzero((frame >= 0) & (frame < frames)))


def test_offsets_of_look_alike_walkers_are_found_exactly() -> None:
    scene = make_scene(SyntheticConfig(persons=3, views=4, frames=120, identical_appearance=True))
    found = epipolar_offsets(shifted(scene.observations, TRUE_OFFSETS, 120), scene.true_cameras, 20)
    np.testing.assert_array_equal(found.offset, TRUE_OFFSETS)
    assert found.confidence[0] == 1 and (found.confidence[1:] > 0.2).all()
    in_sync = epipolar_offsets(scene.observations, scene.true_cameras, 20)
    np.testing.assert_array_equal(in_sync.offset, 0)


def test_in_step_trims_to_the_span_every_view_covers() -> None:
    # view 1 starts 3 frames late (its frame 3 is the first view's frame 0), view 2 two frames early
    view = np.array([0, 0, 1, 1, 2, 2])
    frame = np.array([0, 9, 3, 12, 0, 7])
    rows, aligned, span = in_step(view, frame, np.array([0, 3, -2]), np.array([10, 13, 8]))
    # on the first view's clock: view 1 covers 0–9, view 2 covers 2–9; the common span is 2–9
    assert span == 8
    assert rows.tolist() == [1, 3, 4, 5] and aligned.tolist() == [7, 7, 0, 7]


def test_given_offsets_are_checked() -> None:
    np.testing.assert_array_equal(parse_offsets("0,5,-3", 3), [0, 5, -3])
    for text, message in (("0,5", "give 3 offsets"), ("2,5,1", "the first 0"), ("0,a,1", "one integer")):
        with pytest.raises(InputError, match=message):
            parse_offsets(text, 3)
