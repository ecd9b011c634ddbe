"""The equivalence check against reference fixtures (``python -m studio nets check``), apart from the
models it checks: the fixtures' weight fill, per-array tolerances, and one runner per network."""
