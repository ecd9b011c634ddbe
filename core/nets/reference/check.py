"""Equivalence check of our networks against a reference fixture (``python -m studio nets check``).

A fixture holds a reference implementation's inputs, kept buffers, intermediates and outputs for a model
filled by the rule of ``core.nets.reference.fill``; its key manifest says which model. We build that
model from the keys alone, fill it the same way, run the inputs and compare every stored computed array.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.errors import InputError
from core.nets.checkpoints import build_from_keys
from core.nets.multihmr.model import MultiHMR
from core.nets.pi3x.model import Pi3X
from core.nets.reference.fill import filled_state_dict
from core.nets.reference.multihmr import multihmr_fixture_outputs
from core.nets.reference.pi3x import pi3x_fixture_outputs
from core.nets.reference.tolerances import NOT_COMPARED, excess, tolerance

FIXTURE_METADATA = ("infer.det_thresh", "infer.min_abs_score_minus_thresh")
"""Stored with the outputs but chosen by the harness, not computed by the model."""


@dataclass(frozen=True)
class FixtureNetwork:
    """How to build and run one network on a fixture."""

    name: str
    marker_key: str
    """A key only this network's state dict has."""
    build: Callable[[Mapping[str, tuple[int, ...]]], nn.Module]
    run: Callable[[nn.Module, Mapping[str, np.ndarray], Path | None], dict[str, np.ndarray]]


def _run_multihmr(model: nn.Module, arrays: Mapping[str, np.ndarray], smplx: Path | None) -> dict:
    if smplx is None:
        raise InputError("a Multi-HMR fixture needs the SMPL-X file it was made with: pass --smplx")
    return multihmr_fixture_outputs(model, arrays, smplx)


NETWORKS = (
    FixtureNetwork(
        "Pi3X",
        "encoder.patch_embed.proj.weight",
        Pi3X.from_key_shapes,
        lambda model, arrays, _smplx: pi3x_fixture_outputs(model, arrays),
    ),
    FixtureNetwork(
        "Multi-HMR", "backbone.encoder.patch_embed.proj.weight", MultiHMR.from_key_shapes, _run_multihmr
    ),
)


@dataclass(frozen=True)
class ArrayCheck:
    """One fixture array compared with ours."""

    name: str
    largest_difference: float
    ok: bool
    tolerance: tuple[float, float] | None
    """(atol, rtol); None: exact."""


def read_key_manifest(path: Path) -> dict[str, tuple[int, ...]]:
    """Key → shape of a single-model manifest (``{"keys": {...}}``, or the mapping itself)."""
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not a readable key manifest ({error})") from None
    keys = manifest.get("keys", manifest) if isinstance(manifest, dict) else None
    if not isinstance(keys, dict) or not all(isinstance(shape, list) for shape in keys.values()):
        raise InputError(f"{path}: a key manifest maps each state-dict key to its shape (a list)")
    return {key: tuple(shape) for key, shape in keys.items()}


def read_fixture(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not a readable fixture npz ({error})") from None


def identify(shapes: Mapping[str, tuple[int, ...]], path: Path) -> FixtureNetwork:
    for network in NETWORKS:
        if network.marker_key in shapes:
            return network
    raise InputError(f"{path}: the keys describe neither Pi3X nor Multi-HMR")


def check_fixture(
    fixture: Path, keys: Path, smplx: Path | None = None
) -> tuple[FixtureNetwork, list[ArrayCheck]]:
    """Every computed array of ``fixture`` compared with our model's, in the fixture's order."""
    shapes = read_key_manifest(keys)
    arrays = read_fixture(fixture)
    network = identify(shapes, keys)
    kept = {
        name.removeprefix("buffer."): torch.from_numpy(a)
        for name, a in arrays.items()
        if name.startswith("buffer.")
    }
    model = build_from_keys(keys, network.name, network.build, shapes)
    try:
        model.load_state_dict(filled_state_dict(shapes, kept), strict=True, assign=True)
    except KeyError as error:
        raise InputError(f"{fixture}: {error.args[0]}") from None
    ours = network.run(model.eval(), arrays, smplx)
    checks = []
    for name, reference in arrays.items():
        if not name.startswith(("int.", "out.", "infer.")) or name in FIXTURE_METADATA + NOT_COMPARED:
            continue
        if name not in ours:
            checks.append(ArrayCheck(name, float("inf"), False, tolerance(name)))
            continue
        largest, ok = excess(name, np.asarray(ours[name]), reference)
        checks.append(ArrayCheck(name, largest, ok, tolerance(name)))
    return network, checks


def format_checks(network: FixtureNetwork, checks: list[ArrayCheck]) -> str:
    width = max((len(c.name) for c in checks), default=10)
    lines = [f"{network.name}: {len(checks)} arrays compared (largest |ours - reference|)"]
    for check in checks:
        bound = (
            "exact"
            if check.tolerance is None
            else f"atol {check.tolerance[0]:.0e} rtol {check.tolerance[1]:.0e}"
        )
        verdict = "ok" if check.ok else ("MISSING" if check.largest_difference == float("inf") else "OVER")
        lines.append(f"  {check.name:<{width}}  {check.largest_difference:9.2e}  {bound:<22} {verdict}")
    failed = sum(not c.ok for c in checks)
    lines.append("all within tolerance" if not failed else f"{failed} arrays over tolerance")
    return "\n".join(lines)
