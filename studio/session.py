"""Studio sessions: one run and the identity edits made on it, saved after every edit.

A session is a folder under the sessions root:

    base/          the run as reconstructed (never changed)
    current/       the run with every edit applied: derived state, rebuilt whenever it is not that
    session.json   the command log: schema version, name, creation time, settings, the edits made and
                   the edits undone (atomic write)

The log is the truth. An edit is written to it first and to ``current/`` second, so a process killed in
between leaves a log that is ahead, and opening the session rebuilds ``current/`` from ``base/`` with
the log's edits replayed (also when ``current/`` is missing or unreadable). A session is created in a
hidden staging folder renamed into place last, so it is absent or complete; a :class:`SessionStore`
starting removes the staging folders that killed processes left.

Every caller goes through one :class:`SessionStore`, which hands out one :class:`Session` per folder:
the page and every viewer of a session share it, and its lock serialises the edits.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
import time
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from core.body.tracks import load_body_model
from core.engine.editing import IdentityEdit, apply_edit, apply_edits, edit_from_json
from core.engine.refusion import refuse
from core.reconstruction import Reconstruction, ReconstructionFormatError, remove_abandoned_saves
from core.staging import remove_abandoned, staging_path
from core.types import Assignment
from studio.export import write_atomically

SCHEMA = 2
"""Version of ``session.json``'s layout. 1 (files without a ``"schema"`` key): edits in their first
layout (read by ``edit_from_json``) and no ``"persons"``; such a file is read as is and written in this
layout by its next edit. A newer version is refused."""
_LOG = "session.json"
_BASE = "base"
_CURRENT = "current"


class SessionFormatError(ReconstructionFormatError):
    """A folder that does not hold a session this version can read (the message names the file)."""


def sessions_root() -> Path:
    """``$CHROMM_SESSIONS_DIR``, else ``sessions`` in the working directory."""
    return Path(os.environ.get("CHROMM_SESSIONS_DIR", "sessions"))


@dataclass(frozen=True)
class SessionInfo:
    """What the page's list of past sessions shows."""

    directory: Path
    name: str
    created: float
    persons: int
    edits: int


