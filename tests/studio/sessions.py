"""Helpers for the session tests: a tiny run, random valid edits, and the check that a session on disk
is complete and its ``current/`` follows its log."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from core.engine.editing import IdentityEdit, Merge, Reassign, Split, Swap, apply_edits, edit_from_json
from core.engine.pipeline import reconstruct_from_observations
from core.reconstruction import Reconstruction
from core.types import Assignment
from tests.core.engine.scenes import exact_scene


def tiny_run(persons: int = 2, views: int = 2, frames: int = 10, seed: int = 0) -> Reconstruction:
    """A reconstructed exact scene small enough that an edit takes milliseconds."""
    scene = exact_scene(persons=persons, views=views, frames=frames, seed=seed)
    return reconstruct_from_observations(scene.observations, scene.cameras, frames, scene.config.fps)


def random_edit(rng: random.Random, assignment: Assignment) -> IdentityEdit:
    """An edit of a random kind that applies to ``assignment``."""
    persons = sorted(set(assignment.person.tolist()))
    long = np.flatnonzero(assignment.frame_end > assignment.frame_start)
    kind = rng.choice(["split", "reassign", "merge", "swap"] if len(persons) > 1 else ["split", "reassign"])
    if kind == "split" and len(long):
        piece = int(rng.choice(long.tolist()))
        return Split(
            piece, rng.randint(int(assignment.frame_start[piece]) + 1, int(assignment.frame_end[piece]))
        )
    if kind in ("merge", "swap"):
        person, other = rng.sample(persons, 2)
        return (
            Merge(person, other)
            if kind == "merge"
            else Swap(person, other, rng.randint(0, int(assignment.frame_end.max())))
        )
    return Reassign(rng.randrange(len(assignment)), rng.choice([None, *persons]))


def logged_edits(directory: Path) -> list[IdentityEdit]:
    """The edits in ``directory``'s log, read from disk."""
    return [edit_from_json(e) for e in json.loads((Path(directory) / "session.json").read_text())["edits"]]


def assert_follows_log(directory: Path) -> Reconstruction:
    """``current/`` on disk loads and its assignment is ``base/``'s with the log's edits replayed; it."""
    base = Reconstruction.load(Path(directory) / "base")
    current = Reconstruction.load(Path(directory) / "current")
    expected, _ = apply_edits(base.assignment, logged_edits(directory))
    for column in ("view", "tracklet", "frame_start", "frame_end", "person"):
        np.testing.assert_array_equal(getattr(current.assignment, column), getattr(expected, column), column)
    return current
