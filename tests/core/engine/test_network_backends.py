"""The Pi3X scene and Multi-HMR human backends in the video pipeline.

The pipeline runs for real on two frames of the Pose2Sim demo with miniature networks of the published
layout and random weights, saved as checkpoints in the published formats: what is checked is the
plumbing (loading, pre/post-processing, alignment, observations, the saved result), not accuracy.
Exact geometry is checked on hand-made cases.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from core.cameras.config import CameraConfig
from core.config import ReconstructionConfig
from core.engine.video_pipeline import reconstruct_from_videos
from core.errors import InputError
from core.geometry import project_points
from core.io.calibration import read_calibration
from core.io.video import FrameRange
from core.nets.config import NetworksConfig
from core.nets.image_map import PixelMap
from core.nets.pi3x.model import Pi3X
from core.perception.multihmr_observer import load_multihmr, to_observations
from core.reconstruction import Reconstruction
from core.scene.pi3x_scene import FrameGeometry, estimate_scene, load_pi3x, upright
from core.skeleton import HEAD
from core.types import Camera, CameraRig
from studio.assets import examples_directory
from tests.devices import CPU_AND_CUDA

MULTI = examples_directory() / "Demo_MultiPerson"
needs_clips = pytest.mark.skipif(not (MULTI / "videos").is_dir(), reason="python -m studio assets")


def _networks(checkpoints, **changes) -> ReconstructionConfig:
    pi3x, mhmr = checkpoints
    networks = NetworksConfig(scene="pi3x", pi3x_ckpt=pi3x, humans="multihmr", mhmr_ckpt=mhmr, **changes)
    base = ReconstructionConfig()
    return replace(base, networks=networks, body=replace(base.body, model="none"))


def _clips():
    return sorted((MULTI / "videos").glob("*.mp4"))


@needs_clips
@CPU_AND_CUDA
def test_without_calibration_pi3x_gives_upright_cameras_and_coloured_points(checkpoints, tmp_path, device):
    config = _networks(checkpoints, head_depth="pi3x", detection_threshold=0.5)
    result = reconstruct_from_videos(_clips(), None, FrameRange(0, 2), config, device=device)
    result.save(tmp_path / "run")
    saved = Reconstruction.load(tmp_path / "run")
    assert saved.cameras.names == ("cam01", "cam02", "cam03", "cam04")
    R = saved.cameras.R
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
    up = -R[:, 1, :].mean(axis=0)
    np.testing.assert_allclose(up / np.linalg.norm(up), [0, 0, 1], atol=1e-6)
    assert saved.cameras.cameras[0].width == 1088 and saved.cameras.cameras[0].height == 1920
    assert len(saved.points) > 1000 and np.isfinite(saved.points).all()
    assert saved.point_colors.shape == saved.points.shape and saved.point_colors.dtype == np.uint8
    observations = saved.observations
    assert len(observations) > 0 and set(np.unique(observations.frame)) <= {0, 1}
    assert np.isfinite(observations.position_cam).all() and np.isfinite(observations.keypoints2d).all()
    assert "scene network" in saved.diagnostics.stage_seconds
    assert saved.config.networks.scene == "pi3x"


@needs_clips
def test_with_calibration_the_calibrated_cameras_are_kept(checkpoints):
    calibration = MULTI / "calibration" / "Calib.qca.txt"
    result = reconstruct_from_videos(_clips(), calibration, FrameRange(0, 1), _networks(checkpoints))
    calibrated = read_calibration(calibration)
    np.testing.assert_allclose(result.cameras.K, calibrated.K)
    np.testing.assert_allclose(result.cameras.R, calibrated.R)
    assert len(result.points) > 1000 and np.isfinite(result.points).all()


@needs_clips
def test_bad_network_choices_are_refused_before_any_work(checkpoints, tmp_path):
    base = ReconstructionConfig()
    no_file = replace(base, cameras=CameraConfig(source="file"))
    with pytest.raises(InputError, match="--cameras file needs a calibration"):
        reconstruct_from_videos(_clips(), None, FrameRange(0, 1), no_file)
    missing = replace(base, networks=NetworksConfig(scene="pi3x"))
    with pytest.raises(InputError, match="--pi3x-ckpt"):
        reconstruct_from_videos(_clips(), None, FrameRange(0, 1), missing)
    wrong = _networks((checkpoints[1], checkpoints[1]))
    with pytest.raises(InputError, match="multiHMR_224_S.pt"):
        reconstruct_from_videos(_clips(), None, FrameRange(0, 1), wrong)
    with pytest.raises(InputError, match="head depth from Pi3X needs"):
        config = replace(base, networks=NetworksConfig(head_depth="pi3x"))
        reconstruct_from_videos(_clips(), MULTI / "calibration" / "Calib.qca.txt", FrameRange(0, 1), config)


def _camera(K, R=None):
    R = np.eye(3) if R is None else R
    return Camera(
        name="c", K=np.asarray(K, float), dist=np.zeros(5), R=R, t=np.zeros(3), width=640, height=480
    )


def _people(loc, depth, K, rotmat=None):
    loc = np.asarray(loc, float)
    transl = (np.linalg.inv(K) @ np.append(loc, 1.0)) * depth
    return {
        "view": np.array([0]),
        "scores": np.array([0.9]),
        "loc": loc[None],
        "transl": transl[None],
        "rotmat": np.broadcast_to(np.eye(3), (1, 53, 3, 3)) if rotmat is None else rotmat,
        "token": np.array([[3.0, 4.0]]),
    }


def test_observation_hangs_the_skeleton_from_the_head_and_projects_it():
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    cameras = CameraRig((_camera(K),))
    people = _people([300.0, 100.0], 4.0, K)
    obs = to_observations(people, np.array([0]), cameras)
    # The head joint projects exactly onto Multi-HMR's head pixel, the pelvis onto pelvis2d.
    np.testing.assert_allclose(obs.keypoints2d[0, HEAD], [300.0, 100.0], atol=1e-9)
    pelvis = project_points(
        obs.position_cam[None], K[None], np.zeros((1, 5)), np.eye(3)[None], np.zeros((1, 3))
    )
    np.testing.assert_allclose(obs.pelvis2d, pelvis[0], atol=1e-9)
    np.testing.assert_allclose(obs.head2d, [[300.0, 100.0]])
    np.testing.assert_allclose(obs.embedding, [[0.6, 0.8]])
    np.testing.assert_allclose(obs.global_orient_cam, 0.0, atol=1e-12)
    assert obs.position_cam[0, 2] != 4.0  # the pelvis hangs below the head, not at its depth


def test_pi3x_head_depth_replaces_the_network_depth_along_the_same_ray():
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    cameras = CameraRig((_camera(K),))
    people = _people([300.0, 100.0], 4.0, K)
    network = to_observations(people, np.array([0]), cameras)
    prior = to_observations(people | {"head_depth": np.array([2.5])}, np.array([0]), cameras)
    head_network = network.position_cam + (network.canonical_pose[0, HEAD] - network.canonical_pose[0, 0])
    head_prior = prior.position_cam + (prior.canonical_pose[0, HEAD] - prior.canonical_pose[0, 0])
    np.testing.assert_allclose(head_prior[0], head_network[0] * 2.5 / 4.0, atol=1e-9)
    np.testing.assert_allclose(prior.head2d, network.head2d)


def test_frame_depth_is_read_at_the_nearest_grid_pixel_of_the_view():
    depth = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    pixel_map = PixelMap((40, 30), (4, 3), (0.1, 0.1), (-0.45, -0.45))
    geometry = FrameGeometry(np.zeros((0, 3)), np.zeros((0, 3), np.uint8), depth, pixel_map)
    # Original pixel (25, 14) is grid pixel (2.05, 0.95) -> column 2, row 1; (0, 0) clamps to (0, 0).
    values = geometry.depth_at(np.array([1, 0, 1]), np.array([[25.0, 14.0], [25.0, 14.0], [0.0, 0.0]]))
    np.testing.assert_allclose(values, [depth[1, 1, 2], depth[0, 1, 2], depth[1, 0, 0]])


def test_upright_turns_the_cameras_mean_up_to_world_z():
    tilt = np.array([[1.0, 0, 0], [0, np.cos(0.3), -np.sin(0.3)], [0, np.sin(0.3), np.cos(0.3)]])
    rig = CameraRig((_camera(np.eye(3), R=tilt), _camera(np.eye(3), R=tilt)))
    turned = upright(rig).rig(rig)
    np.testing.assert_allclose(-turned.R[:, 1, :], [[0, 0, 1], [0, 0, 1]], atol=1e-12)


def test_checkpoints_are_found_in_the_cache_folder_when_not_given(checkpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("CHROMM_CACHE_DIR", str(tmp_path))
    with pytest.raises(InputError, match=f"into {tmp_path / 'checkpoints' / 'pi3x'}, or pass --pi3x-ckpt"):
        load_pi3x(NetworksConfig(scene="pi3x"), "cpu")
    with pytest.raises(InputError, match="checkpoints/multihmr, or pass --mhmr-ckpt"):
        load_multihmr(NetworksConfig(humans="multihmr"), "cpu")
    (tmp_path / "checkpoints" / "pi3x").mkdir(parents=True)
    (tmp_path / "checkpoints" / "multihmr").mkdir()
    (tmp_path / "checkpoints" / "pi3x" / "model.safetensors").symlink_to(checkpoints[0])
    (tmp_path / "checkpoints" / "multihmr" / "multiHMR_224_S.pt").symlink_to(checkpoints[1])
    assert isinstance(load_pi3x(NetworksConfig(scene="pi3x"), "cpu"), Pi3X)
    assert load_multihmr(NetworksConfig(humans="multihmr"), "cpu").image_size == 224


class _KnownScene(torch.nn.Module):
    """Stands in for Pi3X with exact answers: a fronto-parallel wall 2 units before each of two cameras,
    seen by call k in its own frame, the first call's frame turned by ``turns[k]`` and scaled by
    ``scales[k]``, as separate Pi3X calls would answer."""

    def __init__(self, turns, scales):
        super().__init__()
        self.turns, self.scales, self.calls = turns, scales, 0

    def forward(self, images):
        _, views, _, height, width = images.shape
        focal, cx, cy = 30.0, (width - 1) / 2, (height - 1) / 2
        v, u = np.mgrid[0:height, 0:width].astype(float)
        local = np.stack([(u - cx) / focal * 2, (v - cy) / focal * 2, np.full(u.shape, 2.0)], axis=-1)
        base_poses = np.stack([np.eye(4), np.eye(4)])
        base_poses[1, :3, 3] = [1.0, 0.0, 0.0]
        turn, scale = Rotation.from_rotvec(self.turns[self.calls]).as_matrix(), self.scales[self.calls]
        self.calls += 1
        poses = base_poses.copy()
        poses[:, :3, :3] = turn @ base_poses[:, :3, :3]
        poses[:, :3, 3] = scale * (turn @ base_poses[:, :3, 3].T).T
        local = np.broadcast_to(local * scale, (views, height, width, 3))
        points = np.einsum("vij,vhwj->vhwi", poses[:, :3, :3], local) + poses[:, None, None, :3, 3]
        as_tensor = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)[None]  # noqa: E731
        return {
            "points": as_tensor(points),
            "local_points": as_tensor(local),
            "conf": torch.full((1, views, height, width, 1), 3.0),
            "camera_poses": as_tensor(poses),
            "metric": torch.ones(1),
        }


def test_each_scene_frame_is_carried_into_the_first_frames_world_by_its_own_similarity():
    frames = [np.zeros((2, 56, 70, 3), np.uint8)] * 2
    model = _KnownScene([np.zeros(3), np.array([0.2, -0.5, 0.3])], [1.0, 2.5])
    config = NetworksConfig(min_point_confidence=0.5, max_points=10**7)
    scene = estimate_scene(model, frames, ["a", "b"], None, config)
    first, second = np.split(scene.points, 2)
    np.testing.assert_allclose(second, first, atol=1e-4)
    np.testing.assert_allclose(scene.frames[1].depth, scene.frames[0].depth, atol=1e-4)
    np.testing.assert_allclose(scene.frames[0].depth, 2.0, atol=1e-5)
    # The world is the first frame's, turned upright: its cameras look along the world's horizontal.
    np.testing.assert_allclose(-scene.cameras.R[:, 1, :], [[0, 0, 1], [0, 0, 1]], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(scene.cameras.centers[1] - scene.cameras.centers[0]), 1.0)
