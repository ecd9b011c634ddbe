"""Where people are in each image: detections' keypoints and fitted people's projected joints, joined
limb by limb into bands."""

from dataclasses import replace

import numpy as np

from core.scene.people_masks import people_masks
from core.skeleton import JOINT_NAMES
from core.types import Camera, CameraRig
from tests.core.engine.scenes import hand_observations
from tests.core.scene.test_ground import top_down_camera, walker


def test_a_detection_masks_its_limbs_as_bands_and_nothing_beside_them():
    cameras = CameraRig((top_down_camera("a", 2.0), top_down_camera("b", 2.0)))
    observations = hand_observations([0, 1], [4, 5], np.array([[0.0, 0.0], [0.0, 0.0]]))
    keypoints = np.full_like(observations.keypoints2d, np.nan)
    keypoints[0, JOINT_NAMES.index("left_knee")] = (100.0, 100.0)
    keypoints[0, JOINT_NAMES.index("left_ankle")] = (100.0, 200.0)  # a 100 px shin: a 15 px band
    observations = replace(observations, keypoints2d=keypoints)
    masks = people_masks(4, observations, [], cameras, limb_width=0.15)
    assert [m.shape for m in masks] == [(256, 256), (256, 256)]
    shin = masks[0]
    assert shin[100:201, 94:107].all()  # the band and the discs at both ends, 7 px either side
    assert not shin[:, :92].any() and not shin[:, 109:].any() and not shin[:91].any() and not shin[210:].any()
    assert not masks[1].any()  # the frame's only detection is in view 0; view 1's is another frame's


def test_fitted_people_are_masked_where_they_project_and_not_behind_the_camera():
    down = top_down_camera("down", 2.0)
    behind = Camera("behind", down.K, np.zeros(5), np.eye(3), np.array([0.0, 0.0, -3.0]), 256, 256)  # z < 3
    person = walker(
        0, np.array([[0.0, 0.0], [0.5, 0.3]]), np.array([0.0, 0.0, 1.0]), 0.0, frames=np.array([3, 4])
    )
    nobody = hand_observations([], [], np.zeros((0, 2)))
    masks = people_masks(4, nobody, [person], CameraRig((down, behind)), limb_width=0.15)
    x, y, z = person.joints[1].T  # frame 4's joints, pixel (128 + 100 x / (2 − z), 128 − 100 y / (2 − z))
    col, row = np.round(128 + 100 * x / (2 - z)).astype(int), np.round(128 - 100 * y / (2 - z)).astype(int)
    assert masks[0][row, col].all()
    assert masks[0].sum() < 0.1 * masks[0].size
    assert not masks[1].any()
    assert not any(m.any() for m in people_masks(5, nobody, [person], CameraRig((down, behind)), 0.15))
