"""Runs ``MultiHMR`` on a reference fixture's inputs and names every result as the fixture does.

Intermediates are read with forward hooks on the model's submodules, so the model itself carries no
fixture-specific code; the only fixture knowledge (array names, channel subsampling, layouts) lives here.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import roma
import torch
from torch import nn

from core.nets.multihmr.model import MultiHMR
from core.nets.multihmr.smplx_posing import SmplxPoser

BLOCK_CHANNEL_STRIDE = 16
"""The fixture keeps every 16th channel of the per-block backbone outputs."""
NMS_ROWCOL = re.compile(r"infer\.nms(\d+)\.rowcol")


@contextlib.contextmanager
def _recorded_calls(modules: Mapping[str, nn.Module]) -> Iterator[dict[str, tuple[tuple[Any, ...], Any]]]:
    """``{name: (positional inputs, output)}`` of each module's (first) call inside the block."""
    seen: dict[str, tuple[tuple[Any, ...], Any]] = {}

    def recorder(name: str) -> Callable[[nn.Module, tuple[Any, ...], Any], None]:
        def record(_module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            seen.setdefault(name, (inputs, output))

        return record

    handles = [module.register_forward_hook(recorder(name)) for name, module in modules.items()]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def _numpy(values: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {name: value.detach().cpu().numpy() for name, value in values.items()}


def multihmr_fixture_outputs(
    model: MultiHMR, arrays: Mapping[str, np.ndarray], smplx_path: str | Path
) -> dict[str, np.ndarray]:
    """Every ``int.*``, ``out.*`` and ``infer.*`` array of a Multi-HMR fixture, from its ``input.*`` arrays.

    The training-style path runs on ``input.idx`` (any number of persons); ``infer.nms{k}.*`` runs the
    detection path with ``infer.det_thresh`` for every kernel ``k`` the fixture records.
    """
    x = torch.from_numpy(arrays["input.x"]).float()
    K = torch.from_numpy(arrays["input.K"]).float()
    idx = tuple(torch.from_numpy(arrays["input.idx"]).long())
    head = model.x_attention_head
    encoder = model.backbone.encoder
    watched = {
        "tokens": model.backbone,
        "logits": model.mlp_classif,
        "rays": model.camera,
        "hph": head,
        "decoder": head.transformer,
        **{name: getattr(head, name) for name in ("decpose", "decshape", "deccam", "decexpression")},
        **{f"block{b}": block for b, block in enumerate(encoder.blocks)},
    }
    threshold = float(arrays["infer.det_thresh"][0])
    kernels = [int(match.group(1)) for name in arrays if (match := NMS_ROWCOL.fullmatch(name))]
    with torch.no_grad():
        with _recorded_calls(watched) as seen:
            persons = model.forward_persons(x, K, idx)
        grid = model.grid_size
        result = {"int.backbone_pos_embed_interp": encoder.position_embedding(grid, grid)}
        poser = SmplxPoser(smplx_path, num_betas=head.decshape.out_features)
        mesh = poser(persons["rotmat"], persons["shape"], persons["expression"], persons["transl"], K[idx[0]])
        detections = {kernel: model.detect(x, K, threshold, kernel) for kernel in kernels}

    tokens, embedding = seen["tokens"][1], seen["rays"][1]
    cells = persons["cell"][:, 0] * grid + persons["cell"][:, 1]
    decoder_inputs, decoder_output = seen["decoder"]
    result |= {
        f"int.backbone_block{b}_out_c16": seen[f"block{b}"][1][..., ::BLOCK_CHANNEL_STRIDE]
        for b in range(len(encoder.blocks))
    }
    result |= {
        "int.backbone_tokens": tokens,
        "int.det_logits": seen["logits"][1],
        "int.cam_rays": seen["rays"][0][0],
        "int.cam_ray_embedding": embedding,
        "int.cam_ray_embedding_map": embedding.unflatten(1, (grid, grid)),
        "int.hph_query_in": torch.cat([tokens, embedding], -1)[persons["image"], cells],
        "int.hph_token_in": decoder_inputs[0],
        "int.hph_context": decoder_inputs[1],
        "int.hph_mask": decoder_inputs[2].float(),
        "int.hph_token_out": decoder_output,
        "int.decpose_raw": seen["decpose"][1],
        "int.decshape_raw": seen["decshape"][1],
        "int.deccam_raw": seen["deccam"][1],
        "int.decexpression_raw": seen["decexpression"][1],
        "int.pose6d": seen["hph"][1]["pose6d"],
        "int.cam_raw_plus_init": seen["hph"][1]["cam"],
    }
    result |= {
        f"out.{name}": persons[name]
        for name in ("offset", "loc", "dist", "rotmat", "shape", "expression", "transl")
    }
    result |= {
        "out.scores": persons["score_map"][..., None],
        "out.dist_postprocessed": persons["log_depth"],
        "out.rotvec": roma.rotmat_to_rotvec(persons["rotmat"]),
    }
    result |= {f"out.{name}": value for name, value in mesh.items()}
    for kernel, found in detections.items():
        result |= {f"infer.nms{kernel}.{name}": found[name] for name in ("scores", "loc", "transl")}
        result[f"infer.nms{kernel}.rowcol"] = found["cell"]
    return _numpy(result)
