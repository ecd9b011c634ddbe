"""Studio sessions: one run and the identity edits made on it, saved after every edit.

A session is a folder under the sessions root:

    base/          the run as reconstructed (never changed)
    current/       the run with every edit applied (saved atomically after each edit)
    session.json   name, creation time, settings, the edits made and the edits undone (atomic write)

``session.json`` is the truth: on opening, ``current/`` is checked against the base assignment with
the edits replayed, and rebuilt from ``base/`` if a crash left it behind. Undo replays one edit fewer
and re-fuses the persons that edit touched; redo applies it again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.body.tracks import load_body_model
from core.engine.editing import IdentityEdit, apply_edit, apply_edits
from core.engine.refusion import refuse
from core.reconstruction import Reconstruction, ReconstructionFormatError
from core.types import Assignment
from studio.export import write_atomically

_METADATA = "session.json"
_BASE = "base"
_CURRENT = "current"


def sessions_root() -> Path:
    """``$CHROMM_SESSIONS_DIR``, else ``sessions`` in the working directory."""
    return Path(os.environ.get("CHROMM_SESSIONS_DIR", "sessions"))


def _same_assignment(a: Assignment, b: Assignment) -> bool:
    fields = ("view", "tracklet", "frame_start", "frame_end", "person")
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in fields)


@dataclass(frozen=True)
class SessionInfo:
    """What the page's list of past sessions shows."""

    directory: Path
    name: str
    created: float
    persons: int
    edits: int


class Session:
    """One run being inspected and corrected; every change is on disk before a method returns.

    Methods are serialised by a lock: a browser tab's clicks may arrive on several server threads.
    """

    def __init__(self, directory: Path, base: Reconstruction, current: Reconstruction, metadata: dict):
        self.directory = Path(directory)
        self.base = base
        self.current = current
        self._metadata = metadata
        self._lock = threading.RLock()
        self._body = None

    @property
    def name(self) -> str:
        return self._metadata["name"]

    @property
    def settings(self) -> dict:
        return self._metadata.get("settings", {})

    @property
    def edits(self) -> list[IdentityEdit]:
        return [IdentityEdit.from_json(e) for e in self._metadata["edits"]]

    @property
    def undone(self) -> list[IdentityEdit]:
        return [IdentityEdit.from_json(e) for e in self._metadata["undone"]]

    @staticmethod
    def create(
        root: Path, name: str, reconstruction: Reconstruction, settings: dict | None = None
    ) -> Session:
        """A new session folder under ``root`` holding ``reconstruction`` as its base."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"
        directory = Path(
            tempfile.mkdtemp(prefix=f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-", dir=_mkdir(root))
        )
        reconstruction.save(directory / _BASE)
        shutil.copytree(directory / _BASE, directory / _CURRENT)  # no edit yet: the same run
        metadata = {
            "name": name,
            "created": time.time(),
            "settings": settings or {},
            "edits": [],
            "undone": [],
        }
        write_atomically(directory / _METADATA, json.dumps(metadata, indent=1))
        return Session(directory, reconstruction, reconstruction, metadata)

    @staticmethod
    def open(directory: Path) -> Session:
        """Reopen a session as it was left (``current/`` rebuilt if it does not match the edits)."""
        directory = Path(directory)
        try:
            metadata = json.loads((directory / _METADATA).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ReconstructionFormatError(f"{directory / _METADATA}: not a session ({error})") from error
        base = Reconstruction.load(directory / _BASE)
        session = Session(directory, base, base, metadata)
        expected, touched = apply_edits(base.assignment, session.edits)
        try:
            current = Reconstruction.load(directory / _CURRENT)
        except ReconstructionFormatError:
            current = None
        if current is not None and _same_assignment(current.assignment, expected):
            session.current = current
        elif session.edits:  # a crash between the two writes: rebuild from the base
            session.current = session._refuse(base, expected, touched)
            session.current.save(directory / _CURRENT)
        return session

    def _refuse(self, reconstruction: Reconstruction, assignment: Assignment, affected) -> Reconstruction:
        body = self.body_model(reconstruction)
        return refuse(reconstruction, assignment, affected, body, reconstruction.config.body.fit)

    def body_model(self, reconstruction: Reconstruction):
        """The body model ``reconstruction``'s persons were fitted with (loaded once), or None."""
        if any(p.shape_model in ("anny", "smplx") for p in reconstruction.persons):
            if self._body is None:
                self._body = load_body_model(reconstruction.config.body)
            return self._body
        return None

    def _commit(self, reconstruction: Reconstruction, edits: list[IdentityEdit], undone: list[IdentityEdit]):
        reconstruction.save(self.directory / _CURRENT)
        self._metadata = {
            **self._metadata,
            "edits": [e.to_json() for e in edits],
            "undone": [e.to_json() for e in undone],
        }
        write_atomically(self.directory / _METADATA, json.dumps(self._metadata, indent=1))
        self.current = reconstruction

    def edit(self, edit: IdentityEdit) -> frozenset[int]:
        """Apply ``edit``, re-fuse the persons it touches, save; the redo list is cleared."""
        with self._lock:
            assignment, affected = apply_edit(self.current.assignment, edit)
            self._commit(self._refuse(self.current, assignment, affected), [*self.edits, edit], [])
            return affected

    def undo(self) -> frozenset[int]:
        """Take back the last edit; the persons it touched (empty if there was none)."""
        with self._lock:
            edits = self.edits
            if not edits:
                return frozenset()
            before, _ = apply_edits(self.base.assignment, edits[:-1])
            _, affected = apply_edit(before, edits[-1])
            self._commit(self._refuse(self.current, before, affected), edits[:-1], [*self.undone, edits[-1]])
            return affected

    def redo(self) -> frozenset[int]:
        """Apply the last undone edit again; the persons it touched (empty if there was none)."""
        with self._lock:
            undone = self.undone
            if not undone:
                return frozenset()
            assignment, affected = apply_edit(self.current.assignment, undone[-1])
            self._commit(
                self._refuse(self.current, assignment, affected), [*self.edits, undone[-1]], undone[:-1]
            )
            return affected


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def list_sessions(root: Path) -> list[SessionInfo]:
    """The sessions under ``root``, newest first; folders that are not sessions are skipped."""
    infos = []
    for metadata in Path(root).glob(f"*/{_METADATA}"):
        try:
            data = json.loads(metadata.read_text())
            persons = len(
                json.loads((metadata.parent / _CURRENT / "reconstruction.json").read_text())["persons"]
            )
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            continue
        infos.append(SessionInfo(metadata.parent, data["name"], data["created"], persons, len(data["edits"])))
    return sorted(infos, key=lambda info: info.created, reverse=True)
