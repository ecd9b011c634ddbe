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

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int
from scipy.optimize import linear_sum_assignment

from core.engine.refinement import pieces_from_labels, without_brief_single_view_persons
from core.geometry import pixel_rays, triangulate_rays
from core.types import Assignment, CameraRig, Observations, Tracklets

_UNMATCHED = 1e6


@dataclass(frozen=True)
class WorldTrackingConfig:
    """How persons are followed in the world from frame to frame."""

    enabled: bool = True
    """Follow the persons in the world (off: association's tracklets as they are, checked against the
    persons fused from them by ``refinement``)."""
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
    partial_quantile: float = 1 / 3
    """A detection no target takes by its median may still go to a target that no other detection of
    its view explains, when this share of its keypoints fits (a partial read: a limb hidden, or taken
    from someone else); fusion's robust triangulation then uses the keypoints that agree."""
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
    tracker = _WorldTracker(observations, tracklets, cameras, fps, config)
    if len(observations) == 0 or len(cameras) < 2:
        return tracker.label
    by_frame = np.argsort(observations.frame, kind="stable")
    bounds = np.searchsorted(observations.frame[by_frame], np.arange(num_frames + 1))
    for frame in range(num_frames):
        rows = by_frame[bounds[frame] : bounds[frame + 1]]
        if rows.size:
            tracker.follow(frame, rows)
            tracker.merge_duplicates(rows)
            tracker.start(frame, rows, proposal[rows])
    return tracker.labels()


class _WorldTracker:
    """The targets, and which observations each has taken so far."""

    def __init__(self, observations, tracklets: Tracklets, cameras: CameraRig, fps: float, config):
        self.config = config
        self.evidence = _Evidence.build(observations, cameras, config)
        self.targets = _Targets.empty(observations.keypoints2d.shape[1])
        self.label = np.full(len(observations), -1, dtype=np.int64)
        self.merged_into = np.zeros(0, dtype=np.int64)
        """Each target's own id, or the target it was found to duplicate."""
        self.max_missed = max(1, int(round(config.max_missed_seconds * fps)))
        none = len(tracklets)
        self.track = np.where(tracklets.observation_tracklet >= 0, tracklets.observation_tracklet, none)
        self.last_target = np.full(none + 1, -1, dtype=np.int64)
        """The target each tracklet's last matched detection went to (last entry: no tracklet)."""

    def follow(self, frame: int, rows: Int[np.ndarray, " n"]) -> None:
        """The live targets predicted to ``frame``, matched to its detections and triangulated again."""
        targets, config = self.targets, self.config
        targets.alive &= frame - targets.last_frame <= self.max_missed
        live = np.flatnonzero(targets.alive)
        if live.size == 0:
            return
        predicted = targets.predicted(live, frame)
        cost = self.evidence.fit(rows, predicted)
        continuing = self.last_target[self.track[rows]][:, None] == live[None, :]
        cost -= config.continuity_bonus * continuing
        matched = _match_per_view(self.evidence.view[rows], cost, config.max_error)
        rows_matched, columns = np.flatnonzero(matched >= 0), matched[matched >= 0]
        keypoints, kept = self.evidence.update(rows[rows_matched], columns, predicted, live.size)
        self._take(rows[rows_matched[kept]], live[columns[kept]])
        seen = np.unique(columns[kept])
        moved = (keypoints[seen] - targets.keypoints[live[seen]]).mean(axis=1)
        velocity = moved / (frame - targets.last_frame[live[seen]])[:, None]
        momentum = config.velocity_momentum
        targets.velocity[live[seen]] = momentum * targets.velocity[live[seen]] + (1 - momentum) * velocity
        targets.keypoints[live[seen]] = keypoints[seen]
        targets.last_frame[live[seen]] = frame
        self._take_partial_reads(rows, live[seen])

    def _take_partial_reads(self, rows: Int[np.ndarray, " n"], updated: Int[np.ndarray, " m"]) -> None:
        """Detections no target took, given to a target that two views or more triangulated at this
        frame, that no detection of their view explains, and that ``partial_quantile`` of their
        keypoints fit (a limb hidden, or read from someone else). They take no part in the target's
        state; fusion's robust triangulation later uses the keypoints of theirs that agree."""
        view = self.evidence.view[rows]
        free = np.flatnonzero(self.label[rows] < 0)
        if free.size == 0 or updated.size == 0:
            return
        taken = np.flatnonzero(self.label[rows] >= 0)
        explained = np.zeros((self.targets.alive.size, len(self.evidence.cameras)), dtype=bool)
        explained[self.label[rows[taken]], view[taken]] = True
        explained = explained[updated]
        cost = self.evidence.fit(rows[free], self.targets.keypoints[updated], self.config.partial_quantile)
        cost[explained[:, view[free]].T | (explained.sum(axis=1) < 2)[None, :]] = np.inf
        partial = _match_per_view(view[free], cost, self.config.max_error)
        self._take(rows[free[partial >= 0]], updated[partial[partial >= 0]])

    def merge_duplicates(self, rows: Int[np.ndarray, " n"]) -> None:
        """Two targets following one person, each with views the other lacks (an association that split
        the person, a target found again while the old one lived on): the younger is merged into the
        older, its whole past included. Each one's detections must fit the other within half the gate;
        two people passing close are seen by the same views, so never qualify."""
        taken = rows[self.label[rows] >= 0]
        ids, member = np.unique(self.label[taken], return_inverse=True)
        if ids.size < 2:
            return
        views = np.zeros((ids.size, len(self.evidence.cameras)))
        views[member, self.evidence.view[taken]] = 1.0
        disjoint = (views @ views.T) == 0
        np.fill_diagonal(disjoint, False)
        if not disjoint.any():
            return
        fits = self.evidence.fit(taken, self.targets.keypoints[ids]) <= self.config.max_error / 2
        rows_of = np.zeros((ids.size, taken.size))
        rows_of[member, np.arange(taken.size)] = 1.0
        all_fit = rows_of @ fits == rows_of.sum(axis=1)[:, None]  # every detection of a fits b
        for a, b in zip(*np.nonzero(np.triu(disjoint & all_fit & all_fit.T)), strict=True):
            older, younger = self.merged_into[ids[a]], self.merged_into[ids[b]]
            if older == younger:
                continue
            self.merged_into[self.merged_into == younger] = older
            self.targets.alive[younger] = False
            self.label[taken[self.label[taken] == younger]] = older
            self.last_target[self.last_target == younger] = older

    def start(self, frame: int, rows, proposal) -> None:
        """New targets from the detections no target took."""
        free = self.label[rows] < 0
        for members, keypoints in self.evidence.births(rows[free], proposal[free]):
            self.targets.add(keypoints[None], frame)
            self.merged_into = np.append(self.merged_into, self.targets.alive.size - 1)
            self._take(members, np.full(members.size, self.targets.alive.size - 1))

    def _take(self, rows, target) -> None:
        self.label[rows] = target
        self.last_target[self.track[rows]] = target
        self.last_target[-1] = -1

    def labels(self) -> Int[np.ndarray, " N"]:
        """Each observation's target, duplicates under the target they were merged into."""
        return np.append(self.merged_into, -1)[self.label]  # label -1 reads the last entry


