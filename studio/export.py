"""Exports of a reconstruction to files other tools read (``python -m studio export``)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from core.reconstruction import Reconstruction
from studio.summary import clip_frame_numbers


def joints_tree(reconstruction: Reconstruction) -> dict[str, dict[str, dict[str, list[float]]]]:
    """{person_id: {clip frame: {joint name: [x, y, z]}}} in world metres; non-finite joints left out."""
    tree = {}
    for person in reconstruction.persons:
        frames = clip_frame_numbers(reconstruction, person.frames)
        joints = np.round(person.joints, 5)
        finite = np.isfinite(joints).all(axis=-1)
        tree[str(person.person_id)] = {
            str(frame): {
                name: joints[f, j].tolist() for j, name in enumerate(person.joint_names) if finite[f, j]
            }
            for f, frame in enumerate(frames.tolist())
        }
    return tree


def write_atomically(path: Path, content: str | bytes) -> None:
    """Write through a temporary file renamed into place: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb" if isinstance(content, bytes) else "w") as file:
            file.write(content)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def export_joints_json(reconstruction: Reconstruction, path: Path) -> None:
    """The 3D joints of every person and frame as one JSON file."""
    write_atomically(path, json.dumps(joints_tree(reconstruction)))


def export_points_ply(reconstruction: Reconstruction, path: Path) -> None:
    """The scene points with their colours as a binary PLY (world metres, z up)."""
    import trimesh  # only this export needs it

    cloud = trimesh.PointCloud(reconstruction.points, colors=reconstruction.point_colors)
    write_atomically(path, cloud.export(file_type="ply"))
