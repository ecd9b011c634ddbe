"""The per-person body exports: SMPL-X-layout npz files and glb meshes (with a small fake body model)."""

import dataclasses

import numpy as np
import pytest
import torch
import trimesh

import studio.export as export
from core.body.config import EXPORT_TOPOLOGY, VIEWER_TOPOLOGY, AnnyConfig, BodyConfig
from core.body.model import BodyOutput, BodyParameters
from core.errors import InputError
from studio.cli import main
from studio.export import (
    AMASS_BETAS,
    NUM_POSE_PARAMETERS,
    Z_UP_TO_Y_UP,
    camera_frustum_segments,
    export_body_glb,
    export_body_model,
    export_smplx_npz,
)
from studio.inspection import identity_color

FIRST_FRAME, FRAME_STEP = 100, 2
"""The reconstruction's frames are clip frames 100, 102, …"""


class FakeBody:
    """A tetrahedron whose vertices are ``TEMPLATE · (1 + shape₀) + transl``: known landing places."""

    name = "smplx"
    shape_dim = 10
    joint_names = ("pelvis",)
    TEMPLATE = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.2, 0.0], [0.0, 0.0, 0.3]])
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])

    def __init__(self) -> None:
        self.batches: list[int] = []

    @classmethod
    def expected(cls, person) -> np.ndarray:
        """(F, 4, 3) world vertices of every frame of ``person``."""
        return cls.TEMPLATE[None] * (1.0 + person.shape[0]) + person.transl[:, None]

    def neutral_shape(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.shape_dim)

    def __call__(self, parameters: BodyParameters, vertices: bool = True) -> BodyOutput:
        self.batches.append(parameters.transl.shape[0])
        template = torch.as_tensor(self.TEMPLATE, dtype=torch.float32)
        posed = template[None] * (1.0 + parameters.shape[:, :1, None]) + parameters.transl[:, None]
        return BodyOutput(joints=parameters.transl[:, None], vertices=posed if vertices else None)


def fitted(person, seed: int, shape_model: str = "smplx", shape_dim: int = 10):
    """``person`` with random, small, fitted-looking body parameters."""
    rng = np.random.default_rng(seed)
    count = len(person.frames)
    return dataclasses.replace(
        person,
        shape_model=shape_model,
        shape=rng.uniform(0.0, 0.5, shape_dim),
        global_orient=rng.normal(0.0, 0.3, (count, 3)),
        body_pose=rng.normal(0.0, 0.1, (count, 21, 3)),
    )


@pytest.fixture(scope="module")
def reconstruction(small_reconstruction):
    """Three fitted SMPL-X persons over clip frames 100, 102, …"""
    persons = tuple(fitted(p, seed) for seed, p in enumerate(small_reconstruction.persons))
    return dataclasses.replace(
        small_reconstruction, persons=persons, first_frame=FIRST_FRAME, frame_step=FRAME_STEP
    )


@pytest.fixture
def fake_body(monkeypatch):
    body = FakeBody()
    calls = []

    def load(config, shape_model, coarse=False):
        calls.append((shape_model, coarse))
        return body

    monkeypatch.setattr(export, "export_body_model", load)
    body.calls = calls
    return body


def with_persons(reconstruction, *persons):
    return dataclasses.replace(reconstruction, persons=persons)


def test_npz_holds_amass_layout_parameters_in_clip_frames(reconstruction, tmp_path):
    result = export_smplx_npz(reconstruction, tmp_path / "npz")
    names = [f"person_{p.person_id}.npz" for p in reconstruction.persons]
    assert [p.name for p in result.files] == names and result.skipped == ()
    assert sorted(p.name for p in (tmp_path / "npz").iterdir()) == sorted(names)  # no temporary left
    for person, path in zip(reconstruction.persons, result.files, strict=True):
        count = len(person.frames)
        with np.load(path, allow_pickle=False) as data:
            assert data["poses"].shape == (count, NUM_POSE_PARAMETERS)
            np.testing.assert_array_equal(data["poses"][:, :3], data["global_orient"])
            np.testing.assert_array_equal(data["poses"][:, 3:66], data["body_pose"])
            assert not data["poses"][:, 66:].any()  # jaw, eyes and hands at rest
            np.testing.assert_array_equal(data["global_orient"], person.global_orient)
            np.testing.assert_array_equal(data["body_pose"], person.body_pose.reshape(count, 63))
            np.testing.assert_array_equal(data["transl"], person.transl)
            np.testing.assert_array_equal(data["trans"], person.transl)
            np.testing.assert_array_equal(data["betas"], person.shape)
            np.testing.assert_array_equal(data["frames"], FIRST_FRAME + FRAME_STEP * person.frames)
            assert float(data["mocap_framerate"]) == reconstruction.fps
            assert str(data["gender"]) == "neutral"
            assert str(data["surface_model_type"]) == "smplx"
            assert str(data["transl_convention"]) == "smplx"
            assert "phenotypes" not in data


