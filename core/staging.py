"""Hidden staging names for writes renamed into place, and telling a killed writer's leftovers apart.

A file or folder that must appear whole or not at all is written under ``.{name}.{stage}-{pid}-{token}``
beside its target ``name`` and renamed into place. The name is hidden, so that no listing shows it, and
carries the writing process, so that a leftover whose process is gone can be removed while a write still
in progress (in this process or another) is left alone.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

_STAGED = re.compile(r"\.(?P<name>.+)\.(?P<stage>[a-z]+)-(?P<pid>\d+)-[0-9a-f]+")


def staging_path(target: Path, stage: str) -> Path:
    """A fresh hidden path beside ``target`` for this process's ``stage`` of writing it.

    >>> staging_path(Path("runs/current"), "saving").name.startswith(f".current.saving-{os.getpid()}-")
    True
    """
    return target.with_name(f".{target.name}.{stage}-{os.getpid()}-{secrets.token_hex(4)}")


def replace_folder(staged: Path, target: Path) -> None:
    """Put the finished folder ``staged`` at ``target``, retiring what was there.

    No atomic swap of folders exists, so replacing takes two renames: a process killed between them
    leaves no ``target`` (and a retired copy that :func:`remove_abandoned` clears), never a mixed one.
    """
    retired = staging_path(target, "retired")
    try:
        if target.exists():
            os.replace(target, retired)
        os.replace(staged, target)
    finally:
        shutil.rmtree(retired, ignore_errors=True)


def abandoned(folder: Path, name: str | None = None) -> list[Path]:
    """The staging paths in ``folder`` whose writer is no longer running (of target ``name``, or of any).

    With ``name``, hidden ``.{name}.*`` entries without a writer in their name count too: versions before
    this one staged under such names and never cleaned them.
    """
    if not Path(folder).is_dir():
        return []
    found = []
    for path in Path(folder).iterdir():
        match = _STAGED.fullmatch(path.name)
        if match is not None:
            if (name is None or match["name"] == name) and not _running(int(match["pid"])):
                found.append(path)
        elif name is not None and path.name.startswith(f".{name}."):
            found.append(path)
    return found


def remove_abandoned(folder: Path, name: str | None = None) -> list[Path]:
    """Remove what :func:`abandoned` finds; the paths removed."""
    paths = abandoned(folder, name)
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return paths


def _running(pid: int) -> bool:
    if pid == os.getpid() or os.name != "posix":  # elsewhere signal 0 would not be a mere probe
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
