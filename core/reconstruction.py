"""The result of a run, and its lossless, versioned, crash-safe storage in a directory."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from jaxtyping import Float, UInt8

from core.cameras.report import CalibrationReport
from core.config import ReconstructionConfig
from core.serialization import from_tree, to_tree
from core.staging import remove_abandoned, replace_folder, staging_path
from core.types import Assignment, CameraRig, Diagnostics, Observations, PersonTrack, Tracklets

FORMAT_VERSION = 3
"""Bumped whenever a saved field changes meaning; loading another version is refused."""
_METADATA = "reconstruction.json"
_ARRAYS = "arrays.npz"


class ReconstructionFormatError(ValueError):
    """A directory that does not hold a reconstruction this version can read."""


@dataclass(frozen=True)
class Reconstruction:
    """Cameras, scene points and people of one scene, in one metric world frame (z up)."""

    cameras: CameraRig
    observations: Observations
    tracklets: Tracklets
    assignment: Assignment
    persons: tuple[PersonTrack, ...]
    config: ReconstructionConfig
    diagnostics: Diagnostics
    fps: float
    num_frames: int
    points: Float[np.ndarray, "N 3"] = field(default_factory=lambda: np.zeros((0, 3)))
    point_colors: UInt8[np.ndarray, "N 3"] = field(default_factory=lambda: np.zeros((0, 3), dtype=np.uint8))
    ground: Float[np.ndarray, 4] = field(default_factory=lambda: np.full(4, np.nan))
    """Floor plane (n, d) with n · x + d = 0 and unit n pointing up; NaN when none was fitted."""
    clips: tuple[str, ...] = ()
    """The video file of each view, when the reconstruction came from videos."""
    first_frame: int = 0
    """Clip frame number of reconstruction frame 0."""
    frame_step: int = 1
    """Clip frames between consecutive reconstruction frames (``fps`` is already divided by it)."""
    view_frames: tuple[tuple[int, float], ...] = ()
    """Per view, the frame of its file that is reconstruction frame 0 and its file's frames per
    reconstruction frame (fractional for a file read at a lower rate: the nearest frame), where the
    views' files differ in that (clips put in step by offsets, read at a common rate); empty:
    ``first_frame`` and ``frame_step`` for every view."""
    calibration: CalibrationReport | None = None
    """How the cameras were obtained (per camera: focal length, reprojection error, placed or why not)."""
    reference_cameras: CameraRig | None = None
    """A calibration file's cameras when the cameras were estimated anyway (its own world frame), to
    compare against."""
    format_version: int = FORMAT_VERSION

    def save(self, directory: Path) -> None:
        """Write to ``directory`` via a staging directory renamed into place: never a half-written result.

        Replacing an existing ``directory`` takes two renames (no atomic swap of folders exists), so a
        process killed between them leaves no ``directory``: a caller for whom that matters keeps what
        it needs to write it again (a session rebuilds ``current/`` from its log). Whatever a killed save
        left beside ``directory`` is removed by :func:`remove_abandoned_saves`.
        """
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = staging_path(directory, "saving")
        try:
            staging.mkdir()
            self.write_files(staging)
            replace_folder(staging, directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def write_files(self, folder: Path) -> None:
        """Write the reconstruction's two files into the existing ``folder``, not atomically: for a
        caller that stages a folder of its own (as :meth:`save` and a batch's results do)."""
        arrays: dict[str, np.ndarray] = {}
        tree = to_tree(self, arrays)
        np.savez(Path(folder) / _ARRAYS, **arrays)
        (Path(folder) / _METADATA).write_text(json.dumps(tree, indent=1))

    @staticmethod
    def load(directory: Path) -> Reconstruction:
        """Read a directory written by :meth:`save`; a clear error if it is not one or of another version."""
        directory = Path(directory)
        metadata = directory / _METADATA
        if not metadata.is_file() or not (directory / _ARRAYS).is_file():
            raise ReconstructionFormatError(
                f"{directory}: not a reconstruction (no {_METADATA} and {_ARRAYS})"
            )
        try:
            tree = json.loads(metadata.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ReconstructionFormatError(f"{metadata}: unreadable ({error})") from error
        version = tree.get("format_version") if isinstance(tree, dict) else None
        if version != FORMAT_VERSION:
            raise ReconstructionFormatError(
                f"{metadata}: format version {version}, this studio reads version {FORMAT_VERSION}"
            )
        with np.load(directory / _ARRAYS, allow_pickle=False) as arrays:
            try:
                return from_tree(tree, Reconstruction, dict(arrays))
            except (KeyError, TypeError) as error:
                raise ReconstructionFormatError(
                    f"{directory}: incomplete reconstruction ({error})"
                ) from error


def remove_abandoned_saves(directory: Path) -> list[Path]:
    """Remove the staging folders that saves of ``directory`` killed midway left beside it (those of
    a save still running are kept); the paths removed."""
    directory = Path(directory)
    return remove_abandoned(directory.parent, directory.name)
