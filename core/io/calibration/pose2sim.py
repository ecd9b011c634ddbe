"""Pose2Sim ``Calib.toml``: the calibration format the studio writes, and reads back.

One table per camera with ``name``, ``size`` ``[w, h]``, ``matrix`` (3×3, pixels), ``distortions``
``[k1, k2, p1, p2]`` (a fifth value, k3, is read and written when non-zero), ``rotation`` (Rodrigues
vector) and ``translation`` (metres), both world→camera (read flat or as 3 × 1 nested lists, as
Pose2Sim's scene calibration writes them), and ``fisheye``. Tables without any camera key
(Pose2Sim's ``[metadata]``, ``[capture_volume]``, ``[charuco]``…) are ignored. Floats are written with
``repr`` (shortest round-tripping form), so a written rig reads back exactly up to the Rodrigues round trip.

Written files end, as Pose2Sim's own do, with ``[metadata]`` (``adjusted = false``, ``error = 0.0``):
Pose2Sim treats every other top-level table as a camera, and numbers the cameras by table position, so
the metadata table comes last and no camera may be named ``metadata``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from core.io.calibration.cameras import checked_rig
from core.io.calibration.errors import CalibrationError, read_text
from core.types import CameraRig

__all__ = ["pose2sim_toml", "read_pose2sim", "write_pose2sim"]

_CAMERA_KEYS = ("matrix", "distortions", "rotation", "translation", "size")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_METADATA = "[metadata]\nadjusted = false\nerror = 0.0\n"
"""Pose2Sim's closing table: the calibration was not bundle-adjusted by Pose2Sim, no residual known."""


def read_pose2sim(path: Path) -> CameraRig:
    """Read a Pose2Sim ``.toml`` calibration, cameras in file order."""
    try:
        document = tomllib.loads(read_text(path))
    except (tomllib.TOMLDecodeError, RecursionError) as error:
        raise CalibrationError(f"{path}: not valid TOML ({error})") from error
    tables = {
        header: table
        for header, table in document.items()
        if isinstance(table, dict) and any(k in table for k in _CAMERA_KEYS)
    }
    names, K, dist, R, t, size = [], [], [], [], [], []
    for header, table in tables.items():
        name = table.get("name", header)
        where = f"{path}: camera [{header}]"
        if not isinstance(name, str) or not name:
            raise CalibrationError(f"{where}: 'name' must be a non-empty string")
        if table.get("fisheye", False) is not False:
            raise CalibrationError(f"{where}: fisheye lenses are not supported (fisheye = false expected)")
        distortion = _array(where, table, "distortions", (4,), (5,))
        names.append(name)
        K.append(_array(where, table, "matrix", (3, 3)))
        dist.append(np.pad(distortion, (0, 5 - distortion.size)))
        R.append(Rotation.from_rotvec(_vector(where, table, "rotation")).as_matrix())
        t.append(_vector(where, table, "translation"))
        size.append(_array(where, table, "size", (2,)))
    if not names:
        raise CalibrationError(f"{path}: no camera table (with 'matrix', 'rotation'…) in this TOML file")
    return checked_rig(path, names, np.stack(K), np.stack(dist), np.stack(R), np.stack(t), np.stack(size))


def write_pose2sim(rig: CameraRig, path: Path) -> None:
    """Write ``rig`` as a Pose2Sim ``Calib.toml`` (UTF-8, :func:`pose2sim_toml`)."""
    Path(path).write_text(pose2sim_toml(rig, path), encoding="utf-8")


def pose2sim_toml(rig: CameraRig, path: Path) -> str:
    """The text of ``rig`` as a Pose2Sim ``Calib.toml``, for a caller that writes it its own way.

    Raises:
        CalibrationError: the rig holds no camera, two cameras share a name (names head tables), or one is
            named ``metadata``; the message starts with ``path``.
    """
    if not len(rig):
        raise CalibrationError(f"{path}: no camera to write (the rig is empty)")
    if len(set(rig.names)) != len(rig):
        raise CalibrationError(f"{path}: camera names must be unique to be written, got {list(rig.names)}")
    if "metadata" in rig.names:
        raise CalibrationError(f"{path}: a camera cannot be named 'metadata' (Pose2Sim reserves the table)")
    rotvecs = Rotation.from_matrix(rig.R).as_rotvec()
    blocks = []
    for camera, rotvec in zip(rig.cameras, rotvecs, strict=True):
        dist = camera.dist if camera.dist[4] != 0 else camera.dist[:4]
        blocks.append(
            f"[{_key(camera.name)}]\n"
            f"name = {_string(camera.name)}\n"
            f"size = [ {camera.width}, {camera.height} ]\n"
            f"matrix = [ {', '.join(_floats(row) for row in camera.K)} ]\n"
            f"distortions = {_floats(dist)}\n"
            f"rotation = {_floats(rotvec)}\n"
            f"translation = {_floats(camera.t)}\n"
            "fisheye = false\n"
        )
    return "\n".join([*blocks, _METADATA])


def _array(where: str, table: dict[str, Any], key: str, *shapes: tuple[int, ...]) -> np.ndarray:
    expected = " or ".join("×".join(map(str, s)) for s in shapes)
    if key not in table:
        raise CalibrationError(f"{where}: missing '{key}'")
    try:
        value = np.asarray(table[key], dtype=float)
    except (TypeError, ValueError) as error:
        raise CalibrationError(f"{where}: '{key}' must be an array of {expected} numbers") from error
    if value.shape not in shapes:
        raise CalibrationError(
            f"{where}: '{key}' must be an array of {expected} numbers, got shape {value.shape}"
        )
    return value


def _vector(where: str, table: dict[str, Any], key: str) -> np.ndarray:
    """A 3-vector, flat or nested as a column or a row (Pose2Sim's scene calibration writes
    ``[[x], [y], [z]]``, and Pose2Sim reads it)."""
    return _array(where, table, key, (3,), (3, 1), (1, 3)).reshape(3)


def _floats(values: np.ndarray) -> str:
    return "[ " + ", ".join(repr(float(v)) for v in values) + " ]"


def _string(text: str) -> str:
    """A TOML basic string; backslash, quote and control characters escaped."""
    escaped = ("\\" + c if c in '"\\' else f"\\u{ord(c):04x}" if c < " " or c == "\x7f" else c for c in text)
    return '"' + "".join(escaped) + '"'


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _string(name)
