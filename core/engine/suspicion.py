"""Where a reconstruction is likely wrong, from what the engine already knows: the annotator's way to
the errors (issue 19's review queue) instead of scrubbing every frame of every view.

Each signal gives spans (person, view or -1, first and last frame) with a score, 1 at its threshold and
growing with how far past it the evidence goes, and a one-line reason. Every signal is computed over
whole arrays (frames × views, or observations), so a long capture costs a few array passes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Bool, Float, Int

from core.keypoints import LIMBS
from core.reconstruction import Reconstruction
from core.types import Assignment, Observations, PersonTrack

KINDS = (
    "reprojection jump",
    "association cost",
    "tracklet cut",
    "mirrored labels",
    "bone lengths",
    "one view only",
    "starts mid-clip",
    "ends mid-clip",
)


@dataclass(frozen=True)
class SuspicionConfig:
    reprojection_sigmas: float = 4.0
    """A view's reprojection error this many robust deviations above its own median is a jump."""
    reprojection_min_px: float = 5.0
    """...and at least this many pixels above it."""
    bone_tolerance: float = 0.25
    """A limb longer or shorter than the person's median length by this fraction."""
    cost_share_of_gate: float = 0.7
    """A tracklet whose mean association cost to its person's other tracklets passes this share of the
    association gate joined that person on thin evidence."""
    single_view_min_frames: int = 5
    """Spans seen by one view only shorter than this are left out (a view dropping out briefly)."""
    clip_margin: int = 3
    """A track starting or ending within this many frames of the clip's ends is not mid-clip."""


@dataclass(frozen=True)
class Suspicions:
    """Suspicious spans, one row each, worst (highest score) first."""

    kind: Int[np.ndarray, " S"] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Index into ``KINDS``."""
    person: Int[np.ndarray, " S"] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    view: Int[np.ndarray, " S"] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """The view concerned, -1 where the span concerns the person in all views."""
    frame_start: Int[np.ndarray, " S"] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    frame_end: Int[np.ndarray, " S"] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Inclusive, reconstruction frames."""
    score: Float[np.ndarray, " S"] = field(default_factory=lambda: np.zeros(0))
    reason: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.kind.shape[0])


def find_suspicions(reconstruction: Reconstruction, config: SuspicionConfig | None = None) -> Suspicions:
    """Every signal over every person of ``reconstruction``, worst first."""
    config = config or SuspicionConfig()
    names = reconstruction.cameras.names
    parts = []
    for person in reconstruction.persons:
        parts += [
            reprojection_jumps(person, names, config),
            bone_length_outliers(person, config),
            single_view_spans(person, names, config),
            mid_clip_ends(person, reconstruction.num_frames, config),
        ]
    observations, assignment = reconstruction.observations, reconstruction.assignment
    persons = assignment.person_of(reconstruction.tracklets.observation_tracklet, observations.frame)
    mirrored = reconstruction.diagnostics.mirrored_observations
    parts += [tracklet_cuts(assignment, names), mirrored_labels(observations, mirrored, persons, names)]
    gate = reconstruction.config.association.gate
    parts.append(
        association_costs(assignment, reconstruction.diagnostics.association_cost, gate, names, config)
    )
    return _worst_first(_concatenate(parts))


def reprojection_jumps(person: PersonTrack, names: tuple[str, ...], config: SuspicionConfig) -> Suspicions:
    """Frames where one view's reprojection error leaps above that view's own usual error."""
    residuals = person.residuals_px
    seen = np.isfinite(residuals)
    with warnings.catch_warnings():  # a view that never saw the person has no median: it has no jump
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nan_to_num(np.nanmedian(residuals, axis=0))
        deviation = 1.4826 * np.nan_to_num(np.nanmedian(np.abs(residuals - median), axis=0)) + 1.0
    excess = np.where(seen, (residuals - median) / deviation, 0.0)
    jump = seen & (excess > config.reprojection_sigmas) & (residuals - median > config.reprojection_min_px)
    spans = _runs(jump)
    score = np.array([excess[s : e + 1, v].max() / config.reprojection_sigmas for v, s, e in spans])
    reasons = tuple(
        f"{names[v]}: reprojection {np.nanmax(residuals[s : e + 1, v]):.1f} px, usually {median[v]:.1f} px"
        for v, s, e in spans
    )
    return _rows(KINDS.index("reprojection jump"), person.person_id, spans, person.frames, score, reasons)


