"""``python -m studio nets``: the fixture check's verdicts and exit codes, and the benchmarks' helpers."""

from pathlib import Path

import numpy as np
import pytest
import torch

from core.nets.checkpoints import load_safetensors_model
from studio.cli import main
from studio.nets_bench import write_synthetic_safetensors
from tests.core.nets.test_checkpoints import TwoLayers

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nets"


def _check(*args):
    main(["nets", "check", *map(str, args)])


def test_pi3x_fixture_passes_and_prints_every_array(capsys):
    _check(FIXTURES / "pi3x_tiny.npz", "--keys", FIXTURES / "pi3x_tiny_keys.json")
    printed = capsys.readouterr().out
    assert "Pi3X: 27 arrays compared" in printed and printed.rstrip().endswith("all within tolerance")
    assert "out.camera_poses" in printed and "int.decoder_concat" in printed


def test_multihmr_fixture_passes_with_its_smplx_file(capsys, synthetic_smplx):
    _check(
        FIXTURES / "mhmr_s224.npz",
        "--keys",
        FIXTURES / "mhmr_s224_keys.json",
        "--smplx",
        synthetic_smplx,
    )
    printed = capsys.readouterr().out
    assert "Multi-HMR" in printed and "infer.nms5.transl" in printed and "out.v2d" in printed
    assert printed.rstrip().endswith("all within tolerance")


def test_a_tampered_fixture_fails_with_status_1_naming_the_array(tmp_path, capsys, synthetic_smplx):
    with np.load(FIXTURES / "mhmr_s224.npz") as data:
        arrays = {name: data[name] for name in data.files}
    arrays["out.dist"] = arrays["out.dist"] + 1e-3
    np.savez(tmp_path / "tampered.npz", **arrays)
    with pytest.raises(SystemExit) as exit_info:
        _check(
            tmp_path / "tampered.npz",
            "--keys",
            FIXTURES / "mhmr_s224_keys.json",
            "--smplx",
            synthetic_smplx,
        )
    assert exit_info.value.code == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines if line.endswith("OVER")] == ["out.dist"]
    assert lines[-1] == "1 arrays over tolerance"


def test_missing_smplx_and_mismatched_keys_are_clear_errors(capsys):
    for args in (
        [FIXTURES / "mhmr_s224.npz", "--keys", FIXTURES / "mhmr_s224_keys.json"],
        [FIXTURES / "pi3x_tiny.npz", "--keys", FIXTURES / "mhmr_s224_keys.json"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            _check(*args)
        assert exit_info.value.code == 2
    errors = capsys.readouterr().err
    assert "pass --smplx" in errors and "pi3x_tiny.npz" in errors


def test_synthetic_checkpoint_writer_makes_a_loadable_safetensors_file(tmp_path):
    shapes = {"first.weight": (5, 3), "first.bias": (5,), "second.weight": (2, 5), "second.bias": (2,)}
    size = write_synthetic_safetensors(tmp_path / "m.safetensors", shapes)
    assert size == (tmp_path / "m.safetensors").stat().st_size
    model = load_safetensors_model(tmp_path / "m.safetensors", "Toy", "--toy", TwoLayers.from_key_shapes)
    assert model.first.weight.shape == (5, 3) and 0.005 < model.first.weight.std() < 0.05
    assert torch.isfinite(model.second.bias).all()


@pytest.mark.slow
def test_frame_bench_runs_on_the_cpu(capsys):
    main(
        ["nets", "bench", "--device", "cpu", "--depth", "tiny", "--views", "2", "--repeats", "1"]
        + ["--mhmr-size", "s", "--mhmr-resolution", "224", "--width", "320", "--height", "240"]
    )
    printed = capsys.readouterr().out
    assert "frame_s" in printed and "2 x 224x224 (s)" in printed
    tflop = {line.split()[0]: float(line.split()[1]) for line in printed.splitlines() if "_tflop" in line}
    assert tflop["pi3x_tflop"] > 0.1 and tflop["multihmr_tflop"] > 0.001
