"""Tracking in 3D: the persons followed frame by frame in the world, the per-view tracklets as evidence.

Association groups whole per-view tracklets, so a tracklet that swapped two look-alikes where they
crossed in its image drags the wrong person into the group. In the world, where every calibrated view
triangulates the same body, people who overlap in one image are apart, and their limbs differ even
where their paths cross. Here each person is a target holding its triangulated keypoints; at each frame
the targets are predicted (constant velocity), projected into every view, and each view's detections
are matched to them one to one (median keypoint distance in detection heights, less a small bonus where
the detection's tracklet continues the target: the tracker's link decides only what geometry cannot).
A target is then triangulated again from the views it was matched in, a view that disagrees with the
others is unmatched, and a target seen by one view is moved along that view's rays at its predicted
depths. Detections no target takes start new targets where two views or more of them agree and
association put them in one person; a target that no view sees for ``max_missed_seconds`` ends.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int
from scipy.optimize import linear_sum_assignment

from core.engine.refinement import pieces_from_labels, without_brief_single_view_persons
from core.geometry import pixel_rays, project_points, triangulate_rays
from core.types import Assignment, CameraRig, Observations, Tracklets

_UNMATCHED = 1e6


@dataclass(frozen=True)
class WorldTrackingConfig:
    """How persons are followed in the world from frame to frame."""

    enabled: bool = True
    max_error: float = 0.15
    """A detection fits a target when the median distance between its keypoints and the target's
    projected keypoints is below this fraction of its height."""
    continuity_bonus: float = 0.03
    """Subtracted from that distance where the detection's tracklet was matched to the target at its
    previous detection: the per-view tracker's link breaks ties that geometry leaves."""
    min_keypoint_confidence: float = 0.5
    """Keypoints less confident than this are not compared or triangulated."""
    min_keypoints: int = 3
    """A detection with fewer comparable keypoints cannot be matched."""
    max_missed_seconds: float = 0.5
    """A target that no view sees for longer than this ends."""
    velocity_momentum: float = 0.5
    """Weight of the past in the target's smoothed velocity."""
    window: int = 1
    """Frames of a majority vote along each tracklet before it is cut where its target changes (odd;
    1: none, each frame's match stands: a vote moves the cut away from where a tracker swapped)."""


@dataclass
class _Targets:
    """The live and ended targets, as arrays (a target's index is its id)."""

    keypoints: Float[np.ndarray, "T K 3"]
    velocity: Float[np.ndarray, "T 3"]
    last_frame: Int[np.ndarray, " T"]
    alive: np.ndarray

    @staticmethod
    def empty(num_keypoints: int) -> _Targets:
        return _Targets(
            np.zeros((0, num_keypoints, 3)), np.zeros((0, 3)), np.zeros(0, np.int64), np.zeros(0, bool)
        )

    def add(self, keypoints: Float[np.ndarray, "B K 3"], frame: int) -> None:
        count = keypoints.shape[0]
        self.keypoints = np.concatenate([self.keypoints, keypoints])
        self.velocity = np.concatenate([self.velocity, np.zeros((count, 3))])
        self.last_frame = np.concatenate([self.last_frame, np.full(count, frame)])
        self.alive = np.concatenate([self.alive, np.ones(count, bool)])

    def predicted(self, index: Int[np.ndarray, " M"], frame: int) -> Float[np.ndarray, "M K 3"]:
        elapsed = (frame - self.last_frame[index]).astype(float)
        return self.keypoints[index] + elapsed[:, None, None] * self.velocity[index, None, :]