def bone_length_outliers(person: PersonTrack, config: SuspicionConfig) -> Suspicions:
    """Frames where a limb is far from its median length: joints taken from two people (a chimera), as a
    real person keeps the length of each of ``LIMBS``."""
    index = {name: i for i, name in enumerate(person.joint_names)}
    limbs = np.array([(index[a], index[b]) for a, b in LIMBS if a in index and b in index], dtype=np.int64)
    if limbs.size == 0:
        return Suspicions()
    length = np.linalg.norm(person.joints[:, limbs[:, 0]] - person.joints[:, limbs[:, 1]], axis=-1)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        ratio = length / np.nanmedian(length, axis=0)
    deviation = np.nan_to_num(np.abs(ratio - 1.0), nan=0.0).max(axis=1)
    spans = _runs((deviation > config.bone_tolerance)[:, None])
    score = np.array([deviation[s : e + 1].max() / config.bone_tolerance for _, s, e in spans])
    reasons = tuple(
        f"a limb {100 * deviation[s : e + 1].max():.0f} % off its usual length" for _, s, e in spans
    )
    return _rows(KINDS.index("bone lengths"), person.person_id, spans, person.frames, score, reasons, view=-1)


def single_view_spans(person: PersonTrack, names: tuple[str, ...], config: SuspicionConfig) -> Suspicions:
    """Spans where one view alone sees the person: nothing checks that view's identity there."""
    alone = person.views.sum(axis=1) == 1
    spans = [s for s in _runs(alone[:, None]) if s[2] - s[1] + 1 >= config.single_view_min_frames]
    seer = [int(np.argmax(person.views[s])) for _, s, _ in spans]
    score = np.array([min(3.0, (e - s + 1) / 30) + 0.5 for _, s, e in spans])
    reasons = tuple(
        f"seen by {names[v]} only for {e - s + 1} frames" for v, (_, s, e) in zip(seer, spans, strict=True)
    )
    spans = [(v, s, e) for v, (_, s, e) in zip(seer, spans, strict=True)]
    return _rows(KINDS.index("one view only"), person.person_id, spans, person.frames, score, reasons)


def mid_clip_ends(person: PersonTrack, num_frames: int, config: SuspicionConfig) -> Suspicions:
    """A track that begins or ends away from the clip's ends: someone entering, or a lost identity."""
    first, last = int(person.frames[0]), int(person.frames[-1])
    rows = []
    if first > config.clip_margin:
        rows.append((KINDS.index("starts mid-clip"), first, f"appears at frame {first}"))
    if last < num_frames - 1 - config.clip_margin:
        rows.append((KINDS.index("ends mid-clip"), last, f"disappears after frame {last}"))
    return Suspicions(
        kind=np.array([k for k, _, _ in rows], dtype=np.int64),
        person=np.full(len(rows), person.person_id, dtype=np.int64),
        view=np.full(len(rows), -1, dtype=np.int64),
        frame_start=np.array([f for _, f, _ in rows], dtype=np.int64),
        frame_end=np.array([f for _, f, _ in rows], dtype=np.int64),
        score=np.full(len(rows), 0.5),
        reason=tuple(r for _, _, r in rows),
    )


def association_costs(
    assignment: Assignment,
    cost: Float[np.ndarray, "K K"],
    gate: float,
    names: tuple[str, ...],
    config: SuspicionConfig,
) -> Suspicions:
    """Tracklets that agree only loosely with the other tracklets of their person (mean pairwise cost
    over shared frames near the gate): the association's weakest links."""
    if len(assignment) == 0 or cost.shape[0] <= assignment.tracklet.max():  # no association ran
        return Suspicions()
    persons, person_index = np.unique(assignment.person, return_inverse=True)
    member = np.zeros((cost.shape[0], persons.size))
    member[assignment.tracklet, person_index] = 1.0
    finite = np.isfinite(cost) & ~np.eye(cost.shape[0], dtype=bool)
    total = np.where(finite, cost, 0.0) @ member
    count = finite.astype(float) @ member
    pieces = count[assignment.tracklet, person_index] > 0
    mean = np.divide(
        total[assignment.tracklet, person_index],
        count[assignment.tracklet, person_index],
        where=pieces,
        out=np.zeros(len(assignment)),
    )
    score = mean / (config.cost_share_of_gate * gate)
    rows = np.flatnonzero(pieces & (score > 1.0))
    return Suspicions(
        kind=np.full(rows.size, KINDS.index("association cost"), dtype=np.int64),
        person=assignment.person[rows].astype(np.int64),
        view=assignment.view[rows].astype(np.int64),
        frame_start=assignment.frame_start[rows].astype(np.int64),
        frame_end=assignment.frame_end[rows].astype(np.int64),
        score=score[rows],
        reason=tuple(
            f"{names[v]}: tracklet {t} joins person {p} at mean cost {c:.2f} (gate {gate:g})"
            for v, t, p, c in zip(
                assignment.view[rows],
                assignment.tracklet[rows],
                assignment.person[rows],
                mean[rows],
                strict=True,
            )
        ),
    )


