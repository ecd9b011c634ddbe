"""From-scratch, checkpoint-compatible networks: Pi3X (scene) and Multi-HMR (humans).

Written from the published behaviour of the reference models, never from their code; equivalence
with the references is proven on the fixtures in ``shared/fixtures`` (see ``core.nets.reference.check``).
"""
