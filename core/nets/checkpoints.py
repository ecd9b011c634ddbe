"""Strict loading of the published Pi3X and Multi-HMR checkpoints from local files.

The architecture is read off the checkpoint's own key names and shapes, the model is built on the
meta device (no memory) and the weights are then placed in it once: a 5.4 GB Pi3X file never exists
twice in memory, and a pickled Multi-HMR file is opened without allowing arbitrary code to run.
"""

from __future__ import annotations

import argparse
import json
import pickle
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from core.cache import cache_root
from core.errors import InputError

Model = TypeVar("Model", bound=nn.Module)
KeyShapes = Mapping[str, tuple[int, ...]]

SAFETENSORS_DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F64": torch.float64,
}
MULTIHMR_IGNORED_PREFIX = "smpl_layer."
"""The SMPL-X layer is rebuilt from the user's own SMPL-X file, never taken from a checkpoint."""


class CheckpointError(InputError):
    """A checkpoint file that is missing, unreadable, of the wrong network or incomplete."""


def describe_key_mismatch(path: Path, expected: KeyShapes, found: KeyShapes, limit: int = 12) -> str | None:
    """What separates a file's keys from the model's: missing, unexpected and wrongly shaped keys."""
    missing = [key for key in expected if key not in found]
    unexpected = [key for key in found if key not in expected]
    reshaped = [
        f"{key} {list(found[key])} (model: {list(expected[key])})"
        for key in expected
        if key in found and tuple(found[key]) != tuple(expected[key])
    ]
    if not (missing or unexpected or reshaped):
        return None
    lines = [f"{path}: the keys do not match the model they describe"]
    for title, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", reshaped)):
        if keys:
            shown = ", ".join(keys[:limit]) + (f", … ({len(keys) - limit} more)" if len(keys) > limit else "")
            lines.append(f"  {len(keys)} {title}: {shown}")
    return "\n".join(lines)


def build_from_keys(
    path: Path, network: str, factory: Callable[[KeyShapes], Model], shapes: KeyShapes
) -> Model:
    """The model a checkpoint's keys describe, on the meta device, checked key for key against them."""
    try:
        with torch.device("meta"):
            model = factory(shapes)
    except (KeyError, ValueError, IndexError) as error:
        raise CheckpointError(f"{path}: not a {network} checkpoint ({error!r})") from None
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    mismatch = describe_key_mismatch(path, expected, shapes)
    if mismatch:
        raise CheckpointError(mismatch)
    return model


def checkpoint_directory() -> Path:
    """Where checkpoints not given by path are looked for: ``$CHROMM_CACHE_DIR/checkpoints/<network>/``."""
    return cache_root() / "checkpoints"


def find_checkpoint(given: Path | None, folder: str, pattern: str) -> Path | None:
    """The checkpoint given, else the first file matching ``pattern`` in the network's checkpoint folder."""
    if given is not None:
        return Path(given).expanduser()
    found = sorted((checkpoint_directory() / folder).glob(pattern))
    return found[0] if found else None


def _require_file(path: Path, network: str, flag: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"{network} checkpoint not found: {path}. Download it yourself (it cannot ship with the studio) "
            f"and pass its local path with {flag}."
        )
    return path


def _safetensors_json(path: Path) -> tuple[dict, int]:
    """A ``.safetensors`` file's JSON header and its size (format: u64 size + JSON)."""
    with open(path, "rb") as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise CheckpointError(f"{path}: empty or truncated safetensors file")
        (header_size,) = struct.unpack("<Q", prefix)
        try:
            header = json.loads(stream.read(header_size))
        except (UnicodeDecodeError, json.JSONDecodeError, MemoryError, OverflowError):
            raise CheckpointError(f"{path}: not a safetensors file (unreadable header)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors file (its header is not a table)")
    return header, header_size


def read_safetensors_metadata(path: Path) -> dict[str, str]:
    """The free-form ``__metadata__`` strings of a ``.safetensors`` file (empty if it has none)."""
    metadata = _safetensors_json(path)[0].get("__metadata__") or {}
    return {str(key): str(value) for key, value in metadata.items()}


