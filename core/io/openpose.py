"""2D detections from other detectors' JSON, one folder (or file) per camera.

``DIR/<camera>_json/…<frame>.json`` (Pose2Sim's layout): one file per frame, the frame number the last
number of the file's name, holding OpenPose's ``people[].pose_keypoints_2d`` = x, y, confidence per
keypoint (OpenPose, Pose2Sim, rtmlib's OpenPose writer) or one image's MMPose instances
(``core.io.mmpose``). Or ``DIR/<camera>.json``: MMPose's predictions for a whole video. Pixels of the
distorted image; a keypoint OpenPose did not find is (0, 0, 0). Cameras are in the natural order of their
names (cam2 before cam10), which is the order they are matched to a calibration's cameras in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jaxtyping import Float, Int

from core.errors import InputError
from core.io.mmpose import is_instance_list, mmpose_instances, mmpose_video_frames
from core.keypoints import KEYPOINT_LAYOUTS

__all__ = ["KeypointDetections", "camera_sources", "openpose_files", "read_openpose_folder"]

MIN_KEYPOINTS = 5
"""A person with fewer confident keypoints than this is dropped: too little to place or match."""
MIN_CONFIDENCE = 0.1
"""A keypoint below this confidence counts as not found."""


@dataclass(frozen=True)
class KeypointDetections:
    """Every camera's 2D detections, one row per person and frame."""

    cameras: tuple[str, ...]
    """Camera names: the folder names without ``_json`` (or the MMPose files' stems)."""
    sources: tuple[Path, ...]
    """Each camera's folder or file."""
    layout: str
    """The layout of ``KEYPOINT_LAYOUTS`` the files hold (given, or recognised)."""
    view: Int[np.ndarray, " N"]
    frame: Int[np.ndarray, " N"]
    """Frame index from the first frame number found in any camera."""
    keypoints: Float[np.ndarray, "N K 2"]
    confidence: Float[np.ndarray, "N K"]
    """0 where a keypoint was not found (or is not a number)."""
    first_frame: int
    num_frames: int
    camera_frames: Int[np.ndarray, " V"]
    """Each camera's frames from the first frame to its last file (its clip's length where it starts at
    the first frame)."""
    messages: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return KEYPOINT_LAYOUTS[self.layout][0]


def camera_sources(folder: Path) -> list[Path]:
    """The per-camera sources of ``folder``, in natural order: its ``*_json`` subfolders, or else its
    ``*.json`` files (MMPose's video predictions)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of per-camera keypoint folders (<camera>_json/)")
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.endswith("_json")]
    found = found or [p for p in folder.iterdir() if p.is_file() and p.suffix == ".json"]
    if not found:
        raise InputError(
            f"{folder}: no <camera>_json/ folder of per-frame JSON files and no <camera>.json of MMPose "
            "video predictions in it"
        )
    return sorted(found, key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)])


def read_openpose_folder(folder: Path, layout: str | None = None) -> KeypointDetections:
    """Read every camera's JSON files; ``layout`` is recognised from the files when not given."""
    if layout is not None and layout not in KEYPOINT_LAYOUTS:
        raise InputError(f"unknown keypoint layout {layout!r}; one of {', '.join(KEYPOINT_LAYOUTS)}")
    cameras = camera_sources(folder)
    per_camera = [_read_camera(path) for path in cameras]
    counts = {people.shape[1] for _, people, _ in per_camera if people.size}
    if not counts:
        raise InputError(f"{folder}: no person in any JSON file")
    layout = layout or _recognise(counts, per_camera, folder)
    names, count = KEYPOINT_LAYOUTS[layout]
    for path, (_, people, _) in zip(cameras, per_camera, strict=True):
        if people.size and people.shape[1] != count:
            raise InputError(
                f"{path}: people of {people.shape[1]} keypoints, but the layout {layout} has {count}"
            )
    numbers = np.concatenate([files for files, _, _ in per_camera])  # every file's frame number
    first = int(numbers.min())
    view, frame, points, messages = [], [], [], []
    for v, (path, (_, people, number)) in enumerate(zip(cameras, per_camera, strict=True)):
        people = people[:, : len(names)] if people.size else np.zeros((0, len(names), 3))
        if not people.size:
            messages.append(f"{path}: nobody in any of its files")
        confident = (people[..., 2] >= MIN_CONFIDENCE) & np.isfinite(people).all(axis=-1)
        kept = confident.sum(axis=1) >= MIN_KEYPOINTS
        if (~kept).any():
            messages.append(
                f"{path}: {int((~kept).sum())} detections with fewer than {MIN_KEYPOINTS} confident "
                "keypoints left out"
            )
        people = np.where(confident[..., None], people, 0.0)[kept]
        view.append(np.full(len(people), v))
        frame.append(number[kept] - first)
        points.append(people)
    span = int(numbers.max()) - first + 1
    for path, (files, _, _) in zip(cameras, per_camera, strict=True):
        if len(files) < span:
            messages.append(f"{path}: files for {len(files)} of the {span} frames; the others count as empty")
    people = np.concatenate(points)
    return KeypointDetections(
        cameras=tuple(p.name.removesuffix("_json") if p.is_dir() else p.stem for p in cameras),
        sources=tuple(cameras),
        layout=layout,
        view=np.concatenate(view).astype(np.int64),
        frame=np.concatenate(frame).astype(np.int64),
        keypoints=people[..., :2],
        confidence=people[..., 2],
        first_frame=first,
        num_frames=span,
        camera_frames=np.array([files.max() - first + 1 for files, _, _ in per_camera]),
        messages=tuple(messages),
    )


