"""Cross-view association: tracklets of different views → persons, from geometry alone.

Appearance fails on uniformed subjects; geometry does not. Two tracklets of different views are the
same person when, over the frames they share, their world-frame positions agree (each view's camera-frame
position estimate mapped through its camera) and their canonical (root-relative, body-frame) poses agree:

    cost(a, b) = mean over shared frames of  w_pos · ‖X_a − X_b‖ + w_pose · rms_j ‖θ_a,j − θ_b,j‖
                                            + w_ray · mean_k dist(ray_a,k, ray_b,k)

The last term is this project's addition for calibrated rigs: the distance between the two views'
back-projected rays of the same body keypoint (shoulders, elbows, wrists, hips, knees, ankles), which is
near zero for the same person whatever the monocular depth error, and large otherwise except by an
epipolar coincidence that the other keypoints and the position term break. It is off by default since
world tracking (``world_tracking``) compares every keypoint through its ray at every frame.

The V-view problem is solved view by view with the Hungarian algorithm against the persons found so far
(a person's cost to a tracklet aggregates all its member tracklets over all shared frames), then persons
that never conflict (no two of their tracklets in one view at the same time) and are close enough are
merged. Persons are clusters, so the result is consistent and cycle-free by construction; a cost above
``gate`` never links, so a person seen in one view only stays separate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Bool, Float, Int
from scipy.optimize import linear_sum_assignment

from core.geometry import line_distances, pixel_rays
from core.types import Assignment, CameraRig, Observations, Tracklets

_INFEASIBLE = 1e9
_RAY_KEYPOINTS = tuple(
    f"{side}_{part}"
    for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
    for side in ("left", "right")
)


@dataclass(frozen=True)
class AssociationConfig:
    """How tracklets of different views are grouped into persons."""

    position_weight: float = 0.8
    """w_pos: weight of the world-position distance (metres)."""
    pose_weight: float = 0.2
    """w_pose: weight of the canonical-pose distance (RMS over joints, metres)."""
    ray_weight: float = 0.0
    """w_ray: weight of the mean distance between corresponding keypoint rays (metres); 0: the paper's
    cost. World tracking compares every keypoint through its ray frame by frame, so association only
    proposes who may start a target and the paper's cost does as well (the same precision on the
    look-alike and crowd benchmarks, a quarter of the time on 20 persons × 16 views); with world
    tracking off, 1.0 raises association precision in crowds."""
    min_keypoint_confidence: float = 0.5
    """Keypoints less confident than this in either view are left out of the ray term."""
    gate: float = 1.0
    """Largest mean cost (metres) at which two tracklets (or a tracklet and a person) may be linked."""
    min_shared_frames: int = 5
    """Tracklets sharing fewer frames are not compared."""
    pair_budget: int = 2_000_000
    """Observation pairs per batch when accumulating pairwise costs (bounds memory)."""


@dataclass(frozen=True)
class PairwiseCosts:
    """Costs between every two tracklets, summed over the frames they share."""

    cost_sum: Float[np.ndarray, "K K"]
    shared_frames: Int[np.ndarray, "K K"]
    conflict: Bool[np.ndarray, "K K"]
    """Same view and overlapping in time: can never be the same person."""

    @property
    def mean_cost(self) -> Float[np.ndarray, "K K"]:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.shared_frames > 0, self.cost_sum / self.shared_frames, np.inf)


@dataclass(frozen=True)
class AssociationResult:
    assignment: Assignment
    tracklet_person: Int[np.ndarray, " K"]
    """Person of each tracklet; -1 for none."""
    costs: PairwiseCosts


def world_positions(observations: Observations, cameras: CameraRig) -> Float[np.ndarray, "N 3"]:
    """Each observation's camera-frame position estimate mapped to the world frame (scene units)."""
    R, t = cameras.R[observations.view], cameras.t[observations.view]
    return np.einsum("nji,nj->ni", R, observations.position_cam - t)


