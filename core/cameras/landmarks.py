"""The relative rotation of two views that the people's own 3D estimates imply.

A per-view 3D body estimate (BlazePose's world landmarks, a body model's root orientation) gives each
person's orientation in that view's camera frame, so the same person at the same instant in views i and
j gives their relative rotation R_ij = O_j O_iᵀ with no focal length known. A detector that labels a
person seen from behind mirror-wise turns the body half a turn about its up axis; each pair therefore
offers that reading too, and the nearer one counts. Body orientation estimates are coarse (tens of
degrees), which is enough to refuse a wrong epipolar solution, not to refine a right one.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float, Int
from scipy.spatial.transform import Rotation

HALF_TURN = np.diag([-1.0, 1.0, -1.0])
"""Half a turn about the canonical body frame's up axis (SMPL-X: y up): a left/right label swap."""


def pair_readings(
    orient_cam: Float[np.ndarray, "N 3"], rows1: Int[np.ndarray, " Q"], rows2: Int[np.ndarray, " Q"]
) -> Float[np.ndarray, "Q 2 3 3"]:
    """Each observation pair's relative rotation of the views, as read directly and mirror-wise."""
    O1 = Rotation.from_rotvec(orient_cam[rows1]).as_matrix()
    O2 = Rotation.from_rotvec(orient_cam[rows2]).as_matrix()
    direct = O2 @ O1.transpose(0, 2, 1)
    mirrored = O2 @ HALF_TURN @ O1.transpose(0, 2, 1)
    return np.stack([direct, mirrored], axis=1)


def angle_deg(A: Float[np.ndarray, "*B 3 3"], B: Float[np.ndarray, "*B 3 3"]) -> Float[np.ndarray, "*B"]:
    """Geodesic angle between rotations, degrees.

    >>> float(angle_deg(np.eye(3), Rotation.from_euler("z", 30, degrees=True).as_matrix()).round(6))
    30.0
    """
    cos = (np.einsum("...ij,...ij->...", A, B) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def reading_error_deg(readings: Float[np.ndarray, "Q 2 3 3"], R: Float[np.ndarray, "3 3"]) -> np.ndarray:
    """Each pair's angle to ``R``, by the nearer of its two readings."""
    return angle_deg(readings, R).min(axis=1)
