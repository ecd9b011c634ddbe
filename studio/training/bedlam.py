"""BEDLAM's released training data as CHROMM's multi-view training samples (``MultiViewSample``).

What BEDLAM's files hold, as read from its public code (github.com/pixelite1201/BEDLAM; the file
layout and the rows are in ``studio.training.bedlam_layout``):

- Bodies: SMPL-X, neutral, 11 betas (``data_processing/df_full_body.py`` poses ``smplx`` with
  ``num_betas=11``; ``train/dataset/dataset.py`` reads 11). ``pose_cam`` is 55 joints × 3 axis-angle in
  the camera's axes; joint 0's rotation is the global orientation, joints 1–21 the body pose.
- Camera-frame translation: the body ``smplx(pose_cam, shape, transl=trans_cam)`` plus
  ``cam_ext[:3, 3]`` is the body in the camera frame (``df_full_body.py``'s ``project`` adds the extrinsic
  translation before projecting; ``train/dataset/datasetx.py`` and ``dataset.py`` add it to ``trans_cam``;
  ``visualize_ground_truth.py`` renders the body so). ``smplx`` adds ``transl`` after rotating about the
  rest pelvis J₀(β), as ``core.body``'s SMPL-X backend does, so ``trans_cam + cam_ext[:3, 3]`` is stored
  as it is.
- Intrinsics: ``cam_int`` puts the principal point at (W/2, H/2), the image's centre in coordinates
  whose origin is the first pixel's corner (Unreal renders a centred pinhole), and ``gtkps`` is each
  ``smplx`` joint projected with it: index 0 is the pelvis, 15 the head (SMPL-X's order). The sample's
  pixels are OpenCV-centred (the first pixel's centre is 0), so K's principal point and the keypoints
  move by −0.5 px.
- Closeup scenes (``closeup`` in the folder name, 720 × 1280 portrait): ``df_full_body.py`` rolls the
  camera by 90° and builds ``cam_int``, ``gtkps`` and the bodies for the upright portrait image, but the
  PNGs are stored as rendered, landscape; BEDLAM's loaders (``dataset.py``, ``visualize_ground_truth.py``)
  turn them with ``cv2.ROTATE_90_CLOCKWISE`` before use. So only the stored pixels turn, by 90° clockwise
  (−90° in the image's y-down axes), images and depth alike; K, keypoints and bodies are already upright.
  Which image to turn is read from the data, not the name: one whose stored size is K's size transposed.
  (The name is no safe test: BEDLAM's loader keys ``20221017_1_250_batch01hand_closeup_suburb_a`` as
  ``staticzoomed-suburba-frameocc`` in ``train/core/config.py`` and so never turns it.)
- Depth (github.com/PerceivingSystems/bedlam_render, ``tools/post_render_pipeline/exr_save_depth_masks.py``):
  one 32-bit float EXR channel ``Depth``, Unreal's scene depth (along the optical axis) in centimetres
  (bedlam_render issue 14), in the stored (unturned) orientation; read with ``studio.training.exr``
  (OpenCV cannot, see there). Sky and far background hold huge values; beyond ``FAR_M`` it is NaN.
- Cameras: BEDLAM renders each instant once, by the one camera of its sequence (``be_seq.csv`` names one
  camera per sequence, ``ground_truth/camera/<sequence>_camera.csv``), so no two cameras of one instant
  exist. ``grouping="frames"`` takes several frames of one sequence whose camera is static as the views
  (the people move between them; per-view bodies); ``"cameras"`` takes every camera of one instant,
  which in BEDLAM is one: single-view samples of every image, moving cameras included.
- World: ``cam_ext`` is world → camera, but BEDLAM's world is each person's own (see
  ``bedlam_layout``); a sample's world is that of its first person, whose ``cam_ext`` gives R and t.
  For a static camera they are the same in every view; a camera that moves or turns changes the world
  with it, so such sequences give no multi-frame samples. That world is level with y down (Unreal's
  z-up axes turned to OpenCV's, ``unreal2cv2`` in ``df_full_body.py``; the camera's pitch and roll are in
  ``cam_ext``); R is turned to the studio's z-up world (``Z_UP_FROM_BEDLAM``), t is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from jaxtyping import Float, Int

from core.errors import InputError
from studio.training.bedlam_layout import SceneIndex, find_scenes
from studio.training.exr import read_exr_channel
from studio.training.sample import MultiViewSample

__all__ = ["FAR_M", "NUM_BETAS", "Z_UP_FROM_BEDLAM", "BedlamScenes"]

NUM_BETAS = 10
"""Betas kept of BEDLAM's 11: what ``core.body``'s SMPL-X backend reads with its default ``num_betas``
(a model set up with 11 would read them all; the 11th is the least of SMPL-X's shape components)."""
FAR_M = 1000.0
"""Depth beyond this (metres) is NaN: Unreal gives the sky and far background huge depths."""
PELVIS, HEAD = 0, 15
"""Indices into ``gtkps``: SMPL-X's joint order."""
Z_UP_FROM_BEDLAM = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], np.float32)
"""BEDLAM's level, y-down world axes → the studio's z-up ones: ``x_up = Z_UP_FROM_BEDLAM @ x_bedlam``
maps (x, y, z) to (x, z, −y), a rotation."""


