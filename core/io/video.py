"""Video clips as the reconstruction sees them: probed, frame-ranged and decoded upright, one frame at a time.

Multi-view capture means several long, high-resolution clips that must advance in lock step, so frames
are streamed (never collected), the phone rotation tag is applied on the fly, and every failure names
the file it came from.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
from av.container import InputContainer
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream
from jaxtyping import Int, UInt8

from core.errors import InputError

__all__ = [
    "ClipHealth",
    "ClipInfo",
    "FrameRange",
    "VideoError",
    "iter_frames",
    "in_step_clips",
    "iter_synchronized",
    "probe_clip",
    "probe_clips",
]

RATE_TOLERANCE = 1e-3
"""Frame rates this close (relatively) are one: 29.97 and 30 fps drift a frame in 1,000, as phones
reporting their average rate do anyway."""
_SEEK_MIN_FRAMES = 90
"""Ranges starting this many frames in seek to the keyframe before them instead of decoding from frame 0."""

_BLACK_MEAN = 8.0
"""Grey level (0-255) under which a frame counts as black."""

_BLACK_SHARE = 0.95
"""Share of black frames that makes a clip black (a few frames of fade-in are allowed)."""

_FROZEN_DIFF = 0.5
"""Largest mean absolute grey change between consecutive frames of a frozen clip (codec noise only)."""

_FROZEN_MIN_FRAMES = 10
"""Frames it takes to call a clip frozen: over a few frames a static camera on people standing still
changes no more than codec noise."""

_HEALTH_SIDE = 64
"""Longest side, in pixels, of the grey copy health statistics are computed on."""


CLIP_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
"""File endings taken for clips where a folder is searched for them."""


class VideoError(InputError):
    """A clip that cannot be read, or clips that cannot be used together; the message names the file."""


@dataclass(frozen=True)
class ClipInfo:
    """What a clip holds, probed without decoding it (only its first frame, for the rotation)."""

    path: Path
    """The clip file."""
    name: str
    """File stem, used as the view name."""
    width: int
    """Pixels per row of the upright (rotation-applied) frames."""
    height: int
    """Rows of the upright (rotation-applied) frames."""
    fps: float
    """Frames per second."""
    num_frames: int
    """Exact frame count, from the container when it is consistent, else from counting packets."""
    rotation: int
    """Degrees, counter-clockwise (FFmpeg's display-matrix and ``np.rot90``'s sense; 0, 90, 180 or 270),
    the stored frames are rotated by to display upright."""
    start: int = 0
    """The file's frame that is the clip's frame 0: clips put in step with others (``in_step_clips``)
    are windows of their files, ``num_frames`` long."""
    stride: float = 1.0
    """File frames per clip frame (≥ 1): a file at a higher rate than the others is read at theirs
    (``fps``), its clip frame k being the file's frame nearest that instant (:meth:`file_frames`)."""

    def file_frames(self, frames: Int[np.ndarray, " T"]) -> Int[np.ndarray, " T"]:
        """The file's frame shown at each clip frame: the nearest to its instant.

        >>> clip = ClipInfo(Path("a.mp4"), "a", 4, 4, 25.0, 20, 0, start=2, stride=1.2)
        >>> clip.file_frames(np.arange(5))
        array([2, 3, 4, 6, 7])
        """
        return self.start + np.floor(np.asarray(frames) * self.stride + 0.5).astype(np.int64)