def test_npz_of_an_anny_person_has_named_phenotypes_and_pelvis_transl(reconstruction, tmp_path):
    from core.body.anny_backend import PHENOTYPES

    person = fitted(reconstruction.persons[0], 7, shape_model="anny", shape_dim=6)
    (path,) = export_smplx_npz(with_persons(reconstruction, person), tmp_path).files
    with np.load(path, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["phenotypes"], person.shape)
        assert tuple(data["phenotype_names"]) == PHENOTYPES
        assert str(data["transl_convention"]) == "pelvis" and str(data["surface_model_type"]) == "anny"
        np.testing.assert_array_equal(data["betas"], np.zeros(AMASS_BETAS))  # documented: mean shape
        assert int(data["num_betas"]) == AMASS_BETAS


def read_like_gmr(path):
    """What GMR's ``load_smplx_file`` takes from an AMASS SMPL-X file, in the way it takes it."""
    data = np.load(path, allow_pickle=True)
    num_betas = int(data["num_betas"]) if "num_betas" in data else None
    return {
        "gender": str(data["gender"]),
        "num_betas": num_betas,
        "betas": data["betas"][:num_betas],
        "root_orient": data["root_orient"],
        "pose_body": data["pose_body"],
        "trans": data["trans"],
        "fps": float(data["mocap_frame_rate"]),
    }


def read_like_aitviewer(path):
    """What aitviewer's ``SMPLSequence.from_amass`` takes: the packed poses, split."""
    data = np.load(path)
    poses = data["poses"]
    return {
        "gender": data["gender"].item(),
        "betas": data["betas"],
        "poses_root": poses[:, :3],
        "poses_body": poses[:, 3:66],
        "trans": data["trans"],
        "fps": data["mocap_framerate"].item(),
    }


@pytest.mark.parametrize("shape_model", ["smplx", "anny"])
def test_npz_loads_the_way_amass_consumers_load_it(reconstruction, tmp_path, shape_model):
    person = reconstruction.persons[0]
    if shape_model == "anny":
        person = fitted(person, 7, shape_model="anny", shape_dim=6)
    (path,) = export_smplx_npz(with_persons(reconstruction, person), tmp_path).files
    count = len(person.frames)
    gmr, aitviewer = read_like_gmr(path), read_like_aitviewer(path)
    for read in (gmr, aitviewer):
        np.testing.assert_array_equal(read["trans"], person.transl)
        assert read["fps"] == reconstruction.fps
        assert read["gender"] == "neutral"
    np.testing.assert_array_equal(gmr["root_orient"], person.global_orient)
    np.testing.assert_array_equal(gmr["pose_body"], person.body_pose.reshape(count, 63))
    np.testing.assert_array_equal(aitviewer["poses_root"], gmr["root_orient"])
    np.testing.assert_array_equal(aitviewer["poses_body"], gmr["pose_body"])
    assert gmr["num_betas"] == aitviewer["betas"].size == (10 if shape_model == "smplx" else AMASS_BETAS)
    with np.load(path) as data:  # AMASS's own split of the packed poses: root, body, jaw, eyes, hands
        split = np.concatenate(
            [data[k] for k in ("root_orient", "pose_body", "pose_jaw", "pose_eye", "pose_hand")], 1
        )
        np.testing.assert_array_equal(split, data["poses"])
        assert [data[k].shape[1] for k in ("pose_jaw", "pose_eye", "pose_hand")] == [3, 6, 90]


