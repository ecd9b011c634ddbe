"""The one command line of the studio: ``python -m studio <command> --help``."""

from __future__ import annotations

import json as jsonlib
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import tyro

from core.evaluation import evaluate
from core.pipeline import reconstruct_from_observations
from core.synthetic import SyntheticConfig, make_scene
from studio.bench import format_table, run_bench


def bench(
    persons: int = 3,
    views: int = 4,
    frames: int = 300,
    seed: int = 0,
    scale_error: float = 1.0,
    identical_appearance: bool = False,
    json: bool = False,
) -> None:
    """Benchmark the engine on a synthetic scene with ground truth: accuracy, ablations, frames/s.

    Args:
        persons: People walking in the scene.
        views: Cameras around them.
        frames: Frames to simulate.
        seed: Random seed of the scene and its observations.
        scale_error: Global scale of the scene as the engine receives it (1: correct).
        identical_appearance: Everyone looks the same (embeddings carry no identity).
        json: Print one JSON object instead of a table.
    """
    config = SyntheticConfig(
        persons=persons,
        views=views,
        frames=frames,
        seed=seed,
        scale_error=scale_error,
        identical_appearance=identical_appearance,
    )
    result = run_bench(config)
    print(jsonlib.dumps(result, indent=1) if json else format_table(result))


def demo(out: Path = Path("runs/demo"), seed: int = 0, scale_error: float = 0.8) -> None:
    """Reconstruct the embedded synthetic example (3 people, 4 views, 300 frames) and save it.

    Args:
        out: Directory the reconstruction is written to.
        seed: Random seed of the scene.
        scale_error: Global scale error of the scene given to the engine.
    """
    scene = make_scene(SyntheticConfig(seed=seed, scale_error=scale_error))
    reconstruction = reconstruct_from_observations(
        scene.observations, scene.cameras, scene.config.frames, scene.config.fps
    )
    reconstruction.save(out)
    evaluation = asdict(evaluate(reconstruction, scene))
    width = max(map(len, evaluation))
    print(f"reconstruction of the synthetic example written to {out}")
    for key, value in evaluation.items():
        print(f"  {key:<{width}}  {value:.4g}" if isinstance(value, float) else f"  {key:<{width}}  {value}")
    for stage, seconds in reconstruction.diagnostics.stage_seconds.items():
        print(f"  {stage + ' s':<{width}}  {seconds:.3f}")


def main(args: Sequence[str] | None = None) -> None:
    """Dispatch ``python -m studio <command>``."""
    tyro.extras.subcommand_cli_from_dict({"bench": bench, "demo": demo}, args=args)
