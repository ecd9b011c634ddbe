"""Pi3X: checkpoint layout, the reference fixture array by array, geometry helpers on known answers."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from core.nets.checkpoints import CheckpointError, build_from_keys
from core.nets.pi3x.heads import closest_rotation, view_plane_uv
from core.nets.pi3x.model import Pi3X
from core.nets.pi3x.rope2d import RoPE2D, token_positions
from core.nets.reference.fill import fill_checksum, filled_state_dict
from core.nets.reference.pi3x import pi3x_fixture_outputs
from core.nets.reference.tolerances import excess
from tests.devices import CPU_AND_CUDA

FIXTURES = Path(__file__).parents[2] / "fixtures" / "nets"
TINY_KEYS = json.loads((FIXTURES / "pi3x_tiny_keys.json").read_text())["keys"]
FULL_KEYS = json.loads((FIXTURES / "pi3x_full_keys.json").read_text())
with np.load(FIXTURES / "pi3x_tiny.npz") as _npz:
    FIXTURE_ARRAYS = {name: _npz[name] for name in _npz.files}
COMPARED = sorted(name for name in FIXTURE_ARRAYS if name.startswith(("int.", "out.")))
TINY_CHECKSUM = (148_382_129, 30997.52267105507, 2398024.235836607)
"""FILL.md's whole-model checksum of the truncated Pi3X."""


def layout(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(key, tuple(value.shape)) for key, value in model.state_dict().items()]


def manifest(shapes: dict) -> list[tuple[str, tuple[int, ...]]]:
    return [(key, tuple(shape)) for key, shape in shapes.items()]


@pytest.fixture(scope="module")
def tiny_state() -> dict[str, torch.Tensor]:
    kept = {name: torch.from_numpy(FIXTURE_ARRAYS[f"buffer.{name}"]) for name in ("image_mean", "image_std")}
    return filled_state_dict(TINY_KEYS, kept=kept)


@pytest.fixture(scope="module")
def tiny_outputs(tiny_state) -> dict[str, np.ndarray]:
    with torch.device("meta"):
        model = Pi3X.from_key_shapes(TINY_KEYS)
    model.load_state_dict(tiny_state, strict=True, assign=True)
    return pi3x_fixture_outputs(model.eval(), FIXTURE_ARRAYS)


def test_tiny_layout_is_rebuilt_from_its_key_shapes():
    with torch.device("meta"):
        model = Pi3X.from_key_shapes(TINY_KEYS)
    assert layout(model) == manifest(TINY_KEYS)
    assert len(model.encoder.blocks) == 2 and len(model.decoder) == 4 and not model.use_multimodal


@pytest.mark.parametrize("variant", ["with_multimodal", "without_multimodal"])
def test_full_layout_matches_the_checkpoint(variant):
    with torch.device("meta"):
        default = Pi3X(use_multimodal=variant == "with_multimodal")
        inferred = Pi3X.from_key_shapes(FULL_KEYS[variant])
    assert layout(default) == manifest(FULL_KEYS[variant])
    assert layout(inferred) == manifest(FULL_KEYS[variant])


def test_foreign_and_partial_layouts_are_rejected_naming_the_keys():
    shapes = {key: tuple(shape) for key, shape in TINY_KEYS.items()}
    extra = shapes | {"point_head.extra.weight": (3,)}
    with pytest.raises(CheckpointError, match="1 unexpected: point_head.extra.weight"):
        build_from_keys("extra.safetensors", "Pi3X", Pi3X.from_key_shapes, extra)
    partial = {key: shape for key, shape in shapes.items() if key != "decoder.1.attn.qkv.bias"}
    with pytest.raises(CheckpointError, match="1 missing: decoder.1.attn.qkv.bias"):
        build_from_keys("partial.safetensors", "Pi3X", Pi3X.from_key_shapes, partial)


def test_fill_checksum_matches_fill_md(tiny_state):
    count, total, total_abs = fill_checksum(tiny_state)
    assert count == TINY_CHECKSUM[0]
    assert total == pytest.approx(TINY_CHECKSUM[1], rel=1e-9)
    assert total_abs == pytest.approx(TINY_CHECKSUM[2], rel=1e-9)


def test_fixture_outputs_cover_every_reference_array(tiny_outputs):
    assert sorted(tiny_outputs) == COMPARED


