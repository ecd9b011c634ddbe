"""Pi3X's scene moved into a calibrated rig's world by one similarity (scale, rotation, translation).

Pi3X predicts cameras, depth and points in a world of its own (its frame is arbitrary and its metres
only an estimate); the calibrated rig fixes the real one. The same physical views in both give the similarity.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float
from scipy.spatial.transform import Rotation

from core.errors import InputError
from core.geometry import apply_sim3, average_quaternions_xyzw, umeyama_sim3
from core.types import Camera, CameraRig

__all__ = ["AlignmentError", "Similarity", "align_rigs"]

_COLLINEAR_RATIO = 0.05
"""Centres lying within this share of their spread from one line leave the roll about that line to
noise; the cameras' orientations then fix the rotation instead."""
_COINCIDENT = 1e-9
"""Spread of camera centres, relative to their distance from the origin, under which they coincide."""


class AlignmentError(InputError):
    """Two rigs that do not fix a similarity between their worlds; the message says why."""


@dataclass(frozen=True)
class Similarity:
    """``x_target = scale * R @ x_source + t``, from Pi3X's world to the calibrated world."""

    scale: float
    R: Float[np.ndarray, "3 3"]
    t: Float[np.ndarray, 3]

    def points(self, points: Float[np.ndarray, "*batch N 3"]) -> Float[np.ndarray, "*batch N 3"]:
        """World points in the target world."""
        return apply_sim3(points, self.scale, self.R, self.t)

    def depth(self, depth: Float[np.ndarray, "*batch"]) -> Float[np.ndarray, "*batch"]:
        """Camera-frame depths in target units (camera frames only scale)."""
        return np.asarray(depth, dtype=float) * self.scale

    def camera(self, camera: Camera) -> Camera:
        """A camera of the source world placed in the target world (intrinsics unchanged)."""
        R = camera.R @ self.R.T
        return dataclasses.replace(camera, R=R, t=self.scale * camera.t - R @ self.t)

    def rig(self, rig: CameraRig) -> CameraRig:
        """Every camera of a source rig in the target world."""
        return CameraRig(tuple(self.camera(camera) for camera in rig.cameras))


def align_rigs(source: CameraRig, target: CameraRig) -> Similarity:
    """The similarity taking ``source`` (Pi3X's cameras) onto ``target`` (the calibrated ones), view by view.

    Camera centres well spread in a plane or more fix it alone (Umeyama's least squares). Two cameras,
    or centres close to one line, leave the rotation about that line open: the rotation is then the
    average of what each view's orientation pair implies, and scale and translation the least squares of
    the centres under it.

    Raises:
        AlignmentError: the rigs differ in size, have fewer than two views, or a rig's centres coincide.
    """
    if len(source) != len(target):
        raise AlignmentError(f"cannot pair {len(source)} Pi3X cameras with {len(target)} calibrated cameras")
    if len(source) < 2:
        raise AlignmentError("at least two views are needed to fix the scale between Pi3X and calibration")
    src, dst = source.centers, target.centers
    spread = np.linalg.svd(src - src.mean(axis=0), compute_uv=False)
    if spread[0] <= _COINCIDENT * max(1.0, float(np.abs(src).max())):
        raise AlignmentError("the Pi3X camera centres coincide, so the scale to the calibration is undefined")
    if spread[1] > _COLLINEAR_RATIO * spread[0]:
        scale, R, t = umeyama_sim3(src, dst)
    else:
        per_view = np.swapaxes(target.R, -1, -2) @ source.R
        quaternion = average_quaternions_xyzw(Rotation.from_matrix(per_view).as_quat(), np.ones(len(source)))
        R = Rotation.from_quat(quaternion).as_matrix()
        src_centred, dst_centred = src - src.mean(axis=0), dst - dst.mean(axis=0)
        scale = float((dst_centred * (src_centred @ R.T)).sum() / (src_centred**2).sum())
        t = dst.mean(axis=0) - scale * R @ src.mean(axis=0)
    if not (np.isfinite(scale) and scale > 0):
        raise AlignmentError("the calibrated camera centres coincide, so the scale from Pi3X is undefined")
    return Similarity(scale=float(scale), R=R, t=t)
