"""Device parametrisation shared by the tests: the CPU always, CUDA as a ``gpu`` test when present."""

import pytest
import torch

CPU_AND_CUDA = pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")],
        ),
    ],
)
