"""``python -m studio nets check|bench|bench-load|build-chromm``: the networks' equivalence check, their
benchmarks, and CHROMM's starting checkpoint."""

from __future__ import annotations

import json as jsonlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro
from tyro.conf import Positional


@dataclass
class Check:
    """Compare our network with a reference fixture: build the model its key manifest describes, fill
    it by the fixtures' rule, run the fixture's inputs and print the largest difference per array.
    Exits with status 1 when an array is over tolerance."""

    fixture: Positional[Path]
    """The fixture (.npz) with input.*, buffer.*, int.*, out.* (and infer.*) arrays."""
    keys: Path
    """The single-model key manifest (.json): {"keys": {key: shape}}."""
    smplx: Path | None = None
    """Multi-HMR only: the SMPL-X model file the fixture was made with."""

    def run(self) -> None:
        from core.nets.reference.check import check_fixture, format_checks

        network, checks = check_fixture(self.fixture, self.keys, self.smplx)
        print(format_checks(network, checks))
        if not all(check.ok for check in checks):
            raise SystemExit(1)


@dataclass
class Bench:
    """Seconds and peak memory of Pi3X and Multi-HMR per multi-view frame, with random weights (and of
    CHROMM's network joining them, with ``--model chromm``)."""

    model: Literal["priors", "chromm"] = "priors"
    """priors: Pi3X and Multi-HMR; chromm: those and the whole CHROMM network, and what its new modules
    add to them."""
    views: int = 4
    """Views of the frame."""
    width: int = 1920
    """Width of the clips (Pi3X sees them resized to at most 255,000 pixels)."""
    height: int = 1080
    """Height of the clips."""
    mhmr_size: Literal["s", "b", "l"] = "l"
    """Multi-HMR backbone size."""
    mhmr_resolution: int = 896
    """Multi-HMR square input side."""
    persons: int = 3
    """Persons detected per view (Multi-HMR decodes each detection)."""
    depth: Literal["full", "tiny"] = "full"
    """full: the published depths; tiny: 2 encoder / 4 decoder blocks (a quick CPU smoke run)."""
    device: Literal["cpu", "cuda"] = "cuda"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    repeats: int = 5
    json: bool = False

    def run(self) -> None:
        from core.device import resolve_device
        from studio.nets_bench import format_frame_bench, run_frame_bench

        result = run_frame_bench(self, resolve_device(self.device))
        print(jsonlib.dumps(result, indent=1) if self.json else format_frame_bench(result))


@dataclass
class BenchLoad:
    """Peak CPU memory of loading a full-size Pi3X checkpoint (5.4 GB, synthetic values) in a fresh
    process, to the CPU and, when there is one, to the GPU."""

    checkpoint: Path = Path("/tmp/chromm-pi3x-synthetic.safetensors")
    """Where the synthetic checkpoint is written (kept for later runs)."""
    device: Literal["cpu", "cuda"] = "cpu"

    def run(self) -> None:
        from studio.nets_bench import run_load_bench

        print(run_load_bench(self.checkpoint, self.device))


@dataclass
class BuildChromm:
    """CHROMM's network from the official Pi3X and Multi-HMR checkpoints (their weights kept, its new
    modules freshly initialised: where training starts), saved as a CHROMM checkpoint."""

    out: Path
    """The CHROMM .safetensors file to write."""
    pi3x_ckpt: Path
    """Pi3X model.safetensors."""
    mhmr_ckpt: Path
    """Multi-HMR multiHMR_*.pt."""
    seed: int = 0
    """Seed of the new modules' initialisation."""

    def run(self) -> None:
        import torch

        from core.nets.chromm.checkpoint import chromm_from_priors, save_chromm
        from core.nets.config import NetworksConfig
        from core.perception.multihmr_observer import load_multihmr
        from core.scene.pi3x_scene import load_pi3x

        networks = NetworksConfig(pi3x_ckpt=self.pi3x_ckpt, mhmr_ckpt=self.mhmr_ckpt)
        torch.manual_seed(self.seed)
        model = chromm_from_priors(load_pi3x(networks, "cpu"), load_multihmr(networks, "cpu"))
        print(save_chromm(model, self.out))


NetsCommand = (
    Annotated[Check, tyro.conf.subcommand("check")]
    | Annotated[Bench, tyro.conf.subcommand("bench")]
    | Annotated[BenchLoad, tyro.conf.subcommand("bench-load")]
    | Annotated[BuildChromm, tyro.conf.subcommand("build-chromm")]
)