def tracklet_cuts(assignment: Assignment, names: tuple[str, ...]) -> Suspicions:
    """Where a tracklet's pieces go to different persons: a tracker swap the refinement (or an edit)
    cut, to confirm."""
    order = np.lexsort((assignment.frame_start, assignment.tracklet))
    tracklet, person = assignment.tracklet[order], assignment.person[order]
    cut = np.flatnonzero((tracklet[1:] == tracklet[:-1]) & (person[1:] != person[:-1])) + 1
    start = assignment.frame_start[order][cut]
    view = assignment.view[order][cut]
    reasons = tuple(
        f"{names[v]}: tracklet {t} goes from person {a} to person {b} at frame {f}"
        for v, t, a, b, f in zip(view, tracklet[cut], person[cut - 1], person[cut], start, strict=True)
    )
    return Suspicions(
        kind=np.full(cut.size, KINDS.index("tracklet cut"), dtype=np.int64),
        person=person[cut].astype(np.int64),
        view=view.astype(np.int64),
        frame_start=start.astype(np.int64),
        frame_end=start.astype(np.int64),
        score=np.full(cut.size, 1.5),
        reason=reasons,
    )


def mirrored_labels(
    observations: Observations,
    mirrored: Int[np.ndarray, " M"],
    persons: Int[np.ndarray, " N"],
    names: tuple[str, ...],
) -> Suspicions:
    """Runs of detections whose left and right the fusion exchanged, per person and view."""
    mirrored = mirrored[persons[mirrored] >= 0]
    if mirrored.size == 0:
        return Suspicions()
    person, view, frame = persons[mirrored], observations.view[mirrored], observations.frame[mirrored]
    order = np.lexsort((frame, view, person))
    person, view, frame = person[order], view[order], frame[order]
    starts = np.flatnonzero(
        np.r_[True, (person[1:] != person[:-1]) | (view[1:] != view[:-1]) | (np.diff(frame) > 1)]
    )
    ends = np.r_[starts[1:], person.size] - 1
    count = ends - starts + 1
    return Suspicions(
        kind=np.full(starts.size, KINDS.index("mirrored labels"), dtype=np.int64),
        person=person[starts].astype(np.int64),
        view=view[starts].astype(np.int64),
        frame_start=frame[starts].astype(np.int64),
        frame_end=frame[ends].astype(np.int64),
        score=np.minimum(3.0, 0.5 + count / 10),
        reason=tuple(
            f"{names[v]}: left and right exchanged in {c} frames"
            for v, c in zip(view[starts], count, strict=True)
        ),
    )


def _runs(flags: Bool[np.ndarray, "F V"]) -> list[tuple[int, int, int]]:
    """(view, first, last) of each run of True along the frames, per column."""
    padded = np.zeros((flags.shape[0] + 2, flags.shape[1]), dtype=np.int8)
    padded[1:-1] = flags
    step = np.diff(padded, axis=0)
    start_frame, start_view = np.nonzero(step == 1)
    end_frame, end_view = np.nonzero(step == -1)
    starts = sorted(zip(start_view, start_frame, strict=True))
    ends = sorted(zip(end_view, end_frame - 1, strict=True))
    return [(int(v), int(s), int(e)) for (v, s), (_, e) in zip(starts, ends, strict=True)]


def _rows(kind, person_id, spans, frames, score, reasons, view=None) -> Suspicions:
    """Spans over a person's own frame indices as rows in reconstruction frames."""
    spans = np.array(spans, dtype=np.int64).reshape(-1, 3)
    return Suspicions(
        kind=np.full(len(spans), kind, dtype=np.int64),
        person=np.full(len(spans), person_id, dtype=np.int64),
        view=spans[:, 0] if view is None else np.full(len(spans), view, dtype=np.int64),
        frame_start=frames[spans[:, 1]].astype(np.int64),
        frame_end=frames[spans[:, 2]].astype(np.int64),
        score=np.asarray(score, dtype=float).reshape(-1),
        reason=tuple(reasons),
    )


def _concatenate(parts: list[Suspicions]) -> Suspicions:
    fields = ("kind", "person", "view", "frame_start", "frame_end", "score")
    return Suspicions(
        **{
            f: np.concatenate([getattr(p, f) for p in parts]) if parts else getattr(Suspicions(), f)
            for f in fields
        },
        reason=tuple(r for p in parts for r in p.reason),
    )


def _worst_first(suspicions: Suspicions) -> Suspicions:
    order = np.argsort(-suspicions.score, kind="stable")
    fields = ("kind", "person", "view", "frame_start", "frame_end", "score")
    return Suspicions(
        **{f: getattr(suspicions, f)[order] for f in fields},
        reason=tuple(suspicions.reason[i] for i in order),
    )
