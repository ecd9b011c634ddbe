"""Rotation helpers shared by the body backends and the fit (torch, batched over any leading axes)."""

from __future__ import annotations

import numpy as np
import roma
import torch
from jaxtyping import Float

from core.skeleton import PARENTS, depth_levels


def chain_rotations(
    local: Float[torch.Tensor, "*batch J 3 3"], parents: tuple[int, ...] = tuple(PARENTS)
) -> Float[torch.Tensor, "*batch J 3 3"]:
    """World rotations from parent-relative ones, ``G_j = G_parent(j) · L_j`` (root: ``G_0 = L_0``).

    One batched product per tree depth, every joint of that depth at once.

    >>> z90 = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, torch.pi / 2]))
    >>> world = chain_rotations(torch.stack([z90, z90, torch.eye(3)]), (-1, 0, 1))
    >>> torch.allclose(world[2] @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([-1.0, 0.0, 0.0]), atol=1e-6)
    True
    """
    world = local.clone()
    parent_index = np.asarray(parents)
    for level in depth_levels(parents):
        world[..., level, :, :] = world[..., parent_index[level], :, :] @ local[..., level, :, :]
    return world


def swing_rotation(
    start: Float[torch.Tensor, "*batch 3"], end: Float[torch.Tensor, "*batch 3"]
) -> Float[torch.Tensor, "*batch 3 3"]:
    """The smallest rotation turning direction ``start`` onto direction ``end``.

    Built from the quaternion ``(a × b, 1 + a · b)`` of the unit directions, smooth everywhere but for
    opposite directions, where no smallest rotation exists: those (and zero vectors) give the identity.

    >>> R = swing_rotation(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 2.0, 0.0]))
    >>> torch.allclose(R @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    True
    """
    a = torch.nn.functional.normalize(start, dim=-1)
    b = torch.nn.functional.normalize(end, dim=-1)
    w = 1.0 + (a * b).sum(-1, keepdim=True)
    quat_xyzw = torch.cat([torch.linalg.cross(a, b), w], dim=-1)
    identity = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=a.dtype, device=a.device)
    quat_xyzw = torch.where(w > 1e-3, quat_xyzw, identity)
    return roma.unitquat_to_rotmat(torch.nn.functional.normalize(quat_xyzw, dim=-1))
