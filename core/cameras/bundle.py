"""Sparse bundle adjustment of cameras (rotation, translation, focal length, optionally k1 and the
principal point) and points, optionally with body segments whose length stays constant over time.

``scipy.optimize.least_squares`` with a soft-L1 loss, so that a wrong keypoint costs linearly, and an
analytic sparse Jacobian: each residual depends on one camera and one point (a segment's on two points
and one length). Rotations are rotation vectors, differentiated exactly through SO(3)'s right Jacobian;
focal lengths and segment lengths are logarithms, so that they stay positive without bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int
from scipy.optimize import least_squares
from scipy.sparse import coo_matrix, csr_matrix
from scipy.spatial.transform import Rotation

_POSE = 6  # rotation vector, translation
_INTRINSIC_COLUMNS = (0, 1, 2, 4)
"""Parameters per camera at each ``intrinsics`` level: none; log-focal; and k1; and the principal point."""


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
    principal_sigma_px: float = 40.0,
) -> tuple[BundleCameras, Float[np.ndarray, "P 3"], float]:
    """Cameras, points and the final robust cost minimising the robust reprojection error of
    ``pixels`` (observation m: point ``point[m]`` seen by camera ``view[m]``) and, with ``segments``,
    the change of each segment's length around its own unknown value (relative, so that it does not
    depend on the rig's unit).

    The cameras of ``fixed`` keep their pose and the farthest other camera its distance from the origin
    (the scale's gauge); the metric scale is set afterwards by the people's size. ``intrinsics``: 0
    keeps them, 1 adjusts each focal length, 2 also k1 (held near 0 by a prior of ``k1_sigma``, as
    strong as all the camera's residuals together: a lens rarely bends much, and k1 otherwise trades
    with the focal length), 3 also the principal point (held near its start by a prior of
    ``principal_sigma_px``, as strong).
    """
    if segments is not None and not segments.first.size:
        segments = None  # no person with both ends of a bone among the points
    problem = _Problem(
        cameras, view, point, pixels, fixed, intrinsics, (k1_sigma, principal_sigma_px), segments
    )
    zero = np.zeros(len(cameras.focal))
    start = [
        np.concatenate([cameras.rotvec[problem.free], cameras.t[problem.free]], axis=1).ravel(),
        np.stack([zero, cameras.k1, zero, zero], axis=1)[:, : problem.columns].ravel(),
        points.ravel(),
    ]
    if segments is not None:
        span = np.linalg.norm(points[segments.first] - points[segments.second], axis=1)
        start.append(_mean_by(np.log(span), segments.length, problem.lengths))
    result = least_squares(
        lambda x: problem.residuals(x, scale_px),
        np.concatenate(start),
        jac=lambda x: problem.jacobian(x, scale_px),
        loss="soft_l1",
        f_scale=scale_px,
        x_scale="jac",
        method="trf",
        tr_solver="lsmr",
        max_nfev=max_nfev,
    )
    adjusted, X, _ = problem.unpack(result.x)
    return adjusted, X, float(result.cost)


def _mean_by(values: np.ndarray, group: np.ndarray, count: int) -> np.ndarray:
    total = np.bincount(group, weights=values, minlength=count)
    return total / np.maximum(np.bincount(group, minlength=count), 1)


def _cross_matrices(v: Float[np.ndarray, "N 3"]) -> Float[np.ndarray, "N 3 3"]:
    """``[v]×``: the matrices with ``[v]× w = v × w``."""
    zero = np.zeros(len(v))
    x, y, z = v.T
    return np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=1).reshape(-1, 3, 3)


def right_jacobians(rotvec: Float[np.ndarray, "N 3"]) -> Float[np.ndarray, "N 3 3"]:
    """SO(3)'s right Jacobian at each rotation vector ω: ``R(ω + dω) ≈ R(ω) exp([J_r(ω) dω]×)``.

    >>> bool(np.allclose(right_jacobians(np.zeros((1, 3))), np.eye(3)))
    True
    """
    theta = np.linalg.norm(rotvec, axis=1)[:, None, None]
    W = _cross_matrices(rotvec)
    small = theta < 1e-6
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 0.5, (1 - np.cos(safe)) / safe**2)
    b = np.where(small, 1.0 / 6.0, (safe - np.sin(safe)) / safe**3)
    return np.eye(3) - a * W + b * W @ W


class _Problem:
    """The residuals of one adjustment and their Jacobian, whose sparsity pattern is built once.

    Parameters, in order: the free cameras' rotation vectors and translations, each camera's log-focal
    change, k1 and principal point shift (as ``intrinsics`` asks), the points, and the segments'
    log-lengths.
    """

    def __init__(self, cameras, view, point, pixels, fixed, intrinsics, sigmas, segments) -> None:
        self.cameras, self.view, self.point, self.pixels = cameras, view, point, pixels
        self.intrinsics, self.segments = intrinsics, segments
        self.k1_sigma, self.principal_sigma = sigmas
        self.columns = _INTRINSIC_COLUMNS[intrinsics]
        V = len(cameras.focal)
        self.free = np.setdiff1d(np.arange(V), fixed)
        self.slot = np.full(V, -1)
        self.slot[self.free] = np.arange(len(self.free))
        self.per_view = np.bincount(view, minlength=V)
        self.count = int(point.max(initial=-1)) + 1
        self.lengths = 0 if segments is None else int(segments.length.max()) + 1
        self.posed = len(self.free) * _POSE
        self.at_points = self.posed + V * self.columns
        self.at_lengths = self.at_points + 3 * self.count
        distance = np.linalg.norm(cameras.t[self.free], axis=1)
        self.gauge = int(self.free[np.argmax(distance)]) if distance.size and distance.max() > 0 else None
        """The free camera whose distance from the origin is held: the scale's gauge (a free scale
        leaves the normal equations singular and the solver crawling)."""
        rows, columns = self._pattern()
        keep = np.flatnonzero(columns >= 0)  # a fixed camera's pose is no parameter
        numbered = coo_matrix((np.arange(1.0, keep.size + 1), (rows[keep], columns[keep])), shape=self.shape)
        self._template = numbered.tocsr()
        self._order = keep[self._template.data.astype(np.int64) - 1]

    def unpack(self, x: np.ndarray) -> tuple[BundleCameras, np.ndarray, np.ndarray]:
        c, V = self.cameras, len(self.cameras.focal)
        block = x[: self.posed].reshape(len(self.free), _POSE)
        rotvec, t = c.rotvec.copy(), c.t.copy()
        rotvec[self.free], t[self.free] = block[:, :3], block[:, 3:6]
        intrinsic = x[self.posed : self.at_points].reshape(V, self.columns)
        focal = c.focal * np.exp(intrinsic[:, 0]) if self.intrinsics >= 1 else c.focal
        k1 = intrinsic[:, 1] if self.intrinsics >= 2 else c.k1
        principal = c.principal + intrinsic[:, 2:4] if self.intrinsics >= 3 else c.principal
        X = x[self.at_points : self.at_lengths].reshape(self.count, 3)
        return BundleCameras(rotvec, t, focal, k1, principal), X, x[self.at_lengths :]

    def _k1_weight(self, scale_px: float) -> np.ndarray:
        return scale_px * np.sqrt(self.per_view) / self.k1_sigma

    def _principal_weight(self, scale_px: float) -> np.ndarray:
        return np.repeat(scale_px * np.sqrt(self.per_view) / self.principal_sigma, 2)

    def _gauge_weight(self, scale_px: float) -> float:
        return scale_px * np.sqrt(self.view.size)

    def residuals(self, x: np.ndarray, scale_px: float) -> np.ndarray:
        adjusted, X, log_lengths = self.unpack(x)
        parts = [(project(adjusted, self.view, X[self.point]) - self.pixels).ravel()]
        if self.intrinsics >= 2:
            parts.append(self._k1_weight(scale_px) * adjusted.k1)
        if self.intrinsics >= 3:
            shift = (adjusted.principal - self.cameras.principal).ravel()
            parts.append(self._principal_weight(scale_px) * shift)
        if self.gauge is not None:
            held = np.log(np.linalg.norm(adjusted.t[self.gauge]) / np.linalg.norm(self.cameras.t[self.gauge]))
            parts.append([self._gauge_weight(scale_px) * held])
        if self.segments is not None:
            s = self.segments
            span = np.linalg.norm(X[s.first] - X[s.second], axis=1)
            parts.append(s.weight * (np.log(span) - log_lengths[s.length]))
        return np.concatenate(parts)

    def _pattern(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns of the Jacobian's non-zeros, in the order :meth:`jacobian` fills them."""
        M, K = self.view.size, self.columns
        slot = self.slot[self.view, None]
        columns = np.concatenate(
            [
                np.where(slot >= 0, slot * _POSE + np.arange(_POSE), -1),
                self.posed + self.view[:, None] * K + np.arange(K),
                self.at_points + 3 * self.point[:, None] + np.arange(3),
            ],
            axis=1,
        )  # (M, C): observation m's parameters, for its x and its y residual
        rows = [np.repeat(np.arange(2 * M), columns.shape[1])]
        columns = [np.repeat(columns, 2, axis=0).ravel()]
        row = 2 * M
        if K >= 2:
            V = len(self.cameras.focal)
            rows.append(row + np.arange(V))
            columns.append(self.posed + np.arange(V) * K + 1)
            row += V
        if K >= 4:
            V = len(self.cameras.focal)
            rows.append(row + np.arange(2 * V))
            columns.append(self.posed + (np.arange(V)[:, None] * K + [2, 3]).ravel())
            row += 2 * V
        if self.gauge is not None:
            rows.append(np.full(3, row))
            columns.append(self.slot[self.gauge] * _POSE + 3 + np.arange(3))
            row += 1
        if self.segments is not None:
            s = self.segments
            rows.append(np.repeat(row + np.arange(s.first.size), 7))
            columns.append(
                np.concatenate(
                    [
                        self.at_points + 3 * s.first[:, None] + np.arange(3),
                        self.at_points + 3 * s.second[:, None] + np.arange(3),
                        self.at_lengths + s.length[:, None],
                    ],
                    axis=1,
                ).ravel()
            )
            row += s.first.size
        self.shape = (row, self.at_lengths + self.lengths)
        return np.concatenate(rows), np.concatenate(columns)

    def jacobian(self, x: np.ndarray, scale_px: float) -> csr_matrix:
        adjusted, X, _ = self.unpack(x)
        view, p = self.view, X[self.point]
        R = adjusted.R[view]
        rotated = np.einsum("mij,mj->mi", R, p)
        c = rotated + adjusted.t[view]
        xy = c[:, :2] / c[:, 2:3]
        k1, f = adjusted.k1[view], adjusted.focal[view]
        r2 = (xy**2).sum(1)
        radial = 1.0 + k1 * r2
        # d pixel / d normalised (2×2), then d normalised / d camera point (2×3)
        d_xy = f[:, None, None] * (
            radial[:, None, None] * np.eye(2) + 2 * k1[:, None, None] * xy[:, :, None] * xy[:, None, :]
        )
        inverse_z = 1.0 / c[:, 2]
        d_c = np.zeros((view.size, 2, 3))
        d_c[:, 0, 0] = d_c[:, 1, 1] = inverse_z
        d_c[:, :, 2] = -xy * inverse_z[:, None]
        A = d_xy @ d_c  # d pixel / d camera point
        blocks = [
            A @ -_cross_matrices(rotated) @ R @ right_jacobians(adjusted.rotvec[view]),  # c = R p + t
            A,
        ]
        if self.intrinsics >= 1:
            blocks.append((f * radial)[:, None, None] * xy[:, :, None])  # log-focal
        if self.intrinsics >= 2:
            blocks.append((f * r2)[:, None, None] * xy[:, :, None])
        if self.intrinsics >= 3:
            blocks.append(np.broadcast_to(np.eye(2), (view.size, 2, 2)))
        blocks.append(A @ R)
        per_observation = np.concatenate(blocks, axis=2)  # (M, 2, 6 + K + 3)
        data = [per_observation.reshape(-1)]
        if self.intrinsics >= 2:
            data.append(self._k1_weight(scale_px))
        if self.intrinsics >= 3:
            data.append(self._principal_weight(scale_px))
        if self.gauge is not None:
            t = adjusted.t[self.gauge]
            data.append(self._gauge_weight(scale_px) * t / (t @ t))
        if self.segments is not None:
            s = self.segments
            d = X[s.first] - X[s.second]
            gradient = s.weight * d / (d**2).sum(1, keepdims=True)
            data.append(
                np.concatenate([gradient, -gradient, np.full((d.shape[0], 1), -s.weight)], axis=1).ravel()
            )
        self._template.data = np.concatenate(data)[self._order]
        return self._template.copy()