@pytest.mark.parametrize("name", COMPARED)
def test_matches_reference_array(tiny_outputs, name):
    largest, ok = excess(name, tiny_outputs[name], FIXTURE_ARRAYS[name])
    assert ok, f"{name}: max |ours - reference| = {largest:.3g}"


def test_rope_scores_depend_only_on_relative_position():
    rope = RoPE2D()
    generator = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 1, 3, 1, 64, generator=generator).unbind(0)

    def score(query_at: tuple[int, int], key_at: tuple[int, int]) -> torch.Tensor:
        rotated_q = rope(q, torch.tensor([[query_at]]))
        rotated_k = rope(k, torch.tensor([[key_at]]))
        return (rotated_q * rotated_k).sum(-1)

    assert torch.allclose(score((2, 5), (7, 1)), score((0, 9), (5, 5)), atol=1e-5)
    assert not torch.allclose(score((2, 5), (7, 1)), score((2, 5), (1, 7)), atol=1e-3)
    assert torch.equal(rope(q, torch.zeros(1, 1, 2, dtype=torch.long)), q)


def test_rope_turns_row_and_column_halves_by_their_own_position():
    rope = RoPE2D(base=100.0)
    tokens = torch.zeros(1, 1, 1, 8)
    tokens[..., 0] = 1.0  # first pair of the row half, fastest frequency (1 rad per row)
    tokens[..., 4] = 1.0  # first pair of the column half
    rotated = rope(tokens, torch.tensor([[[2, 3]]]))[0, 0, 0]
    expected = torch.tensor([math.cos(2), 0, math.sin(2), 0, math.cos(3), 0, math.sin(3), 0])
    assert torch.allclose(rotated, expected, atol=1e-6)


def test_token_positions_put_special_tokens_at_origin_and_patches_one_off():
    positions = token_positions(rows=2, cols=3, num_special=2)
    assert positions.tolist() == [[0, 0], [0, 0], [1, 1], [1, 2], [1, 3], [2, 1], [2, 2], [2, 3]]


def test_closest_rotation_recovers_a_row_scaled_rotation_and_fixes_reflections():
    angle = 0.7
    rotation = torch.tensor(
        [[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    row_scaled = rotation * torch.tensor([[3.0], [0.5], [2.0]])
    reflection = torch.diag(torch.tensor([1.0, 1.0, -1.0]))
    recovered = closest_rotation(torch.stack([row_scaled, reflection]))
    assert torch.allclose(recovered[0], rotation, atol=1e-6)
    assert torch.allclose(torch.linalg.det(recovered), torch.ones(2), atol=1e-6)
    assert torch.allclose(recovered[1] @ recovered[1].T, torch.eye(3), atol=1e-6)


def test_view_plane_uv_spans_the_unit_half_diagonal_at_pixel_centres():
    uv = view_plane_uv(height=3, width=4, aspect=4 / 3, dtype=torch.float64, device=torch.device("cpu"))
    assert uv.shape == (2, 3, 4)
    # corners sit half a pixel inside (±0.8, ±0.6), the corners of a 4:3 plane of half-diagonal 1
    assert torch.allclose(uv[:, 0, 0], torch.tensor([-0.8 * 3 / 4, -0.6 * 2 / 3], dtype=torch.float64))
    assert torch.allclose(uv[:, -1, -1], torch.tensor([0.8 * 3 / 4, 0.6 * 2 / 3], dtype=torch.float64))
    assert torch.equal(uv[0, 0], uv[0, 2]) and torch.equal(uv[1, :, 0], uv[1, :, 3])


@CPU_AND_CUDA
def test_bfloat16_autocast_keeps_the_outputs_float32_and_close(tiny_state, device):
    with torch.device("meta"):
        model = Pi3X.from_key_shapes(TINY_KEYS)
    model.load_state_dict(tiny_state, strict=True, assign=True)
    model = model.eval().to(device)
    images = torch.from_numpy(FIXTURE_ARRAYS["input.imgs"]).to(device)
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16):
        mixed = model(images)
    for name in ("points", "local_points", "conf", "camera_poses", "metric"):
        assert mixed[name].dtype == torch.float32, name
    rotations = mixed["camera_poses"][..., :3, :3]
    identity = torch.eye(3, device=device).expand_as(rotations)
    assert torch.allclose(rotations @ rotations.transpose(-1, -2), identity, atol=1e-5)
    exact = torch.from_numpy(FIXTURE_ARRAYS["out.points"])
    assert torch.allclose(mixed["points"].cpu(), exact, atol=1e-2)
