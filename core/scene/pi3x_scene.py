"""The Pi3X scene backend: cameras, a coloured point cloud and per-view depth from the views alone.

Pi3X sees all views of a frame at once and answers in the first view's camera frame (OpenCV axes,
metric-ish scale). With a calibration, its cameras are matched to the calibrated ones by a similarity
and everything it says is carried into the calibrated world; without one, its cameras are the run's
cameras, turned so that the cameras' mean "up" is the world's +z (the studio's convention).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, UInt8
from scipy.spatial.transform import Rotation

from core.errors import InputError
from core.nets.config import NetworksConfig
from core.nets.image_map import PixelMap
from core.nets.pi3x.align import Similarity, align_rigs
from core.nets.pi3x.model import Pi3X
from core.nets.pi3x.preprocess import (
    PIXEL_LIMIT,
    coloured_points,
    depth_maps,
    intrinsics_from_rays,
    pi3x_cameras,
    pi3x_input,
)
from core.nets.runtime import inference
from core.types import CameraRig

SceneModel = Callable[[torch.Tensor], dict[str, torch.Tensor]]
"""Pi3X, or what is called as it is (CHROMM's Pi3X keeping its passes: ``SharedScenePasses``)."""


@dataclass(frozen=True)
class FrameGeometry:
    """One Pi3X call on all views of a frame, carried into the run's world."""

    points: Float[np.ndarray, "M 3"]
    """Confident points, subsampled to the call's share."""
    colours: UInt8[np.ndarray, "M 3"]
    depth: Float[np.ndarray, "V h w"]
    """Per view, z-depth on the Pi3X grid, in world units."""
    pixel_map: PixelMap
    """Original pixels ↔ Pi3X grid pixels (all views share one size)."""

    def depth_at(self, view: np.ndarray, pixels: Float[np.ndarray, "N 2"]) -> Float[np.ndarray, " N"]:
        """Depth at original-image pixels of given views (nearest grid pixel)."""
        grid = np.rint(self.pixel_map.to_network(np.asarray(pixels, dtype=float))).astype(np.int64)
        height, width = self.depth.shape[-2:]
        col, row = np.clip(grid[:, 0], 0, width - 1), np.clip(grid[:, 1], 0, height - 1)
        return self.depth[view, row, col].astype(float)


@dataclass(frozen=True)
class SceneEstimate:
    """What Pi3X says about the scene, in the run's world frame (metres once scaled by the engine)."""

    cameras: CameraRig
    points: Float[np.ndarray, "M 3"]
    colours: UInt8[np.ndarray, "M 3"]
    frames: tuple[FrameGeometry, ...]
    """Each scene frame's answer, depth per view included."""


def upright(rig: CameraRig) -> Similarity:
    """The rotation turning the cameras' mean up direction (−y of each OpenCV camera) to world +z."""
    up = -rig.R[:, 1, :].mean(axis=0)
    rotation, _ = Rotation.align_vectors([[0.0, 0.0, 1.0]], [up])
    return Similarity(scale=1.0, R=rotation.as_matrix(), t=np.zeros(3))


def frame_geometry(
    model: SceneModel,
    frames: UInt8[np.ndarray, "V H W 3"],
    names: Sequence[str],
    world: CameraRig | None,
    config: NetworksConfig,
    device: str = "cpu",
    max_points: int | None = None,
    pixel_limit: int = PIXEL_LIMIT,
) -> tuple[FrameGeometry, CameraRig]:
    """Pi3X on all views of one frame, carried into ``world`` by the similarity matching its cameras to
    the world's (each call answers in its own frame and scale). Without a world yet, the call's cameras,
    turned upright, become it. ``pixel_limit``: the model's input budget. Returns the geometry and the
    world's cameras."""
    images, pixel_map = pi3x_input(frames, pixel_limit)
    with inference(device, config.precision):
        out = model(images.to(device))
    out = {key: value[0].float().cpu().numpy() for key, value in out.items()}
    rig = pi3x_cameras(out["camera_poses"], intrinsics_from_rays(out["local_points"]), pixel_map, names)
    if world is None:
        to_world = upright(rig)
        world = to_world.rig(rig)
    else:
        to_world = align_rigs(rig, world)
    seen = images[0].permute(0, 2, 3, 1).mul(255).round().to(torch.uint8).numpy()  # as resized, not again
    points, colours = coloured_points(
        out["points"], out["conf"], seen, config.min_point_confidence, max_points
    )
    depth = to_world.depth(depth_maps(out["local_points"])).astype(np.float32)
    return FrameGeometry(to_world.points(points), colours, depth, pixel_map), world


def estimate_scene(
    model: SceneModel,
    scene_frames: Sequence[UInt8[np.ndarray, "V H W 3"]],
    names: Sequence[str],
    calibration: CameraRig | None,
    config: NetworksConfig,
    device: str = "cpu",
    pixel_limit: int = PIXEL_LIMIT,
) -> SceneEstimate:
    """Pi3X on all views of each scene frame: cameras from the calibration or else the first frame,
    points and depth from all, the points shared out under ``config.max_points``."""
    sizes = {frame.shape[1:3] for frame in scene_frames}
    if len(sizes) != 1:
        raise InputError(f"Pi3X needs clips of one size; these differ: {sorted(sizes)}")
    share = -(-config.max_points // len(scene_frames))
    cameras, geometries = calibration, []
    for frames in scene_frames:
        geometry, cameras = frame_geometry(model, frames, names, cameras, config, device, share, pixel_limit)
        geometries.append(geometry)
    points = np.concatenate([g.points for g in geometries])
    colours = np.concatenate([g.colours for g in geometries])
    return SceneEstimate(cameras, points, colours, tuple(geometries))


def load_pi3x(config: NetworksConfig, device: str) -> Pi3X:
    """The user's Pi3X checkpoint (given, or found in the checkpoint folder), strictly loaded; a clear
    error when it is missing or wrong."""
    from core.nets.checkpoints import checkpoint_directory, find_checkpoint, load_safetensors_model

    path = find_checkpoint(config.pi3x_ckpt, "pi3x", "*.safetensors")
    if path is None:
        raise InputError(
            "--scene pi3x needs the Pi3X checkpoint: download model.safetensors from the yyfz/Pi3X model "
            f"page (5.4 GB, non-commercial licence) into {checkpoint_directory() / 'pi3x'}, "
            "or pass --pi3x-ckpt PATH"
        )
    return load_safetensors_model(path, "Pi3X", "--pi3x-ckpt", Pi3X.from_key_shapes, device)
