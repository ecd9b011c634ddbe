"""Which source gives a run its cameras, and the stand-in rig the people are detected in before the
self-calibration has placed them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.cameras.config import CameraConfig, CameraHints, CameraSource
from core.errors import InputError
from core.nets.config import NetworksConfig
from core.types import Camera, CameraRig

DEFAULT_FOV_DEG = 60.0
"""Horizontal field of view of the stand-in cameras when no hint is given (phones: 60–75°)."""


def camera_source(config: CameraConfig, networks: NetworksConfig, calibration: Path | None) -> CameraSource:
    """The source the run uses: the one asked for, or for ``auto`` the calibration file if there is one,
    else Pi3X when it is the scene network, else the people; a clear error for a choice that cannot
    work."""
    source = config.source
    if source == "auto":
        source = "file" if calibration is not None else "pi3x" if networks.scene == "pi3x" else "people"
    if source == "file" and calibration is None:
        raise InputError(
            "--cameras file needs a calibration: pass --calibration FILE, or use --cameras people"
        )
    if source == "people" and networks.scene == "pi3x":
        raise InputError("--scene pi3x gives the cameras too: use --cameras pi3x (or auto), not people")
    if source == "pi3x" and networks.scene != "pi3x":
        raise InputError("--cameras pi3x needs the scene network: add --scene pi3x --pi3x-ckpt PATH")
    return source


def focal_hints(hints: CameraHints, views: int) -> np.ndarray | None:
    """Each view's focal length from the hints (pixels), None without a focal-length hint."""
    if not hints.focal_px:
        return None
    if len(hints.focal_px) not in (1, views):
        raise InputError(
            f"--focal: give one focal length or one per clip ({views}), not {len(hints.focal_px)}"
        )
    return np.broadcast_to(np.asarray(hints.focal_px, dtype=float), (views,)).copy()


def stand_in_rig(sizes: Sequence[tuple[int, int]], names: Sequence[str], hints: CameraHints) -> CameraRig:
    """Cameras at the origin with the hinted (else a typical) focal length and the principal point at
    the image centre: what a detector that wants intrinsics is given before the cameras are known."""
    widths = np.array([w for w, _ in sizes], dtype=float)
    focal = focal_hints(hints, len(sizes))
    if focal is None:
        fov = hints.fov_deg if hints.fov_deg is not None else DEFAULT_FOV_DEG
        focal = widths / 2 / np.tan(np.radians(fov) / 2)
    return CameraRig(
        tuple(
            Camera(
                name,
                np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]]),
                np.zeros(5),
                np.eye(3),
                np.zeros(3),
                int(w),
                int(h),
            )
            for name, f, (w, h) in zip(names, focal, sizes, strict=True)
        )
    )
