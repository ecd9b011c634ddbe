"""Compare a CHROMM Studio reconstruction with Pose2Sim's on the same 2D detections.

Pose2Sim (BSD-3, github.com/perfanalytics/pose2sim) is the open-source peer for calibrated multi-person
triangulation. This script hands it exactly what our engine saw: the reconstruction's cameras as a
Pose2Sim ``Calib.toml`` and every BlazePose detection of every view and frame (whatever tracklet it
joined) as OpenPose JSON. It runs Pose2Sim's person association and triangulation in Pose2Sim's own
virtual environment with its Demo_MultiPerson configuration (the pose model of the detections' layout:
``BLAZEPOSE`` for the embedded detector, ``BODY_25B`` for OpenPose files read by ``--keypoints``…, whose
keypoint ids are the layout's indices), reads the TRC files back, matches its persons to ours
(Hungarian on mean 3D joint distance) and prints persons, frames, reprojection errors measured by our
projection code against the detections each method attributed to the person, seconds, and the 3D
distance between matched persons.

Pose2Sim lives apart from this project (it pins its own numpy, OpenCV and OpenSim)::

    python -m venv /opt/pose2sim-venv
    /opt/pose2sim-venv/bin/pip install pose2sim==0.10.49

Then::

    python -m studio reconstruct --videos cam01.mp4 ... --calibration Calib.qca.txt --out runs/demo
    python examples/pose2sim_side_by_side.py --reconstruction runs/demo

Not part of the test run: it needs that environment and a saved reconstruction.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro
from jaxtyping import Float, Int
from scipy.optimize import linear_sum_assignment

from core.engine.handedness import mirror_permutation
from core.geometry import project_points
from core.io.calibration import write_calibration
from core.io.openpose import openpose_files
from core.keypoints import KEYPOINT_LAYOUTS
from core.reconstruction import Reconstruction
from core.types import Observations

OUR_ASSOCIATION_STAGES = ("tracking", "association", "refinement", "fusion", "scale")
"""Our stages that do what Pose2Sim's association + triangulation do (the timed comparison)."""

MIN_CONFIDENCE = 0.5
"""Detected keypoints less confident than this are left out of reprojection errors (our fusion's cut)."""

INLIER_PX = 15.0
"""Keypoint errors above this are outliers in the inlier-only error (Pose2Sim's and our fusion's cut)."""

POSE2SIM_OVERRIDES = {
    "project": {"multi_person": True},
    "pose": {},
    # 'nan' rather than the demo's 'last_value': frames where Pose2Sim lost a person stay empty instead
    # of repeating its last pose, so frame counts and distances only see what it reconstructed.
    "triangulation": {"fill_large_gaps_with": "nan", "make_c3d": False},
}
"""Changes to Pose2Sim's Demo_MultiPerson Config.toml (everything else is the demo's; the pose model is
the detections' layout's)."""

POSE2SIM_MODELS = {
    "blazepose33": "BLAZEPOSE",
    "body25": "BODY_25",
    "body25b": "BODY_25B",
    "coco17": "COCO_17",
    "halpe26": "HALPE_26",
}
"""Pose2Sim's skeleton for our keypoint layouts (its keypoint ids are the layout's indices); COCO-WholeBody
is not among them: we keep its 23 body points, Pose2Sim's COCO_133 reads all 133."""

# Runs inside Pose2Sim's virtual environment: argv = project directory, JSON of config overrides.
_RUNNER = """
import json, sys, time
from pathlib import Path

import rtoml
from anytree import PreOrderIter

import Pose2Sim
from Pose2Sim import Pose2Sim as steps
from Pose2Sim import skeletons

project, overrides = Path(sys.argv[1]), json.loads(sys.argv[2])
config = rtoml.load(Path(Pose2Sim.__file__).parent / "Demo_MultiPerson" / "Config.toml")
for section, values in overrides.items():
    config.setdefault(section, {}).update(values)
rtoml.dump(config, project / "Config.toml")
model = getattr(skeletons, config["pose"]["pose_model"])
ids = {node.name: node.id for node in PreOrderIter(model) if node.id is not None}
seconds = {}
for step in ("personAssociation", "triangulation"):
    start = time.perf_counter()
    getattr(steps, step)(str(project))
    seconds[step] = time.perf_counter() - start
(project / "side_by_side.json").write_text(json.dumps({"seconds": seconds, "keypoint_ids": ids}))
"""


