"""The clips' thumbnails around the frame a viewer shows, in a bounded cache.

Keeping every frame of every view costs memory in proportion to the clip (a 320-pixel thumbnail of a
portrait 1080p view is about 0.5 MB: 2 GB for 1,000 frames of 4 views), so only the last
``capacity`` frames asked for are kept (all views of a frame together, the least recently shown
dropped first). Frames are decoded ``chunk`` at a time on a worker thread, from the frame asked for
on: a viewer playing or scrubbing forward reads on from where the last chunk stopped, a jump costs
one seek to the keyframe before it. While a frame is shown, the next chunk is read ahead.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator

import numpy as np
from jaxtyping import UInt8

from core.errors import InputError
from core.reconstruction import Reconstruction
from studio.inspection import source_thumbnails

Thumbnails = tuple[UInt8[np.ndarray, "h w 3"], ...]
"""One thumbnail per view, in the order of the cameras."""


class ThumbnailCache:
    """Thumbnails of every view at the frames around the one shown, decoded on demand.

    Args:
        reconstruction: whose clips (``clips``, ``first_frame``, ``frame_step``) are shown.
        width: thumbnail width, pixels (the height follows each camera's aspect ratio).
        on_ready: called, from the worker thread, with the frames (first, stop) just decoded.
        capacity: frames kept at most (each with every view); at least twice ``chunk``.
        chunk: frames decoded in one go.
    """

    def __init__(
        self,
        reconstruction: Reconstruction,
        width: int,
        on_ready: Callable[[int, int], None],
        capacity: int = 32,
        chunk: int = 8,
    ) -> None:
        if capacity < 2 * chunk:
            raise ValueError(f"a cache of {capacity} frames cannot hold two chunks of {chunk}")
        self._reconstruction = reconstruction
        self._width = width
        self._on_ready = on_ready
        self.capacity, self.chunk = capacity, chunk
        self._frames: OrderedDict[int, Thumbnails] = OrderedDict()
        self._streams: list[Iterator[np.ndarray]] = []
        self._next = -1  # the frame the open streams yield next
        self._wanted: int | None = None
        self._closed = False
        self.error: InputError | None = None  # why decoding stopped, if a clip failed
        self._changed = threading.Condition()
        self._worker = threading.Thread(target=self._decode_loop, daemon=True)
        self._worker.start()

    def __len__(self) -> int:
        with self._changed:
            return len(self._frames)

    def get(self, frame: int) -> Thumbnails | None:
        """Every view's thumbnail at ``frame`` if decoded; else None, and decoding starts there (then
        ``on_ready``). The chunk after a frame shown is read ahead."""
        with self._changed:
            images = self._frames.get(frame)
            if images is not None:
                self._frames.move_to_end(frame)
            if images is None or self._wanted is None:  # a frame not decoded goes first
                self._wanted = frame
                self._changed.notify()
            return images

    def close(self) -> None:
        """Stop the worker and close the clips."""
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._worker.join()

    def _decode_loop(self) -> None:
        try:
            while True:
                with self._changed:
                    while self._wanted is None and not self._closed:
                        self._changed.wait()
                    if self._closed:
                        return
                    wanted, self._wanted = self._wanted, None
                    stop = min(wanted + self.chunk, self._reconstruction.num_frames)
                    start = next((f for f in range(wanted, stop) if f not in self._frames), None)
                if start is not None:
                    self._on_ready(start, self._decode(start))
        except InputError as error:  # a clip that fails to decode: no more thumbnails
            self.error = error
        finally:
            self._close_streams()

    def _decode(self, start: int) -> int:
        """Decode a chunk of frames from ``start`` (fewer at the clip's end) into the cache; its stop."""
        rec = self._reconstruction
        if start != self._next:
            self._close_streams()
            self._streams = [source_thumbnails(rec, v, self._width, start) for v in range(len(rec.cameras))]
        stop = min(start + self.chunk, rec.num_frames)
        for frame in range(start, stop):
            images = tuple(next(stream) for stream in self._streams)
            with self._changed:
                self._frames[frame] = images
                self._frames.move_to_end(frame)
                while len(self._frames) > self.capacity:
                    self._frames.popitem(last=False)
        self._next = stop
        return stop

    def _close_streams(self) -> None:
        for stream in self._streams:
            stream.close()
        self._streams, self._next = [], -1
