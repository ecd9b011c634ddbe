"""The small exact run the viewer and pool tests open."""

import pytest

from core.engine.pipeline import reconstruct_from_observations
from tests.core.engine.scenes import exact_scene


@pytest.fixture(scope="module")
def run():
    """Two persons seen by three cameras over 12 frames, reconstructed."""
    scene = exact_scene(persons=2, views=3, frames=12, seed=3)
    return reconstruct_from_observations(
        scene.observations, scene.cameras, scene.config.frames, scene.config.fps
    )
