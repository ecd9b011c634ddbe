"""Checks shared by every reader before parameters become a :class:`~core.types.CameraRig`.

Readers only parse; whether the numbers make a usable camera (finite, a pinhole ``K``, a proper
rotation) is decided once here, batched over the V cameras, so every format fails the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from jaxtyping import Float

from core.io.calibration.errors import CalibrationError
from core.types import Camera, CameraRig

__all__ = ["checked_rig"]

_ROTATION_TOLERANCE = 1e-3
"""Largest entry of ``R Rᵀ - I`` accepted; files that print rotations with 6 decimals stay well inside."""

_MAX_PIXELS = 2**31
"""Image sides at or above this are garbage, not cameras."""


def checked_rig(
    path: Path,
    names: Sequence[str],
    K: Float[np.ndarray, "V 3 3"],
    dist: Float[np.ndarray, "V 5"],
    R: Float[np.ndarray, "V 3 3"],
    t: Float[np.ndarray, "V 3"],
    size: Float[np.ndarray, "V 2"],
) -> CameraRig:
    """Validate stacked camera parameters and build the rig, in the given camera order.

    Args:
        path: The calibration file, named in every error.
        names: Camera names, length V.
        K: Intrinsics in pixels.
        dist: OpenCV distortion ``(k1, k2, p1, p2, k3)``.
        R: World→camera rotations; re-orthonormalised (nearest rotation) once within tolerance.
        t: World→camera translations, in the file's world unit.
        size: ``(width, height)`` in pixels, whole numbers; ``0`` means unknown (``match_clips`` fills it in).

    Raises:
        CalibrationError: no camera, a non-finite value, a ``K`` that is not a pinhole matrix, a ``R`` that
            is not a rotation, or a size that is not a whole number of pixels; the message names the file
            and the camera.
    """
    if not names:
        raise CalibrationError(f"{path}: the calibration holds no camera")
    K, dist, R, t, size = (np.asarray(a, dtype=float) for a in (K, dist, R, t, size))
    finite = np.isfinite(K).all(axis=(1, 2)) & np.isfinite(dist).all(axis=1)
    finite &= np.isfinite(R).all(axis=(1, 2)) & np.isfinite(t).all(axis=1)
    _require(path, names, finite, "has a non-finite (nan or infinite) parameter")
    pinhole = (
        (K[:, 0, 0] > 0) & (K[:, 1, 1] > 0) & (K[:, 1, 0] == 0) & np.all(K[:, 2] == (0.0, 0.0, 1.0), axis=1)
    )
    _require(
        path, names, pinhole, "intrinsic matrix is not [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0"
    )
    orthonormal = np.abs(R @ np.swapaxes(R, 1, 2) - np.eye(3)).max(axis=(1, 2)) < _ROTATION_TOLERANCE
    _require(path, names, orthonormal & (np.linalg.det(R) > 0), "rotation is not a rotation matrix")
    whole = (size >= 0) & (size < _MAX_PIXELS) & (size == np.round(size))
    _require(path, names, whole.all(axis=1), "image size is not a whole, non-negative number of pixels")
    U, _, Vt = np.linalg.svd(R)
    R = U @ Vt  # nearest rotation; det stays +1 because R was already close to one
    return CameraRig(
        tuple(
            Camera(n, K[v], dist[v], R[v], t[v], int(size[v, 0]), int(size[v, 1]))
            for v, n in enumerate(names)
        )
    )


def _require(path: Path, names: Sequence[str], ok: np.ndarray, problem: str) -> None:
    bad = [names[v] for v in np.flatnonzero(~ok)]
    if bad:
        raise CalibrationError(f"{path}: camera {', '.join(map(repr, bad))}: {problem}")
