"""BlazePose's person detector run over a whole frame and overlapping square tiles.

The detector sees a 224×224 square. A portrait 1088×1920 frame squeezed into it leaves far people a few
pixels tall, so the frame is also cut into overlapping squares along its long side; all windows go
through the model as one batch and their detections are merged by weighted non-maximum suppression.
Each detection carries a box around the face and four keypoints: hip centre, a point fixing the
full-body circle (size and rotation), shoulder centre and a point fixing the upper-body circle. Two
detections are the same person when their face boxes overlap: faces stay apart when bodies overlap (a
person behind another), so suppression by face keeps both where suppression by body would merge them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from jaxtyping import Float

from core.perception.anchors import DETECTOR_INPUT_SIZE, ssd_anchor_grids
from core.perception.config import DetectorConfig
from core.perception.tflite import TFLiteModel

HIP_CENTER, BODY_SCALE_POINT = 0, 1


@dataclass(frozen=True)
class Detections:
    """People found in one frame, in image pixels."""

    box: Float[np.ndarray, "D 4"]
    """Face box x0, y0, x1, y1."""
    keypoints: Float[np.ndarray, "D 4 2"]
    score: Float[np.ndarray, " D"]

    def __len__(self) -> int:
        return int(self.score.shape[0])


def square_windows(width: int, height: int, overlap: float) -> Float[np.ndarray, "W 3"]:
    """(x0, y0, side) of the whole frame letterboxed to a square, then of overlapping tiles of side
    min(width, height) along the long side (none for a square frame)."""
    long_side, short_side = max(width, height), min(width, height)
    windows = [((width - long_side) / 2, (height - long_side) / 2, long_side)]
    if long_side > short_side:
        windows += tile_grid(width, height, short_side, overlap).tolist()
    return np.array(windows, dtype=np.float64)


def tile_grid(width: int, height: int, side: float, overlap: float) -> Float[np.ndarray, "W 3"]:
    """(x0, y0, side) of squares of ``side`` overlapping by ``overlap`` that cover the frame edge to edge."""

    def starts(extent: int) -> np.ndarray:
        count = int(np.ceil(max(extent - side, 0) / (side * (1 - overlap)))) + 1
        return np.linspace(0, max(extent - side, 0), count)

    x, y = np.meshgrid(starts(width), starts(height))
    return np.stack([x.ravel(), y.ravel(), np.full(x.size, float(side))], axis=1)


def window_batch(image: np.ndarray, windows: Float[np.ndarray, "W 3"], size: int) -> np.ndarray:
    """The windows of an RGB uint8 image resampled (area filter) to size×size, zero outside the image."""
    height, width = image.shape[:2]
    batch = np.zeros((len(windows), size, size, 3), dtype=np.uint8)
    for i, (x0, y0, side) in enumerate(windows):
        scale = size / side
        ix0, iy0 = max(int(round(x0)), 0), max(int(round(y0)), 0)
        ix1, iy1 = min(int(round(x0 + side)), width), min(int(round(y0 + side)), height)
        ox, oy = int(round((ix0 - x0) * scale)), int(round((iy0 - y0) * scale))
        w = min(int(round((ix1 - ix0) * scale)), size - ox)
        h = min(int(round((iy1 - iy0) * scale)), size - oy)
        batch[i, oy : oy + h, ox : ox + w] = cv2.resize(
            image[iy0:iy1, ix0:ix1], (w, h), interpolation=cv2.INTER_AREA
        )
    return batch


def unfold_batch(output: np.ndarray, batch: int, grid_sizes: list[int]) -> np.ndarray:
    """(B, A, C) from a batched run's output, which lays rows out grid by grid, each batch-major."""
    flat = output.reshape(-1, output.shape[-1])
    bounds = np.cumsum([0] + [batch * n for n in grid_sizes])
    return np.concatenate(
        [flat[a:b].reshape(batch, -1, flat.shape[-1]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)],
        axis=1,
    )


def decode(
    raw: Float[np.ndarray, "W A 12"],
    logits: Float[np.ndarray, "W A 1"],
    windows: Float[np.ndarray, "W 3"],
    anchors: Float[np.ndarray, "A 2"],
    min_score: float,
) -> Detections:
    """Regressions relative to anchors → face boxes and keypoints in image pixels, above ``min_score``."""
    score = 1.0 / (1.0 + np.exp(-np.clip(logits[..., 0], -80.0, 80.0)))
    w_idx, a_idx = np.nonzero(score > min_score)
    values = raw[w_idx, a_idx] / DETECTOR_INPUT_SIZE  # window-normalised
    anchor = anchors[a_idx]
    center, half = values[:, 0:2] + anchor, values[:, 2:4] / 2
    corners = np.stack([center - half, center + half], axis=1)  # (D, 2, 2)
    points = values[:, 4:12].reshape(-1, 4, 2) + anchor[:, None]
    origin, side = windows[w_idx, None, :2], windows[w_idx, 2, None, None]
    return Detections(
        box=(corners * side + origin).reshape(-1, 4),
        keypoints=points * side + origin,
        score=score[w_idx, a_idx],
    )


def box_iou(a: Float[np.ndarray, "M 4"], b: Float[np.ndarray, "N 4"]) -> Float[np.ndarray, "M N"]:
    """Intersection over union of every pair of boxes."""
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=-1)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=-1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=-1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-12)


def weighted_nms(detections: Detections, iou_threshold: float) -> Detections:
    """Cluster detections whose face boxes overlap the best remaining one; each cluster becomes its
    score-weighted mean with the best score (MediaPipe's "weighted" suppression: smoother than hard NMS)."""
    order = np.argsort(-detections.score)
    overlap = box_iou(detections.box, detections.box) > iou_threshold
    remaining = np.ones(len(detections), dtype=bool)
    boxes, points, scores = [], [], []
    for best in order:  # one iteration per person found, not per candidate
        if not remaining[best]:
            continue
        cluster = remaining & overlap[best]
        remaining &= ~cluster
        weight = detections.score[cluster] / detections.score[cluster].sum()
        boxes.append(weight @ detections.box[cluster])
        points.append(np.einsum("c,ckd->kd", weight, detections.keypoints[cluster]))
        scores.append(detections.score[best])
    if not scores:
        return Detections(np.zeros((0, 4)), np.zeros((0, 4, 2)), np.zeros(0))
    return Detections(np.array(boxes), np.array(points), np.array(scores))


class PoseDetector:
    """BlazePose's detector over a frame's windows, batched in one model call."""

    def __init__(self, model: TFLiteModel, config: DetectorConfig):
        self._model = model
        self._config = config
        grids = ssd_anchor_grids()
        self._grid_sizes = [len(g) for g in grids]
        self._anchors = np.concatenate(grids)

    def __call__(self, image: np.ndarray, fine: bool = False) -> Detections:
        """The people of an RGB frame; ``fine`` adds tiles of ``config.fine_tile_scale`` of the short
        side, where people too small for the coarse windows appear large enough to be found."""
        height, width = image.shape[:2]
        config = self._config
        windows = square_windows(width, height, config.tile_overlap)
        if fine and config.fine_tile_scale > 0:
            side = config.fine_tile_scale * min(width, height)
            windows = np.concatenate([windows, tile_grid(width, height, side, config.tile_overlap)])
        batch = window_batch(image, windows, DETECTOR_INPUT_SIZE).astype(np.float32) / 127.5 - 1.0
        raw, logits = (unfold_batch(o, len(windows), self._grid_sizes) for o in self._model(batch))
        candidates = decode(raw, logits, windows, self._anchors, self._config.min_score)
        return weighted_nms(candidates, self._config.nms_iou)