def probe_clip(path: Path) -> ClipInfo:
    """Reads a clip's size, rate, exact frame count and rotation; fails early on anything unusable.

    Raises:
        VideoError: the file is missing, not a video, has no video stream or no frames.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such video file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            if not rate:
                raise VideoError(f"{path}: has no frame rate")
            fps = float(rate)
            first = next(container.decode(stream), None)
            if first is None:
                raise VideoError(f"{path}: has no frames")
            rotation = _rotation(first, stream)
            num_frames = _container_frame_count(stream, fps) or _count_packets(container, path)
            width, height = stream.width, stream.height
    except av.error.FFmpegError as error:
        raise VideoError(f"{path}: not a readable video ({error.strerror})") from error
    if rotation % 180:
        width, height = height, width
    return ClipInfo(path, path.stem, width, height, fps, num_frames, rotation)


def probe_clips(paths: Sequence[Path], in_step: bool = True) -> tuple[ClipInfo, ...]:
    """Probes the clips of one capture and checks they can be decoded in lock step (``in_step``: else
    only that they share a frame rate, for clips to be put in step by their offsets).

    Raises:
        VideoError: fewer than two clips, a path given twice, or clips differing in frame count or rate.
    """
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        given = f"{paths[0]}: a single view" if paths else "no clips given"
        raise VideoError(f"{given}: multi-view reconstruction needs at least two synchronized clips")
    seen: dict[Path, Path] = {}
    for path in paths:
        key = path.resolve()
        if key in seen:
            raise VideoError(f"{path}: given twice (also as {seen[key]}); each view needs its own clip")
        seen[key] = path
    infos = _at_common_rate(tuple(probe_clip(p) for p in paths))
    _check_in_step(infos, in_step)
    return infos


def _at_common_rate(infos: tuple[ClipInfo, ...]) -> tuple[ClipInfo, ...]:
    """The clips read at the lowest rate among them: a 60 fps phone beside 30 fps ones gives every second
    frame, a 30 fps one beside 25 fps ones the frame nearest each 25 fps instant (off by at most half a
    frame of its own, 17 ms). Rates within 0.1 % (29.97 and 30 fps) count as one."""
    lowest = min(info.fps for info in infos)
    return tuple(_resampled(info, lowest) for info in infos)


def _resampled(info: ClipInfo, fps: float) -> ClipInfo:
    """``info`` read at the lower rate ``fps``: its frames nearest each instant of that rate."""
    ratio = info.fps / fps
    if math.isclose(ratio, 1, rel_tol=RATE_TOLERANCE):
        return info
    if math.isclose(ratio, round(ratio), rel_tol=RATE_TOLERANCE):
        ratio = float(round(ratio))  # a whole multiple: every ratio-th frame, exactly
    # the clip's last frame k is the last whose nearest file frame, round(k · ratio), the file has
    count = math.floor((info.num_frames - 0.5) / ratio) + 1
    return replace(info, fps=fps, stride=ratio, num_frames=count)


def _check_in_step(infos: Sequence[ClipInfo], same_length: bool = True) -> None:
    """Synchronized clips must share frame count and rate, or frame t would not be one instant."""
    first = infos[0]
    for info in infos[1:]:
        if same_length and info.num_frames != first.num_frames:
            read = f" (read at {info.fps:g} fps)" if info.stride != 1 else ""
            raise VideoError(
                f"{first.path} has {first.num_frames} frames but {info.path} has {info.num_frames}{read}; "
                "synchronized clips must have the same number of frames (trim them to the same span)"
            )
        if not math.isclose(info.fps, first.fps, rel_tol=RATE_TOLERANCE):
            raise VideoError(
                f"{first.path} runs at {first.fps:g} fps but {info.path} at {info.fps:g} fps; "
                "synchronized clips must be read at one frame rate"
            )


def _rotation(frame: av.VideoFrame, stream: VideoStream) -> int:
    """Counter-clockwise display rotation: the display matrix, else the legacy clockwise ``rotate`` tag.

    The tag is what older FFmpeg copied into remuxed files (Matroska spells it ``ROTATE``).
    """
    tags = {key.lower(): value for key, value in stream.metadata.items()}
    degrees = frame.rotation or -int(float(tags.get("rotate", 0)))
    return round(degrees / 90) % 4 * 90


def _container_frame_count(stream: VideoStream, fps: float) -> int | None:
    """The container's frame count, trusted only when its duration agrees with it to a frame."""
    if not stream.frames:
        return None
    if stream.duration is not None and stream.time_base is not None:
        from_duration = float(stream.duration * stream.time_base) * fps
        if abs(from_duration - stream.frames) > 1.0:
            return None
    return stream.frames


