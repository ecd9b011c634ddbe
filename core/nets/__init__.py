"""From-scratch, checkpoint-compatible networks: Pi3X (scene, ``pi3x/``), Multi-HMR (humans, ``multihmr/``).

Shared parts: ``vit`` (DINOv2 and its blocks), ``image_map`` (where a frame's pixels land in a network's
input), ``checkpoints`` (strict loading), ``runtime`` (device and autocast), ``config`` (which backends,
which checkpoints). Written from the published behaviour of the reference models, never from their
code; equivalence with the references is proven on the fixtures in ``tests/fixtures/nets`` by
``reference/`` (``python -m studio nets check``).
"""
