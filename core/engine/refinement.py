"""Geometric verification of the assignment: every observation checked against every fused person.

Per-view tracklets are not always pure: a tracker can jump from one person to another where they
overlap in the image, and a detector can return a chimera of two overlapping people. Association works
on whole tracklets, so such a tracklet drags a wrong view into a person. Once persons are fused (robust
triangulation outvotes the wrong view), each observation is compared with every person's fused joints
projected into its view, provided another view supports that person at that frame (so that a person
seen by one view only cannot claim an observation just because it was built from it). Per view and
frame, observations are matched to persons by the Hungarian algorithm; an observation that fits no
person keeps its person if that person is seen by its view alone (someone only one camera sees) and
its tracklet is long enough not to be a false positive. The
per-frame labels are then smoothed along each tracklet by a majority vote, and the tracklets are cut
into pieces where their label changes. The result is an ordinary :class:`Assignment`, which an
annotator can still edit. A few rounds, each against the persons the last one's assignment fuses.

Every observation kind is checked by its keypoints: triangulated ones (bare keypoints) reproject onto
the detections they came from; a body-model person (its views' averaged pose on the triangulated
position) lands within a few hundredths of a body height of them, far closer than another person.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int
from scipy.optimize import linear_sum_assignment

from core.geometry import project_points
from core.types import Assignment, CameraRig, Observations, PersonTrack, Tracklets

_UNMATCHED = 1e6
_GATE = 1.0
"""Persons whose projected centre is farther than this many of an observation's heights from its
keypoints' centre cannot fit it (``max_error`` is a tenth of that) and are not compared in full."""
_FAR = 1e3
"""The error of a person beyond ``_GATE``: does not fit, but is there to be compared (not inf)."""
_CHUNK_POINTS = 1_000_000
"""Projected joints held at once (views or observations × persons × frames × joints)."""


@dataclass(frozen=True)
class RefinementConfig:
    """How observations are re-checked against the fused persons (when ``world_tracking`` is off: the
    world targets do this job and more, frame by frame)."""

    enabled: bool = True
    max_error: float = 0.1
    """An observation fits a person when the median distance between its keypoints and the person's
    projected joints is below this fraction of its bounding-box height."""
    window: int = 25
    """Frames of the majority vote along a tracklet (odd)."""
    min_keypoint_confidence: float = 0.5
    """Keypoints less confident than this are not compared."""
    rounds: int = 3
    """Rounds of matching the observations to the persons fused from the previous round's assignment
    (each round's persons are purer, so the next round's matches are surer) …"""
    settled_share: float = 0.005
    """… until a round moves at most this share of the observations to another person."""
    min_single_view_frames: int = 30
    """A person only one view sees is kept only from tracklets at least this long: shorter ones are far
    more often a detector's false positive (e.g. a second, smaller skeleton found in a person's legs)."""


