"""``python -m studio bench-training``: the proof, at toy scale on a CPU, that CHROMM's training learns.

Renders the training scenes and held-out ones (another seed: other people, poses and camera
placements), then, within a training budget of ``minutes``: stage 0 (the tiny encoders, for depth and
head detection), one pass of the frozen encoders over the scenes into the feature cache, stage 1 and
stage 2. The paper's two alternatives to the depth residual (direct depth, direct translation) are
trained in stage 1 with the same budget (as many optimiser steps on the same scenes and cache). Every
network is scored on the held-out scenes (``evaluate-network``'s figures) and the issue's targets are
checked:

- MPJPE ≤ 0.6 × the mean-pose baseline's;
- head error: the depth residual's below Pi3X's depth alone, and depth residual < direct depth < direct
  translation;
- fine pelvis < coarse pelvis; scale error with the head–pelvis adjustment < without.
"""

from __future__ import annotations

import json as jsonlib
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from core.body.config import BodyConfig
from core.body.tracks import load_body_model
from core.nets.chromm.checkpoint import load_chromm
from studio.training.batch import training_example
from studio.training.config import TrainConfig
from studio.training.encoded import EncodedCache
from studio.training.evaluation import evaluate_network
from studio.training.make_data import MakeSynthetic, SyntheticScenes
from studio.training.run_state import latest_state
from studio.training.trainer import train

ALTERNATIVES = ("direct_depth", "direct_translation")


@dataclass
class BenchTraining:
    """Train the tiny CHROMM on rendered scenes within a CPU budget and score it on held-out ones."""

    out: Path = Path("runs/bench-training")
    """Where the scenes, runs and ``report.json`` go (a rerun reuses finished pieces)."""
    scenes: int = 1000
    """Training scenes."""
    held_out: int = 100
    """Held-out scenes (seed + 1)."""
    minutes: float = 30.0
    """Training budget of the network: stage 0, the encoder pass, stage 1 and stage 2 together."""
    stage0_share: float = 0.27
    """Share of ``minutes`` for stage 0."""
    stage2_share: float = 0.13
    """Share of ``minutes`` for stage 2; stage 1 has what stage 0 and the encoder pass leave."""
    batch_size: int = 4
    seed: int = 0
    workers: int | None = None
    """Rendering processes (None: one per core)."""
    json: bool = False
    """Print the report as JSON."""

    def run(self) -> dict:
        out = Path(self.out)
        train_dir = MakeSynthetic(out / "scenes", self.scenes, self.seed, workers=self.workers).run()
        held_dir = MakeSynthetic(out / "held_out", self.held_out, self.seed + 1, workers=self.workers).run()
        cache = out / "features"
        started = time.monotonic()

        def remaining() -> float:
            return self.minutes - (time.monotonic() - started) / 60

        stage0 = self._train(out / "stage0", train_dir, 0, None, self.minutes * self.stage0_share, None)
        encoding = time.monotonic()
        _fill_cache(stage0, train_dir, cache)
        encoder_minutes = (time.monotonic() - encoding) / 60
        stage1_minutes = remaining() - self.minutes * self.stage2_share
        stage1 = self._train(out / "stage1", train_dir, 1, stage0, stage1_minutes, cache, "depth_residual")
        stage2 = self._train(out / "stage2", train_dir, 2, stage1, self.minutes * self.stage2_share, cache)
        minutes = {name: _run_minutes(out / name) for name in ("stage0", "stage1", "stage2")}
        training_minutes = sum(minutes.values()) + encoder_minutes
        alternatives = {
            mode: self._train(
                out / f"stage1_{mode}", train_dir, 1, stage0, None, cache, mode, _steps(out / "stage1")
            )
            for mode in ALTERNATIVES
        }
        held = SyntheticScenes(held_dir)
        scores = {
            name: _score(path, held, cache)
            for name, path in {"stage1": stage1, "chromm": stage2, **alternatives}.items()
        }
        minutes |= {f"stage1_{mode}": _run_minutes(out / f"stage1_{mode}") for mode in ALTERNATIVES}
        report = _report(scores, training_minutes, minutes | {"encoders": encoder_minutes}, self)
        (out / "report.json").write_text(jsonlib.dumps(report, indent=2))
        print(jsonlib.dumps(report, indent=2) if self.json else _format(report))
        return report

    def _train(
        self,
        out: Path,
        data: Path,
        stage: int,
        init: Path | None,
        minutes: float | None,
        cache: Path | None,
        translation: str | None = None,
        steps: int | None = None,
    ) -> Path:
        config = TrainConfig(
            data=f"synthetic:{data}",
            out=out,
            stage=stage,
            init=init,
            preset="tiny",
            translation=translation,
            lr=1e-3,
            warmup_steps=20,
            epochs=_EPOCHS[stage],
            batch_size=self.batch_size,
            max_minutes=None if minutes is None else max(minutes, 0.5),
            max_steps=steps,
            checkpoint_every=1000,
            log_every=10,
            seed=self.seed,
            feature_cache=cache,
        )
        return train(config)


