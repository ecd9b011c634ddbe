"""Fusion without a body model (``shape_model == "none"``): joints triangulated keypoint by keypoint."""

import dataclasses

import numpy as np
import pytest

from core.engine.fusion import FusionConfig, PersonCells, fuse, reprojection_residuals
from core.evaluation.synthetic import look_at
from core.geometry import project_points
from core.types import Camera, CameraRig, Observations

NAMES = ("nose", "left_wrist", "right_wrist", "left_ankle", "right_ankle", "left_knee")
LEFT, RIGHT, KNEE = NAMES.index("left_wrist"), NAMES.index("right_wrist"), NAMES.index("left_knee")


def ring_of_cameras(count):
    cameras = []
    for v in range(count):
        angle = 2 * np.pi * v / count + 0.3
        R, t = look_at(
            np.array([5 * np.cos(angle), 5 * np.sin(angle), 2.0 + 0.2 * v]), np.array([0.0, 0.0, 1.0])
        )
        K = np.array([[1000.0 + 50 * v, 0.0, 960.0], [0.0, 1000.0 + 50 * v, 540.0], [0.0, 0.0, 1.0]])
        dist = np.array([-0.04, 0.01, 0.0005, -0.0003, 0.0])
        cameras.append(Camera(f"cam{v}", K, dist, R, t, 1920, 1080))
    return CameraRig(tuple(cameras))


def truth(frames):
    """Pelvis (T, 3), keypoints (T, K, 3) and head point (T, 3) of one person walking along x."""
    pelvis = np.array([0.3, -0.2, 0.95]) + np.arange(frames)[:, None] * [0.05, 0.0, 0.0]
    offsets = np.array(
        [
            [0.05, 0.0, 0.7],
            [0.0, 0.3, 0.05],
            [0.0, -0.3, 0.05],
            [0.0, 0.1, -0.9],
            [0.1, -0.1, -0.88],
            [0.05, 0.1, -0.5],
        ]
    )
    return pelvis, pelvis[:, None] + offsets, pelvis + [0.0, 0.0, 0.65]


def observe(cameras, pelvis, keypoints, head, confidence=0.9):
    """Exact projections into every view at every frame, rows ordered (frame, view)."""
    T, V = pelvis.shape[0], len(cameras)
    view, frame = np.tile(np.arange(V), T), np.repeat(np.arange(T), V)
    K, dist, R, t = cameras.K[view], cameras.dist[view], cameras.R[view], cameras.t[view]
    pixels = project_points(
        np.concatenate([keypoints, head[:, None], pelvis[:, None]], 1)[frame], K, dist, R, t
    )
    n = view.size
    return Observations(
        view=view,
        frame=frame,
        score=np.full(n, 0.8),
        bbox=np.concatenate([pixels.min(1) - 10, pixels.max(1) + 10], axis=1),
        keypoints2d=pixels[:, : len(NAMES)],
        keypoint_confidence=np.full((n, len(NAMES)), confidence),
        head2d=pixels[:, -2],
        pelvis2d=pixels[:, -1],
        position_cam=np.einsum("nij,nj->ni", R, pelvis[frame]) + t,
        global_orient_cam=np.zeros((n, 3)),
        body_pose=np.zeros((n, 21, 3)),
        shape=np.zeros((n, 0)),
        canonical_pose=np.zeros((n, 22, 3)),
        embedding=np.ones((n, 4)) / 2,
        keypoint_names=NAMES,
        shape_model="none",
    )


def fuse_one(observations, cameras, frames):
    (person,) = fuse(
        observations, np.zeros(len(observations), dtype=np.int64), cameras, frames, FusionConfig()
    )
    return person


def test_exact_keypoints_are_triangulated_to_the_truth():
    cameras = ring_of_cameras(3)
    pelvis, keypoints, head = truth(3)
    person = fuse_one(observe(cameras, pelvis, keypoints, head), cameras, 3)
    assert person.joint_names == (*NAMES, "head", "pelvis")
    assert person.shape_model == "none"
    np.testing.assert_allclose(person.joints[:, : len(NAMES)], keypoints, atol=1e-6)
    np.testing.assert_allclose(person.joints[:, -2], head, atol=1e-6)
    np.testing.assert_allclose(person.joints[:, -1], pelvis, atol=1e-6)
    np.testing.assert_allclose(person.transl, pelvis, atol=1e-6)
    assert person.views.all()


