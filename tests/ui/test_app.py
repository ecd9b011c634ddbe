"""The page's Run tab is generated from the config: its widgets show each field's default and help, and
what a user sets in them is the config the run receives."""

import dataclasses
from types import SimpleNamespace

import gradio as gr
import pytest

from core.cameras.report import CalibrationReport, CameraEstimate
from core.errors import InputError
from core.io.video import FrameRange
from studio.cluster_runs import LocalRuns
from studio.runs import SYNTHETIC
from studio.session import SessionStore
from studio.settings import ALL_FRAMES, PAGE_NETWORKS, PAGE_SETTINGS, Setting, config_from_values
from tests.studio.test_runs import other_value
from ui.app import MY_CLIPS, RunRegistry, RunTab
from ui.panels import results_markdown
from ui.viewer_pool import ViewerPool

EXPOSED = (*PAGE_SETTINGS, *PAGE_NETWORKS)


@pytest.fixture
def tab(tmp_path):
    store = SessionStore(tmp_path)
    viewers = ViewerPool(store, "127.0.0.1", 0, check_seconds=3600)
    with gr.Blocks():
        yield RunTab(store, viewers, RunRegistry(), LocalRuns())
    viewers.close()


def test_each_widget_shows_its_fields_label_help_and_default(tab):
    assert list(tab.settings) == [s.path for s in EXPOSED]
    for setting in EXPOSED:
        widget = tab.settings[setting.path]
        assert (widget.label, widget.info) == (setting.label, setting.help)
        shown = "" if setting.default in (None, ()) else setting.default
        assert widget.value == shown, setting.path
    assert not tab.settings["body.smplx.model_dir"].visible  # shown once smplx is chosen
    assert tab.settings["body.model"].visible


def test_the_pages_settings_reach_the_runs_config(tab, monkeypatch):
    received = []

    def run_example(name, config, frames, progress):
        received.append((name, config, frames))
        raise InputError("recorded")

    monkeypatch.setattr(tab.runner, "run_example", run_example)
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


def test_camera_hints_parse_from_text_and_bad_ones_are_named():
    focal, height = Setting("cameras.hints.focal_px"), Setting("cameras.hints.height_m")
    assert focal.parse("1400, 1380.5") == (1400.0, 1380.5) and focal.parse(" ") == ()
    assert height.parse("1.82") == 1.82 and height.parse("") is None
    with pytest.raises(InputError, match=r"Hints: focal px: 'abc' is not a number"):
        focal.parse("1400, abc")
    with pytest.raises(InputError, match=r"Hints: height m: '-1' is not a positive number"):
        height.parse("-1")
    with pytest.raises(InputError, match=r"Hints: height m: '1.7 1.8' is not one number"):
        height.parse("1.7 1.8")


def test_my_clips_run_without_a_calibration_and_a_bad_hint_stops_before_the_run(tab, monkeypatch):
    received = []

    def run_clips(videos, calibration, config, frames, progress):
        received.append((videos, calibration, config.cameras))
        raise InputError("recorded")

    monkeypatch.setattr(tab.runner, "run_clips", run_clips)
    data = {widget: widget.value for widget in tab.settings.values()}
    data |= {tab.example: MY_CLIPS, tab.clips: ["/clips/a.mp4", "/clips/b.mp4"], tab.calibration: None}
    data |= {tab.frames: ALL_FRAMES, tab.settings["cameras.hints.height_m"]: "1.75"}
    list(tab.start(data, SimpleNamespace(session_hash="tab")))
    ((videos, calibration, cameras),) = received
    assert calibration is None and cameras.source == "auto" and cameras.hints.height_m == 1.75
    data[tab.settings["cameras.hints.fov_deg"]] = "wide"
    (update,) = tab.start(data, SimpleNamespace(session_hash="tab"))
    assert "Not started:** Hints: fov deg: &#x27;wide&#x27; is not a number" in update[0]


def test_the_results_panel_shows_the_camera_table(run, tmp_path):
    report = CalibrationReport(
        "people",
        (
            CameraEstimate("cam00", True, focal_px=1402.3, reprojection_px=2.5, inliers=812),
            CameraEstimate("cam01", True, focal_px=1391.0, reprojection_px=3.0, inliers=640),
            CameraEstimate("cam02", False, reason="sees nobody"),
        ),
        scale_from="body priors",
    )
    session = SessionStore(tmp_path).create("cams", dataclasses.replace(run, calibration=report))
    text = results_markdown(session)
    assert "**Cameras from people** (scale: body priors)" in text
    assert "| cam00 | 1402.3 | 2.5 | 812 | placed |" in text
    assert "| cam02 | n/a | n/a | 0 | not placed: sees nobody |" in text
