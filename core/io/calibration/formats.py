"""Which reader a calibration needs, decided from file names alone; the contents are each reader's job."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.io.calibration.colmap import COLMAP_FILES, read_colmap
from core.io.calibration.easymocap import EASYMOCAP_FILES, read_easymocap
from core.io.calibration.errors import CalibrationError
from core.io.calibration.panoptic import is_panoptic_name, read_panoptic
from core.io.calibration.pose2sim import read_pose2sim, write_pose2sim
from core.io.calibration.qualisys import read_qualisys
from core.types import CameraRig

__all__ = ["holds_calibration", "read_calibration", "write_calibration"]

Reader = Callable[[Path], CameraRig]

_FILE_ENDINGS: dict[str, Reader] = {".qca.txt": read_qualisys, ".toml": read_pose2sim}
_FILE_PAIRS: tuple[tuple[tuple[str, ...], Reader], ...] = (
    (EASYMOCAP_FILES, read_easymocap),
    (COLMAP_FILES, read_colmap),
)
_EXPECTED = (
    "expected one of: a Qualisys *.qca.txt, a Pose2Sim *.toml, EasyMocap intri.yml + extri.yml, "
    "COLMAP cameras.txt + images.txt, a CMU Panoptic calibration_*.json, or a folder holding one of them"
)


def read_calibration(path: Path) -> CameraRig:
    """Read the calibration at ``path``, a file or a folder holding exactly one calibration.

    Cameras come in file order. Qualisys, Pose2Sim and Panoptic worlds are metric and z-up; EasyMocap
    and COLMAP worlds are kept as stored (see each reader). EasyMocap cameras may have an unknown size
    (0 × 0) that :func:`~core.io.calibration.match_clips` fills in.

    Raises:
        CalibrationError: the path is missing, of an unknown format, holds several calibrations, or its
            content is malformed; the message names the file and what is wrong.
    """
    path = Path(path)
    target, reader = _resolve(path)
    return reader(target)


def holds_calibration(folder: Path) -> bool:
    """Whether ``folder`` directly holds at least one calibration :func:`read_calibration` can read."""
    return Path(folder).is_dir() and bool(_calibrations_in(Path(folder)))


def write_calibration(rig: CameraRig, path: Path) -> None:
    """Write ``rig`` as a Pose2Sim ``Calib.toml`` that :func:`read_calibration` reads back exactly.

    Raises:
        CalibrationError: ``path`` does not end in ``.toml``, or two cameras share a name.
    """
    path = Path(path)
    if not path.name.lower().endswith(".toml"):
        raise CalibrationError(
            f"{path}: calibrations are written as Pose2Sim TOML; use a name ending in .toml"
        )
    write_pose2sim(rig, path)


def _resolve(path: Path) -> tuple[Path, Reader]:
    if path.is_dir():
        found = _calibrations_in(path)
        if len(found) == 1:
            return found[0][1:]
        listed = ", ".join(label for label, _, _ in found)
        if not found:
            raise CalibrationError(f"{path}: no calibration in this folder; {_EXPECTED}")
        raise CalibrationError(f"{path}: several calibrations in this folder ({listed}); pass the one to use")
    if not path.exists():
        raise CalibrationError(f"{path}: no such file or folder")
    name = path.name.lower()
    for ending, reader in _FILE_ENDINGS.items():
        if name.endswith(ending):
            return path, reader
    for files, reader in _FILE_PAIRS:
        if name in files:
            return path, reader
    if is_panoptic_name(name):
        return path, read_panoptic
    raise CalibrationError(f"{path}: unknown calibration format; {_EXPECTED}")


def _calibrations_in(folder: Path) -> list[tuple[str, Path, Reader]]:
    """(label, path to read, reader) of each calibration directly in ``folder``."""
    try:
        files = sorted(p.name for p in folder.iterdir() if p.is_file())
    except OSError as error:
        raise CalibrationError(f"{folder}: cannot be listed ({error.strerror or error})") from error
    lowered = {name.lower() for name in files}
    found = [(" + ".join(pair), folder, reader) for pair, reader in _FILE_PAIRS if lowered & set(pair)]
    for name in files:
        found += [(name, folder / name, r) for end, r in _FILE_ENDINGS.items() if name.lower().endswith(end)]
        found += [(name, folder / name, read_panoptic)] if is_panoptic_name(name) else []
    return found
