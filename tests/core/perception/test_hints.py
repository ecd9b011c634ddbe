"""Per-view 3D hints from BlazePose landmarks: placing the metric body in the camera, and its orientation."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.geometry import project_points
from core.keypoints import BLAZEPOSE_NAMES
from core.perception.hints import body_orientation, canonical_joints, head_and_pelvis, place_in_camera
from core.skeleton import JOINT_NAMES

L = {name: i for i, name in enumerate(BLAZEPOSE_NAMES)}
K = np.array([[1200.0, 0.0, 540.0], [0.0, 1180.0, 960.0], [0.0, 0.0, 1.0]])
DIST = np.array([-0.05, 0.01, 0.001, -0.0005, 0.0])


def standing_body(seed=0):
    """33 metric landmarks in camera-aligned axes (x right, y down, z away), hip centre at the origin and
    the two hips at the same depth."""
    rng = np.random.default_rng(seed)
    body = rng.normal(size=(33, 3)) * [0.25, 0.7, 0.15]
    body[L["left_hip"]], body[L["right_hip"]] = [0.1, 0.0, 0.0], [-0.1, 0.0, 0.0]
    return body


def project(points_cam, K=K, dist=DIST):
    return project_points(points_cam, K, dist, np.eye(3), np.zeros(3))


def ray_rotation(direction):
    """The smallest rotation taking the optical axis onto ``direction`` (Rodrigues, by hand)."""
    direction = direction / np.linalg.norm(direction)
    axis = np.cross([0.0, 0.0, 1.0], direction)
    angle = np.arccos(direction[2])
    return Rotation.from_rotvec(axis / np.linalg.norm(axis) * angle).as_matrix()


def test_a_person_on_the_optical_axis_is_placed_at_its_true_distance():
    body = standing_body()
    t = np.array([0.0, 0.0, 4.5])
    keypoints = project(body + t)
    placed, position = place_in_camera(keypoints[None], np.ones((1, 33)), body[None], K[None], DIST[None])
    np.testing.assert_allclose(position[0], t, atol=1e-6)
    np.testing.assert_allclose(placed[0], body + t, atol=1e-6)


@pytest.mark.parametrize("t", [[0.8, -0.3, 5.0], [-1.5, 1.2, 3.0], [0.05, 2.0, 7.5]])
def test_an_off_axis_person_is_turned_towards_its_ray_and_placed_exactly(t):
    t = np.asarray(t)
    body_cam = standing_body(seed=1)  # how the camera sees the body, around its hip centre
    # The landmark model reports the body as seen along the ray through the hips: the camera view turned
    # back by the ray rotation (hips at one depth: the mean of their projections is the hip centre's).
    world = body_cam @ ray_rotation(t)  # rows: R_ray^T @ landmark
    keypoints = project(body_cam + t)
    placed, position = place_in_camera(keypoints[None], np.ones((1, 33)), world[None], K[None], DIST[None])
    np.testing.assert_allclose(position[0], t, atol=1e-6)
    np.testing.assert_allclose(placed[0], body_cam + t, atol=1e-6)


def test_each_person_of_a_batch_uses_its_own_camera_and_zero_weights_ignore_a_landmark():
    K2 = np.array([[800.0, 0.0, 960.0], [0.0, 800.0, 540.0], [0.0, 0.0, 1.0]])
    bodies = np.stack([standing_body(2), standing_body(3)])
    t = np.array([[0.0, 0.0, 6.0], [0.0, 0.0, 2.5]])
    keypoints = np.stack([project(bodies[0] + t[0]), project(bodies[1] + t[1], K2, np.zeros(5))])
    keypoints[1, L["left_wrist"]] += [150.0, -80.0]  # a wrong landmark...
    weight = np.ones((2, 33))
    weight[1, L["left_wrist"]] = 0.0  # ...that does not count
    Ks, dists = np.stack([K, K2]), np.stack([DIST, np.zeros(5)])
    _, position = place_in_camera(keypoints, weight, bodies, Ks, dists)
    np.testing.assert_allclose(position, t, atol=1e-6)
    weight[1, L["left_wrist"]] = 1.0
    _, position = place_in_camera(keypoints, weight, bodies, Ks, dists)
    assert np.linalg.norm(position[1] - t[1]) > 1e-3


def canonical_body(seed=0):
    """Landmarks in the SMPL-X canonical frame: left hip +x, shoulders straight above the hips (+y)."""
    rng = np.random.default_rng(seed)
    body = rng.normal(size=(33, 3)) * [0.25, 0.7, 0.15]
    body[L["left_hip"]], body[L["right_hip"]] = [0.1, 0.0, 0.0], [-0.1, 0.0, 0.0]
    body[L["left_shoulder"]], body[L["right_shoulder"]] = [0.25, 0.5, 0.0], [-0.15, 0.5, 0.0]  # leaning left
    return body


def test_body_orientation_recovers_the_rotation_of_a_canonical_body():
    rotations = Rotation.random(5, random_state=4).as_matrix()
    canonical = canonical_body()
    landmarks = np.einsum("nij,kj->nki", rotations, canonical) + [[[1.0, -2.0, 3.0]]]
    np.testing.assert_allclose(body_orientation(landmarks), rotations, atol=1e-12)
    np.testing.assert_allclose(body_orientation(canonical[None])[0], np.eye(3), atol=1e-12)


def test_canonical_joints_are_root_relative_weighted_landmarks():
    body = canonical_body(seed=5)
    joints = canonical_joints(body[None], np.eye(3)[None])[0]
    assert joints.shape == (22, 3)
    hips = 0.5 * (body[L["left_hip"]] + body[L["right_hip"]])
    shoulders = 0.5 * (body[L["left_shoulder"]] + body[L["right_shoulder"]])
    ears = 0.5 * (body[L["left_ear"]] + body[L["right_ear"]])
    J = {name: joints[i] for i, name in enumerate(JOINT_NAMES)}
    np.testing.assert_allclose(J["pelvis"], 0.0, atol=1e-12)
    np.testing.assert_allclose(J["neck"], shoulders - hips, atol=1e-12)
    np.testing.assert_allclose(J["spine2"], 0.55 * hips + 0.45 * shoulders - hips, atol=1e-12)
    np.testing.assert_allclose(J["head"], ears - hips, atol=1e-12)
    np.testing.assert_allclose(J["left_foot"], body[L["left_foot_index"]] - hips, atol=1e-12)
    np.testing.assert_allclose(J["right_knee"], body[L["right_knee"]] - hips, atol=1e-12)
    np.testing.assert_allclose(J["left_wrist"], body[L["left_wrist"]] - hips, atol=1e-12)


def test_canonical_joints_do_not_depend_on_where_and_how_the_body_is_turned():
    canonical = canonical_body(seed=6)
    rotations = Rotation.random(4, random_state=7).as_matrix()
    landmarks = np.einsum("nij,kj->nki", rotations, canonical) + np.arange(12.0).reshape(4, 1, 3)
    joints = canonical_joints(landmarks, body_orientation(landmarks))
    expected = canonical_joints(canonical[None], np.eye(3)[None])[0]
    np.testing.assert_allclose(joints, np.broadcast_to(expected, joints.shape), atol=1e-12)


def test_head_is_the_ear_midpoint_and_pelvis_the_hip_midpoint():
    keypoints = np.zeros((1, 33, 2))
    keypoints[0, L["left_ear"]], keypoints[0, L["right_ear"]] = [10.0, 4.0], [14.0, 6.0]
    keypoints[0, L["left_hip"]], keypoints[0, L["right_hip"]] = [20.0, 100.0], [30.0, 104.0]
    head, pelvis = head_and_pelvis(keypoints)
    np.testing.assert_array_equal(head, [[12.0, 5.0]])
    np.testing.assert_array_equal(pelvis, [[25.0, 102.0]])
