"""The page's Run tab is generated from the config: its widgets show each field's default and help, and
what a user sets in them is the config the run receives."""

from types import SimpleNamespace

import gradio as gr
import pytest

import ui.app
from core.errors import InputError
from core.io.video import FrameRange
from studio.runs import SYNTHETIC
from studio.session import SessionStore
from studio.settings import PAGE_NETWORKS, PAGE_SETTINGS, config_from_values
from tests.studio.test_runs import other_value
from ui.app import RunRegistry, RunTab
from ui.viewer_pool import ViewerPool

EXPOSED = (*PAGE_SETTINGS, *PAGE_NETWORKS)


@pytest.fixture
def tab(tmp_path):
    store = SessionStore(tmp_path)
    viewers = ViewerPool(store, "127.0.0.1", 0, check_seconds=3600)
    with gr.Blocks():
        yield RunTab(store, viewers, RunRegistry())
    viewers.close()


def test_each_widget_shows_its_fields_label_help_and_default(tab):
    assert list(tab.settings) == [s.path for s in EXPOSED]
    for setting in EXPOSED:
        widget = tab.settings[setting.path]
        assert (widget.label, widget.info) == (setting.label, setting.help)
        assert widget.value == ("" if setting.default is None else setting.default), setting.path
    assert not tab.settings["body.smplx.model_dir"].visible  # shown once smplx is chosen
    assert tab.settings["body.model"].visible


def test_the_pages_settings_reach_the_runs_config(tab, monkeypatch):
    received = []

    def run_example(name, config, frames, progress):
        received.append((name, config, frames))
        raise InputError("recorded")

    monkeypatch.setattr(ui.app, "run_example", run_example)
    values = {setting.path: other_value(setting) for setting in EXPOSED}
    data = {tab.settings[path]: value for path, value in values.items()}
    data |= {tab.example: SYNTHETIC, tab.clips: None, tab.calibration: None, tab.frames: "5:60:2"}
    updates = list(tab.start(data, SimpleNamespace(session_hash="tab")))
    assert "Run failed:** recorded" in updates[-1][0]
    ((name, config, frames),) = received
    assert (name, frames) == (SYNTHETIC, FrameRange(5, 60, 2))
    assert config == config_from_values(values)
    for setting in EXPOSED:
        assert setting.get(config) == setting.parse(values[setting.path]) != setting.default


def test_a_bad_frame_range_is_refused_before_the_run(tab):
    data = {widget: widget.value for widget in tab.settings.values()}
    data |= {tab.example: SYNTHETIC, tab.clips: None, tab.calibration: None, tab.frames: "a:b"}
    (update,) = tab.start(data, SimpleNamespace(session_hash="tab"))
    assert "Not started:** frame range" in update[0] and "whole numbers" in update[0]
