"""How closely our networks must match a reference fixture array, by the array's name."""

from __future__ import annotations

import numpy as np

DEFAULT = (1e-4, 1e-4)
SMALL_RANGE = (1e-5, 1e-4)
PIXELS = (1e-3, 1e-4)

SMALL_RANGE_PREFIXES = ("int.point_head_", "int.camera_head_", "int.metric_", "out.conf", "out.rays")
PIXEL_NAMES = ("out.loc", "out.j2d", "out.v2d")
"""Exact names: ``out.local_points`` is not in pixels."""
NOT_COMPARED = ("out.rotvec",)
"""Axis-angle is unstable near π (the fixture has such angles); ``out.rotmat`` carries the same values."""


def tolerance(name: str) -> tuple[float, float] | None:
    """(atol, rtol) for a float array, ``None`` where the comparison must be exact (integer arrays)."""
    if name.endswith(".rowcol") or name == "input.idx":
        return None
    if name in PIXEL_NAMES or (name.startswith("infer.") and name.endswith(".loc")):
        return PIXELS
    if name.startswith(SMALL_RANGE_PREFIXES):
        return SMALL_RANGE
    return DEFAULT


def excess(name: str, ours: np.ndarray, reference: np.ndarray) -> tuple[float, bool]:
    """(largest absolute difference, within tolerance) of one array; a shape mismatch never passes."""
    if ours.shape != reference.shape:
        return float("inf"), False
    difference = np.abs(ours.astype(np.float64) - reference.astype(np.float64))
    largest = float(difference.max()) if difference.size else 0.0
    bounds = tolerance(name)
    if bounds is None:
        return largest, largest == 0.0
    atol, rtol = bounds
    return largest, bool(np.all(difference <= atol + rtol * np.abs(reference.astype(np.float64))))
