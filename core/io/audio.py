"""Frame offsets of clips from their sound: the same claps, steps and voices reach every phone.

Each clip's audio is decoded (PyAV), resampled to one mono rate (clips of different sample rates
compare), reduced to its onset envelope (the rise of the short-time energy, in 5 ms hops: what an
event adds, whatever each microphone's gain and colour) and cross-correlated with the first clip's. The
lag of the peak, counted from each clip's first video frame, is the offset.
"""

from __future__ import annotations

from collections.abc import Sequence

import av
import numpy as np
from av.audio.resampler import AudioResampler
from scipy.signal import correlate

from core.engine.sync import SyncOffsets
from core.io.video import ClipInfo, VideoError

RATE = 8000
"""Samples per second the sound is compared at."""
HOP = 40
"""Samples per envelope step (5 ms at ``RATE``)."""


def has_audio(info: ClipInfo) -> bool:
    with av.open(str(info.path)) as container:
        return bool(container.streams.audio)


def audio_offsets(clips: Sequence[ClipInfo], max_offset_frames: int) -> SyncOffsets:
    """Each clip's frame offset against the first from their sound, searched within ±``max_offset_frames``
    (confidence: 1 − the second highest correlation more than a frame from the peak over the peak)."""
    envelopes = [_onset_envelope(info) for info in clips]
    fps = clips[0].fps
    steps_per_frame = RATE / HOP / fps
    limit = int(np.ceil((max_offset_frames + 1) * steps_per_frame))
    V = len(clips)
    offset, confidence = np.zeros(V, dtype=np.int64), np.ones(V)
    for v in range(1, V):
        score = correlate(envelopes[v], envelopes[0], mode="full", method="fft")
        lags = np.arange(-len(envelopes[0]) + 1, len(envelopes[v]))  # clip v's delay, in steps
        keep = np.abs(lags) <= limit
        score, lags = score[keep], lags[keep]
        best = int(np.argmax(score))
        offset[v] = round(lags[best] / steps_per_frame)
        away = np.abs(lags - lags[best]) > steps_per_frame
        runner_up = score[away].max() if away.any() else 0.0
        confidence[v] = (
            float(np.clip(1 - max(runner_up, 0.0) / score[best], 0, 1)) if score[best] > 0 else 0.0
        )
    return SyncOffsets(offset, confidence, np.zeros(V))


def _onset_envelope(info: ClipInfo) -> np.ndarray:
    """The clip's onset envelope from its first video frame on: log-energy rises per hop, normalised."""
    samples, lead = _mono(info)
    if lead > 0:  # sound that starts before the first frame: drop it
        samples = samples[lead:]
    elif lead < 0:  # sound that starts after it: silence until then
        samples = np.concatenate([np.zeros(-lead), samples])
    count = len(samples) // HOP
    if count < 2:
        raise VideoError(f"{info.path}: its sound is too short to synchronise by")
    energy = np.log1p(1e4 * (samples[: count * HOP].reshape(count, HOP) ** 2).mean(axis=1))
    onset = np.maximum(np.diff(energy, prepend=energy[0]), 0.0)
    onset -= onset.mean()
    norm = np.linalg.norm(onset)
    return onset / norm if norm > 0 else onset


def _mono(info: ClipInfo) -> tuple[np.ndarray, int]:
    """The clip's sound as mono samples at ``RATE``, and how many samples it starts before the first
    video frame (negative: after)."""
    try:
        with av.open(str(info.path)) as container:
            if not container.streams.audio:
                raise VideoError(f"{info.path}: has no sound to synchronise by")
            stream = container.streams.audio[0]
            video = container.streams.video[0]
            resampler = AudioResampler(format="flt", layout="mono", rate=RATE)
            chunks = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
            audio_start = float((stream.start_time or 0) * stream.time_base)
            video_start = float((video.start_time or 0) * video.time_base)
    except av.error.FFmpegError as error:
        raise VideoError(f"{info.path}: its sound cannot be decoded ({error.strerror})") from error
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    start_frame = info.start / (info.fps * info.stride)  # a window of its file starts later, seconds
    lead = round((video_start + start_frame - audio_start) * RATE)
    return samples.astype(np.float64), lead
