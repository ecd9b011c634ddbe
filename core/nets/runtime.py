"""Where and in which precision the networks run: CUDA autocast when there is a GPU, fp32 on the CPU."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from core.errors import InputError


def autocast_dtype(device: str, precision: str = "auto") -> torch.dtype | None:
    """The autocast type for ``precision`` on ``device``; None: plain fp32 (always on the CPU)."""
    if precision == "fp32" or torch.device(device).type != "cuda":
        if precision in ("bf16", "fp16") and torch.device(device).type != "cuda":
            raise InputError(f"precision {precision} needs a CUDA device; the CPU runs in fp32")
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


@contextlib.contextmanager
def inference(device: str, precision: str = "auto") -> Iterator[None]:
    """No gradients, and mixed precision where the device has it."""
    dtype = autocast_dtype(device, precision)
    with torch.inference_mode():
        if dtype is None:
            yield
        else:
            with torch.autocast("cuda", dtype=dtype):
                yield
