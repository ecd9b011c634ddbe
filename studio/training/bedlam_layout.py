"""Where BEDLAM's released training files lie, and which row of its label files is which image and person.

Read from BEDLAM's public code (github.com/pixelite1201/BEDLAM unless said):

- Labels: ``all_npz_12_training.zip`` (``fetch_training_data.sh``) unpacks to one ``.npz`` per scene,
  read by ``train/core/config.py`` from ``data/training_labels/all_npz_12_training/<scene>.npz``
  (``fetch_training_data.sh`` itself unzips into ``data/bedlam_labels/``). The same folder holds AGORA's
  ``agora-bfh.npz`` and ``agora-body.npz``: another data set (single photos, no sequences), skipped.
- Images: the scene's tar unpacks to ``<scene>/png/<imgname>`` with the npz's stem as ``<scene>``
  (``config.py``: ``data/training_images/<scene>/png``). BEDLAM's per-scene render downloads and its
  render pipeline (github.com/PerceivingSystems/bedlam_render,
  ``tools/post_render_pipeline/exr_save_depth_masks.py``) put depth beside them:
  ``<scene>/depth/<sequence>/<image stem>_depth.exr``, and masks as ``<scene>/masks/…_env.png`` and
  ``…_<NN>_body.png`` by render-actor number, which no npz column names (so no masks are read). Those
  folders are named without the npz's frame-rate suffix (``_6fps``, ``_30fps``); both spellings are
  looked for, under ``training_images/`` or straight under the root.
- Rows (``data_processing/df_full_body.py``, which writes them): one per image and person, written
  person by person (each body of the scene's ``be_seq.csv`` over all its frames, every 5th rendered
  frame at 6 fps); a person whose body has fewer than 8 of its 22 body joints inside the image, or a
  vertex behind the camera, has no row for that image. ``imgname`` is ``<sequence>/<sequence>_<frame>.png``
  (the frame number rendered at 30 fps). ``sub`` is the body's subject name (``rp_aaron_posed_002``): the
  identity of a person within a sequence. Two bodies of one sequence could share a subject, so a person
  here is (sequence, subject, rank of the row among that image's rows of the same subject) — the same
  person in every image unless one of two look-alike bodies has no row there.
- ``cam_ext`` is world → camera, ``x_cam = cam_ext[:3, :3] x_world + cam_ext[:3, 3]``
  (``visualize_ground_truth.py`` maps the world-frame body that way). Its world is each person's own:
  the origin is where that body was placed in the scene and the axes turn with the camera's yaw
  (``df_full_body.py``, ``get_cam_trans`` and ``get_global_orient``); so its translation differs between
  the persons of one image, and for a camera that turns (the ``orbit`` scenes) the world itself turns
  from frame to frame.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jaxtyping import Bool, Float, Int

from core.errors import InputError

__all__ = ["REQUIRED_KEYS", "STATIC_TOLERANCE", "SceneIndex", "find_scenes"]

REQUIRED_KEYS = ("imgname", "sub", "pose_cam", "shape", "trans_cam", "cam_int", "cam_ext", "gtkps")
"""The npz columns read; BEDLAM's files have more (``pose_world``, ``center``, ``proj_verts``, …)."""
_SHAPES = {
    "pose_cam": (165,),
    "trans_cam": (3,),
    "cam_int": (3, 3),
    "cam_ext": (4, 4),
}
"""Per-row shape each column must have (SMPL-X: 55 joints × 3 axis-angle)."""
_MIN_SHAPES = {"shape": (10,), "gtkps": (16, 2)}
"""Columns that may be wider: 11 betas; 127 keypoints of x, y (and a 1)."""
STATIC_TOLERANCE = 1e-4
"""A sequence's camera is static when every person's ``cam_ext`` stays within this (metres, and
rotation-matrix entries) over its rows."""
_LABEL_PARENTS = ("", "training_labels", "bedlam_labels")
_IMAGE_PARENTS = ("training_images", "")
_FPS_SUFFIX = re.compile(r"_\d+fps$")