def test_persons_without_a_body_are_skipped_and_all_without_is_an_error(
    reconstruction, small_reconstruction, tmp_path
):
    bodied, bare, *_ = reconstruction.persons
    bare = dataclasses.replace(bare, shape_model="skeleton")
    result = export_smplx_npz(with_persons(reconstruction, bodied, bare), tmp_path / "some")
    assert result.skipped == (bare.person_id,)
    assert [p.name for p in result.files] == [f"person_{bodied.person_id}.npz"]
    with pytest.raises(InputError, match="no person has a fitted body model"):
        export_smplx_npz(small_reconstruction, tmp_path / "none")  # every person is a skeleton
    with pytest.raises(InputError, match="no person has a fitted body model"):
        export_body_glb(small_reconstruction, tmp_path / "none")
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("field", ["transl", "body_pose", "global_orient"])
def test_non_finite_parameters_are_refused_naming_person_and_frame_before_any_file(
    reconstruction, fake_body, tmp_path, field
):
    first, second, third = reconstruction.persons
    values = getattr(second, field).copy()
    values[5] = np.nan
    broken = dataclasses.replace(second, **{field: values})
    frame = FIRST_FRAME + FRAME_STEP * int(second.frames[5])
    for writer in (export_smplx_npz, export_body_glb):
        with pytest.raises(InputError, match=rf"person {second.person_id}: {field} .*clip frames {frame}"):
            writer(with_persons(reconstruction, first, broken, third), tmp_path / "out")
    assert not (tmp_path / "out").exists()  # not even the first person's file


def test_glb_has_a_node_per_frame_and_per_camera_with_the_models_vertices(
    reconstruction, fake_body, tmp_path
):
    result = export_body_glb(reconstruction, tmp_path / "glb")
    assert fake_body.calls == [("smplx", False)]  # loaded once for all persons
    assert fake_body.batches == [len(p.frames) for p in reconstruction.persons]  # one call per person
    assert sorted(p.name for p in (tmp_path / "glb").iterdir()) == sorted(p.name for p in result.files)
    cameras = reconstruction.cameras.cameras
    for person, path in zip(reconstruction.persons, result.files, strict=True):
        assert path.name == f"person_{person.person_id}.glb"
        scene = trimesh.load(path, force="scene")
        frames = [f"frame_{FIRST_FRAME + FRAME_STEP * f}" for f in person.frames]
        assert set(scene.graph.nodes_geometry) == set(frames) | {c.name for c in cameras}
        expected = FakeBody.expected(person) @ Z_UP_TO_Y_UP.T  # glTF is y up
        for name, vertices in zip(frames, expected, strict=True):
            transform, geometry = scene.graph[name]
            np.testing.assert_array_equal(transform, np.eye(4))
            mesh = scene.geometry[geometry]
            np.testing.assert_allclose(mesh.vertices, vertices, atol=1e-6)  # float32
            np.testing.assert_array_equal(mesh.faces, FakeBody.faces)
            assert tuple(mesh.visual.material.baseColorFactor[:3]) == identity_color(person.person_id)
        for camera in cameras:
            lines = scene.geometry[scene.graph[camera.name][1]]
            assert isinstance(lines, trimesh.path.Path3D)
            corners = camera_frustum_segments(camera).reshape(-1, 3) @ Z_UP_TO_Y_UP.T
            distances = np.linalg.norm(corners[:, None] - lines.vertices[None], axis=-1)
            assert distances.min(axis=1).max() < 1e-6  # every frustum point is drawn


def test_glb_poses_long_tracks_in_chunks_with_the_same_result(
    reconstruction, fake_body, tmp_path, monkeypatch
):
    person = reconstruction.persons[0]
    monkeypatch.setattr(export, "_FRAMES_PER_CALL", 16)
    (path,) = export_body_glb(with_persons(reconstruction, person), tmp_path, coarse=True).files
    assert fake_body.calls == [("smplx", True)]
    assert fake_body.batches == [16, 16, 16, 12]
    scene = trimesh.load(path, force="scene")
    last = f"frame_{FIRST_FRAME + FRAME_STEP * int(person.frames[-1])}"
    expected = FakeBody.expected(person)[-1] @ Z_UP_TO_Y_UP.T
    np.testing.assert_allclose(scene.geometry[scene.graph[last][1]].vertices, expected, atol=1e-6)


