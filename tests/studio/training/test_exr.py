"""The OpenEXR channel reader: a round trip through the OpenEXR library, and clear refusals."""

import numpy as np
import pytest

from core.errors import InputError
from studio.training.exr import read_exr_channel, write_exr_channel


def test_a_depth_channel_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(0)
    depth = rng.uniform(50, 5000, (37, 23)).astype(np.float32)
    depth[3, 4] = np.inf
    path = write_exr_channel(tmp_path / "d.exr", "Depth", depth)
    np.testing.assert_array_equal(read_exr_channel(path, "Depth"), depth)


def test_refusals_name_the_file_and_the_reason(tmp_path):
    path = write_exr_channel(tmp_path / "d.exr", "Y", np.ones((2, 3), np.float32))
    with pytest.raises(InputError, match=r"d\.exr: no 'Depth' channel \(it has Y\)"):
        read_exr_channel(path, "Depth")
    (tmp_path / "x.exr").write_bytes(b"not an image")
    with pytest.raises(InputError, match=r"x\.exr: not a readable EXR image"):
        read_exr_channel(tmp_path / "x.exr", "Depth")
    with pytest.raises(InputError, match=r"missing\.exr: not a readable EXR image"):
        read_exr_channel(tmp_path / "missing.exr", "Depth")
