"""Clips not started together, put in step: before detection when the offsets are given or the clips'
sound tells them, after it when only the people seen by the calibrated cameras can (``core.engine.sync``).
In step, each clip is a window of its file (``ClipInfo.start``), all windows one span long.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from core.engine.sync import SyncConfig, SyncOffsets, epipolar_offsets, in_step, parse_offsets
from core.errors import InputError
from core.io.audio import audio_offsets, has_audio
from core.io.video import ClipInfo, FrameRange, in_step_clips
from core.perception import Observer, PerceptionResult
from core.types import CameraRig


@dataclass(frozen=True)
class ClipsInStep:
    """The clips (windows of their files) and the frames to read from them."""

    clips: tuple[ClipInfo, ...]
    frames: FrameRange
    offsets: SyncOffsets | None
    """Each clip's offset against the first; None while in step as given (``off``) or still to be found
    from the people."""
    from_people: bool = False
    """The offsets are found after detection, from the people (:func:`after_detection`)."""


def before_detection(
    clips: tuple[ClipInfo, ...], frames: FrameRange, sync: SyncConfig, calibrated: bool
) -> ClipsInStep:
    """The clips put in step where that can be done before detection; for ``auto`` without sound, the
    frame range as windows of every clip (step 1), for :func:`after_detection`."""
    if sync.offsets == "off":
        return ClipsInStep(clips, frames, None)
    V = len(clips)
    if sync.offsets != "auto":
        offsets = parse_offsets(sync.offsets, V)
        return ClipsInStep(
            in_step_clips(clips, offsets), frames, SyncOffsets(offsets, np.ones(V), np.zeros(V))
        )
    if all(has_audio(c) for c in clips):
        found = audio_offsets(clips, sync.max_offset_frames)
        return ClipsInStep(in_step_clips(clips, found.offset), frames, found)
    if not calibrated:
        silent = ", ".join(c.name for c in clips if not has_audio(c))
        raise InputError(
            f"--sync auto: {silent} has no sound, and without a calibration the people cannot tell the "
            "offsets yet: give them (--sync 0,O2,…) or a calibration"
        )
    if frames.step != 1:
        raise InputError(
            f"--sync auto from the people needs every frame: --frames {frames} has step {frames.step}"
        )
    shortest = min(c.num_frames for c in clips)
    picked = frames.indices(shortest)
    windows = tuple(replace(c, start=int(c.file_frames(picked[0])), num_frames=len(picked)) for c in clips)
    return ClipsInStep(windows, FrameRange(), None, from_people=True)


def after_detection(
    step: ClipsInStep,
    perception: PerceptionResult,
    observer: Observer,
    cameras: CameraRig,
    sync: SyncConfig,
) -> tuple[ClipsInStep, PerceptionResult]:
    """The offsets from the people's epipolar geometry, the clips' windows moved by them and the
    detections on the common clock (those outside the span every clip covers left out)."""
    found = epipolar_offsets(perception.observations, cameras, sync.max_offset_frames)
    clips = in_step_clips(step.clips, found.offset)
    view = perception.columns["view"].astype(np.int64)
    rows, frame, _ = in_step(
        view, perception.frame, found.offset, np.array([c.num_frames for c in step.clips])
    )
    columns = {key: value[rows] for key, value in perception.columns.items()}
    retimed = PerceptionResult(
        observer.to_observations(columns, frame, cameras), perception.messages, columns, frame
    )
    return ClipsInStep(clips, FrameRange(), found), retimed
