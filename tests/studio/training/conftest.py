"""Rendered scenes the training tests share (rendered once per test session)."""

import pytest

from studio.training.make_data import MakeSynthetic


@pytest.fixture(scope="session")
def scenes(tmp_path_factory):
    """Four small rendered scenes (1–4 people, 2–4 cameras), as ``synthetic:DIR`` names them."""
    folder = tmp_path_factory.mktemp("scenes")
    MakeSynthetic(out=folder, scenes=4, seed=3, image_size=112, workers=1).run()
    return folder
