"""Clips for a reconstruction that has none (a synthetic scene), so that whatever shows or decodes the
views (the viewer's thumbnails, its benchmark) has real video to read."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np

from core.reconstruction import Reconstruction


def with_stand_in_clips(reconstruction: Reconstruction, directory: Path, downscale: int) -> Reconstruction:
    """``reconstruction`` with a stand-in clip per view written under ``directory`` (each camera's image
    size divided by ``downscale``; every frame grey with its camera and frame number written on it)."""
    clips = []
    for camera in reconstruction.cameras.cameras:
        path = directory / f"{camera.name}.mp4"
        width, height = camera.width // downscale // 2 * 2, camera.height // downscale // 2 * 2
        fps = round(reconstruction.fps)
        with av.open(str(path), "w") as container:
            stream = container.add_stream(
                "libx264", rate=fps, options={"g": str(2 * fps), "preset": "veryfast"}
            )
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for frame in range(reconstruction.num_frames):
                image = np.full((height, width, 3), 60 + frame % 120, dtype=np.uint8)
                cv2.putText(
                    image,
                    f"{camera.name} {frame}",
                    (10, height // 2),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    1,
                    (255,) * 3,
                    2,
                )
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())
        clips.append(str(path))
    return replace(reconstruction, clips=tuple(clips), first_frame=0, frame_step=1)
