"""The studio's Gradio page: run an example or your clips, watch each stage, inspect, correct, download.

Every browser tab keeps its own state (``gr.State``: the session folder it works on); the server keeps
only the sessions on disk and one Viser viewer per opened session (``ViewerPool``), so two tabs never
share mutable state unless they open the same session. A run works in a background thread while the
page streams its progress; a cancelled run or a closed tab leaves no session behind and the server
running; a failed run shows its one-line error in the page.
"""

from __future__ import annotations

import html
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import gradio as gr
import numpy as np

from core.reconstruction import ReconstructionFormatError
from studio.background import BackgroundRun
from studio.export import export_all
from studio.inspection import association_matrix, matrix_image, overlay_grid, person_plot, person_timeseries
from studio.runs import EXAMPLES, SYNTHETIC, RunSettings, run_clips, run_example
from studio.session import Session, list_sessions
from studio.summary import summarize
from ui.viewer import SessionViewer

MY_CLIPS = "my clips (upload below)"
_BAR = 20


class ViewerPool:
    """One Viser server per opened session, each on its own port."""

    def __init__(self, host: str, first_port: int) -> None:
        self.host, self._next_port = host, first_port
        self._viewers: dict[tuple[Path, Path | None], SessionViewer] = {}
        self._lock = threading.Lock()

    def open(self, session: Session, compare: Session | None = None) -> SessionViewer:
        """The viewer of ``session`` (with ``compare``'s persons too, when given), started once."""
        with self._lock:
            key = (session.directory.resolve(), compare.directory.resolve() if compare else None)
            if key not in self._viewers:
                viewer = SessionViewer(session, self.host, self._free_port(), compare)
                print(f"3D viewer of {session.name}: {viewer.url}")
                self._viewers[key] = viewer
            return self._viewers[key]

    def _free_port(self) -> int:
        while True:
            port, self._next_port = self._next_port, self._next_port + 1
            with socket.socket() as probe:
                if probe.connect_ex((self.host, port)) != 0:
                    return port

    def close(self) -> None:
        for viewer in self._viewers.values():
            viewer.stop()


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


def _progress_markdown(stages: dict[str, float], note: str = "") -> str:
    lines = ["| stage | progress |", "|---|---|"]
    for stage, fraction in stages.items():
        filled = int(round(_BAR * min(max(fraction, 0.0), 1.0)))
        lines.append(f"| {stage} | `{'█' * filled}{'░' * (_BAR - filled)}` {fraction:.0%} |")
    return "\n".join(lines) + (f"\n\n{note}" if note else "")


def results_markdown(session: Session) -> str:
    """The results panel: persons, spans, reprojection, scale, seconds per stage, ground truth."""
    summary = summarize(session.current)
    lines = [
        f"### {html.escape(session.name)}: {summary['persons']} persons",
        f"{summary['frames']} frames at {summary['fps']:g} fps · "
        f"scale factor {summary['scale_factor']:.4f} · {len(session.edits)} edits",
        "",
        "| person | frames | span | reprojection px | per view |",
        "|---|---|---|---|---|",
    ]
    for p in summary["person"]:
        error = "n/a" if p["reprojection_error_px"] is None else f"{p['reprojection_error_px']:.2f}"
        views = ", ".join(f"{k} {v:.1f}" for k, v in p["reprojection_error_px_per_view"].items())
        lines.append(
            f"| {p['person_id']} | {p['frames']} | {p['first_frame']}–{p['last_frame']} | {error} | {views} |"
        )
    seconds = ", ".join(f"{k} {v:.2f}" for k, v in summary["stage_seconds"].items())
    lines += ["", f"seconds per stage: {seconds} (total {summary['total_seconds']:.2f})"]
    truth = session.settings.get("ground_truth")
    if truth:
        lines += ["", "**Ground truth**: " + ", ".join(f"{k} {v:.3g}" for k, v in truth.items())]
    lines += [f"- note: {html.escape(m)}" for m in summary["messages"]]
    return "\n".join(lines)


def viewer_html(viewer: SessionViewer, request: gr.Request | None, element: str = "viewer-frame") -> str:
    host = viewer.server.get_host()
    if request is not None and request.headers.get("host"):
        host = request.headers["host"].rsplit(":", 1)[0]
    url = f"http://{host}:{viewer.server.get_port()}"
    return (
        f'<p>3D viewer: <a href="{url}" target="_blank" id="viewer-link">{url}</a></p>'
        f'<iframe src="{url}" style="width:100%;height:720px;border:0" id="{element}"></iframe>'
    )


