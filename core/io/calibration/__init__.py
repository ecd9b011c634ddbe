"""Camera calibrations in the formats users bring, read into a :class:`~core.types.CameraRig`.

:func:`read_calibration` picks the reader from the file name: Qualisys ``.qca.txt``, Pose2Sim ``.toml``,
EasyMocap ``intri.yml`` + ``extri.yml``, COLMAP ``cameras.txt`` + ``images.txt`` or CMU Panoptic
``calibration_*.json`` (or the folder holding
them). :func:`write_calibration` writes Pose2Sim TOML, which reads back exactly. :func:`match_clips` pairs
the cameras with the video clips, in order, and checks their sizes. Every failure is a
:class:`CalibrationError` whose message names the file and what is wrong.
"""

from core.io.calibration.errors import CalibrationError
from core.io.calibration.formats import holds_calibration, read_calibration, write_calibration
from core.io.calibration.matching import match_clips

__all__ = ["CalibrationError", "holds_calibration", "match_clips", "read_calibration", "write_calibration"]
