"""Seconds per stage: the one way every pipeline (engine, clips, the studio's runs) times its stages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    """Add the wall-clock seconds of the ``with`` block to ``seconds[stage]``, also when it raises.

    A stage entered twice accumulates; stages keep the order in which they first ran, which is the
    order summaries print them in.

    >>> seconds = {}
    >>> with timed(seconds, "tracking"):
    ...     pass
    >>> list(seconds), seconds["tracking"] >= 0
    (['tracking'], True)
    """
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start
