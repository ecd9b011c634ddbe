"""After an identity edit: the frames it changed fused and fitted again, everything else kept.

An edit moves observations between persons. A person's fusion at a frame reads that frame's
observations only, so only the frames where the set of observations feeding a touched person changed
(its *changed frames*) are fused again (re-triangulated with the same cameras; the scene scale is not
re-estimated) and spliced into its track; every other frame keeps its previous values exactly. The
two things fusion takes from a person's whole track are there taken from the changed frames alone:
the limb-length medians that mark implausible limbs, and the mean shape of body-model observations
(the track keeps its previous shape).

The body fit couples frames through its smoothness term between consecutive frames only (besides
one offset per keypoint for the whole track): an Adam step moves a frame by the gradient there, which
sees its two neighbours, so after k steps a change has reached at most k frames away. The re-fit is
warm-started from the previous fit (``WarmStart``: shape kept, second stage only) and takes at most m
= ``warm_iterations`` steps; it runs on the changed frames with m frames of context either side, and
only the changed frames are written back: they get what re-fitting the whole track would give them
(up to the offsets and the loss-based early stop, which the window shares). The context frames keep
their values; a whole re-fit would move them only by the pull of the smoothness term (a hundredth of
their data's where their joints are seen). An edit's cost thus follows the frames it changes, not the
clip's length. A person new to the edit, or without a previous fit of the model, is fitted whole.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from jaxtyping import Bool, Int

from core.body.config import FitConfig
from core.body.fitting import WarmStart
from core.body.model import BodyModel
from core.body.tracks import fit_person, with_fit
from core.engine.fusion import fuse
from core.engine.handedness import orient_left_right
from core.engine.joint_speed import checked_persons
from core.engine.pipeline import with_residuals
from core.reconstruction import Reconstruction
from core.types import Assignment, JointRejections, PersonTrack

PER_FRAME_FIELDS = (
    "frames",
    "global_orient",
    "transl",
    "body_pose",
    "joints",
    "joint_views",
    "residuals_px",
    "confidence",
    "views",
)
"""The fields of a ``PersonTrack`` with one row per frame of the track."""


def refuse(
    reconstruction: Reconstruction,
    assignment: Assignment,
    affected: frozenset[int],
    body: BodyModel | None,
    fit: FitConfig,
    device: str = "cpu",
) -> Reconstruction:
    """``reconstruction`` with ``assignment``; the ``affected`` persons fused and fitted again at the
    frames where their observations changed, every other person and frame kept as it was. A person
    left without observations is dropped."""
    rec = reconstruction
    frame = rec.observations.frame
    before = rec.assignment.person_of(rec.tracklets.observation_tracklet, frame)
    after = assignment.person_of(rec.tracklets.observation_tracklet, frame)
    changed = {pid: changed_frames(before, after, frame, pid) for pid in sorted(affected)}
    changed = {pid: frames for pid, frames in changed.items() if frames.size}
    redo = _only_at(after, frame, changed)  # the observations of the cells fused again
    oriented, flipped = orient_left_right(
        rec.observations, redo, rec.cameras, rec.num_frames, rec.config.fusion.min_keypoint_confidence
    )
    ids = np.array(sorted(changed), dtype=np.int64)
    fused = fuse(oriented, redo, rec.cameras, rec.num_frames, rec.config.fusion, person_ids=ids)
    fused = with_residuals(fused, oriented, redo, rec.cameras, rec.num_frames, rec.config)
    new = {p.person_id: p for p in fused}
    old = {p.person_id: p for p in rec.persons}
    spliced = {pid: splice(old.get(pid), new.get(pid), frames) for pid, frames in changed.items()}
    checked, rejected = checked_persons(
        [p for p in spliced.values() if p is not None], rec.fps, rec.config.joint_speed
    )
    spliced = {**spliced, **{p.person_id: p for p in checked}}
    if body is not None:
        spliced = _refit(rec, after, old, spliced, changed, body, fit, device)
    persons = {**old, **spliced}
    # the left/right labels of the cells fused again are decided again; every other one stands
    stale = np.flatnonzero((redo >= 0) | (before != after))
    mirrored = np.union1d(np.setdiff1d(rec.diagnostics.mirrored_observations, stale), flipped)
    return replace(
        rec,
        assignment=assignment,
        persons=tuple(persons[pid] for pid in sorted(persons) if persons[pid] is not None),
        diagnostics=replace(
            rec.diagnostics,
            mirrored_observations=mirrored,
            rejected_joints=_rejections_replaced(rec.diagnostics.rejected_joints, rejected, changed),
        ),
    )


def _rejections_replaced(
    old: JointRejections, new: JointRejections, changed: dict[int, np.ndarray]
) -> JointRejections:
    """The joint-speed rejections with those at the frames fused again (``changed``: person → frames)
    replaced by the new check's (which cannot find the old ones again: they stand on no view now)."""
    redone = np.zeros(len(old), dtype=bool)
    for pid, frames in changed.items():
        redone |= (old.person == pid) & np.isin(old.frame, frames)
    return JointRejections.concatenate([old.take(~redone), new])


