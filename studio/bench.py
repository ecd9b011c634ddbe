"""The synthetic benchmark: engine accuracy, the paper's ablations and test-time throughput.

Each ablation re-runs only the stage it changes on the same tracking result, so the differences come
from that stage alone.
"""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np

from core.config import ReconstructionConfig
from core.engine.association import associate
from core.engine.pipeline import TEST_TIME_STAGES, fuse_and_scale, reconstruct_from_observations
from core.engine.scale import monocular_scale
from core.evaluation.metrics import association_precision_recall
from core.evaluation.scoring import evaluate, tracklet_identity
from core.evaluation.synthetic import SyntheticConfig, SyntheticScene, make_scene
from core.reconstruction import Reconstruction

ASSOCIATION_ABLATIONS = {
    "position_only": (1.0, 0.0, 0.0),
    "pose_only": (0.0, 1.0, 0.0),
    "both": (0.8, 0.2, 0.0),
    "both_and_rays": (0.8, 0.2, 1.0),
}
"""(w_pos, w_pose, w_ray): the paper's three variants, then with this project's keypoint-ray term."""


def run_bench(scene_config: SyntheticConfig, config: ReconstructionConfig | None = None) -> dict:
    """Reconstruct a synthetic scene, score it, run the ablations; a JSON-able dict of the numbers."""
    config = config or ReconstructionConfig()
    scene = make_scene(scene_config)
    reconstruction = reconstruct_from_observations(
        scene.observations, scene.cameras, scene_config.frames, scene_config.fps, config
    )
    evaluation = evaluate(reconstruction, scene)
    seconds = reconstruction.diagnostics.stage_seconds
    test_time = sum(seconds[stage] for stage in TEST_TIME_STAGES)
    return {
        "scene": asdict(scene_config),
        **asdict(evaluation),
        "scale_factor": reconstruction.diagnostics.scale_factor,
        "stage_seconds": seconds,
        "frames_per_second": scene_config.frames / test_time,
        "joint_speed_rejections": int(len(reconstruction.diagnostics.rejected_joints)),
        "ablations": _ablations(scene, reconstruction, config),
    }


def _ablations(scene: SyntheticScene, reconstruction: Reconstruction, config: ReconstructionConfig) -> dict:
    truth = tracklet_identity(reconstruction.tracklets, scene.observation_identity)
    metres_per_unit = monocular_scale(reconstruction.observations, scene.cameras, config.scale)
    association = {}
    for name, (position, pose, ray) in ASSOCIATION_ABLATIONS.items():
        variant = replace(config.association, position_weight=position, pose_weight=pose, ray_weight=ray)
        result = associate(
            reconstruction.observations, reconstruction.tracklets, scene.cameras, variant, metres_per_unit
        )
        association[name] = association_precision_recall(result.tracklet_person, truth)[0]
    fusion = {
        name: _refused_wa_mpjpe(
            scene, reconstruction, replace(config, fusion=replace(config.fusion, triangulate=tri))
        )
        for name, tri in (("average_only", False), ("average_triangulation", True))
    }
    scale = {
        name: _refused_wa_mpjpe(
            scene, reconstruction, replace(config, scale=replace(config.scale, mode=mode))
        )
        for name, mode in (("off", "off"), ("on", "auto"))
    }
    return {
        "association_precision": association,
        "fusion_wa_mpjpe_mm": fusion,
        "scale_wa_mpjpe_mm": scale,
    }


def _refused_wa_mpjpe(
    scene: SyntheticScene, reconstruction: Reconstruction, config: ReconstructionConfig
) -> float:
    persons, cameras, diagnostics = fuse_and_scale(
        reconstruction.observations,
        reconstruction.tracklets,
        reconstruction.assignment,
        scene.cameras,
        scene.config.frames,
        scene.config.fps,
        config,
        {},
    )
    variant = replace(reconstruction, persons=persons, cameras=cameras, diagnostics=diagnostics)
    return evaluate(variant, scene).wa_mpjpe_mm


def format_table(result: dict) -> str:
    """The benchmark result as a readable two-column table."""
    rows: list[tuple[str, str]] = []

    def add(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                add(f"{prefix}.{key}" if prefix else key, item)
        elif isinstance(value, float):
            rows.append((prefix, f"{value:.4g}" if np.isfinite(value) else str(value)))
        else:
            rows.append((prefix, str(value)))

    add("", {k: v for k, v in result.items() if k != "scene"})
    width = max(len(name) for name, _ in rows)
    scene = ", ".join(
        f"{k}={v}"
        for k, v in result["scene"].items()
        if k in ("persons", "views", "frames", "seed", "scale_error", "identical_appearance")
    )
    return "\n".join([f"synthetic scene: {scene}", *(f"{name:<{width}}  {value}" for name, value in rows)])
