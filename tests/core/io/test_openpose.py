"""OpenPose-style JSON keypoints: reading Pose2Sim's layout, recognising the layout, clear errors, and a
synthetic scene reconstructed from files of projected joints against its true joints."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from core.config import ReconstructionConfig
from core.engine.keypoint_pipeline import reconstruct_from_keypoints
from core.engine.pipeline import reconstruct_from_observations
from core.errors import InputError
from core.evaluation.synthetic import SyntheticConfig, make_scene
from core.io.calibration import write_calibration
from core.io.openpose import read_openpose_folder
from core.keypoints import BODY25_NAMES, BODY25B_NAMES, HALPE26_NAMES, KEYPOINT_LAYOUTS
from core.skeleton import JOINT_NAMES


def write_frame(path: Path, people: list[np.ndarray]) -> None:
    """One OpenPose JSON file: each person's (K, 3) x, y, confidence flattened, as OpenPose writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "version": 1.3,
        "people": [{"person_id": [-1], "pose_keypoints_2d": p.ravel().tolist()} for p in people],
    }
    path.write_text(json.dumps(document))


def standing_person(names: tuple[str, ...], x: float) -> np.ndarray:
    """A person upright in the image around column ``x``: plausible pixels for the named keypoints."""
    height = {"nose": 100, "neck": 160, "upper_neck": 150, "head_top": 60, "shoulder": 170, "elbow": 260,
              "wrist": 340, "hip": 380, "knee": 520, "ankle": 650, "eye": 90, "ear": 95, "mid_hip": 380,
              "foot_index": 670, "small_toe": 668, "heel": 660}  # fmt: skip
    people = np.zeros((len(names), 3))
    for k, name in enumerate(names):
        side, _, part = name.partition("_")
        part = part if side in ("left", "right") else name
        offset = {"left": 40.0, "right": -40.0}.get(side, 0.0)  # seen from the front: left on the right
        people[k] = x + offset, height.get(part, 300), 0.9  # hands and face details: mid-height
    return people


def test_reads_pose2sim_folders_with_frame_numbers_from_file_names(tmp_path: Path) -> None:
    person = standing_person(BODY25B_NAMES, 500.0)
    for number in range(5, 9):
        write_frame(tmp_path / "cam1_json" / f"cam01.{number:04d}.json", [person, person + [300, 0, 0]])
        if number != 7:  # one frame without a file in the second camera
            write_frame(tmp_path / "cam10_json" / f"c10_{number:012d}_keypoints.json", [person])
    write_frame(tmp_path / "cam2_json" / "cam02.0009.json", [standing_person(BODY25B_NAMES, 800.0)])
    found = read_openpose_folder(tmp_path)
    assert found.cameras == ("cam1", "cam2", "cam10")  # natural order
    assert found.layout == "body25b" and found.names == BODY25B_NAMES
    assert (found.first_frame, found.num_frames) == (5, 5)
    assert np.bincount(found.view).tolist() == [8, 1, 3]
    assert found.frame[found.view == 1].tolist() == [4]
    np.testing.assert_array_equal(found.keypoints[0], person[:, :2])
    assert any("cam10_json: files for 3 of the 5 frames" in m for m in found.messages)
    write_frame(tmp_path / "cam3_json" / "cam03.0005.json", [])  # a camera that saw nobody
    found = read_openpose_folder(tmp_path)
    assert found.cameras == ("cam1", "cam2", "cam3", "cam10") and np.bincount(found.view).tolist() == [
        8,
        1,
        0,
        3,
    ]
    assert any("cam3_json: nobody in any of its files" in m for m in found.messages)


def test_recognises_every_layout_by_count_and_body25_from_body25b_by_the_neck(tmp_path: Path) -> None:
    for layout, (names, count) in KEYPOINT_LAYOUTS.items():
        person = np.zeros((count, 3))
        person[: len(names)] = standing_person(names, 400.0)
        write_frame(tmp_path / layout / "cam1_json" / "f0.json", [person])
        assert read_openpose_folder(tmp_path / layout).layout == layout


def test_unfound_keypoints_and_sparse_people_are_left_out(tmp_path: Path) -> None:
    person = standing_person(BODY25_NAMES, 500.0)
    sparse = person.copy()
    sparse[4:, 2] = 0.0  # four keypoints only
    holed = person.copy()
    holed[3] = np.nan
    write_frame(tmp_path / "a_json" / "0.json", [holed, sparse])
    found = read_openpose_folder(tmp_path, "body25")
    assert len(found.view) == 1
    assert found.confidence[0, 3] == 0.0 and np.isfinite(found.keypoints).all()
    assert any("1 detections with fewer than 5 confident keypoints left out" in m for m in found.messages)


