"""Synthetic training data on disk: ``MakeSynthetic`` renders random scenes into a folder (in parallel,
resumably) and ``SyntheticScenes`` reads them back as ``MultiViewSample``s.

A folder holds ``scene_000000.npz``, ``scene_000001.npz``… (each one ``MultiViewSample.save``, written
atomically) and ``meta.json``: the format, its version and the settings the scenes were made with.
Scene i is a function of (seed, i) and the settings only, so a run can stop anywhere and a rerun with the
same settings renders the missing scenes alone; a rerun with more scenes extends the set.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from core.body.anny_backend import AnnyBody
from core.body.config import TOPOLOGIES, VIEWER_TOPOLOGY, AnnyConfig
from core.errors import InputError
from studio.training.render_scenes import SceneRenderer
from studio.training.sample import MultiViewSample
from studio.training.scene_layout import LayoutConfig, sample_layout

FORMAT = "chromm-synthetic-scenes"
"""``meta.json``'s ``format``: what tells a folder of ours from any other."""
VERSION = 1
"""Bumped when the same settings would render different scenes."""
META = "meta.json"


def scene_path(folder: Path, index: int) -> Path:
    """Where scene ``index`` of ``folder`` is stored."""
    return Path(folder) / f"scene_{index:06d}.npz"


@dataclass
class MakeSynthetic:
    """Render random multi-person multi-view scenes (Anny bodies, boxes, walls, a checkered floor) with
    their ground truth into a folder, one ``.npz`` per scene; a rerun renders only the missing ones."""

    out: Path
    """The folder (created if need be; a folder of other scenes or other files is refused)."""
    scenes: int
    """Number of scenes: ``scene_000000.npz`` to ``scene_{scenes - 1}``."""
    seed: int = 0
    """Scene i is drawn from ``numpy.random.default_rng([seed, i])``."""
    image_size: int = 224
    """Width and height of every view, pixels."""
    workers: int | None = None
    """Rendering processes; None: one per CPU core. 1: render in this process."""
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    """What a scene may hold: people, cameras, boxes, walls."""
    topology: str = VIEWER_TOPOLOGY
    """Anny mesh topology of the bodies (``core.body.config.TOPOLOGIES``)."""

    def settings(self) -> dict[str, Any]:
        """What the scenes depend on, as stored in ``meta.json`` (JSON types)."""
        settings = {
            "seed": self.seed,
            "image_size": self.image_size,
            "topology": self.topology,
            "layout": asdict(self.layout),
        }
        return json.loads(json.dumps(settings))

    def run(self) -> Path:
        """Render every missing scene into ``out``; returns (and prints) the folder."""
        if self.scenes < 0 or self.image_size < 16 or self.topology not in TOPOLOGIES:
            raise InputError(
                f"make-data synthetic needs scenes ≥ 0, image_size ≥ 16 and an Anny topology of "
                f"{', '.join(TOPOLOGIES)}; got scenes={self.scenes}, image_size={self.image_size}, "
                f"topology={self.topology!r}"
            )
        out = Path(self.out)
        _claim(out, self.settings())
        todo = [i for i in range(self.scenes) if not scene_path(out, i).exists()]
        workers = max(1, min(self.workers or os.cpu_count() or 1, len(todo)))
        with tqdm(total=self.scenes, initial=self.scenes - len(todo), desc="scenes", unit="scene") as bar:
            if todo and workers == 1:
                maker = _SceneMaker(self)
                for index in todo:
                    maker.make(out, index)
                    bar.update()
            elif todo:
                _render_in_pool(self, todo, workers, bar)
        print(out)
        return out


class SyntheticScenes(Sequence[MultiViewSample]):
    """The scenes of a folder ``MakeSynthetic`` wrote, in index order, each read from disk when asked for."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.settings: dict[str, Any] = _read_meta(self.directory)
        """The settings the scenes were made with (``MakeSynthetic.settings``)."""
        self.files = sorted(self.directory.glob("scene_*.npz"))
        if not self.files:
            raise InputError(f"{self.directory}: no scenes (scene_*.npz) in it yet")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> MultiViewSample:
        return MultiViewSample.load(self.files[index])


class _SceneMaker:
    """A body model and a renderer, built once per process, that render ``job``'s scenes."""

    def __init__(self, job: MakeSynthetic) -> None:
        anny = AnnyConfig(topology=job.topology)
        self.job = job
        self.body = AnnyBody(anny)
        self.renderer = SceneRenderer(anny)

    def make(self, folder: Path, index: int) -> Path:
        """Render scene ``index`` and save it (atomically) in ``folder``."""
        job, path = self.job, scene_path(folder, index)
        rng = np.random.default_rng([job.seed, index])
        layout = sample_layout(rng, self.body, job.layout, job.image_size)
        return self.renderer.render(layout, path.stem).save(path)


_WORKER: _SceneMaker | None = None
"""The scene maker of a pool worker process (set by ``_start_worker``)."""


def _start_worker(job: MakeSynthetic) -> None:
    global _WORKER
    torch.set_num_threads(1)  # the processes share the cores
    _WORKER = _SceneMaker(job)


def _make_in_worker(index: int) -> Path:
    return _WORKER.make(_WORKER.job.out, index)


def _render_in_pool(job: MakeSynthetic, todo: list[int], workers: int, bar: tqdm) -> None:
    """Render scenes ``todo`` in ``workers`` spawned processes (an OpenGL context does not survive a
    fork)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=(job,)) as pool:
        futures = [pool.submit(_make_in_worker, index) for index in todo]
        try:
            for future in as_completed(futures):
                future.result()
                bar.update()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


def _claim(folder: Path, settings: dict[str, Any]) -> None:
    """Make ``folder`` ours for ``settings``: write its ``meta.json`` if it is new or empty, check it
    otherwise; an ``InputError`` for another tool's folder or for scenes of other settings."""
    meta = folder / META
    if folder.is_dir() and not meta.exists() and any(folder.iterdir()):
        raise InputError(f"{folder}: not empty and not a synthetic scene folder (no {META}); choose another")
    if meta.exists():
        stored = _read_meta(folder)
        differences = _differences(stored, settings)
        if differences:
            raise InputError(
                f"{folder} holds scenes made with other settings ({'; '.join(differences)}): rerun with "
                "those settings to resume, or choose another folder"
            )
        return
    folder.mkdir(parents=True, exist_ok=True)
    partial = meta.with_name(META + ".partial")
    partial.write_text(json.dumps({"format": FORMAT, "version": VERSION, "settings": settings}, indent=1))
    partial.replace(meta)


def _read_meta(folder: Path) -> dict[str, Any]:
    """The settings in ``folder``'s ``meta.json``; an ``InputError`` naming the folder if it is not ours."""
    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"{folder}: not a synthetic scene folder (no readable {META}: {error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{folder}: not a synthetic scene folder ({META} is not {FORMAT!r})")
    if meta.get("version") != VERSION:
        raise InputError(
            f"{folder}: scenes of format version {meta.get('version')}, this studio makes {VERSION}"
        )
    return meta["settings"]


def _differences(stored: dict[str, Any], settings: dict[str, Any], prefix: str = "") -> list[str]:
    """``name: stored there, given now`` for each setting that differs, nested ones as ``layout.views``."""
    differences = []
    for key in sorted(set(stored) | set(settings)):
        old, new = stored.get(key), settings.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            differences.append(f"{prefix}{key}: {old} there, {new} now")
    return differences
