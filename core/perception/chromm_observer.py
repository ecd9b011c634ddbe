"""The CHROMM human backend: per frame, every view through CHROMM's network, each detected head one
Observation.

One Pi3X pass per frame (inside the network) serves the fusion, and its features are dropped with the
frame. When Pi3X also gives the run its cameras and scene points, the network's own Pi3X does that
(``SharedScenePasses``), and the scene frames' passes are kept until detection reaches them: no frame
takes two. Each person comes with SMPL-X-layout rotations, the head placed at Pi3X's depth plus the learned
residual, and the network's own pelvis pixel, which the head–pelvis scale stage reads; the fused token
is the tracking embedding (the paper matches frames by head tokens). The body is posed and projected as
for Multi-HMR (``core.perception.multihmr_observer.to_observations``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch

from core.errors import InputError
from core.nets.chromm.grid import square_to_grid
from core.nets.chromm.model import Chromm, ScenePass
from core.nets.config import NetworksConfig
from core.nets.multihmr.preprocess import multihmr_input, square_intrinsics
from core.nets.pi3x.preprocess import pi3x_input
from core.nets.runtime import inference
from core.perception.multihmr_observer import to_observations
from core.perception.observer import PersonColumns
from core.types import CameraRig, Observations


def load_chromm_network(config: NetworksConfig, device: str) -> Chromm:
    """The user's CHROMM checkpoint (given, or found in the checkpoint folder), strictly loaded."""
    from core.nets.checkpoints import checkpoint_directory, find_checkpoint
    from core.nets.chromm.checkpoint import load_chromm

    path = find_checkpoint(config.chromm_ckpt, "chromm", "*.safetensors")
    if path is None:
        raise InputError(
            "--humans chromm needs a CHROMM checkpoint (none is published: train one with python -m studio "
            f"train) in {checkpoint_directory() / 'chromm'}, or pass --chromm-ckpt PATH"
        )
    return load_chromm(path, device)


class SharedScenePasses:
    """CHROMM's Pi3X in the place of the scene backend's (called as a ``Pi3X`` is): each pass is kept,
    keyed by its input images, until ``take`` asks for the same images."""

    def __init__(self, model: Chromm):
        self._model = model
        self._kept: dict[bytes, ScenePass] = {}

    @property
    def pixel_limit(self) -> int:
        """The pixel budget of this Pi3X's input (the scene frames must be resized as detection does)."""
        return self._model.sizes.scene_pixels

    def __call__(self, scene_images: torch.Tensor) -> dict[str, torch.Tensor]:
        seen = self._model.see(scene_images)
        self._kept[_fingerprint(scene_images)] = seen
        return seen.outputs

    def take(self, scene_images: torch.Tensor) -> ScenePass:
        """The kept pass on these images, dropped from the keep; else a new one."""
        kept = self._kept.pop(_fingerprint(scene_images), None)
        return kept if kept is not None else self._model.see(scene_images)


def _fingerprint(images: torch.Tensor) -> bytes:
    """Equal for equal images (the same frames decoded and resized again), different otherwise."""
    return hashlib.blake2b(images.detach().cpu().numpy().tobytes(), digest_size=16).digest()


class ChrommObserver:
    """CHROMM as an :class:`~core.perception.observer.Observer`: all views of a frame in one pass, or in
    the pass ``passes`` kept of that frame."""

    def __init__(
        self,
        model: Chromm,
        config: NetworksConfig,
        device: str = "cpu",
        passes: SharedScenePasses | None = None,
    ):
        self._model = model
        self._config = config
        self._device = device
        self._passes = passes if passes is not None else SharedScenePasses(model)

    def detect(self, images: Sequence[np.ndarray], cameras: CameraRig) -> PersonColumns:
        """The people of every view of one frame; pixels in each original frame, float64. A head found in
        the padding of Multi-HMR's square (outside the frame) is no one."""
        sizes = {image.shape[:2] for image in images}
        if len(sizes) > 1:
            raise InputError(
                f"CHROMM sees all views of a frame at once, so they need one size; got {sorted(sizes)}"
            )
        frames = np.stack(images)
        scene_images, grid = pi3x_input(frames, self._model.sizes.scene_pixels)
        squares, square_map = multihmr_input(frames, self._model.human.image_size)
        K = square_intrinsics(square_map, cameras.K)
        device, config = self._device, self._config
        with inference(device, config.precision):
            persons = self._model.find_persons(
                self._passes.take(scene_images.to(device)),
                self._model.human.backbone(squares.to(device)),
                torch.as_tensor(K, dtype=torch.float32, device=device),
                square_to_grid(square_map, grid),
                config.detection_threshold,
                config.nms_kernel,
            )
        to_numpy = lambda tensor: tensor.detach().cpu().double().numpy()  # noqa: E731
        loc = square_map.to_original(to_numpy(persons.head2d))
        height, width = frames.shape[1:3]
        inside = ((loc >= -0.5) & (loc <= [width - 0.5, height - 0.5])).all(axis=1)  # not in the padding
        people = {
            "view": persons.view.cpu().numpy(),
            "scores": to_numpy(persons.score),
            "loc": loc,
            "pelvis": square_map.to_original(to_numpy(persons.pelvis2d)),
            "transl": to_numpy(persons.head3d),
            "rotmat": to_numpy(persons.rotmat),
            "shape": to_numpy(persons.shape),
            "expression": to_numpy(persons.expression),
            "token": to_numpy(persons.token),
        }
        return {key: value[inside] for key, value in people.items()}

    def to_observations(self, columns: PersonColumns, frame: np.ndarray, cameras: CameraRig) -> Observations:
        """Posed, projected bodies, with the network's pelvis (see ``to_observations``)."""
        return to_observations(columns, frame, cameras)
