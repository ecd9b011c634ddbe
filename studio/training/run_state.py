"""A training run's state on disk: what an exact resume needs, written atomically.

``DIR/checkpoints/state_<step>.pt`` holds the trained parameters, the optimiser and scheduler, every
random generator (Python, numpy, torch, CUDA) and the data position (epoch, steps into it); the frozen
weights are not repeated there: they are those of ``DIR/start.safetensors``, the network the run
started from. ``DIR/chromm.safetensors`` is the whole network at the latest checkpoint, what
``--chromm-ckpt``, ``evaluate-network`` and the next stage's ``--init`` read. A file is written to a
temporary name and renamed, so a crash or a full disk mid-write leaves the previous checkpoint whole;
the two newest states are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.errors import InputError
from core.nets.chromm.checkpoint import save_chromm
from core.nets.chromm.model import Chromm

KEPT_STATES = 2
_STATE_NAME = re.compile(r"state_(\d+)\.pt$")


@dataclass(frozen=True)
class Position:
    """Where the run is: optimiser steps taken, and the epoch and steps into it."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    seconds: float = 0.0
    """Training time so far (``--max-minutes`` counts it across resumes)."""


def random_states() -> dict[str, Any]:
    """torch's generators: the only global ones training draws from (data order has its own; numpy is
    used through seeded Generators)."""
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_state(
    folder: Path,
    model: Chromm,
    trained: dict[str, torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    position: Position,
) -> Path:
    """Write the state at ``position`` and the whole network beside it; returns the network's file."""
    checkpoints = Path(folder) / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    state = {
        "trained": {name: p.detach().cpu() for name, p in trained.items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "random": random_states(),
        "position": position.__dict__,
    }
    path = checkpoints / f"state_{position.step:08d}.pt"
    partial = path.with_name(path.name + ".partial")
    try:
        torch.save(state, partial)
        partial.replace(path)
        network = save_chromm(model, Path(folder) / "chromm.safetensors")
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise InputError(
            f"could not write the checkpoint in {checkpoints} ({error}); the previous one is intact"
        ) from None
    for old in _states(checkpoints)[:-KEPT_STATES]:
        old.unlink()
    return network


def _states(checkpoints: Path) -> list[Path]:
    found = [(int(m[1]), p) for p in checkpoints.glob("state_*.pt") if (m := _STATE_NAME.search(p.name))]
    return [path for _, path in sorted(found)]


def latest_state(folder: Path) -> Path | None:
    states = _states(Path(folder) / "checkpoints")
    return states[-1] if states else None


def load_state(
    path: Path,
    trained: dict[str, torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> Position:
    """Put the run back as ``save_state`` left it; a clear error for a state of another network."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as error:
        raise InputError(f"{path}: not a readable training state ({error})") from None
    saved = state["trained"]
    if set(saved) != set(trained) or any(saved[k].shape != trained[k].shape for k in saved):
        raise InputError(f"{path}: its trained parameters are not this network's (another size or stage)")
    with torch.no_grad():
        for name, parameter in trained.items():
            parameter.copy_(saved[name])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    restore_random_states(state["random"])
    return Position(**state["position"])
