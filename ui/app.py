"""The studio's Gradio page: run an example or your clips, watch each stage, inspect, correct, download.

The page is an adapter over ``studio``: each callback reads its widgets, calls one ``studio`` function
and shows the result. Every browser tab keeps its own state (``gr.State``: the session folder it works
on); the server keeps one ``SessionStore`` (one ``Session`` per folder, shared by every callback and
viewer) and a ``ViewerPool`` that stops the viewers nobody looks at. A run works in a background thread
while the page streams its progress; a cancelled run or a closed tab leaves no session behind and the
server running; a failed run shows its one-line error in the page.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr

from core.errors import InputError
from core.io.video import FrameRange
from core.reconstruction import ReconstructionFormatError
from studio.background import BackgroundRun
from studio.cluster_runs import ClusterRuns, LocalRuns
from studio.downloads import prepare_downloads
from studio.inspection import (
    association_matrix,
    matrix_image,
    overlay_grid,
    person_plot,
    person_timeseries,
    rejected_joints_markdown,
)
from studio.runs import EXAMPLES, SYNTHETIC, save_run
from studio.session import SessionStore
from studio.settings import ALL_FRAMES, PAGE_NETWORKS, PAGE_SETTINGS, Setting, config_from_values
from ui.panels import compare_markdown, progress_markdown, results_markdown, viewer_html
from ui.viewer_pool import ViewerPool

MY_CLIPS = "my clips (upload below)"
CANCELLED = "cancelled: no session was saved"


class RunRegistry:
    """The run of each browser session (by Gradio's session hash), so that a Cancel click, a closed tab
    or the server's shutdown can stop it: Gradio's own cancel only abandons the event's generator."""

    def __init__(self) -> None:
        self._runs: dict[str, BackgroundRun] = {}
        self._lock = threading.Lock()

    def start(self, key: str, work) -> BackgroundRun:
        with self._lock:
            if key in self._runs:
                self._runs[key].cancel()
            job = self._runs[key] = BackgroundRun(work)
            return job

    def stop(self, key: str, job: BackgroundRun | None = None) -> None:
        """Cancel ``key``'s run (only if it is ``job``, when given)."""
        with self._lock:
            if key in self._runs and job in (None, self._runs[key]):
                self._runs.pop(key).cancel()

    def stop_all(self, timeout: float = 60.0) -> None:
        with self._lock:
            jobs, self._runs = list(self._runs.values()), {}
        for job in jobs:
            job.cancel()
        for job in jobs:
            job.join(timeout)


def setting_widget(setting: Setting) -> gr.components.Component:
    """The widget of a config field: its label, its docstring as help, its default as value."""
    shown = setting.shown_when is None or Setting(setting.shown_when[0]).default == setting.shown_when[1]
    common: dict[str, Any] = {
        "label": setting.label,
        "info": setting.help,
        "visible": shown,
        "elem_id": "setting-" + setting.path.replace(".", "-").replace("_", "-"),
    }
    kind, default = setting.kind, setting.default
    if kind == "choice":
        return gr.Radio(list(setting.choices), value=default, **common)
    if kind == "flag":
        return gr.Checkbox(default, **common)
    if kind in ("path", "optional number", "text"):
        return gr.Textbox("" if default is None else str(default), **common)
    if kind == "numbers":
        return gr.Textbox(", ".join(f"{n:g}" for n in default), **common)
    if setting.step is not None:
        return gr.Slider(setting.minimum, setting.maximum, default, step=setting.step, **common)
    return gr.Number(default, precision=0 if kind == "integer" else None, **common)


def _visible_when(value: str):
    return lambda chosen: gr.update(visible=chosen == value)


@dataclass(frozen=True)
class Shown:
    """What a finished run or an opened session updates, on several tabs."""

    status: gr.Markdown
    results: gr.Markdown
    viewer: gr.HTML
    person: gr.Dropdown
    frame: gr.Slider
    session_dir: gr.State

    @property
    def outputs(self) -> list:
        return [self.status, self.results, self.viewer, self.person, self.frame, self.session_dir]

    @staticmethod
    def note(text: str) -> tuple:
        """Only the status line changes."""
        return (text, *(gr.update() for _ in range(5)))

    @staticmethod
    def session(viewers: ViewerPool, directory: Path, request: gr.Request, note: str | None = None) -> tuple:
        """The session in ``directory`` on every tab: results, its viewer, its persons and frames."""
        viewer = viewers.open(directory, shown_by=request.session_hash)
        session = viewer.session
        ids = [p.person_id for p in session.current.persons]
        frames = session.current.num_frames
        return (
            note or f"opened {html.escape(session.name)}",
            results_markdown(session),
            viewer_html(viewer, request),
            gr.update(choices=ids, value=ids[0] if ids else None),
            gr.update(maximum=max(frames - 1, 1), value=frames // 2),
            str(session.directory),
        )


class RunTab:
    """Input, settings (generated from ``PAGE_SETTINGS`` and ``PAGE_NETWORKS``), run and cancel,
    progress, results and downloads."""

    def __init__(
        self, store: SessionStore, viewers: ViewerPool, runs: RunRegistry, runner: LocalRuns | ClusterRuns
    ) -> None:
        self.store, self.viewers, self.runs, self.runner = store, viewers, runs, runner
        with gr.Row():
            with gr.Column():
                self.example = gr.Dropdown([*EXAMPLES, MY_CLIPS], value=default_example(), label="Input")
                self.clips = gr.File(file_count="multiple", label="Clips, one per camera", elem_id="clips")
                self.calibration = gr.File(
                    label="Calibration, optional (Qualisys, Pose2Sim, EasyMocap, COLMAP); "
                    "without one, the cameras come from the people",
                    elem_id="calibration",
                )
                with gr.Accordion("Settings", open=False):
                    self.frames = gr.Textbox(
                        ALL_FRAMES, label="Frames START:STOP:STEP", info=FrameRange.__doc__
                    )
                    self.settings = {s.path: setting_widget(s) for s in PAGE_SETTINGS}
                with gr.Accordion("Networks (your own checkpoints; GPU when present)", open=False):
                    self.settings |= {s.path: setting_widget(s) for s in PAGE_NETWORKS}
                with gr.Row():
                    self.run = gr.Button("Run", variant="primary", elem_id="run")
                    self.cancel = gr.Button("Cancel")
            with gr.Column():
                self.status = gr.Markdown(elem_id="status")
                self.results = gr.Markdown(elem_id="results")
                self.refresh = gr.Button("Refresh results (after edits in the viewer)")
                self.export = gr.Button("Prepare downloads (joints JSON, PLY, SMPL-X npz, glb)")
                self.downloads = gr.File(file_count="multiple", label="Downloads", interactive=False)

    def wire(self, app: gr.Blocks, shown: Shown) -> None:
        for setting in (*PAGE_SETTINGS, *PAGE_NETWORKS):
            if setting.shown_when is not None:
                path, value = setting.shown_when
                self.settings[path].change(
                    _visible_when(value), self.settings[path], self.settings[setting.path]
                )
        inputs = {self.example, self.clips, self.calibration, self.frames, *self.settings.values()}
        run_event = self.run.click(self.start, inputs, shown.outputs)
        self.cancel.click(self.stop, None, self.status, cancels=[run_event])
        app.unload(self.closed)
        self.export.click(self.prepare_downloads, shown.session_dir, [self.downloads, self.status])
        self.refresh.click(self.refresh_results, shown.session_dir, self.results)

    def start(self, data: dict, request: gr.Request) -> Iterator[tuple]:
        """Run with the widgets' settings, streaming the progress; the finished run saved as a session."""
        try:
            config = config_from_values({path: data[widget] for path, widget in self.settings.items()})
            frames = FrameRange.parse(data[self.frames])
        except InputError as error:
            yield Shown.note(f"**Not started:** {html.escape(str(error))}")
            return
        example, clips, calibration = data[self.example], data[self.clips], data[self.calibration]
        if example == MY_CLIPS:
            videos = [Path(f) for f in clips or []]
            calib = Path(calibration) if calibration else None
            work = partial(self.runner.run_clips, videos, calib, config, frames)
        else:
            work = partial(self.runner.run_example, example, config, frames)
        job = self.runs.start(request.session_hash, work)
        stages: dict[str, float] = {}
        try:
            yield Shown.note(progress_markdown(stages, "starting…"))
            for stage, fraction in job.updates():
                stages[stage] = fraction
                yield Shown.note(progress_markdown(stages))
        finally:  # however this generator ends, its run ends with it
            self.runs.stop(request.session_hash, job)
        if job.error is not None:
            yield Shown.note(f"**Run failed:** {html.escape(job.error)}")
        elif job.cancelled:  # the last word, even if a progress report raced the Cancel click's
            yield Shown.note(CANCELLED)
        else:
            session = save_run(self.store, example if example != MY_CLIPS else "my clips", job.result, frames)
            done = progress_markdown(stages, "done: saved as a session")
            yield Shown.session(self.viewers, session.directory, request, done)

    def stop(self, request: gr.Request) -> str:
        self.runs.stop(request.session_hash)
        return CANCELLED

    def closed(self, request: gr.Request) -> None:
        """A closed tab stops its run and lets its viewers go."""
        self.runs.stop(request.session_hash)
        self.viewers.leave(request.session_hash)

    def prepare_downloads(self, directory: str) -> tuple:
        if not directory:
            return None, "run or open a session first"
        files, notes = prepare_downloads(self.store.open(Path(directory)))
        left_out = "\n".join(f"- left out: {html.escape(n)}" for n in notes)
        return [str(f) for f in files], left_out or "exported"

    def refresh_results(self, directory: str) -> str:
        return results_markdown(self.store.open(Path(directory))) if directory else ""


class InspectTab:
    """One person at one frame: every view's detections and the fused skeleton, time series, costs."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        with gr.Row():
            self.person = gr.Dropdown([], label="Person")
            self.frame = gr.Slider(0, 1, 0, step=1, label="Frame")
            self.show_button = gr.Button("Show")
        self.views = gr.Image(
            label="All views: detections and the fused skeleton", interactive=False, elem_id="inspect-views"
        )
        with gr.Row():
            self.plot = gr.Image(
                label="Reprojection per view, association cost, scale samples", elem_id="inspect-plot"
            )
            self.matrix = gr.Image(
                label="Association cost between the tracklets of this frame", elem_id="inspect-matrix"
            )
        self.rejected = gr.Markdown(elem_id="inspect-rejected")

    def wire(self, session_dir: gr.State) -> None:
        outputs = [self.views, self.plot, self.matrix, self.person, self.rejected]
        self.show_button.click(self.show, [session_dir, self.person, self.frame], outputs)

    def show(self, directory: str, person_id, frame_index) -> tuple:
        if not directory:
            return None, None, None, gr.update(), ""
        rec = self.store.open(Path(directory)).current
        ids = [p.person_id for p in rec.persons]
        if not ids:
            return None, None, None, gr.update(choices=[], value=None), ""
        chosen = int(person_id) if person_id is not None and int(person_id) in ids else ids[0]
        labels, costs = association_matrix(rec, int(frame_index))
        return (
            overlay_grid(rec, chosen, int(frame_index)),
            person_plot(person_timeseries(rec, chosen), list(rec.cameras.names)),
            matrix_image(labels, costs) if labels else None,
            gr.update(choices=ids, value=chosen),  # persons change with identity edits
            rejected_joints_markdown(rec, chosen, int(frame_index)),
        )


class SessionsTab:
    """Past sessions: open one, or compare two side by side."""

    def __init__(self, store: SessionStore, viewers: ViewerPool) -> None:
        self.store, self.viewers = store, viewers
        self.sessions = gr.Dropdown(self.choices(), label="Past sessions")
        with gr.Row():
            self.refresh = gr.Button("Refresh list")
            self.open = gr.Button("Open", elem_id="open-session")
        self.other = gr.Dropdown(self.choices(), label="Compare with")
        self.compare_button = gr.Button("Compare")
        self.comparison = gr.Markdown()
        self.comparison_viewer = gr.HTML()

    def wire(self, shown: Shown) -> None:
        self.open.click(self.open_session, self.sessions, shown.outputs)
        self.refresh.click(self.refresh_lists, None, [self.sessions, self.other])
        outputs = [self.comparison, self.comparison_viewer]
        self.compare_button.click(self.compare, [self.sessions, self.other], outputs)

    def choices(self) -> list[tuple[str, str]]:
        return [
            (f"{i.name} ({i.persons} persons, {i.edits} edits)", str(i.directory)) for i in self.store.list()
        ]

    def refresh_lists(self) -> tuple:
        return gr.update(choices=self.choices()), gr.update(choices=self.choices())

    def open_session(self, directory: str, request: gr.Request) -> tuple:
        if not directory:
            return Shown.note("pick a session first")
        try:
            return Shown.session(self.viewers, Path(directory), request)
        except (ReconstructionFormatError, OSError) as error:
            return Shown.note(f"**Cannot open:** {html.escape(str(error))}")

    def compare(self, first: str, second: str, request: gr.Request) -> tuple[str, str]:
        if not first or not second:
            return "pick two sessions", ""
        viewer = self.viewers.open(Path(first), Path(second), shown_by=request.session_hash)
        table = compare_markdown(self.store.open(Path(first)), self.store.open(Path(second)))
        return table, viewer_html(viewer, request, "compare-frame")


def build_app(
    store: SessionStore, viewers: ViewerPool, runs: RunRegistry, runner: LocalRuns | ClusterRuns | None = None
) -> gr.Blocks:
    """The page, one builder per tab; ``store`` holds the sessions, ``viewers`` their 3D viewers,
    ``runner`` does the runs (default: in this process)."""
    runner = runner or LocalRuns()
    where = f" Runs go to the Ray cluster at {runner.address}." if isinstance(runner, ClusterRuns) else ""
    with gr.Blocks(title="CHROMM Studio") as app:
        session_dir = gr.State("")
        gr.Markdown(
            "# CHROMM Studio\nSeveral people and their surroundings in 3D, from synchronized videos." + where
        )
        with gr.Tab("Run"):
            run = RunTab(store, viewers, runs, runner)
        with gr.Tab("Viewer"):
            viewer = gr.HTML("<p>Run or open a session to see it in 3D.</p>", elem_id="viewer")
        with gr.Tab("Inspect"):
            inspect = InspectTab(store)
        with gr.Tab("Sessions"):
            sessions = SessionsTab(store, viewers)
        shown = Shown(run.status, run.results, viewer, inspect.person, inspect.frame, session_dir)
        run.wire(app, shown)
        inspect.wire(session_dir)
        sessions.wire(shown)
    return app


def default_example() -> str:
    """The Pose2Sim demo when its clips are installed, else the synthetic scene."""
    from studio.assets import examples_directory

    return EXAMPLES[0] if (examples_directory() / EXAMPLES[0] / "videos").is_dir() else SYNTHETIC


CONCURRENT_RUNS = 4
"""Browser sessions whose runs (or other events of one kind) proceed at once; more wait in Gradio's queue."""


def serve(app: gr.Blocks, host: str, port: int, block: bool = True) -> None:
    """Serve the page (``block=False``: in the background, as the tests do)."""
    app.queue(default_concurrency_limit=CONCURRENT_RUNS).launch(
        server_name=host, server_port=port, show_error=True, prevent_thread_lock=not block, quiet=not block
    )


def main(
    host: str = "127.0.0.1",
    port: int = 7860,
    viewer_port: int = 8080,
    sessions: Path | None = None,
    ray_address: str | None = None,
) -> None:
    """Start the studio: the page on ``port``, a 3D viewer per opened session from ``viewer_port`` on.

    Args:
        host: Interface to serve on (0.0.0.0 to reach the studio from other machines).
        port: Port of the page.
        viewer_port: First port of the 3D viewers.
        sessions: Folder of the saved sessions (default ``$CHROMM_SESSIONS_DIR`` or ./sessions).
        ray_address: A Ray cluster (auto, HOST:PORT of `ray start --head`, ray://HOST:10001) that does the
            page's runs, on a worker with a GPU where a run uses a network; the clips travel with each
            run. Default: runs in this process.
    """
    from studio.session import sessions_root

    runner = LocalRuns() if ray_address is None else ClusterRuns.join(ray_address)
    store = SessionStore(Path(sessions) if sessions else sessions_root())
    viewers, runs = ViewerPool(store, host, viewer_port), RunRegistry()
    app = build_app(store, viewers, runs, runner)
    print(
        f"CHROMM Studio: http://{host}:{port} (sessions in {store.root}; 3D viewers from port {viewer_port})"
    )
    try:
        serve(app, host, port)
    finally:
        runs.stop_all()
        viewers.close()
