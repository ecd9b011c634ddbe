"""Short sequence folders cut from an installed example's clips: the batch's test and benchmark data."""

from __future__ import annotations

import shutil
from pathlib import Path

import av

from core.io.video import FrameRange, iter_frames, probe_clip
from core.staging import staging_path
from studio.assets import example_inputs


def write_cut(folder: Path, start: int, stop: int, example: str = "Demo_MultiPerson") -> Path:
    """A sequence folder (``videos/`` and ``calibration/``) holding frames ``start:stop`` of every clip of
    ``example``, re-encoded as H.264 at the clip's rate; written once, whole (an existing one is kept)."""
    folder = Path(folder)
    if folder.is_dir():
        return folder
    videos, calibration = example_inputs(example)
    staged = staging_path(folder, "cutting")
    (staged / "videos").mkdir(parents=True)
    (staged / "calibration").mkdir()
    shutil.copy(calibration, staged / "calibration" / calibration.name)
    for video in videos:
        info = probe_clip(video)
        with av.open(str(staged / "videos" / f"{video.stem}.mp4"), "w") as container:
            stream = container.add_stream("libx264", rate=round(info.fps), options={"crf": "18"})
            stream.width, stream.height, stream.pix_fmt = info.width, info.height, "yuv420p"
            for _, image in iter_frames(info, FrameRange(start, stop)):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())
    staged.rename(folder)
    return folder