def _session_choices(root: Path) -> list[tuple[str, str]]:
    return [
        (f"{i.name} ({i.persons} persons, {i.edits} edits)", str(i.directory)) for i in list_sessions(root)
    ]


def build_app(root: Path, viewers: ViewerPool, runs: RunRegistry) -> gr.Blocks:
    """The page; ``root`` holds the sessions."""
    d = RunSettings()  # the page starts from the same defaults as the command line
    with gr.Blocks(title="CHROMM Studio") as app:
        session_dir = gr.State("")
        gr.Markdown("# CHROMM Studio\nSeveral people and their surroundings in 3D, from synchronized videos.")
        with gr.Tab("Run"):
            with gr.Row():
                with gr.Column():
                    example = gr.Dropdown([*EXAMPLES, MY_CLIPS], value=default_example(), label="Input")
                    clips = gr.File(file_count="multiple", label="Clips, one per camera", elem_id="clips")
                    calibration = gr.File(
                        label="Calibration (Qualisys, Pose2Sim, EasyMocap, COLMAP)", elem_id="calibration"
                    )
                    with gr.Accordion("Settings", open=False):
                        position_weight = gr.Slider(
                            0, 2, d.position_weight, step=0.05, label="Association: position weight"
                        )
                        pose_weight = gr.Slider(
                            0, 2, d.pose_weight, step=0.05, label="Association: pose weight"
                        )
                        ray_weight = gr.Slider(
                            0, 2, d.ray_weight, step=0.05, label="Association: keypoint-ray weight"
                        )
                        gate = gr.Slider(0.1, 3, d.gate, step=0.05, label="Association: gating threshold (m)")
                        missed = gr.Slider(
                            1,
                            60,
                            d.max_missed_frames,
                            step=1,
                            label="Tracking: frames a track survives unseen",
                        )
                        scale_mode = gr.Radio(
                            ["auto", "fixed", "off"], value=d.scale_mode, label="Scale (head–pelvis)"
                        )
                        fixed_factor = gr.Number(d.fixed_factor, label="Fixed scale factor")
                        threshold = gr.Slider(
                            0.3, 0.95, d.detector_threshold, step=0.05, label="Detector threshold"
                        )
                        frames = gr.Textbox(d.frames, label="Frames START:STOP:STEP")
                        body_model = gr.Radio(
                            ["anny", "smplx", "none"], value=d.body_model, label="Body model"
                        )
                        smplx_dir = gr.Textbox("", label="SMPL-X model folder (for smplx)")
                    with gr.Accordion("Networks (your own checkpoints; GPU when present)", open=False):
                        scene_prior = gr.Radio(
                            ["calibration", "pi3x"],
                            value=d.scene,
                            label="Scene (pi3x: no calibration)",
                        )
                        pi3x_ckpt = gr.Textbox("", label="Pi3X model.safetensors path")
                        humans = gr.Radio(["blazepose", "multihmr"], value=d.humans, label="People")
                        mhmr_ckpt = gr.Textbox("", label="Multi-HMR multiHMR_*.pt path")
                        head_depth = gr.Radio(
                            ["network", "pi3x"], value=d.head_depth, label="Multi-HMR head depth"
                        )
                    with gr.Row():
                        run = gr.Button("Run", variant="primary", elem_id="run")
                        cancel = gr.Button("Cancel")
                with gr.Column():
                    status = gr.Markdown(elem_id="status")
                    results = gr.Markdown(elem_id="results")
                    refresh_results = gr.Button("Refresh results (after edits in the viewer)")
                    export = gr.Button("Prepare downloads (joints JSON, PLY, SMPL-X npz, glb)")
                    downloads = gr.File(file_count="multiple", label="Downloads", interactive=False)
        with gr.Tab("Viewer"):
            viewer = gr.HTML("<p>Run or open a session to see it in 3D.</p>", elem_id="viewer")
        with gr.Tab("Inspect"):
            with gr.Row():
                person = gr.Dropdown([], label="Person")
                frame = gr.Slider(0, 1, 0, step=1, label="Frame")
                inspect = gr.Button("Show")
            views_image = gr.Image(
                label="All views: detections and the fused skeleton",
                interactive=False,
                elem_id="inspect-views",
            )
            with gr.Row():
                plot_image = gr.Image(
                    label="Reprojection per view, association cost, scale samples", elem_id="inspect-plot"
                )
                matrix = gr.Image(
                    label="Association cost between the tracklets of this frame", elem_id="inspect-matrix"
                )
        with gr.Tab("Sessions"):
            sessions = gr.Dropdown(_session_choices(root), label="Past sessions")
            with gr.Row():
                refresh = gr.Button("Refresh list")
                open_session = gr.Button("Open", elem_id="open-session")
            other = gr.Dropdown(_session_choices(root), label="Compare with")
            compare = gr.Button("Compare")
            comparison = gr.Markdown()
            comparison_viewer = gr.HTML()

        settings = [position_weight, pose_weight, ray_weight, gate, missed, scale_mode, fixed_factor]
        settings += [threshold, frames, body_model, smplx_dir, scene_prior, pi3x_ckpt, humans, mhmr_ckpt]
        settings += [head_depth]
        shown = [status, results, viewer, person, frame, session_dir]

        def shown_outputs(session: Session, note: str, request) -> tuple:
            opened = viewers.open(session)
            ids = [p.person_id for p in session.current.persons]
            return (
                note,
                results_markdown(session),
                viewer_html(opened, request),
                gr.update(choices=ids, value=ids[0] if ids else None),
                gr.update(
                    maximum=max(session.current.num_frames - 1, 1), value=session.current.num_frames // 2
                ),
                str(session.directory),
            )

        def start_run(
            example_name,
            clip_files,
            calibration_file,
            position,
            pose,
            ray,
            gate_value,
            missed_frames,
            scale,
            factor,
            detector,
            frame_range,
            body,
            smplx_folder,
            scene_choice,
            pi3x_path,
            humans_choice,
            mhmr_path,
            head_depth_choice,
            request: gr.Request,
        ) -> Iterator:
            run_settings = RunSettings(
                position_weight=float(position),
                pose_weight=float(pose),
                ray_weight=float(ray),
                gate=float(gate_value),
                max_missed_frames=int(missed_frames),
                scale_mode=scale,
                fixed_factor=float(factor),
                detector_threshold=float(detector),
                frames=frame_range,
                body_model=body,
                smplx_dir=smplx_folder or "",
                scene=scene_choice,
                pi3x_ckpt=(pi3x_path or "").strip(),
                humans=humans_choice,
                mhmr_ckpt=(mhmr_path or "").strip(),
                head_depth=head_depth_choice,
            )

            def work(progress):
                if example_name != MY_CLIPS:
                    return run_example(example_name, run_settings, progress)
                videos = [Path(f) for f in clip_files or []]
                calib = Path(calibration_file) if calibration_file else None
                return run_clips(videos, calib, run_settings, progress)

            job = runs.start(request.session_hash, work)
            stages: dict[str, float] = {}
            unchanged = tuple(gr.update() for _ in shown[1:])
            try:
                yield (_progress_markdown(stages, "starting…"), *unchanged)
                for stage, fraction in job.updates():
                    stages[stage] = fraction
                    yield (_progress_markdown(stages), *unchanged)
            finally:  # however this generator ends, its run ends with it
                runs.stop(request.session_hash, job)
            if job.error is not None:
                yield (f"**Run failed:** {html.escape(job.error)}", *unchanged)
                return
            if job.cancelled:  # the last word, even if a progress report raced the Cancel click's
                yield (CANCELLED, *unchanged)
                return
            result = job.result
            name = example_name if example_name != MY_CLIPS else "my clips"
            meta = {"input": name, **asdict(run_settings), "ground_truth": result.ground_truth}
            session = Session.create(root, name, result.reconstruction, meta)
            yield shown_outputs(session, _progress_markdown(stages, "done: saved as a session"), request)

        def stop_run(request: gr.Request) -> None:
            runs.stop(request.session_hash)

        def cancel_run(request: gr.Request) -> str:
            stop_run(request)
            return CANCELLED

        run_event = run.click(start_run, [example, clips, calibration, *settings], shown)
        cancel.click(cancel_run, None, status, cancels=[run_event])
        app.unload(stop_run)  # a closed tab stops its run

        def do_export(directory: str):
            if not directory:
                return None, "run or open a session first"
            session = Session.open(Path(directory))
            folder = Path(tempfile.mkdtemp(prefix="exports-", dir=session.directory))
            files, notes = export_all(session.current, folder)
            return [str(f) for f in files], "\n".join(
                f"- left out: {html.escape(n)}" for n in notes
            ) or "exported"

        export.click(do_export, session_dir, [downloads, status])
        refresh_results.click(
            lambda directory: results_markdown(Session.open(Path(directory))) if directory else "",
            session_dir,
            results,
        )

        def do_inspect(directory: str, person_id, frame_index):
            if not directory:
                return None, None, None, gr.update()
            rec = Session.open(Path(directory)).current
            ids = [p.person_id for p in rec.persons]
            if not ids:
                return None, None, None, gr.update(choices=[], value=None)
            chosen = int(person_id) if person_id is not None and int(person_id) in ids else ids[0]
            frame_index = int(frame_index)
            labels, costs = association_matrix(rec, frame_index)
            return (
                overlay_grid(rec, chosen, frame_index),
                person_plot(person_timeseries(rec, chosen), list(rec.cameras.names)),
                matrix_image(labels, costs) if labels else None,
                gr.update(choices=ids, value=chosen),  # persons change with identity edits
            )

        inspect.click(do_inspect, [session_dir, person, frame], [views_image, plot_image, matrix, person])

        def do_open(directory: str, request: gr.Request):
            if not directory:
                return ("pick a session first", *(gr.update() for _ in shown[1:]))
            try:
                session = Session.open(Path(directory))
            except (ReconstructionFormatError, OSError) as error:
                return (f"**Cannot open:** {html.escape(str(error))}", *(gr.update() for _ in shown[1:]))
            return shown_outputs(session, f"opened {html.escape(session.name)}", request)

        open_session.click(do_open, sessions, shown)
        refresh.click(
            lambda: (gr.update(choices=_session_choices(root)), gr.update(choices=_session_choices(root))),
            None,
            [sessions, other],
        )

        def do_compare(first: str, second: str, request: gr.Request):
            if not first or not second:
                return "pick two sessions", ""
            a, b = Session.open(Path(first)), Session.open(Path(second))
            viewer = viewers.open(a, compare=b)
            return compare_markdown(a, b), viewer_html(viewer, request, "compare-frame")

        compare.click(do_compare, [sessions, other], [comparison, comparison_viewer])
    return app


