"""The page's settings become the run's configuration; a finished run becomes a session."""

from pathlib import Path

import pytest

from core.config import ReconstructionConfig
from core.engine.scale import ScaleConfig
from core.errors import InputError
from core.io.video import FrameRange
from studio.assets import examples_directory
from studio.runs import SYNTHETIC, run_clips, run_example, save_run
from studio.session import SessionStore
from studio.settings import PAGE_NETWORKS, PAGE_SETTINGS, Setting, config_from_values, field_docstrings

EXPOSED = (*PAGE_SETTINGS, *PAGE_NETWORKS)


def other_value(setting: Setting):
    """A value of ``setting`` other than its default, as its widget would give it."""
    default = setting.default
    if setting.kind == "choice":
        return next(c for c in setting.choices if c != default)
    if setting.kind == "path":
        return f"/models/{setting.path}"
    if setting.kind == "text":
        return f"  other {setting.path} "
    if setting.kind == "flag":
        return not default
    if setting.kind == "optional number":
        return "42.5"
    if setting.kind == "numbers":
        return "1400, 1380.5"
    if setting.minimum is not None:
        return float(setting.maximum if default != setting.maximum else setting.minimum)
    return default + 1.5


def test_settings_read_their_help_and_default_from_the_config():
    gate = Setting("association.gate")
    assert gate.help.startswith("Largest mean cost (metres)") and gate.default == 1.0
    assert Setting("body.model").choices == ("anny", "smplx", "none")
    assert set(field_docstrings(ScaleConfig)) == {
        "mode",
        "fixed_factor",
        "iterations",
        "outlier_threshold",
        "min_pixel_length",
    }
    with pytest.raises(InputError, match="AssociationConfig has no field 'gat'"):
        config_from_values({"association.gat": 1.0})


def test_every_exposed_setting_reaches_the_config_and_nothing_else_changes():
    values = {setting.path: other_value(setting) for setting in EXPOSED}
    config = config_from_values(values)
    for setting in EXPOSED:
        assert setting.get(config) == setting.parse(values[setting.path]) != setting.default, setting.path
    assert isinstance(Setting("networks.pi3x_ckpt").get(config), Path)
    assert isinstance(Setting("tracking.max_missed_frames").get(config), int)
    back = config_from_values({s.path: s.default for s in EXPOSED}, base=config)
    assert back == ReconstructionConfig()


def test_widget_values_are_checked_against_the_field():
    assert config_from_values({"networks.mhmr_ckpt": "  "}).networks.mhmr_ckpt is None
    with pytest.raises(InputError, match="Scale: mode: 'sometimes' is not one of auto, fixed, off"):
        config_from_values({"scale.mode": "sometimes"})
    with pytest.raises(InputError, match="not a whole number"):
        config_from_values({"tracking.max_missed_frames": 2.5})


def test_a_synthetic_run_is_saved_as_a_session_with_its_config(tmp_path):
    config = config_from_values({"body.model": "none", "association.gate": 1.2})
    result = run_example(SYNTHETIC, config, FrameRange(0, 40), lambda stage, fraction: None)
    assert result.reconstruction.num_frames == 40
    store = SessionStore(tmp_path)
    session = save_run(store, SYNTHETIC, result, FrameRange(0, 40))
    (info,) = store.list()
    assert info.directory == session.directory and info.persons == 3
    reopened = SessionStore(tmp_path).open(session.directory)
    assert reopened.current.config == config
    assert reopened.settings["ground_truth"] == result.ground_truth
    assert reopened.settings["frames"] == {"start": 0, "stop": 40, "step": 1}


@pytest.mark.skipif(
    not (examples_directory() / "Demo_MultiPerson").is_dir(), reason="python -m studio assets"
)
def test_camera_sources_that_cannot_work_are_refused_before_any_work(tmp_path, monkeypatch):
    videos = sorted((examples_directory() / "Demo_MultiPerson" / "videos").glob("*.mp4"))
    monkeypatch.setenv("CHROMM_CACHE_DIR", str(tmp_path))  # no checkpoint to be found
    frames, progress = FrameRange(0, 1), lambda stage, fraction: None
    with pytest.raises(InputError, match="--cameras file needs a calibration"):
        run_clips(videos, None, config_from_values({"cameras.source": "file"}), frames, progress)
    both = config_from_values({"cameras.source": "people", "networks.scene": "pi3x"})
    with pytest.raises(InputError, match="use --cameras pi3x"):
        run_clips(videos, None, both, frames, progress)
    pi3x = config_from_values({"networks.scene": "pi3x"})
    with pytest.raises(InputError, match="Pi3X checkpoint"):
        run_clips(videos, None, pi3x, frames, progress)
