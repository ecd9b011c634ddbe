"""Clips and a calibration in, a Reconstruction out: ingest → detection → the engine → ground plane.

Every failure a user can cause (unreadable clip, clips out of step, a calibration whose cameras do not
match the clips) is an ``InputError`` naming the file, raised before the slow detection starts. What
goes wrong later (a view where nobody is seen, a black or frozen clip, a view that agrees with no other
one) becomes a message in the result, which is still written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.body.tracks import fit_persons, load_body_model
from core.config import ReconstructionConfig
from core.io.calibration import match_clips, read_calibration
from core.io.video import ClipInfo, FrameRange, iter_synchronized, probe_clips
from core.perception.blazepose import observe_clips
from core.pipeline import reconstruct_from_observations
from core.reconstruction import Reconstruction
from core.scene.ground import fit_ground, sample_ground
from core.types import CameraRig

StageProgress = Callable[[str, float], None]
"""Called with (stage, fraction of that stage done)."""

_TEXTURE_FRAMES = 3


def load_inputs(
    videos: Sequence[Path], calibration: Path, frames: FrameRange
) -> tuple[tuple[ClipInfo, ...], CameraRig, np.ndarray]:
    """Probe the clips, read the calibration and check that they belong together; no decoding yet."""
    clips = probe_clips([Path(v) for v in videos])
    rig = read_calibration(Path(calibration))
    rig = match_clips(rig, [(c.width, c.height) for c in clips], [c.name for c in clips], Path(calibration))
    return clips, rig, frames.indices(clips[0].num_frames)


def reconstruct_from_videos(
    videos: Sequence[Path],
    calibration: Path,
    frames: FrameRange | None = None,
    config: ReconstructionConfig | None = None,
    progress: StageProgress | None = None,
    model_dir: Path | None = None,
    device: str = "cpu",
) -> Reconstruction:
    """Reconstruct the people (with a body model fitted to each) and a floor seen in synchronized,
    calibrated clips. ``device`` is where the body model is fitted."""
    config = config or ReconstructionConfig()
    frames = frames or FrameRange()
    report = progress or (lambda stage, fraction: None)
    start = time.perf_counter()
    clips, cameras, indices = load_inputs(videos, calibration, frames)
    ingest_seconds = time.perf_counter() - start
    report("ingest", 1.0)

    start = time.perf_counter()
    perception = observe_clips(
        clips,
        frames,
        cameras,
        config.perception,
        lambda done, total: report("detection", done / total),
        model_dir,
    )
    detection_seconds = time.perf_counter() - start

    reconstruction = reconstruct_from_observations(
        perception.observations,
        cameras,
        len(indices),
        clips[0].fps / frames.step,
        config,
        lambda stage, _fraction: report(stage, 1.0),
    )
    start = time.perf_counter()
    body = load_body_model(config.body, device)
    if body is not None:
        reconstruction = replace(
            reconstruction, persons=fit_persons(reconstruction.persons, body, config.body.fit, device)
        )
    body_seconds = time.perf_counter() - start
    report("body", 1.0)
    start = time.perf_counter()
    reconstruction = _add_ground(reconstruction, clips, frames, indices, config)
    report("scene", 1.0)
    diagnostics = reconstruction.diagnostics
    seconds = {"ingest": ingest_seconds, "detection": detection_seconds, **diagnostics.stage_seconds}
    seconds["body"] = body_seconds
    seconds["scene"] = time.perf_counter() - start
    return replace(
        reconstruction,
        diagnostics=replace(
            diagnostics,
            stage_seconds=seconds,
            messages=perception.messages + diagnostics.messages,
        ),
        clips=tuple(str(c.path) for c in clips),
        first_frame=int(indices[0]),
        frame_step=frames.step,
    )


def _add_ground(
    reconstruction: Reconstruction,
    clips: Sequence[ClipInfo],
    frames: FrameRange,
    indices: np.ndarray,
    config: ReconstructionConfig,
) -> Reconstruction:
    """Fit the floor to the people's feet and colour it from a few frames spread over the range."""
    plane = fit_ground(reconstruction.persons, config.ground)
    if plane is None:
        return replace(
            reconstruction,
            diagnostics=replace(
                reconstruction.diagnostics,
                messages=(*reconstruction.diagnostics.messages, "no floor: no person to stand on it"),
            ),
        )
    step = max(len(indices) // _TEXTURE_FRAMES, 1) * frames.step
    texture_range = FrameRange(int(indices[0]), int(indices[-1]) + 1, step)
    images: list[list[np.ndarray]] = [[] for _ in clips]
    for _, views in iter_synchronized(clips, texture_range):
        for view, image in enumerate(views):
            images[view].append(image)
    around = np.concatenate([p.transl for p in reconstruction.persons])
    points, colours = sample_ground(plane, around, reconstruction.cameras, images, config.ground)
    return replace(
        reconstruction,
        points=points,
        point_colors=colours,
        ground=np.append(plane.normal, plane.offset),
    )
