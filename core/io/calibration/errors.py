"""The error every calibration reader raises, and the one place calibration files are read."""

from __future__ import annotations

from pathlib import Path

from core.errors import InputError

__all__ = ["CalibrationError", "paired_files", "read_bytes", "read_text"]


class CalibrationError(InputError):
    """A calibration the studio cannot use; the message starts with the file and says what is wrong."""


def read_bytes(path: Path) -> bytes:
    """The content of a calibration file; a missing or unreadable file is a CalibrationError."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise CalibrationError(f"{path}: cannot be read ({error.strerror or error})") from error


def read_text(path: Path) -> str:
    """The UTF-8 text of a calibration file (a BOM is dropped); binary content is a CalibrationError."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CalibrationError(f"{path}: not a UTF-8 text file (bad byte at offset {error.start})") from error


def paired_files(path: Path, names: tuple[str, ...], format_name: str) -> tuple[Path, ...]:
    """The files ``names`` of a format stored as several files side by side, given one of them or their
    folder; a missing one is a CalibrationError naming it."""
    folder = path if path.is_dir() else path.parent
    files = tuple(folder / name for name in names)
    for required in files:
        if not required.is_file():
            raise CalibrationError(
                f"{required}: not found; {format_name} calibrations are {' and '.join(names)} side by side"
            )
    return files
