"""Where the people are in each view's image: their keypoints joined limb by limb into thick bands.

The floor's colour must come from pixels no person stands in front of. A box around a person would also
hide the floor between their limbs and behind a stretched arm, which in a short clip of people who barely
move can be most of what the views see of the floor; bands along the limbs hide the person and little
more. Each detection gives its 2D keypoints; each fitted person's joints are projected too, so that a view
where the detector missed someone still masks them.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from jaxtyping import Bool, Float

from core.geometry import project_points
from core.types import CameraRig, Observations, PersonTrack

_LIMBS = tuple(
    (f"{side}_{a}", f"{side}_{b}")
    for side in ("left", "right")
    for a, b in [
        ("shoulder", "elbow"),
        ("elbow", "wrist"),
        ("wrist", "index"),
        ("shoulder", "hip"),
        ("hip", "knee"),
        ("knee", "ankle"),
        ("ankle", "heel"),
        ("heel", "foot_index"),
        ("ankle", "foot_index"),
        ("ankle", "foot"),
    ]
) + (
    ("left_shoulder", "right_shoulder"),
    ("left_hip", "right_hip"),
    ("left_shoulder", "right_hip"),
    ("right_shoulder", "left_hip"),
    ("nose", "left_shoulder"),
    ("nose", "right_shoulder"),
    ("head", "neck"),
    ("neck", "left_shoulder"),
    ("neck", "right_shoulder"),
)
"""Keypoint pairs joined by a band, by name: BlazePose's landmarks and SMPL-X's joints (absent ones are
skipped; every keypoint also gets a disc, so that any layout masks something)."""


def people_masks(
    frame: int,
    observations: Observations,
    persons: Sequence[PersonTrack],
    cameras: CameraRig,
    limb_width: float,
) -> list[Bool[np.ndarray, "H W"]]:
    """Per view, the pixels covered by the people of reconstruction frame ``frame``: the detections'
    keypoints and the fitted people's joints that a view saw projected, joined limb by limb by bands
    ``limb_width`` of each person's extent in that image thick."""
    here = observations.frame == frame
    figures = [
        stick_figure(
            observations.keypoints2d[here & (observations.view == view)],
            observations.keypoint_names,
            limb_width,
        )
        for view in range(len(cameras))
    ]
    for person in persons:
        at = np.flatnonzero(person.frames == frame)
        if at.size == 0:
            continue
        seen = person.joint_views[at[0]] > 0  # a joint no view saw is a guess: it masks nothing
        placed = np.where(seen[:, None], person.joints[at[0]], np.nan)
        joints = np.broadcast_to(placed, (len(cameras), *person.joints.shape[1:]))
        pixels = project_points(joints, cameras.K, cameras.dist, cameras.R, cameras.t)  # (V, J, 2)
        for view, figure in enumerate(figures):
            figure.extend(stick_figure(pixels[view, None], person.joint_names, limb_width))
    return [_draw(f, c.height, c.width) for f, c in zip(figures, cameras.cameras, strict=True)]


def stick_figure(
    keypoints: Float[np.ndarray, "B K 2"], names: Sequence[str], limb_width: float
) -> list[tuple[Float[np.ndarray, "S 2 2"], int]]:
    """Per person, their limbs as pixel segments (a keypoint's disc as a segment from itself to itself)
    with the band's thickness in pixels; NaN keypoints (behind the camera, not found) are left out.

    Example:
        >>> hip_and_knee = np.array([[[0.0, 0.0], [0.0, 50.0]]])  # one person
        >>> [(segments, thickness)] = stick_figure(hip_and_knee, ("left_hip", "left_knee"), 0.2)
        >>> segments.tolist(), thickness  # the thigh, then a disc per keypoint; 20 % of 50 px thick
        ([[[0.0, 0.0], [0.0, 50.0]], [[0.0, 0.0], [0.0, 0.0]], [[0.0, 50.0], [0.0, 50.0]]], 10)
    """
    index = {name: k for k, name in enumerate(names)}
    pairs = [(index[a], index[b]) for a, b in _LIMBS if a in index and b in index]
    pairs = np.array(pairs + [(k, k) for k in range(len(names))], dtype=np.int64).reshape(-1, 2)
    figures = []
    for points in np.asarray(keypoints, dtype=float).reshape(-1, len(names), 2):
        segments = points[pairs]  # (S, 2 ends, 2)
        segments = segments[np.isfinite(segments).all(axis=(1, 2))]
        if segments.shape[0] == 0:
            continue
        extent = np.ptp(segments.reshape(-1, 2), axis=0).max()
        figures.append((segments, max(round(limb_width * extent), 1)))
    return figures


def _draw(
    figure: list[tuple[Float[np.ndarray, "S 2 2"], int]], height: int, width: int
) -> Bool[np.ndarray, "H W"]:
    """The bands of ``figure`` rasterized into an image-sized mask (one drawing call per person)."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for segments, thickness in figure:
        lines = [s.reshape(2, 1, 2) for s in np.clip(np.round(segments), -32768, 32767).astype(np.int32)]
        thick = min(thickness, max(height, width))  # a joint near the camera plane projects far off
        cv2.polylines(mask, lines, isClosed=False, color=1, thickness=thick)
    return mask.astype(bool)
