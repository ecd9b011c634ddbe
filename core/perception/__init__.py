"""Per-view perception: people in each frame of each clip, as engine observations.

Every human backend is an :class:`Observer` (BlazePose, embedded; Multi-HMR and CHROMM, the user's
checkpoints)
driven by the one loop :func:`observe_clips`. The names below are imported on first use: the settings
(``core.perception.config``) are read by every config, which must not load LiteRT or torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.perception.blazepose import DETECTOR_FILE, LANDMARK_FILE, BlazePose, model_directory
    from core.perception.chromm_observer import ChrommObserver, SharedScenePasses, load_chromm_network
    from core.perception.config import BlazePoseConfig, DetectorConfig
    from core.perception.multihmr_observer import MultiHMRObserver, load_multihmr
    from core.perception.observer import Observer, PerceptionResult, PersonColumns, observe_clips

_MODULE_OF = {
    "BlazePose": "blazepose",
    "DETECTOR_FILE": "blazepose",
    "LANDMARK_FILE": "blazepose",
    "model_directory": "blazepose",
    "ChrommObserver": "chromm_observer",
    "SharedScenePasses": "chromm_observer",
    "load_chromm_network": "chromm_observer",
    "BlazePoseConfig": "config",
    "DetectorConfig": "config",
    "MultiHMRObserver": "multihmr_observer",
    "load_multihmr": "multihmr_observer",
    "Observer": "observer",
    "PerceptionResult": "observer",
    "PersonColumns": "observer",
    "observe_clips": "observer",
}

__all__ = [
    "DETECTOR_FILE",
    "LANDMARK_FILE",
    "BlazePose",
    "BlazePoseConfig",
    "ChrommObserver",
    "DetectorConfig",
    "MultiHMRObserver",
    "Observer",
    "PerceptionResult",
    "PersonColumns",
    "SharedScenePasses",
    "load_chromm_network",
    "load_multihmr",
    "model_directory",
    "observe_clips",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
