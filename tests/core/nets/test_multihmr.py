"""Multi-HMR against the reference fixture (ViT-S/14 @ 224), plus exact-answer tests of its small parts."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from core.nets.multihmr.camera_rays import FourierRayEmbedding, patch_centre_rays
from core.nets.multihmr.geometry import depth_from_log_nearness, normalising_focal, rotmat_from_6d
from core.nets.multihmr.model import MultiHMR, suppress_non_maxima
from core.nets.reference.fill import fill_checksum, filled_state_dict
from core.nets.reference.multihmr import multihmr_fixture_outputs
from core.nets.reference.tolerances import NOT_COMPARED, excess
from tests.devices import CPU_AND_CUDA

FIXTURES = Path(__file__).parents[2] / "fixtures" / "nets"
ARRAYS = dict(np.load(FIXTURES / "mhmr_s224.npz"))
MANIFESTS = json.loads((FIXTURES / "mhmr_keys.json").read_text())
NOT_OUTPUTS = ("infer.det_thresh", "infer.min_abs_score_minus_thresh")
COMPUTED = sorted(
    name for name in ARRAYS if name.startswith(("int.", "out.", "infer.")) and name not in NOT_OUTPUTS
)
FILL_CHECKSUM = (31_424_536, 18317.040764188932, 519582.603339981)
"""FILL.md's whole-model figures for Multi-HMR ViT-S@224: values, sum, sum of absolute values."""


def _state_layout(model: torch.nn.Module) -> list[tuple[str, list[int]]]:
    return [(key, list(value.shape)) for key, value in model.state_dict().items()]