@dataclass(frozen=True)
class Skeletons:
    """One method's persons over time, in our world frame."""

    names: tuple[str, ...]
    """Joint names (BlazePose landmark names where the joint is one)."""
    frames: tuple[Int[np.ndarray, " F"], ...]
    """Frames of each person."""
    joints: tuple[Float[np.ndarray, "F J 3"], ...]
    """Joints of each person, world metres, NaN where not reconstructed."""
    detections: tuple[Int[np.ndarray, " M"], ...]
    """Observation rows each person was reconstructed from."""
    detection_index: tuple[Int[np.ndarray, " M"], ...]
    """Index into the person's ``frames`` of each of those rows."""
    mirrored: frozenset[int] = frozenset()
    """Observation rows this method read with left and right exchanged (ours: the fusion's choice)."""


@dataclass(frozen=True)
class Pose2SimRun:
    """What one run of Pose2Sim produced and how long it took."""

    skeletons: Skeletons
    step_seconds: dict[str, float]
    """Seconds of ``personAssociation`` and ``triangulation``, timed around each call."""
    wall_seconds: float
    """Seconds of the whole subprocess, interpreter start and imports included."""
    log_lines: tuple[str, ...]
    """Pose2Sim's own timing and reprojection-error lines from its ``logs.txt``."""


