"""BEDLAM's released layout read as multi-view samples, on a tiny copy of that layout with known truth.

The copy: two scenes, as BEDLAM ships them (``training_labels/all_npz_12_training/<scene>.npz``,
``training_images/<scene>/png/<seq>/<seq>_<frame>.png``, ``…/depth/<seq>/<seq>_<frame>_depth.exr`` in
centimetres), two subjects. A zoom scene with a static-camera sequence (frames 0, 5, 10, 15; the second
subject has no row at 15 and its head leaves the image at 10) and a turning camera's sequence, its rows
shuffled; and a closeup scene whose ground truth is for the upright 6 × 10 image while its PNG and EXR
are stored as rendered, turned 90° counter-clockwise. Each head is drawn as one pixel of its subject's
colour, where its camera-frame point projects, and holds its depth there.
"""

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.errors import InputError
from studio.training.bedlam import Z_UP_FROM_BEDLAM, BedlamScenes
from studio.training.exr import write_exr_channel

ZOOM = "20221010_3-10_500_batch01hand_zoom_suburb_d_6fps"
CLOSEUP = "20221011_1_250_batch01hand_closeup_suburb_a_6fps"
SUBJECTS = ("rp_aaron_posed_002", "rp_alison_posed_001")
COLOURS = {SUBJECTS[0]: (255, 0, 0), SUBJECTS[1]: (0, 255, 0)}
BETAS = {s: np.linspace(0.1, 1.1, 11) * (i + 1) for i, s in enumerate(SUBJECTS)}
FOCAL, Z = 10.0, 5.0
"""Focal length (px) and every head's depth (m)."""
HEAD_FROM_TRANSL = np.array([0.0, -0.6, 0.0])
PELVIS_FROM_TRANSL = np.array([0.0, 0.3, 0.0])


def _rotation(yaw: float) -> np.ndarray:
    return cv2.Rodrigues(np.array([0.2, yaw, 0.0]))[0]


def _write_scene(root: Path, scene: str, sequences: dict, size: tuple[int, int], turned: bool, seed: int):
    """One scene in BEDLAM's layout; the truth per (sequence, frame, subject)."""
    width, height = size
    rng = np.random.default_rng(seed)
    K = np.array([[FOCAL, 0, width / 2], [0, FOCAL, height / 2], [0, 0, 1]])  # BEDLAM's: centre at W/2
    columns, truth = {}, {}
    for sequence, spec in sequences.items():
        for f, frame in enumerate(spec["frames"]):
            R = _rotation(0.1 * f if spec.get("turning") else 0.0)
            image = np.full((height, width, 3), 40 + 10 * f, np.uint8)
            depth_cm = np.full((height, width), 800.0, np.float32)
            depth_cm[0], depth_cm[-1, -1] = 1e10, 0.0  # sky, and a pixel of no depth
            for p, subject in enumerate(SUBJECTS):
                if (subject, frame) in spec.get("absent", ()):
                    continue
                t = R @ (np.array([1.0 * p, 0.0, 2.0]) - np.array([0.0, -1.5, -3.0]))  # placement - camera
                col, row = (1 + f % 2, 2) if p == 0 else (width - 2, height - 3)
                if (subject, frame) in spec.get("off_image", ()):
                    col = width + 3
                else:
                    image[row, col], depth_cm[row, col] = COLOURS[subject], Z * 100
                head = np.array(
                    [(col + 0.5 - width / 2) * Z / FOCAL, (row + 0.5 - height / 2) * Z / FOCAL, Z]
                )
                transl = head - HEAD_FROM_TRANSL
                gtkps = np.ones((127, 3))
                gtkps[[0, 15], :2] = [(K @ x / x[2])[:2] for x in (transl + PELVIS_FROM_TRANSL, head)]
                cam_ext = np.eye(4)
                cam_ext[:3, :3], cam_ext[:3, 3] = R, t
                pose = rng.normal(0, 0.3, 165)
                row_columns = dict(
                    imgname=f"{sequence}/{sequence}_{frame:04d}.png",
                    sub=subject,
                    pose_cam=pose,
                    shape=BETAS[subject],
                    trans_cam=transl - t,
                    cam_int=K,
                    cam_ext=cam_ext,
                    gtkps=gtkps,
                    gender="neutral",
                )
                for key, value in row_columns.items():
                    columns.setdefault(key, []).append(value)
                truth[sequence, frame, subject] = dict(
                    pose=pose, transl=transl, head=head, R=R, t=t, gtkps=gtkps
                )
            folder, name = root / "training_images" / scene, f"{sequence}_{frame:04d}"
            png, exr = (
                folder / "png" / sequence / f"{name}.png",
                folder / "depth" / sequence / f"{name}_depth.exr",
            )
            png.parent.mkdir(parents=True, exist_ok=True)
            exr.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(png), np.rot90(image, 1)[..., ::-1] if turned else image[..., ::-1])
            write_exr_channel(exr, "Depth", np.rot90(depth_cm, 1) if turned else depth_cm)
    order = rng.permutation(len(columns["sub"]))  # rows in no particular order
    labels = root / "training_labels" / "all_npz_12_training"
    labels.mkdir(parents=True, exist_ok=True)
    np.savez(labels / f"{scene}.npz", **{key: np.asarray(value)[order] for key, value in columns.items()})
    return truth


