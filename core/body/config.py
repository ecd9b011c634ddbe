"""Settings of the body stage, kept apart from the backends so that configs import no torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

TOPOLOGIES = ("anny", "notoes", "notoes_collapse3pc", "notoes_collapse5pc", "notoes_collapse10pc")
"""Anny's body topologies: the full mesh (~14k vertices), without toes (~12k), and that one decimated to
10 % (1,229 vertices), 5 % (615) and 3 % (369)."""
VIEWER_TOPOLOGY = "notoes_collapse10pc"
EXPORT_TOPOLOGY = "anny"


@dataclass(frozen=True)
class AnnyConfig:
    """Which Anny mesh to build and where Anny caches it."""

    topology: str = VIEWER_TOPOLOGY
    """Mesh topology (``TOPOLOGIES``): ``notoes_collapse10pc`` (1,229 vertices) for the viewer and
    fitting, ``anny`` (the full mesh) for exports."""
    cache_dir: Path | None = None
    """Anny's model cache; None: ``$ANNY_CACHE_DIR``, else ``~/.cache/anny``. A topology's first use
    builds it there (about a minute); only the ``v*/build_compact_model_data_*.safetensors`` files are
    read afterwards."""


@dataclass(frozen=True)
class SmplxConfig:
    """Where the user's SMPL-X model files are and which model to load."""

    model_dir: Path | None = None
    """Folder holding ``SMPLX_NEUTRAL.npz`` (or MALE/FEMALE, ``.npz`` or ``.pkl``), directly or in a
    ``smplx/`` subfolder. SMPL-X is registration-gated: download it from https://smpl-x.is.tue.mpg.de."""
    gender: Literal["neutral", "male", "female"] = "neutral"
    """Which of the three models to load."""
    num_betas: int = 10
    """Shape coefficients used (``shape_dim``): at most 10 for files with 20 shape components (SMPL-X
    v1.0), 300 for files with 400 (v1.1)."""


@dataclass(frozen=True)
class FitConfig:
    """How a track is fitted."""

    iterations: int = 120
    """Most Adam steps of the first stage (shape and pose on the key frames)."""
    refine_iterations: int = 70
    """Most Adam steps of the second stage."""
    warm_iterations: int = 20
    """Most Adam steps of the second stage when it starts from a previous fit of the person (an identity
    edit: the poses are already close)."""
    learning_rate: float = 0.05
    """Adam's step size at the first step of each stage."""
    refine_learning_rate: float = 0.01
    """Adam's step size at the first step of the second stage (every frame, from the key frames' poses)."""
    final_learning_rate: float = 0.002
    """Step size the first one decays to (exponentially) by the ``iterations``-th step."""
    tolerance: float = 1e-3
    """Early stop: a stage ends when its loss fell by less than this fraction over ``patience`` steps."""
    patience: int = 10
    """Steps over which the loss decrease is measured for the early stop."""
    shape_frames: int = 12
    """Key frames, spread evenly over the track, on which shape and pose are fitted first; every frame's
    pose is then fitted with the shape kept, starting from the key frames' poses. 0: one stage over all
    frames."""
    key_frame_spacing: int = 8
    """… and at least one key frame every this many frames, so that a long track starts its second stage
    as close to its poses as a short one (12 key frames over 1,000 frames left the fit 51 mm off, against
    13 mm over 100)."""
    limb_initialisation: bool = True
    """Start the pose with each limb bone (upper and lower arms and legs) pointing along its targets."""
    threads: int = 0
    """``torch.set_num_threads`` during the fit (restored after); 0: leave torch's setting."""
    smoothness_weight: float = 0.01
    """Weight of the squared change of pose, orientation (radians) and position (metres) between frames."""
    pose_prior_weight: float = 1e-3
    """Weight of the squared body pose (radians): keeps unseen joints near rest."""
    shape_prior_weight: float = 1e-3
    """Weight of the squared distance of the shape from the model's neutral shape."""
    single_view_weight: float = 0.2
    """Weight of a target joint seen by one view only (placed on its ray at the pelvis depth) against a
    triangulated one's 1."""
    offset_prior_weight: float = 0.1
    """Weight of the squared per-keypoint offsets (metres), fitted in the second stage once the shape is
    set (``core.body.fitting``); 0: no offsets."""


@dataclass(frozen=True)
class BodyConfig:
    """Which body model carries the people, and how it is fitted."""

    model: Literal["anny", "smplx", "none"] = "anny"
    """anny: embedded (ships its data); smplx: the user's own SMPL-X files (``smplx.model_dir``); none:
    keep the triangulated joints only."""
    anny: AnnyConfig = field(default_factory=AnnyConfig)
    smplx: SmplxConfig = field(default_factory=SmplxConfig)
    fit: FitConfig = field(default_factory=FitConfig)
