"""CMU Panoptic Studio calibrations: ``calibration_<sequence>.json``, as the dome's toolbox and the
multi-view pose tools trained on it (VoxelPose, mmpose) write them.

A ``cameras`` list of objects with ``name``, ``type`` (``hd``, ``vga``, ``kinect-color``…),
``resolution`` ``[w, h]``, ``K``, ``distCoef`` (OpenCV's five), ``R`` and ``t`` (world→camera, t in
centimetres as a 3 × 1 list). A full dome file holds every sensor; when it mixes types, the HD cameras
are read (the ones filmed in video), in file order. The dome's world has y pointing down, towards the
floor; it is turned to the studio's z-up convention (x kept, y ← z, z ← −y) and scaled to metres.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.io.calibration.cameras import checked_rig
from core.io.calibration.errors import CalibrationError, read_text
from core.types import CameraRig

__all__ = ["is_panoptic_name", "read_panoptic"]

_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
"""Dome world (y down) → studio world (z up)."""
_KEYS = ("name", "resolution", "K", "distCoef", "R", "t")


def is_panoptic_name(name: str) -> bool:
    """Whether a file name is a Panoptic calibration's (``calibration_*.json``)."""
    name = name.lower()
    return name.startswith("calibration") and name.endswith(".json")


def read_panoptic(path: Path) -> CameraRig:
    """Read a Panoptic ``calibration_*.json``: its HD cameras when it lists several types, else all."""
    try:
        document = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise CalibrationError(f"{path}: not valid JSON ({error})") from error
    cameras = document.get("cameras") if isinstance(document, dict) else None
    if not isinstance(cameras, list) or not all(isinstance(c, dict) for c in cameras):
        raise CalibrationError(f"{path}: expected an object with a 'cameras' list (a Panoptic calibration)")
    if len({c.get("type") for c in cameras}) > 1:
        cameras = [c for c in cameras if c.get("type") == "hd"]
    for index, camera in enumerate(cameras):
        missing = [key for key in _KEYS if key not in camera]
        if missing:
            raise CalibrationError(
                f"{path}: camera {index} ({camera.get('name', '?')}) lacks {', '.join(missing)}"
            )
    try:
        K = np.array([c["K"] for c in cameras], dtype=float).reshape(-1, 3, 3)
        dist = np.array([np.pad(c["distCoef"], (0, 5 - len(c["distCoef"]))) for c in cameras], dtype=float)
        R = np.array([c["R"] for c in cameras], dtype=float).reshape(-1, 3, 3)
        t = np.array([c["t"] for c in cameras], dtype=float).reshape(-1, 3)
        size = np.array([c["resolution"] for c in cameras], dtype=float).reshape(-1, 2)
    except (TypeError, ValueError) as error:
        raise CalibrationError(
            f"{path}: a camera's K, distCoef, R, t or resolution is malformed ({error})"
        ) from error
    names = [str(c["name"]) for c in cameras]
    return checked_rig(path, names, K, dist, R @ _Z_UP.T, t / 100.0, size)
