"""Evaluation metrics for multi-person, multi-view 3D human reconstruction.

Benchmarks report pose accuracy under different alignments (root-relative, per-sample Procrustes,
per-segment world alignment, per-frame group alignment) and, for the multi-view association stage,
link precision/recall and identity switches. Putting them in one place with exact, documented definitions
keeps numbers comparable across experiments. All position errors are in metres; callers convert to mm.

Axis vocabulary for shapes: T frames, P persons, J joints, L links, N observations.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Bool, Float, Int
from scipy.optimize import linear_sum_assignment

from core.geometry import apply_sim3, umeyama_sim3

__all__ = [
    "aligned_errors",
    "association_precision_recall",
    "ga_mpjpe",
    "id_switches",
    "mpjpe",
    "pa_mpjpe",
    "segment_aligned_mpjpe",
    "w_mpjpe",
    "wa_mpjpe",
]


def mpjpe(
    pred: Float[np.ndarray, "*batch J 3"],
    gt: Float[np.ndarray, "*batch J 3"],
    root_index: int | None = 0,
) -> Float[np.ndarray, "*batch"]:
    """Mean per-joint position error, optionally root-relative.

    Args:
        pred: Predicted joints, metres, shape ``(..., J, 3)``.
        gt: Ground-truth joints, metres, same frame, shape ``(..., J, 3)``.
        root_index: Joint subtracted from both skeletons before comparing; ``None`` compares raw positions.

    Returns:
        Mean Euclidean joint error in metres, shape ``(...)``.

    Example:
        >>> import numpy as np
        >>> gt = np.zeros((2, 3))
        >>> pred = np.array([[1.0, 0, 0], [1.0, 0, 0]])
        >>> float(mpjpe(pred, gt, root_index=None)), float(mpjpe(pred, gt))
        (1.0, 0.0)
    """
    pred = np.asarray(pred, dtype=float)
    gt = np.asarray(gt, dtype=float)
    if root_index is not None:
        pred = pred - pred[..., root_index : root_index + 1, :]
        gt = gt - gt[..., root_index : root_index + 1, :]
    return np.linalg.norm(pred - gt, axis=-1).mean(axis=-1)


def aligned_errors(
    pred: Float[np.ndarray, "*batch N 3"],
    gt: Float[np.ndarray, "*batch N 3"],
    weights: Float[np.ndarray, "*batch N"] | None = None,
) -> Float[np.ndarray, "*batch N"]:
    """Per-point distance after one Sim(3) from pred onto gt per batch element, fitted on the points with
    positive ``weights`` (all when None): the alignment every aligned MPJPE variant shares.

    Example:
        >>> import numpy as np
        >>> gt = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
        >>> bool(np.allclose(aligned_errors(2 * gt + 5, gt), 0))
        True
    """
    scale, R, t = umeyama_sim3(pred, gt, weights)
    return np.linalg.norm(apply_sim3(pred, scale, R, t) - gt, axis=-1)


def pa_mpjpe(
    pred: Float[np.ndarray, "*batch J 3"], gt: Float[np.ndarray, "*batch J 3"]
) -> Float[np.ndarray, "*batch"]:
    """MPJPE after per-sample Procrustes (Sim(3): scale, rotation, translation) alignment of pred onto gt.

    Args:
        pred: Predicted joints, metres, shape ``(..., J, 3)``.
        gt: Ground-truth joints, metres, shape ``(..., J, 3)``.

    Returns:
        Mean Euclidean joint error after alignment, metres, shape ``(...)``.
    """
    pred = np.asarray(pred, dtype=float)
    gt = np.asarray(gt, dtype=float)
    return aligned_errors(pred, gt).mean(axis=-1)


def segment_aligned_mpjpe(
    pred: Float[np.ndarray, "T J 3"],
    gt: Float[np.ndarray, "T J 3"],
    valid: Bool[np.ndarray, " T"],
    segment_length: int = 100,
    align_frames: int | None = None,
) -> float:
    """World-frame MPJPE with one Sim(3) alignment per segment of consecutive frames.

    The T frames are split into consecutive segments of ``segment_length`` frames (the last one may be
    shorter). In each segment one Sim(3) from pred to gt is fitted on all joints of the first
    ``align_frames`` valid frames of the segment (``None``: all valid frames of the segment) and applied to
    every valid frame of that segment.

    Args:
        pred: Predicted joints in the world frame, metres, shape ``(T, J, 3)``.
        gt: Ground-truth joints in the world frame, metres, shape ``(T, J, 3)``.
        valid: Frames to evaluate, shape ``(T,)``.
        segment_length: Frames per segment (>= 1).
        align_frames: Number of leading valid frames per segment used for the fit (>= 1), or ``None``.

    Returns:
        Mean per-joint error in metres over all valid frames of all segments; NaN if no frame is valid.
    """
    pred = np.asarray(pred, dtype=float)
    gt = np.asarray(gt, dtype=float)
    valid = np.asarray(valid, dtype=bool)
    if segment_length < 1:
        raise ValueError(f"segment_length must be >= 1, got {segment_length}")
    if align_frames is not None and align_frames < 1:
        raise ValueError(f"align_frames must be >= 1 or None, got {align_frames}")
    n_frames, n_joints = pred.shape[0], pred.shape[1]
    if not valid.any():
        return float("nan")

    n_segments = -(-n_frames // segment_length)
    pad = n_segments * segment_length - n_frames
    pred_s = np.concatenate([pred, np.full((pad, n_joints, 3), np.nan)]).reshape(
        n_segments, segment_length, n_joints, 3
    )
    gt_s = np.concatenate([gt, np.full((pad, n_joints, 3), np.nan)]).reshape(
        n_segments, segment_length, n_joints, 3
    )
    valid_s = np.concatenate([valid, np.zeros(pad, dtype=bool)]).reshape(n_segments, segment_length)

    fit = valid_s
    if align_frames is not None:
        fit = valid_s & (np.cumsum(valid_s, axis=1) <= align_frames)
    fit_weights = np.broadcast_to(fit[..., None], fit.shape + (n_joints,)).astype(float)

    flat_shape = (n_segments, segment_length * n_joints, 3)
    errors = aligned_errors(
        pred_s.reshape(flat_shape), gt_s.reshape(flat_shape), fit_weights.reshape(n_segments, -1)
    ).reshape(valid_s.shape + (n_joints,))  # (S, L, J)
    return float(errors[valid_s].mean())


def w_mpjpe(
    pred: Float[np.ndarray, "T J 3"],
    gt: Float[np.ndarray, "T J 3"],
    valid: Bool[np.ndarray, " T"],
    segment_length: int = 100,
) -> float:
    """W-MPJPE: :func:`segment_aligned_mpjpe` aligned on the first two valid frames of each segment."""
    return segment_aligned_mpjpe(pred, gt, valid, segment_length=segment_length, align_frames=2)


def wa_mpjpe(
    pred: Float[np.ndarray, "T J 3"],
    gt: Float[np.ndarray, "T J 3"],
    valid: Bool[np.ndarray, " T"],
    segment_length: int = 100,
) -> float:
    """WA-MPJPE: :func:`segment_aligned_mpjpe` aligned on all valid frames of each segment."""
    return segment_aligned_mpjpe(pred, gt, valid, segment_length=segment_length, align_frames=None)


def ga_mpjpe(
    pred: Float[np.ndarray, "T P J 3"],
    gt: Float[np.ndarray, "T P J 3"],
    valid: Bool[np.ndarray, "T P"],
) -> float:
    """Group-aligned MPJPE: one Sim(3) per frame fitted on all valid persons of that frame together.

    Args:
        pred: Predicted joints in the world frame, metres, shape ``(T, P, J, 3)``.
        gt: Ground-truth joints in the world frame, metres, shape ``(T, P, J, 3)``.
        valid: Which (frame, person) pairs exist and are evaluated, shape ``(T, P)``.

    Returns:
        Mean per-joint error in metres over all valid (frame, person, joint); NaN if none is valid.
    """
    pred = np.asarray(pred, dtype=float)
    gt = np.asarray(gt, dtype=float)
    valid = np.asarray(valid, dtype=bool)
    if not valid.any():
        return float("nan")
    n_frames, n_persons, n_joints = pred.shape[:3]
    weights = np.broadcast_to(valid[..., None], (n_frames, n_persons, n_joints)).astype(float)
    flat_shape = (n_frames, n_persons * n_joints, 3)
    errors = aligned_errors(
        pred.reshape(flat_shape), gt.reshape(flat_shape), weights.reshape(n_frames, -1)
    ).reshape(valid.shape + (n_joints,))  # (T, P, J)
    return float(errors[valid].mean())


def association_precision_recall(
    predicted_person: Int[np.ndarray, " L"], true_identity: Int[np.ndarray, " L"]
) -> tuple[float, float]:
    """Precision and recall of cross-view person association links.

    Each link is one (view, tracklet) item. Predicted persons are matched one-to-one to true identities
    with the Hungarian algorithm, maximising the number of links they share. A link is correct when its
    predicted person is matched to the link's own true identity.

    Args:
        predicted_person: Predicted person per link, ``-1`` when left unassigned, shape ``(L,)``.
        true_identity: Ground-truth identity per link, ``-1`` for a false-positive tracklet, shape ``(L,)``.

    Returns:
        ``(precision, recall)`` with precision = correct / #links with a predicted person and recall =
        correct / #links with a true identity. An empty denominator gives 1.0 (nothing claimed, nothing
        wrong; nothing to find, nothing missed).

    Example:
        >>> import numpy as np
        >>> association_precision_recall(np.array([0, 0, 1, -1]), np.array([5, 5, 6, 6]))
        (1.0, 0.75)
    """
    pred = np.asarray(predicted_person, dtype=np.int64)
    true = np.asarray(true_identity, dtype=np.int64)
    n_pred = int((pred >= 0).sum())
    n_true = int((true >= 0).sum())
    both = (pred >= 0) & (true >= 0)
    correct = 0
    if both.any():
        pred_ids, pred_idx = np.unique(pred[both], return_inverse=True)
        true_ids, true_idx = np.unique(true[both], return_inverse=True)
        table = np.zeros((pred_ids.size, true_ids.size), dtype=np.int64)
        np.add.at(table, (pred_idx, true_idx), 1)
        rows, cols = linear_sum_assignment(table, maximize=True)
        correct = int(table[rows, cols].sum())
    precision = correct / n_pred if n_pred > 0 else 1.0
    recall = correct / n_true if n_true > 0 else 1.0
    return precision, recall


def id_switches(
    frames: Int[np.ndarray, " N"], identity: Int[np.ndarray, " N"], tracklet: Int[np.ndarray, " N"]
) -> int:
    """Number of identity switches (standard MOT definition) in the observations of one view.

    For every true identity ``>= 0``, its observations with a tracklet ``>= 0`` are taken in frame order
    and each change of tracklet id between consecutive such observations counts as one switch.

    Args:
        frames: Frame index of each observation, shape ``(N,)``.
        identity: Ground-truth identity per observation (``-1``: none / false positive), shape ``(N,)``.
        tracklet: Tracklet id assigned to the observation (``-1``: unmatched), shape ``(N,)``.

    Returns:
        Total number of ID switches summed over identities.

    Example:
        >>> import numpy as np
        >>> id_switches(np.arange(4), np.zeros(4, int), np.array([3, 3, 4, 3]))
        2
    """
    frames = np.asarray(frames)
    identity = np.asarray(identity)
    tracklet = np.asarray(tracklet)
    keep = (identity >= 0) & (tracklet >= 0)
    frames, identity, tracklet = frames[keep], identity[keep], tracklet[keep]
    order = np.lexsort((tracklet, frames, identity))
    identity, tracklet = identity[order], tracklet[order]
    same_identity = np.diff(identity) == 0
    changed = np.diff(tracklet) != 0
    return int((same_identity & changed).sum())
