"""What every training source returns: one instant (or a few frames of a static camera) seen by V views,
with every ground truth CHROMM's losses read.

Bodies are given per view in that camera's frame (OpenCV axes, metres), in the conventions of the body
model named by ``body_model`` (``core.body``: Anny's ``transl`` is the pelvis, SMPL-X's is added after its
rest pelvis J₀(β)). Per-view bodies let a source use several frames of one camera as the views, where
the people move between views; for several cameras of one instant they are the same bodies seen from
each camera. Person ``p`` is the same person in every view.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from jaxtyping import Bool, Float, Int, UInt8

from core.errors import InputError


@dataclass(frozen=True)
class MultiViewSample:
    """V views of P persons with their ground truth (numpy, float32 unless said)."""

    name: str
    """Where it came from (scene file, or BEDLAM sequence and frames), for messages."""
    images: UInt8[np.ndarray, "V H W 3"]
    """RGB, one size for all views."""
    K: Float[np.ndarray, "V 3 3"]
    """Intrinsics in ``images``' pixels (OpenCV-centred: the first pixel's centre is 0)."""
    R: Float[np.ndarray, "V 3 3"]
    """World → camera rotation, ``x_cam = R x_world + t``."""
    t: Float[np.ndarray, "V 3"]
    depth: Float[np.ndarray, "V H W"] | None
    """Z-depth in metres; NaN where unknown (sky, background not rendered). None: no depth at all."""
    masks: Int[np.ndarray, "V H W"] | None
    """Person index per pixel, -1 for none (int16). None when the source has none."""
    body_model: str
    """The body model whose parameters these are: ``"anny"`` or ``"smplx"``."""
    global_orient: Float[np.ndarray, "V P 3"]
    """Axis-angle, canonical body → camera frame."""
    body_pose: Float[np.ndarray, "V P 21 3"]
    """SMPL-X-layout parent-relative axis-angle."""
    shape: Float[np.ndarray, "P S"]
    """The body model's shape vector (Anny's phenotypes, SMPL-X's betas)."""
    transl: Float[np.ndarray, "V P 3"]
    """Camera-frame translation in the body model's convention."""
    head2d: Float[np.ndarray, "V P 2"]
    """The head joint's pixel."""
    pelvis2d: Float[np.ndarray, "V P 2"]
    """The pelvis joint's pixel."""
    visible: Bool[np.ndarray, "V P"]
    """The person is in view: head inside the image and enough of the body not hidden."""

    @property
    def num_views(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_persons(self) -> int:
        return int(self.shape.shape[0])

    def check(self) -> MultiViewSample:
        """Itself, once every array has the shape its field says; else an ``InputError`` naming it."""
        V, H, W = self.images.shape[:3]
        P = self.num_persons
        expected = {
            "images": (V, H, W, 3),
            "K": (V, 3, 3),
            "R": (V, 3, 3),
            "t": (V, 3),
            "depth": (V, H, W),
            "masks": (V, H, W),
            "global_orient": (V, P, 3),
            "body_pose": (V, P, 21, 3),
            "transl": (V, P, 3),
            "head2d": (V, P, 2),
            "pelvis2d": (V, P, 2),
            "visible": (V, P),
        }
        for name, shape in expected.items():
            value = getattr(self, name)
            if value is not None and value.shape != shape:
                raise InputError(f"{self.name}: {name} has shape {value.shape}, expected {shape}")
        if self.body_model not in ("anny", "smplx"):
            raise InputError(f"{self.name}: unknown body model {self.body_model!r} (anny or smplx)")
        return self

    def save(self, path: Path) -> Path:
        """One compressed ``.npz``, written to a temporary name then renamed (never half a file)."""
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        with open(partial, "wb") as file:
            np.savez_compressed(file, **arrays)
        partial.replace(path)
        return path

    @staticmethod
    def load(path: Path) -> MultiViewSample:
        """A sample ``save`` wrote; a clear error for a file that is not one."""
        path = Path(path)
        try:
            with np.load(path) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError) as error:
            raise InputError(f"{path}: not a readable sample file ({error})") from None
        names = {f.name for f in fields(MultiViewSample)}
        optional = {"depth", "masks"}
        missing = sorted(names - optional - set(arrays))
        if missing:
            raise InputError(f"{path}: not a training sample, missing {', '.join(missing)}")
        values = {key: arrays.get(key) for key in names}
        values["name"], values["body_model"] = str(values["name"]), str(values["body_model"])
        return MultiViewSample(**values).check()
