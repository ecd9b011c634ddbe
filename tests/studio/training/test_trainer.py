"""The trainer on rendered scenes with the tiny network: it learns (a batch overfits), resumes exactly,
refuses a resume with other settings, logs, and two processes on gloo equal one with twice the batch."""

import csv
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from core.body.anny_backend import AnnyBody
from core.errors import InputError
from core.nets.chromm.model import Chromm, ChrommSizes
from studio.cli import main
from studio.training.batch import training_example
from studio.training.config import TrainConfig
from studio.training.encoded import EncodedCache, encode
from studio.training.losses import LossWeights
from studio.training.make_data import SyntheticScenes
from studio.training.stages import StageStep, checkpoint_blocks, freeze
from studio.training.trainer import train

ROOT = Path(__file__).parents[3]


def _config(scenes, out, **changes) -> TrainConfig:
    base = TrainConfig(
        data=f"synthetic:{scenes}",
        out=out,
        preset="tiny",
        batch_size=2,
        epochs=3,
        warmup_steps=1,
        lr=1e-3,
        checkpoint_every=2,
        log_every=1,
        validate_every=2,
        val_data=f"synthetic:{scenes}",
        val_samples=1,
    )
    return replace(base, **changes)


def test_a_batch_overfits(scenes, tmp_path):
    torch.manual_seed(0)
    model = Chromm(ChrommSizes.tiny())
    example = training_example(SyntheticScenes(scenes)[0], model.sizes)
    trained = freeze(model, 1)
    step = StageStep(model, AnnyBody(), 1, LossWeights(), EncodedCache(model, tmp_path))
    optimizer = torch.optim.AdamW(trained.values(), lr=2e-3)
    history = []
    for _ in range(40):
        optimizer.zero_grad()
        terms = step(example, scale_adjustment=False)
        terms["total"].backward()
        optimizer.step()
        history.append({name: float(value.detach()) for name, value in terms.items()})
    first, last = history[0], history[-1]
    assert last["total"] < 0.25 * first["total"]
    for name in ("vertices", "joints", "reprojection", "detection"):
        assert last[name] < 0.5 * first[name], name


def test_stage_two_changes_only_the_pelvis_heads(scenes):
    torch.manual_seed(0)
    model = Chromm(ChrommSizes.tiny())
    example = training_example(SyntheticScenes(scenes)[1], model.sizes)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trained = freeze(model, 2)
    optimizer = torch.optim.AdamW(trained.values(), lr=1e-2)
    terms = StageStep(model, AnnyBody(), 2, LossWeights())(example, scale_adjustment=True)
    assert "chamfer" in terms and float(terms["chamfer"]) > 0
    terms["total"].backward()
    optimizer.step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(name.startswith(("coarse_pelvis.", "fine_pelvis.")) for name in changed)


def test_gradient_checkpointing_gives_the_same_gradients(scenes):
    example = training_example(SyntheticScenes(scenes)[0], ChrommSizes.tiny())
    gradients = []
    for checkpointed in (False, True):
        torch.manual_seed(0)
        model = Chromm(ChrommSizes.tiny())
        trained = freeze(model, 0)
        if checkpointed:
            assert checkpoint_blocks(model) > 0
        StageStep(model, AnnyBody(), 0, LossWeights())(example, scale_adjustment=False)["total"].backward()
        gradients.append({n: p.grad for n, p in trained.items() if p.grad is not None})
    assert gradients[0].keys() == gradients[1].keys() and len(gradients[0]) > 100
    for name, gradient in gradients[0].items():
        torch.testing.assert_close(gradients[1][name], gradient, rtol=1e-4, atol=1e-6)


