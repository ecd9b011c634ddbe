"""Named 2D/3D keypoint layouts: BlazePose's 33 landmarks, the COCO-17 subset of them, and the layouts
other 2D detectors write (OpenPose's BODY_25 and BODY_25B, Halpe-26, COCO-WholeBody), named alike so that
the engine and the body fit treat a keypoint the same whoever detected it."""

from typing import Literal

BLAZEPOSE_NAMES = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)
"""BlazePose landmark order (the landmark model's first 33 outputs); left/right are the person's own."""

COCO17_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
"""COCO keypoint order; every name is also a BlazePose landmark."""

LIMBS = (
    ("left_shoulder", "left_elbow"),
    ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"),
    ("left_hip", "left_knee"),
    ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"),
    ("right_knee", "right_ankle"),
)
"""The arm and leg bones by their joint names (shared by BlazePose, COCO and the SMPL-X skeleton): rigid,
so their length is a person's own over a clip."""


_FEET = (
    "left_foot_index",
    "left_small_toe",
    "left_heel",
    "right_foot_index",
    "right_small_toe",
    "right_heel",
)
"""OpenPose's and Halpe's foot points (big toe, small toe, heel per side); the big toe takes BlazePose's
name for the foot's tip, ``foot_index``, so that the body fit uses it as it uses BlazePose's."""

BODY25_NAMES = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "mid_hip",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
    *_FEET,
)
"""OpenPose BODY_25."""

BODY25B_NAMES = (*COCO17_NAMES, "upper_neck", "head_top", *_FEET)
"""OpenPose's BODY_25B (the experimental model Pose2Sim recommends): COCO order, neck, head top, feet."""

HALPE26_NAMES = (
    *COCO17_NAMES,
    "head_top",
    "neck",
    "mid_hip",
    "left_foot_index",
    "right_foot_index",
    "left_small_toe",
    "right_small_toe",
    "left_heel",
    "right_heel",
)
"""Halpe's 26 body keypoints (RTMPose's body7-26, AlphaPose)."""

COCO133_NAMES = (*COCO17_NAMES, *_FEET)
"""COCO-WholeBody's first 23 keypoints (body and feet), the ones read from its 133: its face (68) and
hands (2 × 21) follow and are not used."""

KeypointLayout = Literal["body25", "body25b", "coco17", "halpe26", "coco133", "blazepose33"]
KEYPOINT_LAYOUTS: dict[str, tuple[tuple[str, ...], int]] = {
    "body25": (BODY25_NAMES, 25),
    "body25b": (BODY25B_NAMES, 25),
    "coco17": (COCO17_NAMES, 17),
    "halpe26": (HALPE26_NAMES, 26),
    "coco133": (COCO133_NAMES, 133),
    "blazepose33": (BLAZEPOSE_NAMES, 33),
}
"""Each 2D layout a detector writes: the names of the keypoints used, in order, and how many keypoints a
person of that layout has in a file."""
assert set(KEYPOINT_LAYOUTS) == set(KeypointLayout.__args__)
