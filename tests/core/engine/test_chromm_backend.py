"""The CHROMM human backend in the video pipeline: a tiny network with random weights, saved as a CHROMM
checkpoint, on the Pose2Sim demo's clips. What is checked is the plumbing (loading, the per-frame pass,
observations with the network's pelvis, the saved result), not accuracy: the weights are random."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from core.config import ReconstructionConfig
from core.engine.video_pipeline import reconstruct_from_videos
from core.errors import InputError
from core.io.calibration import read_calibration
from core.io.video import FrameRange, iter_synchronized, probe_clips
from core.nets.chromm.checkpoint import load_chromm, save_chromm
from core.nets.chromm.model import Chromm, ChrommSizes
from core.nets.config import NetworksConfig
from core.nets.image_map import PixelMap
from core.nets.pi3x.model import Pi3X
from core.perception.chromm_observer import ChrommObserver, SharedScenePasses, load_chromm_network
from core.perception.multihmr_observer import load_multihmr
from core.reconstruction import Reconstruction
from core.scene.pi3x_scene import load_pi3x
from studio.assets import examples_directory
from studio.nets_commands import BuildChromm

MULTI = examples_directory() / "Demo_MultiPerson"
needs_clips = pytest.mark.skipif(not (MULTI / "videos").is_dir(), reason="python -m studio assets")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = Chromm(ChrommSizes.tiny())
    with torch.no_grad():  # every cell a head, so that random weights still give persons
        model.human.mlp_classif[-1].bias.fill_(8.0)
    return save_chromm(model, tmp_path_factory.mktemp("chromm") / "chromm.safetensors")


def _config(checkpoint, **changes) -> ReconstructionConfig:
    base = ReconstructionConfig()
    networks = NetworksConfig(
        humans="chromm", chromm_ckpt=checkpoint, detection_threshold=0.5, nms_kernel=5, **changes
    )
    return replace(base, networks=networks, body=replace(base.body, model="none"))


@needs_clips
def test_the_pipeline_runs_on_the_demo_clips_and_writes_a_valid_result(checkpoint, tmp_path):
    clips = sorted((MULTI / "videos").glob("*.mp4"))
    calibration = MULTI / "calibration" / "Calib.qca.txt"
    result = reconstruct_from_videos(clips, calibration, FrameRange(0, 1), _config(checkpoint))
    assert len(result.observations) > 0
    assert np.isfinite(result.observations.pelvis2d).all()
    result.save(tmp_path / "run")
    loaded = Reconstruction.load(tmp_path / "run")
    assert len(loaded.observations) == len(result.observations)
    assert loaded.config.networks.humans == "chromm"


@needs_clips
def test_with_pi3x_for_the_scene_each_frame_takes_one_pi3x_pass(checkpoint, monkeypatch):
    passes = []
    reconstruct = Pi3X.reconstruct
    monkeypatch.setattr(Pi3X, "reconstruct", lambda *a, **k: passes.append(1) or reconstruct(*a, **k))
    clips = sorted((MULTI / "videos").glob("*.mp4"))
    calibration = MULTI / "calibration" / "Calib.qca.txt"
    config = _config(checkpoint, scene="pi3x", scene_frames=2)
    result = reconstruct_from_videos(clips, calibration, FrameRange(0, 3), config)
    assert len(passes) == 3  # the two scene frames' passes were the fusion's too
    assert len(result.points) > 0
    assert len(result.observations) > 0


def test_a_kept_scene_pass_gives_the_persons_a_fresh_pass_gives(monkeypatch):
    torch.manual_seed(0)
    model = Chromm(ChrommSizes.tiny()).eval()
    images, squares = torch.rand(1, 2, 3, 56, 84), torch.rand(2, 3, 224, 224)
    K = torch.tensor([[200.0, 0, 112], [0, 200, 112], [0, 0, 1]]).expand(2, 3, 3)
    cells = (torch.tensor([0, 1]), torch.tensor([3, 7]), torch.tensor([5, 9]))
    to_grid = PixelMap((224, 224), (84, 56), (84 / 224, 56 / 224), (0.0, 0.0))
    passes = SharedScenePasses(model)
    with torch.no_grad():
        tokens = model.human.backbone(squares)
        outputs = passes(images)
        kept = model.find_persons(passes.take(images), tokens, K, to_grid, cells=cells)
        fresh_outputs, fresh = model(images, squares, K, to_grid, cells=cells)
        seen = []
        monkeypatch.setattr(model, "see", lambda images: seen.append(1) or Chromm.see(model, images))
        passes.take(images)  # taken once, then dropped: a new pass
        other = model.find_persons(passes.take(images * 0.5), tokens, K, to_grid, cells=cells)
    assert len(seen) == 2
    torch.testing.assert_close(outputs["local_points"], fresh_outputs["local_points"], rtol=0, atol=0)
    for name in ("head3d", "coarse_depth", "rotmat", "token"):
        torch.testing.assert_close(getattr(kept, name), getattr(fresh, name), rtol=0, atol=0)
    assert not torch.equal(other.coarse_depth, fresh.coarse_depth)  # other images: their own pass


@needs_clips
def test_the_observer_gives_each_head_the_networks_pelvis_in_the_original_frame(checkpoint):
    clips = probe_clips(sorted((MULTI / "videos").glob("*.mp4")))
    cameras = read_calibration(MULTI / "calibration" / "Calib.qca.txt")
    images = next(iter_synchronized(clips, FrameRange(0, 1)))[1]
    observer = ChrommObserver(
        load_chromm_network(_config(checkpoint).networks, "cpu"), _config(checkpoint).networks
    )
    people = observer.detect(images, cameras)
    observations = observer.to_observations(people, np.zeros(len(people["view"]), dtype=np.int64), cameras)
    assert len(observations) > 0
    np.testing.assert_array_equal(observations.pelvis2d, people["pelvis"])
    np.testing.assert_array_equal(observations.head2d, people["loc"])
    assert people["rotmat"].shape == (len(observations), 53, 3, 3)
    height, width = images[0].shape[:2]  # every cell scores: those of the square's padding are dropped
    assert ((people["loc"] >= -0.5) & (people["loc"] <= [width - 0.5, height - 0.5])).all()


def test_without_a_checkpoint_the_backend_says_where_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("CHROMM_CACHE_DIR", str(tmp_path))
    with pytest.raises(InputError, match="--chromm-ckpt"):
        load_chromm_network(NetworksConfig(humans="chromm"), "cpu")


def test_built_from_the_official_checkpoints_it_keeps_their_weights(checkpoints, tmp_path, capsys):
    pi3x, mhmr = checkpoints
    BuildChromm(out=tmp_path / "start.safetensors", pi3x_ckpt=pi3x, mhmr_ckpt=mhmr).run()
    assert capsys.readouterr().out.strip() == str(tmp_path / "start.safetensors")
    built = load_chromm(tmp_path / "start.safetensors")
    networks = NetworksConfig(pi3x_ckpt=pi3x, mhmr_ckpt=mhmr)
    for prior, loaded in (
        (built.scene, load_pi3x(networks, "cpu")),
        (built.human, load_multihmr(networks, "cpu")),
    ):
        for key, value in loaded.state_dict().items():
            torch.testing.assert_close(prior.state_dict()[key], value, rtol=0, atol=0)
