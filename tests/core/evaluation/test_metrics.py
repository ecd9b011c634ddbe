"""Tests for core.evaluation.metrics with hand-computed expected values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.evaluation.metrics import (
    association_precision_recall,
    ga_mpjpe,
    id_switches,
    mpjpe,
    pa_mpjpe,
    segment_aligned_mpjpe,
    w_mpjpe,
    wa_mpjpe,
)
from core.geometry import apply_sim3, umeyama_sim3


def _sim3(seed: int) -> tuple[float, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return float(rng.uniform(0.5, 2.0)), Rotation.random(rng=rng).as_matrix(), rng.normal(size=3)


# ---------------------------------------------------------------------------------------------------------
# Per-sample errors
# ---------------------------------------------------------------------------------------------------------


def test_mpjpe_known_values() -> None:
    gt = np.random.default_rng(0).normal(size=(2, 4, 3))
    offsets = np.array([[0.0, 0.0, 0.0], [0.03, 0.0, 0.0], [0.0, 0.04, 0.0], [0.0, 0.0, 0.05]])
    pred = gt + offsets + np.array([1.0, -2.0, 0.5])  # plus a global translation
    np.testing.assert_allclose(mpjpe(pred, gt), [0.03, 0.03], atol=1e-12)  # (0 + 0.03 + 0.04 + 0.05) / 4
    expected_raw = np.linalg.norm(offsets + [1.0, -2.0, 0.5], axis=-1).mean()
    np.testing.assert_allclose(mpjpe(pred, gt, root_index=None), [expected_raw] * 2, atol=1e-12)
    # Root index 1: relative offsets are offsets - offsets[1].
    expected_r1 = np.linalg.norm(offsets - offsets[1], axis=-1).mean()
    np.testing.assert_allclose(mpjpe(pred, gt, root_index=1), [expected_r1] * 2, atol=1e-12)


def test_pa_mpjpe_zero_for_sim3_transformed_pred_but_mpjpe_not() -> None:
    gt = np.random.default_rng(1).normal(size=(3, 17, 3))
    scale, R, t = _sim3(2)
    pred = apply_sim3(gt, scale, R, t)
    np.testing.assert_allclose(pa_mpjpe(pred, gt), 0.0, atol=1e-9)
    assert (mpjpe(pred, gt) > 0.1).all()
    # A per-joint translation on top is only partly absorbed by the alignment.
    pred_shifted = pred.copy()
    pred_shifted[:, 5] += [0.1, 0.0, 0.0]
    assert (pa_mpjpe(pred_shifted, gt) > 1e-3).all()


# ---------------------------------------------------------------------------------------------------------
# Segment-aligned world errors
# ---------------------------------------------------------------------------------------------------------


def test_wa_and_w_zero_for_per_segment_sim3() -> None:
    rng = np.random.default_rng(3)
    T, J = 250, 5
    gt = rng.normal(size=(T, J, 3)) + np.linspace(0, 3, T)[:, None, None]
    pred = np.empty_like(gt)
    for seg, (start, stop) in enumerate([(0, 100), (100, 200), (200, 250)]):
        pred[start:stop] = apply_sim3(gt[start:stop].reshape(-1, 3), *_sim3(10 + seg)).reshape(-1, J, 3)
    valid = np.ones(T, dtype=bool)
    valid[[0, 7, 120, 249]] = False
    pred[[0, 7, 120, 249]] = np.nan  # invalid frames may hold garbage
    assert wa_mpjpe(pred, gt, valid) == pytest.approx(0.0, abs=1e-9)
    assert w_mpjpe(pred, gt, valid) == pytest.approx(0.0, abs=1e-9)
    # One segment spanning everything cannot absorb three different transforms.
    assert wa_mpjpe(pred, gt, valid, segment_length=T) > 0.1


def test_w_vs_wa_drift_after_frame_two() -> None:
    # Static pose of 4 joints at unit distance from the centre, in the xz-plane.
    pose = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    gt = np.broadcast_to(pose + [2.0, 3.0, 1.0], (4, 4, 3)).copy()
    pred = gt.copy()
    pred[2:] += [0.0, 1.5, 0.0]  # drift along y from frame 2 on
    valid = np.ones(4, dtype=bool)

    # W: fitted on frames 0-1 (exact, identity) -> frames 2, 3 are off by 1.5 m: (0 + 0 + 1.5 + 1.5) / 4.
    assert w_mpjpe(pred, gt, valid) == pytest.approx(0.75, abs=1e-12)

    # WA: fitted on all frames. Centred gt g_j (|g_j| = 1, orthogonal to y) and centred drift +-0.75 y are
    # uncorrelated, so R = I and scale s = var_g / (var_g + 0.75^2) = 1 / 1.5625 = 0.64. Every residual is
    # (s - 1) g_j +- s * 0.75 y, of norm sqrt(0.36^2 + 0.48^2) = 0.6.
    assert wa_mpjpe(pred, gt, valid) == pytest.approx(0.6, abs=1e-12)

    # align_frames counts valid frames: with frame 0 invalid, W fits on frames 1 and 2.
    valid[0] = False
    assert segment_aligned_mpjpe(pred, gt, valid, align_frames=1) == pytest.approx(1.0, abs=1e-12)


def test_segment_aligned_no_valid_frame_is_nan() -> None:
    x = np.zeros((3, 2, 3))
    assert np.isnan(wa_mpjpe(x, x, np.zeros(3, dtype=bool)))


def test_segment_aligned_matches_naive_loop() -> None:
    rng = np.random.default_rng(4)
    T, J, L = 37, 6, 10
    gt = rng.normal(size=(T, J, 3))
    pred = gt + rng.normal(scale=0.05, size=(T, J, 3)) + np.linspace(0, 0.5, T)[:, None, None]
    valid = rng.uniform(size=T) > 0.25
    for align in (2, 3, None):
        errors = []
        for start in range(0, T, L):
            idx = [i for i in range(start, min(start + L, T)) if valid[i]]
            if not idx:
                continue
            fit = idx if align is None else idx[:align]
            s, R, t = umeyama_sim3(pred[fit].reshape(-1, 3), gt[fit].reshape(-1, 3))
            for i in idx:
                errors.extend(np.linalg.norm(s * pred[i] @ R.T + t - gt[i], axis=-1))
        expected = float(np.mean(errors))
        got = segment_aligned_mpjpe(pred, gt, valid, segment_length=L, align_frames=align)
        assert got == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Group-aligned error
# ---------------------------------------------------------------------------------------------------------


def test_ga_mpjpe_zero_for_one_global_transform_per_frame() -> None:
    rng = np.random.default_rng(5)
    T, P, J = 4, 3, 8
    gt = rng.normal(size=(T, P, J, 3)) + rng.normal(scale=3.0, size=(T, P, 1, 3))
    pred = np.stack([apply_sim3(gt[f].reshape(-1, 3), *_sim3(20 + f)).reshape(P, J, 3) for f in range(T)])
    valid = np.ones((T, P), dtype=bool)
    valid[1, 2] = valid[3, 0] = False
    pred[1, 2] = 1e3  # garbage in invalid slots is ignored
    pred[3, 0] = np.nan
    assert ga_mpjpe(pred, gt, valid) == pytest.approx(0.0, abs=1e-9)
    # A second person moved by its own transform breaks the group alignment (but not per-person PA).
    pred_bad = pred.copy()
    pred_bad[0, 1] += [0.5, 0.0, 0.0]
    assert ga_mpjpe(pred_bad, gt, valid) > 0.01
    np.testing.assert_allclose(pa_mpjpe(pred_bad[0], gt[0]), 0.0, atol=1e-9)
    assert np.isnan(ga_mpjpe(pred, gt, np.zeros((T, P), dtype=bool)))


# ---------------------------------------------------------------------------------------------------------
# Association precision / recall
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("predicted", "true", "expected"),
    [
        # Perfect association with arbitrary label names.
        ([7, 7, 3, 3, 3], [0, 0, 1, 1, 1], (1.0, 1.0)),
        # Swap: one link of each person exchanged. Table [[2, 1], [1, 2]] -> 4 correct of 6.
        ([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 0], (4 / 6, 4 / 6)),
        # Merge: two identities in one predicted person. Table [[2, 2]] -> 2 correct.
        ([0, 0, 0, 0], [0, 0, 1, 1], (0.5, 0.5)),
        # Split: one identity over two predicted persons.
        ([0, 0, 1, 1, 1], [4, 4, 4, 4, 4], (3 / 5, 3 / 5)),
        # False-positive tracklet assigned to a person: hurts precision only.
        ([0, 0, 1, 1, 1], [0, 0, 1, 1, -1], (4 / 5, 1.0)),
        # Unassigned link: hurts recall only.
        ([0, 0, -1, 1], [0, 0, 1, 1], (1.0, 3 / 4)),
        # Unassigned false positive: ignored by both.
        ([0, 0, -1], [0, 0, -1], (1.0, 1.0)),
        # Everything unassigned: nothing claimed -> precision 1; nothing found -> recall 0.
        ([-1, -1], [0, 1], (1.0, 0.0)),
        # Empty input: both denominators empty.
        ([], [], (1.0, 1.0)),
    ],
)
def test_association_precision_recall(predicted: list[int], true: list[int], expected: tuple[float, float]):
    precision, recall = association_precision_recall(
        np.array(predicted, dtype=int), np.array(true, dtype=int)
    )
    assert precision == pytest.approx(expected[0], abs=1e-12)
    assert recall == pytest.approx(expected[1], abs=1e-12)


def test_association_one_to_one_mapping() -> None:
    # Person 0 holds 3 links of identity 0 and 2 of identity 1; person 1 holds 1 of identity 1.
    # One-to-one: {0 -> 0, 1 -> 1} gives 3 + 1 = 4 correct of 6 (better than {0 -> 1} with 2).
    predicted = np.array([0, 0, 0, 0, 0, 1])
    true = np.array([0, 0, 0, 1, 1, 1])
    assert association_precision_recall(predicted, true) == pytest.approx((4 / 6, 4 / 6))


# ---------------------------------------------------------------------------------------------------------
# ID switches
# ---------------------------------------------------------------------------------------------------------


def test_id_switches_hand_sequence() -> None:
    rows = [
        # (frame, identity, tracklet)
        (0, 0, 1),
        (1, 0, 1),
        (2, 0, -1),  # missed: no switch by itself
        (3, 0, 2),  # switch 1 (1 -> 2)
        (4, 0, 2),
        (5, 0, 1),  # switch 2 (2 -> 1)
        (0, 1, 3),
        (1, 1, 3),
        (2, 1, -1),
        (3, 1, 3),  # same tracklet after a gap: no switch
        (1, -1, 8),  # false positives never count
        (2, -1, 9),
    ]
    order = np.random.default_rng(6).permutation(len(rows))
    frames, identity, tracklet = (np.array(col)[order] for col in zip(*rows, strict=True))
    assert id_switches(frames, identity, tracklet) == 2


def test_id_switches_edge_cases() -> None:
    empty = np.array([], dtype=int)
    assert id_switches(empty, empty, empty) == 0
    assert id_switches(np.array([0, 1, 2]), np.array([0, 0, 0]), np.array([-1, -1, -1])) == 0
    # Identity transitions between identities are not switches.
    assert id_switches(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), np.array([5, 6, 5, 6])) == 0
    assert id_switches(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), np.array([5, 6, 6, 5])) == 2
