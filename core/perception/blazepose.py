"""The embedded multi-person detector: BlazePose's two models, frame by frame, view by view.

Per frame and view, the detector (whole frame and tiles) proposes one region per person, the landmark
model runs on all regions in one batch, and duplicates (two regions on one person, or a chimera of two
overlapping people) are removed by landmark agreement. Regions are not carried over from frame to frame
as in MediaPipe's single-person tracker: with several people a carried region drifts onto a neighbour
and survives as a ghost, while a missed detection is bridged by the engine's tracker anyway. The result
is engine observations: 2D landmarks, head and pelvis points, an appearance embedding, and the per-view
3D hints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from jaxtyping import Float
from scipy.spatial.transform import Rotation

from core.cache import cache_root
from core.io.video import ClipHealth, ClipInfo, FrameRange, iter_synchronized
from core.keypoints import BLAZEPOSE_NAMES
from core.perception.appearance import EMBEDDING_DIM, colour_embeddings
from core.perception.config import BlazePoseConfig
from core.perception.detector import BODY_SCALE_POINT, HIP_CENTER, PoseDetector
from core.perception.hints import body_orientation, canonical_joints, head_and_pelvis, place_in_camera
from core.perception.landmarker import Landmarks, PoseLandmarker
from core.perception.roi import Regions, image_pyramid
from core.perception.tflite import TFLiteModel
from core.types import BODY_POSE_JOINTS, CameraRig, Observations

DETECTOR_FILE = "pose_detection.tflite"
LANDMARK_FILE = "pose_landmark_full.tflite"


def model_directory() -> Path:
    """Where ``python -m studio assets`` puts the models: $CHROMM_CACHE_DIR/models (default ~/.cache)."""
    return cache_root() / "models"


@dataclass
class _Rows:
    """Per-detection arrays collected frame by frame, concatenated once at the end."""

    columns: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, **arrays: np.ndarray) -> None:
        for key, value in arrays.items():
            self.columns.setdefault(key, []).append(value)

    def stacked(self, key: str, empty_shape: tuple[int, ...]) -> np.ndarray:
        parts = self.columns.get(key)
        return np.concatenate(parts) if parts else np.zeros((0, *empty_shape))


def _body_height(points: Float[np.ndarray, "R 33 2"]) -> Float[np.ndarray, " R"]:
    return np.maximum(np.ptp(points[..., 1], axis=1), np.ptp(points[..., 0], axis=1))


def remove_duplicates(landmarks: Landmarks, min_presence: float, distance: float, limit: int) -> Landmarks:
    """Keep people above ``min_presence``, most confident first, dropping a candidate when half of its
    landmarks lie within ``distance`` body heights of the same landmarks of kept people: a second region
    on the same person, or a chimera of two overlapping people (a region straddling both)."""
    confidence = landmarks.presence * landmarks.visibility.mean(axis=1)
    order = np.argsort(-confidence)
    order = order[landmarks.presence[order] >= min_presence]
    points = landmarks.image[order]
    gap = np.linalg.norm(points[:, None] - points[None], axis=-1)  # (R, R, 33)
    near = gap < distance * _body_height(points)[:, None, None]
    keep = np.zeros(len(order), dtype=bool)
    for i in range(len(order)):  # one pass per candidate person, not per landmark
        keep[i] = (near[i, :i] & keep[:i, None]).any(axis=0).mean() < 0.5
    return landmarks.take(order[keep][:limit])


class BlazePose:
    """Finds the people of one frame."""

    def __init__(self, config: BlazePoseConfig, model_dir: Path | None = None):
        directory = model_dir or model_directory()
        self._config = config
        self._detector = PoseDetector(TFLiteModel(directory / DETECTOR_FILE, config.threads), config.detector)
        self._landmarker = PoseLandmarker(TFLiteModel(directory / LANDMARK_FILE, config.threads))

    def __call__(self, image: np.ndarray) -> Landmarks:
        """People in an RGB frame."""
        found = self._detector(image)
        regions = Regions.from_keypoints(
            found.keypoints[:, HIP_CENTER], found.keypoints[:, BODY_SCALE_POINT], self._config.region_scale
        )
        levels = int(np.clip(np.log2(max(image.shape[:2]) / 256), 1, 5))
        landmarks = self._landmarker(image_pyramid(image, levels), regions)
        config = self._config
        return remove_duplicates(landmarks, config.min_presence, config.duplicate_distance, config.max_people)


@dataclass(frozen=True)
class PerceptionResult:
    """Observations of every view plus what a user should hear about the clips."""

    observations: Observations
    messages: tuple[str, ...]


def observe_clips(
    clips: Sequence[ClipInfo],
    frames: FrameRange,
    cameras: CameraRig,
    config: BlazePoseConfig,
    progress: Callable[[int, int], None] | None = None,
    model_dir: Path | None = None,
) -> PerceptionResult:
    """Run the detector over the selected frames of all clips; frame k of the result is the k-th
    selected frame. ``progress(done, total)`` is called after each frame."""
    blazepose = BlazePose(config, model_dir)
    indices = frames.indices(clips[0].num_frames)
    health = [ClipHealth() for _ in clips]
    rows = _Rows()
    for step, (_, images) in enumerate(iter_synchronized(clips, frames)):
        for view, image in enumerate(images):
            health[view].observe(image)
            people = blazepose(image)
            count = len(people)
            rows.add(
                view=np.full(count, view),
                frame=np.full(count, step),
                score=people.presence,
                keypoints2d=people.image - 0.5,  # to OpenCV's integer pixel centres
                visibility=people.visibility,
                world=people.world,
                embedding=colour_embeddings(people.crops, people.segmentation),
            )
        if progress:
            progress(step + 1, len(indices))
    observations = _to_observations(rows, cameras)
    return PerceptionResult(observations, clip_messages(clips, health, observations))


def _to_observations(rows: _Rows, cameras: CameraRig) -> Observations:
    """Stack the collected rows and add the per-view 3D hints, batched over all detections."""
    view = rows.stacked("view", ()).astype(np.int64)
    keypoints = rows.stacked("keypoints2d", (33, 2))
    visibility = rows.stacked("visibility", (33,))
    world = rows.stacked("world", (33, 3))
    placed, position = place_in_camera(
        keypoints, np.maximum(visibility, 0.01), world, cameras.K[view], cameras.dist[view]
    )
    orientation = body_orientation(placed)
    head, pelvis = head_and_pelvis(keypoints)
    visible = visibility > 0.5
    low = np.where(visible[..., None], keypoints, np.inf).min(axis=1)
    high = np.where(visible[..., None], keypoints, -np.inf).max(axis=1)
    margin = 0.1 * np.maximum(high - low, 0.0).max(axis=-1, keepdims=True)
    bbox = np.concatenate([low - margin, high + margin], axis=1)
    bbox = np.where(np.isfinite(bbox), bbox, np.concatenate([keypoints.min(1), keypoints.max(1)], axis=1))
    n = view.shape[0]
    return Observations(
        view=view,
        frame=rows.stacked("frame", ()).astype(np.int64),
        score=rows.stacked("score", ()),
        bbox=bbox,
        keypoints2d=keypoints,
        keypoint_confidence=visibility,
        head2d=head,
        pelvis2d=pelvis,
        position_cam=position,
        global_orient_cam=Rotation.from_matrix(orientation).as_rotvec() if n else np.zeros((0, 3)),
        body_pose=np.zeros((n, BODY_POSE_JOINTS, 3)),
        shape=np.zeros((n, 0)),
        canonical_pose=canonical_joints(placed, orientation),
        embedding=rows.stacked("embedding", (EMBEDDING_DIM,)),
        keypoint_names=BLAZEPOSE_NAMES,
        shape_model="none",
    )


def clip_messages(
    clips: Sequence[ClipInfo], health: Sequence[ClipHealth], observations: Observations
) -> tuple[str, ...]:
    """Say which clips look broken and which saw nobody, naming the files."""
    messages = []
    seen = np.bincount(observations.view, minlength=len(clips))
    for view, (clip, state) in enumerate(zip(clips, health, strict=True)):
        problem = state.problem()
        if problem:
            messages.append(f"{clip.path}: the clip looks {problem}")
        if seen[view] == 0:
            messages.append(f"{clip.path}: no person detected in any selected frame")
    return tuple(messages)