def _count_packets(container: InputContainer, path: Path) -> int:
    """Counts video packets by demuxing only (one packet is one frame for the codecs cameras write)."""
    container.seek(0)
    count = sum(1 for packet in container.demux(video=0) if packet.size and not packet.is_discard)
    if count == 0:
        raise VideoError(f"{path}: has no frames")
    return count


@dataclass(frozen=True)
class FrameRange:
    """Which frames to use, as a Python slice: ``start`` (inclusive), ``stop`` (exclusive, None = end)."""

    start: int = 0
    """First frame index."""
    stop: int | None = None
    """One past the last frame index; None runs to the end, a value past the end is clipped."""
    step: int = 1
    """Stride between used frames."""

    @staticmethod
    def parse(text: str) -> FrameRange:
        """Parses slice text ``"A:B:S"``, ``"A:B"``, ``"A:"``, ``":B"`` or ``"::S"`` (any part may be empty).

        >>> FrameRange.parse("10::2")
        FrameRange(start=10, stop=None, step=2)
        """
        parts = text.strip().split(":")
        if not 2 <= len(parts) <= 3:
            raise InputError(f"frame range {text!r}: expected 'start:stop' or 'start:stop:step', e.g. '::2'")
        try:
            start, stop, step = (int(p) if p.strip() else None for p in [*parts, ""][:3])
        except ValueError as error:
            raise InputError(f"frame range {text!r}: start, stop and step must be whole numbers") from error
        return FrameRange(0 if start is None else start, stop, 1 if step is None else step)

    def indices(self, num_frames: int) -> Int[np.ndarray, " T"]:
        """The frame indices this range picks from a clip of ``num_frames`` frames.

        Raises:
            InputError: a step below 1, a negative start, a start past the clip, or an empty range.
        """
        if self.step < 1:
            raise InputError(f"frame range {self}: step must be at least 1")
        if self.start < 0:
            raise InputError(f"frame range {self}: start must not be negative")
        if self.start >= num_frames:
            raise InputError(f"frame range {self}: starts past the clip's last frame ({num_frames - 1})")
        stop = num_frames if self.stop is None else min(self.stop, num_frames)
        if stop <= self.start:
            raise InputError(f"frame range {self}: selects no frames")
        return np.arange(self.start, stop, self.step)


def iter_frames(info: ClipInfo, frames: FrameRange) -> Iterator[tuple[int, UInt8[np.ndarray, "H W 3"]]]:
    """Streams the range's frames of one clip as upright RGB, holding one decoded frame at a time.

    Frames before and between the picked ones are decoded and dropped; a late start seeks first.
    The range is checked here, before any decoding, so a bad range fails at the call.

    Raises:
        InputError: the range does not fit the clip.
        VideoError: (while iterating) the clip fails to decode or ends before its reported last frame.
    """
    picked = frames.indices(info.num_frames)
    wanted = info.file_frames(picked)
    return ((int(picked[k]), image) for k, image in enumerate(_decode_frames(info, wanted)))


