"""Scoring against ground truth: synthetic scenes (``synthetic``), the metrics (``metrics``: MPJPE and its
aligned variants, association precision/recall, ID switches) and a reconstruction scored against its
scene (``scoring``)."""
