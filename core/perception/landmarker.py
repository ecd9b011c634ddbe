"""BlazePose's landmark model on rotated person crops: 33 landmarks in the image and in metres.

For each region the model sees an upright 256×256 crop and returns 39 landmarks in crop pixels (the
33 body landmarks, then auxiliary ones of which 33 and 34 re-define the region for the next frame),
their visibility and presence, a pose-presence flag, a person segmentation, and the same landmarks as
metric 3D points around the hip centre. Everything is mapped back to the full image here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, UInt8

from core.perception.roi import Regions, apply_affine, crop_regions
from core.perception.tflite import TFLiteModel

LANDMARK_INPUT_SIZE = 256
NUM_LANDMARKS = 33
_ALL_LANDMARKS = 39
_NEXT_CENTER, _NEXT_TOWARD = 33, 34


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
    next_regions: Regions
    """Where each person's region is, according to its landmarks (seeds the next frame)."""
    crops: UInt8[np.ndarray, "R 256 256 3"]
    segmentation: Float[np.ndarray, "R 256 256"]
    """Person probability per crop pixel."""

    def __len__(self) -> int:
        return int(self.presence.shape[0])

    def take(self, index: np.ndarray) -> Landmarks:
        regions = self.next_regions
        return Landmarks(
            image=self.image[index],
            visibility=self.visibility[index],
            world=self.world[index],
            presence=self.presence[index],
            next_regions=Regions(regions.center[index], regions.side[index], regions.up[index]),
            crops=self.crops[index],
            segmentation=self.segmentation[index],
        )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


class PoseLandmarker:
    """The landmark model over all regions of a frame in one batch."""

    def __init__(self, model: TFLiteModel, region_scale: float = 1.25):
        self._model = model
        self._region_scale = region_scale

    def __call__(self, pyramid: list[np.ndarray], regions: Regions) -> Landmarks:
        size = LANDMARK_INPUT_SIZE
        crops = crop_regions(pyramid, regions, size)
        raw, flag, segmentation, _heatmap, world = self._model(crops.astype(np.float32) / 255.0)
        raw = raw.reshape(-1, _ALL_LANDMARKS, 5)
        affine = regions.crop_to_image(size)
        image = apply_affine(affine, raw[..., :2])
        axes = affine[:, :, :2] / (regions.side / size)[:, None, None]  # crop x, y axes as image unit vectors
        world = world.reshape(-1, _ALL_LANDMARKS, 3)[:, :NUM_LANDMARKS]
        world_xy = np.einsum("rij,rkj->rki", axes, world[..., :2])
        next_regions = Regions.from_keypoints(
            image[:, _NEXT_CENTER], image[:, _NEXT_TOWARD], self._region_scale
        )
        return Landmarks(
            image=image[:, :NUM_LANDMARKS],
            visibility=_sigmoid(raw[:, :NUM_LANDMARKS, 3]) * _sigmoid(raw[:, :NUM_LANDMARKS, 4]),
            world=np.concatenate([world_xy, world[..., 2:]], axis=-1),
            presence=flag.reshape(-1),
            next_regions=next_regions,
            crops=crops,
            segmentation=_sigmoid(segmentation[..., 0]),
        )
