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

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from jaxtyping import Float
from scipy.spatial.transform import Rotation

from core.cache import cache_root
from core.keypoints import BLAZEPOSE_NAMES
from core.perception.appearance import colour_embeddings
from core.perception.config import BlazePoseConfig
from core.perception.detector import BODY_SCALE_POINT, HIP_CENTER, PoseDetector
from core.perception.hints import body_orientation, canonical_joints, head_and_pelvis, place_in_camera
from core.perception.landmarker import Landmarks, PoseLandmarker
from core.perception.observer import PersonColumns
from core.perception.roi import Regions, image_pyramid
from core.perception.tflite import TFLiteModel
from core.types import BODY_POSE_JOINTS, CameraRig, Observations

DETECTOR_FILE = "pose_detection.tflite"
LANDMARK_FILE = "pose_landmark_full.tflite"


def model_directory() -> Path:
    """Where ``python -m studio assets`` puts the models: $CHROMM_CACHE_DIR/models (default ~/.cache)."""
    return cache_root() / "models"


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


def person_columns(people: Landmarks, view: np.ndarray) -> PersonColumns:
    """Observer columns of ``people``, person i seen in view ``view[i]``, with their appearance."""
    return {
        "view": np.asarray(view, dtype=np.int64),
        "score": people.presence,
        "keypoints2d": people.image - 0.5,  # OpenCV pixel centres
        "visibility": people.visibility,
        "world": people.world,
        "embedding": colour_embeddings(people.crops, people.segmentation),
    }


class _Finder:
    """One copy of the two models, finding the people of one frame at a time (an interpreter serves one
    thread at a time)."""

    def __init__(self, config: BlazePoseConfig, directory: Path):
        self._config = config
        self._detector = PoseDetector(TFLiteModel(directory / DETECTOR_FILE, config.threads), config.detector)
        self._landmarker = PoseLandmarker(TFLiteModel(directory / LANDMARK_FILE, config.threads))

    def __call__(self, image: np.ndarray, fine: bool = False) -> Landmarks:
        found = self._detector(image, fine)
        regions = Regions.from_keypoints(
            found.keypoints[:, HIP_CENTER], found.keypoints[:, BODY_SCALE_POINT], self._config.region_scale
        )
        config = self._config
        landmarks = self.read(image, regions)
        return remove_duplicates(landmarks, config.min_presence, config.duplicate_distance, config.max_people)

    def read(self, image: np.ndarray, regions: Regions) -> Landmarks:
        """The landmark model on ``regions`` of ``image``, all in one batch."""
        levels = int(np.clip(np.log2(max(image.shape[:2]) / 256), 1, 5))
        return self._landmarker(image_pyramid(image, levels), regions)


class BlazePose:
    """Finds the people of one frame; as an :class:`~core.perception.observer.Observer`, of every view.

    The views of a frame are shared out among ``config.workers`` copies of the models in threads: LiteRT
    and OpenCV release Python's lock, so the image work of one view overlaps the model calls of another
    and both cores stay busy (batching views into one model call does not help: the models cost the same
    per image at any batch size)."""

    def __init__(self, config: BlazePoseConfig, model_dir: Path | None = None):
        directory = model_dir or model_directory()
        self._finders = [_Finder(config, directory) for _ in range(max(config.workers, 1))]

    def __call__(self, image: np.ndarray) -> Landmarks:
        """People in an RGB frame."""
        return self._finders[0](image)

    def detect(self, images: Sequence[np.ndarray], cameras: CameraRig) -> PersonColumns:
        """The landmarks of everyone in each view of one frame, and their appearance."""
        found = self._find_in_views(images)
        views = np.repeat(np.arange(len(images)), [len(people) for people in found])
        return person_columns(Landmarks.concatenate(found), views)

    def read_regions(self, image: np.ndarray, regions: Regions) -> Landmarks:
        """The landmark model alone on given regions of an RGB frame (people the detector missed)."""
        return self._finders[0].read(image, regions)

    def _find_in_views(self, images: Sequence[np.ndarray]) -> list[Landmarks]:
        """Each view's people; a view that finds fewer than two other views do is searched again with
        the finer tiles (people two views see are likely in it too, small or far; one view's extra
        person may be someone only it sees)."""
        found = self._share_out(images, range(len(images)), fine=False)
        counts = sorted(len(people) for people in found)
        enough = counts[-2] if len(counts) > 1 else 0
        fewer = [view for view, people in enumerate(found) if len(people) < enough]
        for view, people in zip(fewer, self._share_out(images, fewer, fine=True), strict=True):
            found[view] = people
        return found

    def _share_out(self, images: Sequence[np.ndarray], views: Sequence[int], fine: bool) -> list[Landmarks]:
        """The people of ``views``; worker w takes the w-th, (w + workers)-th, … of them."""
        views = list(views)
        workers = min(len(self._finders), len(views))
        if not workers:
            return []

        def share(worker: int) -> list[Landmarks]:
            return [self._finders[worker](images[view], fine) for view in views[worker::workers]]

        with ThreadPoolExecutor(workers) as pool:
            shares = list(pool.map(share, range(workers)))
        return [shares[i % workers][i // workers] for i in range(len(views))]

    def to_observations(self, columns: PersonColumns, frame: np.ndarray, cameras: CameraRig) -> Observations:
        """Observations with the per-view 3D hints, batched over all detections."""
        view = columns["view"].astype(np.int64)
        keypoints, visibility = columns["keypoints2d"], columns["visibility"]
        placed, position = place_in_camera(
            keypoints, np.maximum(visibility, 0.01), columns["world"], cameras.K[view], cameras.dist[view]
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
            frame=frame.astype(np.int64),
            score=columns["score"],
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
            embedding=columns["embedding"],
            keypoint_names=BLAZEPOSE_NAMES,
            shape_model="none",
        )