def write_openpose_json(observations: Observations, num_views: int, num_frames: int, pose_dir: Path) -> None:
    """Write every detection as OpenPose JSON, one folder per view and one file per frame; each person
    entry's ``person_id`` is its observation row (Pose2Sim copies entries whole into its associated
    files, so the row tells which detections it grouped)."""
    views = tuple(f"view{view + 1:02d}" for view in range(num_views))
    o = observations
    files = openpose_files(
        o.keypoints2d, o.keypoint_confidence, o.view, o.frame, views, np.arange(num_frames)
    )
    for path, text in files.items():
        (pose_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (pose_dir / path).write_text(text)


def json_path(pose_dir: Path, view: int, frame: int) -> Path:
    """Where the OpenPose JSON of one view and frame lives (Pose2Sim sorts by the last number)."""
    return pose_dir / f"view{view + 1:02d}_json" / f"view{view + 1:02d}_{frame:06d}.json"


def read_trc(path: Path) -> tuple[list[str], Int[np.ndarray, " F"], Float[np.ndarray, "F J 3"]]:
    """Read a Pose2Sim TRC file: marker names, frames, and joints back in our z-up world (metres).

    Pose2Sim writes y-up columns ``(Y, Z, X)`` of its z-up triangulation; empty cells are NaN.
    """
    lines = path.read_text().splitlines()
    names = [name.strip() for name in lines[3].split("\t")[2::3] if name.strip()]
    rows = [line.split("\t") for line in lines[5:] if line.strip()]
    frames = np.array([int(float(row[0])) for row in rows])
    values = np.array(
        [[float(v) if v.strip() else np.nan for v in row[2 : 2 + 3 * len(names)]] for row in rows]
    )
    yup = values.reshape(len(rows), len(names), 3)
    return names, frames, yup[..., [2, 0, 1]]


def run_pose2sim(
    reconstruction: Reconstruction, python: Path, project: Path, undistort_points: bool
) -> Pose2SimRun:
    """Write a Pose2Sim project from a reconstruction's cameras and detections, run it, read it back."""
    observations = reconstruction.observations
    layouts = [k for k, (names, _) in KEYPOINT_LAYOUTS.items() if names == observations.keypoint_names]
    if not layouts or layouts[0] not in POSE2SIM_MODELS:
        raise ValueError(f"Pose2Sim is given detections in one of the layouts {', '.join(POSE2SIM_MODELS)}")
    if project.exists():
        shutil.rmtree(project)
    (project / "calibration").mkdir(parents=True)
    write_calibration(reconstruction.cameras, project / "calibration" / "Calib.toml")
    num_views = len(reconstruction.cameras)
    write_openpose_json(observations, num_views, reconstruction.num_frames, project / "pose")

    overrides = json.loads(json.dumps(POSE2SIM_OVERRIDES))  # a deep copy
    overrides["project"]["frame_rate"] = int(round(reconstruction.fps))
    overrides["pose"]["pose_model"] = POSE2SIM_MODELS[layouts[0]]
    overrides["triangulation"]["undistort_points"] = undistort_points
    start = time.perf_counter()
    log_path = project / "pose2sim_output.txt"
    with open(log_path, "w") as output:
        command = [str(python), "-c", _RUNNER, str(project.resolve()), json.dumps(overrides)]
        done = subprocess.run(command, cwd=project, stdout=output, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = "\n".join(log_path.read_text().splitlines()[-15:])
        raise SystemExit(f"Pose2Sim failed (exit {done.returncode}); the end of {log_path}:\n{tail}")
    wall = time.perf_counter() - start
    result = json.loads((project / "side_by_side.json").read_text())
    log = (project / "logs.txt").read_text().splitlines()
    log_lines = tuple(line.strip() for line in log if " took " in line or "--> Mean reprojection" in line)

    landmark = {name: observations.keypoint_names[i] for name, i in result["keypoint_ids"].items()}
    trcs = sorted((project / "pose-3d").glob("*.trc"), key=lambda p: int(re.findall(r"_P(\d+)_", p.name)[-1]))
    persons = [read_trc(path) for path in trcs]
    names = tuple(landmark[name] for name in persons[0][0]) if persons else ()
    frames = tuple(person[1] for person in persons)
    joints = tuple(person[2] for person in persons)
    rows, index = pose2sim_detections(project / "pose-associated", frames, joints, names, reconstruction)
    return Pose2SimRun(Skeletons(names, frames, joints, rows, index), result["seconds"], wall, log_lines)


def pose2sim_detections(
    associated_dir: Path,
    frames: tuple[Int[np.ndarray, " F"], ...],
    joints: tuple[Float[np.ndarray, "F J 3"], ...],
    names: tuple[str, ...],
    reconstruction: Reconstruction,
) -> tuple[tuple[Int[np.ndarray, " M"], ...], tuple[Int[np.ndarray, " M"], ...]]:
    """The observation rows Pose2Sim grouped for each of its output persons, and their frame indices.

    Its association writes, per frame, one cross-view group of detections per candidate (slot ``k`` of
    every view's associated file); its triangulation then orders candidates into persons over time
    without saving which is which. Each frame's groups go back to the persons present in that frame by a
    Hungarian assignment on mean reprojection error: the group a person was triangulated from
    reprojects onto it.
    """
    rows: list[list[int]] = [[] for _ in frames]
    index: list[list[int]] = [[] for _ in frames]
    for frame in range(reconstruction.num_frames):
        groups: dict[int, list[int]] = {}
        for view in range(len(reconstruction.cameras)):
            path = json_path(associated_dir, view, frame)
            people = json.loads(path.read_text())["people"] if path.is_file() else []
            for slot, person in enumerate(people):
                if person.get("person_id"):
                    groups.setdefault(slot, []).append(person["person_id"][0])
        present = []  # (person, index of the frame in its track)
        for person, person_frames in enumerate(frames):
            i = int(np.searchsorted(person_frames, frame))
            if i < len(person_frames) and person_frames[i] == frame and np.isfinite(joints[person][i]).any():
                present.append((person, i))
        if not present or not groups:
            continue
        cost = np.full((len(present), len(groups)), 1e9)
        for a, (person, i) in enumerate(present):
            for b, group in enumerate(groups.values()):
                group_rows = np.array(group)
                skeleton = np.broadcast_to(joints[person][i], (len(group), *joints[person][i].shape))
                errors = detection_errors_px(skeleton, names, group_rows, reconstruction, names)
                if np.isfinite(errors).any():
                    cost[a, b] = np.nanmean(errors)
        for a, b in zip(*linear_sum_assignment(cost), strict=True):
            person, i = present[a]
            group = list(groups.values())[b]
            rows[person] += group
            index[person] += [i] * len(group)
    return tuple(np.array(r, dtype=np.int64) for r in rows), tuple(np.array(i, dtype=np.int64) for i in index)


def our_skeletons(reconstruction: Reconstruction) -> Skeletons:
    """Our persons, with the observation rows our assignment gave each of them."""
    observations = reconstruction.observations
    owner = reconstruction.assignment.person_of(
        reconstruction.tracklets.observation_tracklet, observations.frame
    )
    rows, index = [], []
    for person in reconstruction.persons:
        mine = np.flatnonzero(owner == person.person_id)
        position = np.minimum(
            np.searchsorted(person.frames, observations.frame[mine]), len(person.frames) - 1
        )
        found = person.frames[position] == observations.frame[mine]
        rows.append(mine[found])
        index.append(position[found])
    names = reconstruction.persons[0].joint_names if reconstruction.persons else ()
    return Skeletons(
        tuple(names),
        tuple(p.frames for p in reconstruction.persons),
        tuple(p.joints for p in reconstruction.persons),
        tuple(rows),
        tuple(index),
        frozenset(reconstruction.diagnostics.mirrored_observations.tolist()),
    )


def detection_errors_px(
    joints: Float[np.ndarray, "M J 3"],
    names: tuple[str, ...],
    rows: Int[np.ndarray, " M"],
    reconstruction: Reconstruction,
    landmarks: tuple[str, ...],
    max_error_px: float = np.inf,
    mirrored: frozenset[int] = frozenset(),
) -> Float[np.ndarray, " M"]:
    """Mean pixel distance between each skeleton's projection and its detection (observation ``rows``).

    Counts the ``landmarks`` (names of both the skeleton and the detection layout) where the detection
    is at least ``MIN_CONFIDENCE`` sure, the 3D joint is finite and the distance is at most
    ``max_error_px``; NaN where none counts. Rows in ``mirrored`` are compared left to right.
    """
    observations, cameras = reconstruction.observations, reconstruction.cameras
    joint = [names.index(name) for name in landmarks]
    keypoint = np.array([observations.keypoint_names.index(name) for name in landmarks])
    flip = np.isin(rows, list(mirrored))[:, None]
    keypoint = np.where(flip, mirror_permutation(observations.keypoint_names)[keypoint], keypoint)  # (M, L)
    views = observations.view[rows]
    pixels = project_points(
        joints[:, joint], cameras.K[views], cameras.dist[views], cameras.R[views], cameras.t[views]
    )  # (M, L, 2)
    detected = np.take_along_axis(observations.keypoints2d[rows], keypoint[..., None], axis=1)
    confidence = np.take_along_axis(observations.keypoint_confidence[rows], keypoint, axis=1)
    confident = confidence >= MIN_CONFIDENCE
    valid = confident & np.isfinite(pixels).all(-1) & np.isfinite(detected).all(-1)
    distance = np.linalg.norm(np.nan_to_num(pixels - detected), axis=-1)
    valid &= distance <= max_error_px
    distance = np.where(valid, distance, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return distance.sum(-1) / valid.sum(-1)


def mean_reprojection_px(
    skeletons: Skeletons,
    person: int,
    reconstruction: Reconstruction,
    landmarks: tuple[str, ...],
    max_error_px: float = np.inf,
) -> float:
    """A person's reprojection error: the mean of :func:`detection_errors_px` over its detections."""
    rows, index = skeletons.detections[person], skeletons.detection_index[person]
    joints = skeletons.joints[person][index]
    errors = detection_errors_px(
        joints, skeletons.names, rows, reconstruction, landmarks, max_error_px, skeletons.mirrored
    )
    return float(np.nanmean(errors)) if np.isfinite(errors).any() else float("nan")


def joint_distances_m(ours: Skeletons, p: int, theirs: Skeletons, q: int) -> Float[np.ndarray, " S"]:
    """3D distances between two persons' same-named joints over their common frames (finite only)."""
    names = [name for name in ours.names if name in theirs.names]
    a = ours.joints[p][:, [ours.names.index(n) for n in names]]
    b = theirs.joints[q][:, [theirs.names.index(n) for n in names]]
    _, ia, ib = np.intersect1d(ours.frames[p], theirs.frames[q], return_indices=True)
    distance = np.linalg.norm(a[ia] - b[ib], axis=-1).ravel()
    return distance[np.isfinite(distance)]


def match_persons(ours: Skeletons, theirs: Skeletons) -> list[tuple[int, int]]:
    """Pairs (our person, Pose2Sim person), Hungarian on mean common-joint distance over common frames.

    Persons that share no frame with a finite joint are never paired.
    """
    cost = np.full((len(ours.frames), len(theirs.frames)), np.inf)
    for p in range(len(ours.frames)):
        for q in range(len(theirs.frames)):
            distance = joint_distances_m(ours, p, theirs, q)
            if distance.size:
                cost[p, q] = distance.mean()
    rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e9))
    return [(int(p), int(q)) for p, q in zip(rows, cols, strict=True) if np.isfinite(cost[p, q])]


def frames_reconstructed(skeletons: Skeletons, person: int) -> int:
    """Frames in which a person has at least one finite joint."""
    return int(np.isfinite(skeletons.joints[person]).all(-1).any(-1).sum())


def print_table(reconstruction: Reconstruction, ours: Skeletons, run: Pose2SimRun) -> None:
    """Print the side-by-side summary: totals, then one line per matched or unmatched person."""
    theirs = run.skeletons
    landmarks = tuple(name for name in theirs.names if name in ours.names)
    stages = reconstruction.diagnostics.stage_seconds
    pairs = match_persons(ours, theirs)

    def cells(skeletons: Skeletons, person: int | None) -> list[str]:
        """Frames, reprojection error over all keypoints and over inliers, of one side's person."""
        if person is None:
            return ["-", "-", "-"]
        every = mean_reprojection_px(skeletons, person, reconstruction, landmarks)
        inliers = mean_reprojection_px(skeletons, person, reconstruction, landmarks, INLIER_PX)
        return [str(frames_reconstructed(skeletons, person)), f"{every:.1f}", f"{inliers:.1f}"]

    ours_seconds = sum(stages.get(stage, 0.0) for stage in OUR_ASSOCIATION_STAGES)
    print(f"{'':28}{'CHROMM Studio':>15}{'Pose2Sim':>10}")
    print(f"{'persons found':28}{len(ours.frames):>15}{len(theirs.frames):>10}")
    print(f"{'seconds, association to 3D':28}{ours_seconds:>15.2f}{sum(run.step_seconds.values()):>10.2f}")
    print(f"{'seconds, whole run':28}{sum(stages.values()):>15.2f}{run.wall_seconds:>10.2f}")
    print("  ours by stage: " + ", ".join(f"{stage} {s:.2f}" for stage, s in stages.items()))
    print("  Pose2Sim: " + ", ".join(f"{step} {s:.2f}" for step, s in run.step_seconds.items()))
    print("  (its whole run is the subprocess: interpreter start, imports, both steps)\n")
    groups = ["frames", "px, all", f"px, <={INLIER_PX:.0f}", "3D dist. mm"]
    print(f"{'person':>12}" + "".join(f"{group:>{15 + (k == 3)}}" for k, group in enumerate(groups)))
    print(f"{'ours':>6}{'P2S':>6}" + f"{'ours':>9}{'P2S':>6}" * 3 + f"{'mean':>9}{'median':>7}")
    unmatched = [(p, None) for p in range(len(ours.frames)) if p not in {a for a, _ in pairs}]
    unmatched += [(None, q) for q in range(len(theirs.frames)) if q not in {b for _, b in pairs}]
    distances = []
    for p, q in pairs + unmatched:
        ours_cells, their_cells = cells(ours, p), cells(theirs, q)
        line = f"{'-' if p is None else p:>6}{'-' if q is None else q:>6}"
        for mine, other in zip(ours_cells, their_cells, strict=True):
            line += f"{mine:>9}{other:>6}"
        if p is not None and q is not None:
            distance = joint_distances_m(ours, p, theirs, q) * 1000
            distances.append(distance)
            line += f"{np.mean(distance):>9.0f}{np.median(distance):>7.0f}"
        print(line)
    if distances:
        everything = np.concatenate(distances)
        summary = f"mean {everything.mean():.0f} mm, median {np.median(everything):.0f} mm"
        print(f"\nmatched persons, 3D distance: {summary} over {everything.size} joint samples")
    common = f"the {len(landmarks)} common BlazePose landmarks with confidence >= {MIN_CONFIDENCE}"
    print(f"reprojection: mean over each person's detections (those its method grouped), {common}")
    print(f"our scale factor {reconstruction.diagnostics.scale_factor:.4f}; Pose2Sim got our saved cameras")
    print("Pose2Sim's log:")
    for line in run.log_lines:
        print(f"  {line}")


def main(
    reconstruction: Path,
    pose2sim_python: Path = Path("/opt/pose2sim-venv/bin/python"),
    workdir: Path = Path("/tmp/pose2sim_side_by_side"),
    undistort_points: bool = False,
) -> None:
    """Run Pose2Sim on a saved reconstruction's detections and print both side by side.

    Args:
        reconstruction: Directory written by ``python -m studio reconstruct``.
        pose2sim_python: Python of the virtual environment where ``pose2sim`` is installed.
        workdir: Where the Pose2Sim project is written (its ``pose2sim_project`` folder is replaced);
            it must not hold a ``Config.toml`` of its own (Pose2Sim would merge it in).
        undistort_points: Let Pose2Sim undistort keypoints (its demo configuration does not).
    """
    recon = Reconstruction.load(reconstruction)
    run = run_pose2sim(recon, pose2sim_python, workdir / "pose2sim_project", undistort_points)
    print_table(recon, our_skeletons(recon), run)


if __name__ == "__main__":
    tyro.cli(main)
