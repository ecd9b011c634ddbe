"""Pi3X's inputs and outputs in this project's terms: frames in, cameras, depth and coloured points out.

Input (as the published loader does it): every frame of a batch is resized, not cropped, to one size of
about ``PIXEL_LIMIT`` pixels whose sides are multiples of the 14-pixel patch, with PIL's Lanczos filter,
and scaled to [0, 1] (the network normalises internally). Small frames are enlarged to that size too.

Pixels on the Pi3X grid are in OpenCV's convention, like the original frames: the published intrinsics
recovery places pixel ``i``'s centre at ``i``. (The published conditioning path, which this project does
not use, instead puts pixel centres at ``i + 0.5``.)

Outputs: ``camera_poses`` are camera-to-world OpenCV matrices, ``local_points`` camera-frame points and
``points`` world points, all in Pi3X's metric estimate; ``conf`` are logits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from jaxtyping import Float, UInt8
from PIL import Image
from scipy.special import expit

from core.nets.image_map import NetIOError, PixelMap, check_frames, resize_frames
from core.types import Camera, CameraRig

__all__ = [
    "CONFIDENCE_THRESHOLD",
    "PATCH_SIZE",
    "PIXEL_LIMIT",
    "coloured_points",
    "depth_maps",
    "intrinsics_from_rays",
    "pi3x_cameras",
    "pi3x_input",
    "pi3x_pixel_map",
    "pi3x_size",
]

PIXEL_LIMIT = 255_000
"""Most pixels of a Pi3X input image."""
PATCH_SIZE = 14
"""Both sides of a Pi3X input image are multiples of the encoder's patch."""
CONFIDENCE_THRESHOLD = 0.1
"""sigmoid(conf) the published example keeps points above."""
_RESAMPLE = Image.Resampling.LANCZOS
_RAY_Z_EPSILON = 1e-10
"""Added to |z| before dividing, as the published recovery does (keeps grazing rays finite)."""
_NORM_EPSILON = 1e-12
"""Floor of a direction's length when normalising it (torch's ``F.normalize`` default)."""


def pi3x_size(width: int, height: int, pixel_limit: int = PIXEL_LIMIT) -> tuple[int, int]:
    """The (width, height) Pi3X resizes a ``width`` x ``height`` frame to.

    The published rule: scale to exactly ``pixel_limit`` pixels (``PIXEL_LIMIT`` as released), round each
    side to the nearest number of patches (Python's ``round``, halves to even), then, while the area is
    over the limit, drop one patch from the side that is longer than the original aspect asks for (the
    height on a tie). A side of zero patches becomes one; only extreme aspect ratios (about 1:750) reach
    that, and there the area can exceed the limit.

    >>> pi3x_size(1920, 1080), pi3x_size(640, 480), pi3x_size(3000, 1000)
    ((672, 378), (574, 434), (868, 280))
    """
    if width <= 0 or height <= 0:
        raise NetIOError(f"a frame must have a positive size, got {width} x {height}")
    scale = math.sqrt(pixel_limit / (width * height))
    target_width, target_height = width * scale, height * scale
    columns, rows = round(target_width / PATCH_SIZE), round(target_height / PATCH_SIZE)
    while columns * PATCH_SIZE * rows * PATCH_SIZE > pixel_limit:
        if columns / rows > target_width / target_height:
            columns -= 1
        else:
            rows -= 1
    return max(1, columns) * PATCH_SIZE, max(1, rows) * PATCH_SIZE


def pi3x_pixel_map(width: int, height: int, pixel_limit: int = PIXEL_LIMIT) -> PixelMap:
    """Original pixels to Pi3X grid pixels, both OpenCV-centred: ``u' = (u + 0.5) w' / w - 0.5``.

    PIL's resize aligns the outer pixel edges of the two images, so image corners (at -0.5 in this
    convention) map to each other; each axis has its own scale since both sides are rounded.
    """
    network_width, network_height = pi3x_size(width, height, pixel_limit)
    sx, sy = network_width / width, network_height / height
    return PixelMap(
        original_size=(width, height),
        network_size=(network_width, network_height),
        scale=(sx, sy),
        offset=(0.5 * sx - 0.5, 0.5 * sy - 0.5),
    )


def pi3x_input(
    frames: UInt8[np.ndarray, "N H W 3"], pixel_limit: int = PIXEL_LIMIT
) -> tuple[Float[torch.Tensor, "1 N 3 h w"], PixelMap]:
    """The Pi3X input for a batch of same-size RGB frames (one scene), and the map to its grid."""
    frames = check_frames(frames)
    pixel_map = pi3x_pixel_map(frames.shape[2], frames.shape[1], pixel_limit)
    resized = resize_frames(frames, pixel_map.network_size, _RESAMPLE)
    images = torch.from_numpy(resized).permute(0, 3, 1, 2).to(torch.float32).div(255)
    return images.unsqueeze(0).contiguous(), pixel_map


