"""Reconstruction from another detector's 2D keypoints (OpenPose-style JSON per camera) instead of clips.

The same stages as from clips, from the observations the files give (``core.perception.flat_hints``):
cameras from the calibration or from the people, then tracking, association, fusion, the body fit and
the floor. The clips are optional: without them there are no images, so the floor is fitted to the feet
but not coloured, and the scene network cannot run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.cameras.report import CalibrationReport
from core.cameras.sources import camera_source, stand_in_rig
from core.config import ReconstructionConfig
from core.engine.sync import SyncConfig, SyncOffsets, epipolar_offsets, in_step, parse_offsets
from core.engine.timing import timed
from core.engine.video_pipeline import (
    StageProgress,
    add_ground,
    people_with_bodies,
    place_cameras_from_people,
    view_frames,
)
from core.errors import InputError
from core.io.audio import audio_offsets, has_audio
from core.io.calibration import match_clips, read_calibration
from core.io.openpose import read_openpose_folder
from core.io.video import ClipInfo, FrameRange, in_step_clips, probe_clips
from core.perception import PerceptionResult
from core.perception.flat_hints import FlatObserver
from core.reconstruction import Reconstruction
from core.scene.ground import WORLD_UP
from core.types import CameraRig


def reconstruct_from_keypoints(
    folder: Path,
    calibration: Path | None,
    videos: Sequence[Path] = (),
    layout: str | None = None,
    image_size: tuple[int, int] | None = None,
    fps: float = 30.0,
    frames: FrameRange | None = None,
    config: ReconstructionConfig | None = None,
    progress: StageProgress | None = None,
    device: str = "cpu",
) -> Reconstruction:
    """Reconstruct the people whose keypoints ``folder`` holds (``<camera>_json/`` per camera, matched
    to the calibration's cameras in order). ``videos``: the clips they were found in, optional (one per
    camera folder, in order: their sizes, the floor's colours, the images the studio shows);
    ``image_size``: every camera's (width, height), needed without a calibration or clips; ``fps``: the
    frame rate the files were taken at. ``config.sync``: ``auto`` finds the cameras' offsets from the
    epipolar geometry, which needs the calibration."""
    config = config or ReconstructionConfig()
    frames = frames or FrameRange()
    report = progress or (lambda stage, fraction: None)
    seconds: dict[str, float] = {}
    with timed(seconds, "ingest"):
        source = camera_source(config.cameras, config.networks, calibration)
        if source == "pi3x":
            raise InputError(
                "Pi3X estimates the cameras from images: with --keypoints give a calibration or use "
                "--cameras people"
            )
        detections = read_openpose_folder(Path(folder), layout)
        names = list(detections.cameras)
        clips = _clips(videos, names, config.sync.offsets)
        sizes = [(c.width, c.height) for c in clips] or ([image_size] * len(names) if image_size else None)
        cameras = _cameras(calibration, sizes, names, config)
        observer = FlatObserver(detections.names)
        rows, frame, num_frames, start, offsets = _in_step(
            detections, clips, cameras, observer, config.sync, source
        )
        clips = _windows(clips, detections.first_frame, offsets)
        indices = frames.indices(num_frames)
        step = np.full(num_frames, -1)
        step[indices] = np.arange(len(indices))
        selected = step[frame] >= 0
        kept, frame = rows[selected], step[frame[selected]]
        columns = {
            "view": detections.view[kept],
            "keypoints2d": detections.keypoints[kept],
            "confidence": detections.confidence[kept],
        }
        perception = PerceptionResult(
            observer.to_observations(columns, frame, cameras), detections.messages, columns, frame
        )
        views = np.arange(len(names))
    report("ingest", 1.0)
    calibration_report = CalibrationReport(source)
    if source == "people":
        with timed(seconds, "cameras"):
            # Flat figures' orientations say nothing of how two views are turned: no check on them.
            people = replace(config.cameras.people, max_landmark_rotation_deg=180.0)
            config = replace(config, cameras=replace(config.cameras, people=people))
            sizes = [(c.width, c.height) for c in cameras.cameras]
            folders = [str(path) for path in detections.sources]
            placed = place_cameras_from_people(
                perception, observer, sizes, names, folders, len(indices), config
            )
            cameras, calibration_report, views = placed.cameras, placed.report, placed.views
            perception, config = placed.perception, placed.config
            clips = tuple(clips[v] for v in views) if clips else clips
        report("cameras", 1.0)

    fps = fps / frames.step
    reconstruction = people_with_bodies(
        perception, cameras, len(indices), fps, config, report, seconds, device
    )
    first = detections.first_frame + start
    in_clips = indices if offsets else first + indices  # windows count from their first frame
    with timed(seconds, "scene"):
        reconstruction = add_ground(reconstruction, clips, frames, in_clips, config, WORLD_UP)
    diagnostics = reconstruction.diagnostics
    return replace(
        reconstruction,
        diagnostics=replace(
            diagnostics,
            stage_seconds=seconds,
            sync_offsets=offsets.offset[views] if offsets else diagnostics.sync_offsets,
            sync_confidence=offsets.confidence[views] if offsets else diagnostics.sync_confidence,
            messages=perception.messages + calibration_report.messages + diagnostics.messages,
        ),
        clips=tuple(str(c.path) for c in clips),
        first_frame=first + int(indices[0]),
        frame_step=frames.step,
        view_frames=view_frames(clips, frames, indices) if offsets and clips else (),
        calibration=calibration_report,
    )


def _in_step(
    detections,
    clips: tuple[ClipInfo, ...],
    cameras: CameraRig,
    observer: FlatObserver,
    sync: SyncConfig,
    source: str,
):
    """The detections' rows and frames on one clock (``sync``), trimmed to the span every camera
    covers: rows, their frames, the span's length, its start on the first camera's clock, and the
    offsets (None with ``off``). ``auto``: from the clips' sound where every clip has some, else from
    the calibrated cameras' epipolar geometry."""
    every = np.arange(len(detections.view))
    if sync.offsets == "off":
        return every, detections.frame, detections.num_frames, 0, None
    V = len(detections.cameras)
    if sync.offsets == "auto" and clips and all(has_audio(c) for c in clips):
        found = audio_offsets(clips, sync.max_offset_frames)
    elif sync.offsets == "auto":
        if source != "file":
            raise InputError(
                "--sync auto finds the offsets from the clips' sound or from the calibrated cameras' "
                "epipolar geometry: give clips with sound, --calibration, or the offsets (--sync 0,O2,…)"
            )
        columns = {
            "view": detections.view,
            "keypoints2d": detections.keypoints,
            "confidence": detections.confidence,
        }
        observations = observer.to_observations(columns, detections.frame, cameras)
        found = epipolar_offsets(observations, cameras, sync.max_offset_frames)
    else:
        found = SyncOffsets(parse_offsets(sync.offsets, V), np.ones(V), np.zeros(V))
    rows, frame, span = in_step(detections.view, detections.frame, found.offset, detections.camera_frames)
    if span == 0:
        raise InputError(f"with the offsets {found.offset.tolist()} the cameras share no frame")
    return rows, frame, span, int(np.max(-found.offset)), found


def _windows(
    clips: tuple[ClipInfo, ...], first_frame: int, offsets: SyncOffsets | None
) -> tuple[ClipInfo, ...]:
    """The clips as windows of the span the detections were put in step over: the files' frame numbers
    are the clips' frames, counted from the first file's number."""
    if not clips or offsets is None:
        return clips
    shifted = tuple(
        replace(c, start=int(c.file_frames(first_frame)), num_frames=c.num_frames - first_frame)
        for c in clips
    )
    return in_step_clips(shifted, offsets.offset)


def _clips(videos: Sequence[Path], names: list[str], sync: str) -> tuple[ClipInfo, ...]:
    """The clips the keypoints were found in, one per camera folder in order (none: none given); of one
    length unless they are to be put in step (``sync``)."""
    if not videos:
        return ()
    clips = probe_clips([Path(v) for v in videos], in_step=sync == "off")
    if len(clips) != len(names):
        raise InputError(
            f"{len(clips)} clips ({', '.join(c.name for c in clips)}) for {len(names)} keypoint folders "
            f"({', '.join(names)}); give one clip per camera folder, in the folders' order"
        )
    return clips


def _cameras(
    calibration: Path | None,
    sizes: list[tuple[int, int]] | None,
    names: list[str],
    config: ReconstructionConfig,
) -> CameraRig:
    """The calibration's cameras (checked against the images' ``sizes`` where known), or stand-ins of
    those sizes for the people to calibrate."""
    if calibration is not None:
        rig = read_calibration(Path(calibration))
        sizes = sizes or [(c.width, c.height) for c in rig.cameras]
        if any(w == 0 or h == 0 for w, h in sizes):
            raise InputError(
                f"{calibration}: the cameras' image size is not in the file: give the clips or "
                "--image-size W H"
            )
        return match_clips(rig, sizes, names, Path(calibration))
    if sizes is None:
        raise InputError(
            "without a calibration the cameras come from the people, who need the image size: give "
            "the clips or --image-size W H (the size of the images the keypoints were detected in)"
        )
    return stand_in_rig(sizes, names, config.cameras.hints)