def _write_bedlam(root: Path) -> dict:
    zoom = {
        "seq_000000": dict(frames=[0, 5, 10, 15], absent={(SUBJECTS[1], 15)}, off_image={(SUBJECTS[1], 10)}),
        "seq_000001": dict(frames=[0, 5, 10], turning=True),
    }
    truth = {ZOOM: _write_scene(root, ZOOM, zoom, (8, 6), turned=False, seed=1)}
    closeup = {"seq_000000": dict(frames=[0, 5])}
    truth[CLOSEUP] = _write_scene(root, CLOSEUP, closeup, (6, 10), turned=True, seed=2)
    np.savez(root / "training_labels" / "all_npz_12_training" / "agora-bfh.npz", imgname=["ag.png"])
    return truth


@pytest.fixture
def bedlam(tmp_path):
    return tmp_path, _write_bedlam(tmp_path)


def test_frames_of_a_static_camera_are_the_views(bedlam):
    root, truth = bedlam
    scenes = BedlamScenes(root, views=2)
    assert len(scenes) == 4  # zoom (0, 5), (5, 10), (10, 15); closeup (0, 5); not the turning camera
    sample = scenes[1]
    assert sample.name == f"BEDLAM {ZOOM}/seq_000000 frames 0005, 0010"
    assert sample.images.shape == (2, 6, 8, 3) and sample.images.dtype == np.uint8
    assert sample.body_model == "smplx" and sample.masks is None
    np.testing.assert_allclose(sample.K, [[[FOCAL, 0, 3.5], [0, FOCAL, 2.5], [0, 0, 1]]] * 2)
    first = truth[ZOOM]["seq_000000", 5, SUBJECTS[0]]  # the world is the first person's
    np.testing.assert_allclose(sample.R, [first["R"] @ Z_UP_FROM_BEDLAM.T] * 2, atol=1e-6)
    np.testing.assert_allclose(sample.R[0, :, 2], first["R"] @ [0, -1, 0], atol=1e-6)  # z up: BEDLAM's −y
    np.testing.assert_allclose(sample.t, [first["t"]] * 2, atol=1e-6)
    np.testing.assert_allclose(sample.shape, [BETAS[s][:10] for s in SUBJECTS], atol=1e-6)
    for v, frame in enumerate((5, 10)):
        for p, subject in enumerate(SUBJECTS):
            row = truth[ZOOM]["seq_000000", frame, subject]
            np.testing.assert_allclose(sample.global_orient[v, p], row["pose"][:3], atol=1e-6)
            np.testing.assert_allclose(sample.body_pose[v, p], row["pose"][3:66].reshape(21, 3), atol=1e-6)
            np.testing.assert_allclose(sample.transl[v, p], row["transl"], atol=1e-5)  # trans_cam + cam_ext t
            np.testing.assert_allclose(sample.head2d[v, p], row["gtkps"][15, :2] - 0.5, atol=1e-5)
            np.testing.assert_allclose(sample.pelvis2d[v, p], row["gtkps"][0, :2] - 0.5, atol=1e-5)
            head = sample.K[v] @ row["head"]
            np.testing.assert_allclose(head[:2] / head[2], sample.head2d[v, p], atol=1e-5)
    assert sample.visible.tolist() == [[True, True], [True, False]]  # the second head left the image at 10
    assert sample.depth.shape == (2, 6, 8)
    col, row = np.round(sample.head2d[0, 0]).astype(int)
    assert sample.depth[0, row, col] == pytest.approx(Z) and sample.depth[0, 3, 3] == pytest.approx(8.0)
    assert np.isnan(sample.depth[:, 0]).all() and np.isnan(sample.depth[:, -1, -1]).all()


def test_persons_are_matched_by_subject_whatever_the_rows_order(bedlam):
    root, _ = bedlam
    scenes = BedlamScenes(root, views=2)
    for sample in (scenes[0], scenes[2]):
        for v in range(sample.num_views):
            for p in np.flatnonzero(sample.visible[v]):
                col, row = np.round(sample.head2d[v, p]).astype(int)
                assert tuple(sample.images[v, row, col]) == COLOURS[SUBJECTS[p]]
    assert scenes[0].num_persons == 2 and scenes[2].num_persons == 1  # the second has no row at frame 15