_EPOCHS = {0: 1, 1: 8, 2: 2}
"""The schedules' lengths, near what the budget allows at the tiny size on 2 cores (the time bound cuts
them where the machine is slower)."""


def _position(run: Path) -> dict:
    """Where a run's last checkpoint left it (steps, seconds across resumes)."""
    state = latest_state(run)
    return torch.load(state, weights_only=False)["position"] if state else {"step": 0, "seconds": 0.0}


def _run_minutes(run: Path) -> float:
    return _position(run)["seconds"] / 60


def _steps(run: Path) -> int:
    return _position(run)["step"]


def _fill_cache(network: Path, data: Path, cache: Path) -> None:
    """One pass of the frozen encoders over the scenes, so that every stage-1 run reads the same cache."""
    model = load_chromm(network).eval()
    encoded = EncodedCache(model, cache)
    scenes = SyntheticScenes(data)
    for index in tqdm(range(len(scenes)), desc="encoders", unit="scene"):
        example = training_example(scenes[index], model.sizes)
        encoded(example.key, example.inputs, "cpu")


def _score(network: Path, data: SyntheticScenes, cache: Path) -> dict:
    model = load_chromm(network).eval()
    with torch.no_grad():
        scores = evaluate_network(
            model, data, load_body_model(BodyConfig()), cache=EncodedCache(model, cache)
        )
    return scores.to_json()


def _report(scores: dict, training_minutes: float, minutes: dict[str, float], bench: BenchTraining) -> dict:
    final, heads = scores["chromm"], {name: s["head_error_mm"]["predicted"] for name, s in scores.items()}
    residual = scores["stage1"]["head_error_mm"]
    targets = {
        "mpjpe_below_0.6_baseline": final["mpjpe_mm"] <= 0.6 * final["baseline_mean_pose_mpjpe_mm"],
        "residual_below_pi3x_depth": residual["predicted"] < residual["pi3x_depth"],
        "ablation_order": heads["stage1"] < heads["direct_depth"] < heads["direct_translation"],
        "fine_pelvis_below_coarse": final["pelvis_px"]["fine"] < final["pelvis_px"]["coarse"],
        "scale_with_below_without": final["scale_error"]["with"] < final["scale_error"]["without"],
    }
    return {
        "scenes": bench.scenes,
        "held_out": bench.held_out,
        "training_minutes": round(training_minutes, 2),
        "minutes": {name: round(value, 2) for name, value in minutes.items()},
        "scores": scores,
        "head_error_mm_by_translation": {
            "depth_residual": heads["stage1"],
            "direct_depth": heads["direct_depth"],
            "direct_translation": heads["direct_translation"],
            "pi3x_depth": residual["pi3x_depth"],
        },
        "targets": targets,
    }


def _format(report: dict) -> str:
    final = report["scores"]["chromm"]
    pelvis, scale = final["pelvis_px"], final["scale_error"]
    lines = [
        f"{report['scenes']} scenes, {report['training_minutes']} minutes of training",
        f"MPJPE {final['mpjpe_mm']:.1f} mm (mean-pose baseline {final['baseline_mean_pose_mpjpe_mm']:.1f})",
        "head error (mm): "
        + ", ".join(f"{k} {v:.0f}" for k, v in report["head_error_mm_by_translation"].items()),
        f"pelvis (px): coarse {pelvis['coarse']:.2f}, fine {pelvis['fine']:.2f}",
        f"scale error: without {scale['without']:.3f}, with {scale['with']:.3f}",
        *(f"  {name}: {'met' if met else 'NOT met'}" for name, met in report["targets"].items()),
    ]
    return "\n".join(lines)
