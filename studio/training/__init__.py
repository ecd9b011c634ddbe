"""CHROMM's training: data behind one interface (rendered scenes, BEDLAM), the stages and their losses,
the trainer and the network's evaluation. The ``train`` extra (pyrender, TensorBoard, matplotlib,
OpenEXR) is imported only where it is used."""

from studio.training.config import TrainConfig
from studio.training.datasets import open_dataset
from studio.training.sample import MultiViewSample

__all__ = ["MultiViewSample", "TrainConfig", "open_dataset"]
