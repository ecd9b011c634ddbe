"""Per-view tracking: detections of consecutive frames linked into tracklets.

A track and a detection are compared by the L2 distance of their appearance embeddings, by the
distance between the detection's pelvis and the track's predicted pelvis (constant velocity, in units of
the track's bounding-box height, so near and far people are treated alike) and by their depth
ratio (which tells apart two people crossing in the image at different distances, when appearance
cannot). Matching is a Sinkhorn optimal transport with a dustbin row and column (as in SuperGlue): a
detection that is worse than ``unmatched_cost`` for every track goes to the dustbin and starts a new
tracklet, and a track that sees no detection waits up to ``max_missed_frames`` frames before it ends.
All views are tracked together: the loop runs over frames only, every view of a frame in one batched
transport problem.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float

from core.types import Observations, Tracklets


@dataclass(frozen=True)
class TrackingConfig:
    """How detections are linked over time within one view."""

    embedding_weight: float = 1.0
    """Cost per unit of L2 distance between appearance embeddings."""
    position_weight: float = 2.0
    """Cost per bounding-box height of distance between predicted and detected pelvis."""
    depth_weight: float = 1.0
    """Cost per unit of |log depth ratio| between the track's smoothed depth and the detection's."""
    unmatched_cost: float = 1.5
    """Dustbin cost: a detection costlier than this for every track starts a new tracklet."""
    temperature: float = 0.05
    """Sinkhorn entropy temperature, in cost units (smaller: closer to a hard assignment)."""
    sinkhorn_iterations: int = 30
    """Sinkhorn normalisation rounds."""
    max_missed_frames: int = 15
    """A track survives this many frames without a detection before it ends."""
    min_tracklet_frames: int = 5
    """Tracklets with fewer observations are dropped as false positives."""
    embedding_momentum: float = 0.8
    """Weight of the past in the track's running embedding."""


def sinkhorn_with_dustbin(
    cost: Float[np.ndarray, "B M N"],
    row_valid: np.ndarray,
    col_valid: np.ndarray,
    unmatched_cost: float,
    temperature: float,
    iterations: int,
) -> Float[np.ndarray, "B M+1 N+1"]:
    """Transport plan between M tracks and N detections plus a dustbin, batched over B problems.

    Every valid track and detection carries one unit of mass; the dustbin row takes the detections'
    surplus and the dustbin column the tracks'. Invalid rows and columns (padding) carry none. Returns
    the plan; ``plan[b, m, n] > 0.5`` is a one-to-one match (each real row and column sums to 1).

    >>> plan = sinkhorn_with_dustbin(np.array([[[0.0, 5.0], [5.0, 0.0]]]), np.ones((1, 2), bool),
    ...                              np.ones((1, 2), bool), 1.0, 0.1, 50)
    >>> bool(plan[0, 0, 0] > 0.95 and plan[0, 1, 1] > 0.95 and plan[0, 0, 1] < 0.01)
    True
    """
    B, M, N = cost.shape
    scores = np.full((B, M + 1, N + 1), unmatched_cost)
    scores[:, :M, :N] = cost
    kernel = np.exp(-np.minimum(scores / temperature, 600.0))
    mask = np.zeros((B, M + 1, N + 1), dtype=bool)
    mask[:, :M, :N] = row_valid[:, :, None] & col_valid[:, None, :]
    mask[:, M, :N] = col_valid
    mask[:, :M, N] = row_valid
    mask[:, M, N] = True
    kernel = np.where(mask, kernel, 0.0)
    row_mass = np.concatenate([row_valid.astype(float), col_valid.sum(axis=1, keepdims=True)], axis=1)
    col_mass = np.concatenate([col_valid.astype(float), row_valid.sum(axis=1, keepdims=True)], axis=1)
    row_mass[:, M] = np.maximum(row_mass[:, M], 1e-9)  # keep the all-empty problem well posed
    col_mass[:, N] = np.maximum(col_mass[:, N], 1e-9)
    u = np.ones((B, M + 1))
    v = np.ones((B, N + 1))
    for _ in range(iterations):
        u = row_mass / np.maximum(np.einsum("bmn,bn->bm", kernel, v), 1e-300)
        v = col_mass / np.maximum(np.einsum("bmn,bm->bn", kernel, u), 1e-300)
    return u[:, :, None] * kernel * v[:, None, :]


