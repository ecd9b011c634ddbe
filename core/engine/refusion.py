"""After an identity edit: the persons it touched fused and fitted again, every other person kept.

Only the touched persons are fused again (their observations re-triangulated with the same cameras; the
scene scale is not re-estimated) and their bodies re-fitted from their previous fit (``WarmStart``: shape
kept, second stage only), which is what keeps an edit under a second.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from jaxtyping import Int

from core.body.config import FitConfig
from core.body.fitting import WarmStart
from core.body.model import BodyModel
from core.body.tracks import fit_persons
from core.engine.fusion import fuse
from core.engine.pipeline import assigned_observations, with_residuals
from core.reconstruction import Reconstruction
from core.types import Assignment


def refuse(
    reconstruction: Reconstruction,
    assignment: Assignment,
    affected: frozenset[int],
    body: BodyModel | None,
    fit: FitConfig,
    device: str = "cpu",
) -> Reconstruction:
    """``reconstruction`` with ``assignment`` and the ``affected`` persons fused and fitted again; every
    other person is kept as it was. A person left without observations is dropped."""
    rec = reconstruction
    oriented, person, mirrored = assigned_observations(
        rec.observations, rec.tracklets, assignment, rec.cameras, rec.num_frames, rec.config
    )
    ids = np.array(sorted(affected), dtype=np.int64)
    fused = fuse(oriented, person, rec.cameras, rec.num_frames, rec.config.fusion, person_ids=ids)
    fused = with_residuals(fused, oriented, person, rec.cameras, rec.num_frames, rec.config)
    if body is not None:
        starts = warm_starts(rec, person, ids, body.name)
        fused = fit_persons(fused, body, fit, device, starts)
    kept = [p for p in rec.persons if p.person_id not in affected]
    persons = tuple(sorted([*kept, *fused], key=lambda p: p.person_id))
    diagnostics = replace(rec.diagnostics, mirrored_observations=mirrored)
    return replace(rec, assignment=assignment, persons=persons, diagnostics=diagnostics)


def warm_starts(
    reconstruction: Reconstruction, person: Int[np.ndarray, " N"], ids: Int[np.ndarray, " P"], model: str
) -> dict[int, WarmStart]:
    """For each person of ``ids`` under the new per-observation ``person``: every frame's pose from the
    person (fitted with ``model``) that most of its observations at that frame fed before the edit, and
    the shape of the one that fed most of its frames. A person split off, swapped or reassigned thus
    starts from the body its detections already had."""
    rec = reconstruction
    fitted = {p.person_id: p for p in rec.persons if p.shape_model == model}
    if not fitted:
        return {}
    before = rec.assignment.person_of(rec.tracklets.observation_tracklet, rec.observations.frame)
    starts = {}
    for pid in ids.tolist():
        mine = (person == pid) & np.isin(before, list(fitted))
        if not mine.any():
            continue
        pairs, counts = np.unique(
            np.stack([rec.observations.frame[mine], before[mine]], axis=1), axis=0, return_counts=True
        )
        order = np.lexsort((-counts, pairs[:, 0]))  # per frame, the most frequent donor first
        pairs = pairs[order]
        first = np.r_[True, pairs[1:, 0] != pairs[:-1, 0]]
        frames, donors = pairs[first, 0], pairs[first, 1]
        orient = np.zeros((len(frames), 3))
        pose = np.zeros((len(frames), 21, 3))
        has = np.zeros(len(frames), dtype=bool)
        for donor in np.unique(donors).tolist():  # a handful of donors
            source = fitted[donor]
            rows = np.flatnonzero(donors == donor)
            at = np.searchsorted(source.frames, frames[rows]).clip(max=len(source.frames) - 1)
            found = source.frames[at] == frames[rows]
            orient[rows[found]] = source.global_orient[at[found]]
            pose[rows[found]] = source.body_pose[at[found]]
            has[rows[found]] = True
        if has.any():
            main = fitted[int(np.bincount(donors[has]).argmax())]
            starts[pid] = WarmStart(frames[has], orient[has], pose[has], main.shape)
    return starts
