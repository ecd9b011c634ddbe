"""A training sample as CHROMM's inputs and targets: the two networks' images, the square intrinsics and
maps, and per ground-truth person seen in a view the cell that queries it (as Multi-HMR trains: the
true head cells are the queries, not the detections).

Pixels of targets are Multi-HMR square pixels (edge-based, as the network's 2D outputs), 3D is each
view's camera frame in metres. Two people whose heads fall in one cell of a view: the nearer one is that
cell's query (the other is still a positive of the detection target).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from jaxtyping import Bool, Float, Int

from core.nets.chromm.grid import square_to_grid
from core.nets.chromm.model import PATCH_SIZE, ChrommSizes
from core.nets.image_map import PixelMap
from core.nets.multihmr.preprocess import multihmr_input, square_intrinsics
from core.nets.pi3x.preprocess import pi3x_input
from studio.training.sample import MultiViewSample


@dataclass(frozen=True)
class NetworkInputs:
    """What the frozen encoders and the new modules read of one instant's V views."""

    scene_images: Float[torch.Tensor, "1 V 3 h w"]
    """Pi3X's input."""
    squares: Float[torch.Tensor, "V 3 S S"]
    """Multi-HMR's normalised, padded squares."""
    K: Float[torch.Tensor, "V 3 3"]
    """Intrinsics mapped onto the squares."""
    square_to_grid: PixelMap
    grid_map: PixelMap
    """Original pixels → Pi3X grid pixels."""

    def to(self, device: str | torch.device) -> NetworkInputs:
        return replace(self, **_moved(self, device))


@dataclass(frozen=True)
class Targets:
    """The ground truth of the Q queried (view, person) pairs and of the views."""

    view: Int[torch.Tensor, " Q"]
    row: Int[torch.Tensor, " Q"]
    col: Int[torch.Tensor, " Q"]
    person: Int[torch.Tensor, " Q"]
    """Index of the person in the sample."""
    global_orient: Float[torch.Tensor, "Q 3"]
    """Camera frame, axis-angle."""
    body_pose: Float[torch.Tensor, "Q 21 3"]
    shape: Float[torch.Tensor, "Q S"]
    transl: Float[torch.Tensor, "Q 3"]
    """Camera frame, in the body model's convention."""
    head2d: Float[torch.Tensor, "Q 2"]
    pelvis2d: Float[torch.Tensor, "Q 2"]
    heads: Float[torch.Tensor, "V g g"]
    """1 at the cell of every visible person's head, else 0 (the detection target)."""
    depth: Float[torch.Tensor, "V h w"] | None
    """Metric z-depth on Pi3X's grid (nearest pixel), NaN where unknown."""
    masks: Int[torch.Tensor, "V h w"] | None
    """Person index on Pi3X's grid (nearest pixel), -1 for none."""
    body_model: str

    def __len__(self) -> int:
        return int(self.view.shape[0])

    def to(self, device: str | torch.device) -> Targets:
        return replace(self, **_moved(self, device))


@dataclass(frozen=True)
class TrainingExample:
    name: str
    """The sample's, for messages."""
    key: str
    """A digest of the network inputs: the encoder cache's key (equal inputs, equal key)."""
    inputs: NetworkInputs
    targets: Targets

    def to(self, device: str | torch.device) -> TrainingExample:
        return replace(self, inputs=self.inputs.to(device), targets=self.targets.to(device))


def _moved(record: NetworkInputs | Targets, device: str | torch.device) -> dict[str, torch.Tensor]:
    """The record's tensors on ``device``."""
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    return {name: value.to(device) for name, value in values.items() if isinstance(value, torch.Tensor)}


def training_example(sample: MultiViewSample, sizes: ChrommSizes) -> TrainingExample:
    """The inputs and targets of ``sample`` for a network of ``sizes``."""
    images = sample.images
    scene_images, grid_map = pi3x_input(images, sizes.scene_pixels)
    side = int(sizes.multihmr.get("image_size", 896))
    squares, square_map = multihmr_input(images, side)
    K = torch.as_tensor(square_intrinsics(square_map, sample.K), dtype=torch.float32)
    inputs = NetworkInputs(scene_images, squares, K, square_to_grid(square_map, grid_map), grid_map)

    grid = side // PATCH_SIZE
    head = square_map.to_network(sample.head2d)  # (V, P, 2)
    inside = ((head >= 0) & (head < side)).all(axis=-1) & sample.visible
    cell = np.clip(np.floor(head / PATCH_SIZE).astype(np.int64), 0, grid - 1)  # (V, P, 2): col, row
    view, person = np.nonzero(inside & _nearest_in_cell(cell, sample.transl[..., 2], inside, grid))
    heads = np.zeros((sample.num_views, grid, grid), dtype=np.float32)
    seen_view, seen_person = np.nonzero(inside)
    heads[seen_view, cell[seen_view, seen_person, 1], cell[seen_view, seen_person, 0]] = 1.0

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32)

    targets = Targets(
        view=torch.as_tensor(view),
        row=torch.as_tensor(cell[view, person, 1]),
        col=torch.as_tensor(cell[view, person, 0]),
        person=torch.as_tensor(person),
        global_orient=tensor(sample.global_orient[view, person]),
        body_pose=tensor(sample.body_pose[view, person]),
        shape=tensor(sample.shape[person]),
        transl=tensor(sample.transl[view, person]),
        head2d=tensor(head[view, person]),
        pelvis2d=tensor(square_map.to_network(sample.pelvis2d)[view, person]),
        heads=torch.as_tensor(heads),
        depth=None if sample.depth is None else tensor(_on_grid(sample.depth, grid_map)),
        masks=None if sample.masks is None else torch.as_tensor(_on_grid(sample.masks, grid_map)).long(),
        body_model=sample.body_model,
    )
    digest = hashlib.blake2b(digest_size=12)
    for tensor in (scene_images, squares, K):
        digest.update(tensor.numpy().tobytes())
    return TrainingExample(sample.name, digest.hexdigest(), inputs, targets)


def _nearest_in_cell(
    cell: Int[np.ndarray, "V P 2"],
    depth: Float[np.ndarray, "V P"],
    inside: Bool[np.ndarray, "V P"],
    grid: int,
) -> Bool[np.ndarray, "V P"]:
    """Per view, whether each person is the nearest of those inside the image whose heads share its cell."""
    V, P = depth.shape
    key = ((np.arange(V)[:, None] * grid + cell[..., 1]) * grid + cell[..., 0]).ravel()  # (V·P,)
    order = np.lexsort((np.where(inside, depth, np.inf).ravel(), key))
    first = np.ones(V * P, dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    nearest = np.zeros(V * P, dtype=bool)
    nearest[order[first]] = True
    return nearest.reshape(V, P)


def _on_grid(maps: np.ndarray, grid_map: PixelMap) -> np.ndarray:
    """Per-view maps at the original resolution, read at the nearest pixel of each Pi3X grid pixel."""
    width, height = grid_map.network_size
    columns = grid_map.to_original(np.stack([np.arange(width), np.zeros(width)], axis=-1))[:, 0]
    rows = grid_map.to_original(np.stack([np.zeros(height), np.arange(height)], axis=-1))[:, 1]
    columns = np.clip(np.rint(columns).astype(np.int64), 0, maps.shape[2] - 1)
    rows = np.clip(np.rint(rows).astype(np.int64), 0, maps.shape[1] - 1)
    return maps[:, rows[:, None], columns[None, :]]