@dataclass(frozen=True)
class SessionLog:
    """The command log (``session.json``): what a session is, besides its base run."""

    name: str
    created: float
    settings: dict
    edits: tuple[IdentityEdit, ...] = ()
    undone: tuple[IdentityEdit, ...] = ()
    persons: int | None = None
    """Persons of the run with the edits applied (None in schema 1): what the list shows."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema": SCHEMA,
                "name": self.name,
                "created": self.created,
                "settings": self.settings,
                "persons": self.persons,
                "edits": [e.to_json() for e in self.edits],
                "undone": [e.to_json() for e in self.undone],
            },
            indent=1,
        )


def _read_log(path: Path) -> SessionLog:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SessionFormatError(f"{path}: not a session ({error})") from error
    schema = data.get("schema", 1) if isinstance(data, dict) else None
    if not isinstance(schema, int) or schema < 1:
        raise SessionFormatError(f"{path}: not a session (schema {schema!r})")
    if schema > SCHEMA:
        raise SessionFormatError(
            f"{path}: session schema {schema} is newer than this studio's ({SCHEMA}); "
            "open it with a newer studio"
        )
    try:
        return SessionLog(
            name=str(data["name"]),
            created=float(data["created"]),
            settings=dict(data.get("settings") or {}),
            edits=tuple(edit_from_json(e) for e in data["edits"]),
            undone=tuple(edit_from_json(e) for e in data["undone"]),
            persons=None if data.get("persons") is None else int(data["persons"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise SessionFormatError(f"{path}: not a session ({type(error).__name__}: {error})") from error


@dataclass(frozen=True)
class SessionState:
    """A session at one moment: the run with the edits applied, and the log it follows from."""

    current: Reconstruction
    log: SessionLog = field(repr=False)

    @property
    def edits(self) -> list[IdentityEdit]:
        return list(self.log.edits)

    @property
    def undone(self) -> list[IdentityEdit]:
        return list(self.log.undone)


class Session:
    """One run being inspected and corrected; every change is in the log on disk before a method returns.

    Built by a :class:`SessionStore` only, so that there is one per folder. Edits, undo and redo are
    serialised by a lock (a browser tab's clicks arrive on several server threads, and several viewers
    may show the session); reads take no lock and see the state before or after an edit, never between.
    """

    def __init__(
        self, directory: Path, base: Reconstruction, current: Reconstruction, log: SessionLog
    ) -> None:
        self.directory = directory
        self.base = base
        self._state = SessionState(current, log)
        self._lock = threading.RLock()
        self._body = None

    @property
    def state(self) -> SessionState:
        """The current run and the edit lists, read together."""
        return self._state

    @property
    def current(self) -> Reconstruction:
        return self._state.current

    @property
    def edits(self) -> list[IdentityEdit]:
        return self._state.edits

    @property
    def undone(self) -> list[IdentityEdit]:
        return self._state.undone

    @property
    def name(self) -> str:
        return self._state.log.name

    @property
    def settings(self) -> dict:
        return self._state.log.settings

    def body_model(self, reconstruction: Reconstruction):
        """The body model ``reconstruction``'s persons were fitted with (loaded once), or None."""
        if any(p.shape_model in ("anny", "smplx") for p in reconstruction.persons):
            if self._body is None:
                self._body = load_body_model(reconstruction.config.body)
            return self._body
        return None

    def edit(self, edit: IdentityEdit) -> frozenset[int]:
        """Apply ``edit``, re-fuse the persons it touches, save; the redo list is cleared."""
        with self._lock:
            state = self._state
            assignment, affected = apply_edit(state.current.assignment, edit)
            self._commit(self._refuse(state.current, assignment, affected), (*state.log.edits, edit), ())
            return affected

    def undo(self) -> frozenset[int]:
        """Take back the last edit; the persons it touched (empty if there was none)."""
        with self._lock:
            state = self._state
            if not state.log.edits:
                return frozenset()
            *kept, last = state.log.edits
            before, _ = apply_edits(self.base.assignment, kept)
            _, affected = apply_edit(before, last)
            self._commit(
                self._refuse(state.current, before, affected), tuple(kept), (*state.log.undone, last)
            )
            return affected

    def redo(self) -> frozenset[int]:
        """Apply the last undone edit again; the persons it touched (empty if there was none)."""
        with self._lock:
            state = self._state
            if not state.log.undone:
                return frozenset()
            *kept, last = state.log.undone
            assignment, affected = apply_edit(state.current.assignment, last)
            self._commit(
                self._refuse(state.current, assignment, affected), (*state.log.edits, last), tuple(kept)
            )
            return affected

    def _refuse(self, reconstruction: Reconstruction, assignment: Assignment, affected) -> Reconstruction:
        body = self.body_model(reconstruction)
        return refuse(reconstruction, assignment, affected, body, reconstruction.config.body.fit)

    def _commit(self, current: Reconstruction, edits: tuple, undone: tuple) -> None:
        """The log first (the truth), then the state readers see, then ``current/`` (derived)."""
        log = replace(self._state.log, edits=edits, undone=undone, persons=len(current.persons))
        write_atomically(self.directory / _LOG, log.to_json())
        self._state = SessionState(current, log)
        current.save(self.directory / _CURRENT)


def _same_assignment(a: Assignment, b: Assignment) -> bool:
    fields = ("view", "tracklet", "frame_start", "frame_end", "person")
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in fields)


def _load(directory: Path) -> Session:
    """The session in ``directory``, ``current/`` rebuilt from the log if it is missing or differs."""
    log = _read_log(directory / _LOG)
    base = Reconstruction.load(directory / _BASE)
    session = Session(directory, base, base, log)
    try:
        expected, touched = apply_edits(base.assignment, list(log.edits))
    except ValueError as error:
        raise SessionFormatError(f"{directory / _LOG}: its edits do not apply to base/ ({error})") from error
    try:
        current = Reconstruction.load(directory / _CURRENT)
    except ReconstructionFormatError:
        current = None
    if current is None or not _same_assignment(current.assignment, expected):
        current = session._refuse(base, expected, touched) if log.edits else base
        current.save(directory / _CURRENT)
    session._state = SessionState(current, log)
    return session


