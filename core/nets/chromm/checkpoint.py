"""CHROMM's weights: built from the official Pi3X and Multi-HMR checkpoints, saved and loaded as its own.

A CHROMM checkpoint is one ``.safetensors`` file whose metadata holds the network's sizes as JSON
(``chromm_sizes``): the architecture is read back from the file, built on the meta device, checked key
for key against the file (a wrong or partial file is refused, listing its missing and unexpected keys)
and filled tensor by tensor. Saving writes a temporary file and renames it, so a checkpoint is never
half-written.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import save_file

from core.nets.checkpoints import CheckpointError, load_safetensors_model, read_safetensors_metadata
from core.nets.chromm.model import Chromm, ChrommSizes
from core.nets.multihmr.model import MultiHMR
from core.nets.pi3x.model import Pi3X

NETWORK = "CHROMM"
FLAG = "--chromm-ckpt"
SIZES_KEY = "chromm_sizes"


def chromm_from_priors(scene: Pi3X, human: MultiHMR, sizes: ChrommSizes | None = None) -> Chromm:
    """CHROMM on loaded Pi3X and Multi-HMR models (their weights kept, the new modules initialised:
    where training starts). Their sizes are read off their own weights; ``sizes`` gives the rest."""
    sizes = replace(
        sizes or ChrommSizes(),
        pi3x=Pi3X.arguments_from_key_shapes(_key_shapes(scene)),
        multihmr=MultiHMR.arguments_from_key_shapes(_key_shapes(human)),
    )
    device = next(scene.parameters()).device
    with torch.device(device):
        return Chromm(sizes, scene=scene, human=human)


def _key_shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def save_chromm(model: Chromm, path: Path) -> Path:
    """Write ``model`` (float32) and its sizes to ``path``, atomically."""
    path = Path(path)
    state = {
        key: value.detach().to("cpu", torch.float32).contiguous() for key, value in model.state_dict().items()
    }
    partial = path.with_name(path.name + ".partial")
    save_file(state, partial, metadata={SIZES_KEY: json.dumps(model.sizes.to_json())})
    os.replace(partial, path)
    return path


def load_chromm(path: Path, device: str = "cpu") -> Chromm:
    """The CHROMM network a checkpoint written by ``save_chromm`` holds, strictly."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{NETWORK} checkpoint not found: {path}; pass its local path with {FLAG}")
    metadata = read_safetensors_metadata(path)
    if SIZES_KEY not in metadata:
        raise CheckpointError(f"{path}: not a {NETWORK} checkpoint (its metadata has no {SIZES_KEY!r})")
    try:
        sizes = ChrommSizes(**json.loads(metadata[SIZES_KEY]))
    except (json.JSONDecodeError, TypeError) as error:
        raise CheckpointError(f"{path}: unreadable {NETWORK} sizes ({error})") from None
    return load_safetensors_model(path, NETWORK, FLAG, lambda shapes: Chromm(sizes), device)
