"""Multi-HMR (human prior): the model (``model``: DINOv2, head detection, ray conditioning, the HPH), its
input square and intrinsics (``preprocess``), its geometric decodings (``geometry``) and SMPL-X posing."""

from core.nets.multihmr.model import MultiHMR

__all__ = ["MultiHMR"]
