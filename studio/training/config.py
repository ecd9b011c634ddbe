"""The training run's settings, one typed record saved with the run (``DIR/config.json``); the paper's
settings are the defaults."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from core.body.config import BodyConfig
from core.errors import InputError
from core.nets.chromm.placement import TranslationMode
from studio.training.losses import LossWeights

Stage = Literal[0, 1, 2]
STAGE_LEARNING_RATES = {0: 1e-4, 1: 5e-5, 2: 1e-4}
"""The paper's: stage 1 at 5e-5, stage 2 (pelvis MLP only) at 1e-4; stage 0 (toy encoders) as stage 2."""
RUN_BOUNDS = ("max_steps", "max_minutes")
"""Settings a resumed run may change: how far it goes."""


@dataclass(frozen=True)
class TrainConfig:
    """One training run of CHROMM's network."""

    data: str
    """Training data: ``synthetic:DIR`` (``make-data synthetic``) or ``bedlam:DIR`` (a local BEDLAM copy)."""
    out: Path
    """Run folder: config, checkpoints, metrics, curves. An existing run there is resumed."""
    stage: Stage = 1
    """1: the new modules and the SMPL-X decoder on frozen encoders; 2: the pelvis heads alone, with the
    Chamfer term; 0: the encoders themselves, for depth and head detection (toy runs only)."""
    val_data: str | None = None
    """Validation data (same forms as ``data``); None: none."""
    init: Path | None = None
    """A CHROMM checkpoint to start from (``nets build-chromm``'s, or an earlier stage's); None with
    ``--preset tiny``: a fresh tiny network."""
    preset: Literal["paper", "tiny"] = "paper"
    """``tiny``: the toy configuration (truncated Pi3X and Multi-HMR-S at 224 px) for a CPU."""
    translation: TranslationMode | None = None
    """How heads are placed (the paper's ablation: ``depth_residual``, ``direct_depth``,
    ``direct_translation``); None: the starting network's own (a fresh one: ``depth_residual``)."""
    lr: float | None = None
    """AdamW learning rate; None: the stage's (``STAGE_LEARNING_RATES``)."""
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    """Linear warm-up, then cosine decay to a tenth over the run."""
    epochs: int = 20
    batch_size: int = 4
    """Instants per optimiser step (per process)."""
    scale_adjustment_from: float = 0.5
    """Fraction of the run after which the head–pelvis scale adjustment is on (the paper: 10 of 20
    epochs); 0: always."""
    max_steps: int | None = None
    """Stop after this many optimiser steps (None: the epochs). A bound, not the schedule: the learning
    rate and the scale adjustment follow the epochs, so a run resumed with a larger bound goes on as one
    run would have."""
    max_minutes: float | None = None
    """Stop after this many minutes of training (a checkpoint is written)."""
    checkpoint_every: int = 500
    validate_every: int = 500
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    """``auto``: CUDA when present (this process's GPU under torchrun), else CPU."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """``auto``: bf16 autocast on CUDA, fp32 on CPU."""
    gradient_checkpointing: bool = False
    """Recompute the transformer blocks' activations in the backward pass (memory for time)."""
    feature_cache: Path | None = None
    """Cache the frozen encoders' outputs per sample in this folder (stages 1 and 2)."""
    workers: int = 0
    """Data-loading processes (0: in this process)."""
    val_samples: int = 64
    """Validation instants (the first of ``val_data``)."""
    weights: LossWeights = field(default_factory=LossWeights)
    body: BodyConfig = field(default_factory=BodyConfig)
    """The body model behind the losses: Anny by default, SMPL-X with the user's files."""

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else STAGE_LEARNING_RATES[self.stage]

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))

    def save(self, folder: Path) -> None:
        path = Path(folder) / "config.json"
        partial = path.with_name("config.json.partial")
        partial.write_text(json.dumps(self.to_json(), indent=2))
        partial.replace(path)

    def check_resumable(self, folder: Path) -> None:
        """Refuse to resume the run in ``folder`` with other settings (its bounds excepted), naming them."""
        saved = json.loads((Path(folder) / "config.json").read_text())
        mine = self.to_json()
        differing = sorted(
            name for name in {f.name for f in fields(self)} - set(RUN_BOUNDS) if saved.get(name) != mine[name]
        )
        if differing:
            detail = ", ".join(f"{name}: {saved.get(name)!r} there, {mine[name]!r} now" for name in differing)
            raise InputError(
                f"{folder} holds a run with other settings ({detail}): resume it with its own settings, "
                "or use another --out"
            )
