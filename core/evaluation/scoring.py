"""Score a reconstruction of a synthetic scene against its ground truth.

Predicted persons are matched to true people through the observations they were built from (a person
is whoever most of its observations really are), never through the 3D result being scored, so that an
association error shows up as an error rather than being hidden by a lucky match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int
from scipy.optimize import linear_sum_assignment
from scipy.spatial.transform import Rotation

from core.engine.association import world_positions
from core.evaluation.metrics import (
    association_precision_recall,
    ga_mpjpe,
    id_switches,
    mpjpe,
    pa_mpjpe,
    w_mpjpe,
    wa_mpjpe,
)
from core.evaluation.synthetic import SyntheticScene
from core.reconstruction import Reconstruction
from core.skeleton import forward_kinematics
from core.types import Observations, Tracklets


@dataclass(frozen=True)
class Evaluation:
    """Ground-truth metrics of one reconstruction (errors in millimetres)."""

    association_precision: float
    """Share of the observations given a person that are with their true person (persons matched to
    true identities one to one by shared observations): a tracklet cut where it swapped people counts
    piece by piece."""
    association_recall: float
    id_switches: int
    """Changes of predicted person along each true person's observations, view by view (MOT's count,
    on the reconstruction's persons rather than on the tracker's tracklets)."""
    id_switches_per_100_frames: float
    """``id_switches`` per true person and 100 frames, summed over the views."""
    mpjpe_mm: float
    pa_mpjpe_mm: float
    w_mpjpe_mm: float
    wa_mpjpe_mm: float
    ga_mpjpe_mm: float
    single_view_wa_mpjpe_mm: float
    """WA-MPJPE of the best single view's monocular estimates (same scale correction applied)."""
    scale_rel_error: float
    """|recovered scale × true scene scale − 1|."""
    persons_found: int
    persons_true: int


def tracklet_identity(
    tracklets: Tracklets, observation_identity: Int[np.ndarray, " N"]
) -> Int[np.ndarray, " K"]:
    """True identity of each tracklet: the one most of its observations have (-1: false positive)."""
    keep = tracklets.observation_tracklet >= 0
    K = len(tracklets)
    if K == 0:
        return np.zeros(0, dtype=np.int64)
    identities = observation_identity[keep] + 1  # shift so that -1 (false positive) counts too
    votes = np.zeros((K, int(observation_identity.max(initial=-1)) + 2))
    np.add.at(votes, (tracklets.observation_tracklet[keep], identities), 1)
    return votes.argmax(axis=1) - 1


def match_persons(
    person_of_observation: Int[np.ndarray, " N"], observation_identity: Int[np.ndarray, " N"], num_true: int
) -> Int[np.ndarray, " P"]:
    """True identity matched one-to-one to each predicted person by shared observations (-1: none)."""
    num_pred = int(person_of_observation.max(initial=-1)) + 1
    both = (person_of_observation >= 0) & (observation_identity >= 0)
    overlap = np.zeros((num_pred, num_true))
    np.add.at(overlap, (person_of_observation[both], observation_identity[both]), 1)
    match = np.full(num_pred, -1)
    rows, cols = linear_sum_assignment(-overlap)
    shared = overlap[rows, cols] > 0
    match[rows[shared]] = cols[shared]
    return match


def evaluate(reconstruction: Reconstruction, scene: SyntheticScene) -> Evaluation:
    """All benchmark metrics of ``reconstruction`` against the scene it was made from."""
    obs, identity = reconstruction.observations, scene.observation_identity
    if len(obs) != identity.shape[0]:
        raise ValueError("the reconstruction dropped observations; evaluate it on a scene without NaNs")
    tracklets = reconstruction.tracklets
    P_true, T = scene.joints.shape[:2]
    person = reconstruction.assignment.person_of(tracklets.observation_tracklet, obs.frame)
    precision, recall = association_precision_recall(person, identity)
    switches = sum(
        id_switches(obs.frame[obs.view == v], identity[obs.view == v], person[obs.view == v])
        for v in range(len(reconstruction.cameras))
    )
    match = match_persons(person, identity, P_true)
    pred = np.full((T, P_true, 22, 3), np.nan)
    for track in reconstruction.persons:
        if match[track.person_id] >= 0:
            pred[track.frames, match[track.person_id]] = track.joints
    gt = np.swapaxes(scene.joints, 0, 1)  # (T, P, J, 3)
    valid = np.isfinite(pred).all(axis=(-1, -2))
    errors = dict(
        mpjpe_mm=_mean(mpjpe(pred, gt)[valid]),
        pa_mpjpe_mm=_mean(pa_mpjpe(pred[valid], gt[valid])),
        w_mpjpe_mm=_per_person(w_mpjpe, pred, gt, valid),
        wa_mpjpe_mm=_per_person(wa_mpjpe, pred, gt, valid),
        ga_mpjpe_mm=1000 * ga_mpjpe(np.nan_to_num(pred), gt, valid) if valid.any() else float("nan"),
    )
    return Evaluation(
        association_precision=precision,
        association_recall=recall,
        id_switches=int(switches),
        id_switches_per_100_frames=100 * switches / max(P_true * T, 1),
        single_view_wa_mpjpe_mm=single_view_wa_mpjpe(scene, reconstruction.diagnostics.scale_factor),
        scale_rel_error=abs(reconstruction.diagnostics.scale_factor * scene.config.scale_error - 1.0),
        persons_found=len(reconstruction.persons),
        persons_true=P_true,
        **errors,
    )


def _mean(errors: Float[np.ndarray, " M"]) -> float:
    return float(1000 * errors.mean()) if errors.size else float("nan")


def _per_person(metric, pred, gt, valid) -> float:
    """Frame-weighted mean over true people of a per-trajectory metric, in mm."""
    counts = valid.sum(axis=0)
    values = [metric(pred[:, p], gt[:, p], valid[:, p]) for p in np.flatnonzero(counts)]
    return float(1000 * np.average(values, weights=counts[counts > 0])) if values else float("nan")


def monocular_joints(observations: Observations, reconstruction_cameras, scale_factor: float) -> np.ndarray:
    """Each observation alone as a world-frame body: what a monocular method would report."""
    position = world_positions(observations, reconstruction_cameras) * scale_factor
    R_world_cam = np.swapaxes(reconstruction_cameras.R[observations.view], -1, -2)
    orient = (
        Rotation.from_matrix(R_world_cam) * Rotation.from_rotvec(observations.global_orient_cam)
    ).as_rotvec()
    return forward_kinematics(orient, observations.body_pose, observations.shape, position)


def single_view_wa_mpjpe(scene: SyntheticScene, scale_factor: float) -> float:
    """WA-MPJPE (mm) of the best view, using that view's observations of the true people alone."""
    obs, identity = scene.observations, scene.observation_identity
    joints = monocular_joints(obs, scene.cameras, scale_factor)
    P, T = scene.joints.shape[:2]
    best = float("inf")
    for view in range(len(scene.cameras)):
        rows = np.flatnonzero((obs.view == view) & (identity >= 0))
        pred = np.full((T, P, 22, 3), np.nan)
        pred[obs.frame[rows], identity[rows]] = joints[rows]
        valid = np.isfinite(pred).all(axis=(-1, -2))
        if valid.any():
            best = min(best, _per_person(wa_mpjpe, pred, np.swapaxes(scene.joints, 0, 1), valid))
    return best if np.isfinite(best) else float("nan")