@pytest.fixture(scope="module")
def model() -> MultiHMR:
    keys = MANIFESTS["vits14_224"]
    kept = {
        name.removeprefix("buffer."): torch.from_numpy(v)
        for name, v in ARRAYS.items()
        if name.startswith("buffer.")
    }
    model = MultiHMR.from_key_shapes(keys)
    model.load_state_dict(filled_state_dict(keys, kept), strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def outputs(model: MultiHMR, synthetic_smplx) -> dict[str, np.ndarray]:
    return multihmr_fixture_outputs(model, ARRAYS, synthetic_smplx)


def test_constructor_and_key_shapes_give_the_checkpoint_layout(model: MultiHMR) -> None:
    expected = [(key, shape) for key, shape in MANIFESTS["vits14_224"].items()]
    assert _state_layout(MultiHMR(backbone="s", image_size=224)) == expected
    assert _state_layout(model) == expected


def test_released_large_896_layout_from_key_shapes_on_meta() -> None:
    keys = MANIFESTS["vitl14_896"]
    with torch.device("meta"):
        large = MultiHMR.from_key_shapes(keys)
    assert large.image_size == 896 and large.grid_size == 64
    assert _state_layout(large) == [(key, shape) for key, shape in keys.items()]
    assert next(large.parameters()).is_meta


def test_key_shapes_of_a_truncated_backbone_are_rejected() -> None:
    keys = {
        k: v for k, v in MANIFESTS["vits14_224"].items() if not k.startswith("backbone.encoder.blocks.11.")
    }
    with pytest.raises(ValueError, match="12 blocks, not 11"):
        MultiHMR.from_key_shapes(keys)


def test_fill_checksum_matches_fill_md(model: MultiHMR) -> None:
    count, total, total_abs = fill_checksum(model.state_dict())
    assert count == FILL_CHECKSUM[0]
    assert total == pytest.approx(FILL_CHECKSUM[1], rel=1e-9)
    assert total_abs == pytest.approx(FILL_CHECKSUM[2], rel=1e-9)


def test_every_fixture_array_is_produced_and_nothing_else(outputs: dict[str, np.ndarray]) -> None:
    assert sorted(outputs) == COMPUTED


@pytest.mark.parametrize("name", COMPUTED)
def test_fixture_array(outputs: dict[str, np.ndarray], name: str) -> None:
    ours, reference = outputs[name], ARRAYS[name]
    assert ours.shape == reference.shape and ours.dtype == reference.dtype
    if name in NOT_COMPARED:
        return
    largest, ok = excess(name, ours, reference)
    assert ok, f"{name}: max abs difference {largest:.3g}"


def test_rotation_from_6d_uses_the_two_vectors_as_columns() -> None:
    angle = math.radians(30.0)
    rotation = torch.tensor(
        [[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    ) @ torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    first, second = rotation[:, 0], rotation[:, 1]
    six_d = torch.cat([2.0 * first, second + 0.5 * first])
    assert torch.allclose(rotmat_from_6d(six_d), rotation, atol=1e-6)


def test_max_pool_nms_keeps_local_maxima_only() -> None:
    scores = torch.tensor(
        [[0.1, 0.9, 0.2, 0.1], [0.3, 0.4, 0.2, 0.8], [0.2, 0.1, 0.1, 0.3], [0.7, 0.2, 0.6, 0.1]]
    )[None]
    kept3 = torch.tensor(
        [[0.0, 0.9, 0.0, 0.0], [0.0, 0.0, 0.0, 0.8], [0.0, 0.0, 0.0, 0.0], [0.7, 0.0, 0.6, 0.0]]
    )[None]
    assert torch.equal(suppress_non_maxima(scores, 3), kept3)
    looking_up_left = torch.tensor(
        [[0.1, 0.9, 0.0, 0.0], [0.3, 0.0, 0.0, 0.8], [0.0, 0.0, 0.0, 0.0], [0.7, 0.0, 0.6, 0.0]]
    )[None]
    assert torch.equal(suppress_non_maxima(scores, 2), looking_up_left)
    assert torch.equal(suppress_non_maxima(scores, 1), scores)
    everything_below_the_peak = suppress_non_maxima(scores, 9)
    assert torch.equal(everything_below_the_peak.nonzero(), torch.tensor([[0, 0, 1]]))


def test_ray_embedding_puts_the_row_pixel_in_the_x_slot() -> None:
    K = torch.tensor([[[210.0, 0.0, 100.0], [0.0, 200.0, 130.0], [0.0, 0.0, 1.0]]])
    rays = patch_centre_rays(K, 16, 16, 14)
    ray = rays[0, 15 * 16 + 0]
    assert torch.allclose(ray, torch.tensor([117.0 / 210.0, -123.0 / 200.0, 1.0]))
    embedding = FourierRayEmbedding(num_bands=16, max_resolution=64)(rays)[0, 15 * 16 + 0]
    assert embedding.shape == (99,)
    assert torch.equal(embedding[:3], ray)
    x, y = ray[0].item(), ray[1].item()
    expected = {
        3: math.sin(math.pi * x),
        18: math.sin(math.pi * x * 32),
        19: math.sin(math.pi * y),
        51: math.cos(math.pi * x),
    }
    for channel, value in expected.items():
        assert embedding[channel].item() == pytest.approx(value, abs=1e-5)


def test_depth_uses_fx_over_the_image_size_normalising_focal() -> None:
    assert normalising_focal(448) == pytest.approx(2 * normalising_focal(224))
    assert normalising_focal(224) == pytest.approx(224 / (2 * math.tan(math.radians(30))))
    y = torch.tensor([[math.log(2.0)], [math.log(2.0)], [10.0]])
    fx = torch.tensor([[normalising_focal(224)], [2 * normalising_focal(224)], [normalising_focal(224)]])
    assert torch.allclose(depth_from_log_nearness(y, fx, 224), torch.tensor([[2.0], [4.0], [50.0]]))


def test_persons_are_decoded_jointly_per_image_and_independently_across_images(model: MultiHMR) -> None:
    x = torch.from_numpy(ARRAYS["input.x"])
    K = torch.from_numpy(ARRAYS["input.K"])
    images, cameras = torch.cat([x, x.flip(-1)]), torch.cat([K, K * torch.tensor([[1.1], [1.0], [1.0]])])

    def persons(image: list[int], row: list[int], col: list[int], batch: slice) -> dict[str, torch.Tensor]:
        idx = torch.tensor([image, row, col, [0] * len(image)])
        with torch.no_grad():
            return model.forward_persons(images[batch], cameras[batch], tuple(idx))

    mixed = persons([1, 0, 0, 1, 0], [3, 10, 2, 4, 7], [5, 7, 9, 1, 1], slice(None))
    first = persons([0, 0, 0], [10, 2, 7], [7, 9, 1], slice(0, 1))
    second = persons([0, 0], [3, 4], [5, 1], slice(1, 2))
    alone = persons([0], [10], [7], slice(0, 1))
    separate = torch.cat([first["transl"], second["transl"]])
    assert torch.allclose(mixed["transl"][[1, 2, 4, 0, 3]], separate, atol=1e-5)
    assert not torch.allclose(alone["transl"][0], first["transl"][0], atol=1e-4)


def test_no_detection_gives_empty_persons(model: MultiHMR) -> None:
    x, K = torch.from_numpy(ARRAYS["input.x"]), torch.from_numpy(ARRAYS["input.K"])
    with torch.no_grad():
        found = model.detect(x, K, det_thresh=1.0, nms_kernel_size=3)
    assert found["rotmat"].shape == (0, 53, 3, 3) and found["transl"].shape == (0, 3)
    assert found["score_map"].shape == (1, 16, 16)


@CPU_AND_CUDA
def test_bfloat16_autocast_keeps_the_geometry_in_float32(model: MultiHMR, device: str) -> None:
    x, K = torch.from_numpy(ARRAYS["input.x"]).to(device), torch.from_numpy(ARRAYS["input.K"]).to(device)
    idx = tuple(torch.from_numpy(ARRAYS["input.idx"]).to(device))
    model = model.to(device)
    try:
        with torch.no_grad():
            exact = model.forward_persons(x, K, idx)
            with torch.autocast(device, dtype=torch.bfloat16):
                mixed = model.forward_persons(x, K, idx)
    finally:
        model.to("cpu")
    for name in ("loc", "dist", "rotmat", "transl", "shape", "scores"):
        assert mixed[name].dtype == torch.float32, name
    rotations = mixed["rotmat"]
    identity = torch.eye(3, device=device).expand_as(rotations)
    assert torch.allclose(rotations @ rotations.transpose(-1, -2), identity, atol=1e-5)
    assert torch.allclose(mixed["loc"], exact["loc"], atol=0.5)
    assert torch.allclose(mixed["transl"], exact["transl"], atol=0.05)
