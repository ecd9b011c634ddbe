"""Sparse bundle adjustment of cameras (rotation, translation, focal length, optionally k1) and points,
optionally with body segments whose length stays constant over time.

``scipy.optimize.least_squares`` with a soft-L1 loss, so that a wrong keypoint costs linearly, and the
Jacobian's sparsity pattern given: each residual depends on one camera and one point (a segment's on
two points and one length), so the finite differences take a few dozen residual evaluations however
many points there are.
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


@dataclass(frozen=True)
class Segments:
    """Pairs of points whose distance is one unknown length each (a person's bone at every frame)."""

    first: Int[np.ndarray, " B"]
    second: Int[np.ndarray, " B"]
    length: Int[np.ndarray, " B"]
    """Which of the unknown lengths each pair has."""
    weight: float
    """Residual per unit of log-length change: 100 makes a 1 % change cost as much as a pixel."""


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
    segments: Segments | None = None,
) -> tuple[BundleCameras, Float[np.ndarray, "P 3"], float]:
    """Cameras, points and the final robust cost minimising the robust reprojection error of
    ``pixels`` (observation m: point ``point[m]`` seen by camera ``view[m]``) and, with ``segments``,
    the change of each segment's length around its own unknown value (relative, so that it does not
    depend on the rig's unit).

    The cameras of ``fixed`` keep their pose; the scale is left free (the trust region keeps it from
    drifting) and set afterwards by the people's size. ``intrinsics``: 0 keeps them, 1 adjusts each
    focal length, 2 also k1 (held near 0 by a prior of ``k1_sigma``, as strong as all the camera's
    residuals together: a lens rarely bends much, and k1 otherwise trades with the focal length).
    """
    V, P = len(cameras.focal), points.shape[0]
    per_view = np.bincount(view, minlength=V)
    free = np.setdiff1d(np.arange(V), fixed)
    layout = _Layout(len(free), V, intrinsics, P)
    L = 0 if segments is None else int(segments.length.max()) + 1

    def unpack(x: np.ndarray) -> tuple[BundleCameras, np.ndarray, np.ndarray]:
        block = x[: layout.posed].reshape(len(free), _POSE)
        rotvec, t = cameras.rotvec.copy(), cameras.t.copy()
        rotvec[free], t[free] = block[:, :3], block[:, 3:6]
        intrinsic = x[layout.posed : layout.points].reshape(V, intrinsics)
        focal = cameras.focal * np.exp(intrinsic[:, 0]) if intrinsics >= 1 else cameras.focal
        k1 = intrinsic[:, 1] if intrinsics >= 2 else cameras.k1
        X = x[layout.points : layout.lengths].reshape(P, 3)
        return BundleCameras(rotvec, t, focal, k1, cameras.principal), X, x[layout.lengths :]

    def residuals(x: np.ndarray) -> np.ndarray:
        adjusted, X, lengths = unpack(x)
        parts = [(project(adjusted, view, X[point]) - pixels).ravel()]
        if intrinsics >= 2:
            parts.append(scale_px * np.sqrt(per_view) * adjusted.k1 / k1_sigma)
        if segments is not None:
            span = np.linalg.norm(X[segments.first] - X[segments.second], axis=1)
            parts.append(segments.weight * np.log(span / lengths[segments.length]))
        return np.concatenate(parts)

    start = [
        np.concatenate([cameras.rotvec[free], cameras.t[free]], axis=1).ravel(),
        np.stack([np.zeros(V), cameras.k1], axis=1)[:, :intrinsics].ravel(),
        points.ravel(),
    ]
    if segments is not None:
        span = np.linalg.norm(points[segments.first] - points[segments.second], axis=1)
        start.append(np.exp(_mean_by(np.log(span), segments.length, L)))
    lower = np.full(sum(s.size for s in start), -np.inf)
    lower[layout.lengths :] = 1e-9
    result = least_squares(
        residuals,
        np.concatenate(start),
        jac_sparsity=_sparsity(view, point, free, layout, intrinsics >= 2, segments, L),
        loss="soft_l1",
        f_scale=scale_px,
        x_scale="jac",
        method="trf",
        tr_solver="lsmr",
        max_nfev=max_nfev,
        bounds=(lower, np.inf),
    )
    adjusted, X, _ = unpack(result.x)
    return adjusted, X, float(result.cost)


def _mean_by(values: np.ndarray, group: np.ndarray, count: int) -> np.ndarray:
    total = np.bincount(group, weights=values, minlength=count)
    return total / np.maximum(np.bincount(group, minlength=count), 1)


@dataclass(frozen=True)
class _Layout:
    """Where each kind of parameter starts in the parameter vector."""

    free: int
    views: int
    intrinsics: int
    count: int

    @property
    def posed(self) -> int:
        return self.free * _POSE

    @property
    def points(self) -> int:
        return self.posed + self.views * self.intrinsics

    @property
    def lengths(self) -> int:
        return self.points + 3 * self.count


def _sparsity(view, point, free, layout: _Layout, priors: bool, segments: Segments | None, lengths: int):
    """Which parameters each residual depends on: a reprojection on its camera's pose (if free) and
    intrinsics and on its point; a k1 prior on its k1; a segment on its two points and its length."""
    M, V, K = view.shape[0], layout.views, layout.intrinsics
    slot = np.full(V, -1)
    slot[free] = np.arange(len(free))
    columns = np.concatenate(
        [
            np.where(slot[view, None] >= 0, slot[view, None] * _POSE + np.arange(_POSE), -1),
            layout.posed + view[:, None] * K + np.arange(K),
            layout.points + 3 * point[:, None] + np.arange(3),
        ],
        axis=1,
    )  # (M, C): the parameters of observation m, for its x and its y residual
    rows = [np.repeat(np.arange(2 * M).reshape(M, 2), columns.shape[1], axis=1)]
    columns = [np.tile(columns, 2)]
    row = 2 * M
    if priors:
        rows.append(row + np.arange(V)[:, None])
        columns.append(layout.posed + np.arange(V)[:, None] * K + 1)
        row += V
    if segments is not None:
        B = segments.first.size
        rows.append(np.repeat(row + np.arange(B)[:, None], 7, axis=1))
        columns.append(
            np.concatenate(
                [
                    layout.points + 3 * segments.first[:, None] + np.arange(3),
                    layout.points + 3 * segments.second[:, None] + np.arange(3),
                    layout.lengths + segments.length[:, None],
                ],
                axis=1,
            )
        )
        row += B
    rows = np.concatenate([r.ravel() for r in rows])
    columns = np.concatenate([c.ravel() for c in columns])
    keep = columns >= 0
    shape = (row, layout.lengths + lengths)
    return coo_matrix((np.ones(keep.sum(), dtype=np.int8), (rows[keep], columns[keep])), shape=shape)