def test_camera_frustum_starts_at_the_centre_and_is_the_configured_depth_deep(reconstruction):
    for camera in reconstruction.cameras.cameras:
        segments = camera_frustum_segments(camera)
        np.testing.assert_allclose(segments[:4, 0], np.broadcast_to(camera.center, (4, 3)))
        depth = (segments[:4, 1] - camera.center) @ camera.R[2]  # along the optical axis
        np.testing.assert_allclose(depth, export.FRUSTUM_DEPTH)


def test_the_export_model_is_the_full_anny_mesh_unless_coarse(monkeypatch):
    import core.body.tracks

    seen = []
    monkeypatch.setattr(core.body.tracks, "load_body_model", lambda config: seen.append(config) or "model")
    config = BodyConfig(model="none", anny=AnnyConfig(cache_dir=None))
    assert export_body_model(config, "anny") == "model"
    export_body_model(config, "anny", coarse=True)
    assert [(c.model, c.anny.topology) for c in seen] == [
        ("anny", EXPORT_TOPOLOGY),
        ("anny", VIEWER_TOPOLOGY),
    ]


def test_cli_writes_the_folders_and_notes_skipped_persons(reconstruction, fake_body, tmp_path, capsys):
    first, second, third = reconstruction.persons
    saved = tmp_path / "run"
    with_persons(reconstruction, first, dataclasses.replace(second, shape_model="none"), third).save(saved)
    for fmt in ("smplx-npz", "glb"):
        main(["export", str(saved), "--format", fmt, "--out", str(tmp_path / fmt)])
        out = capsys.readouterr().out
        assert f"person {second.person_id}: no fitted body model, skipped" in out
        assert f"{fmt} written to {tmp_path / fmt}" in out
        assert len(list((tmp_path / fmt).iterdir())) == 2


def test_cli_without_bodies_is_a_one_line_error(small_reconstruction, tmp_path, capsys):
    small_reconstruction.save(tmp_path / "run")
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(tmp_path / "run"), "--format", "glb", "--out", str(tmp_path / "glb")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: no person has a fitted body model (skeleton)")


@pytest.mark.slow
@pytest.mark.parametrize("coarse", [True, False])
def test_real_anny_glb_of_one_frame(reconstruction, tmp_path, coarse):
    """Builds Anny's mesh for the topology on first use (the full one takes about a minute)."""
    from core.body.anny_backend import NEUTRAL_PHENOTYPES, AnnyBody

    anny = AnnyConfig(topology=VIEWER_TOPOLOGY if coarse else EXPORT_TOPOLOGY)
    person = reconstruction.persons[0]
    one = np.array([0])
    person = dataclasses.replace(
        person,
        shape_model="anny",
        shape=np.array(NEUTRAL_PHENOTYPES),
        frames=person.frames[one],
        global_orient=np.array([[np.pi / 2, 0.0, 0.0]]),  # canonical y up → world z up
        transl=np.array([[1.0, 2.0, 0.9]]),  # pelvis
        body_pose=np.zeros((1, 21, 3)),
    )
    (path,) = export_body_glb(with_persons(reconstruction, person), tmp_path, coarse=coarse).files
    scene = trimesh.load(path, force="scene")
    mesh = scene.geometry[scene.graph[f"frame_{FIRST_FRAME + FRAME_STEP * int(person.frames[0])}"][1]]
    assert mesh.faces.shape == AnnyBody(anny).faces.shape
    world = mesh.vertices @ Z_UP_TO_Y_UP  # back to z up
    height = world[:, 2].max() - world[:, 2].min()
    assert 1.5 < height < 1.9  # an average adult standing
    np.testing.assert_allclose(np.median(world[:, :2], axis=0), [1.0, 2.0], atol=0.1)
    assert world[:, 2].min() < 0.9 < world[:, 2].max()


def test_the_page_download_has_every_format_and_notes_what_is_left_out(
    reconstruction, small_reconstruction, fake_body, tmp_path
):
    import zipfile

    from studio.export import export_all

    files, notes = export_all(reconstruction, tmp_path / "all")
    assert [f.name for f in files] == ["joints.json", "smplx-npz.zip", "glb.zip"]
    assert notes == ["scene.ply: no scene points"]
    assert len(zipfile.ZipFile(files[1]).namelist()) == len(reconstruction.persons)
    files, notes = export_all(small_reconstruction, tmp_path / "bare")  # no fitted body at all
    assert [f.name for f in files] == ["joints.json"]
    assert [n.split(":")[0] for n in notes] == ["scene.ply", "smplx-npz", "glb"]
