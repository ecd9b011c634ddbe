"""CHROMM's own network (Coherent Human-Scene Reconstruction from Multi-Person Multi-View Video), defined
from the paper (no code or weights are public): ``model`` (Multi-HMR's head tokens fused after decoding
with Pi3X's decoder features, the SMPL-X decoder, the depth-residual translation, the coarse-to-fine
pelvis), ``grid`` (Pi3X's maps read at Multi-HMR's pixels), ``placement`` (the head from a depth, the
pelvis refined in its patch), ``checkpoint`` (built from the two priors, saved and loaded as its own)."""