def test_bad_folders_and_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a folder"):
        read_openpose_folder(tmp_path / "missing")
    with pytest.raises(InputError, match="no <camera>_json/ folder"):
        read_openpose_folder(tmp_path)
    write_frame(tmp_path / "a_json" / "frame3.json", [standing_person(HALPE26_NAMES, 300.0)])
    with pytest.raises(InputError, match=r"a_json: people of 26 keypoints, but the layout body25 has 25"):
        read_openpose_folder(tmp_path, "body25")
    with pytest.raises(InputError, match="unknown keypoint layout 'openpose'"):
        read_openpose_folder(tmp_path, "openpose")
    (tmp_path / "a_json" / "frame4.json").write_text('{"people": [')
    with pytest.raises(InputError, match=r"frame4\.json: not a readable JSON file"):
        read_openpose_folder(tmp_path)
    (tmp_path / "a_json" / "frame4.json").write_text('{"people": [{"pose_keypoints_2d": [1, 2]}]}')
    with pytest.raises(InputError, match=r"frame4\.json: person 0: 'pose_keypoints_2d' is not a list"):
        read_openpose_folder(tmp_path)
    (tmp_path / "a_json" / "frame4.json").unlink()
    write_frame(tmp_path / "a_json" / "last.json", [])
    with pytest.raises(InputError, match=r"last\.json: no frame number in the file name"):
        read_openpose_folder(tmp_path)


def mmpose_instance(person: np.ndarray) -> dict:
    """One person as MMPose's inferencer saves it: [x, y] pairs, their scores, a box."""
    return {
        "keypoints": person[:, :2].tolist(),
        "keypoint_scores": person[:, 2].tolist(),
        "bbox": [[0.0, 0.0, 10.0, 10.0]],
        "bbox_score": 0.9,
    }


def test_mmpose_predictions_of_videos_and_of_images_read_as_openpose_files_do(tmp_path: Path) -> None:
    people = {  # camera → frame → persons (COCO-17, as RTMPose gives)
        "cam1": {0: [400.0, 700.0], 1: [405.0], 2: []},
        "cam2": {0: [300.0], 1: [310.0, 900.0], 2: [320.0]},
    }
    for camera, frames in people.items():
        video = []
        for t, columns in frames.items():
            persons = [standing_person(KEYPOINT_LAYOUTS["coco17"][0], x) for x in columns]
            write_frame(tmp_path / "openpose" / f"{camera}_json" / f"{camera}_{t:06d}.json", persons)
            image = tmp_path / "images" / f"{camera}_json" / f"{t:06d}.json"
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_text(json.dumps([mmpose_instance(p) for p in persons]))
            video.append({"frame_id": t, "instances": [mmpose_instance(p) for p in persons]})
        (tmp_path / "videos").mkdir(exist_ok=True)
        (tmp_path / "videos" / f"{camera}.json").write_text(json.dumps(video))
    expected = read_openpose_folder(tmp_path / "openpose")
    assert expected.layout == "coco17" and np.bincount(expected.view).tolist() == [3, 4]
    for kind in ("images", "videos"):
        found = read_openpose_folder(tmp_path / kind)
        assert (found.cameras, found.layout, found.num_frames) == (("cam1", "cam2"), "coco17", 3)
        for field in ("view", "frame", "keypoints", "confidence", "camera_frames"):
            np.testing.assert_array_equal(getattr(found, field), getattr(expected, field))
    (tmp_path / "videos" / "cam2.json").write_text(
        json.dumps([{"frame_id": 0, "instances": [{"keypoints": [[1, 2]]}]}])
    )
    with pytest.raises(InputError, match=r"cam2\.json: frame 0: instance 0: 'keypoints' is not a list of"):
        read_openpose_folder(tmp_path / "videos")
    (tmp_path / "videos" / "cam2.json").write_text(json.dumps({"predictions": []}))
    with pytest.raises(InputError, match=r"cam2\.json: not MMPose video predictions"):
        read_openpose_folder(tmp_path / "videos")


def scene_as_halpe(scene, folder: Path) -> None:
    """The synthetic scene's projected joints written as Halpe-26 files, one folder per camera; the
    Halpe keypoints that are not SMPL-X joints (face, feet) as not found."""
    o = scene.observations
    columns = [(k, JOINT_NAMES.index(n)) for k, n in enumerate(HALPE26_NAMES) if n in JOINT_NAMES]
    people = np.zeros((len(o), len(HALPE26_NAMES), 3))
    for k, j in columns:
        people[:, k, :2] = o.keypoints2d[:, j]
        people[:, k, 2] = o.keypoint_confidence[:, j]
    for v, camera in enumerate(scene.true_cameras.cameras):
        for t in range(scene.config.frames):
            rows = np.flatnonzero((o.view == v) & (o.frame == t))
            write_frame(folder / f"{camera.name}_json" / f"{camera.name}_{t:06d}.json", list(people[rows]))