def _match_per_view(view: Int[np.ndarray, " n"], cost: Float[np.ndarray, "n m"], gate: float) -> np.ndarray:
    """The column matched to each row, one to one within each view; -1 where none fits.

    Where every row's cheapest column is taken by no other row of its view, that is the optimal
    assignment (no assignment costs less than the sum of the row minima): the Hungarian algorithm only
    runs for the views where two rows want the same column.
    """
    matched = np.full(view.size, -1, dtype=np.int64)
    if cost.shape[1] == 0:
        return matched
    best = np.argmin(cost, axis=1)
    fits = cost[np.arange(view.size), best] <= gate
    key = view[fits] * cost.shape[1] + best[fits]
    contested = np.unique(view[fits][np.bincount(key)[key] > 1]) if key.size else key
    matched[fits] = best[fits]
    for v in contested:
        group = np.flatnonzero(view == v)
        block = np.where(cost[group] <= gate, cost[group], _UNMATCHED)
        rows, cols = linear_sum_assignment(block)
        matched[group] = -1
        ok = block[rows, cols] < _UNMATCHED
        matched[group[rows[ok]]] = cols[ok]
    return matched


def _masked_quantile(
    values: Float[np.ndarray, "... K"], usable: np.ndarray, quantile: float | np.ndarray = 0.5
) -> Float[np.ndarray, ...]:
    """Quantile of each row's usable values, interpolated between order statistics as ``np.quantile``
    does (NaN where none is usable), by one sort: ``nanquantile`` is far slower on the many short rows
    here. ``quantile`` may differ per row."""
    count = usable.sum(axis=-1)
    ordered = np.sort(np.where(usable, values, np.inf), axis=-1)
    position = np.asarray(quantile) * np.maximum(count - 1, 0)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, np.maximum(count - 1, 0))
    below = np.take_along_axis(ordered, low[..., None], axis=-1)[..., 0]
    above = np.take_along_axis(ordered, high[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore"):
        value = below + (position - low) * (above - below)
    return np.where(count > 0, np.where(position == low, below, value), np.nan)


@dataclass(frozen=True)
class _Evidence:
    """Per-observation quantities computed once for the whole clip, read frame by frame.

    A target's keypoint is compared with a detection through the detection's ray (undistorted once
    here): its distance from the ray times the focal length over its depth is its distance from the
    keypoint in pixels, with no projection or lens model per frame.
    """

    keypoints: Float[np.ndarray, "N K 2"]
    view: Int[np.ndarray, " N"]
    camera_centre: Float[np.ndarray, "N 3"]
    axis: Float[np.ndarray, "N 3"]
    """The camera's viewing direction, world frame."""
    focal: Float[np.ndarray, " N"]
    directions: Float[np.ndarray, "N K 3"]
    """Unit rays of the keypoints, world frame (zero where not usable)."""
    weight: Float[np.ndarray, "N K"]
    """Confidence of each keypoint, 0 where it is too low to compare or triangulate."""
    height: Float[np.ndarray, " N"]
    centre_ray: Float[np.ndarray, "N 3"]
    """The ray through the mean of the usable keypoints."""
    cameras: CameraRig
    config: WorldTrackingConfig

    @staticmethod
    def build(observations: Observations, cameras: CameraRig, config: WorldTrackingConfig) -> _Evidence:
        view = observations.view
        K, dist, R, t = cameras.K[view], cameras.dist[view], cameras.R[view], cameras.t[view]
        points = observations.keypoints2d
        usable = observations.keypoint_confidence >= config.min_keypoint_confidence
        usable &= np.isfinite(points).all(axis=-1)
        centre = (
            np.where(usable[..., None], points, 0.0).sum(axis=1) / np.maximum(usable.sum(axis=1), 1)[:, None]
        )
        origins, directions = pixel_rays(np.concatenate([points, centre[:, None]], axis=1), K, dist, R, t)
        usable &= np.isfinite(directions[:, :-1]).all(axis=-1)
        return _Evidence(
            keypoints=points,
            view=view,
            camera_centre=origins[:, 0],
            axis=R[:, 2],
            focal=(K[:, 0, 0] + K[:, 1, 1]) / 2,
            directions=np.where(usable[..., None], directions[:, :-1], 0.0),
            weight=np.where(usable, observations.keypoint_confidence, 0.0),
            height=np.maximum(observations.bbox[:, 3] - observations.bbox[:, 1], 1.0),
            centre_ray=np.nan_to_num(directions[:, -1]),
            cameras=cameras,
            config=config,
        )

    def _pixels_off(self, rows, points: Float[np.ndarray, "... 3"], directions) -> np.ndarray:
        """Pixel distance of ``points`` from rays of the observations ``rows`` (broadcast on the
        leading axis); inf behind the camera."""
        shape = (-1,) + (1,) * (points.ndim - 2)
        relative = points - self.camera_centre[rows].reshape(*shape, 3)
        along = np.einsum("...i,...i->...", relative, directions)
        off = np.sqrt(np.maximum(np.einsum("...i,...i->...", relative, relative) - along**2, 0.0))
        depth = np.einsum("...i,...i->...", relative, self.axis[rows].reshape(*shape, 3))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(depth > 1e-9, off * self.focal[rows].reshape(shape) / depth, np.inf)

    def fit(
        self, rows: Int[np.ndarray, " n"], keypoints: Float[np.ndarray, "m K 3"], quantile: float = 0.5
    ) -> np.ndarray:
        """Median (or another ``quantile``) keypoint distance of each observation to each target, in its
        heights; inf where too few keypoints compare or the target's centre is a height away or more
        from the detection's."""
        centre = keypoints.mean(axis=1)  # (m, 3)
        gap = self._pixels_off(rows, centre[None], self.centre_ray[rows, None])  # (n, m)
        near, column = np.nonzero(gap < self.height[rows, None])
        cost = np.full((rows.size, keypoints.shape[0]), np.inf)
        if near.size:
            cost[near, column] = self.fit_each(rows[near], keypoints[column], quantile)
        return cost

    def fit_each(self, rows, keypoints: Float[np.ndarray, "n K 3"], quantile=0.5) -> Float[np.ndarray, " n"]:
        """Median (or another ``quantile``, per row) keypoint distance of each observation to its own
        target's keypoints, in its heights."""
        distance = self._pixels_off(rows, keypoints, self.directions[rows])
        usable = (self.weight[rows] > 0) & np.isfinite(distance)
        median = _masked_quantile(distance, usable, quantile) / self.height[rows]
        return np.where(usable.sum(axis=-1) >= self.config.min_keypoints, median, np.inf)

    def triangulated(
        self, rows: Int[np.ndarray, " n"], target: Int[np.ndarray, " n"], count: int, fallback
    ) -> Float[np.ndarray, "m K 3"]:
        """Each target's keypoints from its matched observations; where one view sees a keypoint, the
        point of its ray nearest to ``fallback``; where none does, ``fallback`` itself."""
        V, K = len(self.cameras), self.directions.shape[1]
        v = self.view[rows]
        origins = np.zeros((count, K, V, 3))
        directions = np.zeros((count, K, V, 3))
        weight = np.zeros((count, K, V))
        origins[target, :, v] = self.camera_centre[rows, None]
        directions[target, :, v] = self.directions[rows]
        weight[target, :, v] = self.weight[rows]
        points = triangulate_rays(origins, directions, weight)
        seeing = weight > 0
        along = np.einsum("mkvi,mkvi->mkv", fallback[:, :, None] - origins, directions)
        nearest = np.einsum("mkv,mkvi->mki", seeing, origins + along[..., None] * directions)
        single = (seeing.sum(axis=-1) == 1)[..., None]
        return np.where(np.isfinite(points), points, np.where(single, nearest, fallback))

    def update(self, rows, target, predicted, count):
        """Targets triangulated again from their matched rows; a row whose detection lies far from
        what the other views triangulate is unmatched. Returns the keypoints and which rows are kept."""
        points = self.triangulated(rows, target, count, predicted)
        kept = self.fit_each(rows, points[target]) <= self.config.max_error
        if not kept.all():
            points = self.triangulated(rows[kept], target[kept], count, predicted)
        return points, kept

    def _single_target(self, rows) -> Float[np.ndarray, "K 3"]:
        """One target's keypoints from its observations ``rows`` (NaN where fewer than two views see
        a keypoint)."""
        nan = np.full((1, self.directions.shape[1], 3), np.nan)
        return self.triangulated(rows, np.zeros(rows.size, np.int64), 1, nan)[0]

    def births(self, rows, proposal) -> list[tuple[np.ndarray, np.ndarray]]:
        """New targets, the proposed person with the most views first: its unmatched detections of
        distinct views whose triangulation reprojects onto at least two of them, joined by any other
        unmatched detection that fits it (association may have split one person in two)."""
        born = []
        keep = proposal >= 0
        rows, proposal = rows[keep], proposal[keep]
        if rows.size < 2:
            return born
        view = self.view[rows]
        pairs = np.unique(np.stack([proposal, view], axis=1), axis=0)  # (person, view) seen
        persons, views = np.unique(pairs[:, 0], return_counts=True)
        free = np.ones(rows.size, dtype=bool)
        for person in persons[views >= 2][np.argsort(-views[views >= 2], kind="stable")]:
            members = np.flatnonzero(free & (proposal == person))
            if np.unique(view[members]).size < max(2, members.size):
                continue  # taken by a target born before, or two detections in one view
            points = self._single_target(rows[members])
            members = members[self.fit_each(rows[members], points[None]) <= self.config.max_error]
            if members.size < 2:
                continue
            others = np.flatnonzero(free & ~np.isin(view, view[members]))
            if others.size:
                joining = _match_per_view(
                    view[others], self.fit(rows[others], points[None]), self.config.max_error
                )
                members = np.concatenate([members, others[joining >= 0]])
            points = self._single_target(rows[members])
            finite = np.isfinite(points).all(axis=-1)
            free[members] = False  # a keypoint no two views see starts at the body's centre
            born.append((rows[members], np.where(finite[:, None], points, points[finite].mean(axis=0))))
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
