"""Fixtures of the engine's network tests."""

import argparse

import pytest
import torch
from safetensors.torch import save_file

from core.nets.chromm.model import ChrommSizes
from core.nets.multihmr.model import MultiHMR
from core.nets.pi3x.model import Pi3X
from studio.nets_bench import randomly_initialised


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """A miniature Pi3X (.safetensors) and Multi-HMR-S/224 (pickled with its argparse Namespace)."""
    folder = tmp_path_factory.mktemp("checkpoints")
    sizes = ChrommSizes.tiny()  # the miniature sizes CHROMM's own tests use
    # released files have DINOv2's every block and Pi3X's full-width heads
    released = {key: value for key, value in sizes.multihmr.items() if key != "backbone_depth"}
    with torch.device("meta"):
        scene_net = Pi3X(**{key: value for key, value in sizes.pi3x.items() if key != "head_width"})
        humans_net = MultiHMR(**released)
    scene_state = randomly_initialised(scene_net, "cpu").state_dict()
    save_file({k: v.contiguous() for k, v in scene_state.items()}, folder / "model.safetensors")
    humans_state = randomly_initialised(humans_net, "cpu", seed=1).state_dict()
    humans_state["smpl_layer.neutral_10.v_template"] = torch.zeros(5, 3)  # real files carry these
    namespace = argparse.Namespace(img_size=[224], backbone="dinov2_vits14")
    torch.save({"model_state_dict": humans_state, "args": namespace}, folder / "multiHMR_224_S.pt")
    return folder / "model.safetensors", folder / "multiHMR_224_S.pt"
