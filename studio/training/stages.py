"""What each training stage trains and the losses of one instant in it.

Stage 1 (the paper's first): Pi3X and Multi-HMR's backbone frozen; the fusion MLP, the SMPL-X decoder,
the depth residual, the pelvis heads, and the head-detection head on the frozen tokens (which the
detection BCE trains). Stage 2: the pelvis heads alone, with the Chamfer term. Stage 0 (not the paper's:
toy runs, whose tiny encoders start random): the encoders themselves, for depth and head detection.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from core.body.model import BodyModel
from core.errors import InputError
from core.nets.chromm.model import PATCH_SIZE, Chromm
from core.nets.pi3x.decoders import ContextBlock
from core.nets.vit import TransformerBlock
from studio.training.batch import TrainingExample
from studio.training.config import Stage
from studio.training.encoded import EncodedCache, EncodedViews, encode, frozen_encoded
from studio.training.losses import LossWeights, chromm_losses, detection_loss

_DETECTION_HEAD = ("human.mlp_classif.", "human.mlp_offset.")
_UNSUPERVISED = ("human.x_attention_head.decexpression.",)
"""SMPL-X's expression: no training source here gives it, so no term reaches it."""
_PELVIS_HEADS = ("coarse_pelvis.", "fine_pelvis.")


def trained_parameters(model: Chromm, stage: Stage) -> dict[str, nn.Parameter]:
    """The parameters ``stage`` trains, by name; every other parameter is left frozen by ``freeze``."""
    named = dict(model.named_parameters())
    if stage == 0:
        encoders = {id(p) for module in model.encoders() for p in module.parameters()}
        return {name: p for name, p in named.items() if id(p) in encoders}
    if stage == 1:
        detection = {name: p for name, p in named.items() if name.startswith(_DETECTION_HEAD)}
        decoder = {n: p for n, p in model.trained_parameters().items() if not n.startswith(_UNSUPERVISED)}
        return decoder | detection
    return {name: p for name, p in named.items() if name.startswith(_PELVIS_HEADS)}


def freeze(model: Chromm, stage: Stage) -> dict[str, nn.Parameter]:
    """Only ``stage``'s parameters require gradients; returns them."""
    trained = trained_parameters(model, stage)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name in trained)
    return trained


def checkpoint_blocks(model: nn.Module) -> int:
    """Recompute every transformer block's activations in the backward pass instead of keeping them
    (where gradients are being recorded); returns how many blocks."""
    blocks = [m for m in model.modules() if isinstance(m, TransformerBlock | ContextBlock)]
    for block in blocks:
        block.forward = functools.partial(_checkpointed, block.forward)
    return len(blocks)


def _checkpointed(forward, *args, **kwargs):
    if not torch.is_grad_enabled():
        return forward(*args, **kwargs)
    return checkpoint(forward, *args, use_reentrant=False, **kwargs)


class StageStep(nn.Module):
    """The losses of one instant in a stage, as a module (what DistributedDataParallel wraps)."""

    def __init__(
        self,
        model: Chromm,
        body_model: BodyModel,
        stage: Stage,
        weights: LossWeights,
        cache: EncodedCache | None = None,
    ):
        super().__init__()
        self.model = model
        self.body_model = body_model
        self.stage = stage
        self.weights = weights
        self.cache = cache

    def forward(self, example: TrainingExample, scale_adjustment: bool) -> dict[str, torch.Tensor]:
        example = example.to(next(self.model.parameters()).device)
        if example.targets.body_model != self.body_model.name:
            raise InputError(
                f"{example.name}: its bodies are {example.targets.body_model}'s, the losses' body model is "
                f"{self.body_model.name} (choose it with --body.model)"
            )
        encoded = self._encoded(example)
        if self.stage == 0:
            return self._encoder_losses(encoded, example)
        inputs, targets = example.inputs, example.targets
        persons = self.model.find_persons(
            encoded.seen,
            encoded.tokens,
            inputs.K,
            inputs.square_to_grid,
            cells=(targets.view, targets.row, targets.col),
        )
        return chromm_losses(
            persons,
            self.model.human.score_map(encoded.tokens),
            encoded.seen,
            inputs,
            targets,
            self.body_model,
            self.weights,
            scale_adjustment,
            chamfer=self.stage == 2,
        )

    def _encoded(self, example: TrainingExample) -> EncodedViews:
        """The encoders' outputs: with gradients in stage 0, else frozen (read from the cache if any)."""
        if self.stage == 0:
            return encode(self.model, example.inputs, example.inputs.K.device)
        return frozen_encoded(self.model, example.key, example.inputs, self.cache)

    def _encoder_losses(self, encoded: EncodedViews, example: TrainingExample) -> dict[str, torch.Tensor]:
        """Depth L1 (metres, where known), head-detection BCE and the head's sub-patch offset L1."""
        targets, human = example.targets, self.model.human
        scores = human.score_map(encoded.tokens)
        terms = {"detection": self.weights.detection * detection_loss(scores, targets.heads)}
        if targets.depth is not None:
            depth = encoded.seen.outputs["local_points"][0, ..., 2].float()
            known = torch.isfinite(targets.depth)
            terms["depth"] = (depth - targets.depth.nan_to_num())[known].abs().mean()
        if len(targets):
            _, _, head = human.head_pixels(encoded.tokens, targets.view, targets.row, targets.col)
            terms["head_offset"] = (head - targets.head2d).abs().mean() / PATCH_SIZE
        terms["total"] = torch.stack(list(terms.values())).sum()
        return terms