def _decode_frames(info: ClipInfo, wanted: Int[np.ndarray, " T"]) -> Iterator[UInt8[np.ndarray, "H W 3"]]:
    """The file's frames ``wanted`` (increasing), in order; see :func:`iter_frames`."""
    index, k = -1, 0
    try:
        with av.open(str(info.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            to_rgb = VideoReformatter()  # one scaler for the clip; frame.to_ndarray would build one per frame
            for index, frame in _indexed_frames(container, stream, info.fps * info.stride, int(wanted[0])):
                if index == wanted[k]:
                    rgb = to_rgb.reformat(frame, format="rgb24").to_ndarray()
                    yield _upright(rgb, info.rotation)
                    k += 1
                    if k == len(wanted):
                        return
    except av.error.FFmpegError as error:
        raise VideoError(f"{info.path}: decoding failed after frame {index} ({error.strerror})") from error
    raise VideoError(
        f"{info.path}: ended after frame {index} though it reports {info.num_frames} frames; "
        "the file is probably truncated or damaged"
    )


def _indexed_frames(
    container: InputContainer, stream: VideoStream, fps: float, start: int
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Decoded frames with their index, seeking to the keyframe before ``start`` when that saves work.

    After a seek the first frame is placed by its timestamp and the rest counted on, so a jittery
    timestamp cannot repeat or skip an index; if the seek overshoots, decoding restarts from frame 0.
    """
    origin = stream.start_time or 0
    if start >= _SEEK_MIN_FRAMES:
        container.seek(origin + int(start / fps / stream.time_base), backward=True, stream=stream)
        frames = container.decode(stream)
        first = next(frames, None)
        if first is not None and first.pts is not None:
            index = round(float((first.pts - origin) * stream.time_base) * fps)
            if index <= start:
                yield index, first
                yield from enumerate(frames, start=index + 1)
                return
        container.seek(0)
    yield from enumerate(container.decode(stream))


def _upright(image: UInt8[np.ndarray, "h w 3"], rotation: int) -> UInt8[np.ndarray, "H W 3"]:
    """Turns a stored frame counter-clockwise by ``rotation`` degrees, contiguous for downstream code.

    >>> _upright(np.arange(4, dtype=np.uint8).reshape(2, 2, 1), 90)[..., 0]
    array([[1, 3],
           [0, 2]], dtype=uint8)
    """
    if rotation == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=rotation // 90))


def in_step_clips(infos: Sequence[ClipInfo], offsets: Int[np.ndarray, " V"]) -> tuple[ClipInfo, ...]:
    """The clips as windows of one common span: the instant at frame t of the first clip is at frame
    t + ``offsets[v]`` of clip v; each window starts at the first instant every clip has seen and ends
    with the first clip to end.

    Raises:
        VideoError: the clips share no instant under these offsets.
    """
    begin = int(np.max(-np.asarray(offsets)))
    end = int(np.min([info.num_frames - o for info, o in zip(infos, offsets, strict=True)]))
    if end <= begin:
        raise VideoError(
            f"with the frame offsets {list(map(int, offsets))} the clips "
            f"({', '.join(i.name for i in infos)}) share no instant"
        )
    return tuple(
        replace(info, start=int(info.file_frames(begin + int(o))), num_frames=end - begin)
        for info, o in zip(infos, offsets, strict=True)
    )


def iter_synchronized(
    infos: Sequence[ClipInfo], frames: FrameRange
) -> Iterator[tuple[int, list[UInt8[np.ndarray, "H W 3"]]]]:
    """Streams the range's frames of all views in lock step: V frames in memory, never V×T.

    Raises:
        InputError: the range does not fit the clips.
        VideoError: the clips differ in frame count or rate, or (while iterating) one ends early, named.
    """
    _check_in_step(infos)
    streams = [iter_frames(info, frames) for info in infos]
    return ((views[0][0], [image for _, image in views]) for views in zip(*streams, strict=True))


class ClipHealth:
    """Cheap running statistics of one clip's frames, to warn about a black or frozen camera.

    Works on a grey copy downsampled to about 64 pixels, keeping only the previous one.
    """

    def __init__(self) -> None:
        self._frames = 0
        self._black = 0
        self._largest_change = 0.0
        self._previous: np.ndarray | None = None

    def observe(self, frame: UInt8[np.ndarray, "H W 3"]) -> None:
        """Adds one decoded RGB frame."""
        stride = max(1, max(frame.shape[:2]) // _HEALTH_SIDE)
        grey = frame[::stride, ::stride].mean(axis=2, dtype=np.float32)
        self._frames += 1
        self._black += bool(grey.mean() < _BLACK_MEAN)
        if self._previous is not None:
            change = float(np.abs(grey - self._previous).mean())
            self._largest_change = max(self._largest_change, change)
        self._previous = grey

    def problem(self) -> str | None:
        """``"black"``, ``"frozen"`` (no change between frames beyond codec noise) or None if it is live."""
        if self._frames and self._black >= _BLACK_SHARE * self._frames:
            return "black"
        if self._frames >= _FROZEN_MIN_FRAMES and self._largest_change <= _FROZEN_DIFF:
            return "frozen"
        return None