@dataclass(frozen=True)
class SceneIndex:
    """One scene file's rows: which image and person each is; N rows, I images, Q persons."""

    npz: Path
    folder: Path
    """Holds ``png/`` and, when the scene has depth, ``depth/``."""
    imgname: np.ndarray
    """(N,) str: ``<sequence>/<sequence>_<frame>.png``."""
    image: Int[np.ndarray, " N"]
    """Index of the row's image; images are numbered by sequence, then frame."""
    person: Int[np.ndarray, " N"]
    """Index of the row's person; persons are numbered by sequence, then subject, then rank."""
    image_sequence: Int[np.ndarray, " I"]
    """Each image's sequence (index into ``sequences``)."""
    sequences: tuple[str, ...]
    moving: Bool[np.ndarray, " S"]
    """Per sequence: some person's ``cam_ext`` changes over it (a camera that moves or turns)."""

    @property
    def has_depth(self) -> bool:
        return (self.folder / "depth").is_dir()

    def tables(self) -> list[Int[np.ndarray, "F Q"]]:
        """Per sequence, the row of each (image, person), -1 where that person has no row there: images in
        frame order, persons in index order."""
        row_sequence = self.image_sequence[self.image]
        order = np.argsort(row_sequence, kind="stable")
        bounds = np.searchsorted(row_sequence[order], np.arange(len(self.sequences) + 1))
        tables = []
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            rows = order[start:stop]
            image, person = self.image[rows], self.person[rows]  # both contiguous ranges per sequence
            table = np.full((image.max() - image.min() + 1, person.max() - person.min() + 1), -1, np.int64)
            table[image - image.min(), person - person.min()] = rows
            tables.append(table)
        return tables


