"""Training data behind one name: ``synthetic:DIR`` (scenes ``make-data synthetic`` rendered) or
``bedlam:DIR`` (a local BEDLAM copy in its released layout), each a sequence of ``MultiViewSample``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.errors import InputError
from studio.training.sample import MultiViewSample

KINDS = ("synthetic", "bedlam")


def open_dataset(spec: str) -> Sequence[MultiViewSample]:
    """The dataset ``spec`` names (``KIND:DIR``); a clear error for another form."""
    kind, _, folder = spec.partition(":")
    if kind not in KINDS or not folder:
        raise InputError(f"data {spec!r}: expected one of {', '.join(k + ':DIR' for k in KINDS)}")
    if kind == "synthetic":
        from studio.training.make_data import SyntheticScenes

        return SyntheticScenes(Path(folder))
    from studio.training.bedlam import BedlamScenes

    return BedlamScenes(Path(folder))
