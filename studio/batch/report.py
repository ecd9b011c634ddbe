"""The batch's table (``batch.csv``, ``batch.json``) and plot (``batch.png``): one row per sequence."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from studio.batch.outputs import read_record, status
from studio.batch.sequences import BatchSequence
from studio.export import write_atomically

TABLE = "batch"
COLUMNS = ("sequence", "status", "persons", "frames", "reprojection_px", "scale_factor", "seconds", "error")


def table_rows(out: Path, sequences: list[BatchSequence]) -> list[dict]:
    """Per sequence: status, persons, frames, mean reprojection, scale, seconds (total and per stage),
    and the error of a failed one; from what its folder holds."""
    rows = []
    for sequence in sequences:
        state = status(out, sequence.name)
        row: dict = {"sequence": sequence.name, "status": state or "not run"}
        if state is not None:
            record = read_record(out, sequence.name)
            row["seconds"] = record.get("seconds")
            if state == "failed":
                row["error"] = f"{record['error']['type']}: {record['error']['message']}"
            else:
                errors = [p["reprojection_error_px"] for p in record["person"] if p["reprojection_error_px"]]
                row |= {
                    "persons": record["persons"],
                    "frames": record["frames"],
                    "reprojection_px": round(float(np.mean(errors)), 2) if errors else None,
                    "scale_factor": round(record["scale_factor"], 4),
                    **{f"seconds_{stage}": s for stage, s in record["stage_seconds"].items()},
                }
        rows.append(row)
    return rows


def write_table(out: Path, rows: list[dict]) -> list[Path]:
    """``batch.csv`` and ``batch.json`` (each written whole), and ``batch.png`` when matplotlib is
    installed; the files written."""
    stages = sorted({k for row in rows for k in row if k.startswith("seconds_")})
    columns = [*COLUMNS[:-1], *stages, COLUMNS[-1]]
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    done = sum(r["status"] == "done" for r in rows)
    summary = {"sequences": len(rows), "done": done, "failed": sum(r["status"] == "failed" for r in rows)}
    written = [Path(out) / f"{TABLE}.csv", Path(out) / f"{TABLE}.json"]
    write_atomically(written[0], text.getvalue())
    write_atomically(written[1], json.dumps({**summary, "rows": rows}, indent=1))
    try:
        written.append(plot(rows, Path(out) / f"{TABLE}.png"))
    except ImportError:  # the plot needs the batch extra's matplotlib
        pass
    return written


def plot(rows: list[dict], path: Path) -> Path:
    """Seconds and persons per sequence, failed sequences marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    names = [r["sequence"] for r in rows]
    x = np.arange(len(rows))
    seconds = [r.get("seconds") or 0.0 for r in rows]
    colours = ["tab:red" if r["status"] == "failed" else "tab:blue" for r in rows]
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(max(6, 0.4 * len(rows)), 5))
    top.bar(x, seconds, color=colours)
    for i in np.flatnonzero([r["status"] == "failed" for r in rows]):
        top.text(i, 0, "failed", rotation=90, ha="center", va="bottom", color="tab:red", fontsize=8)
    top.set_ylabel("seconds")
    top.set_title("per sequence (red: failed)")
    bottom.bar(x, [r.get("persons") or 0 for r in rows], color="tab:green")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_ylabel("persons")
    bottom.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png")
    plt.close(figure)
    write_atomically(path, image.getvalue())
    return path


def format_rows(rows: list[dict]) -> str:
    """The table as the terminal shows it at the end of a batch."""
    lines = [f"{'sequence':<24} {'status':<8} {'persons':>7} {'frames':>6} {'reproj px':>9} {'seconds':>8}"]
    for r in rows:
        persons, frames = _cell(r, "persons", "d"), _cell(r, "frames", "d")
        lines.append(
            f"{r['sequence']:<24} {r['status']:<8} {persons:>7} {frames:>6} "
            f"{_cell(r, 'reprojection_px', '.2f'):>9} {_cell(r, 'seconds', '.1f'):>8}"
        )
        if r.get("error"):
            lines.append(f"  {r['error']}")
    return "\n".join(lines)


def _cell(row: dict, key: str, spec: str) -> str:
    return "" if row.get(key) is None else format(row[key], spec)
