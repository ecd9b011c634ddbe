"""The camera stage's account of itself: per camera, what it stands on and whether it was placed."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class CameraEstimate:
    """One camera as the camera stage found it."""

    name: str
    placed: bool
    reason: str = ""
    """Why the camera was not placed (empty when placed)."""
    focal_px: float = float("nan")
    reprojection_px: float = float("nan")
    """Median reprojection error of the keypoints it stands on, pixels."""
    inliers: int = 0
    """Keypoint observations of this camera that the final bundle adjustment kept as inliers."""


def _rounded(value: float, digits: int) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


@dataclass(frozen=True)
class CalibrationReport:
    """How the cameras of a reconstruction were obtained."""

    source: str
    """``file``, ``people`` or ``pi3x``."""
    cameras: tuple[CameraEstimate, ...] = ()
    scale_from: str = ""
    """What fixed the metric scale (``body priors``, ``a height of 1.80 m``, ``calibration``)."""
    messages: tuple[str, ...] = ()

    @property
    def placed(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cameras if c.placed)

    def table(self) -> list[dict]:
        """One row per camera, as ``summary --json`` and the page show it."""
        return [
            {
                "camera": c.name,
                "placed": c.placed,
                "focal_px": _rounded(c.focal_px, 1),
                "reprojection_px": _rounded(c.reprojection_px, 2),
                "inliers": c.inliers,
                "verdict": "placed" if c.placed else f"not placed: {c.reason}",
            }
            for c in self.cameras
        ]
