"""CHROMM's network at a tiny size: what it returns, where the head lands, where gradients go."""

import json

import pytest
import torch
from safetensors.torch import save_file

from core.nets.checkpoints import CheckpointError
from core.nets.chromm.checkpoint import chromm_from_priors, load_chromm, save_chromm
from core.nets.chromm.grid import apply_map, depth_at, square_to_grid
from core.nets.chromm.model import Chromm, ChrommSizes
from core.nets.image_map import PixelMap
from core.nets.multihmr.model import MultiHMR
from core.nets.multihmr.preprocess import square_pixel_map
from core.nets.pi3x.model import Pi3X

WIDTH, HEIGHT = 320, 240
GRID = (112, 84)  # a small Pi3X grid: its full-resolution heads are the slow part at any width


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Chromm(ChrommSizes.tiny()).eval()


def grid_map() -> PixelMap:
    sx, sy = GRID[0] / WIDTH, GRID[1] / HEIGHT
    return PixelMap((WIDTH, HEIGHT), GRID, (sx, sy), (0.5 * sx - 0.5, 0.5 * sy - 0.5))


def inputs(views: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    scene_images = torch.rand(1, views, 3, GRID[1], GRID[0], generator=generator)
    squares = torch.randn(views, 3, 224, 224, generator=generator)
    K = torch.tensor([[200.0, 0, 112], [0, 200.0, 112], [0, 0, 1]]).expand(views, 3, 3)
    return scene_images, squares, K, square_to_grid(square_pixel_map(WIDTH, HEIGHT, 224), grid_map())


def some_cells(views: int, persons: int):
    generator = torch.Generator().manual_seed(persons)
    view = torch.sort(torch.randint(0, views, (persons,), generator=generator)).values
    return (
        view,
        torch.randint(2, 14, (persons,), generator=generator),
        torch.randint(2, 14, (persons,), generator=generator),
    )


@pytest.mark.parametrize(("views", "persons"), [(1, 0), (1, 1), (2, 3), (4, 5)])
def test_every_person_gets_every_output_in_its_view(model, views, persons):
    with torch.no_grad():
        scene, found = model(*inputs(views), cells=some_cells(views, persons))
    assert scene["points"].shape == (1, views, GRID[1], GRID[0], 3)
    assert len(found) == persons
    shapes = {
        "score": (persons,),
        "head2d": (persons, 2),
        "head3d": (persons, 3),
        "coarse_depth": (persons,),
        "pelvis2d_coarse": (persons, 2),
        "pelvis2d": (persons, 2),
        "pelvis_refined": (persons,),
        "pelvis_logit": (persons,),
        "rotmat": (persons, 53, 3, 3),
        "shape": (persons, 10),
        "expression": (persons, 10),
    }
    for name, shape in shapes.items():
        value = getattr(found, name)
        assert value.shape == shape, name
        assert torch.isfinite(value.float()).all(), name
    assert found.token.shape[0] == persons
    if persons:
        rotations = found.rotmat
        torch.testing.assert_close(
            rotations @ rotations.transpose(-1, -2), torch.eye(3).expand_as(rotations), atol=1e-5, rtol=0
        )


def test_with_no_depth_residual_the_head_lands_at_pi3x_depth_under_its_pixel(model):
    views, cells = 2, some_cells(2, 4)
    scene_images, squares, K, to_grid = inputs(views)
    with torch.no_grad():
        torch.nn.init.zeros_(model.translation_head.weight)
        torch.nn.init.zeros_(model.translation_head.bias)
        scene, found = model(scene_images, squares, K, to_grid, cells=cells)
        torch.nn.init.normal_(model.translation_head.weight, std=0.02)
    depth = depth_at(scene["local_points"][0, ..., 2], found.view, apply_map(to_grid, found.head2d))
    torch.testing.assert_close(found.coarse_depth, depth)
    torch.testing.assert_close(found.head3d[:, 2], depth)
    projected = (K[found.view] @ found.head3d[..., None])[..., 0]
    torch.testing.assert_close(projected[:, :2] / projected[:, 2:], found.head2d, atol=1e-3, rtol=0)


def test_detection_keeps_the_cells_that_reach_the_threshold(model):
    with torch.no_grad():
        scene_images, squares, K, to_grid = inputs(2)
        scores = model.human.score_map(model.human.backbone(squares))
        threshold = float(scores.flatten().sort().values[-3])  # the three best cells (no suppression)
        _, found = model(scene_images, squares, K, to_grid, threshold=threshold, nms_kernel=1)
    assert len(found) == 3 and (found.score >= threshold).all()


def test_gradients_reach_every_trained_module_and_none_the_frozen_encoders():
    torch.manual_seed(1)
    model = Chromm(ChrommSizes.tiny())
    for encoder in model.encoders():
        encoder.requires_grad_(False)
    _, found = model(*inputs(2), cells=some_cells(2, 3))
    loss = sum(
        getattr(found, name).float().square().mean()
        for name in ("head3d", "pelvis2d", "rotmat", "shape", "expression")
    )
    (loss + found.pelvis_logit.sum() + found.pelvis2d_coarse.sum()).backward()
    trained = model.trained_parameters()
    assert {name.split(".")[0] for name in trained} == {
        "human",
        "fuse",
        "translation_head",
        "coarse_pelvis",
        "fine_pelvis",
    }
    for name, parameter in trained.items():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert all(p.grad is None for encoder in model.encoders() for p in encoder.parameters())
    frozen = {id(p) for encoder in model.encoders() for p in encoder.parameters()}
    assert not frozen & {id(p) for p in trained.values()}


def test_a_saved_checkpoint_loads_back_strictly_and_gives_the_same_outputs(model, tmp_path):
    path = save_chromm(model, tmp_path / "chromm.safetensors")
    assert not list(tmp_path.glob("*.partial"))
    loaded = load_chromm(path)
    assert loaded.sizes == model.sizes
    cells = some_cells(2, 3)
    with torch.no_grad():
        _, before = model(*inputs(2), cells=cells)
        _, after = loaded(*inputs(2), cells=cells)
    for name in ("head3d", "pelvis2d", "rotmat", "shape", "token"):
        torch.testing.assert_close(getattr(after, name), getattr(before, name), rtol=0, atol=0)


def test_a_partial_or_foreign_checkpoint_is_refused_naming_what_is_wrong(model, tmp_path):
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    sizes = json.dumps(model.sizes.to_json())
    partial = {key: value for key, value in state.items() if not key.startswith("fuse.")}
    partial["extra.weight"] = torch.zeros(2)
    save_file(partial, tmp_path / "partial.safetensors", metadata={"chromm_sizes": sizes})
    with pytest.raises(CheckpointError, match=r"(?s)missing: fuse\.0\.weight.*unexpected: extra\.weight"):
        load_chromm(tmp_path / "partial.safetensors")
    save_file({"a": torch.zeros(1)}, tmp_path / "pi3x.safetensors")
    with pytest.raises(CheckpointError, match="not a CHROMM checkpoint"):
        load_chromm(tmp_path / "pi3x.safetensors")
    with pytest.raises(CheckpointError, match="not found"):
        load_chromm(tmp_path / "absent.safetensors")


def test_built_from_the_priors_it_keeps_their_weights_and_reads_their_sizes():
    torch.manual_seed(2)
    sizes = ChrommSizes.tiny()
    released = {key: value for key, value in sizes.multihmr.items() if key != "backbone_depth"}
    scene, human = Pi3X(**sizes.pi3x), MultiHMR(**released)  # priors as released: every DINOv2 block
    built = chromm_from_priors(scene, human, ChrommSizes(fuse_hidden=48, pelvis_hidden=16))
    assert built.scene is scene and built.human is human
    assert built.sizes.pi3x == {**sizes.pi3x, "depth_encoder_depth": 0, "pose_inject_depth": 0}
    assert built.sizes.multihmr["backbone"] == "s" and built.sizes.multihmr["image_size"] == 224
    assert built.fuse[0].out_features == 48
    rebuilt = Chromm(built.sizes)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in built.state_dict().items()
    }