@dataclass(frozen=True)
class _Labels:
    """One scene file's ground truth columns, N rows (float32)."""

    pose: Float[np.ndarray, "N 66"]
    """Global orientation, then 21 body joints, axis-angle."""
    betas: Float[np.ndarray, "N 10"]
    trans_cam: Float[np.ndarray, "N 3"]
    K: Float[np.ndarray, "N 3 3"]
    """BEDLAM's ``cam_int`` (principal point at the centre in corner-origin pixels)."""
    cam_ext: Float[np.ndarray, "N 4 4"]
    pelvis_head: Float[np.ndarray, "N 2 2"]
    """``gtkps`` of the pelvis and the head, BEDLAM's pixels."""

    @staticmethod
    def read(npz: Path) -> _Labels:
        with np.load(npz) as data:
            return _Labels(
                pose=data["pose_cam"][:, :66].astype(np.float32),
                betas=data["shape"][:, :NUM_BETAS].astype(np.float32),
                trans_cam=data["trans_cam"].astype(np.float32),
                K=data["cam_int"].astype(np.float32),
                cam_ext=data["cam_ext"].astype(np.float32),
                pelvis_head=data["gtkps"][:, [PELVIS, HEAD], :2].astype(np.float32),
            )


class BedlamScenes:
    """BEDLAM's ``split`` under ``root``, one ``MultiViewSample`` per item (SMPL-X bodies, per view).

    ``root`` is BEDLAM's ``data/`` folder: the label files in ``<split>/``, ``training_labels/<split>/``
    or ``bedlam_labels/<split>/``, each scene's images in ``training_images/<scene>/png/`` or
    ``<scene>/png/`` (and its depth in ``…/<scene>/depth/`` where downloaded). The constructor reads the
    label files' image names, subjects and extrinsics only; each scene's other columns are read the
    first time one of its samples is, and kept.

    Args:
        root: BEDLAM's data folder.
        views: images per sample (V).
        grouping: ``"frames"``: V frames of one static-camera sequence (any sequence for V = 1), every
            ``frame_stride``-th of the images it lists, one sample per first image, with the persons
            that have a row in all V; ``"cameras"``: the cameras of one instant, one in BEDLAM, so V
            must be 1.
        frame_stride: images of the sequence from one view to the next (BEDLAM lists every 5th rendered
            frame, 6 fps, for most scenes; every frame of its ``_30fps`` scenes).
        split: the label folder's name.
    """

    def __init__(
        self,
        root: Path,
        views: int = 4,
        grouping: Literal["frames", "cameras"] = "frames",
        frame_stride: int = 1,
        split: str = "all_npz_12_training",
    ):
        if grouping not in ("frames", "cameras"):
            raise InputError(f"unknown grouping {grouping!r} (frames or cameras)")
        if grouping == "cameras" and views != 1:
            raise InputError(
                f"grouping='cameras' with {views} views: BEDLAM renders every instant by one camera only "
                "(one camera per sequence), so its samples have 1 view; use grouping='frames' for more"
            )
        if views < 1 or frame_stride < 1:
            raise InputError(f"views ({views}) and frame_stride ({frame_stride}) must be at least 1")
        self._scenes: list[SceneIndex] = find_scenes(Path(root), split)
        self._samples: list[tuple[int, Int[np.ndarray, "V P"]]] = []
        for number, scene in enumerate(self._scenes):
            for sequence, table in enumerate(scene.tables()):
                if views == 1 or not scene.moving[sequence]:
                    self._samples += [(number, rows) for rows in _windows(table, views, frame_stride)]
        self._labels: dict[int, _Labels] = {}

    def __len__(self) -> int:
        return len(self._samples)

    def __getitem__(self, index: int) -> MultiViewSample:
        number, rows = self._samples[index]
        scene = self._scenes[number]
        if number not in self._labels:
            self._labels[number] = _Labels.read(scene.npz)
        labels = self._labels[number]
        first = rows[:, 0]  # the row of each view's first person: K, R, t
        images, depths = [], []
        for row, K in zip(first, labels.K[first], strict=True):
            image, turn = _read_image(scene, row, K)
            images.append(image)
            depths.append(_read_depth(scene, row, image.shape, turn) if scene.has_depth else None)
        if len({image.shape for image in images}) > 1:
            sizes = ", ".join(f"{image.shape[1]}×{image.shape[0]}" for image in images)
            raise InputError(f"{scene.npz}: the images of one sample differ in size ({sizes})")
        height, width = images[0].shape[:2]
        head = labels.pelvis_head[rows, 1] - 0.5  # (V, P, 2), OpenCV-centred
        K = labels.K[first].copy()
        K[:, :2, 2] -= 0.5
        return MultiViewSample(
            name=_name(scene, first),
            images=np.stack(images),
            K=K,
            R=labels.cam_ext[first, :3, :3] @ Z_UP_FROM_BEDLAM.T,
            t=labels.cam_ext[first, :3, 3],
            depth=None if depths[0] is None else np.stack(depths),
            masks=None,
            body_model="smplx",
            global_orient=labels.pose[rows, :3],
            body_pose=labels.pose[rows, 3:].reshape(*rows.shape, 21, 3),
            shape=labels.betas[rows[0]],
            transl=labels.trans_cam[rows] + labels.cam_ext[rows, :3, 3],
            head2d=head,
            pelvis2d=labels.pelvis_head[rows, 0] - 0.5,
            visible=((head >= -0.5) & (head < np.array([width, height]) - 0.5)).all(-1),
        ).check()


