"""BlazePose's landmark model on rotated person crops: 33 landmarks in the image and in metres.

For each region the model sees an upright 256×256 crop and returns 39 landmarks in crop pixels (the 33
body landmarks, then 6 auxiliary ones not used here), their visibility and presence, a pose-presence
flag, a person segmentation, per-landmark heatmaps and the landmarks as metric 3D points around the
hip centre. The regressed positions are refined by the heatmaps' local centre of mass (as MediaPipe
does), then everything is mapped back to the full image.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, UInt8

from core.perception.roi import Regions, apply_affine, crop_regions
from core.perception.tflite import TFLiteModel

LANDMARK_INPUT_SIZE = 256
NUM_LANDMARKS = 33
_ALL_LANDMARKS = 39
_HEATMAP_KERNEL = 7
_HEATMAP_MIN_CONFIDENCE = 0.5


@dataclass(frozen=True)
class Landmarks:
    """The landmark model's answer for R regions; image coordinates continuous (pixel i spans [i, i+1])."""

    image: Float[np.ndarray, "R 33 2"]
    visibility: Float[np.ndarray, "R 33"]
    """Probability that the landmark is visible (not occluded) and inside the image."""
    world: Float[np.ndarray, "R 33 3"]
    """Metric 3D landmarks around the hip centre, axes aligned with the image (x right, y down, z away)."""
    presence: Float[np.ndarray, " R"]
    """Probability that the crop holds a person."""
    crops: UInt8[np.ndarray, "R 256 256 3"]
    segmentation: Float[np.ndarray, "R 256 256"]
    """Person probability per crop pixel."""

    def __len__(self) -> int:
        return int(self.presence.shape[0])

    def take(self, index: np.ndarray) -> Landmarks:
        return Landmarks(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})

    @staticmethod
    def concatenate(parts: Sequence[Landmarks]) -> Landmarks:
        """The people of several reads, in order (at least one part)."""
        fields = dataclasses.fields(Landmarks)
        return Landmarks(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields})


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


class PoseLandmarker:
    """The landmark model over all regions of a frame in one batch."""

    def __init__(self, model: TFLiteModel):
        self._model = model

    def __call__(self, pyramid: list[np.ndarray], regions: Regions) -> Landmarks:
        size = LANDMARK_INPUT_SIZE
        crops = crop_regions(pyramid, regions, size)
        raw, flag, segmentation, heatmap, world = self._model(crops.astype(np.float32) / 255.0)
        raw = raw.reshape(-1, _ALL_LANDMARKS, 5)[:, :NUM_LANDMARKS]
        crop_points = refine_from_heatmaps(raw[..., :2], heatmap[..., :NUM_LANDMARKS])
        affine = regions.crop_to_image(size)
        image = apply_affine(affine, crop_points)
        axes = affine[:, :, :2] / (regions.side / size)[:, None, None]  # crop x, y axes as image unit vectors
        world = world.reshape(-1, _ALL_LANDMARKS, 3)[:, :NUM_LANDMARKS]
        world_xy = np.einsum("rij,rkj->rki", axes, world[..., :2])
        return Landmarks(
            image=image,
            visibility=_sigmoid(raw[..., 3]) * _sigmoid(raw[..., 4]),
            world=np.concatenate([world_xy, world[..., 2:]], axis=-1),
            presence=flag.reshape(-1),
            crops=crops,
            segmentation=_sigmoid(segmentation[..., 0]),
        )


def refine_from_heatmaps(
    points: Float[np.ndarray, "R J 2"], heatmaps: Float[np.ndarray, "R H W J"]
) -> Float[np.ndarray, "R J 2"]:
    """Each landmark moved to the confidence-weighted centre of its heatmap in a 7×7-cell window around
    the regressed position (shrunk at the heatmap's border), when the window's peak is confident; points
    outside the heatmap are left alone. Crop pixels in and out."""
    R, H, W, J = heatmaps.shape
    cell = LANDMARK_INPUT_SIZE / W
    center = np.floor(points / cell).astype(np.int64)  # (R, J, 2) heatmap cells
    offsets = np.arange(_HEATMAP_KERNEL) - _HEATMAP_KERNEL // 2
    cols, rows = center[..., 0, None] + offsets, center[..., 1, None] + offsets  # (R, J, k)
    inside = ((cols >= 0) & (cols < W))[..., None, :] & ((rows >= 0) & (rows < H))[..., :, None]
    person, landmark = np.arange(R)[:, None, None, None], np.arange(J)[None, :, None, None]
    window = heatmaps[
        person, np.clip(rows, 0, H - 1)[..., :, None], np.clip(cols, 0, W - 1)[..., None, :], landmark
    ]  # (R, J, k, k)
    confidence = np.where(inside, _sigmoid(window), 0.0)
    total = np.maximum(confidence.sum(axis=(-1, -2)), 1e-9)
    x = (confidence * cols[..., None, :]).sum(axis=(-1, -2)) / total
    y = (confidence * rows[..., :, None]).sum(axis=(-1, -2)) / total
    refined = (np.stack([x, y], axis=-1) + 0.5) * cell  # cell centres, in crop pixels
    in_heatmap = ((center >= 0) & (center < np.array([W, H]))).all(axis=-1)
    confident = in_heatmap & (confidence.max(axis=(-1, -2)) >= _HEATMAP_MIN_CONFIDENCE)
    return np.where(confident[..., None], refined, points)
