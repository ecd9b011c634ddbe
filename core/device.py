"""The compute device of torch-based backends, checked up front rather than failing mid-run."""

from __future__ import annotations

from core.errors import InputError


def resolve_device(name: str) -> str:
    """``cpu`` always works; ``cuda`` needs a CUDA build of torch and a visible GPU."""
    if name == "cpu":
        return name
    if name != "cuda":
        raise InputError(f"unknown device {name!r}: use cpu or cuda")
    try:
        import torch
    except ImportError:
        raise InputError("--device cuda needs torch with CUDA; torch is not installed") from None
    if not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA GPU is visible to torch")
    return name
