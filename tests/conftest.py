"""Shared fixtures: one small reconstructed synthetic scene per test session."""

import pytest

from core.pipeline import reconstruct_from_observations
from core.synthetic import SyntheticConfig, make_scene


@pytest.fixture(scope="session")
def small_scene():
    return make_scene(SyntheticConfig(persons=3, views=3, frames=60, seed=1, scale_error=0.8))


@pytest.fixture(scope="session")
def small_reconstruction(small_scene):
    scene = small_scene
    return reconstruct_from_observations(
        scene.observations, scene.cameras, scene.config.frames, scene.config.fps
    )
