"""Clips not started together: windows of their files, offsets from their sound (clips written here
with a known delay and different sample rates), and detections put on one clock from the people."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from core.engine.clip_sync import ClipsInStep, after_detection, before_detection
from core.engine.sync import SyncConfig
from core.errors import InputError
from core.evaluation.synthetic import SyntheticConfig, make_scene
from core.io.video import FrameRange, VideoError, in_step_clips, iter_frames, probe_clip, probe_clips
from core.perception import PerceptionResult
from core.perception.flat_hints import FlatObserver
from core.skeleton import JOINT_NAMES
from tests.core.io.test_video import coded_clip, read_code

FPS = 25
OFFSETS = np.array([0, 7, -12, 19])


def test_windows_read_the_frames_of_one_instant(tmp_path: Path) -> None:
    clips = probe_clips([coded_clip(tmp_path / f"c{v}.mp4", 40 + v) for v in range(3)], in_step=False)
    windows = in_step_clips(clips, np.array([0, 5, -3]))
    # on the first clip's clock, clip 1 has frames 0–35 (its 5–40), clip 2 frames 3–44: common 3–35
    assert [(w.start, w.num_frames) for w in windows] == [(3, 33), (8, 33), (0, 33)]
    for window in windows:
        codes = [read_code(image) for _, image in iter_frames(window, FrameRange(2, 6))]
        assert codes == list(range(window.start + 2, window.start + 6))
    with pytest.raises(VideoError, match="share no instant"):
        in_step_clips(clips, np.array([0, 45, 0]))


def write_clip_with_sound(
    path: Path, source: np.ndarray, rate_of_source: int, start_s: float, rate: int, size=(64, 48)
) -> Path:
    """A 4 s clip (tiny by default) whose sound is ``source`` from ``start_s`` seconds on, at ``rate``
    samples a second (PCM: no encoder delay to account for)."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = *size, "yuv420p"
        audio = container.add_stream("pcm_s16le", rate=rate)
        audio.layout, audio.format = "mono", "s16"
        t = np.arange(4 * rate) / rate + start_s
        samples = np.interp(t, np.arange(len(source)) / rate_of_source, source)
        for k in range(4 * FPS):
            image = np.full((size[1], size[0], 3), k, dtype=np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        for a in range(0, len(samples), 1024):
            chunk = (samples[None, a : a + 1024] * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
            frame.sample_rate = rate
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
        container.mux(video.encode(None))
    return path


def room_sound(rate: int, seconds: float = 10.0) -> np.ndarray:
    """Room noise and 25 claps."""
    rng = np.random.default_rng(0)
    source = 0.01 * rng.normal(size=int(seconds * rate))
    for t in rng.uniform(0.5, seconds - 0.5, 25):
        i = int(t * rate)
        source[i : i + 800] += rng.normal(size=800) * np.exp(-np.arange(800) / 150)
    return source


def test_offsets_come_from_the_clips_sound_whatever_their_sample_rates(tmp_path: Path) -> None:
    rate = 48_000
    source = room_sound(rate)
    paths = [
        # clip v started o_v frames before the first: the same clap is o_v frames later in it
        write_clip_with_sound(
            tmp_path / f"c{v}.mov", source, rate, 3.0 - o / FPS, 44_100 if v == 2 else 16_000
        )
        for v, o in enumerate(OFFSETS)
    ]
    clips = probe_clips(paths, in_step=False)
    in_step = before_detection(clips, FrameRange(), SyncConfig("auto", 30), calibrated=False)
    np.testing.assert_array_equal(in_step.offsets.offset, OFFSETS)
    assert (in_step.offsets.confidence[1:] > 0.5).all() and not in_step.from_people
    assert [w.start for w in in_step.clips] == (12 + OFFSETS).tolist()  # the first 12 frames not common


def test_without_sound_or_calibration_auto_says_what_to_give(tmp_path: Path) -> None:
    clips = probe_clips([coded_clip(tmp_path / f"c{v}.mp4", 20) for v in range(2)])
    with pytest.raises(InputError, match="c0, c1 has no sound, and without a calibration"):
        before_detection(clips, FrameRange(), SyncConfig("auto"), calibrated=False)
    with pytest.raises(InputError, match="needs every frame"):
        before_detection(clips, FrameRange(0, None, 2), SyncConfig("auto"), calibrated=True)
    windows = before_detection(clips, FrameRange(3, 15), SyncConfig("auto"), calibrated=True)
    assert windows.from_people and [(w.start, w.num_frames) for w in windows.clips] == [(3, 12)] * 2


def test_detections_are_put_on_one_clock_by_the_people(tmp_path: Path) -> None:
    scene = make_scene(SyntheticConfig(persons=3, views=4, frames=120, identical_appearance=True))
    o = scene.observations
    frame = o.frame + OFFSETS[o.view]  # each view's detections as its own clip numbers them
    inside = (frame >= 0) & (frame < 120)
    columns = {
        "view": o.view[inside],
        "keypoints2d": o.keypoints2d[inside],
        "confidence": o.keypoint_confidence[inside],
    }
    observer = FlatObserver(JOINT_NAMES)
    perception = PerceptionResult(
        observer.to_observations(columns, frame[inside], scene.true_cameras), (), columns, frame[inside]
    )
    clip = probe_clip(coded_clip(tmp_path / "c.mp4", 2))
    windows = ClipsInStep(tuple(replace(clip, num_frames=120) for _ in range(4)), FrameRange(), None, True)
    in_step, retimed = after_detection(
        windows, perception, observer, scene.true_cameras, SyncConfig("auto", 20)
    )
    np.testing.assert_array_equal(in_step.offsets.offset, OFFSETS)
    span = 120 - 19 - 12
    assert [(w.start, w.num_frames) for w in in_step.clips] == [(12 + d, span) for d in OFFSETS]
    # every detection kept is where the truth has it: same view, same instant
    truth = {(v, t) for v, t in zip(o.view.tolist(), (o.frame - 12).tolist(), strict=True) if 0 <= t < span}
    assert set(zip(retimed.observations.view.tolist(), retimed.frame.tolist(), strict=True)) == truth


def test_the_studio_shows_each_view_at_its_own_frame_of_the_instant(
    small_reconstruction, tmp_path: Path
) -> None:
    from studio.inspection import source_frame

    views = len(small_reconstruction.cameras)
    clips = tuple(str(coded_clip(tmp_path / f"c{v}.mp4", 40)) for v in range(views))
    # view v's file: reconstruction frame 0 at its frame 2 + 3 v, every (v + 1)-th frame after
    view_frames = tuple((2 + 3 * v, v + 1) for v in range(views))
    shown = replace(small_reconstruction, clips=clips, first_frame=4, view_frames=view_frames)
    for view in range(views):
        assert read_code(source_frame(shown, view, 3)) == 2 + 3 * view + 3 * (view + 1)
