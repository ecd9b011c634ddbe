"""What the studio runs: an example or the user's clips, with the page's settings, into a session.

Kept free of any UI library so that the page, the command line and the tests run the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from core.body.config import BodyConfig, SmplxConfig
from core.body.tracks import fit_persons, load_body_model
from core.config import ReconstructionConfig
from core.engine.pipeline import reconstruct_from_observations
from core.engine.video_pipeline import reconstruct_from_videos
from core.errors import InputError
from core.evaluation.scoring import evaluate
from core.evaluation.synthetic import SyntheticConfig, make_scene
from core.io.video import FrameRange
from core.reconstruction import Reconstruction
from studio.assets import example_inputs

Progress = Callable[[str, float], None]
"""Called with (stage, fraction of that stage done)."""

SYNTHETIC = "Synthetic (3 people, 4 views, ground truth)"
POSE2SIM_EXAMPLES = ("Demo_MultiPerson", "Demo_SinglePerson")
EXAMPLES = (*POSE2SIM_EXAMPLES, SYNTHETIC)


@dataclass(frozen=True)
class RunSettings:
    """The settings the page exposes; every other setting keeps its default."""

    position_weight: float = 0.8
    """Association: weight of the 3D position distance."""
    pose_weight: float = 0.2
    """Association: weight of the canonical pose distance."""
    ray_weight: float = 1.0
    """Association: weight of the keypoint-ray distance."""
    gate: float = 1.0
    """Association: pairs costing more than this (metres) never match."""
    max_missed_frames: int = 15
    """Tracking: frames a track survives without a detection."""
    scale_mode: Literal["auto", "fixed", "off"] = "auto"
    """Scale: automatic head–pelvis adjustment, a fixed factor, or none."""
    fixed_factor: float = 1.0
    """Scale factor when ``scale_mode`` is fixed."""
    detector_threshold: float = 0.7
    """Detector: minimum person score."""
    frames: str = "::"
    """Frame range START:STOP:STEP."""
    body_model: Literal["anny", "smplx", "none"] = "anny"
    smplx_dir: str = ""
    """Folder of the user's SMPL-X files (for ``smplx``)."""
    scene: Literal["calibration", "pi3x"] = "calibration"
    """Scene prior: the calibration (and a floor), or Pi3X point maps (and cameras without calibration)."""
    pi3x_ckpt: str = ""
    """Path of the user's Pi3X ``model.safetensors`` (for ``pi3x``)."""
    humans: Literal["blazepose", "multihmr"] = "blazepose"
    """Human prior: the embedded BlazePose, or Multi-HMR."""
    mhmr_ckpt: str = ""
    """Path of the user's Multi-HMR ``multiHMR_*.pt`` (for ``multihmr``)."""
    head_depth: Literal["network", "pi3x"] = "network"
    """Multi-HMR heads at their own depth, or at Pi3X's depth of their pixel."""

    def config(self) -> ReconstructionConfig:
        base = ReconstructionConfig()
        smplx = SmplxConfig(model_dir=Path(self.smplx_dir)) if self.smplx_dir else base.body.smplx
        detector = replace(base.perception.detector, min_score=self.detector_threshold)
        return replace(
            base,
            perception=replace(base.perception, detector=detector),
            tracking=replace(base.tracking, max_missed_frames=self.max_missed_frames),
            association=replace(
                base.association,
                position_weight=self.position_weight,
                pose_weight=self.pose_weight,
                ray_weight=self.ray_weight,
                gate=self.gate,
            ),
            scale=replace(base.scale, mode=self.scale_mode, fixed_factor=self.fixed_factor),
            body=BodyConfig(model=self.body_model, smplx=smplx),
            networks=replace(
                base.networks,
                scene=self.scene,
                pi3x_ckpt=Path(self.pi3x_ckpt) if self.pi3x_ckpt else None,
                humans=self.humans,
                mhmr_ckpt=Path(self.mhmr_ckpt) if self.mhmr_ckpt else None,
                head_depth=self.head_depth,
            ),
        )

    def device(self) -> str:
        """The networks and the body fit run on the GPU when there is one."""
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class RunResult:
    reconstruction: Reconstruction
    ground_truth: dict | None = None
    """Ground-truth metrics (synthetic scenes only)."""


def run_synthetic(settings: RunSettings, progress: Progress, frames: int = 100, seed: int = 0) -> RunResult:
    """The synthetic example: a scene with known people, reconstructed and scored against them."""
    progress("simulation", 0.0)
    scene = make_scene(SyntheticConfig(persons=3, views=4, frames=frames, seed=seed))
    progress("simulation", 1.0)
    config = settings.config()
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
        start = time.perf_counter()
        persons = []
        for done, person in enumerate(reconstruction.persons, 1):
            persons += fit_persons([person], body, config.body.fit)
            progress("body", done / len(reconstruction.persons))
        seconds = {**reconstruction.diagnostics.stage_seconds, "body": time.perf_counter() - start}
        diagnostics = replace(reconstruction.diagnostics, stage_seconds=seconds)
        reconstruction = replace(reconstruction, persons=tuple(persons), diagnostics=diagnostics)
    return RunResult(reconstruction, ground_truth)


def run_clips(
    videos: Sequence[Path], calibration: Path | None, settings: RunSettings, progress: Progress
) -> RunResult:
    """The user's clips (one per camera, in the calibration's camera order; no calibration with Pi3X)."""
    frames = FrameRange.parse(settings.frames)
    reconstruction = reconstruct_from_videos(
        videos, calibration, frames, settings.config(), progress, device=settings.device()
    )
    return RunResult(reconstruction)


def run_example(name: str, settings: RunSettings, progress: Progress) -> RunResult:
    """One of ``EXAMPLES``."""
    if name == SYNTHETIC:
        return run_synthetic(settings, progress)
    if name not in POSE2SIM_EXAMPLES:
        raise InputError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)}")
    videos, calibration = example_inputs(name)
    return run_clips(videos, calibration, settings, progress)
