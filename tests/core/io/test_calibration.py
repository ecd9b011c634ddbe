"""Calibration readers and writer: exact round trips through every format, the real Qualisys demo, clear
errors, and fuzzing that proves malformed files only ever raise CalibrationError.

Each format gets a small writer here that applies the format's conventions in the opposite direction
(Qualisys subpixels and camera flip, COLMAP's half-pixel shift, EasyMocap's split files), so a round trip
checks the reader's conventions, not just its parsing.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from core.geometry import triangulate_rays
from core.io.calibration import CalibrationError, match_clips, read_calibration, write_calibration
from core.types import Camera, CameraRig

DEMO_QCA = Path.home() / ".cache/chromm-studio/examples/Demo_MultiPerson/calibration/Calib.qca.txt"

# ---------------------------------------------------------------------------------------------------------
# A known rig and one writer per format
# ---------------------------------------------------------------------------------------------------------


def make_rig(views: int = 3, seed: int = 0, k3: bool = True, names: tuple[str, ...] = ()) -> CameraRig:
    """Cameras on a ring 4 m out and 2 m up, looking at a point 1 m above the origin; distinct intrinsics."""
    rng = np.random.default_rng(seed)
    cameras = []
    for v in range(views):
        angle = 2 * np.pi * v / views + rng.uniform(-0.3, 0.3)
        center = np.array([4 * np.cos(angle), 4 * np.sin(angle), 2.0 + rng.uniform(-0.5, 0.5)])
        forward = np.array([0.0, 0.0, 1.0]) - center
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        R = np.stack([right, np.cross(forward, right), forward])  # rows: camera x, y (down), z in world
        fx = rng.uniform(900, 1800)
        K = np.array([[fx, 0.0, rng.uniform(500, 560)], [0.0, fx * 1.001, rng.uniform(930, 990)], [0, 0, 1]])
        dist = rng.normal(scale=[0.05, 0.1, 1e-3, 1e-3, 0.01 if k3 else 0.0])
        name = names[v] if names else f"cam{v + 1:02d}"
        cameras.append(Camera(name, K, dist, R, -R @ center, 1088, 1920))
    return CameraRig(tuple(cameras))


def num(value: float) -> str:
    """Shortest text that reads back as the same float."""
    return repr(float(value))


def write_qca(rig: CameraRig, path: Path, window: tuple[int, int] = (8, 16)) -> None:
    """Qualisys XML: subpixel intrinsics on the sensor, window offset, camera centre in mm, flipped camera."""
    left, top = window
    cameras = []
    for c in rig.cameras:
        M = np.diag([1.0, -1.0, -1.0]) @ c.R  # world → Qualisys camera (looks along -z, y up)
        rotation = " ".join(f'r{i + 1}{j + 1}="{num(M[i, j])}"' for i in range(3) for j in range(3))
        x, y, z = map(num, c.center * 1000)
        k1, k2, p1, p2, k3 = map(num, c.dist)
        fu, fv, cu, cv = map(num, np.r_[c.K[0, 0], c.K[1, 1], c.K[0, 2] + left, c.K[1, 2] + top] * 64)
        right, bottom = left + c.width - 1, top + c.height - 1
        cameras.append(
            f'<camera active="1" serial="{c.name}" model="Miqus Video" viewrotation="0">'
            f'<fov_video left="{left}" top="{top}" right="{right}" bottom="{bottom}"/>'
            f'<transform x="{x}" y="{y}" z="{z}" {rotation}/>'
            f'<intrinsic focalLengthU="{fu}" focalLengthV="{fv}" centerPointU="{cu}" centerPointV="{cv}" '
            f'skew="0" radialDistortion1="{k1}" radialDistortion2="{k2}" radialDistortion3="{k3}" '
            f'tangentalDistortion1="{p1}" tangentalDistortion2="{p2}"/></camera>'
        )
    marker = '<camera serial="m1" model="Miqus M3" viewrotation="0"/>'  # films no clip: left out
    path.write_text(
        f"<?xml version='1.0'?><calibration><cameras>{marker}{''.join(cameras)}</cameras></calibration>"
    )


def _opencv_matrix(key: str, values: np.ndarray) -> str:
    rows, cols = values.shape
    data = ", ".join(map(num, values.ravel()))
    return f"{key}: !!opencv-matrix\n   rows: {rows}\n   cols: {cols}\n   dt: d\n   data: [ {data} ]\n"


def write_easymocap(rig: CameraRig, folder: Path, sizes: bool = True) -> None:
    """intri.yml / extri.yml as OpenCV 4 writes them; camera 0 stores a rotation matrix, others Rodrigues."""
    header = "%YAML:1.0\n---\nnames:\n" + "".join(f'   - "{c.name}"\n' for c in rig.cameras)
    intri, extri = header, header
    for v, c in enumerate(rig.cameras):
        intri += _opencv_matrix(f"K_{c.name}", c.K) + _opencv_matrix(f"dist_{c.name}", c.dist[None])
        if sizes:
            intri += f"W_{c.name}: {c.width}\nH_{c.name}: {c.height}\n"
        if v == 0:
            extri += _opencv_matrix(f"Rot_{c.name}", c.R)
        else:
            extri += _opencv_matrix(f"R_{c.name}", Rotation.from_matrix(c.R).as_rotvec()[:, None])
        extri += _opencv_matrix(f"T_{c.name}", c.t[:, None])
    (folder / "intri.yml").write_text(intri)
    (folder / "extri.yml").write_text(extri)


def write_colmap(rig: CameraRig, folder: Path) -> None:
    """cameras.txt + images.txt: OPENCV and PINHOLE models, half-pixel shift, wxyz quaternions."""
    cameras, images = ["# Camera list"], ["# Image list with two lines of data per image:"]
    for v, c in enumerate(rig.cameras, 1):
        fx, fy, cx, cy = map(num, (c.K[0, 0], c.K[1, 1], c.K[0, 2] + 0.5, c.K[1, 2] + 0.5))
        if v == 1:
            cameras.append(f"{v} PINHOLE {c.width} {c.height} {fx} {fy} {cx} {cy}")
        else:
            k1, k2, p1, p2 = map(num, c.dist[:4])
            cameras.append(f"{v} OPENCV {c.width} {c.height} {fx} {fy} {cx} {cy} {k1} {k2} {p1} {p2}")
        x, y, z, w = Rotation.from_matrix(c.R).as_quat()
        pose = " ".join(map(num, (w, x, y, z, *c.t)))
        images += [f"{v} {pose} {v} views/{c.name}.jpg", "" if v % 2 else "10.5 20.5 -1 30.0 40.0 7"]
    (folder / "cameras.txt").write_text("\n".join(cameras) + "\n")
    (folder / "images.txt").write_text("\n".join(images) + "\n")


def assert_rigs_equal(actual: CameraRig, expected: CameraRig, sizes: bool = True) -> None:
    assert actual.names == expected.names
    for field in ("K", "dist", "R", "t"):
        np.testing.assert_allclose(getattr(actual, field), getattr(expected, field), rtol=0, atol=1e-9)
    if sizes:
        assert [(c.width, c.height) for c in actual.cameras] == [
            (c.width, c.height) for c in expected.cameras
        ]


def without_k3(rig: CameraRig) -> CameraRig:
    return CameraRig(tuple(dataclasses.replace(c, dist=np.r_[c.dist[:4], 0.0]) for c in rig.cameras))


@pytest.fixture
def every_format(tmp_path: Path) -> Path:
    """A folder holding the same two-camera rig in every format."""
    rig = make_rig(2)
    write_calibration(rig, tmp_path / "Calib.toml")
    write_qca(rig, tmp_path / "Calib.qca.txt")
    write_easymocap(rig, tmp_path)
    write_colmap(rig, tmp_path)
    return tmp_path


# ---------------------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------------------


def test_pose2sim_toml_round_trip_is_exact(tmp_path: Path) -> None:
    rig = CameraRig((*make_rig().cameras, *without_k3(make_rig(2, seed=1, names=("a b", 'q"\\'))).cameras))
    path = tmp_path / "Calib.toml"
    write_calibration(rig, path)
    assert_rigs_equal(read_calibration(path), rig)
    assert "distortions = [" in path.read_text() and "fisheye = false" in path.read_text()


@settings(max_examples=30, deadline=None)
@given(
    rotvecs=st.lists(st.tuples(*[st.floats(-3.1, 3.1)] * 3), min_size=1, max_size=4),
    names=st.lists(
        st.text(min_size=1, max_size=8).filter(lambda n: n != "metadata"),  # Pose2Sim's reserved table
        min_size=4,
        max_size=4,
        unique=True,
    ),
)
def test_pose2sim_toml_round_trips_any_rotation_and_name(rotvecs: list, names: list[str]) -> None:
    base = make_rig(len(rotvecs))
    rig = CameraRig(
        tuple(
            dataclasses.replace(c, name=n, R=Rotation.from_rotvec(r).as_matrix())
            for c, r, n in zip(base.cameras, rotvecs, names, strict=False)
        )
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "Calib.toml"
        write_calibration(rig, path)
        assert_rigs_equal(read_calibration(path), rig)


def test_pose2sim_toml_as_pose2sim_writes_it(tmp_path: Path) -> None:
    """Float sizes, four distortions, a [metadata] table that is not a camera."""
    (tmp_path / "Calib.toml").write_text(
        '[int_cam1]\nname = "cam1"\nsize = [ 1920.0, 1080.0]\n'
        "matrix = [ [ 1500.0, 0.0, 959.5], [ 0.0, 1501.0, 539.5], [ 0.0, 0.0, 1.0]]\n"
        "distortions = [ -0.1, 0.05, 0.001, -0.002]\nrotation = [ 0.0, 0.0, 1.5707963267948966]\n"
        "translation = [ 0.5, -0.25, 3.0]\nfisheye = false\n\n[metadata]\nadjusted = false\nerror = 0.0\n"
    )
    (camera,) = read_calibration(tmp_path / "Calib.toml").cameras
    assert (camera.name, camera.width, camera.height) == ("cam1", 1920, 1080)
    np.testing.assert_allclose(camera.dist, [-0.1, 0.05, 0.001, -0.002, 0.0])
    np.testing.assert_allclose(camera.R, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-15)
    np.testing.assert_allclose(camera.t, [0.5, -0.25, 3.0])


def test_qualisys_round_trip_applies_subpixels_window_and_flip(tmp_path: Path) -> None:
    rig = make_rig(4)
    write_qca(rig, tmp_path / "Calib.qca.txt")
    assert_rigs_equal(read_calibration(tmp_path / "Calib.qca.txt"), rig)


def test_easymocap_round_trip_from_either_file_or_the_folder(tmp_path: Path) -> None:
    rig = make_rig(3)
    write_easymocap(rig, tmp_path)
    for path in (tmp_path, tmp_path / "intri.yml", tmp_path / "extri.yml"):
        assert_rigs_equal(read_calibration(path), rig)


def test_easymocap_without_sizes_reads_unknown_sizes_that_match_clips_fills(tmp_path: Path) -> None:
    rig = make_rig(2)
    write_easymocap(rig, tmp_path, sizes=False)
    read = read_calibration(tmp_path)
    assert [(c.width, c.height) for c in read.cameras] == [(0, 0), (0, 0)]
    matched = match_clips(read, [(1088, 1920), (1080, 1920)], ["a.mp4", "b.mp4"], tmp_path)
    assert [(c.width, c.height) for c in matched.cameras] == [(1088, 1920), (1080, 1920)]
    assert matched.names == rig.names


def test_easymocap_reads_what_opencv_writes(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    rig = make_rig(2, names=("01", "cam 2"))
    for name, entries in (
        ("intri.yml", lambda c: {f"K_{c.name}": c.K, f"dist_{c.name}": c.dist[None]}),
        (
            "extri.yml",
            lambda c: {
                f"R_{c.name}": Rotation.from_matrix(c.R).as_rotvec()[:, None],
                f"T_{c.name}": c.t[:, None],
            },
        ),
    ):
        storage = cv2.FileStorage(str(tmp_path / name), cv2.FILE_STORAGE_WRITE)
        storage.startWriteStruct("names", cv2.FileNode_SEQ)
        for camera in rig.cameras:
            storage.write("", camera.name)
        storage.endWriteStruct()
        for camera in rig.cameras:
            for key, value in entries(camera).items():
                storage.write(key, value)
        storage.release()
    assert_rigs_equal(read_calibration(tmp_path), rig, sizes=False)


def test_colmap_round_trip_shifts_half_a_pixel_and_names_cameras_by_image_stem(tmp_path: Path) -> None:
    rig = without_k3(make_rig(3))
    rig = CameraRig((dataclasses.replace(rig.cameras[0], dist=np.zeros(5)), *rig.cameras[1:]))  # PINHOLE
    write_colmap(rig, tmp_path)
    for path in (tmp_path, tmp_path / "cameras.txt", tmp_path / "images.txt"):
        assert_rigs_equal(read_calibration(path), rig)


# ---------------------------------------------------------------------------------------------------------
# The real Qualisys demo calibration
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not DEMO_QCA.is_file(), reason=f"demo calibration not downloaded to {DEMO_QCA}")
def test_demo_qualisys_cameras_look_at_one_region_of_a_z_up_metric_world() -> None:
    rig = read_calibration(DEMO_QCA)
    assert rig.names == ("cam01", "cam02", "cam03", "cam04")
    assert {(c.width, c.height) for c in rig.cameras} == {(1088, 1920)}  # portrait, as the demo videos
    assert (np.abs(rig.K[:, :2, 2] - [544, 960]) < 40).all()  # principal points near the image centre
    assert rig.K[0, 0, 0] == 107599.671875 / 64  # focalLengthU, in 1/64 pixel
    np.testing.assert_allclose(rig.dist[0], [-0.046183, 0.139983, 0.000608, 0.00069, 0.0])  # unscaled
    axes = rig.R[:, 2]  # optical axes in the world
    meet = triangulate_rays(rig.centers, axes, np.ones(4))
    miss = np.linalg.norm(np.cross(meet - rig.centers, axes), axis=1)
    assert (miss < 0.15).all()  # the four optical axes pass within 15 cm of one point …
    assert 0.2 < meet[2] < 1.5  # … about a person's height above the floor …
    depth = np.einsum("vi,vi->v", meet - rig.centers, axes)
    assert ((depth > 2.5) & (depth < 5)).all()  # … a few metres in front of every camera
    assert ((rig.centers[:, 2] > 1.5) & (rig.centers[:, 2] < 2.5)).all()  # cameras at 1.5–2.5 m
    assert (rig.R[:, 1, 2] < -0.8).all()  # image "down" points to the floor


# ---------------------------------------------------------------------------------------------------------
# Files of the shapes other tools write
# ---------------------------------------------------------------------------------------------------------


def test_pose2sim_toml_with_nested_column_vectors_reads_as_flat(tmp_path: Path) -> None:
    """Pose2Sim's scene calibration writes rotation and translation as 3 × 1 nested lists."""
    rig = make_rig(2)
    write_calibration(rig, tmp_path / "flat.toml")
    text = (tmp_path / "flat.toml").read_text()
    nested = re.sub(
        r"^(rotation|translation) = \[ (\S+), (\S+), (\S+) \]$",
        r"\1 = [ [ \2], [ \3], [ \4]]",
        text,
        flags=re.MULTILINE,
    )
    assert len(re.findall(r"^(rotation|translation) = \[ \[", nested, re.MULTILINE)) == 4
    (tmp_path / "nested.toml").write_text(nested)
    assert_rigs_equal(read_calibration(tmp_path / "nested.toml"), read_calibration(tmp_path / "flat.toml"))
    (tmp_path / "bad.toml").write_text(nested.replace("rotation = [ [", "rotation = [ [ 0.0, ", 1))
    with pytest.raises(
        CalibrationError, match=r"bad\.toml: camera \[cam01\]: 'rotation' must be an array of 3 or 3×1 or 1×3"
    ):
        read_calibration(tmp_path / "bad.toml")


