"""One channel of an OpenEXR image, read with the OpenEXR library (the ``train`` extra).

Why not OpenCV: the ``opencv-python-headless`` wheels this project installs are built without OpenEXR
(``cv2.getBuildInformation()`` says ``OpenEXR: NO``), and where OpenCV has it, its decoder reads only
channels named R/G/B, Y, Z or 0, 1, … — BEDLAM's depth files hold one channel named ``Depth``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from jaxtyping import Float

from core.errors import InputError


def read_exr_channel(path: Path, channel: str) -> Float[np.ndarray, "H W"]:
    """The pixels of ``channel`` as float32, rows top to bottom; an ``InputError`` naming the file for
    one that is not an EXR image or lacks the channel."""
    import OpenEXR

    try:
        with OpenEXR.File(str(path)) as image:
            channels = image.channels()
            if channel not in channels:
                raise InputError(f"{path}: no {channel!r} channel (it has {', '.join(sorted(channels))})")
            return np.asarray(channels[channel].pixels, dtype=np.float32)
    except (OSError, RuntimeError) as error:
        raise InputError(f"{path}: not a readable EXR image ({error})") from None


def write_exr_channel(path: Path, channel: str, pixels: Float[np.ndarray, "H W"]) -> Path:
    """Write one float32 channel, ZIP-compressed (as BEDLAM's depth files are)."""
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {channel: np.ascontiguousarray(pixels, dtype=np.float32)}) as image:
        image.write(str(path))
    return Path(path)
