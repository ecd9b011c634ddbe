"""Benchmarks of the networks: seconds and peak memory per multi-view frame, and checkpoint-load memory.

Random weights stand in for the checkpoints (the timings do not depend on the values); the load
benchmark writes a synthetic checkpoint of the real size and layout and loads it in a fresh process.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def randomly_initialised(model: nn.Module, device: str, seed: int = 0) -> nn.Module:
    """Materialise a meta-device model on ``device`` with small random weights (norm weights 1)."""
    model = model.to_empty(device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict(keep_vars=True).items():
            if tensor.dtype.is_floating_point:
                tensor.normal_(0.0, 0.02, generator=generator)
                if tensor.ndim == 1 and name.rsplit(".", 1)[-1] in ("weight", "gamma"):
                    tensor.add_(1.0)
    return model.requires_grad_(False).eval()


def write_synthetic_safetensors(path: Path, shapes: Mapping[str, tuple[int, ...]], seed: int = 0) -> int:
    """A float32 ``.safetensors`` file with these keys and random values, written tensor by tensor so
    that writing a 5.4 GB file needs little memory. Returns its size in bytes."""
    header, offset = {}, 0
    for key, shape in shapes.items():
        size = 4 * int(np.prod(shape, dtype=np.int64))
        header[key] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    rng = np.random.default_rng(seed)
    with open(path, "wb") as stream:
        stream.write(len(encoded).to_bytes(8, "little") + encoded)
        for shape in shapes.values():
            stream.write((0.02 * rng.standard_normal(shape, dtype=np.float32)).tobytes())
    return 8 + len(encoded) + offset


def peak_rss_of(code: str) -> tuple[float, str]:
    """Peak resident memory (GB, 10⁹ bytes) of a fresh Python process running ``code``, and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kb <= before:
        raise RuntimeError("a previous child process used more memory; run the load benchmark alone")
    return peak_kb * 1024 / 1e9, completed.stdout.strip()


def timed(run: Callable[[], object], device: str, repeats: int) -> tuple[float, float, float]:
    """(mean seconds per call, peak GPU memory in GB or nan on the CPU, TFLOP per call); the first,
    untimed call counts the floating-point operations (a multiply-add is two)."""
    cuda = torch.device(device).type == "cuda"
    counter = FlopCounterMode(display=False)
    with counter:
        run()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / repeats
    memory = torch.cuda.max_memory_allocated() / 1024**3 if cuda else float("nan")
    return seconds, memory, counter.get_total_flops() / 1e12


def _frame_models(depth: str, mhmr_size: str, mhmr_resolution: int) -> tuple[nn.Module, nn.Module]:
    """Pi3X and Multi-HMR on the meta device, at the published or a smoke-test depth."""
    from core.nets.multihmr.model import MultiHMR
    from core.nets.pi3x.model import Pi3X

    tiny = {"encoder_depth": 2, "decoder_depth": 4} | {
        f"{head}_decoder_depth": 1 for head in ("point", "conf", "camera", "metric")
    }
    with torch.device("meta"):
        scene_net = Pi3X(use_multimodal=False, **(tiny if depth == "tiny" else {}))
        humans_net = MultiHMR(backbone=mhmr_size, image_size=mhmr_resolution)
    return scene_net, humans_net


