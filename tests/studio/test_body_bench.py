"""The body-fitting benchmark's plumbing on the toy skeleton; the real Anny run is marked slow."""

import json

import numpy as np
import pytest

from core.body.config import FitConfig
from core.skeleton import JOINT_NAMES, rest_joints
from studio.body_bench import (
    BodyBenchConfig,
    _occlusion,
    format_body_table,
    result_to_dict,
    run_body_bench,
    stature,
)
from studio.cli import main
from tests.core.body.test_fitting import ToySkeleton

QUICK = FitConfig(iterations=30, refine_iterations=20, shape_frames=6)


def test_the_benchmark_reports_both_variants_with_finite_scores():
    config = BodyBenchConfig(frames=20, persons=2, seed=3)
    result = run_body_bench(ToySkeleton(), config, QUICK)
    assert set(result.variants) == {"all_visible", "legs_occluded"}
    visible, occluded = result.variants["all_visible"], result.variants["legs_occluded"]
    assert np.isnan(visible.mpjpe_hidden_mm) and np.isfinite(occluded.mpjpe_hidden_mm)
    for score in (visible, occluded):
        assert 0 < score.mpjpe_mm < 100
        assert len(score.stature_error_cm) == len(score.iterations) == len(score.seconds_per_track) == 2
        assert all(0 < n <= QUICK.iterations + QUICK.refine_iterations for n in score.iterations)
        assert score.ms_per_person_frame > 0
    text = json.dumps(result_to_dict(result), allow_nan=False)
    assert json.loads(text)["variants"]["all_visible"]["mpjpe_hidden_mm"] is None
    table = format_body_table(result)
    assert "all_visible" in table and "legs_occluded" in table and "model=toy" in table


def test_the_same_seed_gives_the_same_tracks_and_scores():
    config = BodyBenchConfig(frames=12, persons=1, seed=5)
    first, second = (run_body_bench(ToySkeleton(), config, QUICK) for _ in range(2))
    for name in first.variants:
        assert first.variants[name].mpjpe_mm == second.variants[name].mpjpe_mm


def test_stature_is_the_head_above_the_lowest_foot_point_in_the_zero_pose():
    # the toy skeleton has no head top, heels or toes: head above the lowest ankle or foot
    shape = np.array([[0.0] * 5, [1.0, 0.0, 0.0, 0.0, 0.0]])
    names = list(JOINT_NAMES)
    feet = [names.index(n) for n in ("left_ankle", "right_ankle")]
    expected = [
        joints[names.index("head"), 1] - joints[feet, 1].min()
        for joints in (rest_joints(np.zeros(5)), rest_joints(np.eye(5)[0]))
    ]
    assert np.allclose(stature(ToySkeleton(), shape), expected, atol=1e-5)


@pytest.mark.parametrize("frames", [10, 100, 101])
def test_occlusion_hides_the_asked_share_of_frames_in_two_runs(frames):
    hidden = _occlusion(frames, 0.2, np.random.default_rng(0))
    assert hidden.sum() == round(0.2 * frames)
    assert np.count_nonzero(np.diff(hidden.astype(int)) == 1) + hidden[0] <= 2


@pytest.mark.slow
def test_anny_fit_meets_the_accuracy_targets(capsys):
    """`python -m studio bench-body --json` on Anny (first run builds Anny: about a minute)."""
    main(["bench-body", "--json"])
    result = json.loads(capsys.readouterr().out)
    visible = result["variants"]["all_visible"]
    assert visible["mpjpe_mm"] <= 15
    assert max(abs(e) for e in visible["stature_error_cm"]) <= 2
    assert visible["ms_per_person_frame"] > 0