def _windows(table: Int[np.ndarray, "F Q"], views: int, stride: int) -> list[Int[np.ndarray, "V P"]]:
    """The rows of every window of ``views`` images ``stride`` apart, for the persons in all of them."""
    starts = np.arange(len(table) - (views - 1) * stride)
    picked = table[starts[:, None] + stride * np.arange(views)]  # (S, V, Q)
    common = (picked >= 0).all(axis=1)  # (S, Q)
    return [picked[s][:, common[s]] for s in np.flatnonzero(common.any(axis=1))]


def _name(scene: SceneIndex, rows: Int[np.ndarray, " V"]) -> str:
    sequence = scene.imgname[rows[0]].split("/")[0]
    frames = ", ".join(scene.imgname[row].rsplit("_", 1)[1].removesuffix(".png") for row in rows)
    return f"BEDLAM {scene.npz.stem}/{sequence} frames {frames}"


def _read_image(scene: SceneIndex, row: int, K: Float[np.ndarray, "3 3"]) -> tuple[np.ndarray, bool]:
    """The row's image upright, RGB (H, W, 3) uint8, and whether it was stored turned."""
    path = scene.folder / "png" / scene.imgname[row]
    if not path.is_file():
        raise InputError(f"{path}: image missing (named by {scene.npz})")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path}: not a readable image")
    stored = bgr.shape[1], bgr.shape[0]
    upright = round(2 * float(K[0, 2])), round(2 * float(K[1, 2]))  # BEDLAM's (W/2, H/2)
    if stored not in (upright, upright[::-1]):
        raise InputError(
            f"{path}: image is {stored[0]}×{stored[1]}, but {scene.npz}'s intrinsics are for "
            f"{upright[0]}×{upright[1]} (or that turned, as the closeup scenes are stored)"
        )
    turn = stored != upright
    return _upright(bgr[..., ::-1], turn), turn


def _read_depth(scene: SceneIndex, row: int, shape: tuple[int, ...], turn: bool) -> Float[np.ndarray, "H W"]:
    """The row's z-depth in metres, upright like its image, NaN where not finite, not positive or far."""
    sequence, file = scene.imgname[row].split("/")
    path = scene.folder / "depth" / sequence / file.replace(".png", "_depth.exr")
    if not path.is_file():
        raise InputError(f"{path}: depth missing (the scene has a depth/ folder; image {scene.imgname[row]})")
    depth = _upright(read_exr_channel(path, "Depth") / 100.0, turn)
    if depth.shape != shape[:2]:
        size = f"{depth.shape[1]}×{depth.shape[0]}"
        raise InputError(f"{path}: depth is {size}, its image {shape[1]}×{shape[0]}")
    return np.where(np.isfinite(depth) & (depth > 0) & (depth <= FAR_M), depth, np.nan).astype(np.float32)


def _upright(pixels: np.ndarray, turn: bool) -> np.ndarray:
    """``pixels`` (H, W, …) turned 90° clockwise where ``turn`` (``cv2.ROTATE_90_CLOCKWISE``)."""
    return np.ascontiguousarray(np.rot90(pixels, -1) if turn else pixels)
