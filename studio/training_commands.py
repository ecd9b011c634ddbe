"""``python -m studio train | make-data | evaluate-network``: CHROMM's training, its data and its
evaluation (the ``train`` extra's libraries are imported by the commands, not here)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from tyro.conf import Positional, arg

from core.body.config import BodyConfig
from studio.training.config import TrainConfig
from studio.training.make_data import MakeSynthetic
from studio.training.toy_proof import BenchTraining

_BODY = BodyConfig()


def train(config: Annotated[TrainConfig, arg(name="")]) -> None:
    """Train (or resume) one stage of CHROMM's network; prints the network's checkpoint last.

    Stage 1 trains the fusion, the SMPL-X decoder, the depth residual and the pelvis heads on frozen
    encoders; stage 2 the pelvis heads alone with the Chamfer term; stage 0 the tiny encoders of toy runs.
    ``torchrun --nproc-per-node N -m studio train …`` trains on N processes (DistributedDataParallel).
    """
    from studio.training.trainer import train as run

    print(run(config))


def make_data(kind: Positional[Literal["synthetic"]], config: Annotated[MakeSynthetic, arg(name="")]) -> None:
    """Render training data: ``synthetic`` scenes of Anny bodies coloured by part and garment, boxes and
    walls on a floor, seen by 2–4 cameras on a ring, with RGB, metric depth, instance masks and every
    ground truth (in parallel over the cores; a rerun renders only the missing scenes)."""
    config.run()


def evaluate_network(
    checkpoint: Positional[Path],
    data: str,
    json: bool = False,
    limit: int | None = None,
    threshold: float = 0.3,
    device: str = "cpu",
    feature_cache: Path | None = None,
    body: BodyConfig = _BODY,
) -> None:
    """Score a CHROMM checkpoint on held-out samples: MPJPE and PA-MPJPE with the mean-pose baseline,
    head translation error (and with the heads at Pi3X's depth), coarse and fine pelvis error, scale
    error with and without the head–pelvis adjustment, detection precision and recall.

    Args:
        checkpoint: The network (``train``'s last line, or any CHROMM checkpoint).
        data: ``synthetic:DIR`` or ``bedlam:DIR``.
        json: Print the figures as JSON (keys ``mpjpe_mm``, ``baseline_mean_pose_mpjpe_mm``,
            ``head_error_mm``, ``pelvis_px``, ``scale_error``, …).
        limit: Score only the first samples.
        threshold: Head-detection score threshold (detection figures only).
        device: ``cpu`` or ``cuda``.
        feature_cache: Read (or write) the frozen encoders' outputs there, as ``train --feature-cache``.
        body: The body model the figures are measured with (Anny, or SMPL-X from your files).
    """
    import json as jsonlib

    from core.body.tracks import load_body_model
    from core.device import resolve_device
    from core.nets.chromm.checkpoint import load_chromm
    from studio.training.datasets import open_dataset
    from studio.training.encoded import EncodedCache
    from studio.training.evaluation import evaluate_network as evaluate

    device = resolve_device(device)
    model = load_chromm(checkpoint, device).eval()
    cache = EncodedCache(model, feature_cache) if feature_cache else None
    body_model = load_body_model(body, device)
    scores = evaluate(model, open_dataset(data), body_model, limit, threshold, cache=cache).to_json()
    if json:
        print(jsonlib.dumps(scores, indent=2))
        return
    for name, value in scores.items():
        print(f"{name:>30}: {value}")


def bench_training(config: Annotated[BenchTraining, arg(name="")]) -> None:
    """The toy proof that the training learns: render scenes, train the tiny network (stages 0, 1, 2,
    and the paper's two translation alternatives) within a CPU budget, score all of it on held-out scenes
    and check the targets; the report is also written to OUT/report.json."""
    config.run()
