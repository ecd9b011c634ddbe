"""CHROMM's own network (Coherent Human-Scene Reconstruction from Multi-Person Multi-View Video): Multi-HMR's
head tokens fused after decoding with Pi3X's decoder features, an SMPL-X decoder, the head's translation
as a residual on Pi3X's depth and a coarse-to-fine pelvis. Defined from the paper (no code or weights are
public); the parts so far: ``grid`` (reading Pi3X's maps at Multi-HMR's pixels), ``placement`` (the
head's position from depth, and the pelvis refined within its patch)."""
