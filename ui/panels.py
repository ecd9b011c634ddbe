"""The page's text panels: progress bars, a session's results, two sessions compared, a viewer frame."""

from __future__ import annotations

import html

import gradio as gr
import numpy as np

from studio.session import Session
from studio.settings import PAGE_NETWORKS, PAGE_SETTINGS
from studio.summary import summarize
from ui.viewer import SessionViewer

_BAR = 20


def progress_markdown(stages: dict[str, float], note: str = "") -> str:
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
    lines += ["", *camera_markdown(summary["cameras"])]
    seconds = ", ".join(f"{k} {v:.2f}" for k, v in summary["stage_seconds"].items())
    lines += ["", f"seconds per stage: {seconds} (total {summary['total_seconds']:.2f})"]
    truth = session.settings.get("ground_truth")
    if truth:
        lines += ["", "**Ground truth**: " + ", ".join(f"{k} {v:.3g}" for k, v in truth.items())]
    lines += [f"- note: {html.escape(m)}" for m in summary["messages"]]
    return "\n".join(lines)


def camera_markdown(cameras: dict) -> list[str]:
    """The camera table (``studio.summary.camera_table``): where the cameras came from, and per camera its
    focal length, reprojection error, keypoint inliers and verdict."""
    lines = [
        f"**Cameras from {html.escape(cameras['source'])}** (scale: {html.escape(cameras['scale_from'])})",
        "",
        "| camera | focal px | reprojection px | inliers | verdict |",
        "|---|---|---|---|---|",
    ]
    for row in cameras["table"]:
        cells = [row["focal_px"], row["reprojection_px"], row["inliers"]]
        shown = ["n/a" if c is None else f"{c:g}" for c in cells]
        lines.append(
            f"| {html.escape(row['camera'])} | {' | '.join(shown)} | {html.escape(row['verdict'])} |"
        )
    return lines


def _mean_error(summary: dict) -> str:
    errors = [p["reprojection_error_px"] for p in summary["person"] if p["reprojection_error_px"] is not None]
    return f"{np.mean(errors):.2f}" if errors else "n/a"


def compare_markdown(first: Session, second: Session) -> str:
    """Two sessions' metrics side by side, and the page's settings in which their runs differ."""
    columns = [first, second]
    summaries = [summarize(s.current) for s in columns]
    rows = [
        ("persons", *(s["persons"] for s in summaries)),
        ("mean reprojection px", *(_mean_error(s) for s in summaries)),
        ("scale factor", *(f"{s['scale_factor']:.4f}" for s in summaries)),
        ("total seconds", *(f"{s['total_seconds']:.1f}" for s in summaries)),
        ("edits", *(len(s.edits) for s in columns)),
        ("frames", *(s.current.num_frames for s in columns)),
    ]
    for setting in (*PAGE_SETTINGS, *PAGE_NETWORKS):
        values = [setting.get(s.current.config) for s in columns]
        if values[0] != values[1]:
            rows.append((setting.label, *values))
    header = f"| | {html.escape(columns[0].name)} | {html.escape(columns[1].name)} |\n|---|---|---|\n"
    return header + "\n".join(f"| {a} | {html.escape(str(b))} | {html.escape(str(c))} |" for a, b, c in rows)


def viewer_html(viewer: SessionViewer, request: gr.Request | None, element: str = "viewer-frame") -> str:
    """The viewer in an iframe, at the host name the browser reached the page by."""
    host = viewer.server.get_host()
    if request is not None and request.headers.get("host"):
        host = request.headers["host"].rsplit(":", 1)[0]
    url = f"http://{host}:{viewer.server.get_port()}"
    return (
        f'<p>3D viewer: <a href="{url}" target="_blank" id="viewer-link">{url}</a></p>'
        f'<iframe src="{url}" style="width:100%;height:720px;border:0" id="{element}"></iframe>'
    )