def openpose_files(
    keypoints: Float[np.ndarray, "N K 2"],
    confidence: Float[np.ndarray, "N K"],
    view: Int[np.ndarray, " N"],
    frame: Int[np.ndarray, " N"],
    cameras: tuple[str, ...],
    frames: Int[np.ndarray, " F"],
) -> dict[Path, str]:
    """Detections as OpenPose JSON in Pose2Sim's layout, relative path → text: per camera a
    ``<camera>_json/`` folder with a file ``<camera>_<frame:06d>.json`` for every frame of ``frames``
    (empty ``people`` where nobody was found). Each person's ``person_id`` is its row, so that a tool
    that copies entries into its own files (Pose2Sim's association) tells which detections it grouped;
    a keypoint that is not a number is written as OpenPose's "not found", 0, 0, 0."""
    values = np.concatenate([keypoints, confidence[..., None]], axis=-1)
    values = np.where(np.isfinite(values).all(axis=-1, keepdims=True), values, 0.0)
    rows: dict[tuple[int, int], list[int]] = {}
    for row, key in enumerate(zip(view.tolist(), frame.tolist(), strict=True)):
        rows.setdefault(key, []).append(row)
    files = {}
    for v, camera in enumerate(cameras):
        for number in frames.tolist():
            people = [
                {"person_id": [row], "pose_keypoints_2d": values[row].ravel().tolist()}
                for row in rows.get((v, number), [])
            ]
            path = Path(f"{camera}_json") / f"{camera}_{number:06d}.json"
            files[path] = json.dumps({"version": 1.3, "people": people})
    return files


def _read_camera(source: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One camera's frame numbers (of its files or entries), its people ``(N, K, 3)`` and each person's
    frame number."""
    if source.is_file():
        frames = mmpose_video_frames(_document(source), source)
        if not frames:
            raise InputError(f"{source}: no frame in these MMPose predictions")
        file_numbers = np.array([number for number, _ in frames], dtype=np.int64)
    else:
        files = sorted(source.glob("*.json"))
        if not files:
            raise InputError(f"{source}: no JSON file in this camera folder")
        file_numbers = _file_numbers(files)
        frames = [(n, _people(path)) for path, n in zip(files, file_numbers.tolist(), strict=True)]
    people = [values for _, found in frames for values in found]
    numbers = [n for n, found in frames for _ in found]
    sizes = {len(p) for p in people}
    if len(sizes) > 1:
        raise InputError(
            f"{source}: people of different numbers of keypoints ({sorted(sizes)}) in one camera"
        )
    array = np.array(people, dtype=float).reshape(len(people), -1, 3) if people else np.zeros((0, 0, 3))
    return file_numbers, array, np.array(numbers, dtype=np.int64)


def _file_numbers(files: list[Path]) -> np.ndarray:
    """Each file's frame number: the last number of its name."""
    numbers = []
    for path in files:
        found = re.findall(r"\d+", path.stem)
        if not found:
            raise InputError(f"{path}: no frame number in the file name (its last number is the frame)")
        numbers.append(int(found[-1]))
    return np.array(numbers, dtype=np.int64)


def _document(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not a readable JSON file ({error})") from error


def _people(path: Path) -> list[list[float]]:
    """One frame's file: OpenPose's ``people`` or MMPose's instances, each person flat x, y, score."""
    document = _document(path)
    if is_instance_list(document):
        return mmpose_instances(document, path)
    people = document.get("people") if isinstance(document, dict) else None
    if not isinstance(people, list):
        raise InputError(f"{path}: no 'people' list (OpenPose JSON) and not a list of MMPose instances")
    found = []
    for k, person in enumerate(people):
        values = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
        if (
            not isinstance(values, list)
            or len(values) % 3
            or not all(isinstance(v, int | float) for v in values)
        ):
            raise InputError(
                f"{path}: person {k}: 'pose_keypoints_2d' is not a list of x, y, confidence numbers"
            )
        if values:
            found.append(values)
    return found


def _recognise(counts: set[int], per_camera, folder: Path) -> str:
    """The layout from the number of keypoints per person; BODY_25 and BODY_25B (both 25) apart by
    where keypoint 1 is: BODY_25's neck lies midway between the shoulders (2 and 5), BODY_25B's left eye
    does not."""
    if len(counts) > 1:
        raise InputError(
            f"{folder}: cameras hold people of different numbers of keypoints ({sorted(counts)})"
        )
    (count,) = counts
    matching = [name for name, (_, n) in KEYPOINT_LAYOUTS.items() if n == count]
    if not matching:
        known = ", ".join(f"{name} ({n})" for name, (_, n) in KEYPOINT_LAYOUTS.items())
        raise InputError(f"{folder}: people of {count} keypoints: no known layout ({known})")
    if len(matching) == 1:
        return matching[0]
    people = np.concatenate([p for _, p, _ in per_camera if p.size])
    seen = (people[:, [1, 2, 5], 2] >= MIN_CONFIDENCE).all(axis=1)
    if not seen.any():
        raise InputError(f"{folder}: 25 keypoints, BODY_25 or BODY_25B: give --keypoint-layout")
    shoulders = people[seen][:, [2, 5], :2]
    gap = np.linalg.norm(people[seen][:, 1, :2] - shoulders.mean(axis=1), axis=1)
    width = np.linalg.norm(shoulders[:, 0] - shoulders[:, 1], axis=1)
    return "body25" if np.median(gap / np.maximum(width, 1e-6)) < 0.25 else "body25b"
