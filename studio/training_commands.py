"""``python -m studio train | make-data | evaluate-network``: CHROMM's training, its data and its
evaluation (the ``train`` extra's libraries are imported by the commands, not here)."""

from __future__ import annotations

from typing import Annotated

from tyro.conf import arg

from studio.training.config import TrainConfig


def train(config: Annotated[TrainConfig, arg(name="")]) -> None:
    """Train (or resume) one stage of CHROMM's network; prints the network's checkpoint last.

    Stage 1 trains the fusion, the SMPL-X decoder, the depth residual and the pelvis heads on frozen
    encoders; stage 2 the pelvis heads alone with the Chamfer term; stage 0 the tiny encoders of toy runs.
    ``torchrun --nproc-per-node N -m studio train …`` trains on N processes (DistributedDataParallel).
    """
    from studio.training.trainer import train as run

    print(run(config))
