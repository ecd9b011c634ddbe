"""Small exact test cases for the engine stages: noise-free synthetic scenes and hand-built observations."""

from __future__ import annotations

import numpy as np

from core.evaluation.synthetic import SyntheticConfig, SyntheticScene, make_scene
from core.skeleton import JOINT_NAMES, canonical_joints
from core.types import Observations, Tracklets

EXACT = dict(
    keypoint_noise_px=0.0,
    depth_noise=0.0,
    depth_bias=0.0,
    pose_noise_rad=0.0,
    pose_bias_rad=0.0,
    orient_noise_rad=0.0,
    shape_noise=0.0,
    miss_rate=0.0,
    false_positive_rate=0.0,
    occlusion=False,
    embedding_noise=0.0,
)
"""SyntheticConfig knobs that make every observation an exact projection of the truth."""


def exact_scene(
    persons: int = 2, views: int = 3, frames: int = 30, seed: int = 0, **overrides
) -> SyntheticScene:
    """A noise-free synthetic scene; ``overrides`` replace any SyntheticConfig field (noise included)."""
    config = {**EXACT, **overrides}
    return make_scene(SyntheticConfig(persons=persons, views=views, frames=frames, seed=seed, **config))


def identity_tracklets(scene: SyntheticScene, observations: Observations | None = None) -> Tracklets:
    """The true tracklets: one per (view, person); false positives (identity -1) left out."""
    obs = scene.observations if observations is None else observations
    identity = scene.observation_identity
    labels = np.where(identity >= 0, obs.view * (identity.max() + 1) + identity, -1)
    return Tracklets.from_labels(labels, obs.view, obs.frame)


def hand_observations(
    view,
    frame,
    pelvis2d,
    *,
    embedding=None,
    position_cam=None,
    height: float = 200.0,
    score=None,
    body_pose=None,
    shape=None,
    global_orient_cam=None,
) -> Observations:
    """Observations built from a few columns; every other field gets a harmless constant.

    The bounding box is ``height`` pixels tall, centred on the pelvis; the default camera-frame position
    is 5 units straight ahead (so every detection has the same depth); the default embedding is one
    constant vector (no appearance information).
    """
    view = np.asarray(view, dtype=np.int64)
    frame = np.asarray(frame, dtype=np.int64)
    pelvis2d = np.asarray(pelvis2d, dtype=float).reshape(-1, 2)
    n = view.shape[0]
    embedding = np.ones((n, 4)) / 2.0 if embedding is None else np.asarray(embedding, dtype=float)
    position_cam = (
        np.tile([0.0, 0.0, 5.0], (n, 1)) if position_cam is None else np.asarray(position_cam, dtype=float)
    )
    body_pose = np.zeros((n, 21, 3)) if body_pose is None else np.asarray(body_pose, dtype=float)
    shape = np.zeros((n, 5)) if shape is None else np.asarray(shape, dtype=float)
    bbox = np.concatenate([pelvis2d - [height / 4, height / 2], pelvis2d + [height / 4, height / 2]], axis=1)
    keypoints = np.repeat(pelvis2d[:, None], len(JOINT_NAMES), axis=1)
    return Observations(
        view=view,
        frame=frame,
        score=np.ones(n) if score is None else np.asarray(score, dtype=float),
        bbox=bbox,
        keypoints2d=keypoints,
        keypoint_confidence=np.ones((n, len(JOINT_NAMES))),
        head2d=pelvis2d - [0.0, height / 3],
        pelvis2d=pelvis2d,
        position_cam=position_cam,
        global_orient_cam=np.zeros((n, 3)) if global_orient_cam is None else global_orient_cam,
        body_pose=body_pose,
        shape=shape,
        canonical_pose=canonical_joints(body_pose, shape),
        embedding=embedding,
        keypoint_names=JOINT_NAMES,
    )


def walkers(
    paths: dict[int, np.ndarray], frames: dict[int, np.ndarray], view: int = 0, **columns
) -> tuple[Observations, np.ndarray]:
    """Hand-built detections of several people in one view, sorted by frame; returns them and identities.

    ``paths[p]`` is the (F, 2) pelvis pixel track of person ``p`` at ``frames[p]``. Per-person extra
    columns (e.g. ``embedding={p: (D,) vector}``) are broadcast over that person's detections.
    """
    rows = []
    for p, path in paths.items():
        for f, xy in zip(frames[p], path, strict=True):
            rows.append((int(f), p, xy))
    rows.sort(key=lambda r: (r[0], r[1]))
    identity = np.array([p for _, p, _ in rows], dtype=np.int64)
    extra = {
        name: np.stack([np.asarray(value[p], dtype=float) for p in identity])
        for name, value in columns.items()
    }
    obs = hand_observations(
        np.full(len(rows), view), [f for f, _, _ in rows], np.array([xy for _, _, xy in rows]), **extra
    )
    return obs, identity


def concat(*parts: Observations) -> Observations:
    """Observations stacked row-wise (same keypoint names and shape model)."""
    first = parts[0]
    arrays = {
        name: np.concatenate([getattr(p, name) for p in parts])
        for name, value in vars(first).items()
        if isinstance(value, np.ndarray)
    }
    return Observations(**arrays, keypoint_names=first.keypoint_names, shape_model=first.shape_model)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two labelings (−1 = none) group the items identically, up to renaming the labels."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or not np.array_equal(a < 0, b < 0):
        return False
    pairs = {(int(x), int(y)) for x, y in zip(a[a >= 0], b[b >= 0], strict=True)}
    return len(pairs) == len({x for x, _ in pairs}) == len({y for _, y in pairs})
