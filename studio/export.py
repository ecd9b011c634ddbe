"""Exports of a reconstruction to files other tools read (``python -m studio export``).

Single files: the 3D joints as JSON, the scene points as PLY, the cameras as a Pose2Sim ``Calib.toml``
(see :func:`export_calib_toml`). Per-person folders, one file per person
with a fitted body model (``PersonTrack.shape_model`` ``anny`` or ``smplx``; persons with bare joints are
left out and listed in the returned :class:`BodyExport`):

- ``smplx-npz``: ``person_<id>.npz``, the body parameters per frame in AMASS's layout (see
  :func:`body_npz_arrays`).
- ``glb``: ``person_<id>.glb``, the posed mesh of every frame and the cameras (see :func:`person_scene`).

Body parameters that are not finite are refused (an ``InputError`` naming the person, the parameter and
the frames) before any file is written, rather than dropped: a sequence with holes would play at the wrong
speed in tools that read it at ``mocap_framerate``, and a non-finite fit is a failure to look at, not to
export. Every file is written atomically; existing files of the same names are replaced, others left.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from jaxtyping import Float, Int, UInt8

from core.body.config import EXPORT_TOPOLOGY, VIEWER_TOPOLOGY, BodyConfig
from core.errors import InputError
from core.io.calibration.pose2sim import pose2sim_toml
from core.io.openpose import openpose_files
from core.keypoints import KEYPOINT_LAYOUTS
from core.reconstruction import Reconstruction
from core.staging import staging_path
from core.types import Camera, PersonTrack
from studio.inspection import identity_color
from studio.summary import clip_frame_numbers

if TYPE_CHECKING:  # torch and the body backends load only when a mesh is exported
    import trimesh

    from core.body.model import BodyModel

BODY_MODELS = ("anny", "smplx")
"""Shape models whose persons carry a fitted body (the others: ``skeleton``, ``none``)."""
TRANSL_CONVENTIONS = {"anny": "pelvis", "smplx": "smplx"}
"""What ``transl`` means per shape model: the world pelvis (Anny), or SMPL-X's own (its pelvis is at
J₀(β) + transl)."""
NUM_POSE_PARAMETERS = 165
"""AMASS's SMPL-X ``poses`` row: global orient 3, body 63, jaw 3, eyes 6, hands 90."""
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
"""Rotation from the world frame (z up) to glTF's (y up): -90° about x, ``(x, y, z) → (x, z, -y)``. It is
the inverse of Blender's glTF import conversion, so Blender shows a glb in the original world coordinates.

>>> (Z_UP_TO_Y_UP @ [0.0, 0.0, 1.0]).tolist(), (Z_UP_TO_Y_UP @ [0.0, 1.0, 0.0]).tolist()
([0.0, 1.0, 0.0], [0.0, 0.0, -1.0])
"""
FRUSTUM_DEPTH = 0.2
"""Length in metres of the camera frustums drawn in glb exports."""
_CAMERA_COLOR = (90, 90, 90, 255)
_FRAMES_PER_CALL = 128
"""Frames posed per body-model call (bounds the memory of the full Anny mesh's skinning)."""


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
    """Write through a temporary file renamed into place: a reader (or a session reopened after a crash)
    never sees half a file. The temporary file is created by ``open`` (exclusively), so the result gets
    the usual permissions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = staging_path(path, "writing")  # a killed writer's leftover is told apart
    try:
        with open(temporary, "xb" if isinstance(content, bytes) else "x") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())  # on disk before the rename makes it the file
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def export_joints_json(reconstruction: Reconstruction, path: Path) -> None:
    """The 3D joints of every person and frame as one JSON file."""
    write_atomically(path, json.dumps(joints_tree(reconstruction)))


def export_points_ply(reconstruction: Reconstruction, path: Path) -> None:
    """The scene points with their colours as a binary PLY (world metres, z up)."""
    import trimesh  # only this export needs it

    cloud = trimesh.PointCloud(reconstruction.points, colors=reconstruction.point_colors)
    write_atomically(path, cloud.export(file_type="ply"))


def export_openpose_json(reconstruction: Reconstruction, folder: Path) -> tuple[Path, ...]:
    """Every detection of the run as OpenPose JSON in Pose2Sim's layout (``core.io.openpose``), one
    folder per camera and one file per clip frame, keypoints in the detector's layout (BlazePose's 33
    for the embedded detector: Pose2Sim's ``BLAZEPOSE`` model); what Pose2Sim and EasyMocap read, and
    ``reconstruct --keypoints`` reads back. Each camera's folder is written whole or not at all; the
    folders, returned, replace those of the same names."""
    o = reconstruction.observations
    layouts = [name for name, (names, count) in KEYPOINT_LAYOUTS.items() if names == o.keypoint_names]
    if not layouts:
        raise InputError(
            f"the detections' {len(o.keypoint_names)} keypoints ({', '.join(o.keypoint_names[:3])}, …) are "
            f"in none of the layouts other tools read ({', '.join(KEYPOINT_LAYOUTS)})"
        )
    files = openpose_files(
        o.keypoints2d,
        o.keypoint_confidence,
        o.view,
        clip_frame_numbers(reconstruction, o.frame),
        reconstruction.cameras.names,
        clip_frame_numbers(reconstruction, np.arange(reconstruction.num_frames)),
    )
    by_camera: dict[Path, dict[Path, str]] = {}
    for path, text in files.items():
        by_camera.setdefault(Path(folder) / path.parent, {})[path.name] = text
    for target, contents in by_camera.items():  # each camera's folder whole, through a staging folder
        staged = staging_path(target, "writing")
        try:
            staged.mkdir(parents=True)
            for name, text in contents.items():
                (staged / name).write_text(text, encoding="utf-8")
            shutil.rmtree(target, ignore_errors=True)
            staged.rename(target)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
    return tuple(by_camera)


def export_calib_toml(reconstruction: Reconstruction, path: Path) -> None:
    """The cameras as a Pose2Sim ``Calib.toml`` (world metres, z up; world→camera), the file Pose2Sim's
    triangulation reads and ``core.io.calibration.read_calibration`` reads back to the same cameras.

    Raises:
        InputError: ``path`` does not end in ``.toml`` (neither reader would find it), the reconstruction
            has no camera, or two cameras share a name.
    """
    path = Path(path)
    if not path.name.lower().endswith(".toml"):
        raise InputError(f"{path}: Pose2Sim reads calibrations from *.toml files; use a name ending in .toml")
    write_atomically(path, pose2sim_toml(reconstruction.cameras, path))


@dataclass(frozen=True)
class BodyExport:
    """What a per-person body export wrote."""

    files: tuple[Path, ...]
    """One file per person with a fitted body, in the order of ``Reconstruction.persons``."""
    skipped: tuple[int, ...]
    """Ids of the persons left out: no fitted body (shape model ``skeleton`` or ``none``)."""


def bodied_persons(reconstruction: Reconstruction) -> tuple[tuple[PersonTrack, ...], tuple[int, ...]]:
    """The persons with a fitted body, checked finite, and the ids of the others.

    Raises:
        InputError: no person has a fitted body, or one's parameters are not all finite.
    """
    persons = tuple(p for p in reconstruction.persons if p.shape_model in BODY_MODELS)
    skipped = tuple(p.person_id for p in reconstruction.persons if p.shape_model not in BODY_MODELS)
    if not persons:
        models = sorted({p.shape_model for p in reconstruction.persons}) or ["no persons"]
        raise InputError(
            f"no person has a fitted body model ({', '.join(models)}): reconstruct with "
            "--config.body.model anny or smplx to export meshes or body parameters"
        )
    for person in persons:
        _check_finite(reconstruction, person)
    return persons, skipped


def _check_finite(reconstruction: Reconstruction, person: PersonTrack) -> None:
    if not np.isfinite(person.shape).all():
        raise InputError(f"person {person.person_id}: the body shape is not finite ({person.shape})")
    frames = clip_frame_numbers(reconstruction, person.frames)
    for name in ("global_orient", "body_pose", "transl"):
        values = getattr(person, name).reshape(len(frames), -1)  # (F, 3 or 63)
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            listed = ", ".join(map(str, frames[bad][:5])) + (" …" if bad.sum() > 5 else "")
            raise InputError(
                f"person {person.person_id}: {name} is not finite at {bad.sum()} of {len(frames)} "
                f"frames (clip frames {listed}); nothing was exported"
            )


AMASS_BETAS = 16
"""Shape coefficients AMASS's SMPL-X files carry; an Anny person's ``betas`` are this many zeros."""


def body_npz_arrays(reconstruction: Reconstruction, person: PersonTrack) -> dict[str, np.ndarray]:
    """A person's body parameters per frame in AMASS's SMPL-X layout (F frames; world metres, z up),
    with every key that AMASS's readers ask for (aitviewer, GMR, AMASS's own loaders).

    Keys: ``poses`` (F, 165) = root (3) + body (63) + jaw (3) + eyes (6) + hands (90), the last four at
    rest, and the same split as AMASS splits it: ``root_orient``, ``pose_body``, ``pose_jaw``,
    ``pose_eye``, ``pose_hand``, plus ``global_orient`` and ``body_pose`` (SMPL-X's own names);
    ``trans`` and ``transl`` (F, 3), in the convention ``transl_convention`` names (``pelvis``: the
    world pelvis, Anny; ``smplx``: SMPL-X's own, pelvis = J₀(β) + transl); ``betas`` and ``num_betas``:
    SMPL-X's shape, or for Anny ``AMASS_BETAS`` zeros (SMPL-X's mean shape, so that readers that require
    the key load the file; Anny's shape is ``phenotypes`` (6,), named by ``phenotype_names``);
    ``frames`` (F,) clip frame numbers; the frame rate of ``frames``' step as both ``mocap_frame_rate``
    (AMASS, GMR) and ``mocap_framerate`` (aitviewer); ``gender`` (Anny: ``neutral``; SMPL-X: the model
    fitted); ``surface_model_type`` (the shape model). Rotations are axis-angle, SMPL-X conventions
    (canonical body y up, facing +z).
    """
    count = len(person.frames)
    global_orient = person.global_orient.astype(np.float64)
    body_pose = person.body_pose.reshape(count, -1).astype(np.float64)  # (F, 21·3)
    rest = np.zeros((count, NUM_POSE_PARAMETERS - 3 - body_pose.shape[1]))  # jaw, eyes, hands
    transl = person.transl.astype(np.float64)
    fps = np.array(float(reconstruction.fps))
    arrays = {
        "poses": np.concatenate([global_orient, body_pose, rest], axis=1),
        "root_orient": global_orient,
        "pose_body": body_pose,
        "pose_jaw": rest[:, :3],
        "pose_eye": rest[:, 3:9],
        "pose_hand": rest[:, 9:],
        "global_orient": global_orient,
        "body_pose": body_pose,
        "trans": transl,
        "transl": transl,
        "frames": clip_frame_numbers(reconstruction, person.frames).astype(np.int64),
        "mocap_frame_rate": fps,
        "mocap_framerate": fps,
        "surface_model_type": np.array(person.shape_model),
        "transl_convention": np.array(TRANSL_CONVENTIONS[person.shape_model]),
    }
    if person.shape_model == "smplx":
        arrays["betas"] = person.shape.astype(np.float64)
        arrays["gender"] = np.array(reconstruction.config.body.smplx.gender)
    else:
        from core.body.anny_backend import PHENOTYPES

        if person.shape.shape != (len(PHENOTYPES),):
            raise InputError(
                f"person {person.person_id}: Anny reads {len(PHENOTYPES)} phenotypes, "
                f"the shape has {person.shape.shape}"
            )
        arrays["betas"] = np.zeros(AMASS_BETAS)
        arrays["phenotypes"] = person.shape.astype(np.float64)
        arrays["phenotype_names"] = np.array(PHENOTYPES)
        arrays["gender"] = np.array("neutral")
    arrays["num_betas"] = np.array(arrays["betas"].size)
    return arrays


def export_smplx_npz(reconstruction: Reconstruction, folder: Path) -> BodyExport:
    """Each bodied person's parameters as ``folder/person_<id>.npz`` (:func:`body_npz_arrays`)."""
    persons, skipped = bodied_persons(reconstruction)
    contents = []
    for person in persons:  # every file built (and checked) before the first is written
        buffer = io.BytesIO()
        np.savez(buffer, **body_npz_arrays(reconstruction, person))
        contents.append((Path(folder) / f"person_{person.person_id}.npz", buffer.getvalue()))
    for path, content in contents:
        write_atomically(path, content)
    return BodyExport(tuple(path for path, _ in contents), skipped)


def export_body_model(config: BodyConfig, shape_model: str, coarse: bool = False) -> BodyModel:
    """The body model that poses ``shape_model``'s parameters: Anny's full mesh (``EXPORT_TOPOLOGY``,
    built once, about a minute) or with ``coarse`` the viewer's; SMPL-X from ``config.smplx``."""
    from core.body.tracks import load_body_model

    topology = VIEWER_TOPOLOGY if coarse else EXPORT_TOPOLOGY
    model = load_body_model(replace(config, model=shape_model, anny=replace(config.anny, topology=topology)))
    assert model is not None  # shape_model is one of BODY_MODELS
    return model


def person_vertices(model: BodyModel, person: PersonTrack) -> Float[np.ndarray, "F N 3"]:
    """The posed mesh of every frame of ``person``, world metres (z up), batched ``_FRAMES_PER_CALL``."""
    import torch

    from core.body.model import BodyParameters

    chunks = []
    with torch.no_grad():
        for start in range(0, len(person.frames), _FRAMES_PER_CALL):
            part = slice(start, start + _FRAMES_PER_CALL)
            count = len(person.frames[part])
            parameters = BodyParameters(
                global_orient=torch.as_tensor(person.global_orient[part], dtype=torch.float32),
                transl=torch.as_tensor(person.transl[part], dtype=torch.float32),
                body_pose=torch.as_tensor(person.body_pose[part], dtype=torch.float32),
                shape=torch.as_tensor(person.shape, dtype=torch.float32).expand(count, -1),
            )
            vertices = model(parameters, vertices=True).vertices
            assert vertices is not None
            chunks.append(vertices.cpu().numpy())
    vertices = np.concatenate(chunks)
    if not np.isfinite(vertices).all():
        raise InputError(f"person {person.person_id}: the {model.name} mesh is not finite")
    return vertices


def camera_frustum_segments(camera: Camera, depth: float = FRUSTUM_DEPTH) -> Float[np.ndarray, "8 2 3"]:
    """The frustum of ``camera`` as 8 line segments in the world frame: centre to the image corners at
    ``depth`` metres along the optical axis, then the image rectangle (distortion ignored).

    >>> cam = Camera("c", np.diag([100.0, 100.0, 1.0]), np.zeros(5), np.eye(3), np.zeros(3), 200, 100)
    >>> camera_frustum_segments(cam, 1.0)[:4, 1].tolist()  # corners, camera at the origin looking at +z
    [[0.0, 0.0, 1.0], [2.0, 0.0, 1.0], [2.0, 1.0, 1.0], [0.0, 1.0, 1.0]]
    """
    w, h = camera.width, camera.height
    pixels = np.array([[0.0, 0.0, 1.0], [w, 0.0, 1.0], [w, h, 1.0], [0.0, h, 1.0]])
    corners_cam = depth * pixels @ np.linalg.inv(camera.K).T  # (4, 3), z = depth
    corners = (corners_cam - camera.t) @ camera.R  # Rᵀ (x - t): camera → world
    center = np.broadcast_to(camera.center, (4, 3))
    return np.concatenate([np.stack([center, corners], 1), np.stack([corners, np.roll(corners, -1, 0)], 1)])


def person_scene(
    reconstruction: Reconstruction,
    person: PersonTrack,
    vertices: Float[np.ndarray, "F N 3"],
    faces: Int[np.ndarray, "K 3"],
) -> trimesh.Scene:
    """One person's posed meshes and the cameras as a glTF scene, y up (``Z_UP_TO_Y_UP``).

    Nodes: ``frame_<n>`` per frame (n: clip frame number), meshes in the person's colour
    (``studio.inspection.identity_color``, as in the viewer) all shown at once (no animation); one line
    mesh per camera, named after it.
    """
    import trimesh
    from trimesh.visual.material import PBRMaterial

    color: UInt8[np.ndarray, 4] = np.array([*identity_color(person.person_id), 255], dtype=np.uint8)
    material = PBRMaterial(name=f"person_{person.person_id}", baseColorFactor=color, doubleSided=True)
    scene = trimesh.Scene()
    frames = clip_frame_numbers(reconstruction, person.frames)
    for frame, posed in zip(frames.tolist(), vertices, strict=True):
        mesh = trimesh.Trimesh(posed @ Z_UP_TO_Y_UP.T, faces, process=False)
        mesh.visual = trimesh.visual.TextureVisuals(material=material)
        scene.add_geometry(mesh, geom_name=f"frame_{frame}", node_name=f"frame_{frame}")
    for camera in reconstruction.cameras.cameras:
        lines = trimesh.load_path(camera_frustum_segments(camera) @ Z_UP_TO_Y_UP.T)
        lines.colors = np.tile(_CAMERA_COLOR, (len(lines.entities), 1))
        scene.add_geometry(lines, geom_name=camera.name, node_name=camera.name)
    return scene


def export_body_glb(reconstruction: Reconstruction, folder: Path, coarse: bool = False) -> BodyExport:
    """Each bodied person's meshes and the cameras as ``folder/person_<id>.glb`` (:func:`person_scene`).

    Vertices come from the model of the person's shape model with the reconstruction's body settings:
    Anny's full mesh (``coarse``: the viewer's 1,229-vertex mesh), or the user's SMPL-X.
    """
    persons, skipped = bodied_persons(reconstruction)
    models: dict[str, BodyModel] = {}
    files = []
    for person in persons:
        if person.shape_model not in models:
            models[person.shape_model] = export_body_model(
                reconstruction.config.body, person.shape_model, coarse
            )
        model = models[person.shape_model]
        scene = person_scene(reconstruction, person, person_vertices(model, person), model.faces)
        path = Path(folder) / f"person_{person.person_id}.glb"
        write_atomically(path, scene.export(file_type="glb"))
        files.append(path)
    return BodyExport(tuple(files), skipped)


def describe_body_export(result: BodyExport, fmt: str, folder: Path) -> str:
    """What the CLI prints after a per-person export: skipped persons, then where the files went."""
    lines = [f"person {i}: no fitted body model, skipped" for i in result.skipped]
    names = ", ".join(path.name for path in result.files)
    lines.append(f"{fmt} written to {folder}: {names}")
    return "\n".join(lines)


def export_all(reconstruction: Reconstruction, folder: Path) -> tuple[list[Path], list[str]]:
    """Every format into ``folder`` for a download: ``joints.json``, ``scene.ply`` (if there are scene
    points), ``smplx-npz.zip`` and ``glb.zip`` (the viewer's mesh) of the persons with a fitted body.
    Returns the files and a note per format left out (no points, no fitted body, non-finite body)."""
    import shutil

    folder = Path(folder)
    files, notes = [folder / "joints.json"], []
    export_joints_json(reconstruction, files[0])
    if len(reconstruction.points):
        export_points_ply(reconstruction, folder / "scene.ply")
        files.append(folder / "scene.ply")
    else:
        notes.append("scene.ply: no scene points")
    writers = {"smplx-npz": export_smplx_npz, "glb": lambda r, f: export_body_glb(r, f, coarse=True)}
    for fmt, writer in writers.items():
        try:
            writer(reconstruction, folder / fmt)
        except InputError as error:
            notes.append(f"{fmt}: {error}")
            continue
        files.append(Path(shutil.make_archive(str(folder / fmt), "zip", folder / fmt)))
    return files, notes
