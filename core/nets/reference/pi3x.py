"""Runs Pi3X the way the reference fixture ``pi3x_tiny.npz`` was recorded and names the arrays like it."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from core.nets.pi3x.model import Pi3X


def pi3x_fixture_outputs(model: Pi3X, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every ``int.*`` and ``out.*`` array of the fixture, from a float32 run on ``arrays["input.imgs"]``.

    Token snapshots keep every 16th channel (``_c16``), the position table every 4th (``_c4``) and the
    rays every 2nd row and column (``rays_s2``), as the fixture stores them.
    """
    device = next(model.parameters()).device
    images = torch.from_numpy(np.asarray(arrays["input.imgs"], dtype=np.float32)).to(device)
    trace: dict = {}
    with torch.no_grad():
        outputs = model(images, trace=trace)
    cls_token, registers, patches = model.encoder.split_tokens(trace["encoder_tokens"])
    arrays_out = {
        "int.encoder_pos_embed_interp_c4": trace["encoder_pos_embed"][..., ::4],
        **{f"int.encoder_block{i}_out_c16": x[..., ::16] for i, x in enumerate(trace["encoder_blocks"])},
        "int.encoder_patch_tokens": patches,
        "int.encoder_cls_token": cls_token,
        "int.encoder_reg_tokens": registers,
        **{f"int.decoder_block{i}_out_c16": x[..., ::16] for i, x in enumerate(trace["decoder_blocks"])},
        "int.decoder_concat": trace["decoder_concat"],
        "int.point_decoder_out": trace["point_decoder"],
        "int.camera_decoder_out": trace["camera_decoder"],
        "int.metric_decoder_out": trace["metric_decoder"],
        "int.conf_decoder_out": trace["conf_decoder"],
        "int.point_head_xy": trace["point_xy"],
        "int.point_head_logz": trace["point_log_depth"],
        "int.camera_head_feat": trace["camera_features"],
        "int.camera_head_t": trace["camera_translation"],
        "int.camera_head_rot9_presvd": trace["camera_rotation_9d"],
        "int.metric_head_raw": trace["metric_raw"],
        **{
            f"out.{name}": outputs[name]
            for name in ("points", "local_points", "conf", "camera_poses", "metric")
        },
        "out.rays_s2": outputs["rays"][:, :, ::2, ::2],
    }
    return {name: value.detach().float().cpu().numpy() for name, value in arrays_out.items()}
