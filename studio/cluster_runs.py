"""The page's runs on a Ray cluster (``python app.py --ray-address ADDR``), the same calls as ``studio.runs``.

A run is one Ray task. The clips and the calibration travel with it through Ray's object store, so the
cluster's workers need no disk shared with the page; the task streams its progress back (a generator
task) and ends with the result, whose clip paths are put back to the page's own files. The task asks
for a GPU when the run uses a network and the cluster has one. A cancelled run cancels its task.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from queue import Queue
from typing import Any

from core.config import ReconstructionConfig
from core.errors import InputError
from core.io.video import FrameRange
from core.reconstruction import ReconstructionFormatError
from studio.assets import example_inputs
from studio.batch.ray_cluster import RayCluster
from studio.runs import SYNTHETIC, Progress, RunResult, run_clips, run_example

_END = object()


class LocalRuns:
    """The page's runs in the page's own process (without ``--ray-address``)."""

    def run_clips(self, videos, calibration, config, frames, progress) -> RunResult:
        return run_clips(videos, calibration, config, frames, progress)

    def run_example(self, name, config, frames, progress) -> RunResult:
        return run_example(name, config, frames, progress)


class ClusterRuns:
    """:class:`LocalRuns`' two calls, each run as a task on ``cluster`` (already joined)."""

    def __init__(self, cluster: RayCluster) -> None:
        self.cluster = cluster

    @staticmethod
    def join(address: str) -> ClusterRuns:
        """Runs on the cluster at ``address``, joined now (an unreachable one is said at once) and left
        running when the page stops."""
        return ClusterRuns(RayCluster(address).connect())

    @property
    def address(self) -> str:
        return self.cluster.address or "this machine"

    def run_clips(
        self,
        videos: Sequence[Path],
        calibration: Path | None,
        config: ReconstructionConfig,
        frames: FrameRange,
        progress: Progress,
    ) -> RunResult:
        files = [Path(v) for v in videos] + ([Path(calibration)] if calibration else [])
        shipped = [(str(path), path.read_bytes()) for path in files]
        result = self._run(progress, config, "clips", shipped, calibration is not None, config, frames)
        if not result.reconstruction.clips:
            return result
        local = tuple(str(Path(v)) for v in videos)
        return replace(result, reconstruction=replace(result.reconstruction, clips=local))

    def run_example(
        self, name: str, config: ReconstructionConfig, frames: FrameRange, progress: Progress
    ) -> RunResult:
        if name == SYNTHETIC:
            return self._run(progress, config, "example", name, config, frames)
        videos, calibration = example_inputs(name)  # the page's copy travels: workers need no assets
        return self.run_clips(videos, calibration, config, frames, progress)

    def _run(self, progress: Progress, config: ReconstructionConfig, *task_args: Any) -> RunResult:
        ray = self.cluster.ray
        stream = self._task(config).remote(*task_args)
        try:
            for ref in stream:
                item = ray.get(ref)
                if isinstance(item, RunResult):
                    return item
                progress(*item)  # raises RunCancelled once the page cancels
        except ray.exceptions.RayTaskError as error:  # the run's own error, without the remote traceback
            if isinstance(error.cause, InputError | ReconstructionFormatError):
                raise error.cause from None
            raise
        except BaseException:
            ray.cancel(stream, force=True)
            raise
        raise RuntimeError("the cluster's run ended without a result")

    def _task(self, config: ReconstructionConfig) -> Any:
        """The run as a Ray generator task, with a GPU where it uses a network and the cluster has one."""
        networks = config.networks
        wants_gpu = networks.scene != "calibration" or networks.humans != "blazepose"
        gpus = 1 if wants_gpu and self.cluster.ray.cluster_resources().get("GPU", 0) >= 1 else 0
        return self.cluster.remote(remote_run, cpus=1, gpus=gpus, retries=1)


def remote_run(kind: str, *args: Any) -> Iterator[tuple[str, float] | RunResult]:
    """The task: (stage, fraction) reports while the run goes on in a thread, then its result.

    ``kind`` "clips": ``(files, has_calibration, config, frames)`` with ``files`` (the page's path, bytes)
    pairs, the clips first and the calibration last; "example": ``(name, config, frames)``.
    """
    reports: Queue = Queue()
    outcome: list = []

    def work() -> None:
        try:
            outcome.append(_run_here(kind, args, lambda stage, fraction: reports.put((stage, fraction))))
        except BaseException as error:  # raised again in the task, for the page's message
            outcome.append(error)
        finally:
            reports.put(_END)

    threading.Thread(target=work, daemon=True).start()
    while (report := reports.get()) is not _END:
        yield report
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    yield outcome[0]


def _run_here(kind: str, args: tuple, progress: Progress) -> RunResult:
    if kind == "example":
        return run_example(*args, progress)
    files, has_calibration, config, frames = args
    folder = Path(tempfile.mkdtemp(prefix="studio_run_"))
    here = [folder / str(index) / Path(page_path).name for index, (page_path, _) in enumerate(files)]
    try:
        for path, (_, data) in zip(here, files, strict=True):  # a folder each: two uploads may share a name
            path.parent.mkdir()
            path.write_bytes(data)
        calibration = here[-1] if has_calibration else None
        return run_clips(here[: len(here) - has_calibration], calibration, config, frames, progress)
    except InputError as error:  # named by the page's paths, which the user knows
        message = str(error)
        for path, (page_path, _) in zip(here, files, strict=True):
            message = message.replace(str(path), page_path)
        raise type(error)(message) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
