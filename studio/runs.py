"""What the studio runs: an example or the user's clips, with a config and a frame range, into a session.

Kept free of any UI library so that the page, the command line and the tests run the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.body.tracks import fit_persons, load_body_model
from core.config import ReconstructionConfig
from core.engine.pipeline import reconstruct_from_observations
from core.engine.timing import timed
from core.engine.video_pipeline import reconstruct_from_videos
from core.errors import InputError
from core.evaluation.scoring import evaluate
from core.evaluation.synthetic import SyntheticConfig, make_scene
from core.io.video import FrameRange
from core.reconstruction import Reconstruction
from studio.assets import example_inputs

if TYPE_CHECKING:
    from studio.session import Session, SessionStore

Progress = Callable[[str, float], None]
"""Called with (stage, fraction of that stage done)."""

SYNTHETIC = "Synthetic (3 people, 4 views, ground truth)"
POSE2SIM_EXAMPLES = ("Demo_MultiPerson", "Demo_SinglePerson")
EXAMPLES = (*POSE2SIM_EXAMPLES, SYNTHETIC)


def _device() -> str:
    """The networks and the body fit run on the GPU when there is one."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class RunResult:
    reconstruction: Reconstruction
    ground_truth: dict | None = None
    """Ground-truth metrics (synthetic scenes only)."""


SYNTHETIC_FRAMES = 100
"""Frames of the synthetic example's scene; a frame range picks how many are simulated."""


def run_synthetic(
    config: ReconstructionConfig, progress: Progress, frames: int = SYNTHETIC_FRAMES, seed: int = 0
) -> RunResult:
    """The synthetic example: a scene with known people, reconstructed and scored against them."""
    progress("simulation", 0.0)
    scene = make_scene(SyntheticConfig(persons=3, views=4, frames=frames, seed=seed))
    progress("simulation", 1.0)
    reconstruction = reconstruct_from_observations(
        scene.observations,
        scene.cameras,
        frames,
        scene.config.fps,
        config,
        lambda stage, _: progress(stage, 1.0),
    )
    ground_truth = asdict(evaluate(reconstruction, scene))
    body = load_body_model(config.body)
    if body is not None:
        progress("body", 0.0)
        seconds = dict(reconstruction.diagnostics.stage_seconds)
        persons = []
        with timed(seconds, "body"):
            for done, person in enumerate(reconstruction.persons, 1):
                persons += fit_persons([person], body, config.body.fit)
                progress("body", done / len(reconstruction.persons))
        diagnostics = replace(reconstruction.diagnostics, stage_seconds=seconds)
        reconstruction = replace(reconstruction, persons=tuple(persons), diagnostics=diagnostics)
    return RunResult(reconstruction, ground_truth)


def run_clips(
    videos: Sequence[Path],
    calibration: Path | None,
    config: ReconstructionConfig,
    frames: FrameRange,
    progress: Progress,
) -> RunResult:
    """The user's clips (one per camera, in the calibration's camera order; no calibration with Pi3X)."""
    reconstruction = reconstruct_from_videos(videos, calibration, frames, config, progress, device=_device())
    return RunResult(reconstruction)


def run_example(name: str, config: ReconstructionConfig, frames: FrameRange, progress: Progress) -> RunResult:
    """One of ``EXAMPLES``; the synthetic scene is as long as ``frames`` picks of its 100 frames."""
    if name == SYNTHETIC:
        return run_synthetic(config, progress, len(frames.indices(SYNTHETIC_FRAMES)))
    if name not in POSE2SIM_EXAMPLES:
        raise InputError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)}")
    videos, calibration = example_inputs(name)
    return run_clips(videos, calibration, config, frames, progress)


def save_run(store: SessionStore, name: str, result: RunResult, frames: FrameRange) -> Session:
    """A finished run as a new session of ``store``; its config is saved with the reconstruction."""
    settings = {"input": name, "frames": asdict(frames), "ground_truth": result.ground_truth}
    return store.create(name, result.reconstruction, settings)
