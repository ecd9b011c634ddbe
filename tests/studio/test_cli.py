import json
from pathlib import Path

import pytest

from core.config import ReconstructionConfig
from studio.bench import ASSOCIATION_ABLATIONS
from studio.cli import SHORT_FLAGS, main

REQUIRED = {
    "association_precision",
    "association_recall",
    "id_switches",
    "id_switches_per_100_frames",
    "wa_mpjpe_mm",
    "single_view_wa_mpjpe_mm",
    "w_mpjpe_mm",
    "pa_mpjpe_mm",
    "scale_rel_error",
    "stage_seconds",
    "frames_per_second",
    "ablations",
}


def test_bench_json_has_every_metric_and_ablation(capsys):
    main(
        [
            "bench",
            "--persons",
            "2",
            "--views",
            "3",
            "--frames",
            "40",
            "--seed",
            "1",
            "--scale-error",
            "1.4",
            "--json",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert REQUIRED <= result.keys()
    assert set(result["ablations"]) == {"association_precision", "fusion_wa_mpjpe_mm", "scale_wa_mpjpe_mm"}
    assert set(result["ablations"]["association_precision"]) == set(ASSOCIATION_ABLATIONS)
    assert result["scene"]["scale_error"] == 1.4
    assert result["scale_rel_error"] < 0.05
    assert result["frames_per_second"] > 0


def test_bench_table_is_readable(capsys):
    main(["bench", "--persons", "2", "--views", "2", "--frames", "30", "--identical-appearance"])
    out = capsys.readouterr().out
    assert "identical_appearance=True" in out
    assert "ablations.fusion_wa_mpjpe_mm.average_only" in out


def test_demo_writes_a_loadable_reconstruction(tmp_path, capsys):
    from core.reconstruction import Reconstruction

    main(["demo", "--out", str(tmp_path / "demo")])
    assert "written to" in capsys.readouterr().out
    assert len(Reconstruction.load(tmp_path / "demo").persons) == 3


SHORT = [
    "--body",
    "smplx",
    "--smplx-dir",
    "/models/smplx",
    "--scene",
    "pi3x",
    "--pi3x-ckpt",
    "/models/model.safetensors",
    "--humans",
    "multihmr",
    "--mhmr-ckpt",
    "/models/multiHMR_896_L.pt",
]


def test_short_flags_set_the_config(monkeypatch, tmp_path, capsys):
    import core.engine.video_pipeline as video_pipeline
    from core.errors import InputError

    seen = []

    def reconstruct_from_videos(videos, calibration, frames, config, progress, device):
        seen.append(config)
        raise InputError("stopped before any work")

    monkeypatch.setattr(video_pipeline, "reconstruct_from_videos", reconstruct_from_videos)
    args = ["reconstruct", "--videos", "a.mp4", "--out", str(tmp_path), *SHORT]
    with pytest.raises(SystemExit):
        main([*args, "--config.association.gate", "0.7"])
    assert "stopped before any work" in capsys.readouterr().err
    (config,) = seen
    assert (config.body.model, config.body.smplx.model_dir) == ("smplx", Path("/models/smplx"))
    assert (config.networks.scene, config.networks.humans) == ("pi3x", "multihmr")
    assert config.networks.pi3x_ckpt == Path("/models/model.safetensors")
    assert config.networks.mhmr_ckpt == Path("/models/multiHMR_896_L.pt")
    assert config.association.gate == 0.7
    default = ReconstructionConfig()
    assert (config.body.fit, config.body.anny, config.fusion) == (
        default.body.fit,
        default.body.anny,
        default.fusion,
    )


def test_each_short_flag_is_the_only_spelling_of_its_setting(capsys):
    with pytest.raises(SystemExit):
        main(["reconstruct", "--help"])
    help_text = capsys.readouterr().out
    for path, flag in SHORT_FLAGS.items():
        assert f"--{flag} " in help_text
        assert f"--config.{path.replace('_', '-')} " not in help_text
    assert "--config.networks.head-depth" in help_text  # the other fields keep their long flags
    with pytest.raises(SystemExit):
        main(["reconstruct", "--videos", "a.mp4", "--out", "x", "--config.body.model", "none"])
    assert "Unrecognized options: --config.body.model" in capsys.readouterr().err
