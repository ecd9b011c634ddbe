"""Which published networks replace the embedded defaults, and where the user keeps their checkpoints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class NetworksConfig:
    """The scene and human priors of a run. The defaults need no network: cameras from the calibration
    file, people from the embedded BlazePose. Pi3X and Multi-HMR checkpoints are non-commercial and
    hub-hosted, so they never ship: they are read from the user's own local files."""

    scene: Literal["calibration", "pi3x"] = "calibration"
    """calibration: cameras from the calibration file, a floor as the scene; pi3x: point maps from the
    Pi3X network (cameras too when no calibration is given; with one, Pi3X is aligned to it by Sim(3))."""
    humans: Literal["blazepose", "multihmr", "chromm"] = "blazepose"
    """blazepose: the embedded landmark detector; multihmr: Multi-HMR's SMPL-X estimates per person;
    chromm: CHROMM's network (Multi-HMR fused with Pi3X per frame, heads at Pi3X's depth plus a learned
    residual, the network's pelvis for the scale), from your own trained checkpoint."""
    pi3x_ckpt: Path | None = None
    """Pi3X ``model.safetensors`` (5.4 GB, from the yyfz/Pi3X model page)."""
    mhmr_ckpt: Path | None = None
    """Multi-HMR ``multiHMR_*.pt`` (from the naver/multi-hmr release page)."""
    chromm_ckpt: Path | None = None
    """A CHROMM ``.safetensors`` checkpoint (trained with ``python -m studio train``; none is published)."""
    head_depth: Literal["network", "pi3x"] = "network"
    """network: Multi-HMR's own depth for each head; pi3x: the Pi3X depth at the head's pixel (CHROMM's
    depth residual with a zero residual). Needs ``scene=pi3x``; Pi3X then also runs on every frame, for
    that frame's depths."""
    scene_frames: int = 1
    """Frames, spread over the range, that Pi3X sees for cameras and points (all views of each at once)."""
    min_point_confidence: float = 0.5
    """Pi3X points whose sigmoid confidence is below this are left out of the point cloud."""
    max_points: int = 200_000
    """The point cloud is subsampled evenly to at most this many points (shared out over the frames)."""
    detection_threshold: float = 0.3
    """Multi-HMR's head-detection score threshold."""
    nms_kernel: int = 3
    """Side of Multi-HMR's max-pool non-maximum suppression on the detection map (1: none)."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """auto: bf16 autocast on a GPU that supports it (else fp16), fp32 on the CPU."""