def flipped(observations, row):
    """The observation at ``row`` with its left and right wrists swapped (a left/right confusion)."""
    keypoints = observations.keypoints2d.copy()
    keypoints[row, [LEFT, RIGHT]] = keypoints[row, [RIGHT, LEFT]]
    return dataclasses.replace(observations, keypoints2d=keypoints)


@pytest.mark.parametrize("views", [3, 4])
def test_a_flipped_or_wild_keypoint_of_one_view_is_rejected(views):
    cameras = ring_of_cameras(views)
    pelvis, keypoints, head = truth(2)
    obs = observe(cameras, pelvis, keypoints, head)
    bad = flipped(obs, row=views - 1)  # frame 0, last view
    wild = bad.keypoints2d.copy()
    wild[views + 1, 0] += [300.0, -200.0]  # frame 1, view 1: the nose 360 px off
    bad = dataclasses.replace(bad, keypoints2d=wild)
    person = fuse_one(bad, cameras, 2)
    np.testing.assert_allclose(person.joints[:, : len(NAMES)], keypoints, atol=1e-6)
    np.testing.assert_allclose(person.joints[:, -1], pelvis, atol=1e-6)


def test_a_keypoint_seen_by_one_view_is_put_on_its_ray_at_the_pelvis_depth():
    cameras = ring_of_cameras(3)
    pelvis, keypoints, head = truth(2)
    # Move the knee into the plane through the pelvis facing camera 2, so that its depth there is the pelvis'.
    axis = cameras.R[2][2]
    knee = keypoints[:, KNEE]
    keypoints[:, KNEE] = knee - ((knee - pelvis) @ axis)[:, None] * axis
    obs = observe(cameras, pelvis, keypoints, head)
    confidence = obs.keypoint_confidence.copy()
    confidence[obs.view != 2, KNEE] = 0.2  # only view 2 sees the knee confidently
    person = fuse_one(dataclasses.replace(obs, keypoint_confidence=confidence), cameras, 2)
    np.testing.assert_allclose(person.joints[:, KNEE], keypoints[:, KNEE], atol=1e-6)
    np.testing.assert_allclose(person.joints[:, : len(NAMES)], keypoints, atol=1e-6)
    assert (person.joint_views[:, KNEE] == 1).all()
    assert (np.delete(person.joint_views, KNEE, axis=1) == 3).all()


def test_a_limb_joint_all_views_put_on_another_body_stands_on_no_view():
    # Every view reads frame 3's left ankle on someone else's leg, 1.2 m away: the views agree, so only
    # the knee-to-ankle length (1.3 m instead of the track's 0.4 m) tells that it is not this person's.
    cameras = ring_of_cameras(3)
    pelvis, keypoints, head = truth(6)
    ankle = NAMES.index("left_ankle")
    keypoints[3, ankle] += [1.2, 0.0, 0.0]
    person = fuse_one(observe(cameras, pelvis, keypoints, head), cameras, 6)
    np.testing.assert_allclose(person.joints[3, ankle], keypoints[3, ankle], atol=1e-6)  # triangulated...
    assert person.joint_views[3, ankle] == 0  # ...but not trusted
    expected = np.full(person.joint_views.shape, 3)
    expected[3, ankle] = 0
    np.testing.assert_array_equal(person.joint_views, expected)


def test_reprojection_residuals_skip_keypoints_beyond_the_pixel_threshold():
    cameras = ring_of_cameras(4)
    pelvis, keypoints, head = truth(1)
    obs = flipped(observe(cameras, pelvis, keypoints, head), row=3)
    person = fuse_one(obs, cameras, 1)
    cells = PersonCells.build(obs, np.zeros(len(obs), dtype=np.int64), 1, 1, 4).index[0]
    np.testing.assert_allclose(reprojection_residuals(person, obs, cells, cameras, 0.5, 15.0), 0.0, atol=1e-6)
    # Counting every keypoint, view 3's two swapped wrists are each off by the wrists' distance in its image.
    wrists = project_points(
        keypoints[0, [LEFT, RIGHT]], cameras.K[3], cameras.dist[3], cameras.R[3], cameras.t[3]
    )
    gap = np.linalg.norm(wrists[0] - wrists[1])
    residuals = reprojection_residuals(person, obs, cells, cameras, 0.5, np.inf)
    np.testing.assert_allclose(residuals[0], [0.0, 0.0, 0.0, 2 * gap / len(NAMES)], atol=1e-6)
