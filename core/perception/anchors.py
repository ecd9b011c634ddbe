"""SSD anchors of BlazePose's pose detector (224×224 input, 2254 anchors).

The detector regresses every output row relative to one fixed anchor centre on a feature-map grid:
28×28 cells with 2 anchors (stride 8), 14×14 with 2 (stride 16), and 7×7 with 6 (the three stride-32
layers share one grid). Anchors have unit size ("fixed anchor size"), so only their centres matter.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

DETECTOR_INPUT_SIZE = 224
_STRIDES = (8, 16, 32, 32, 32)
_ANCHORS_PER_LAYER = 2  # aspect ratio 1 plus the interpolated-scale anchor


def ssd_anchor_grids(
    input_size: int = DETECTOR_INPUT_SIZE, strides: tuple[int, ...] = _STRIDES
) -> list[Float[np.ndarray, "A 2"]]:
    """Anchor centres (x, y) in [0, 1] of each grid, in the detector's output row order.

    Consecutive layers of equal stride are merged into one grid whose cells hold all their anchors. The
    grids matter on their own because a batched run lays its outputs out grid by grid.
    """
    centers = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = 1
        while layer + same < len(strides) and strides[layer + same] == stride:
            same += 1
        cells = int(np.ceil(input_size / stride))
        y, x = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = (np.stack([x, y], axis=-1).reshape(-1, 2) + 0.5) / cells
        centers.append(np.repeat(grid, same * _ANCHORS_PER_LAYER, axis=0))
        layer += same
    return centers