def compare_markdown(first: Session, second: Session) -> str:
    """Two sessions' metrics side by side."""
    columns = [first, second]
    summaries = [summarize(s.current) for s in columns]

    def mean_error(summary):
        errors = [
            p["reprojection_error_px"] for p in summary["person"] if p["reprojection_error_px"] is not None
        ]
        return f"{np.mean(errors):.2f}" if errors else "n/a"

    rows = [
        ("persons", *(s["persons"] for s in summaries)),
        ("mean reprojection px", *(mean_error(s) for s in summaries)),
        ("scale factor", *(f"{s['scale_factor']:.4f}" for s in summaries)),
        ("total seconds", *(f"{s['total_seconds']:.1f}" for s in summaries)),
        ("edits", *(len(s.edits) for s in columns)),
    ]
    for key in ("gate", "position_weight", "scale_mode", "detector_threshold", "frames", "body_model"):
        rows.append((key, *(s.settings.get(key, "") for s in columns)))
    header = f"| | {html.escape(columns[0].name)} | {html.escape(columns[1].name)} |\n|---|---|---|\n"
    return header + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)


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
    host: str = "127.0.0.1", port: int = 7860, viewer_port: int = 8080, sessions: Path | None = None
) -> None:
    """Start the studio: the page on ``port``, a 3D viewer per opened session from ``viewer_port`` on.

    Args:
        host: Interface to serve on (0.0.0.0 to reach the studio from other machines).
        port: Port of the page.
        viewer_port: First port of the 3D viewers.
        sessions: Folder of the saved sessions (default ``$CHROMM_SESSIONS_DIR`` or ./sessions).
    """
    from studio.session import sessions_root

    root = Path(sessions) if sessions else sessions_root()
    viewers, runs = ViewerPool(host, viewer_port), RunRegistry()
    app = build_app(root, viewers, runs)
    print(f"CHROMM Studio: http://{host}:{port} (sessions in {root}; 3D viewers from port {viewer_port})")
    try:
        serve(app, host, port)
    finally:
        runs.stop_all()
        viewers.close()
