"""The body-model interface the engine speaks: SMPL-X-layout parameters → vertices, faces, named joints.

Every backend (Anny, embedded; SMPL-X, from the user's files) takes the same parameters, batched over
any number of bodies (frames × persons) and on any torch device, so fitting, the viewer and exports do
not care which model is behind. Rotations are axis-angle in SMPL-X's conventions: the canonical body is
y-up and faces +z; ``global_orient`` turns it into the world frame and ``transl`` moves it there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from jaxtyping import Float, Int

from core.keypoints import COCO17_NAMES

BODY_JOINTS = 21
"""SMPL-X body pose: 21 joints below the pelvis, parent-relative axis-angle."""

REQUIRED_JOINTS = (
    *COCO17_NAMES,
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
    "pelvis",
    "head",
    "head_top",
)
"""Joints every backend names: COCO-17 (BlazePose's names), the feet, pelvis, head and head top."""


@dataclass(frozen=True)
class BodyParameters:
    """A batch of B bodies in SMPL-X layout (torch tensors on one device)."""

    global_orient: Float[torch.Tensor, "B 3"]
    transl: Float[torch.Tensor, "B 3"]
    body_pose: Float[torch.Tensor, "B 21 3"]
    shape: Float[torch.Tensor, "B S"]
    """Shape coefficients of the model that reads them (SMPL-X betas, or Anny phenotypes)."""


@dataclass(frozen=True)
class BodyOutput:
    joints: Float[torch.Tensor, "B J 3"]
    """Named joints (``BodyModel.joint_names``), world frame, metres."""
    vertices: Float[torch.Tensor, "B V 3"] | None
    """Mesh vertices, world frame, metres; None when not asked for."""


class BodyModel(Protocol):
    """What every backend provides."""

    name: str
    """Stored with the shape vector it reads (``"anny"``, ``"smplx"``)."""
    shape_dim: int
    joint_names: tuple[str, ...]
    """Includes every name of ``REQUIRED_JOINTS``."""

    @property
    def faces(self) -> Int[np.ndarray, "F 3"]: ...

    def neutral_shape(self, batch: int) -> Float[torch.Tensor, "B S"]:
        """The shape of an average adult, the starting point of fitting."""
        ...

    def __call__(self, parameters: BodyParameters, vertices: bool = True) -> BodyOutput:
        """Pose the bodies; ``vertices=False`` computes the joints only (cheaper where the model allows)."""
        ...