def _create(root: Path, name: str, reconstruction: Reconstruction, settings: dict) -> Session:
    """A new session folder under ``root``, staged under a hidden name and renamed into place last."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "run"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    directory = root / f"{stamp}-{slug}-{secrets.token_hex(4)}"
    while directory.exists():
        directory = root / f"{stamp}-{slug}-{secrets.token_hex(4)}"
    log = SessionLog(name, time.time(), settings, persons=len(reconstruction.persons))
    staging = staging_path(directory, "creating")
    try:
        reconstruction.save(staging / _BASE)
        shutil.copytree(staging / _BASE, staging / _CURRENT)  # no edit yet: the same run
        write_atomically(staging / _LOG, log.to_json())
        os.rename(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Session(directory, reconstruction, reconstruction, log)


def _persons_on_disk(directory: Path) -> int:
    for part in (_CURRENT, _BASE):
        try:
            return len(json.loads((directory / part / "reconstruction.json").read_text())["persons"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            continue
    raise SessionFormatError(f"{directory}: neither current/ nor base/ holds a reconstruction")


def _session_folders(root: Path) -> list[Path]:
    """The folders of ``root`` with a log (hidden ones are staging, not sessions)."""
    if not root.is_dir():
        return []
    return [d for d in root.iterdir() if not d.name.startswith(".") and (d / _LOG).is_file()]


def list_sessions(root: Path) -> list[SessionInfo]:
    """The sessions under ``root``, newest first; folders that are not sessions (or of a newer studio)
    are skipped. Reads each ``session.json`` only (schema 1: and a ``reconstruction.json``)."""
    infos = []
    for directory in _session_folders(Path(root)):
        try:
            log = _read_log(directory / _LOG)
            persons = log.persons if log.persons is not None else _persons_on_disk(directory)
        except SessionFormatError:
            continue
        infos.append(SessionInfo(directory, log.name, log.created, persons, len(log.edits)))
    return sorted(infos, key=lambda info: info.created, reverse=True)


class SessionStore:
    """The sessions under ``root``, one :class:`Session` object per folder for the whole process.

    ``open`` hands every caller (the page's callbacks, each viewer) the same object, so there is one
    writer per session and reading it writes nothing (the one write on opening is the rebuild of a
    ``current/`` that does not follow the log, once, before anyone sees the session). A session stays
    in memory until ``release`` and until no caller holds it any more; opened after that, it is read
    again from disk. One store per root and process: two would hand out two writers of one folder.
    """

    def __init__(self, root: Path) -> None:
        """Start on ``root``, removing what killed processes left there: half-created sessions and
        half-written saves (staging folders under hidden names; a user's folder is never touched)."""
        self.root = Path(root).resolve()
        self._lock = threading.Lock()
        self._held: dict[Path, Session] = {}
        self._alive: weakref.WeakValueDictionary[Path, Session] = weakref.WeakValueDictionary()
        self._loading: dict[Path, threading.Lock] = {}
        remove_abandoned(self.root)
        for directory in _session_folders(self.root):
            remove_abandoned_saves(directory / _CURRENT)
            remove_abandoned(directory, _LOG)

    def create(self, name: str, reconstruction: Reconstruction, settings: dict | None = None) -> Session:
        """A new session holding ``reconstruction`` as its base (``settings``: JSON-able, kept as given)."""
        self.root.mkdir(parents=True, exist_ok=True)
        session = _create(self.root, name, reconstruction, settings or {})
        with self._lock:
            self._held[session.directory] = self._alive[session.directory] = session
        return session

    def open(self, directory: Path) -> Session:
        """The session in ``directory``: the object already in memory, else read (``current/`` rebuilt
        if it does not follow from the log). Raises :class:`SessionFormatError` naming the file."""
        key = Path(directory).resolve()
        with self._lock:
            session = self._alive.get(key)
            loading = self._loading.setdefault(key, threading.Lock())
        if session is None:
            with loading:  # two first opens of one folder read it once, others are not held up
                session = self._alive.get(key) or _load(key)
        with self._lock:
            self._held[key] = self._alive[key] = session
        return session

    def list(self) -> list[SessionInfo]:
        """The sessions under the root, newest first."""
        return list_sessions(self.root)

    def release(self, directory: Path) -> None:
        """Let the session in ``directory`` go from memory once no caller holds it (its viewer closed)."""
        with self._lock:
            self._held.pop(Path(directory).resolve(), None)
