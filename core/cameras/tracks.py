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
        """Observations linked by the view pairs' matches, grouped; a group holding two observations
        of one view (two people confused somewhere) is dropped."""
        N = len(observations)
        first = np.concatenate([p.observations1 for p in pairs] or [np.zeros(0, dtype=np.int64)])
        second = np.concatenate([p.observations2 for p in pairs] or [np.zeros(0, dtype=np.int64)])
        graph = coo_matrix((np.ones(first.size), (first, second)), shape=(N, N))
        _, label = connected_components(graph, directed=False)
        size = np.bincount(label, minlength=N)
        per_view = np.zeros((N, views), dtype=np.int64)
        np.add.at(per_view, (label, observations.view), 1)
        good = (size[label] >= 2) & (per_view[label].max(axis=1) == 1)
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
