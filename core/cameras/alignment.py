"""A calibration file's cameras carried into the world of cameras estimated for the same rig.

A self-calibration's world (z up from the people, floor at z = 0, origin under them) and a calibration
file's (wherever its checkerboard lay) differ by a similarity; fitted on the camera centres the two rigs
share, it lets the viewer overlay the file's cameras on the estimated ones.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.geometry import umeyama_sim3
from core.types import CameraRig

MIN_SHARED_CAMERAS = 3
"""Camera centres a Sim(3) needs to be defined (two leave the roll about their baseline free)."""


def carried_into(reference: CameraRig, estimate: CameraRig) -> CameraRig | None:
    """The cameras of ``reference`` that ``estimate`` also has (by name, in ``reference``'s order),
    moved by the Sim(3) that best carries their centres onto ``estimate``'s; None with fewer than
    :data:`MIN_SHARED_CAMERAS` shared.

    A world point ``x`` goes to ``s Q x + u``; a camera ``(R, t)`` seeing it becomes
    ``(R Qᵀ, -R Qᵀ (s Q c + u))`` with ``c`` its centre: the same view, in metres of the new world.
    """
    mine = {c.name: c for c in estimate.cameras}
    shared = [c for c in reference.cameras if c.name in mine]
    if len(shared) < MIN_SHARED_CAMERAS:
        return None
    centres = np.array([c.center for c in shared])
    s, Q, u = umeyama_sim3(centres, np.array([mine[c.name].center for c in shared]))
    if not np.isfinite(s):
        return None
    carried = []
    for camera, centre in zip(shared, centres, strict=True):
        R = camera.R @ Q.T
        carried.append(replace(camera, R=R, t=-R @ (s * Q @ centre + u)))
    return CameraRig(tuple(carried))