def test_closeup_pixels_turn_to_the_upright_geometry(bedlam):
    root, truth = bedlam
    sample = BedlamScenes(root, views=2)[3]
    assert sample.name == f"BEDLAM {CLOSEUP}/seq_000000 frames 0000, 0005"
    assert sample.images.shape == (2, 10, 6, 3) and sample.depth.shape == (2, 10, 6)
    np.testing.assert_allclose(sample.K[0], [[FOCAL, 0, 2.5], [0, FOCAL, 4.5], [0, 0, 1]])
    for v, frame in enumerate((0, 5)):
        for p, subject in enumerate(SUBJECTS):
            head = sample.K[v] @ truth[CLOSEUP]["seq_000000", frame, subject]["head"]
            np.testing.assert_allclose(head[:2] / head[2], sample.head2d[v, p], atol=1e-5)
            col, row = np.round(sample.head2d[v, p]).astype(int)
            assert tuple(sample.images[v, row, col]) == COLOURS[subject]
            assert sample.depth[v, row, col] == pytest.approx(Z)
    assert np.isnan(sample.depth[:, 0]).all()  # the upright image's top row is the sky


def test_views_stride_and_cameras_grouping(bedlam):
    root, _ = bedlam
    four = BedlamScenes(root, views=4)
    assert len(four) == 1 and four[0].num_persons == 1  # only the first subject is in all four frames
    assert [s.name.split(" frames ")[1] for s in BedlamScenes(root, views=2, frame_stride=2)] == [
        "0000, 0010",
        "0005, 0015",
    ]
    single = BedlamScenes(root, views=1, grouping="cameras")
    assert len(single) == 9  # every image, the turning camera's too
    turning = [s for s in single if "seq_000001" in s.name]
    assert len(turning) == 3 and not np.allclose(turning[0].R, turning[1].R)


def test_depth_is_none_for_a_scene_without_depth(bedlam):
    root, _ = bedlam
    shutil.rmtree(root / "training_images" / ZOOM / "depth")
    scenes = BedlamScenes(root, views=2)
    assert scenes[0].depth is None and scenes[3].depth is not None


def test_bad_input_is_explained(tmp_path):
    def error(root, match, index=None, **options):
        with pytest.raises(InputError, match=match):
            scenes = BedlamScenes(root, **options)
            if index is not None:
                scenes[index]

    error(tmp_path / "none", r"none: BEDLAM folder not found")
    error(tmp_path, r"no all_npz_12_training/ folder of BEDLAM label files \(looked for .*training_labels")
    labels = tmp_path / "training_labels" / "all_npz_12_training"
    labels.mkdir(parents=True)
    error(tmp_path, r"no BEDLAM scene \.npz in it")
    _write_bedlam(tmp_path)
    error(tmp_path, r"with 2 views: BEDLAM renders every instant by one camera", grouping="cameras", views=2)
    with np.load(labels / f"{ZOOM}.npz") as data:
        columns = dict(data)
    np.savez(labels / f"{ZOOM}.npz", imgname=columns["imgname"], sub=columns["sub"])
    error(
        tmp_path,
        rf"{ZOOM}\.npz: not a BEDLAM label file, missing pose_cam, shape, trans_cam, cam_int, cam_ext",
    )
    np.savez(labels / f"{ZOOM}.npz", **{**columns, "pose_cam": columns["pose_cam"][:, :72]})
    error(tmp_path, r"pose_cam has shape \(\d+, 72\), expected \d+ rows of 165")
    np.savez(labels / f"{ZOOM}.npz", **{**columns, "imgname": np.char.replace(columns["imgname"], "/", "_")})
    error(
        tmp_path, r"imgname 'seq_00000\d_seq_00000\d_\d{4}.png' is not BEDLAM's <sequence>/<sequence>_<frame>"
    )
    np.savez(labels / f"{ZOOM}.npz", **columns)
    shutil.move(tmp_path / "training_images" / ZOOM / "png", tmp_path / "png")
    error(tmp_path, rf"{ZOOM}\.npz: no image folder for this scene; .* looked for .*{ZOOM}/png")
    shutil.move(tmp_path / "png", tmp_path / "training_images" / ZOOM / "png")
    (tmp_path / "training_images" / ZOOM / "depth" / "seq_000000" / "seq_000000_0010_depth.exr").unlink()
    error(tmp_path, r"seq_000000_0010_depth\.exr: depth missing", index=1, views=2)
    png = tmp_path / "training_images" / ZOOM / "png" / "seq_000000" / "seq_000000_0005.png"
    cv2.imwrite(str(png), np.zeros((5, 5, 3), np.uint8))
    error(tmp_path, r"seq_000000_0005\.png: image is 5×5, but .*intrinsics are for 8×6", index=0, views=2)
    png.unlink()
    error(tmp_path, rf"seq_000000_0005\.png: image missing \(named by .*{ZOOM}\.npz\)", index=0, views=2)
