"""Geometry-driven recall: where a person missed by a view should be, and which recalled reads to keep."""

import numpy as np
import pytest

from core.geometry import project_points
from core.keypoints import BLAZEPOSE_NAMES
from core.perception.config import RecallConfig
from core.perception.landmarker import Landmarks
from core.perception.recall import kept_recalls, recall_requests
from core.types import Camera, CameraRig, Observations, PersonTrack

J = len(BLAZEPOSE_NAMES)
K = np.array([[1000.0, 0.0, 960.0], [0.0, 1000.0, 540.0], [0.0, 0.0, 1.0]])


def _looking_at(center: np.ndarray, name: str) -> Camera:
    """A 1920×1080 camera at ``center`` looking at the point (0, 0, 1), z up."""
    forward = np.array([0.0, 0.0, 1.0]) - center
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    R = np.stack([right, np.cross(forward, right), forward])
    return Camera(name, K, np.zeros(5), R, -R @ center, 1920, 1080)


RIG = CameraRig(
    tuple(
        _looking_at(np.array([4 * np.cos(a), 4 * np.sin(a), 1.5]), f"cam{i}") for i, a in enumerate([0, 2, 4])
    )
)


def _body(x: float) -> np.ndarray:
    """A standing body's 33 landmarks at (x, 0): hips at 1 m, shoulders at 1.5 m, the rest spread around."""
    rng = np.random.default_rng(0)
    points = np.column_stack(
        [rng.uniform(-0.25, 0.25, J) + x, rng.uniform(-0.15, 0.15, J), rng.uniform(0.05, 1.75, J)]
    )
    for name, z in (("hip", 1.0), ("shoulder", 1.5)):
        points[BLAZEPOSE_NAMES.index(f"left_{name}")] = [x - 0.15, 0.0, z]
        points[BLAZEPOSE_NAMES.index(f"right_{name}")] = [x + 0.15, 0.0, z]
    return points


def _person(person_id: int, joints: np.ndarray, views: np.ndarray) -> PersonTrack:
    frames = len(views)
    return PersonTrack(
        person_id=person_id,
        frames=np.arange(frames) + 10,
        global_orient=np.zeros((frames, 3)),
        transl=joints[:, 0],
        body_pose=np.zeros((frames, 21, 3)),
        shape=np.zeros(0),
        joints=joints,
        joint_views=np.full(joints.shape[:2], 2),
        residuals_px=np.zeros((frames, len(RIG))),
        confidence=np.ones(frames),
        views=views,
        shape_model="none",
        joint_names=(*BLAZEPOSE_NAMES, "head", "pelvis"),
    )


def _with_extras(body: np.ndarray, frames: int) -> np.ndarray:
    return np.repeat(np.concatenate([body, body[:2]])[None], frames, axis=0)  # + head, pelvis


def test_a_person_is_projected_into_the_views_that_missed_them_where_enough_others_saw_them():
    views = np.array([[True, True, False], [True, False, False], [True, True, True]])
    person = _person(7, _with_extras(_body(0.0), 3), views)

    requests = recall_requests([person], RIG, RecallConfig(min_views=2), region_scale=1.25)

    # Frame 10: two views saw them, cam2 did not; frame 11: one view only; frame 12: every view.
    assert (
        requests.person.tolist() == [7] and requests.view.tolist() == [2] and requests.frame.tolist() == [10]
    )
    cam = RIG.cameras[2]
    expected = project_points(_body(0.0), cam.K, cam.dist, cam.R, cam.t)
    np.testing.assert_allclose(requests.expected[0], expected, atol=1e-9)
    hips = expected[[BLAZEPOSE_NAMES.index("left_hip"), BLAZEPOSE_NAMES.index("right_hip")]].mean(axis=0)
    shoulders = expected[
        [BLAZEPOSE_NAMES.index("left_shoulder"), BLAZEPOSE_NAMES.index("right_shoulder")]
    ].mean(0)
    np.testing.assert_allclose(
        requests.regions.center[0], hips + 0.5
    )  # the landmark model's pixel convention
    up = (shoulders - hips) / np.linalg.norm(shoulders - hips)
    np.testing.assert_allclose(requests.regions.up[0], up, atol=1e-12)
    reach = np.linalg.norm(expected - hips, axis=1).max()
    assert requests.regions.side[0] == pytest.approx(2 * reach * 1.25)


