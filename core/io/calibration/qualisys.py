"""Qualisys Track Manager calibrations (``.qca.txt``, XML), as exported by QTM and shipped with Pose2Sim.

What the file stores, and how it becomes an OpenCV camera (checked on the Pose2Sim demo, see the tests):

* ``intrinsic`` focal lengths, principal point and skew are in sensor subpixels, 64 per pixel, and the
  principal point is relative to the full sensor, so the video window's ``fov_video`` left/top offset is
  subtracted after dividing by 64. The image size is the window's ``right - left + 1`` by
  ``bottom - top + 1``.
* Distortion coefficients act on normalised coordinates, so they are taken unscaled:
  ``(radialDistortion1, radialDistortion2, tangentalDistortion1, tangentalDistortion2, radialDistortion3)``
  is OpenCV's ``(k1, k2, p1, p2, k3)``. (Pose2Sim divides them by 64; on the demo's checkerboard images
  the unscaled values fit better, and they match what a fresh OpenCV calibration finds.)
* ``transform`` holds the camera centre in millimetres and a matrix whose rows ``r1·, r2·, r3·`` map
  world to a camera that looks along its -z with y up; turning that by 180° about x gives OpenCV's
  camera (z forward, y down).

Mixed systems list marker cameras too; when some camera's model names a video camera only those are kept,
since marker cameras film no clip. ``viewrotation`` other than 0 is refused rather than guessed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from jaxtyping import Float

from core.io.calibration.cameras import checked_rig
from core.io.calibration.errors import CalibrationError, read_bytes
from core.types import CameraRig

__all__ = ["read_qualisys"]

_SUBPIXELS = 64.0
"""QTM sensor coordinates per image pixel."""

_QUALISYS_TO_OPENCV: Float[np.ndarray, "3 3"] = np.diag([1.0, -1.0, -1.0])
"""180° about the camera x axis: Qualisys camera (looks along -z, y up) → OpenCV camera."""

_FOV = ("left", "top", "right", "bottom")
_INTRINSIC = (
    "focalLengthU",
    "focalLengthV",
    "centerPointU",
    "centerPointV",
    "skew",
    "radialDistortion1",
    "radialDistortion2",
    "tangentalDistortion1",
    "tangentalDistortion2",
    "radialDistortion3",
)
_TRANSFORM = ("x", "y", "z", *(f"r{i}{j}" for i in "123" for j in "123"))


def read_qualisys(path: Path) -> CameraRig:
    """Read a ``.qca.txt`` file into a rig in metres, z up as in QTM, cameras in file order."""
    try:
        root = ET.fromstring(read_bytes(path))
    except ET.ParseError as error:
        raise CalibrationError(f"{path}: not a valid Qualisys XML file ({error})") from error
    cameras = root.findall("cameras/camera")
    if not cameras:
        raise CalibrationError(f"{path}: no <cameras><camera> element; is this a Qualisys calibration?")
    video = [c for c in cameras if "video" in c.get("model", "").lower()]
    cameras = video or cameras
    names = [_name(path, c, v) for v, c in enumerate(cameras)]
    for name, camera in zip(names, cameras, strict=True):
        if camera.get("viewrotation", "0").strip() != "0":
            raise CalibrationError(
                f"{path}: camera {name!r} has viewrotation={camera.get('viewrotation')!r}; only 0 is "
                "supported: set the view rotation to 0 in QTM and export the calibration again"
            )
    fov = _attributes(path, cameras, names, "fov_video", _FOV)
    intr = _attributes(path, cameras, names, "intrinsic", _INTRINSIC)
    pose = _attributes(path, cameras, names, "transform", _TRANSFORM)

    origin = fov[:, :2]  # (V, 2) left, top of the video window on the sensor, pixels
    f_u, f_v, c_u, c_v, skew = (intr[:, i] / _SUBPIXELS for i in range(5))
    K = np.zeros((len(names), 3, 3))
    K[:, 0] = np.stack([f_u, skew, c_u - origin[:, 0]], axis=1)
    K[:, 1, 1:] = np.stack([f_v, c_v - origin[:, 1]], axis=1)
    K[:, 2, 2] = 1.0
    dist = intr[:, 5:]  # k1, k2, p1, p2, k3 in the order of _INTRINSIC, unscaled
    R = _QUALISYS_TO_OPENCV @ pose[:, 3:].reshape(-1, 3, 3)
    centers = pose[:, :3] / 1000.0  # millimetres → metres
    t = -(R @ centers[:, :, None])[:, :, 0]
    size = fov[:, 2:] - fov[:, :2] + 1  # the window's corners are inclusive pixel indices
    return checked_rig(path, names, K, dist, R, t, size)


def _name(path: Path, camera: ET.Element, index: int) -> str:
    serial = camera.get("serial", "").strip()
    if not serial:
        raise CalibrationError(f"{path}: camera #{index + 1} has no serial to name it")
    return serial


def _attributes(
    path: Path, cameras: list[ET.Element], names: list[str], tag: str, keys: tuple[str, ...]
) -> Float[np.ndarray, "V A"]:
    """The numeric attributes ``keys`` of every camera's ``<tag>`` child, one row per camera."""
    rows = []
    for camera, name in zip(cameras, names, strict=True):
        element = camera.find(tag)
        if element is None:
            raise CalibrationError(f"{path}: camera {name!r} has no <{tag}> element")
        missing = [k for k in keys if k not in element.attrib]
        if missing:
            raise CalibrationError(f"{path}: camera {name!r}: <{tag}> lacks {', '.join(missing)}")
        try:
            rows.append([float(element.attrib[k]) for k in keys])
        except ValueError as error:
            raise CalibrationError(f"{path}: camera {name!r}: <{tag}> has a non-number ({error})") from error
    return np.array(rows)
