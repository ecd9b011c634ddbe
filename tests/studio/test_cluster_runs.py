"""The page's runs on a Ray cluster (a local Ray of 2 CPUs here): same results as in the page's process,
progress streamed back, the clips shipped and named by the page's paths, a cancelled run's task gone."""

import time

import pytest

from core.config import ReconstructionConfig
from core.io.video import FrameRange, VideoError
from studio.background import BackgroundRun
from studio.batch.demo_cuts import write_cut
from studio.batch.ray_cluster import RayCluster
from studio.cluster_runs import ClusterRuns, LocalRuns
from studio.runs import SYNTHETIC
from tests.studio.ray_helpers import assert_same, needs_demo_clips, task_processes

ray = pytest.importorskip("ray")
CONFIG = ReconstructionConfig()


@pytest.fixture(scope="module")
def cluster():
    with RayCluster(num_cpus=2) as joined:
        yield ClusterRuns(joined)


def test_the_synthetic_example_on_the_cluster_equals_the_local_run_and_reports_its_stages(cluster):
    reports = []
    remote = cluster.run_example(SYNTHETIC, CONFIG, FrameRange(0, 20), lambda *r: reports.append(r))
    local = LocalRuns().run_example(SYNTHETIC, CONFIG, FrameRange(0, 20), lambda *r: None)
    assert_same(remote.reconstruction, local.reconstruction)
    assert remote.ground_truth == pytest.approx(local.ground_truth)
    stages = [stage for stage, _ in reports]
    assert stages[0] == "simulation" and "association" in stages and reports[-1] == ("body", 1.0)


@needs_demo_clips
def test_clips_travel_to_the_worker_and_come_back_named_by_the_pages_paths(cluster, tmp_path):
    cut = write_cut(tmp_path / "cut", 0, 8)
    videos, calibration = sorted((cut / "videos").glob("*.mp4")), cut / "calibration" / "Calib.qca.txt"
    remote = cluster.run_clips(videos, calibration, CONFIG, FrameRange(), lambda *r: None)
    local = LocalRuns().run_clips(videos, calibration, CONFIG, FrameRange(), lambda *r: None)
    assert len(remote.reconstruction.persons) == 2
    assert remote.reconstruction.clips == local.reconstruction.clips == tuple(map(str, videos))
    assert_same(remote.reconstruction, local.reconstruction)


def test_bad_clips_fail_with_the_pages_file_names(cluster, tmp_path):
    clips = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for clip in clips:
        clip.write_bytes(b"not a video")
    with pytest.raises(VideoError, match=f"^{tmp_path / 'a.mp4'}: "):
        cluster.run_clips(clips, None, CONFIG, FrameRange(), lambda *r: None)


def test_a_cancelled_run_cancels_its_task(cluster):
    job = BackgroundRun(lambda progress: cluster.run_example(SYNTHETIC, CONFIG, FrameRange(), progress))
    next(job.updates())  # the task runs and reports
    job.cancel()
    job.join(60)
    assert job.cancelled and job.result is None
    deadline = time.monotonic() + 30
    while task_processes("remote_run") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not task_processes("remote_run")