def fit_errors(
    observations: Observations,
    persons: Sequence[PersonTrack],
    cameras: CameraRig,
    num_frames: int,
    min_confidence: float,
) -> Float[np.ndarray, "N P"]:
    """Median keypoint distance (in bounding-box heights) of every observation to every person at its
    frame; inf where the person is absent, is supported by no other view than the observation's own at
    that frame, or no keypoint can be compared; ``_FAR`` where it is farther than a body height
    (``_GATE``), which no threshold lets fit."""
    N, P = len(observations), len(persons)
    errors = np.full((N, P), np.inf)
    if N == 0 or P == 0:
        return errors
    names = persons[0].joint_names
    pairs = [(k, names.index(n)) for k, n in enumerate(observations.keypoint_names) if n in names]
    if not pairs:
        return errors
    keypoint, joint = map(np.array, zip(*pairs, strict=True))
    joints = np.full((P, num_frames, joint.size, 3), np.nan)
    views = np.zeros((P, num_frames, len(cameras)), dtype=bool)
    measured_joints = np.zeros((P, num_frames, joint.size), dtype=bool)  # standing on a view (not placed)
    for index, person in enumerate(persons):
        joints[index, person.frames] = person.joints[:, joint]
        views[index, person.frames] = person.views
        measured_joints[index, person.frames] = person.joint_views[:, joint] > 0
    view, frame = observations.view, observations.frame
    height = np.maximum(observations.bbox[:, 3] - observations.bbox[:, 1], 1.0)
    detected = observations.keypoints2d[:, keypoint]
    confident = observations.keypoint_confidence[:, keypoint] >= min_confidence
    per_frame = P * joint.size * max(len(cameras), int(np.ceil(N / max(num_frames, 1))))
    chunk = max(1, _CHUNK_POINTS // per_frame)  # frames per chunk: bounded memory
    by_frame = np.argsort(frame, kind="stable")
    bounds = np.searchsorted(frame[by_frame], np.arange(0, num_frames + chunk, chunk))
    for k, first in enumerate(range(0, num_frames, chunk)):  # every person projected once per view, frame
        rows = by_frame[bounds[k] : bounds[k + 1]]
        if rows.size == 0:
            continue
        at = joints[:, first : first + chunk]  # (P, t, J, 3)
        projected = np.stack(
            [
                project_points(at, cameras.K[c], cameras.dist[c], cameras.R[c], cameras.t[c])
                for c in range(len(cameras))
            ]
        )  # (V, P, t, J, 2)
        v, t = view[rows], frame[rows] - first
        others = views[:, frame[rows]].sum(axis=-1) - views[:, frame[rows], v]  # (P, n)
        # Only persons near the observation (the centre of its confident keypoints within a body height
        # of the centre of the person's measured joints) are compared in full.
        measured = measured_joints[:, first : first + chunk, :, None]  # (P, t, J, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # absent persons, nothing confident: NaN
            centre = np.nanmean(np.where(measured, projected, np.nan), axis=-2)  # (V, P, t, 2)
            seen = np.nanmean(np.where(confident[rows, :, None], detected[rows], np.nan), axis=1)  # (n, 2)
        gap = np.linalg.norm(centre[v, :, t] - seen[:, None], axis=-1)
        comparable = np.isfinite(gap) & (others.T >= 1)  # present, and another view supports them
        errors[rows] = np.where(comparable, _FAR, np.inf)
        n, person = np.nonzero(comparable & (gap < _GATE * height[rows, None]))
        distance = np.linalg.norm(projected[v[n], person, t[n]] - detected[rows[n]], axis=-1)  # (M, J)
        distance = np.where(confident[rows[n]] & np.isfinite(distance), distance, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: nothing comparable
            median = np.nanmedian(distance, axis=-1)
        errors[rows[n], person] = np.where(np.isfinite(median), median / height[rows[n]], np.inf)
    return errors


def match_per_frame(
    observations: Observations, errors: Float[np.ndarray, "N P"], max_error: float
) -> Int[np.ndarray, " N"]:
    """Best person of each observation, one-to-one within each (view, frame); -1 if none fits."""
    label = np.full(len(observations), -1, dtype=np.int64)
    if errors.shape[1] == 0:
        return label
    frames = int(observations.frame.max(initial=0)) + 1
    key = observations.view.astype(np.int64) * frames + observations.frame
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    for group in np.split(order, bounds):  # one small assignment problem per (view, frame)
        cost = np.where(errors[group] <= max_error, errors[group], _UNMATCHED)
        rows, cols = linear_sum_assignment(cost)
        fits = cost[rows, cols] < _UNMATCHED
        label[group[rows[fits]]] = cols[fits]
    return label


def pieces_from_labels(
    observations: Observations,
    tracklets: Tracklets,
    label: Int[np.ndarray, " N"],
    person_ids: Int[np.ndarray, " P"],
    window: int,
) -> Assignment:
    """Majority-vote each tracklet's per-frame labels over ``window`` frames, then cut it where the voted
    label changes; frames voted "nobody" belong to no piece."""
    keys = ("view", "tracklet", "frame_start", "frame_end", "person")
    columns: dict[str, list[int]] = {k: [] for k in keys}
    track = tracklets.observation_tracklet
    P = person_ids.size
    for tracklet in range(len(tracklets)):  # one vote per tracklet, vectorised over its frames
        rows = np.flatnonzero(track == tracklet)
        rows = rows[np.argsort(observations.frame[rows])]
        if rows.size == 0:
            continue
        votes = np.zeros((rows.size + 1, P + 1))
        votes[np.arange(1, rows.size + 1), label[rows] + 1] = 1.0  # column 0: nobody
        cumulative = np.cumsum(votes, axis=0)
        half = window // 2
        index = np.arange(rows.size)
        upper, lower = np.minimum(index + half + 1, rows.size), np.maximum(index - half, 0)
        voted = np.argmax(cumulative[upper] - cumulative[lower], axis=1) - 1
        change = np.flatnonzero(np.diff(voted)) + 1
        for run in np.split(np.arange(rows.size), change):
            if voted[run[0]] < 0:
                continue
            columns["view"].append(int(tracklets.view[tracklet]))
            columns["tracklet"].append(tracklet)
            columns["frame_start"].append(int(observations.frame[rows[run[0]]]))
            columns["frame_end"].append(int(observations.frame[rows[run[-1]]]))
            columns["person"].append(int(person_ids[voted[run[0]]]))
    return Assignment(**{k: np.array(v, dtype=np.int64) for k, v in columns.items()})


def without_brief_single_view_persons(assignment: Assignment, min_frames: int) -> Assignment:
    """The assignment without the persons that one view alone sees for fewer than ``min_frames``
    frames: a detector's false positive, or a scrap of someone the matching left over (a ghost)."""
    persons, index = np.unique(assignment.person, return_inverse=True)
    views = np.zeros((persons.size, int(assignment.view.max(initial=0)) + 1), dtype=bool)
    views[index, assignment.view] = True
    frames = np.bincount(
        index, weights=assignment.frame_end - assignment.frame_start + 1, minlength=persons.size
    )
    brief = (views.sum(axis=1) == 1) & (frames < min_frames)
    keep = ~brief[index]
    return Assignment(
        assignment.view[keep],
        assignment.tracklet[keep],
        assignment.frame_start[keep],
        assignment.frame_end[keep],
        assignment.person[keep],
    )


def refine_assignment(
    observations: Observations,
    tracklets: Tracklets,
    previous: Assignment,
    persons: Sequence[PersonTrack],
    cameras: CameraRig,
    num_frames: int,
    config: RefinementConfig,
) -> Assignment:
    """The assignment that the fused ``persons`` support (see the module docstring)."""
    if not persons:  # nothing was fused (every tracklet too short, say): no person supports anything
        return Assignment.from_tracklet_persons(tracklets, np.full(len(tracklets), -1))
    errors = fit_errors(observations, persons, cameras, num_frames, config.min_keypoint_confidence)
    label = match_per_frame(observations, errors, config.max_error)
    person_ids = np.array([p.person_id for p in persons], dtype=np.int64)
    column = np.full(int(person_ids.max(initial=-1)) + 2, -1)
    column[person_ids] = np.arange(person_ids.size)
    before = column[previous.person_of(tracklets.observation_tracklet, observations.frame)]
    previous_unsupported = np.isinf(errors[np.arange(errors.shape[0]), np.maximum(before, 0)])
    track = tracklets.observation_tracklet
    long_enough = tracklets.length[np.maximum(track, 0)] >= config.min_single_view_frames
    single_view = (before >= 0) & previous_unsupported & (track >= 0) & long_enough
    label = np.where((label < 0) & single_view, before, label)
    pieces = pieces_from_labels(observations, tracklets, label, person_ids, config.window)
    return without_brief_single_view_persons(pieces, config.min_single_view_frames)