@pytest.fixture(scope="module")
def from_files(tmp_path_factory):
    """A synthetic scene written as Halpe-26 files and reconstructed from them with its calibration."""
    folder = tmp_path_factory.mktemp("files")
    config = SyntheticConfig(persons=2, views=3, frames=40, keypoint_noise_px=1.0, false_positive_rate=0.0)
    scene = make_scene(config)
    scene_as_halpe(scene, folder / "pose")
    write_calibration(scene.true_cameras, folder / "Calib.toml")
    settings = ReconstructionConfig()
    settings = dataclasses.replace(settings, body=dataclasses.replace(settings.body, model="none"))
    return scene, reconstruct_from_keypoints(folder / "pose", folder / "Calib.toml", config=settings), folder


def test_a_synthetic_scene_from_keypoint_files_has_its_people_where_they_are(from_files) -> None:
    scene, result, _ = from_files
    assert len(result.persons) == 2
    names = [n for n in ("left_knee", "right_ankle", "left_wrist", "right_shoulder") if n in JOINT_NAMES]
    errors = []
    for person in result.persons:
        found = person.joints[:, [person.joint_names.index(n) for n in names]]  # (F, 4, 3)
        truth = scene.joints[:, person.frames][:, :, [JOINT_NAMES.index(n) for n in names]]  # (P, F, 4, 3)
        gap = np.linalg.norm(found[None] - truth, axis=-1)
        errors.append(np.nanmedian(gap, axis=(1, 2)).min())  # against the nearest true person
    assert max(errors) < 0.02, errors


def test_reconstruct_command_takes_clips_or_keypoints_and_an_image_size_without_calibration(
    tmp_path: Path, capsys
) -> None:
    from studio.cli import main

    write_frame(tmp_path / "pose" / "a_json" / "0.json", [standing_person(BODY25_NAMES, 300.0)])
    for args, message in (
        ([], "give the clips (--videos) or another detector's keypoints (--keypoints DIR)"),
        (["--keypoints", str(tmp_path / "pose")], "give the clips or --image-size W H"),
    ):
        with pytest.raises(SystemExit) as stop:
            main(["reconstruct", "--out", str(tmp_path / "out"), *args])
        assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_openpose_export_reads_back_as_the_same_detections(from_files, tmp_path: Path, capsys) -> None:
    from studio.cli import main

    _, result, _ = from_files
    result.save(tmp_path / "run")
    main(["export", str(tmp_path / "run"), "--format", "openpose-json", "--out", str(tmp_path / "pose")])
    assert "openpose-json written to" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "pose").iterdir()) == [f"cam0{v}_json" for v in range(3)]
    back = read_openpose_folder(tmp_path / "pose")
    o = result.observations
    assert back.layout == "halpe26" and len(back.view) == len(o)
    order = np.lexsort((o.frame, o.view))  # the files list each view's frames in order
    np.testing.assert_array_equal(back.view, o.view[order])
    np.testing.assert_array_equal(back.frame, o.frame[order])
    found = o.keypoint_confidence[order] >= 0.1
    np.testing.assert_allclose(back.keypoints[found], o.keypoints2d[order][found])
    assert (back.confidence[~found] == 0).all()


def test_openpose_export_refuses_keypoints_of_no_known_layout(tmp_path: Path) -> None:
    from studio.export import export_openpose_json

    scene = make_scene(SyntheticConfig(persons=1, views=2, frames=3))
    reconstruction = reconstruct_from_observations(scene.observations, scene.cameras, 3, 30.0)
    with pytest.raises(InputError, match="keypoints .* are in none of the layouts other tools read"):
        export_openpose_json(reconstruction, tmp_path / "pose")
    assert not (tmp_path / "pose").exists()


def started_apart(scene, offsets: np.ndarray):
    """The scene as cameras started apart would see it: the instant at frame t of the first camera is
    at frame t + offsets[v] of camera v, within the clip's frames."""
    frame = scene.observations.frame + offsets[scene.observations.view]
    inside = (frame >= 0) & (frame < scene.config.frames)
    observations = dataclasses.replace(scene.observations, frame=frame).take(np.flatnonzero(inside))
    return dataclasses.replace(scene, observations=observations)


