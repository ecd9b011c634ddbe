"""Video probing, frame ranges, upright decoding and clip checks, on tiny clips written here with PyAV.

Each frame carries its index as 8 black/white blocks along the top row (bit k = block k), so a test can
tell exactly which frame it got back, plus a square that moves so consecutive frames differ.
"""

from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

from core.errors import InputError
from core.io.video import (
    _SEEK_MIN_FRAMES,
    ClipHealth,
    ClipInfo,
    FrameRange,
    VideoError,
    _indexed_frames,
    in_step_clips,
    iter_frames,
    iter_synchronized,
    probe_clip,
    probe_clips,
)

W, H, BLOCK = 64, 48, 8
DEMO_VIDEOS = Path.home() / ".cache/chromm-studio/examples/Demo_MultiPerson/videos"


def coded_frame(index: int) -> np.ndarray:
    """A 48×64 RGB frame whose top row of blocks spells ``index`` in binary, with a moving red square."""
    image = np.full((H, W, 3), 40, np.uint8)
    bits = (index >> np.arange(W // BLOCK)) & 1  # (8,) bit k of the index
    image[:BLOCK] = np.repeat(bits * 255, BLOCK).astype(np.uint8)[None, :, None]
    x = 4 * index % (W - BLOCK)
    image[24 : 24 + BLOCK, x : x + BLOCK] = (255, 0, 0)
    return image


def read_code(image: np.ndarray) -> int:
    """The index spelt by :func:`coded_frame`, read from block centres so codec blur does not matter."""
    centres = image[2:6, :, :].mean(axis=(0, 2)).reshape(W // BLOCK, BLOCK)[:, 2:6].mean(axis=1)
    return int(((centres > 128) << np.arange(W // BLOCK)).sum())


def write_clip(path: Path, images, fps: int = 25, rotation: int = 0, tags=None, options=None) -> Path:
    """Encodes RGB images to ``path`` as H.264 with B-frames, like camera files, and a keyframe every 10
    frames so that seeking has somewhere to land."""
    images = list(images)
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream("libx264", rate=fps, options={"g": "10", "bf": "2"})
        stream.height, stream.width = images[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        stream.metadata.update(tags or {})
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def coded_clip(path: Path, num_frames: int = 10, **kwargs) -> Path:
    return write_clip(path, (coded_frame(i) for i in range(num_frames)), **kwargs)


@pytest.fixture
def clip(tmp_path) -> ClipInfo:
    return probe_clip(coded_clip(tmp_path / "cam0.mp4"))


def test_probe_reads_size_rate_count_and_name(tmp_path):
    info = probe_clip(coded_clip(tmp_path / "left.mp4", num_frames=12, fps=30))
    assert (info.name, info.width, info.height, info.fps, info.num_frames, info.rotation) == (
        "left",
        W,
        H,
        30.0,
        12,
        0,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2:8:3", FrameRange(2, 8, 3)),
        ("2:8", FrameRange(2, 8)),
        ("5:", FrameRange(5)),
        (":4", FrameRange(stop=4)),
        ("::2", FrameRange(step=2)),
        (" 1 : 9 ", FrameRange(1, 9)),
    ],
)
def test_frame_range_parses_slice_text(text, expected):
    assert FrameRange.parse(text) == expected


@pytest.mark.parametrize("text", ["", "7", "1:2:3:4", "a:b", "1.5:", "::x"])
def test_frame_range_rejects_bad_text(text):
    with pytest.raises(InputError, match="frame range"):
        FrameRange.parse(text)


def test_frame_range_indices_clip_stop_and_reject_bad_ranges():
    np.testing.assert_array_equal(FrameRange(3, 100, 4).indices(10), [3, 7])
    for bad in [FrameRange(step=0), FrameRange(start=-1), FrameRange(start=10), FrameRange(5, 5)]:
        with pytest.raises(InputError, match="frame range"):
            bad.indices(10)


@pytest.mark.parametrize("text", ["0:10", "2:9:3", "::4", "7:", ":1"])
def test_iter_frames_yields_exactly_the_picked_frames(clip, text):
    frames = FrameRange.parse(text)
    got = list(iter_frames(clip, frames))
    expected = frames.indices(clip.num_frames).tolist()
    assert [index for index, _ in got] == expected
    assert [read_code(image) for _, image in got] == expected
    assert all(image.shape == (H, W, 3) and image.dtype == np.uint8 for _, image in got)


@pytest.mark.parametrize("text", ["120::7", "95:99", "149:"])
def test_late_start_seeks_to_the_right_frames(tmp_path, text):
    info = probe_clip(coded_clip(tmp_path / "long.mp4", num_frames=150))
    frames = FrameRange.parse(text)
    got = [(index, read_code(image)) for index, image in iter_frames(info, frames)]
    expected = frames.indices(150).tolist()
    assert got == list(zip(expected, expected, strict=True))


def test_display_matrix_rotation_is_applied(tmp_path):
    info = probe_clip(coded_clip(tmp_path / "phone.mp4", rotation=90))
    assert (info.rotation, info.width, info.height) == (90, H, W)
    stored = dict(iter_frames(probe_clip(coded_clip(tmp_path / "flat.mp4")), FrameRange()))
    for index, upright in iter_frames(info, FrameRange()):
        assert upright.shape == (W, H, 3) and upright.flags.c_contiguous
        assert np.abs(upright.astype(int) - np.rot90(stored[index]).astype(int)).mean() < 2
    # Counter-clockwise: frame 1's only white code block, stored top-left, ends up bottom-left.
    upright = dict(iter_frames(info, FrameRange(1, 2)))[1]
    assert upright[-6:-2, 2:6].mean() > 200 and upright[2:6, 2:6].mean() < 60


def test_legacy_rotate_tag_is_clockwise_and_uncounted_containers_are_demuxed(tmp_path):
    info = probe_clip(coded_clip(tmp_path / "old.mkv", num_frames=7, tags={"rotate": "90"}))
    assert (info.rotation, info.width, info.height, info.num_frames) == (270, H, W, 7)
    upright = dict(iter_frames(info, FrameRange(1, 2)))[1]
    assert upright[2:6, -6:-2].mean() > 200  # stored top-left, turned clockwise: top-right


def test_iter_synchronized_yields_one_frame_per_view_per_step(tmp_path):
    infos = probe_clips([coded_clip(tmp_path / f"cam{v}.mp4") for v in range(3)])
    steps = list(iter_synchronized(infos, FrameRange.parse("1:9:2")))
    assert [index for index, _ in steps] == [1, 3, 5, 7]
    for index, views in steps:
        assert [read_code(image) for image in views] == [index] * 3


def test_missing_file_is_named(tmp_path):
    with pytest.raises(VideoError, match="nowhere.mp4"):
        probe_clip(tmp_path / "nowhere.mp4")


def test_text_file_is_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video\n")
    with pytest.raises(VideoError, match="notes.mp4"):
        probe_clip(path)


@pytest.mark.parametrize(
    ("name", "empty_video_stream", "problem"),
    [("sound.wav", False, "has no video stream"), ("silent.mkv", True, "has no frames")],
)
def test_clip_without_video_frames_is_named(tmp_path, name, empty_video_stream, problem):
    """Sound only, or a video stream that never got a frame (a recording stopped at once)."""
    path = tmp_path / name
    with av.open(str(path), "w") as container:
        if empty_video_stream:
            video = container.add_stream("libx264", rate=25)
            video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        sound = container.add_stream("pcm_s16le", rate=8000, layout="mono")
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        samples.sample_rate = 8000
        container.mux(sound.encode(samples))
        container.mux(sound.encode())
    with pytest.raises(VideoError, match=f"{name}: {problem}"):
        probe_clip(path)


def test_single_clip_is_refused(tmp_path):
    with pytest.raises(VideoError, match="only.mp4.*at least two synchronized clips"):
        probe_clips([coded_clip(tmp_path / "only.mp4")])


def test_duplicate_clip_is_refused(tmp_path):
    path = coded_clip(tmp_path / "same.mp4")
    with pytest.raises(VideoError, match="same.mp4.*twice"):
        probe_clips([path, tmp_path / "." / "same.mp4"])


def test_different_frame_counts_name_both_clips(tmp_path):
    paths = [coded_clip(tmp_path / "a.mp4", 10), coded_clip(tmp_path / "b.mp4", 12)]
    with pytest.raises(VideoError, match=r"a.mp4 has 10 frames but .*b.mp4 has 12"):
        probe_clips(paths)


def test_clips_at_unrelated_rates_are_read_at_the_lowest_by_nearest_frame(tmp_path):
    slow = coded_clip(tmp_path / "slow.mp4", 20, fps=25)
    fast = coded_clip(tmp_path / "fast.mp4", 24, fps=30)  # the same 0.8 s
    infos = probe_clips([slow, fast])
    assert [(i.fps, i.num_frames, i.stride) for i in infos] == [(25.0, 20, 1.0), (25.0, 20, 1.2)]
    # 25 fps instants 0, 40, 80, 120, 160 ms: the 30 fps frames nearest them (0, 33, 67, 133, 167 ms)
    assert [read_code(image) for _, image in iter_frames(infos[1], FrameRange(0, 5))] == [0, 1, 2, 4, 5]
    assert [read_code(image) for _, image in iter_frames(infos[1], FrameRange(17, 20))] == [20, 22, 23]


def test_rates_that_differ_leave_differing_lengths_named_at_the_common_rate(tmp_path):
    paths = [coded_clip(tmp_path / "a.mp4", 20, fps=25), coded_clip(tmp_path / "b.mp4", 30, fps=30)]
    with pytest.raises(VideoError, match=r"a.mp4 has 20 frames but .*b.mp4 has 25 \(read at 25 fps"):
        probe_clips(paths)


def test_clip_ending_early_is_named(tmp_path):
    """A faststart MP4 cut after six packets still claims ten frames; decoding must notice."""
    path = coded_clip(tmp_path / "cut.mp4", options={"movflags": "faststart"})
    with av.open(str(path)) as container:
        cut_at = [packet.pos for packet in container.demux(video=0) if packet.size][6]
    path.write_bytes(path.read_bytes()[:cut_at])
    infos = probe_clips([coded_clip(tmp_path / "whole.mp4"), path])
    assert infos[1].num_frames == 10
    with pytest.raises(VideoError, match="cut.mp4"):
        list(iter_synchronized(infos, FrameRange()))


def test_iter_synchronized_refuses_clips_out_of_step(tmp_path):
    info = probe_clip(coded_clip(tmp_path / "a.mp4"))
    with pytest.raises(VideoError, match="a.mp4 has 10 frames but .*a.mp4 has 9"):
        iter_synchronized([info, replace(info, num_frames=9)], FrameRange())


class OvershootingContainer:
    """Stands in for a container whose seek lands after the wanted frame (a broken index)."""

    def __init__(self, num_frames: int):
        self.num_frames, self.first = num_frames, 0

    def seek(self, offset: int, **_) -> None:
        self.first = self.num_frames - 2 if offset else 0

    def decode(self, stream):
        return (SimpleNamespace(pts=pts) for pts in range(self.first, self.num_frames))


def test_overshooting_seek_falls_back_to_decoding_from_the_start():
    stream = SimpleNamespace(start_time=0, time_base=Fraction(1, 25))
    start = _SEEK_MIN_FRAMES + 5
    decoded = _indexed_frames(OvershootingContainer(start + 10), stream, 25.0, start)
    assert [(index, frame.pts) for index, frame in decoded] == [(i, i) for i in range(start + 10)]


def health_of(info: ClipInfo, frames: FrameRange | None = None) -> str | None:
    health = ClipHealth()
    for _, image in iter_frames(info, frames or FrameRange()):
        health.observe(image)
    return health.problem()


def test_clip_health_flags_black_and_frozen_clips_but_not_a_moving_one(tmp_path, clip):
    black = write_clip(tmp_path / "black.mp4", [np.full((H, W, 3), 3, np.uint8)] * 10)
    frozen = write_clip(tmp_path / "frozen.mp4", [coded_frame(5)] * 10)
    assert health_of(probe_clip(black)) == "black"
    assert health_of(probe_clip(frozen)) == "frozen"
    assert health_of(clip) is None
    assert ClipHealth().problem() is None
    assert health_of(probe_clip(frozen), FrameRange(0, 4)) is None  # too few frames to tell


@pytest.mark.skipif(not DEMO_VIDEOS.is_dir(), reason=f"demo clips not downloaded to {DEMO_VIDEOS}")
def test_demo_clips_probe_as_portrait_60fps_100_frames():
    infos = probe_clips(sorted(DEMO_VIDEOS.glob("cam0*.mp4")))
    assert len(infos) == 4
    for info in infos:
        metadata = (info.width, info.height, info.fps, info.num_frames, info.rotation)
        assert metadata == (1088, 1920, 60.0, 100, 0)
    index, image = next(iter_frames(infos[0], FrameRange()))
    assert index == 0 and image.shape == (1920, 1088, 3)


def test_clips_at_multiples_of_one_rate_are_read_at_the_lowest(tmp_path):
    slow = coded_clip(tmp_path / "slow.mp4", 20, fps=25)
    fast = coded_clip(tmp_path / "fast.mp4", 40, fps=50)  # the same 0.8 s, twice as many frames
    infos = probe_clips([slow, fast])
    assert [(i.fps, i.num_frames, i.stride) for i in infos] == [(25.0, 20, 1), (25.0, 20, 2)]
    assert [read_code(image) for _, image in iter_frames(infos[1], FrameRange(3, 7))] == [6, 8, 10, 12]
    moved = in_step_clips(infos, np.array([0, 3]))  # the fast clip's frame 3 (at 25 fps) is the slow one's 0
    assert [(w.start, w.num_frames) for w in moved] == [(0, 17), (6, 17)]
    assert [index for index, _ in iter_frames(moved[1], FrameRange(0, 2))] == [0, 1]
    assert [read_code(image) for _, image in iter_frames(moved[1], FrameRange(0, 2))] == [6, 8]