def pairwise_costs(
    observations: Observations,
    tracklets: Tracklets,
    cameras: CameraRig,
    config: AssociationConfig,
    metres_per_unit: float = 1.0,
) -> PairwiseCosts:
    """Accumulate the association cost of every tracklet pair over their shared frames (batched).

    Positions are compared in metres: scene units times ``metres_per_unit`` (a first scale estimate).
    """
    K = len(tracklets)
    keep = np.flatnonzero(tracklets.observation_tracklet >= 0)
    keep = keep[np.argsort(observations.frame[keep], kind="stable")]
    track = tracklets.observation_tracklet[keep]
    frame = observations.frame[keep]
    position = world_positions(observations.take(keep), cameras) * metres_per_unit
    pose = observations.canonical_pose[keep]
    pose = (pose - pose[:, :1]).reshape(pose.shape[0], pose.shape[1] * 3) / np.sqrt(
        pose.shape[1]
    )  # RMS via L2
    features = np.concatenate([position, pose], axis=1)
    directions, ray_weight = _keypoint_rays(observations.take(keep), cameras, config)  # empty if unweighted
    centers = cameras.centers[observations.view[keep]] * metres_per_unit

    cost_sum = np.zeros(K * K)
    shared = np.zeros(K * K)
    if K and track.size:
        # Observations of one frame side by side: (frames, slots) with padding, so each chunk of frames
        # is one batched distance computation; pair costs are then binned by tracklet pair.
        frame_values, frame_index, counts = np.unique(frame, return_inverse=True, return_counts=True)
        slot = np.arange(frame.size) - np.searchsorted(frame, frame, side="left")
        width = int(counts.max())
        chunk = max(1, config.pair_budget // (width * width * max(directions.shape[1], 1)))
        for start in range(0, frame_values.size, chunk):
            rows = (frame_index >= start) & (frame_index < start + chunk)
            local = frame_index[rows] - start
            F = int(local.max()) + 1
            present = np.zeros((F, width), dtype=bool)
            present[local, slot[rows]] = True
            dense = np.zeros((F, width, features.shape[1]))
            dense[local, slot[rows]] = features[rows]
            dense_track = np.zeros((F, width), dtype=np.int64)
            dense_track[local, slot[rows]] = track[rows]
            frame_cost = config.position_weight * _batched_distances(dense[..., :3])
            if config.pose_weight:
                frame_cost += config.pose_weight * _batched_distances(dense[..., 3:])
            if config.ray_weight and directions.shape[1]:
                frame_cost += config.ray_weight * _ray_distances(
                    _dense(centers, local, slot[rows], rows, F, width),
                    _dense(directions, local, slot[rows], rows, F, width),
                    _dense(ray_weight, local, slot[rows], rows, F, width),
                )
            both = present[:, :, None] & present[:, None, :]
            pair = (dense_track[:, :, None] * K + dense_track[:, None, :])[both]
            cost_sum += np.bincount(pair, weights=frame_cost[both], minlength=K * K)
            shared += np.bincount(pair, minlength=K * K)
    cost_sum = cost_sum.reshape(K, K)
    shared = shared.reshape(K, K).astype(np.int64)

    same_view = tracklets.view[:, None] == tracklets.view[None, :]
    overlap = (tracklets.first_frame[:, None] <= tracklets.last_frame[None, :]) & (
        tracklets.first_frame[None, :] <= tracklets.last_frame[:, None]
    )
    conflict = same_view & overlap
    shared[same_view] = 0
    cost_sum[same_view] = 0.0
    return PairwiseCosts(cost_sum=cost_sum, shared_frames=shared, conflict=conflict)


def _keypoint_rays(
    observations: Observations, cameras: CameraRig, config: AssociationConfig
) -> tuple[Float[np.ndarray, "N K 3"], Float[np.ndarray, "N K"]]:
    """Unit world directions of the ray-term keypoints of each observation, and their confidence (0 when
    below the threshold)."""
    names = [observations.keypoint_names.index(n) for n in _RAY_KEYPOINTS if n in observations.keypoint_names]
    if not names or len(cameras) < 2 or not config.ray_weight:
        return np.zeros((len(observations), 0, 3)), np.zeros((len(observations), 0))
    view = observations.view
    _, directions = pixel_rays(
        observations.keypoints2d[:, names],
        cameras.K[view],
        cameras.dist[view],
        cameras.R[view],
        cameras.t[view],
    )
    confidence = observations.keypoint_confidence[:, names]
    weight = np.where(confidence >= config.min_keypoint_confidence, confidence, 0.0)
    weight = np.where(np.isfinite(directions).all(axis=-1), weight, 0.0)
    return np.nan_to_num(directions), weight


def _dense(values: np.ndarray, local, slot, rows, frames: int, width: int) -> np.ndarray:
    """Per-observation values laid out as (frames, slots, ...) for one chunk."""
    dense = np.zeros((frames, width, *values.shape[1:]))
    dense[local, slot] = values[rows]
    return dense


def _ray_distances(
    centers: Float[np.ndarray, "F W 3"],
    directions: Float[np.ndarray, "F W K 3"],
    weight: Float[np.ndarray, "F W K"],
) -> Float[np.ndarray, "F W W"]:
    """Confidence-weighted mean over keypoints of the distance between the two observations' rays
    (lines through their camera centres); 0 where no keypoint is confident in both. Single precision:
    millimetre distances need no more, and it halves the memory traffic of the (F, K, W, W) arrays."""
    d = np.moveaxis(directions, 2, 1).astype(np.float32)  # (F, K, W, 3)
    c = np.broadcast_to(centers[:, None].astype(np.float32), d.shape)
    distance, sine = line_distances(c, d, c, d)  # (F, K, W, W)
    w = np.moveaxis(weight, 2, 1).astype(np.float32)  # (F, K, W)
    pair_weight = np.minimum(w[..., :, None], w[..., None, :]) * (sine > 1e-6)
    total = pair_weight.sum(axis=1)
    return np.where(total > 0, (pair_weight * distance).sum(axis=1) / np.maximum(total, 1e-12), 0.0)


def _batched_distances(x: Float[np.ndarray, "F K D"]) -> Float[np.ndarray, "F K K"]:
    """Euclidean distances between all rows, per frame: ‖a‖² + ‖b‖² − 2a·b in one matmul."""
    square = np.einsum("fkd,fkd->fk", x, x)
    gram = x @ np.swapaxes(x, 1, 2)
    return np.sqrt(np.maximum(square[:, :, None] + square[:, None, :] - 2 * gram, 0.0))


def associate(
    observations: Observations,
    tracklets: Tracklets,
    cameras: CameraRig,
    config: AssociationConfig,
    metres_per_unit: float = 1.0,
) -> AssociationResult:
    """Group tracklets into persons (see the module docstring); positions compared in metres."""
    costs = pairwise_costs(observations, tracklets, cameras, config, metres_per_unit)
    person = _cluster(costs, tracklets, config)
    return AssociationResult(Assignment.from_tracklet_persons(tracklets, person), person, costs)


def _cluster(costs: PairwiseCosts, tracklets: Tracklets, config: AssociationConfig) -> Int[np.ndarray, " K"]:
    K = len(tracklets)
    person = np.full(K, -1, dtype=np.int64)
    if K == 0:
        return person
    observed = np.bincount(tracklets.view, weights=tracklets.length)
    view_order = np.argsort(-observed, kind="stable")
    persons = 0
    for view in view_order:
        members = np.flatnonzero(tracklets.view == view)
        members = members[np.argsort(-tracklets.length[members], kind="stable")]
        while persons:
            open_rows = members[person[members] < 0]
            if open_rows.size == 0:
                break
            onehot = _onehot(person, persons)
            cost, feasible = _group_costs(costs, open_rows, onehot, config)
            rows, cols = linear_sum_assignment(np.where(feasible, cost, _INFEASIBLE))
            linked = feasible[rows, cols]
            if not linked.any():
                break
            person[open_rows[rows[linked]]] = cols[linked]
        fresh = members[person[members] < 0]
        person[fresh] = persons + np.arange(fresh.size)
        persons += fresh.size
    return _merge_compatible(person, costs, config)


def _onehot(person: Int[np.ndarray, " K"], persons: int) -> Float[np.ndarray, "K P"]:
    onehot = np.zeros((person.shape[0], persons))
    assigned = person >= 0
    onehot[np.flatnonzero(assigned), person[assigned]] = 1.0
    return onehot


def _group_costs(costs: PairwiseCosts, rows, onehot, config: AssociationConfig):
    """Mean cost of tracklets ``rows`` to each person over all shared frames, and whether linkable."""
    cost_sum = costs.cost_sum[rows] @ onehot
    shared = costs.shared_frames[rows] @ onehot
    conflict = (costs.conflict[rows].astype(float) @ onehot) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(shared > 0, cost_sum / np.maximum(shared, 1), np.inf)
    feasible = (shared >= config.min_shared_frames) & ~conflict & (mean <= config.gate)
    return mean, feasible


def _merge_compatible(person, costs: PairwiseCosts, config: AssociationConfig):
    """Merge persons made of disjoint pieces (e.g. a tracklet lost and restarted in one view).

    Person-level sums are built once, then each merge folds one row and column into another.
    """
    persons = int(person.max()) + 1 if person.size else 0
    onehot = _onehot(person, persons)
    cost_sum = onehot.T @ costs.cost_sum @ onehot
    shared = onehot.T @ costs.shared_frames @ onehot
    conflict = onehot.T @ costs.conflict.astype(float) @ onehot
    alive = np.ones(persons, dtype=bool)
    while True:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(shared > 0, cost_sum / np.maximum(shared, 1), np.inf)
        feasible = (shared >= config.min_shared_frames) & (conflict == 0) & (mean <= config.gate)
        feasible &= alive[:, None] & alive[None, :]
        np.fill_diagonal(feasible, False)
        if not feasible.any():
            return _compact(person)
        a, b = sorted(np.unravel_index(np.argmin(np.where(feasible, mean, np.inf)), mean.shape))
        for matrix in (cost_sum, shared, conflict):
            matrix[a] += matrix[b]
            matrix[:, a] += matrix[:, b]
            matrix[b] = 0
            matrix[:, b] = 0
        alive[b] = False
        person[person == b] = a


def _compact(person: Int[np.ndarray, " K"]) -> Int[np.ndarray, " K"]:
    """Relabel persons 0..P-1 in order of first appearance."""
    out = np.full_like(person, -1)
    assigned = person >= 0
    _, first, inverse = np.unique(person[assigned], return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    out[assigned] = rank[inverse]
    return out
