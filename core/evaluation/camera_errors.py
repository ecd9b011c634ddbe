"""How far estimated cameras are from known ones, as the self-calibration literature reports it.

Relative rotation per camera pair (independent of the world frame), camera centres after one Sim(3)
fitted on the centres, focal length, the world's scale (that Sim(3)'s), and the up axis (the estimated
world's z carried into the true world by that Sim(3)'s rotation).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from core.geometry import umeyama_sim3
from core.types import CameraRig


@dataclass(frozen=True)
class CameraErrors:
    names: tuple[str, ...]
    """The cameras compared (those of the truth that the estimate has)."""
    rotation_deg: np.ndarray
    """Relative rotation error of each camera pair, degrees."""
    centre_cm: np.ndarray
    """Each camera centre's distance from the truth after the Sim(3), centimetres."""
    focal_percent: np.ndarray
    """Each camera's focal length error, percent of the true one."""
    scale_percent: float
    """How much larger the estimated world is than the true one, percent."""
    up_deg: float

    def summary(self) -> dict:
        return {
            "cameras": list(self.names),
            "rotation_deg_median": float(np.median(self.rotation_deg)),
            "rotation_deg_max": float(self.rotation_deg.max()),
            "centre_cm_max": float(self.centre_cm.max()),
            "focal_percent_max": float(np.abs(self.focal_percent).max()),
            "scale_percent": self.scale_percent,
            "up_deg": self.up_deg,
        }


def camera_errors(truth: CameraRig, estimate: CameraRig) -> CameraErrors:
    """Errors of ``estimate`` against ``truth``, matched by camera name (at least three shared, for the
    Sim(3) of the centres to be defined).

    >>> from core.evaluation.synthetic import SyntheticConfig, make_scene
    >>> rig = make_scene(SyntheticConfig(persons=1, views=3, frames=1)).true_cameras
    >>> errors = camera_errors(rig, rig.scaled(2.0))
    >>> round(errors.scale_percent, 6), float(errors.rotation_deg.max().round(6))
    (100.0, 0.0)
    """
    mine = {c.name: c for c in estimate.cameras}
    names = tuple(n for n in truth.names if n in mine)
    if len(names) < 3:
        raise ValueError(f"camera errors need three cameras in both rigs; shared: {names}")
    true = [truth.cameras[truth.names.index(n)] for n in names]
    found = [mine[n] for n in names]
    rotation = [
        (Rotation.from_matrix(tb.R @ ta.R.T).inv() * Rotation.from_matrix(eb.R @ ea.R.T)).magnitude()
        for (ta, ea), (tb, eb) in itertools.combinations(zip(true, found, strict=True), 2)
    ]
    true_centres = np.array([c.center for c in true])
    found_centres = np.array([c.center for c in found])
    scale, R, t = umeyama_sim3(found_centres, true_centres)
    aligned = scale * found_centres @ R.T + t
    up = R @ np.array([0.0, 0.0, 1.0])
    return CameraErrors(
        names=names,
        rotation_deg=np.degrees(np.array(rotation)),
        centre_cm=100 * np.linalg.norm(aligned - true_centres, axis=1),
        focal_percent=100 * (np.array([e.K[0, 0] / t.K[0, 0] for t, e in zip(true, found, strict=True)]) - 1),
        scale_percent=float(100 * (1 / scale - 1)),
        up_deg=float(np.degrees(np.arccos(np.clip(up[2], -1.0, 1.0)))),
    )
