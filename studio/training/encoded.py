"""What the frozen encoders make of an instant's views, computed or read back from a disk cache.

In stages 1 and 2 Pi3X and Multi-HMR's backbone are frozen, and they are nearly all of the network's
cost; their outputs for a sample never change. With a cache folder, each sample's encoded views (Pi3X's
decoder features and local points, the backbone's patch tokens, float16) are written once and read in
every later epoch and run: training the new modules then costs a fraction. The cache is keyed by a
digest of the encoders' weights and sizes, so a run with other encoders never reads stale features,
and each file is written to a temporary name and renamed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from core.nets.chromm.model import PATCH_SIZE, Chromm, ScenePass
from studio.training.batch import NetworkInputs

_SCENE_OUTPUTS = ("local_points",)
"""Pi3X outputs the new modules and losses read (the depth, and the points of the Chamfer term)."""


@dataclass(frozen=True)
class EncodedViews:
    """The frozen encoders' outputs for one instant."""

    seen: ScenePass
    tokens: torch.Tensor
    """Multi-HMR backbone tokens, (V, G, D)."""


def encode(model: Chromm, inputs: NetworkInputs, device: str | torch.device) -> EncodedViews:
    """Run the encoders (with gradients if the caller allows them: stage 0 trains them)."""
    seen = model.see(inputs.scene_images.to(device))
    return EncodedViews(seen, model.human.backbone(inputs.squares.to(device)))


def frozen_encoded(
    model: Chromm, key: str, inputs: NetworkInputs, cache: EncodedCache | None
) -> EncodedViews:
    """The frozen encoders' outputs (no gradients): read from ``cache`` when there is one."""
    device = inputs.K.device
    if cache is not None:
        return cache(key, inputs, device)
    with torch.no_grad():
        return encode(model, inputs, device)


def encoder_digest(model: Chromm) -> str:
    """A short digest of the encoders' input sizes and weights (names, shapes, values): equal digests,
    equal features, whatever the new modules' sizes."""
    inputs = {"scene_pixels": model.sizes.scene_pixels, "square": model.human.image_size}
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode())
    for module in model.encoders():
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(f"{name}{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


class EncodedCache:
    """``encode`` behind a folder of one file per sample (``<digest>/<key>.safetensors``)."""

    def __init__(self, model: Chromm, folder: Path):
        self._model = model
        self.folder = Path(folder) / encoder_digest(model)
        self.folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, key: str, inputs: NetworkInputs, device: str | torch.device) -> EncodedViews:
        path = self.folder / f"{key}.safetensors"
        if path.is_file():
            return _read(path, inputs, device)
        with torch.no_grad():
            encoded = encode(self._model, inputs, device)
        tensors = {f"scene.{name}": encoded.seen.outputs[name] for name in _SCENE_OUTPUTS}
        tensors |= {"features": encoded.seen.features, "tokens": encoded.tokens}
        partial = path.with_name(path.name + ".partial")
        save_file({k: v.detach().half().contiguous().cpu() for k, v in tensors.items()}, str(partial))
        partial.replace(path)
        return _read(path, inputs, device)  # as every later read gives it: rounded to float16


def _read(path: Path, inputs: NetworkInputs, device: str | torch.device) -> EncodedViews:
    tensors = {key: value.float().to(device) for key, value in load_file(str(path)).items()}
    rows, cols = (size // PATCH_SIZE for size in inputs.scene_images.shape[-2:])
    outputs = {name: tensors[f"scene.{name}"] for name in _SCENE_OUTPUTS}
    return EncodedViews(ScenePass(outputs, tensors["features"], rows, cols), tensors["tokens"])
