"""Sparse bundle adjustment of cameras (rotation, translation, focal length, optionally k1) and points.

``scipy.optimize.least_squares`` with a soft-L1 loss, so that a wrong keypoint costs linearly, and the
Jacobian's sparsity pattern given: each residual depends on one camera and one point, so the finite
differences take a few dozen residual evaluations however many points there are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int
from scipy.optimize import least_squares
from scipy.sparse import coo_matrix
from scipy.spatial.transform import Rotation

_POSE = 6  # rotation vector, translation


@dataclass(frozen=True)
class BundleCameras:
    """Cameras as the adjustment sees them: principal point fixed, one focal length, radial k1."""

    rotvec: Float[np.ndarray, "V 3"]
    t: Float[np.ndarray, "V 3"]
    focal: Float[np.ndarray, " V"]
    k1: Float[np.ndarray, " V"]
    principal: Float[np.ndarray, "V 2"]

    @property
    def R(self) -> Float[np.ndarray, "V 3 3"]:
        return Rotation.from_rotvec(self.rotvec).as_matrix()


def project(
    cameras: BundleCameras, view: Int[np.ndarray, " M"], points: Float[np.ndarray, "M 3"]
) -> Float[np.ndarray, "M 2"]:
    """Pixels of ``points`` in the cameras ``view`` (pinhole with radial k1)."""
    camera = Rotation.from_rotvec(cameras.rotvec[view]).apply(points) + cameras.t[view]
    xy = camera[:, :2] / camera[:, 2:3]
    radial = 1.0 + cameras.k1[view, None] * (xy**2).sum(1, keepdims=True)
    return cameras.focal[view, None] * radial * xy + cameras.principal[view]


def adjust(
    cameras: BundleCameras,
    points: Float[np.ndarray, "P 3"],
    view: Int[np.ndarray, " M"],
    point: Int[np.ndarray, " M"],
    pixels: Float[np.ndarray, "M 2"],
    scale_px: float,
    fixed: Int[np.ndarray, " G"],
    intrinsics: int,
    max_nfev: int,
    k1_sigma: float = 0.05,
) -> tuple[BundleCameras, Float[np.ndarray, "P 3"]]:
    """Cameras and points minimising the robust reprojection error of ``pixels`` (observation m: point
    ``point[m]`` seen by camera ``view[m]``). The cameras of ``fixed`` keep their pose; the scale is
    left free (the trust region keeps it from drifting) and set afterwards by the people's size.
    ``intrinsics``: 0 keeps them, 1 adjusts each focal length, 2 also k1 (held near 0 by a prior of
    ``k1_sigma``, as strong as all the camera's residuals together: a lens rarely bends much and k1
    otherwise trades with the focal length)."""
    V, P = len(cameras.focal), points.shape[0]
    per_view = np.bincount(view, minlength=V)
    free = np.setdiff1d(np.arange(V), fixed)
    posed = len(free) * _POSE

    def unpack(x: np.ndarray) -> tuple[BundleCameras, np.ndarray]:
        block = x[:posed].reshape(len(free), _POSE)
        rotvec, t = cameras.rotvec.copy(), cameras.t.copy()
        rotvec[free], t[free] = block[:, :3], block[:, 3:6]
        intrinsic = x[posed : posed + V * intrinsics].reshape(V, intrinsics)
        focal = cameras.focal * np.exp(intrinsic[:, 0]) if intrinsics >= 1 else cameras.focal
        k1 = intrinsic[:, 1] if intrinsics >= 2 else cameras.k1
        return BundleCameras(rotvec, t, focal, k1, cameras.principal), x[-3 * P :].reshape(P, 3)

    def residuals(x: np.ndarray) -> np.ndarray:
        adjusted, X = unpack(x)
        reprojection = (project(adjusted, view, X[point]) - pixels).ravel()
        if intrinsics < 2:
            return reprojection
        return np.concatenate([reprojection, scale_px * np.sqrt(per_view) * adjusted.k1 / k1_sigma])

    start = np.concatenate(
        [
            np.concatenate([cameras.rotvec[free], cameras.t[free]], axis=1).ravel(),
            np.stack([np.zeros(V), cameras.k1], axis=1)[:, :intrinsics].ravel(),
            points.ravel(),
        ]
    )
    result = least_squares(
        residuals,
        start,
        jac_sparsity=_sparsity(view, point, free, V, P, intrinsics),
        loss="soft_l1",
        f_scale=scale_px,
        x_scale="jac",
        method="trf",
        tr_solver="lsmr",
        max_nfev=max_nfev,
    )
    return unpack(result.x)


def _sparsity(view: np.ndarray, point: np.ndarray, free: np.ndarray, V: int, P: int, intrinsics: int):
    """Which parameters each residual depends on: its camera's pose (if free) and intrinsics, its point."""
    M = view.shape[0]
    slot = np.full(V, -1)
    slot[free] = np.arange(len(free))
    posed = len(free) * _POSE
    columns = [
        np.where(slot[view, None] >= 0, slot[view, None] * _POSE + np.arange(_POSE), -1),
        posed + view[:, None] * intrinsics + np.arange(intrinsics),
        posed + V * intrinsics + 3 * point[:, None] + np.arange(3),
    ]
    columns = np.concatenate(columns, axis=1)  # (M, C): the parameters of observation m
    rows = np.repeat(np.arange(2 * M).reshape(M, 2), columns.shape[1], axis=1)  # x and y residuals
    columns = np.tile(columns, 2)
    keep = columns >= 0
    rows, columns = rows[keep], columns[keep]
    extra = V if intrinsics >= 2 else 0  # the k1 priors, one row per camera
    if extra:
        rows = np.concatenate([rows, 2 * M + np.arange(V)])
        columns = np.concatenate([columns, posed + np.arange(V) * intrinsics + 1])
    shape = (2 * M + extra, posed + V * intrinsics + 3 * P)
    return coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, columns)), shape=shape)
