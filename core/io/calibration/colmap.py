"""COLMAP text models: ``cameras.txt`` + ``images.txt`` (one camera per registered image).

Each image line ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` (followed by its POINTS2D line, or not:
some writers leave those out) becomes one camera named after the image's file stem, with the
world→camera pose as stored and the intrinsics of its ``CAMERA_ID``. Only the models that are a pinhole
plus OpenCV distortion are read (SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV, and FULL_OPENCV
when its rational terms k4–k6 are 0).
COLMAP puts the centre of the top-left pixel at (0.5, 0.5) where OpenCV puts it at (0, 0), so the principal
point moves by half a pixel. COLMAP worlds are neither metric nor z-up: they are kept as they are, and the
scene must be scaled and levelled downstream.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np
from scipy.spatial.transform import Rotation

from core.io.calibration.cameras import checked_rig
from core.io.calibration.errors import CalibrationError, paired_files, read_text
from core.types import CameraRig

__all__ = ["COLMAP_FILES", "read_colmap"]

COLMAP_FILES = ("cameras.txt", "images.txt")

_MODELS = {
    "SIMPLE_PINHOLE": ((0, 0, 1, 2, -1, -1, -1, -1, -1), 3),
    "PINHOLE": ((0, 1, 2, 3, -1, -1, -1, -1, -1), 4),
    "SIMPLE_RADIAL": ((0, 0, 1, 2, 3, -1, -1, -1, -1), 4),
    "RADIAL": ((0, 0, 1, 2, 3, 4, -1, -1, -1), 5),
    "OPENCV": ((0, 1, 2, 3, 4, 5, 6, 7, -1), 8),
    "FULL_OPENCV": ((0, 1, 2, 3, 4, 5, 6, 7, 8), 12),
}
"""Per model: the index into its PARAMS of ``fx, fy, cx, cy, k1, k2, p1, p2, k3`` (-1: zero), and how
many PARAMS it has. FULL_OPENCV's last three, the rational model's k4–k6, must be 0: the studio's lens
model stops at k3."""
_RATIONAL = slice(9, 12)
"""FULL_OPENCV's k4, k5, k6."""


def read_colmap(path: Path) -> CameraRig:
    """Read ``cameras.txt`` + ``images.txt`` from ``path`` (either file, or their folder), in image order."""
    cameras_path, images_path = paired_files(path, COLMAP_FILES, "COLMAP")
    intrinsics = _read_cameras(cameras_path)
    names, camera_ids, poses = _read_images(images_path)
    missing = sorted(set(camera_ids) - intrinsics.keys())
    if missing:
        raise CalibrationError(f"{images_path}: CAMERA_ID {', '.join(missing)} not in {cameras_path.name}")
    params = np.array([intrinsics[c][0] for c in camera_ids])  # (V, 9): fx fy cx cy k1 k2 p1 p2 k3
    K = np.zeros((len(names), 3, 3))
    K[:, 0, 0], K[:, 1, 1], K[:, 2, 2] = params[:, 0], params[:, 1], 1.0
    K[:, :2, 2] = params[:, 2:4] - 0.5  # COLMAP's pixel centres sit at +0.5
    dist = params[:, 4:]
    try:
        R = Rotation.from_quat(poses[:, [1, 2, 3, 0]]).as_matrix()  # QW QX QY QZ → scipy's x, y, z, w
    except ValueError as error:
        raise CalibrationError(f"{images_path}: an image has a zero or non-finite quaternion") from error
    size = np.array([intrinsics[c][1] for c in camera_ids])
    return checked_rig(images_path, names, K, dist, R, poses[:, 4:], size)


def _read_cameras(path: Path) -> dict[str, tuple[np.ndarray, tuple[float, float]]]:
    """CAMERA_ID → (``fx, fy, cx, cy, k1, k2, p1, p2, k3`` in COLMAP's pixels, ``(width, height)``)."""
    cameras = {}
    for number, line in enumerate(read_text(path).splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        where = f"{path}: line {number}"
        if len(fields) < 4:
            raise CalibrationError(f"{where}: expected CAMERA_ID MODEL WIDTH HEIGHT PARAMS[]")
        camera_id, model = fields[:2]
        if model not in _MODELS:
            raise CalibrationError(
                f"{where}: camera model {model[:40]!r} is not supported; use one of {', '.join(_MODELS)}"
            )
        if camera_id in cameras:
            raise CalibrationError(f"{where}: CAMERA_ID {camera_id} appears twice")
        index, count = _MODELS[model]
        index = np.array(index)
        values = _numbers(where, fields[2:])
        if values.size != 2 + count:
            raise CalibrationError(f"{where}: a {model} camera has {count} PARAMS, got {values.size - 2}")
        rational = values[2:][_RATIONAL]
        if np.any(rational != 0):
            raise CalibrationError(
                f"{where}: FULL_OPENCV rational distortion (k4, k5, k6 = {', '.join(map(str, rational))}) "
                "is not supported; the studio's lens model is k1, k2, p1, p2, k3"
            )
        cameras[camera_id] = (np.where(index >= 0, values[2:][index], 0.0), (values[0], values[1]))
    return cameras


def _read_images(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """Camera names (image file stems), their CAMERA_IDs and poses ``(V, 7)``: QW QX QY QZ TX TY TZ."""
    names, camera_ids, poses = [], [], []
    lines = read_text(path).splitlines()
    number = 0
    while number < len(lines):
        fields = lines[number].split()
        number += 1
        if not fields or fields[0].startswith("#"):
            continue
        where = f"{path}: line {number}"
        if len(fields) < 10:
            raise CalibrationError(f"{where}: expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME")
        poses.append(_numbers(where, fields[1:8]))
        camera_ids.append(fields[8])
        names.append(PurePosixPath(" ".join(fields[9:])).stem)
        if number < len(lines) and _is_points_line(lines[number]):
            number += 1
    if not names:
        raise CalibrationError(f"{path}: no image line, so no camera")
    return names, camera_ids, np.stack(poses)


def _is_points_line(line: str) -> bool:
    """Whether ``line`` is an image's POINTS2D line (``X Y POINT3D_ID`` triplets, empty when it saw no
    point) rather than the next image's line: some writers leave the POINTS2D lines out."""
    fields = line.split()
    if len(fields) % 3:
        return False
    try:
        [float(f) for f in fields]
    except ValueError:
        return False
    return True


def _numbers(where: str, fields: list[str]) -> np.ndarray:
    try:
        return np.array([float(f) for f in fields])
    except ValueError as error:
        raise CalibrationError(f"{where}: {error}") from error
