"""MMPose's prediction JSON (``MMPoseInferencer(..., pred_out_dir=DIR)``, RTMPose and ViTPose among its
models): for a video, ``<video>.json`` = ``[{"frame_id": i, "instances": [...]}, ...]``; for images,
``<image>.json`` = the image's ``instances``. Each instance holds ``keypoints`` ([[x, y], ...], pixels)
and ``keypoint_scores`` ([s, ...]); its ``bbox`` and ``bbox_score`` are not needed here.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import InputError

__all__ = ["is_instance_list", "mmpose_instances", "mmpose_video_frames"]


def is_instance_list(document: object) -> bool:
    """Whether a parsed JSON document is one image's MMPose instances (an empty list is: nobody)."""
    return isinstance(document, list) and all(
        isinstance(item, dict) and "keypoints" in item for item in document
    )


def mmpose_instances(instances: list, path: Path, where: str = "") -> list[list[float]]:
    """Each instance as x, y, score per keypoint, flat (the layout OpenPose's files use)."""
    people = []
    for k, instance in enumerate(instances):
        points, scores = instance.get("keypoints"), instance.get("keypoint_scores")
        if (
            not isinstance(points, list)
            or not isinstance(scores, list)
            or len(points) != len(scores)
            or not all(isinstance(p, list) and len(p) == 2 for p in points)
        ):
            raise InputError(
                f"{path}: {where}instance {k}: 'keypoints' is not a list of [x, y] pairs with one "
                "'keypoint_scores' entry each"
            )
        try:
            people.append([float(v) for (x, y), s in zip(points, scores, strict=True) for v in (x, y, s)])
        except (TypeError, ValueError):
            raise InputError(
                f"{path}: {where}instance {k}: keypoints or scores that are not numbers"
            ) from None
    return people


def mmpose_video_frames(document: object, path: Path) -> list[tuple[int, list[list[float]]]]:
    """A video's predictions: (frame number, people) per frame entry."""
    if not isinstance(document, list) or not all(
        isinstance(entry, dict) and "frame_id" in entry and "instances" in entry for entry in document
    ):
        raise InputError(
            f"{path}: not MMPose video predictions (a list of {{'frame_id', 'instances'}} entries)"
        )
    frames = []
    for entry in document:
        number, instances = entry["frame_id"], entry["instances"]
        if not isinstance(number, int) or not isinstance(instances, list):
            raise InputError(
                f"{path}: frame entry {number!r}: 'frame_id' must be a number and 'instances' a list"
            )
        frames.append((number, mmpose_instances(instances, path, f"frame {number}: ")))
    return frames
