"""``python -m studio batch`` on a local Ray of 2 CPUs: two cuts of the demo clips, the synthetic example
and a corrupt sequence; results against serial runs, reruns, a killed worker, workers 1 and 2."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from core.config import ReconstructionConfig
from core.reconstruction import Reconstruction
from studio.batch.demo_cuts import write_cut
from studio.batch.runner import BatchOptions, run_batch
from studio.batch.sequences import find_sequences
from studio.cli import main
from studio.runs import run_synthetic
from tests.studio.ray_helpers import assert_same, needs_demo_clips, task_processes

pytest.importorskip("ray")
pytestmark = needs_demo_clips
CONFIG = ReconstructionConfig()
DONE = ["demo_a", "demo_b", "synthetic"]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("batch_source")
    write_cut(root / "demo_a", 0, 10)
    write_cut(root / "demo_b", 40, 50)
    (root / "synthetic").mkdir()
    (root / "synthetic" / "sequence.json").write_text(json.dumps({"example": "synthetic", "frames": "0:30"}))
    corrupt = write_cut(root / "corrupt", 0, 10)
    clip = corrupt / "videos" / "cam02.mp4"
    clip.write_bytes(clip.read_bytes()[:3000])
    return root


@pytest.fixture(scope="module")
def two_workers(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("batch_two")
    result = run_batch(find_sequences(source), out, CONFIG, BatchOptions(workers=2))
    assert sorted(result.done) == DONE and result.failed == ["corrupt"] and not result.skipped
    return out


def test_three_sequences_done_and_the_corrupt_one_failed_with_its_file(two_workers, source):
    error = json.loads((two_workers / "corrupt" / "error.json").read_text())["error"]
    assert error["file"] == str(source / "corrupt" / "videos" / "cam02.mp4")
    assert error["type"] == "VideoError" and "traceback" not in error
    assert sorted(p.name for p in (two_workers / "corrupt").iterdir()) == ["error.json"]
    table = json.loads((two_workers / "batch.json").read_text())
    assert (table["done"], table["failed"]) == (3, 1)
    rows = {row["sequence"]: row for row in table["rows"]}
    assert rows["demo_a"]["persons"] == 2 and rows["demo_a"]["frames"] == 10
    assert rows["synthetic"]["persons"] == 3 and rows["demo_a"]["seconds_detection"] > 0
    assert "cam02.mp4" in rows["corrupt"]["error"]
    assert (two_workers / "batch.csv").read_text().count("\n") == 5
    assert (two_workers / "batch.png").stat().st_size > 0
    assert not [p for p in two_workers.iterdir() if p.name.startswith(".")]


def test_results_equal_serial_reconstruct_runs(two_workers, source, tmp_path):
    for name in ("demo_a", "demo_b"):
        videos = sorted((source / name / "videos").glob("*.mp4"))
        args = [
            "reconstruct",
            "--videos",
            *map(str, videos),
            "--calibration",
            str(source / name / "calibration"),
        ]
        main([*args, "--out", str(tmp_path / name)])
        assert_same(Reconstruction.load(two_workers / name), Reconstruction.load(tmp_path / name))
    serial = run_synthetic(CONFIG, lambda stage, fraction: None, frames=30)
    assert_same(Reconstruction.load(two_workers / "synthetic"), serial.reconstruction)
    summary = json.loads((two_workers / "synthetic" / "summary.json").read_text())
    assert summary["ground_truth"] == pytest.approx(serial.ground_truth)


def test_a_rerun_skips_what_is_finished_and_retry_failed_runs_the_failed_again(two_workers, source):
    before = {p: p.stat().st_mtime_ns for p in two_workers.glob("*/*")}
    again = run_batch(find_sequences(source), two_workers, CONFIG, BatchOptions(workers=2))
    assert sorted(again.skipped) == sorted([*DONE, "corrupt"]) and not again.done and not again.failed
    assert {p: p.stat().st_mtime_ns for p in two_workers.glob("*/*")} == before
    retried = run_batch(
        find_sequences(source), two_workers, CONFIG, BatchOptions(workers=2, retry_failed=True)
    )
    assert sorted(retried.skipped) == DONE and retried.failed == ["corrupt"]


def test_a_killed_worker_is_retried_and_one_worker_gives_what_two_gave(two_workers, source, tmp_path):
    killed: list[int] = []

    def kill_the_first_task() -> None:
        deadline = time.monotonic() + 120
        while not (running := task_processes("reconstruct_sequence")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # mid-task: past the worker's start, inside the reconstruction
        killed.extend(running)
        for pid in running:
            os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_the_first_task)
    killer.start()
    result = run_batch(find_sequences(source), tmp_path, CONFIG, BatchOptions(workers=1))
    killer.join()
    assert len(killed) == 1
    assert sorted(result.done) == DONE and result.failed == ["corrupt"]
    pids = {json.loads((tmp_path / n / "summary.json").read_text())["worker"]["pid"] for n in DONE}
    assert killed[0] not in pids
    for name in DONE:
        assert_same(Reconstruction.load(tmp_path / name), Reconstruction.load(two_workers / name))
