"""Where the studio keeps what it does not ship: $CHROMM_CACHE_DIR (default ~/.cache/chromm-studio)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The folder holding ``models/`` (BlazePose), ``examples/`` and ``checkpoints/`` (yours)."""
    return Path(os.environ.get("CHROMM_CACHE_DIR") or Path.home() / ".cache" / "chromm-studio")