def find_scenes(root: Path, split: str) -> list[SceneIndex]:
    """Every BEDLAM scene file of ``split`` under ``root``, indexed; an ``InputError`` for a root that is
    not BEDLAM's layout (saying what was looked for)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: BEDLAM folder not found")
    candidates = [root.joinpath(parent, split) for parent in _LABEL_PARENTS]
    labels = next((c for c in candidates if c.is_dir()), None)
    if labels is None:
        raise InputError(
            f"{root}: no {split}/ folder of BEDLAM label files (looked for "
            + ", ".join(str(c) for c in candidates)
            + ")"
        )
    files = sorted(p for p in labels.glob("*.npz") if not p.name.startswith("agora"))
    if not files:
        raise InputError(f"{labels}: no BEDLAM scene .npz in it (AGORA's agora-*.npz are not read)")
    return [_index(npz, _scene_folder(root, npz)) for npz in files]


def _scene_folder(root: Path, npz: Path) -> Path:
    names = dict.fromkeys([npz.stem, _FPS_SUFFIX.sub("", npz.stem)])
    candidates = [root.joinpath(parent, name) for parent in _IMAGE_PARENTS for name in names]
    for candidate in candidates:
        if (candidate / "png").is_dir():
            return candidate
    raise InputError(
        f"{npz}: no image folder for this scene; BEDLAM's layout has its PNGs in <scene>/png/<imgname>, "
        "looked for " + ", ".join(str(c / "png") for c in candidates)
    )


def _index(npz: Path, folder: Path) -> SceneIndex:
    """The scene's rows, from ``imgname``, ``sub`` and ``cam_ext`` (the other columns' headers only)."""
    try:
        with np.load(npz) as data:
            missing = [key for key in REQUIRED_KEYS if key not in data.files]
            if missing:
                raise InputError(
                    f"{npz}: not a BEDLAM label file, missing {', '.join(missing)} "
                    f"(expected the columns {', '.join(REQUIRED_KEYS)})"
                )
            rows = _check_shapes(npz, data.zip)
            imgname, sub, cam_ext = data["imgname"].astype(str), data["sub"].astype(str), data["cam_ext"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(f"{npz}: not a readable .npz file ({error})") from None
    if imgname.shape != (rows,) or sub.shape != (rows,):
        raise InputError(f"{npz}: imgname and sub must have one entry per row ({rows})")
    sequence_name, slash, file = np.strings.partition(imgname, "/")
    stem, _, extension = np.strings.rpartition(file, ".")
    _, _, frame = np.strings.rpartition(stem, "_")
    well_formed = (slash == "/") & (extension == "png") & np.strings.isdigit(frame)
    well_formed &= np.strings.find(file, "/") < 0
    if not well_formed.all():
        bad = str(imgname[np.argmin(well_formed)])
        raise InputError(
            f"{npz}: imgname {bad!r} is not BEDLAM's <sequence>/<sequence>_<frame>.png (another layout?)"
        )
    sequences, sequence = np.unique(sequence_name, return_inverse=True)
    keys = np.stack([sequence, frame.astype(np.int64)], 1)
    image_keys, image = np.unique(keys, axis=0, return_inverse=True)
    image = image.reshape(-1)
    person = _persons(sequence, image, sub)
    return SceneIndex(
        npz=npz,
        folder=folder,
        imgname=imgname,
        image=image,
        person=person,
        image_sequence=image_keys[:, 0],
        sequences=tuple(str(s) for s in sequences),
        moving=_moving(sequence, person, cam_ext, len(sequences)),
    )


def _check_shapes(npz: Path, archive: zipfile.ZipFile) -> int:
    """The number of rows, once every column read has the per-row shape BEDLAM's files have."""
    shapes = {}
    for key in REQUIRED_KEYS:
        with archive.open(f"{key}.npy") as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shapes[key] = np.lib.format.read_array_header_1_0(stream)[0]
            else:
                shapes[key] = np.lib.format.read_array_header_2_0(stream)[0]
    rows = shapes["imgname"][0] if shapes["imgname"] else 0
    for key, row_shape in {**_SHAPES, **_MIN_SHAPES}.items():
        shape = shapes[key]
        exact = key in _SHAPES
        fits = len(shape) == len(row_shape) + 1 and shape[0] == rows
        fits = fits and all(n == m if exact else n >= m for n, m in zip(shape[1:], row_shape, strict=True))
        if not fits:
            wanted = "×".join(map(str, row_shape)) + ("" if exact else " or more")
            raise InputError(
                f"{npz}: {key} has shape {shape}, expected {rows} rows of {wanted} "
                "(BEDLAM's SMPL-X labels: pose_cam 55 joints × 3, 10 or 11 betas, 127 keypoints)"
            )
    return rows


def _persons(sequence: Int[np.ndarray, " N"], image: Int[np.ndarray, " N"], sub: np.ndarray) -> np.ndarray:
    """Each row's person: (sequence, subject, rank among the image's rows of that subject), numbered."""
    subjects, subject = np.unique(sub, return_inverse=True)
    order = np.lexsort((np.arange(len(sub)), subject, image))
    group = image[order] * len(subjects) + subject[order]
    first = np.r_[True, group[1:] != group[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order)) - group_start
    _, person = np.unique(np.stack([sequence, subject, rank], 1), axis=0, return_inverse=True)
    return person.reshape(-1)


def _moving(
    sequence: Int[np.ndarray, " N"],
    person: Int[np.ndarray, " N"],
    cam_ext: Float[np.ndarray, "N 4 4"],
    count: int,
) -> Bool[np.ndarray, " S"]:
    """Per sequence: does any person's extrinsic matrix differ from its value in that person's first row?"""
    _, first = np.unique(person, return_index=True)
    change = np.abs(cam_ext[:, :3] - cam_ext[first[person], :3]).max(axis=(1, 2))
    moving = np.zeros(count, bool)
    np.logical_or.at(moving, sequence, change > STATIC_TOLERANCE)
    return moving
