"""EasyMocap calibrations: ``intri.yml`` and ``extri.yml`` side by side (OpenCV FileStorage YAML).

``intri.yml`` lists the cameras in ``names`` and holds ``K_<name>`` and ``dist_<name>`` (or ``D_<name>``),
and optionally the image size as ``W_<name>`` / ``H_<name>``; ``extri.yml`` holds the world→camera
rotation as a Rodrigues vector ``R_<name>`` (or a matrix ``Rot_<name>``) and the translation ``T_<name>``.
EasyMocap files often carry no image size: such cameras get width and height 0, which
:func:`~core.io.calibration.match_clips` fills in from the clips. The world is taken as stored (EasyMocap
calibrations are usually metric with the floor at z = 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from core.io.calibration.cameras import checked_rig
from core.io.calibration.errors import CalibrationError, paired_files, read_text
from core.io.calibration.opencv_yaml import OpenCvYaml
from core.types import CameraRig

__all__ = ["EASYMOCAP_FILES", "read_easymocap"]

EASYMOCAP_FILES = ("intri.yml", "extri.yml")


def read_easymocap(path: Path) -> CameraRig:
    """Read ``intri.yml`` + ``extri.yml`` from ``path`` (either file or their folder), in ``names`` order."""
    intri_path, extri_path = paired_files(path, EASYMOCAP_FILES, "EasyMocap")
    intri = OpenCvYaml.parse(intri_path, read_text(intri_path))
    extri = OpenCvYaml.parse(extri_path, read_text(extri_path))
    names = intri.strings("names")
    if not names:
        raise CalibrationError(f"{intri_path}: 'names' lists no camera")
    K, dist, R, t, size = [], [], [], [], []
    for n in names:
        K.append(intri.matrix(f"K_{n}", 9).reshape(3, 3))
        distortion = intri.matrix(f"D_{n}" if f"D_{n}" in intri else f"dist_{n}", 4, 5)
        dist.append(np.pad(distortion, (0, 5 - distortion.size)))
        R.append(_rotation(extri, n))
        t.append(extri.matrix(f"T_{n}", 3))
        size.append([intri.number(f"W_{n}"), intri.number(f"H_{n}")] if f"W_{n}" in intri else [0, 0])
    size = np.maximum(size, 0)  # EasyMocap writes -1 for an unknown size
    return checked_rig(intri_path.parent, names, np.stack(K), np.stack(dist), np.stack(R), np.stack(t), size)


def _rotation(extri: OpenCvYaml, name: str) -> np.ndarray:
    """World→camera rotation from ``R_<name>`` (Rodrigues; EasyMocap prefers it) or ``Rot_<name>``."""
    if f"R_{name}" in extri:
        return Rotation.from_rotvec(extri.matrix(f"R_{name}", 3)).as_matrix()
    if f"Rot_{name}" in extri:
        return extri.matrix(f"Rot_{name}", 9).reshape(3, 3)
    raise CalibrationError(f"{extri.path}: camera {name!r} has neither R_{name} nor Rot_{name}")
