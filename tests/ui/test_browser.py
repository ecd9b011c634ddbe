"""The studio in a real browser: Playwright driving Debian's Chromium (never a downloaded browser).

One studio server (the Gradio page and its Viser viewers) runs in this process for the module, with
its sessions in a temporary folder; each test opens its own browser context (its own tab state).
"""

import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from core.reconstruction import Reconstruction

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed"),
]
RUN_TIMEOUT_MS = 240_000
WAIT_MS = 120_000
"""Upper bound of any other wait: generous, as a loaded CI machine is slow, and a pass never waits it."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from studio.session import SessionStore
    from ui.app import RunRegistry, build_app, serve
    from ui.viewer_pool import ViewerPool

    root = tmp_path_factory.mktemp("sessions")
    store = SessionStore(root)
    viewers, runs = ViewerPool(store, "127.0.0.1", free_port()), RunRegistry()
    app = build_app(store, viewers, runs)
    port = free_port()
    serve(app, "127.0.0.1", port, block=False)
    yield f"http://127.0.0.1:{port}", root
    runs.stop_all()
    app.close()
    viewers.close()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


def choose(page, label: str, option: str) -> None:
    page.get_by_label(label).click()
    page.get_by_role("option", name=option).click()


def wait_for_status(page, text: str, timeout: int = WAIT_MS) -> None:
    """Wait until the status panel says ``text`` (it is in the page, even under a running event's overlay)."""
    page.wait_for_function(
        "text => (document.querySelector('#status')?.innerText ?? '').includes(text)",
        arg=text,
        timeout=timeout,
    )


def test_the_synthetic_example_end_to_end_then_an_identity_correction_in_the_viewer(studio, browser):
    url, root = studio
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    other_tab = browser.new_context().new_page()  # a second browser session, left idle
    page.goto(url)
    other_tab.goto(url)
    choose(page, "Input", "Synthetic (3 people, 4 views, ground truth)")
    page.locator("button.label-wrap", has_text="Settings").first.click()
    fixed_factor = page.get_by_label("Scale: fixed factor")
    assert not fixed_factor.is_visible()  # a mode's setting shows while that mode is chosen
    scale_mode = page.locator("#setting-scale-mode")  # other settings offer "auto" too
    scale_mode.get_by_label("fixed", exact=True).check()
    fixed_factor.wait_for(state="visible", timeout=WAIT_MS)
    scale_mode.get_by_label("auto", exact=True).check()
    fixed_factor.wait_for(state="hidden", timeout=WAIT_MS)
    gate = page.get_by_label("number input for Association: gate")
    gate.fill("1.25")
    gate.press("Enter")
    page.click("#run")
    wait_for_status(page, "done: saved as a session", RUN_TIMEOUT_MS)
    results = page.inner_text("#results")
    assert "3 persons" in results and "Ground truth" in results and "association_precision 1" in results
    status = page.inner_text("#status")
    for stage in ("tracking", "association", "fusion", "scale", "body"):
        assert stage in status
    assert other_tab.inner_text("#results").strip() == ""  # nothing leaked into the other session

    page.get_by_role("tab", name="Viewer").click()
    viewer_url = page.get_attribute("#viewer-frame", "src")
    viewer = browser.new_context(viewport={"width": 1200, "height": 800}).new_page()
    viewer.goto(viewer_url)
    viewer.wait_for_selector("canvas", timeout=WAIT_MS)
    viewer.get_by_text("Person 0").wait_for(timeout=WAIT_MS)
    screenshot = viewer.locator("canvas").first.screenshot()
    import cv2

    image = cv2.imdecode(np.frombuffer(screenshot, np.uint8), cv2.IMREAD_COLOR)
    assert image.std() > 10  # the scene is drawn, not a blank canvas

    viewer.get_by_role("button", name="Split piece at frame").click()
    viewer.get_by_text("split: persons 0 updated").wait_for(timeout=WAIT_MS)
    viewer.get_by_role("button", name="Merge person into target").click()
    viewer.get_by_text("merge: persons 0, 1 updated").wait_for(timeout=WAIT_MS)

    (session,) = [p for p in Path(root).iterdir() if (p / "session.json").is_file()]
    saved = json.loads((session / "session.json").read_text())
    assert [e["kind"] for e in saved["edits"]] == ["split", "merge"]
    current = json.loads((session / "current" / "reconstruction.json").read_text())
    assert len(current["persons"]) == 2  # person 0 merged into person 1, saved at once
    assert Reconstruction.load(session / "current").config.association.gate == 1.25  # the page's value

    page.get_by_role("tab", name="Run").click()
    page.get_by_role("button", name="Refresh results (after edits in the viewer)").click()
    page.wait_for_function(
        "() => document.querySelector('#results').innerText.includes('2 edits')", timeout=WAIT_MS
    )
    assert "2 persons" in page.inner_text("#results")

    page.get_by_role("tab", name="Inspect").click()
    page.get_by_role("button", name="Show").click()
    for element in ("#inspect-views", "#inspect-plot", "#inspect-matrix"):  # person 0 is gone: person 1
        page.locator(f"{element} img").wait_for(timeout=WAIT_MS)


def test_a_file_that_is_not_a_video_gives_a_message_and_the_server_keeps_running(studio, browser, tmp_path):
    url, _ = studio
    page = browser.new_context().new_page()
    page.goto(url)
    clips = []
    for name in ("cam1.mp4", "cam2.mp4"):
        clips.append(tmp_path / name)
        clips[-1].write_text("not a video")
    calibration = tmp_path / "Calib.toml"
    calibration.write_text("[cam_1]\nname = 'cam1'\n")
    choose(page, "Input", "my clips (upload below)")
    page.locator("#clips input[type=file]").set_input_files([str(c) for c in clips])
    page.locator("#calibration input[type=file]").set_input_files(str(calibration))
    page.click("#run")
    wait_for_status(page, "Run failed")
    assert "cam1.mp4" in page.inner_text("#status")
    page.reload()
    page.wait_for_selector("#run")  # the server is still up


def test_a_cancelled_run_saves_nothing_and_a_closed_tab_leaves_the_server_running(studio, browser):
    url, root = studio
    before = sorted(p.name for p in Path(root).iterdir())
    page = browser.new_context().new_page()
    page.goto(url)
    choose(page, "Input", "Synthetic (3 people, 4 views, ground truth)")
    page.click("#run")
    wait_for_status(page, "stage")
    page.get_by_role("button", name="Cancel").click()
    wait_for_status(page, "cancelled: no session was saved")
    closing = browser.new_context().new_page()
    closing.goto(url)
    choose(closing, "Input", "Synthetic (3 people, 4 views, ground truth)")
    closing.click("#run")
    wait_for_status(closing, "stage")
    closing.close()  # the tab goes away mid-run
    page.reload()
    page.get_by_role("tab", name="Sessions").click()
    page.get_by_role("button", name="Refresh list").click()
    assert set(before) <= {p.name for p in Path(root).iterdir()}  # past sessions intact
