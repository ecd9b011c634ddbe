"""Tracks: the observations of one person at one frame in several views, and their 3D points.

A track is what the bundle adjustment triangulates: observation n is in track ``track[n]`` (-1: in
none). They come from the view pairs' matches (``from_pairs``) and grow as views are placed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from core.cameras.bundle import BundleCameras
from core.cameras.pairs import ViewPair
from core.geometry import triangulate_pixels
from core.types import Camera, CameraRig, Observations


@dataclass(frozen=True)
class Tracks:
    track: Int[np.ndarray, " N"]
    count: int

    @staticmethod
    def from_pairs(observations: Observations, pairs: Sequence[ViewPair], views: int) -> Tracks:
        """Observations linked by the view pairs' matches, the surest first (lowest cost), each link
        kept only if the group it makes has no two observations of one view: a wrong match (two people
        on one epipolar line) then joins nobody instead of merging two people's groups."""
        N = len(observations)
        empty = np.zeros(0, dtype=np.int64)
        first = np.concatenate([p.observations1 for p in pairs] or [empty])
        second = np.concatenate([p.observations2 for p in pairs] or [empty])
        cost = np.concatenate(
            [np.zeros(p.observations1.size) if p.cost is None else p.cost for p in pairs] or [np.zeros(0)]
        )
        label = _conflict_free_groups(N, observations.view, first, second, np.argsort(cost, kind="stable"))
        size = np.bincount(label, minlength=N)
        good = size[label] >= 2
        _, track = np.unique(label[good], return_inverse=True)
        grouped = np.full(N, -1, dtype=np.int64)
        grouped[good] = track
        return Tracks(grouped, int(track.max(initial=-1)) + 1)

    def table(self, observations: Observations, views: int) -> Int[np.ndarray, "T V"]:
        """Each track's observation in each view (-1: none)."""
        table = np.full((self.count, views), -1, dtype=np.int64)
        rows = np.flatnonzero(self.track >= 0)
        table[self.track[rows], observations.view[rows]] = rows
        return table

    def persons(self, tracklet: Int[np.ndarray, " N"]) -> Int[np.ndarray, " T"]:
        """Each track's person: tracks joined over time by the tracklets their observations share."""
        use = (self.track >= 0) & (tracklet >= 0)
        size = self.count + int(tracklet.max(initial=0)) + 1
        graph = coo_matrix(
            (np.ones(use.sum()), (self.track[use], self.count + tracklet[use])), shape=(size, size)
        )
        return connected_components(graph, directed=False)[1][: self.count]

    def frames(self, observations: Observations) -> Int[np.ndarray, " T"]:
        """Each track's frame."""
        frame = np.full(self.count, -1, dtype=np.int64)
        rows = np.flatnonzero(self.track >= 0)
        frame[self.track[rows]] = observations.frame[rows]
        return frame


def intrinsics(cameras: BundleCameras) -> tuple[Float[np.ndarray, "V 3 3"], Float[np.ndarray, "V 5"]]:
    """The adjustment's cameras as OpenCV K and distortion (k1 only)."""
    V = len(cameras.focal)
    K = np.zeros((V, 3, 3))
    K[:, 0, 0] = K[:, 1, 1] = cameras.focal
    K[:, :2, 2] = cameras.principal
    K[:, 2, 2] = 1.0
    dist = np.zeros((V, 5))
    dist[:, 0] = cameras.k1
    return K, dist


def triangulate_tracks(
    cameras: BundleCameras,
    placed: set[int],
    tracks: Tracks,
    observations: Observations,
    keypoints: Float[np.ndarray, "N K 2"],
    valid: np.ndarray,
) -> tuple[Float[np.ndarray, "T K 3"], Int[np.ndarray, "T K"]]:
    """Each track's points from the placed views that see them, and by how many views."""
    V = len(cameras.focal)
    table = tracks.table(observations, V)
    use = np.isin(np.arange(V), sorted(placed))[None] & (table >= 0)
    rows = np.where(use, table, 0)
    pixels = np.moveaxis(keypoints[rows], 1, 2)  # (T, K, V, 2)
    weight = np.moveaxis(np.where(use[..., None], valid[rows], False), 1, 2).astype(float)
    K, dist = intrinsics(cameras)
    X = triangulate_pixels(pixels, weight, K, dist, cameras.R, cameras.t)
    return X, (weight > 0).sum(-1)


def rig_of(cameras: BundleCameras, sizes: Sequence[tuple[int, int]], names: Sequence[str]) -> CameraRig:
    K, dist = intrinsics(cameras)
    R = cameras.R
    return CameraRig(
        tuple(
            Camera(name, K[v], dist[v], R[v], cameras.t[v].copy(), int(sizes[v][0]), int(sizes[v][1]))
            for v, name in enumerate(names)
        )
    )


def _conflict_free_groups(
    count: int, view: Int[np.ndarray, " N"], first: np.ndarray, second: np.ndarray, order: np.ndarray
) -> Int[np.ndarray, " N"]:
    """Union–find over the links in ``order``, refusing a link whose two groups share a view; each
    observation's group (its root)."""
    parent = np.arange(count)
    views = {int(n): 1 << int(view[n]) for n in np.unique(np.r_[first, second])}

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for a, b in zip(first[order].tolist(), second[order].tolist(), strict=True):
        ra, rb = root(a), root(b)
        if ra != rb and not views[ra] & views[rb]:
            parent[rb] = ra
            views[ra] |= views[rb]
    while not np.array_equal(parent, parent[parent]):
        parent = parent[parent]
    return parent
