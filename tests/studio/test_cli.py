import json

from studio.bench import ASSOCIATION_ABLATIONS
from studio.cli import main

REQUIRED = {
    "association_precision",
    "association_recall",
    "id_switches",
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
