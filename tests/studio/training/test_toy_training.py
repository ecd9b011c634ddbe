"""The toy proof end to end, shortened (slow: a few minutes): scenes rendered, the tiny network trained
through stages 0, 1 and 2 and the two translation alternatives, all scored on held-out scenes."""

import csv
import math

import numpy as np
import pytest

from studio.training.toy_proof import BenchTraining

pytestmark = pytest.mark.slow


def _curve(path, name="total"):
    rows = csv.DictReader(open(path))
    return np.array([float(r["value"]) for r in rows if r["split"] == "train" and r["name"] == name])


def test_a_short_toy_training_learns_and_is_scored(tmp_path):
    report = BenchTraining(out=tmp_path, scenes=40, held_out=8, minutes=3.0, workers=1).run()
    assert (tmp_path / "report.json").is_file()
    for name in ("stage0", "stage1", "stage2", "stage1_direct_depth", "stage1_direct_translation"):
        assert (tmp_path / name / "chromm.safetensors").is_file(), name
        assert len(_curve(tmp_path / name / "metrics.csv")) >= 1, name
    curve = _curve(tmp_path / "stage1" / "metrics.csv")  # the longest run: 8 epochs of 10 steps at most
    assert len(curve) >= 3
    assert curve[-len(curve) // 3 :].mean() < curve[: len(curve) // 3].mean()  # it learns
    assert set(report["scores"]) == {"stage1", "chromm", "direct_depth", "direct_translation"}
    for scores in report["scores"].values():
        assert scores["persons"] > 0
        assert math.isfinite(scores["mpjpe_mm"]) and math.isfinite(scores["head_error_mm"]["predicted"])
    assert set(report["targets"]) == {
        "mpjpe_below_0.6_baseline",
        "residual_below_pi3x_depth",
        "ablation_order",
        "fine_pelvis_below_coarse",
        "scale_with_below_without",
    }