def run_frame_bench(settings, device: str) -> dict:
    """Time Pi3X on all views of one frame and Multi-HMR on each view's image (batched), in the run's
    precision; ``settings`` is the ``nets bench`` command. Peak GPU memory per part (nan on the CPU)
    and the process's peak resident memory."""
    from core.nets.pi3x.preprocess import pi3x_size
    from core.nets.runtime import autocast_dtype, inference

    scene_net, humans_net = _frame_models(settings.depth, settings.mhmr_size, settings.mhmr_resolution)
    scene_net = randomly_initialised(scene_net, device)
    humans_net = randomly_initialised(humans_net, device, seed=1)
    width, height = pi3x_size(settings.width, settings.height)
    generator = torch.Generator(device=device).manual_seed(0)
    views = torch.rand(1, settings.views, 3, height, width, generator=generator, device=device)
    side = settings.mhmr_resolution
    squares = torch.randn(settings.views, 3, side, side, generator=generator, device=device)
    focal = side / (2 * np.tan(np.radians(30)))
    K = torch.tensor([[focal, 0, side / 2], [0, focal, side / 2], [0, 0, 1]], device=device)
    K = K.expand(settings.views, 3, 3)
    cells = side // 14
    person = torch.arange(settings.views * settings.persons, device=device)
    detections = (
        person // settings.persons,
        (3 + 4 * (person % settings.persons)) % cells,
        (5 + 3 * (person % settings.persons)) % cells,
        torch.zeros_like(person),
    )
    with inference(device, settings.precision):
        scene_seconds, scene_memory, scene_tflop = timed(lambda: scene_net(views), device, settings.repeats)
        humans_seconds, humans_memory, humans_tflop = timed(
            lambda: humans_net.forward_persons(squares, K, detections), device, settings.repeats
        )
        both_seconds, both_memory, _ = timed(
            lambda: (scene_net(views), humans_net.forward_persons(squares, K, detections)),
            device,
            settings.repeats,
        )
    dtype = autocast_dtype(device, settings.precision)
    chromm = {}
    if settings.model == "chromm":
        chromm = _chromm_bench(scene_net, humans_net, views, squares, K, detections[:3], settings, device)
        priors_tflop = scene_tflop + humans_tflop
        chromm["chromm_added_tflop_percent"] = 100 * (chromm["chromm_tflop"] - priors_tflop) / priors_tflop
        chromm["chromm_time_vs_priors_percent"] = 100 * (chromm["chromm_s"] / both_seconds - 1)
    return {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "precision": "fp32" if dtype is None else str(dtype).removeprefix("torch."),
        "depth": settings.depth,
        "views": settings.views,
        "pi3x_input": f"{settings.views} x {width}x{height}",
        "multihmr_input": f"{settings.views} x {side}x{side} ({settings.mhmr_size}), "
        f"{settings.persons} persons each",
        "pi3x_tflop": scene_tflop,
        "multihmr_tflop": humans_tflop,
        "pi3x_s": scene_seconds,
        "multihmr_s": humans_seconds,
        "frame_s": both_seconds,
        "pi3x_peak_gb": scene_memory,
        "multihmr_peak_gb": humans_memory,
        "frame_peak_gb": both_memory,
        **chromm,
        "cpu_peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
    }


def _chromm_bench(scene_net, humans_net, views, squares, K, cells, settings, device: str) -> dict:
    """CHROMM's network on the same frame, its priors being the two networks just timed (same weights),
    and what its new modules add to their operations and time."""
    from core.nets.chromm.checkpoint import chromm_from_priors
    from core.nets.chromm.grid import square_to_grid
    from core.nets.image_map import PixelMap
    from core.nets.runtime import inference

    model = chromm_from_priors(scene_net, humans_net).eval()
    side, (height, width) = squares.shape[-1], views.shape[-2:]
    scale = (width / side, height / side)  # any square → grid map will do for timing
    to_grid = square_to_grid(
        PixelMap((side, side), (side, side), (1.0, 1.0), (0.0, 0.0)),
        PixelMap((side, side), (width, height), scale, (0.0, 0.0)),
    )
    with torch.no_grad(), inference(device, settings.precision):
        seconds, memory, tflop = timed(
            lambda: model(views, squares, K, to_grid, cells=cells), device, settings.repeats
        )
    added = sum(p.numel() for module in model.new_modules() for p in module.parameters())
    return {
        "chromm_tflop": tflop,
        "chromm_s": seconds,
        "chromm_peak_gb": memory,
        "chromm_new_parameters": added,
    }


def format_frame_bench(result: dict) -> str:
    lines = [
        f"{key:<16} {value:.3f}" if isinstance(value, float) else f"{key:<16} {value}"
        for key, value in result.items()
    ]
    return "\n".join(lines)


_LOAD_CODE = """
import time, torch
from core.nets.checkpoints import load_safetensors_model
from core.nets.pi3x.model import Pi3X
start = time.perf_counter()
model = load_safetensors_model({path!r}, "Pi3X", "--pi3x-ckpt", Pi3X.from_key_shapes, {device!r})
if {device!r} == "cuda":
    torch.cuda.synchronize()
print(f"{{sum(p.numel() for p in model.parameters()) * 4 / 1e9:.2f}} GB of weights in "
      f"{{time.perf_counter() - start:.1f}} s")
"""


def run_load_bench(checkpoint: Path, device: str) -> str:
    """Write (once) a synthetic full-size Pi3X checkpoint, then load it in a fresh process."""
    from core.nets.pi3x.model import Pi3X

    if not checkpoint.is_file():
        with torch.device("meta"):
            shapes = {key: tuple(value.shape) for key, value in Pi3X().state_dict().items()}
        size = write_synthetic_safetensors(checkpoint, shapes)
        print(f"wrote {checkpoint} ({size / 1e9:.2f} GB)")
    peak_gb, printed = peak_rss_of(_LOAD_CODE.format(path=str(checkpoint), device=device))
    file_gb = checkpoint.stat().st_size / 1e9
    return f"{printed}; file {file_gb:.2f} GB; peak CPU memory of the loading process {peak_gb:.2f} GB"