def test_no_request_for_a_person_outside_the_missing_view():
    far = _body(0.0) + np.array([0.0, 0.0, 0.0])
    cam = RIG.cameras[2]
    behind = 2 * cam.center - np.array([0.0, 0.0, 1.0])  # behind cam2, in front of the others
    far = far - far.mean(axis=0) + behind
    person = _person(0, _with_extras(far, 1), np.array([[True, True, False]]))
    assert len(recall_requests([person], RIG, RecallConfig(), 1.25)) == 0


def _reads(points: np.ndarray, presence: np.ndarray) -> Landmarks:
    """Landmark reads at ``points`` (OpenCV pixel centres), all visible."""
    count = len(points)
    return Landmarks(
        image=points + 0.5,
        visibility=np.ones((count, J)),
        world=np.zeros((count, J, 3)),
        presence=presence,
        crops=np.zeros((count, 4, 4, 3), np.uint8),
        segmentation=np.zeros((count, 4, 4)),
    )


def _detections(points: np.ndarray, view: int, frame: int) -> Observations:
    n = len(points)
    return Observations(
        view=np.full(n, view),
        frame=np.full(n, frame),
        score=np.ones(n),
        bbox=np.concatenate([points.min(1), points.max(1)], axis=1),
        keypoints2d=points,
        keypoint_confidence=np.ones((n, J)),
        head2d=points[:, 0],
        pelvis2d=points[:, 0],
        position_cam=np.zeros((n, 3)),
        global_orient_cam=np.zeros((n, 3)),
        body_pose=np.zeros((n, 21, 3)),
        shape=np.zeros((n, 0)),
        canonical_pose=np.zeros((n, 22, 3)),
        embedding=np.zeros((n, 4)),
        keypoint_names=BLAZEPOSE_NAMES,
        shape_model="none",
    )


def test_recalled_reads_are_kept_only_on_the_projection_and_where_the_view_has_no_detection_of_them():
    # Two persons standing 1.2 m apart, both missed by cam2 at frame 10; a third is already detected there.
    persons = [
        _person(p, _with_extras(_body(x), 1), np.array([[True, True, False]]))
        for p, x in enumerate((-0.6, 0.6))
    ]
    requests = recall_requests(persons, RIG, RecallConfig(), 1.25)
    assert requests.person.tolist() == [0, 1]
    on_projection = requests.expected.copy()
    on_projection[:, ::3] += 4.0  # a read is never exact
    cam = RIG.cameras[2]
    detected = _detections(project_points(_body(2.0), cam.K, cam.dist, cam.R, cam.t)[None], view=2, frame=10)

    keep = kept_recalls(_reads(on_projection, np.array([0.9, 0.8])), requests, detected, 0.5, 0.15, 0.1)
    assert keep.tolist() == [True, True]

    elsewhere = on_projection.copy()
    elsewhere[1] += 0.5 * (elsewhere[1].max(0) - elsewhere[1].min(0)).max()  # someone half a body away
    keep = kept_recalls(_reads(elsewhere, np.array([0.9, 0.8])), requests, detected, 0.5, 0.15, 0.1)
    assert keep.tolist() == [True, False]

    keep = kept_recalls(_reads(on_projection, np.array([0.9, 0.3])), requests, detected, 0.5, 0.15, 0.1)
    assert keep.tolist() == [True, False]  # not present enough

    already = _detections(on_projection[:1] + 20.0, view=2, frame=10)  # person 0 detected, read differently
    keep = kept_recalls(_reads(on_projection, np.array([0.9, 0.8])), requests, already, 0.5, 0.15, 0.1)
    assert keep.tolist() == [False, True]

    same_read = np.repeat(on_projection[:1], 2, axis=0)  # both projections read as one person
    twice = requests.take(np.array([0, 0]))
    keep = kept_recalls(_reads(same_read, np.array([0.7, 0.9])), twice, detected, 0.5, 0.15, 0.1)
    assert keep.tolist() == [False, True]  # the stronger copy
