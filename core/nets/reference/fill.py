"""The deterministic weight fill of the reference fixtures: every entry from its key name and shape.

No weights are shipped for the equivalence fixtures; both the reference harness and this project
regenerate them from the rule below, so a from-scratch module can be compared bit for bit.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np
import torch

KEPT_NAMES = ("image_mean", "image_std")
KEPT_PREFIXES = ("smpl_layer.", "x_attention_head.init_")


def is_kept(key: str) -> bool:
    """Non-learned entries (buffers, SMPL-X data) keep their reference value instead of a fill."""
    return key in KEPT_NAMES or key.startswith(KEPT_PREFIXES)


def fill_role(key: str, shape: tuple[int, ...]) -> str:
    """``gamma`` (LayerScale), ``norm`` (any 1-D ``weight``: LayerNorm and GroupNorm) or ``other``."""
    if key.endswith(".gamma"):
        return "gamma"
    if len(shape) == 1 and key.rsplit(".", 1)[-1] == "weight":
        return "norm"
    return "other"


def fill_value(key: str, shape: tuple[int, ...]) -> np.ndarray:
    """One key's fill: a fresh PCG64 stream seeded by the key's CRC-32, scaled by its role, in float32.

    >>> fill_value("decoder.0.attn.q_norm.weight", (64,))[:2].tolist()
    [0.9959997534751892, 1.0899081230163574]
    """
    normal = np.random.Generator(np.random.PCG64(zlib.crc32(key.encode("utf-8")))).standard_normal(
        size=tuple(shape)
    )
    role = fill_role(key, tuple(shape))
    scaled = {"gamma": 0.3 + 0.1 * normal, "norm": 1.0 + 0.1 * normal, "other": 0.02 * normal}[role]
    return scaled.astype(np.float32)


def filled_state_dict(
    shapes: Mapping[str, tuple[int, ...]], kept: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """A state dict with every key filled by the rule, except the kept ones, which come from ``kept``."""
    missing_kept = [key for key in shapes if is_kept(key) and key not in kept]
    if missing_kept:
        raise KeyError(f"kept entries need their reference values: {missing_kept}")
    return {
        key: kept[key] if is_kept(key) else torch.from_numpy(fill_value(key, tuple(shape)))
        for key, shape in shapes.items()
    }


def fill_checksum(state: Mapping[str, torch.Tensor]) -> tuple[int, float, float]:
    """(number of values, sum, sum of absolute values) over the filled entries, as FILL.md defines them."""
    count, total, total_abs = 0, 0.0, 0.0
    for key in sorted(state):
        if is_kept(key):
            continue
        values = state[key].detach().cpu().numpy().astype(np.float64)
        count += values.size
        total += values.sum()
        total_abs += np.abs(values).sum()
    return count, float(total), float(total_abs)
