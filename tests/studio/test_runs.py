"""The page's settings become the run's configuration, network choices included."""

from dataclasses import replace
from pathlib import Path

import pytest

from core.config import ReconstructionConfig
from core.errors import InputError
from core.nets.config import NetworksConfig
from studio.assets import examples_directory
from studio.runs import RunSettings, run_clips


def test_default_settings_give_the_default_networks():
    assert RunSettings().config().networks == ReconstructionConfig().networks


def test_network_settings_reach_the_config():
    settings = RunSettings(
        scene="pi3x",
        pi3x_ckpt="/models/model.safetensors",
        humans="multihmr",
        mhmr_ckpt="/models/multiHMR_896_L.pt",
        head_depth="pi3x",
    )
    expected = replace(
        NetworksConfig(),
        scene="pi3x",
        pi3x_ckpt=Path("/models/model.safetensors"),
        humans="multihmr",
        mhmr_ckpt=Path("/models/multiHMR_896_L.pt"),
        head_depth="pi3x",
    )
    assert settings.config().networks == expected


@pytest.mark.skipif(
    not (examples_directory() / "Demo_MultiPerson").is_dir(), reason="python -m studio assets"
)
def test_clips_without_calibration_need_pi3x_and_its_checkpoint(tmp_path, monkeypatch):
    videos = sorted((examples_directory() / "Demo_MultiPerson" / "videos").glob("*.mp4"))
    monkeypatch.setenv("CHROMM_CACHE_DIR", str(tmp_path))  # no checkpoint to be found
    with pytest.raises(InputError, match="no calibration given"):
        run_clips(videos, None, RunSettings(frames="0:1"), lambda stage, fraction: None)
    with pytest.raises(InputError, match="Pi3X checkpoint"):
        run_clips(videos, None, RunSettings(frames="0:1", scene="pi3x"), lambda stage, fraction: None)