def changed_frames(
    before: Int[np.ndarray, " N"], after: Int[np.ndarray, " N"], frame: Int[np.ndarray, " N"], person: int
) -> Int[np.ndarray, " C"]:
    """The frames (sorted) at which the observations feeding ``person`` differ between the
    per-observation persons ``before`` and ``after``.

    >>> changed_frames(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), np.array([3, 4, 4, 5]), 1)
    array([4])
    """
    moved = (before != after) & ((before == person) | (after == person))
    return np.unique(frame[moved])


def _only_at(
    person: Int[np.ndarray, " N"], frame: Int[np.ndarray, " N"], frames: dict[int, np.ndarray]
) -> Int[np.ndarray, " N"]:
    """``person`` where an observation's person is a key of ``frames`` and its frame is listed there;
    -1 elsewhere."""
    kept = np.full(person.shape, -1, dtype=np.int64)
    for pid, listed in frames.items():
        mine = (person == pid) & np.isin(frame, listed)
        kept[mine] = pid
    return kept


def take_frames(track: PersonTrack, rows: Bool[np.ndarray, " F"] | Int[np.ndarray, " G"]) -> PersonTrack:
    """``track`` at the frames of ``rows`` (a mask or indices of its rows)."""
    return replace(track, **{f: getattr(track, f)[rows] for f in PER_FRAME_FIELDS})


def splice(
    old: PersonTrack | None, new: PersonTrack | None, span: Int[np.ndarray, " C"]
) -> PersonTrack | None:
    """``old`` at its frames outside ``span`` and ``new`` (fused at frames of ``span``) at its own, in
    frame order, with ``old``'s shape; None if neither has a frame left."""
    if old is None:
        return new
    keep = ~np.isin(old.frames, span)
    if new is None:
        return take_frames(old, keep) if keep.any() else None
    order = np.argsort(np.concatenate([old.frames[keep], new.frames]), kind="stable")
    return replace(
        old,
        **{f: np.concatenate([getattr(old, f)[keep], getattr(new, f)])[order] for f in PER_FRAME_FIELDS},
    )


def _distance(frames: Int[np.ndarray, " F"], span: Int[np.ndarray, " C"]) -> Int[np.ndarray, " F"]:
    """Each frame's distance, in frames, to the nearest frame of the sorted, non-empty ``span``."""
    after = np.searchsorted(span, frames).clip(max=len(span) - 1)
    before = (after - 1).clip(min=0)
    return np.minimum(np.abs(frames - span[after]), np.abs(frames - span[before]))


def _whole(track: PersonTrack) -> tuple[Bool[np.ndarray, " F"], Bool[np.ndarray, " F"]]:
    everything = np.ones(len(track.frames), dtype=bool)
    return everything, everything


def _refit(
    reconstruction: Reconstruction,
    after: Int[np.ndarray, " N"],
    old: dict[int, PersonTrack],
    spliced: dict[int, PersonTrack | None],
    changed: dict[int, np.ndarray],
    body: BodyModel,
    fit: FitConfig,
    device: str,
) -> dict[int, PersonTrack | None]:
    """The spliced persons with the body fitted again around their changed frames (see the module)."""
    margin = fit.warm_iterations
    windows = {}  # per person: its rows fitted and its rows written back
    for pid, track in spliced.items():
        if track is not None:
            previous = old.get(pid)
            if previous is None or previous.shape_model != body.name:
                windows[pid] = _whole(track)
            else:
                near = _distance(track.frames, changed[pid])
                windows[pid] = (near <= margin, near == 0)
    fitted_frames = {pid: spliced[pid].frames[rows] for pid, (rows, _) in windows.items()}
    starts = warm_starts(
        reconstruction,
        _only_at(after, reconstruction.observations.frame, fitted_frames),
        np.array(sorted(windows), dtype=np.int64),
        body.name,
    )
    refitted = dict(spliced)
    for pid, (fitted, written) in windows.items():
        track, start, previous = spliced[pid], starts.get(pid), old.get(pid)
        if previous is not None and previous.shape_model == body.name:
            if start is None:  # nothing in the window to start from: the person is fitted anew
                fitted, written = _whole(track)
            else:  # the track keeps its shape
                start = replace(start, shape=previous.shape)
        result = fit_person(take_frames(track, fitted), body, fit, device, start)
        if result is not None and written.all():
            refitted[pid] = with_fit(track, result, body)
        elif result is not None:
            keep = written[fitted]
            refitted[pid] = with_fit(track, result, body, np.flatnonzero(fitted)[keep], keep)
    return refitted


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
