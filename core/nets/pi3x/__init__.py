"""Pi3X (scene prior): the model (``model``: encoder, alternating decoder, heads), its input/output mapping
(``preprocess``) and the similarity that carries its world into a calibrated rig's (``align``)."""

from core.nets.pi3x.model import Pi3X

__all__ = ["Pi3X"]