def test_a_camera_one_pixel_short_of_its_clip_is_the_same_camera(tmp_path: Path) -> None:
    """Pose2Sim writes 1087 × 1919 for the demo's 1088 × 1920 clips: the last pixel's index."""
    rig = make_rig(2)
    short = CameraRig(tuple(dataclasses.replace(c, width=1087, height=1919) for c in rig.cameras))
    write_calibration(short, tmp_path / "Calib.toml")
    matched = match_clips(read_calibration(tmp_path / "Calib.toml"), [(1088, 1920)] * 2, ["a", "b"], tmp_path)
    assert_rigs_equal(matched, rig)
    with pytest.raises(CalibrationError, match="camera 'cam01' is 1087×1919 but clip 'a' is 1089×1920"):
        match_clips(short, [(1089, 1920), (1088, 1920)], ["a", "b"], tmp_path)


def test_easymocap_reads_the_nd_matrices_opencv_5_writes_for_1d_arrays(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    rig = make_rig(2)
    entries = {
        "intri.yml": lambda c: {f"K_{c.name}": c.K, f"dist_{c.name}": c.dist},  # dist: shape (5,)
        "extri.yml": lambda c: {
            f"R_{c.name}": Rotation.from_matrix(c.R).as_rotvec(),
            f"T_{c.name}": c.t,
        },
    }
    for name, values in entries.items():
        storage = cv2.FileStorage(str(tmp_path / name), cv2.FILE_STORAGE_WRITE)
        storage.write("names", list(rig.names))
        for camera in rig.cameras:
            for key, value in values(camera).items():
                storage.write(key, value)
        storage.release()
    assert "dist_cam01: !!opencv-nd-matrix" in (tmp_path / "intri.yml").read_text()
    assert_rigs_equal(read_calibration(tmp_path), rig, sizes=False)
    storage = cv2.FileStorage(str(tmp_path / "intri.yml"), cv2.FILE_STORAGE_READ)
    np.testing.assert_array_equal(storage.getNode("dist_cam02").mat().ravel(), rig.cameras[1].dist)
    storage.release()
    text = (tmp_path / "intri.yml").read_text()
    (tmp_path / "intri.yml").write_text(text.replace("sizes: [ 5 ]", "sizes: [ 6 ]", 1))
    with pytest.raises(
        CalibrationError, match=r"intri\.yml: line \d+: 'dist_cam01' holds 5 numbers \(6 declared\)"
    ):
        read_calibration(tmp_path)


def _colmap_full_opencv(folder: Path, camera: Camera, rational: tuple[float, float, float]) -> None:
    fx, fy, cx, cy = camera.K[0, 0], camera.K[1, 1], camera.K[0, 2] + 0.5, camera.K[1, 2] + 0.5
    params = " ".join(map(num, (fx, fy, cx, cy, *camera.dist, *rational)))
    (folder / "cameras.txt").write_text(f"1 FULL_OPENCV {camera.width} {camera.height} {params}\n")
    x, y, z, w = Rotation.from_matrix(camera.R).as_quat()
    pose = " ".join(map(num, (w, x, y, z, *camera.t)))
    (folder / "images.txt").write_text(f"1 {pose} 1 {camera.name}.png\n\n")


def test_colmap_full_opencv_is_exact_without_rational_terms_and_refused_with_them(tmp_path: Path) -> None:
    rig = make_rig(1)  # k1, k2, p1, p2 and k3 all non-zero
    _colmap_full_opencv(tmp_path, rig.cameras[0], (0.0, 0.0, 0.0))
    assert_rigs_equal(read_calibration(tmp_path), rig)
    _colmap_full_opencv(tmp_path, rig.cameras[0], (0.0, 0.25, 0.0))
    with pytest.raises(
        CalibrationError, match=r"cameras\.txt: line 1: FULL_OPENCV .*k4, k5, k6 = 0\.0, 0\.25, 0\.0"
    ):
        read_calibration(tmp_path)


def test_colmap_images_without_their_points_lines_keep_every_image(tmp_path: Path) -> None:
    rig = without_k3(make_rig(4))
    rig = CameraRig((dataclasses.replace(rig.cameras[0], dist=np.zeros(5)), *rig.cameras[1:]))  # PINHOLE
    write_colmap(rig, tmp_path)
    lines = (tmp_path / "images.txt").read_text().splitlines()
    image_lines = [line for line in lines[1:] if len(line.split()) >= 10]
    assert len(image_lines) == 4
    for kept in (image_lines, [image_lines[0], "", *image_lines[1:3], "1.0 2.0 -1", image_lines[3]]):
        (tmp_path / "images.txt").write_text("\n".join([lines[0], *kept]) + "\n")
        assert_rigs_equal(read_calibration(tmp_path), rig)


# ---------------------------------------------------------------------------------------------------------
# Matching clips, and errors that name the file
# ---------------------------------------------------------------------------------------------------------


def test_match_clips_keeps_order_and_names() -> None:
    rig = make_rig(2)
    assert_rigs_equal(match_clips(rig, [(1088, 1920)] * 2, ["x.mp4", "y.mp4"], Path("c.toml")), rig)


def test_match_clips_refuses_a_count_mismatch() -> None:
    with pytest.raises(
        CalibrationError, match=r"c\.toml: 3 cameras \(cam01, cam02, cam03\) for 2 clips \(x, y\)"
    ):
        match_clips(make_rig(3), [(1088, 1920)] * 2, ["x", "y"], Path("c.toml"))


def test_match_clips_refuses_a_size_mismatch_naming_camera_and_clip() -> None:
    with pytest.raises(
        CalibrationError, match=r"c\.toml: camera 'cam02' is 1088×1920 but clip 'y' is 1920×1088"
    ):
        match_clips(make_rig(2), [(1088, 1920), (1920, 1088)], ["x", "y"], Path("c.toml"))


def test_unknown_format_missing_path_and_ambiguous_folder(tmp_path: Path) -> None:
    (tmp_path / "calib.json").write_text("{}")
    with pytest.raises(CalibrationError, match=r"calib\.json: unknown calibration format; expected one of"):
        read_calibration(tmp_path / "calib.json")
    with pytest.raises(CalibrationError, match=r"nothing\.toml: no such file"):
        read_calibration(tmp_path / "nothing.toml")
    with pytest.raises(CalibrationError, match="no calibration in this folder"):
        read_calibration(tmp_path)
    write_calibration(make_rig(2), tmp_path / "a.toml")
    write_qca(make_rig(2), tmp_path / "b.qca.txt")
    with pytest.raises(
        CalibrationError, match=r"several calibrations in this folder \(a\.toml, b\.qca\.txt\)"
    ):
        read_calibration(tmp_path)


def test_missing_extri_is_named(tmp_path: Path) -> None:
    write_easymocap(make_rig(2), tmp_path)
    (tmp_path / "extri.yml").unlink()
    with pytest.raises(CalibrationError, match=r"extri\.yml: not found"):
        read_calibration(tmp_path / "intri.yml")


@pytest.mark.parametrize("name", ["Calib.toml", "Calib.qca.txt", "intri.yml", "images.txt"])
def test_truncated_file_names_the_file(every_format: Path, name: str) -> None:
    text = (every_format / name).read_text()
    (every_format / name).write_text(text[: len(text) // 2 - 7])
    with pytest.raises(CalibrationError, match=re.escape(name)):
        read_calibration(every_format / name)


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        ("Calib.qca.txt", 'Video" viewrotation="0"', 'Video" viewrotation="90"', "viewrotation"),
        ("Calib.toml", "fisheye = false", "fisheye = true", "fisheye"),
        ("cameras.txt", "PINHOLE", "OPENCV_FISHEYE", "'OPENCV_FISHEYE' is not supported"),
        ("intri.yml", "dt: d", "dt: 3d", "one-channel"),
        ("intri.yml", "H_cam01: 1920", "", "missing entry 'H_cam01'"),
        ("images.txt", " 1 views/cam01.jpg", " 9 views/cam01.jpg", "CAMERA_ID 9 not in cameras.txt"),
    ],
)
def test_unsupported_or_incomplete_files_are_refused_clearly(
    every_format: Path, name: str, old: str, new: str, message: str
) -> None:
    text = (every_format / name).read_text()
    assert old in text
    (every_format / name).write_text(text.replace(old, new, 1))
    with pytest.raises(CalibrationError, match=f"{re.escape(name)}.*{message}"):
        read_calibration(every_format / name)


def test_writer_refuses_other_extensions_and_duplicate_names(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match=r"calib\.yml: .*\.toml"):
        write_calibration(make_rig(1), tmp_path / "calib.yml")
    with pytest.raises(CalibrationError, match="unique"):
        write_calibration(make_rig(2, names=("a", "a")), tmp_path / "calib.toml")


# ---------------------------------------------------------------------------------------------------------
# Fuzzing: whatever the bytes, a reader returns a rig or raises CalibrationError
# ---------------------------------------------------------------------------------------------------------

FORMATS: dict[str, Callable[[CameraRig, Path], None]] = {
    "Calib.toml": lambda rig, folder: write_calibration(rig, folder / "Calib.toml"),
    "Calib.qca.txt": lambda rig, folder: write_qca(rig, folder / "Calib.qca.txt"),
    "intri.yml": write_easymocap,
    "extri.yml": write_easymocap,
    "cameras.txt": write_colmap,
    "images.txt": write_colmap,
}

_PIECES = st.sampled_from(
    [
        *'[ ] { } : , - " \' # = < > / 0 -1 1e400 nan data: !!opencv-matrix <camera x="'.split(),
        "\n",
        "  ",
        "\x00",
        "é",
    ]
)
"""Fragments that are meaningful to one of the parsers, to insert into valid files."""


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few slices deleted, duplicated or replaced by format-flavoured fragments."""
    for _ in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 40)))
        action = draw(st.sampled_from(["delete", "duplicate", "insert"]))
        middle = {
            "delete": "",
            "duplicate": text[start:end] * 2,
            "insert": "".join(draw(st.lists(_PIECES, max_size=4))),
        }
        text = text[:start] + middle[action] + text[end:]
    return text


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One folder per format holding a valid calibration, to fuzz one file of it."""
    folders = {}
    for name, write in FORMATS.items():
        folders[name] = tmp_path_factory.mktemp(name.replace(".", "_"))
        write(make_rig(2), folders[name])
    return folders


@pytest.mark.parametrize("name", list(FORMATS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_fuzzed_files_raise_only_calibration_error(
    valid_files: dict[str, Path], name: str, data: st.DataObject
) -> None:
    folder = valid_files[name]
    original = (folder / name).read_bytes()
    content = data.draw(
        st.one_of(st.binary(max_size=300), st.text(max_size=300), mutated(original.decode())),
        label="content",
    )
    (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    try:
        rig = read_calibration(folder / name)
    except CalibrationError as error:
        assert str(folder) in str(error)  # the message names the file (or, for EasyMocap, its folder)
    else:
        assert len(rig) > 0
    finally:
        (folder / name).write_bytes(original)


# ---------------------------------------------------------------------------------------------------------
# CMU Panoptic
# ---------------------------------------------------------------------------------------------------------

_DOME_Y_DOWN = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""Studio world (z up, metres) → dome world (y down), before the centimetres."""


def write_panoptic(rig: CameraRig, path: Path, extra_vga: bool = True) -> None:
    """``rig`` as a Panoptic dome file: y-down world in centimetres, 3 × 1 translations, and (as a full
    dome file has) a VGA camera among the HD ones."""
    import json

    cameras = [
        {
            "name": c.name,
            "type": "hd",
            "resolution": [c.width, c.height],
            "K": c.K.tolist(),
            "distCoef": c.dist.tolist(),
            "R": (c.R @ _DOME_Y_DOWN.T).tolist(),
            "t": (100 * c.t).reshape(3, 1).tolist(),
        }
        for c in rig.cameras
    ]
    if extra_vga:
        cameras.insert(1, {**cameras[0], "name": "01_01", "type": "vga", "resolution": [640, 480]})
    path.write_text(json.dumps({"calibDataSource": "test", "cameras": cameras}))


def test_panoptic_dome_file_reads_its_hd_cameras_in_a_metric_z_up_world(tmp_path: Path) -> None:
    rig = make_rig(3)
    write_panoptic(rig, tmp_path / "calibration_test.json")
    read = read_calibration(tmp_path)  # found in its folder by name
    assert read.names == rig.names  # the VGA camera is left out
    for a, b in zip(read.cameras, rig.cameras, strict=True):
        np.testing.assert_allclose(a.R, b.R, atol=1e-12)
        np.testing.assert_allclose(a.t, b.t, atol=1e-12)
        np.testing.assert_allclose(a.center, b.center, atol=1e-12)
        assert (a.width, a.height) == (b.width, b.height)


def test_the_dome_example_calibration_puts_its_cameras_above_the_floor() -> None:
    rig = read_calibration(Path(__file__).parents[3] / "examples/data/panoptic_dome")
    assert rig.names == ("00_03", "00_06", "00_12", "00_13", "00_23")
    heights = rig.centers[:, 2]
    assert np.all((heights > 1.0) & (heights < 4.0)), heights  # a dome a few metres high, z up
    # Every camera looks down at the middle of the dome.
    forward = rig.R[:, 2]  # optical axes in the world
    assert np.all(forward[:, 2] < 0)


def test_malformed_panoptic_files_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "calibration_bad.json"
    path.write_text('{"cameras": [{"name": "00_00", "K": [[1, 0, 0]]}]}')
    with pytest.raises(CalibrationError, match=r"calibration_bad\.json: camera 0 \(00_00\) lacks resolution"):
        read_calibration(path)
    path.write_text("[1, 2]")
    with pytest.raises(
        CalibrationError, match=r"calibration_bad\.json: expected an object with a 'cameras' list"
    ):
        read_calibration(path)
