"""Checkpoint loading: strict keys, clear errors, no arbitrary unpickling, weights placed exactly."""

import argparse
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from core.nets.checkpoints import (
    CheckpointError,
    describe_key_mismatch,
    load_pickled_model,
    load_safetensors_model,
)


class TwoLayers(nn.Module):
    """A stand-in network whose widths are read off its keys, like the real ones."""

    def __init__(self, width: int, out: int) -> None:
        super().__init__()
        self.first = nn.Linear(3, width)
        self.second = nn.Linear(width, out)

    @classmethod
    def from_key_shapes(cls, shapes):
        return cls(shapes["first.weight"][0], shapes["second.weight"][0])


def _weights(dtype=torch.float32):
    torch.manual_seed(0)
    return {key: value.to(dtype) for key, value in TwoLayers(5, 2).state_dict().items()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_safetensors_weights_land_exactly(tmp_path, dtype):
    weights = _weights(dtype)
    save_file(weights, tmp_path / "model.safetensors")
    model = load_safetensors_model(tmp_path / "model.safetensors", "Toy", "--toy", TwoLayers.from_key_shapes)
    for key, value in model.state_dict().items():
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, weights[key].float(), rtol=0, atol=0)
    assert not model.training


def test_safetensors_partial_file_lists_missing_and_unexpected_keys(tmp_path):
    weights = _weights()
    weights.pop("second.bias")
    weights["extra.weight"] = torch.zeros(2)
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError) as error:
        load_safetensors_model(tmp_path / "model.safetensors", "Toy", "--toy", TwoLayers.from_key_shapes)
    message = str(error.value)
    assert "model.safetensors" in message
    assert "1 missing: second.bias" in message and "1 unexpected: extra.weight" in message


def test_safetensors_truncated_and_foreign_files_are_refused(tmp_path):
    save_file(_weights(), tmp_path / "model.safetensors")
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-10])
    with pytest.raises(CheckpointError, match="truncated"):
        load_safetensors_model(tmp_path / "cut.safetensors", "Toy", "--toy", TwoLayers.from_key_shapes)
    save_file({"other.weight": torch.zeros(2, 2)}, tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="not a Toy checkpoint"):
        load_safetensors_model(tmp_path / "other.safetensors", "Toy", "--toy", TwoLayers.from_key_shapes)


def test_missing_checkpoint_says_where_to_put_it(tmp_path):
    with pytest.raises(CheckpointError, match="--toy"):
        load_safetensors_model(tmp_path / "absent.safetensors", "Toy", "--toy", TwoLayers.from_key_shapes)


def test_pickled_checkpoint_with_namespace_loads_and_skips_ignored_prefix(tmp_path):
    weights = _weights()
    state = {**weights, "smpl_layer.neutral_10.v_template": torch.zeros(4, 3)}
    torch.save({"model_state_dict": state, "args": argparse.Namespace(img_size=[896])}, tmp_path / "m.pt")
    model = load_pickled_model(
        tmp_path / "m.pt", "Toy", "--toy", TwoLayers.from_key_shapes, ignored_prefix="smpl_layer."
    )
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, weights[key], rtol=0, atol=0)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickled_checkpoint_cannot_run_code(tmp_path):
    with open(tmp_path / "evil.pt", "wb") as stream:
        pickle.dump({"model_state_dict": {}, "args": _Exploit()}, stream)
    torch.save({"model_state_dict": _weights(), "args": _Exploit()}, tmp_path / "evil_zip.pt")
    for name in ("evil.pt", "evil_zip.pt"):
        with pytest.raises(CheckpointError, match="refused to unpickle|not a readable"):
            load_pickled_model(tmp_path / name, "Toy", "--toy", TwoLayers.from_key_shapes)


def test_key_mismatch_description_is_none_when_equal():
    shapes = {"a": (1, 2), "b": (3,)}
    assert describe_key_mismatch("f", shapes, dict(shapes)) is None
    assert "wrong shape: b [4]" in describe_key_mismatch("f", shapes, {"a": (1, 2), "b": (4,)})