def read_safetensors_header(path: Path) -> tuple[dict[str, dict], int]:
    """The tensor table of a ``.safetensors`` file and where its data starts."""
    header, header_size = _safetensors_json(path)
    header.pop("__metadata__", None)
    data_start = 8 + header_size
    end = max((entry["data_offsets"][1] for entry in header.values()), default=0)
    if path.stat().st_size < data_start + end:
        raise CheckpointError(
            f"{path}: truncated: {path.stat().st_size} bytes, the header describes {data_start + end}"
        )
    return header, data_start


def load_safetensors_model(
    path: Path, network: str, flag: str, factory: Callable[[KeyShapes], Model], device: str = "cpu"
) -> Model:
    """Build the model a ``.safetensors`` file describes and read each tensor straight into its place.

    Parameters are allocated once (on ``device``) and the file is read tensor by tensor into them, so
    CPU memory peaks at one model copy when loading to the CPU and at one tensor when loading to a GPU.
    """
    path = _require_file(path, network, flag)
    header, data_start = read_safetensors_header(path)
    unknown = sorted({entry["dtype"] for entry in header.values()} - set(SAFETENSORS_DTYPES))
    if unknown:
        raise CheckpointError(f"{path}: unsupported tensor types {unknown}")
    shapes = {key: tuple(entry["shape"]) for key, entry in header.items()}
    model = build_from_keys(path, network, factory, shapes).to_empty(device=device)
    targets = model.state_dict(keep_vars=True)
    with open(path, "rb") as stream:
        for key, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
            start, stop = entry["data_offsets"]
            target = targets[key].data
            staging = target
            if target.device.type != "cpu" or target.dtype != SAFETENSORS_DTYPES[entry["dtype"]]:
                staging = torch.empty(target.shape, dtype=SAFETENSORS_DTYPES[entry["dtype"]])
            stream.seek(data_start + start)
            view = memoryview(staging.view(torch.uint8).numpy()) if staging.numel() else memoryview(b"")
            if stream.readinto(view) != stop - start:
                raise CheckpointError(f"{path}: could not read tensor {key}")
            if staging is not target:
                target.copy_(staging)
    return model.eval()


def load_pickled_state(path: Path, network: str) -> tuple[dict[str, torch.Tensor], dict]:
    """``(model_state_dict, saved arguments)`` of a ``torch.save`` checkpoint, memory-mapped.

    Only tensors, containers, primitives and ``argparse.Namespace`` may be unpickled: a file asking
    for anything else is refused, naming what it asked for.
    """
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            try:
                checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as error:
                if "mmap" not in str(error):
                    raise
                checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # pre-zip format
    except pickle.UnpicklingError as error:
        paragraphs = [part.strip() for part in str(error).split("\n\n") if part.strip()]
        reason = paragraphs[1] if len(paragraphs) > 2 else "not a torch checkpoint"
        raise CheckpointError(
            f"{path}: refused to unpickle: it asks for more than tensors and argparse.Namespace ({reason})"
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({error})") from None
    if not isinstance(checkpoint, dict) or "model_state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: a {network} checkpoint holds a dict with 'model_state_dict'")
    arguments = checkpoint.get("args")
    return checkpoint["model_state_dict"], vars(arguments) if isinstance(
        arguments, argparse.Namespace
    ) else {}


def load_pickled_model(
    path: Path,
    network: str,
    flag: str,
    factory: Callable[[KeyShapes], Model],
    device: str = "cpu",
    ignored_prefix: str = "",
) -> Model:
    """Build the model a pickled checkpoint describes and take its memory-mapped tensors as weights."""
    path = _require_file(path, network, flag)
    state, _ = load_pickled_state(path, network)
    if ignored_prefix:
        state = {key: value for key, value in state.items() if not key.startswith(ignored_prefix)}
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    model = build_from_keys(path, network, factory, shapes)
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device=device, dtype=torch.float32).eval()
