"""Where a person is: the head from a depth and its pixel, and the pelvis refined within its patch.

The paper's ablation (translation error): a residual on Pi3X's metric depth at the head pixel, 107.5 mm;
the network's own depth, 133.8 mm; a regressed translation, 196.4 mm. All three are here, so that the
ablation can be trained and measured. Pixels and intrinsics are those of one image (Multi-HMR's square);
the head position is in that camera's frame, metres.
"""

from __future__ import annotations

from typing import Literal

import torch
from jaxtyping import Float

PATCH_SIZE = 14

TranslationMode = Literal["depth_residual", "direct_depth", "direct_translation"]


def head_positions(
    mode: TranslationMode,
    head: Float[torch.Tensor, "P 2"],
    K: Float[torch.Tensor, "P 3 3"],
    coarse_depth: Float[torch.Tensor, " P"],
    regressed: Float[torch.Tensor, "P 3"],
) -> Float[torch.Tensor, "P 3"]:
    """Each head's camera-frame position.

    ``depth_residual``: depth ``d = coarse_depth + regressed[:, 0]`` along the head pixel's ray,
    ``d · K⁻¹ [u, v, 1]``; ``direct_depth``: ``d = regressed[:, 0]``; ``direct_translation``: ``regressed``
    itself. Edge-based pixels (Multi-HMR's square: pixel ``i`` spans ``[i, i + 1]``) as its ``K`` expects.
    """
    if mode == "direct_translation":
        return regressed
    depth = regressed[:, 0] + (coarse_depth if mode == "depth_residual" else 0.0)
    homogeneous = torch.cat([head, torch.ones_like(head[:, :1])], dim=-1)
    ray = torch.linalg.solve(K, homogeneous[..., None])[..., 0]  # z = 1
    return depth[:, None] * ray


def refined_pelvis(
    coarse: Float[torch.Tensor, "P 2"], offset: Float[torch.Tensor, "P 2"], size: int
) -> tuple[Float[torch.Tensor, "P 2"], torch.Tensor]:
    """The pelvis refined by the token of the patch that holds the coarse one: ``coarse + offset · 14`` (an
    offset in patches, read from that patch's token, so that a zero offset keeps the coarse point and the
    refinement can only start from it), or the coarse point where that lands outside the ``size × size``
    square. Returns the points and which were refined."""
    fine = coarse + offset * PATCH_SIZE
    inside = ((fine >= 0) & (fine <= size)).all(dim=-1)
    return torch.where(inside[:, None], fine, coarse), inside


def pelvis_cells(coarse: Float[torch.Tensor, "P 2"], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of the patch holding each coarse pelvis (clamped into the square), whose token
    regresses the refinement."""
    cell = torch.floor(coarse.detach() / PATCH_SIZE).clamp(0, size // PATCH_SIZE - 1).long()
    return cell[:, 1], cell[:, 0]
