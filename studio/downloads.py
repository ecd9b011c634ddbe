"""What the page offers for download: every export of a session, written inside the session's folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

from studio.export import export_all
from studio.session import Session


def prepare_downloads(session: Session) -> tuple[list[Path], list[str]]:
    """Every format of ``session``'s current run (``export_all``) into a new ``exports-*`` folder of it;
    the files, and a note per format left out."""
    folder = Path(tempfile.mkdtemp(prefix="exports-", dir=session.directory))
    return export_all(session.current, folder)