def track_in_world(
    observations: Observations,
    tracklets: Tracklets,
    proposal: Int[np.ndarray, " N"],
    cameras: CameraRig,
    num_frames: int,
    fps: float,
    config: WorldTrackingConfig,
) -> Int[np.ndarray, " N"]:
    """The target of every observation (-1: none); ``proposal`` is association's person of each
    observation, which says which unmatched detections may start a target together."""
    N, K = observations.keypoints2d.shape[:2]
    label = np.full(N, -1, dtype=np.int64)
    if N == 0 or len(cameras) < 2:
        return label
    view = observations.view
    origins, directions = pixel_rays(
        observations.keypoints2d, cameras.K[view], cameras.dist[view], cameras.R[view], cameras.t[view]
    )
    confident = observations.keypoint_confidence >= config.min_keypoint_confidence
    confident &= np.isfinite(directions).all(axis=-1)
    weight = np.where(confident, observations.keypoint_confidence, 0.0)
    height = np.maximum(observations.bbox[:, 3] - observations.bbox[:, 1], 1.0)
    max_missed = max(1, int(round(config.max_missed_seconds * fps)))
    last_target = np.full(len(tracklets) + 1, -1, dtype=np.int64)  # of each tracklet (last row: none)
    track = np.where(tracklets.observation_tracklet >= 0, tracklets.observation_tracklet, len(tracklets))
    frames = _Frames(observations, origins, directions, weight, height, cameras, config)

    targets = _Targets.empty(K)
    by_frame = np.argsort(observations.frame, kind="stable")
    bounds = np.searchsorted(observations.frame[by_frame], np.arange(num_frames + 1))
    for frame in range(num_frames):
        rows = by_frame[bounds[frame] : bounds[frame + 1]]
        if rows.size == 0:
            continue
        targets.alive &= frame - targets.last_frame <= max_missed
        live = np.flatnonzero(targets.alive)
        if live.size:
            predicted = targets.predicted(live, frame)
            cost = frames.fit(rows, predicted)
            cost -= config.continuity_bonus * (last_target[track[rows]][:, None] == live[None, :])
            matched = _match_per_view(view[rows], cost, config.max_error)
            rows_matched, columns = np.flatnonzero(matched >= 0), matched[matched >= 0]
            keypoints, kept = frames.update(rows[rows_matched], columns, predicted, live.size)
            label[rows[rows_matched[kept]]] = live[columns[kept]]
            seen = np.unique(columns[kept])
            moved = np.nanmean(keypoints[seen] - targets.keypoints[live[seen]], axis=1)
            elapsed = (frame - targets.last_frame[live[seen]])[:, None]
            velocity = np.where(np.isfinite(moved), moved / elapsed, 0.0)
            targets.velocity[live[seen]] = (
                config.velocity_momentum * targets.velocity[live[seen]]
                + (1 - config.velocity_momentum) * velocity
            )
            targets.keypoints[live[seen]] = keypoints[seen]
            targets.last_frame[live[seen]] = frame
        free = rows[label[rows] < 0]
        born = frames.births(free, proposal[free])
        for members, keypoints in born:
            label[members] = targets.alive.size
            targets.add(keypoints[None], frame)
        taken = rows[label[rows] >= 0]
        last_target[track[taken]] = label[taken]
    last_target[-1] = -1
    return label


def _match_per_view(view: Int[np.ndarray, " n"], cost: Float[np.ndarray, "n m"], gate: float) -> np.ndarray:
    """The column matched to each row, one to one within each view; -1 where none fits."""
    matched = np.full(view.size, -1, dtype=np.int64)
    for v in np.unique(view):
        group = np.flatnonzero(view == v)
        block = np.where(cost[group] <= gate, cost[group], _UNMATCHED)
        rows, cols = linear_sum_assignment(block)
        fits = block[rows, cols] < _UNMATCHED
        matched[group[rows[fits]]] = cols[fits]
    return matched