def intrinsics_from_rays(
    directions: Float[np.ndarray, "*batch H W 3"], centred_principal_point: bool = True
) -> Float[np.ndarray, "*batch 3 3"]:
    """Pinhole intrinsics on the Pi3X grid fitted to its per-pixel camera-frame directions.

    ``directions`` are ``local_points`` (or ``rays``): any vector along each pixel's ray. As published,
    each is normalised, ``x / (|z| + 1e-10)`` and ``y / (|z| + 1e-10)`` are taken, and ``u = fx x + cx``,
    ``v = fy y + cy`` are fitted by least squares over the pixel centres ``u = 0 .. W-1``,
    ``v = 0 .. H-1``, each axis alone. The published example fixes the principal point at the grid centre
    ``((W - 1) / 2, (H - 1) / 2)`` and fits the focal lengths only (the default here); with
    ``centred_principal_point=False`` the principal point is fitted too.
    """
    directions = np.asarray(directions, dtype=float)
    height, width = directions.shape[-3:-1]
    length = np.maximum(np.linalg.norm(directions, axis=-1, keepdims=True), _NORM_EPSILON)
    unit = directions / length
    z = np.abs(unit[..., 2]) + _RAY_Z_EPSILON
    fx, cx = _fit_axis(unit[..., 0] / z, np.arange(width, dtype=float)[None, :], centred_principal_point)
    fy, cy = _fit_axis(unit[..., 1] / z, np.arange(height, dtype=float)[:, None], centred_principal_point)
    K = np.zeros((*directions.shape[:-3], 3, 3))
    K[..., 0, 0], K[..., 0, 2], K[..., 1, 1], K[..., 1, 2], K[..., 2, 2] = fx, cx, fy, cy, 1.0
    return K


def _fit_axis(
    ratio: Float[np.ndarray, "*batch H W"], pixel: Float[np.ndarray, "h w"], centred: bool
) -> tuple[Float[np.ndarray, "*batch"], Float[np.ndarray, "*batch"]]:
    """Least squares of ``pixel = focal * ratio + centre`` over one image; ``centre`` mid-axis if centred."""
    pixel = np.broadcast_to(pixel, ratio.shape[-2:])
    if centred:
        centre = np.full(ratio.shape[:-2], (pixel.max() + pixel.min()) / 2.0)
        focal = (ratio * (pixel - centre[..., None, None])).sum(axis=(-2, -1)) / (ratio**2).sum(axis=(-2, -1))
        return focal, centre
    ratio_mean = ratio.mean(axis=(-2, -1), keepdims=True)
    pixel_mean = pixel.mean()
    ratio_centred = ratio - ratio_mean
    focal = (ratio_centred * (pixel - pixel_mean)).sum(axis=(-2, -1)) / (ratio_centred**2).sum(axis=(-2, -1))
    return focal, pixel_mean - focal * ratio_mean[..., 0, 0]


def pi3x_cameras(
    camera_poses: Float[np.ndarray, "N 4 4"],
    intrinsics: Float[np.ndarray, "*views 3 3"],
    pixel_map: PixelMap,
    names: Sequence[str],
) -> CameraRig:
    """Pi3X's cameras as this project's, at the original frames' resolution, in Pi3X's world.

    ``camera_poses`` are Pi3X's camera-to-world OpenCV matrices; ``intrinsics`` are on the Pi3X grid, one
    per view or one for all (e.g. :func:`intrinsics_from_rays` of ``local_points``), and are mapped back
    to the original frames. No distortion: Pi3X models pinhole rays.
    """
    camera_poses = np.asarray(camera_poses, dtype=float)
    if camera_poses.ndim != 3 or camera_poses.shape[1:] != (4, 4) or len(names) != camera_poses.shape[0]:
        raise NetIOError(
            f"expected one (4, 4) pose per name ({len(names)} names), got poses of shape {camera_poses.shape}"
        )
    R = np.swapaxes(camera_poses[:, :3, :3], -1, -2)
    t = -(R @ camera_poses[:, :3, 3:4])[..., 0]
    K = np.broadcast_to(pixel_map.intrinsics_to_original(intrinsics), camera_poses.shape[:1] + (3, 3))
    width, height = pixel_map.original_size
    return CameraRig(
        tuple(
            Camera(name=name, K=K[i], dist=np.zeros(5), R=R[i], t=t[i], width=width, height=height)
            for i, name in enumerate(names)
        )
    )


def depth_maps(local_points: Float[np.ndarray, "N h w 3"]) -> Float[np.ndarray, "N h w"]:
    """Per-view depth on the Pi3X grid: the camera-frame z of ``local_points`` (not the ray length)."""
    return np.asarray(local_points, dtype=float)[..., 2]


def coloured_points(
    points: Float[np.ndarray, "N h w 3"],
    conf: Float[np.ndarray, "N h w"] | Float[np.ndarray, "N h w 1"],
    frames: UInt8[np.ndarray, "N H W 3"],
    threshold: float = CONFIDENCE_THRESHOLD,
    max_points: int | None = None,
    seed: int = 0,
) -> tuple[Float[np.ndarray, "M 3"], UInt8[np.ndarray, "M 3"]]:
    """Pi3X's world points whose ``sigmoid(conf) >= threshold``, with the colour Pi3X saw at each.

    ``frames`` are the original frames or already at grid size; the colours are those of the frames as
    resized for the network (as the published example colours its point cloud). Non-finite points are
    dropped. With ``max_points``, a seeded uniform subset in the original order is returned.
    """
    points = np.asarray(points, dtype=float)
    conf = np.asarray(conf, dtype=float)
    if conf.ndim == points.ndim:
        conf = conf[..., 0]
    frames = check_frames(frames)
    grid_height, grid_width = points.shape[1:3]
    if conf.shape != points.shape[:-1] or frames.shape[0] != points.shape[0]:
        raise NetIOError(
            f"points {points.shape}, conf {conf.shape} and frames {frames.shape} must cover the same views"
        )
    if frames.shape[1:3] != (grid_height, grid_width):
        frames = resize_frames(frames, (grid_width, grid_height), _RESAMPLE)
    keep = (expit(conf) >= threshold) & np.isfinite(points).all(axis=-1)
    kept_points, kept_colours = points[keep], frames[keep]
    if max_points is not None and kept_points.shape[0] > max_points:
        rng = np.random.default_rng(seed)
        subset = np.sort(rng.choice(kept_points.shape[0], size=max_points, replace=False))
        kept_points, kept_colours = kept_points[subset], kept_colours[subset]
    return kept_points, kept_colours
