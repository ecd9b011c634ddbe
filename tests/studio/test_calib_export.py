"""The cameras exported as a Pose2Sim Calib.toml: read back by our reader, and by Pose2Sim's rule."""

import dataclasses
import tomllib

import cv2
import numpy as np
import pytest

from core.cameras.report import CalibrationReport, CameraEstimate
from core.errors import InputError
from core.geometry import project_points
from core.io.calibration import read_calibration
from core.reconstruction import Reconstruction
from studio.cli import main
from studio.export import export_calib_toml
from tests.core.test_reconstruction import assert_identical


@pytest.fixture(scope="module")
def saved(small_reconstruction, tmp_path_factory):
    """The small reconstruction with a self-calibration report (one camera unplaced), saved."""
    names = small_reconstruction.cameras.names
    report = CalibrationReport(
        source="people",
        cameras=(
            *(
                CameraEstimate(n, True, focal_px=1000.0 + i, reprojection_px=1.5, inliers=900)
                for i, n in enumerate(names[:-1])
            ),
            CameraEstimate(names[-1], False, reason="shares no person with the others"),
        ),
        scale_from="body priors",
        messages=("one camera not placed",),
    )
    reconstruction = dataclasses.replace(
        small_reconstruction, calibration=report, reference_cameras=small_reconstruction.cameras
    )
    directory = tmp_path_factory.mktemp("calib") / "run"
    reconstruction.save(directory)
    return directory, reconstruction


def test_the_calibration_report_and_reference_cameras_survive_save_and_load(saved):
    directory, reconstruction = saved
    loaded = Reconstruction.load(directory)
    assert loaded.calibration.table() == reconstruction.calibration.table()
    assert loaded.calibration.messages == reconstruction.calibration.messages
    assert np.isnan(loaded.calibration.cameras[-1].focal_px)
    assert_identical(loaded.reference_cameras, reconstruction.reference_cameras)


def test_calib_toml_reads_back_to_the_same_cameras(saved, tmp_path):
    directory, reconstruction = saved
    main(["export", str(directory), "--format", "calib-toml", "--out", str(tmp_path / "Calib.toml")])
    read = read_calibration(tmp_path / "Calib.toml")
    assert read.names == reconstruction.cameras.names
    np.testing.assert_allclose(read.K, reconstruction.cameras.K, rtol=1e-12)
    np.testing.assert_allclose(read.R, reconstruction.cameras.R, atol=1e-12)
    np.testing.assert_allclose(read.t, reconstruction.cameras.t, atol=1e-12)


def test_calib_toml_projects_as_pose2sim_reads_it(saved, tmp_path):
    """Pose2Sim's rule: every top-level table but ``metadata`` is a camera, in file order, its
    projection K [R(rotation) | translation] (Rodrigues, world→camera), ``size`` [w, h]."""
    _, reconstruction = saved
    path = tmp_path / "Calib.toml"
    export_calib_toml(reconstruction, path)
    tables = tomllib.loads(path.read_text())
    assert list(tables)[-1] == "metadata"
    cameras = [tables[key] for key in tables if key != "metadata"]
    points = np.random.default_rng(0).uniform([-2, -2, 0], [2, 2, 2], (50, 3))
    for camera, table in zip(reconstruction.cameras.cameras, cameras, strict=True):
        R, _ = cv2.Rodrigues(np.array(table["rotation"]))
        P = np.array(table["matrix"]) @ np.c_[R, table["translation"]]
        pixels = np.c_[points, np.ones(50)] @ P.T
        mine = project_points(points, camera.K, np.zeros(5), camera.R, camera.t)  # computeP: no distortion
        np.testing.assert_allclose(pixels[:, :2] / pixels[:, 2:], mine, atol=1e-8)
        assert table["size"] == [camera.width, camera.height] and table["fisheye"] is False


def test_calib_toml_needs_a_toml_name(saved, tmp_path):
    _, reconstruction = saved
    with pytest.raises(InputError, match=r"calib\.txt: Pose2Sim reads calibrations from \*\.toml"):
        export_calib_toml(reconstruction, tmp_path / "calib.txt")
    assert not (tmp_path / "calib.txt").exists()