def test_keypoint_files_not_in_step_are_put_in_step_by_the_epipolar_geometry(tmp_path: Path, capsys) -> None:
    from studio.cli import main

    scene = make_scene(SyntheticConfig(persons=2, views=3, frames=60, keypoint_noise_px=1.0))
    offsets = np.array([0, 6, -9])
    scene_as_halpe(started_apart(scene, offsets), tmp_path / "pose")
    write_calibration(scene.true_cameras, tmp_path / "Calib.toml")
    base = ["reconstruct", "--keypoints", str(tmp_path / "pose"), "--body", "none"]
    main(
        [
            *base,
            "--calibration",
            str(tmp_path / "Calib.toml"),
            "--sync",
            "auto",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    capsys.readouterr()
    main(["summary", str(tmp_path / "run"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert [s["offset"] for s in summary["sync_offsets"]] == offsets.tolist()
    assert summary["persons"] == 2 and summary["frames"] == 60 - 6 - 9  # the span all three cover
    with pytest.raises(SystemExit):
        main([*base, "--image-size", "1920", "1080", "--sync", "auto", "--out", str(tmp_path / "x")])
    assert (
        "--sync auto finds the offsets from the clips' sound or from the calibrated"
        in capsys.readouterr().err
    )


def test_uncalibrated_keypoint_files_with_clips_that_have_sound_are_put_in_step_by_it(tmp_path: Path) -> None:
    from tests.core.engine.test_clip_sync import FPS, room_sound, write_clip_with_sound

    scene = make_scene(SyntheticConfig(persons=2, views=3, frames=60, keypoint_noise_px=1.0))
    offsets = np.array([0, 6, -9])
    scene_as_halpe(started_apart(scene, offsets), tmp_path / "pose")  # the clips' first 60 frames
    source, size = room_sound(16_000), (1920, 1080)
    clips = [
        write_clip_with_sound(tmp_path / f"cam{v:02d}.mp4", source, 16_000, 3.0 - o / FPS, 16_000, size)
        for v, o in enumerate(offsets)
    ]
    settings = ReconstructionConfig()
    settings = dataclasses.replace(
        settings,
        body=dataclasses.replace(settings.body, model="none"),
        sync=dataclasses.replace(settings.sync, offsets="auto"),
    )
    # No calibration: only the sound can tell the offsets before the people calibrate the cameras.
    found = reconstruct_from_keypoints(tmp_path / "pose", None, clips, config=settings)
    assert found.diagnostics.sync_offsets.tolist() == offsets.tolist()
    assert found.num_frames == 60 - 6 - 9 and found.view_frames[2] == (0, 1.0)
    assert found.calibration.source == "people" and len(found.calibration.placed) == 3


def test_keypoint_files_with_their_clips_colour_the_floor_and_keep_the_clips(
    from_files, tmp_path: Path
) -> None:
    from studio.stand_in_clips import with_stand_in_clips

    _, result, folder = from_files
    clips = [Path(c) for c in with_stand_in_clips(result, tmp_path, downscale=1).clips]
    settings = dataclasses.replace(result.config, body=dataclasses.replace(result.config.body, model="none"))
    with_clips = reconstruct_from_keypoints(folder / "pose", folder / "Calib.toml", clips, config=settings)
    assert with_clips.clips == tuple(map(str, clips))
    assert np.isfinite(with_clips.ground).all() and len(with_clips.points) > 0  # the floor, coloured
    assert len(result.points) == 0 and np.isfinite(result.ground).all()  # without clips: not coloured
    with pytest.raises(InputError, match="2 clips .* for 3 keypoint folders"):
        reconstruct_from_keypoints(folder / "pose", folder / "Calib.toml", clips[:2], config=settings)
    # Files of cameras started apart, with their clips: the clips become windows of one span, each view
    # shown at its own frame of the instant.
    scene, offsets = from_files[0], np.array([0, 6, -9])
    scene_as_halpe(started_apart(scene, offsets), tmp_path / "apart")
    apart = dataclasses.replace(settings, sync=dataclasses.replace(settings.sync, offsets="0,6,-9"))
    in_step = reconstruct_from_keypoints(tmp_path / "apart", folder / "Calib.toml", clips, config=apart)
    assert in_step.num_frames == 40 - 9 - 6  # the span all three cover
    assert in_step.view_frames == ((9, 1.0), (15, 1.0), (0, 1.0))  # file frame 9 + offset at frame 0
    assert in_step.diagnostics.sync_offsets.tolist() == offsets.tolist() and len(in_step.points) > 0