class _TrackState:
    """Live tracks of every view, as (V, capacity) arrays; slots of ended tracks are reused."""

    def __init__(self, views: int, embedding_dim: int, capacity: int = 8):
        self.alive = np.zeros((views, capacity), dtype=bool)
        self.track_id = np.full((views, capacity), -1)
        self.last_frame = np.zeros((views, capacity), dtype=np.int64)
        self.pelvis = np.zeros((views, capacity, 2))
        self.velocity = np.zeros((views, capacity, 2))
        self.height = np.ones((views, capacity))
        self.depth = np.ones((views, capacity))
        self.embedding = np.zeros((views, capacity, embedding_dim))

    def grow(self, capacity: int) -> None:
        extra = capacity - self.alive.shape[1]
        if extra <= 0:
            return
        for name in ("alive", "track_id", "last_frame", "pelvis", "velocity", "height", "depth", "embedding"):
            array = getattr(self, name)
            fill = -1 if name == "track_id" else (1 if name in ("height", "depth") else 0)
            pad = np.full((array.shape[0], extra, *array.shape[2:]), fill, dtype=array.dtype)
            setattr(self, name, np.concatenate([array, pad], axis=1))

    def start(self, frame: int, view, first_id: int, pelvis, embedding, log_depth) -> np.ndarray:
        """New tracks (ids from ``first_id`` on) in free slots of their views, for detections in view
        order; returns their slots."""
        rank = np.arange(view.shape[0]) - np.searchsorted(view, view, side="left")
        free_count = (~self.alive).sum(axis=1)
        need = np.bincount(view, minlength=self.alive.shape[0])
        if np.any(need > free_count):
            self.grow(self.alive.shape[1] + int((need - free_count).max()) + 8)
        free_slots = np.argsort(self.alive, axis=1, kind="stable")  # free (False) slots first
        slot = free_slots[view, rank]
        self.track_id[view, slot] = first_id + np.arange(view.shape[0])
        self.alive[view, slot] = True
        self.velocity[view, slot] = 0.0
        self.pelvis[view, slot] = pelvis
        self.embedding[view, slot] = embedding
        self.depth[view, slot] = log_depth
        self.last_frame[view, slot] = frame
        return slot

    def update(self, frame: int, view, slot, pelvis, embedding, log_depth, momentum: float) -> None:
        """Matched tracks moved to their detections: smoothed velocity, running embedding and depth."""
        elapsed = np.maximum(frame - self.last_frame[view, slot], 1)[:, None]
        velocity = (pelvis - self.pelvis[view, slot]) / elapsed
        self.velocity[view, slot] = 0.5 * self.velocity[view, slot] + 0.5 * velocity
        self.pelvis[view, slot] = pelvis
        self.embedding[view, slot] = momentum * self.embedding[view, slot] + (1 - momentum) * embedding
        self.depth[view, slot] = 0.7 * self.depth[view, slot] + 0.3 * log_depth
        self.last_frame[view, slot] = frame


def track(observations: Observations, num_views: int, config: TrackingConfig) -> Tracklets:
    """Link the observations of each view into tracklets (see the module docstring)."""
    n = len(observations)
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return Tracklets.from_labels(labels, observations.view, observations.frame)
    order = np.lexsort((observations.view, observations.frame))
    frames = observations.frame[order]
    views = observations.view[order]
    pelvis = observations.pelvis2d[order]
    embedding = observations.embedding[order]
    box = observations.bbox[order]
    height = np.maximum(box[:, 3] - box[:, 1], 1.0)
    log_depth = np.log(np.maximum(np.linalg.norm(observations.position_cam[order], axis=-1), 1e-6))

    state = _TrackState(num_views, embedding.shape[1])
    next_id = 0
    frame_values, frame_starts = np.unique(frames, return_index=True)
    frame_ends = np.append(frame_starts[1:], n)
    for frame, start, end in zip(frame_values, frame_starts, frame_ends, strict=True):
        det_view = views[start:end]
        # Slot of each detection inside its view's padded row.
        view_start = np.searchsorted(det_view, det_view, side="left")
        slot = np.arange(end - start) - view_start
        width = int(slot.max()) + 1
        det_valid = np.zeros((num_views, width), dtype=bool)
        det_valid[det_view, slot] = True
        det_pelvis = np.zeros((num_views, width, 2))
        det_pelvis[det_view, slot] = pelvis[start:end]
        det_embedding = np.zeros((num_views, width, embedding.shape[1]))
        det_embedding[det_view, slot] = embedding[start:end]
        det_log_depth = np.zeros((num_views, width))
        det_log_depth[det_view, slot] = log_depth[start:end]

        gap = frame - state.last_frame
        state.alive &= gap - 1 <= config.max_missed_frames  # frames missed since the last detection
        predicted = state.pelvis + state.velocity * gap[..., None]
        position_cost = (
            np.linalg.norm(predicted[:, :, None] - det_pelvis[:, None], axis=-1) / state.height[..., None]
        )
        appearance_cost = np.linalg.norm(state.embedding[:, :, None] - det_embedding[:, None], axis=-1)
        depth_cost = np.abs(state.depth[:, :, None] - det_log_depth[:, None])
        cost = (
            config.position_weight * position_cost
            + config.embedding_weight * appearance_cost
            + config.depth_weight * depth_cost
        )
        plan = sinkhorn_with_dustbin(
            cost,
            state.alive,
            det_valid,
            config.unmatched_cost,
            config.temperature,
            config.sinkhorn_iterations,
        )
        matched = plan[:, :-1, :-1] > 0.5
        m_view, m_track, m_det = np.nonzero(matched)

        # Which detection rows (in frame order) were matched, and to which slot.
        det_slot_of = np.full((num_views, width), -1)
        det_slot_of[m_view, m_det] = m_track
        track_slot = det_slot_of[det_view, slot]
        is_new = track_slot < 0
        if is_new.any():
            new_view = det_view[is_new]
            track_slot[is_new] = state.start(
                frame,
                new_view,
                next_id,
                pelvis[start:end][is_new],
                embedding[start:end][is_new],
                log_depth[start:end][is_new],
            )
            next_id += new_view.shape[0]
        old = ~is_new
        state.update(
            frame,
            det_view[old],
            track_slot[old],
            pelvis[start:end][old],
            embedding[start:end][old],
            log_depth[start:end][old],
            config.embedding_momentum,
        )
        state.height[det_view, track_slot] = height[start:end]
        labels[order[start:end]] = state.track_id[det_view, track_slot]

    counts = np.bincount(labels, minlength=next_id)
    labels[counts[labels] < config.min_tracklet_frames] = -1
    return Tracklets.from_labels(labels, observations.view, observations.frame)