def test_the_encoder_cache_gives_back_what_the_encoders_give(scenes, tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = Chromm(ChrommSizes.tiny()).eval()
    example = training_example(SyntheticScenes(scenes)[2], model.sizes)
    cache = EncodedCache(model, tmp_path)
    with torch.no_grad():
        fresh = encode(model, example.inputs, "cpu")
        cached = cache(example.key, example.inputs, "cpu")
        monkeypatch.setattr(model, "see", lambda *a: pytest.fail("the encoders ran again"))
        again = cache(example.key, example.inputs, "cpu")
    torch.testing.assert_close(cached.tokens, fresh.tokens, rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(cached.seen.features, fresh.seen.features, rtol=2e-3, atol=2e-3)
    assert torch.equal(again.tokens, cached.tokens)
    with torch.no_grad():
        model.fuse[0].weight.mul_(2)  # not an encoder: the same cache folder
        assert EncodedCache(model, tmp_path).folder == cache.folder
        model.human.backbone.encoder.blocks[0].norm1.weight.add_(1)  # an encoder: another folder
        assert EncodedCache(model, tmp_path).folder != cache.folder


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(scenes, tmp_path, capsys):
    cache = tmp_path / "features"
    straight = train(_config(scenes, tmp_path / "straight", max_steps=5, feature_cache=cache))
    first = _config(scenes, tmp_path / "resumed", max_steps=3, feature_cache=cache)
    train(first)
    main(["train", "--data", first.data, "--out", str(first.out), "--preset", "tiny", "--batch-size",
          "2", "--epochs", "3", "--warmup-steps", "1", "--lr", "0.001", "--checkpoint-every", "2",
          "--log-every", "1", "--validate-every", "2", "--val-data", first.val_data, "--val-samples", "1",
          "--max-steps", "5", "--feature-cache", str(cache)])  # fmt: skip
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert last_line == str(first.out / "chromm.safetensors")
    a, b = load_file(straight), load_file(last_line)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key

    rows = list(csv.DictReader(open(first.out / "metrics.csv")))
    steps = sorted({int(r["step"]) for r in rows if r["split"] == "train" and r["name"] == "total"})
    assert steps == [1, 2, 3, 4, 5]
    assert {r["name"] for r in rows if r["split"] == "val"} >= {"total", "vertices", "detection"}
    assert (first.out / "curves.png").stat().st_size > 0
    assert any((first.out / "tensorboard").glob("events.out.tfevents.*"))
    assert len(list((first.out / "checkpoints").glob("state_*.pt"))) == 2  # the two newest kept


def test_a_resume_with_other_settings_is_refused_and_names_them(scenes, tmp_path):
    config = _config(scenes, tmp_path / "run", max_steps=1, val_data=None)
    train(config)
    with pytest.raises(InputError, match=r"other settings \(lr: 0\.001 there, 0\.01 now\)"):
        train(replace(config, lr=1e-2))


def test_two_processes_on_gloo_equal_one_process_with_twice_the_batch(scenes, tmp_path):
    common = ["--data", f"synthetic:{scenes}", "--preset", "tiny", "--epochs", "1", "--warmup-steps", "1",
              "--lr", "0.001", "--device", "cpu"]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29533",
    ]
    for command, out in (
        ([*torchrun, "-m", "studio", "train", "--batch-size", "1"], tmp_path / "two"),
        ([sys.executable, "-m", "studio", "train", "--batch-size", "2"], tmp_path / "one"),
    ):
        done = subprocess.run(
            [*command, *common, "--out", str(out)], cwd=ROOT, env=environment, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
    two, one = (
        load_file(tmp_path / "two" / "chromm.safetensors"),
        load_file(tmp_path / "one" / "chromm.safetensors"),
    )
    start = load_file(tmp_path / "one" / "start.safetensors")
    moved = [key for key in one if not torch.equal(one[key], start[key])]
    assert moved  # it trained
    for key in one:
        np.testing.assert_allclose(two[key].numpy(), one[key].numpy(), rtol=1e-4, atol=1e-6, err_msg=key)


def test_a_full_disk_while_saving_names_it_and_keeps_the_last_checkpoint(scenes, tmp_path, monkeypatch):
    config = _config(scenes, tmp_path / "run", max_steps=2, val_data=None, checkpoint_every=1)
    train(config)
    state = tmp_path / "run" / "checkpoints" / "state_00000002.pt"
    saved = state.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(InputError, match=r"could not write the checkpoint in .*No space left.*intact"):
        train(replace(config, max_steps=3))
    assert state.read_bytes() == saved
    assert not list((tmp_path / "run" / "checkpoints").glob("*.partial"))


def test_bodies_of_another_body_model_are_refused_by_name(scenes):
    model = Chromm(ChrommSizes.tiny())
    example = training_example(SyntheticScenes(scenes)[0], model.sizes)
    example = replace(example, targets=replace(example.targets, body_model="smplx"))
    with pytest.raises(InputError, match="smplx's, the losses' body model is anny"):
        StageStep(model, AnnyBody(), 1, LossWeights())(example, scale_adjustment=False)