@dataclass(frozen=True)
class _Frames:
    """Per-observation quantities computed once for the whole clip, read frame by frame."""

    observations: Observations
    origins: Float[np.ndarray, "N K 3"]
    directions: Float[np.ndarray, "N K 3"]
    weight: Float[np.ndarray, "N K"]
    height: Float[np.ndarray, " N"]
    cameras: CameraRig
    config: WorldTrackingConfig

    def fit(self, rows: Int[np.ndarray, " n"], keypoints: Float[np.ndarray, "m K 3"]) -> np.ndarray:
        """Median keypoint distance of each observation to each target's projection, in its heights
        (inf where too few keypoints compare)."""
        c = self.cameras
        v = self.observations.view[rows]
        views = np.unique(v)
        projected = project_points(
            keypoints[None], c.K[views, None], c.dist[views, None], c.R[views, None], c.t[views, None]
        )  # (V', m, K, 2)
        projected = projected[np.searchsorted(views, v)]  # (n, m, K, 2)
        distance = np.linalg.norm(projected - self.observations.keypoints2d[rows, None], axis=-1)
        usable = (self.weight[rows, None] > 0) & np.isfinite(distance)
        distance = np.where(usable, distance, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(distance, axis=-1)
        enough = usable.sum(axis=-1) >= self.config.min_keypoints
        return np.where(enough, median / self.height[rows, None], np.inf)

    def triangulated(
        self, rows: Int[np.ndarray, " n"], target: Int[np.ndarray, " n"], count: int, fallback
    ) -> tuple[Float[np.ndarray, "m K 3"], Float[np.ndarray, "m V"]]:
        """Each target's keypoints from its matched observations (``fallback`` where fewer than two
        views see a keypoint: one view's ray at the fallback's depth, or the fallback itself)."""
        V = len(self.cameras)
        K = self.origins.shape[1]
        v = self.observations.view[rows]
        origins = np.zeros((count, K, V, 3))
        directions = np.zeros((count, K, V, 3))
        weight = np.zeros((count, K, V))
        origins[target, :, v] = self.origins[rows]
        directions[target, :, v] = self.directions[rows]
        weight[target, :, v] = self.weight[rows]
        points = triangulate_rays(origins, directions, weight)
        single = (weight > 0).sum(axis=-1) == 1
        along = np.einsum("mkvi,mkvi->mkv", fallback[:, :, None] - origins, directions)
        on_ray = origins + along[..., None] * directions
        alone = np.einsum("mkv,mkvi->mki", (weight > 0).astype(float), on_ray)
        points = np.where(np.isfinite(points), points, np.where(single[..., None], alone, fallback))
        return points

    def update(self, rows, target, predicted, count):
        """Targets triangulated again from their matched rows; a row whose detection lies far from
        what the other views triangulate is unmatched. Returns the keypoints and which rows are kept."""
        points = self.triangulated(rows, target, count, predicted)
        error = self.fit_each(rows, points[target])
        kept = error <= self.config.max_error
        if not kept.all():
            points = self.triangulated(rows[kept], target[kept], count, predicted)
        return points, kept

    def fit_each(self, rows, keypoints: Float[np.ndarray, "n K 3"]) -> Float[np.ndarray, " n"]:
        """Median keypoint distance of each observation to its own target's keypoints, in its heights."""
        c = self.cameras
        v = self.observations.view[rows]
        projected = project_points(keypoints, c.K[v], c.dist[v], c.R[v], c.t[v])
        distance = np.linalg.norm(projected - self.observations.keypoints2d[rows], axis=-1)
        usable = (self.weight[rows] > 0) & np.isfinite(distance)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(np.where(usable, distance, np.nan), axis=-1)
        return np.where(usable.sum(axis=-1) >= self.config.min_keypoints, median / self.height[rows], np.inf)

    def births(self, rows, proposal):
        """New targets, the proposed person with the most views first: its unmatched detections of
        distinct views whose triangulation reprojects onto at least two of them, joined by any other
        unmatched detection that fits it (association may have split one person in two)."""
        born = []
        view = self.observations.view
        nan = np.full((1, self.origins.shape[1], 3), np.nan)
        free = np.ones(rows.size, dtype=bool)
        persons, first = np.unique(proposal, return_index=True)
        views = np.array([np.unique(view[rows[proposal == p]]).size for p in persons])
        for person in persons[np.argsort(-views, kind="stable")]:
            members = np.flatnonzero(free & (proposal == person))
            if person < 0 or np.unique(view[rows[members]]).size < max(2, members.size):
                continue
            group = np.zeros(members.size, dtype=np.int64)
            points = self.triangulated(rows[members], group, 1, nan)
            kept = self.fit_each(rows[members], points[group]) <= self.config.max_error
            if kept.sum() < 2:
                continue
            members = members[kept]
            points = self.triangulated(rows[members], group[kept], 1, nan)
            others = np.flatnonzero(free & ~np.isin(view[rows], view[rows[members]]))
            others = np.setdiff1d(others, members)
            if others.size:
                cost = self.fit(rows[others], points)
                joining = _match_per_view(view[rows[others]], cost, self.config.max_error) >= 0
                if joining.any():
                    members = np.concatenate([members, others[joining]])
                    points = self.triangulated(rows[members], np.zeros(members.size, np.int64), 1, nan)
            free[members] = False
            born.append((rows[members], points[0]))
        return born


def world_assignment(
    observations: Observations,
    tracklets: Tracklets,
    proposal: Int[np.ndarray, " N"],
    cameras: CameraRig,
    num_frames: int,
    fps: float,
    config: WorldTrackingConfig,
    min_single_view_frames: int,
) -> Assignment:
    """The assignment the world targets make (see the module docstring), each tracklet cut where its
    target changes.

    Targets that one tracklet runs through and that never coexist are one person lost and found again.
    A detection no target took stays with its tracklet's target where no other view saw that target at
    its frame (someone only one camera sees for a while). The rest are dropped, unless association's
    person for them never became a target: someone seen by one view only, kept as association grouped
    them (``min_single_view_frames`` drops the scraps).
    """
    target = track_in_world(observations, tracklets, proposal, cameras, num_frames, fps, config)
    target = _joined_through_tracklets(target, tracklets.observation_tracklet, observations.frame, num_frames)
    target = _continued_along_tracklets(target, tracklets.observation_tracklet, observations, num_frames)
    # A proposed person that became a target has had its leftovers rejected by geometry; one that
    # never did is someone no two views triangulate together, kept as association grouped them.
    untracked = (proposal >= 0) & ~np.isin(proposal, proposal[target >= 0])
    offset = int(target.max(initial=-1)) + 1
    person = np.where(target >= 0, target, np.where(untracked, offset + proposal, -1))
    person_ids = np.arange(int(person.max(initial=-1)) + 1)
    pieces = pieces_from_labels(observations, tracklets, person, person_ids, config.window)
    return without_brief_single_view_persons(pieces, min_single_view_frames)


def _joined_through_tracklets(
    target: Int[np.ndarray, " N"], track: Int[np.ndarray, " N"], frame: Int[np.ndarray, " N"], num_frames: int
) -> Int[np.ndarray, " N"]:
    """Targets merged where a tracklet passes from one to the other and the two never coexist."""
    count = int(target.max(initial=-1)) + 1
    if count < 2:
        return target
    occupied = np.zeros((count, num_frames), dtype=bool)
    occupied[target[target >= 0], frame[target >= 0]] = True
    rows = np.flatnonzero((target >= 0) & (track >= 0))
    rows = rows[np.lexsort((frame[rows], track[rows]))]
    step = (track[rows[1:]] == track[rows[:-1]]) & (target[rows[1:]] != target[rows[:-1]])
    pairs = np.stack([target[rows[:-1]][step], target[rows[1:]][step]], axis=1)
    pairs = pairs[np.argsort(frame[rows[1:]][step], kind="stable")]
    root = np.arange(count)
    for a, b in pairs:  # one union per transition of a tracklet: a handful
        a, b = root[a], root[b]
        if a != b and not (occupied[a] & occupied[b]).any():
            occupied[a] |= occupied[b]
            root[root == b] = a
    return np.where(target >= 0, root[np.maximum(target, 0)], -1)


def _continued_along_tracklets(
    target: Int[np.ndarray, " N"], track: Int[np.ndarray, " N"], observations: Observations, num_frames: int
) -> Int[np.ndarray, " N"]:
    """Detections no target took given their tracklet's target (its last one before them, else its
    next one) at frames where no view saw that target."""
    frame = observations.frame
    rows = np.flatnonzero(track >= 0)
    rows = rows[np.lexsort((frame[rows], track[rows]))]
    labelled = target[rows] >= 0
    position = np.arange(rows.size)
    before = np.maximum.accumulate(np.where(labelled, position, -1))
    after = np.minimum.accumulate(np.where(labelled, position, rows.size)[::-1])[::-1]
    same_before = (before >= 0) & (track[rows[np.maximum(before, 0)]] == track[rows])
    same_after = (after < rows.size) & (track[rows[np.minimum(after, rows.size - 1)]] == track[rows])
    candidate = np.where(
        same_before,
        target[rows[np.maximum(before, 0)]],
        np.where(same_after, target[rows[np.minimum(after, rows.size - 1)]], -1),
    )
    count = int(target.max(initial=-1)) + 1
    seen = np.zeros((count + 1, num_frames), dtype=bool)
    seen[target[target >= 0], frame[target >= 0]] = True
    fill = ~labelled & (candidate >= 0) & ~seen[candidate, frame[rows]]
    continued = target.copy()
    continued[rows[fill]] = candidate[fill]
    return continued
