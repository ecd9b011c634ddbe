"""SMPL-X meshes for Multi-HMR's per-person outputs, posed the way the network was trained to predict them.

The body is evaluated by the ``smplx`` package with a zero global orientation; the predicted root rotation
is then applied about the pelvis, and the result is centred on joint 15 (``head``), the point whose image
location and depth the network regresses, before adding ``transl`` (the head in camera coordinates).
Kept apart from ``MultiHMR`` so that the SMPL-X data (the user's own licensed file) never enters its
state dict.
"""

from __future__ import annotations

from pathlib import Path

import roma
import smplx
import torch
from jaxtyping import Float
from torch import nn

from core.nets.multihmr.geometry import project

HEAD_JOINT = 15
"""SMPL-X's ``head`` joint: the person centre Multi-HMR localises."""
PELVIS_JOINT = 0
BODY, LEFT_HAND, RIGHT_HAND, JAW = slice(1, 22), slice(22, 37), slice(37, 52), slice(52, 53)
"""Where each part's rotations sit among the 53 predicted ones (0 is the global orientation)."""


class SmplxPoser(nn.Module):
    """Camera-frame SMPL-X joints (127) and vertices, and their projections, from Multi-HMR's outputs."""

    def __init__(self, model_path: str | Path, num_betas: int = 10) -> None:
        super().__init__()
        self.body = smplx.create(
            str(model_path),
            model_type="smplx",
            gender="neutral",
            use_pca=False,
            flat_hand_mean=True,
            num_betas=num_betas,
        )

    def forward(
        self,
        rotmat: Float[torch.Tensor, "P 53 3 3"],
        betas: Float[torch.Tensor, "P B"],
        expression: Float[torch.Tensor, "P E"],
        transl: Float[torch.Tensor, "P 3"],
        K: Float[torch.Tensor, "P 3 3"],
    ) -> dict[str, torch.Tensor]:
        """``j3d`` (P, 127, 3), ``v3d`` (P, V, 3), pixel ``j2d``/``v2d`` and ``transl_pelvis`` (P, 1, 3)."""
        with torch.autocast(rotmat.device.type, enabled=False):
            rotmat, transl = rotmat.float(), transl.float()
            rotvec = roma.rotmat_to_rotvec(rotmat)
            zeros = rotvec.new_zeros(len(rotvec), 3)
            rest_oriented = self.body(
                betas=betas.float(),
                expression=expression.float(),
                global_orient=zeros,
                body_pose=rotvec[:, BODY].flatten(1),
                left_hand_pose=rotvec[:, LEFT_HAND].flatten(1),
                right_hand_pose=rotvec[:, RIGHT_HAND].flatten(1),
                jaw_pose=rotvec[:, JAW].flatten(1),
                leye_pose=zeros,
                reye_pose=zeros,
            )
            pelvis = rest_oriented.joints[:, PELVIS_JOINT : PELVIS_JOINT + 1]
            root = rotmat[:, 0].transpose(-1, -2)
            joints = (rest_oriented.joints - pelvis) @ root
            vertices = (rest_oriented.vertices - pelvis) @ root
            offset = transl[:, None] - joints[:, HEAD_JOINT : HEAD_JOINT + 1]
            j3d, v3d = joints + offset, vertices + offset
            return {
                "j3d": j3d,
                "v3d": v3d,
                "j2d": project(j3d, K),
                "v2d": project(v3d, K),
                "transl_pelvis": j3d[:, PELVIS_JOINT : PELVIS_JOINT + 1],
            }
