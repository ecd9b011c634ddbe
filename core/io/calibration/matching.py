"""Pairing a calibration's cameras with the video clips they filmed."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from core.io.calibration.errors import CalibrationError
from core.types import CameraRig

__all__ = ["match_clips"]


def match_clips(
    rig: CameraRig, sizes: Sequence[tuple[int, int]], clip_names: Sequence[str], calibration_path: Path
) -> CameraRig:
    """Match cameras to clips in order, checking that each camera's image is its clip's frame.

    Calibration formats name cameras in their own way (serials, ids, image stems), so the pairing is by
    position: camera ``v`` of the file films clip ``v``. A camera of unknown size (0 × 0, as EasyMocap
    leaves it) takes its clip's size; camera names are kept. A clip smaller than its camera by less than
    one 16-pixel codec macroblock in each direction (a 1080-pixel side calibrated as the encoder's
    1088-pixel padded frame, as in the Pose2Sim demo) is the same image cropped at its right and bottom
    edges, which leaves the intrinsics valid: the camera takes the clip's size. So does a camera one pixel
    smaller than its clip in either direction: Pose2Sim writes some sizes as the last pixel's index
    (1087 × 1919 for the demo's 1088 × 1920 clips), and a pixel's width moves nothing else.

    Args:
        rig: Cameras in file order.
        sizes: ``(width, height)`` of each clip as decoded (rotation applied), pixels.
        clip_names: Clip names, for messages; same length as ``sizes``.
        calibration_path: The calibration file, for messages.

    Returns:
        The rig with every camera's size known.

    Raises:
        CalibrationError: the camera and clip counts differ, or a camera's size is not its clip's; the
            message names the calibration file, the cameras and the clips.
    """
    if len(rig) != len(clip_names):
        raise CalibrationError(
            f"{calibration_path}: {len(rig)} cameras ({', '.join(rig.names)}) for {len(clip_names)} clips "
            f"({', '.join(clip_names)}); cameras are matched to clips in order, one clip per camera"
        )
    cameras, problems = [], []
    for camera, (width, height), clip in zip(rig.cameras, sizes, clip_names, strict=True):
        unknown = camera.width == camera.height == 0
        if unknown or _same_image(camera.width, camera.height, width, height):
            camera = dataclasses.replace(camera, width=int(width), height=int(height))
        elif (camera.width, camera.height) != (width, height):
            turned = " (turned by 90°?)" if (camera.height, camera.width) == (width, height) else ""
            problems.append(
                f"camera {camera.name!r} is {camera.width}×{camera.height} but clip {clip!r} is "
                f"{width}×{height}{turned}"
            )
        cameras.append(camera)
    if problems:
        raise CalibrationError(f"{calibration_path}: " + "; ".join(problems))
    return CameraRig(tuple(cameras))


def _same_image(camera_width: int, camera_height: int, clip_width: int, clip_height: int) -> bool:
    """Whether the camera's size is the clip's, rounded up to whole 16-pixel macroblocks or given as the
    last pixel's index (one short) in either direction."""
    pairs = ((camera_width, clip_width), (camera_height, clip_height))
    padded = all(clip <= camera < clip + 16 and camera % 16 == 0 for camera, clip in pairs)
    return padded or all(camera in (clip - 1, clip) for camera, clip in pairs)
