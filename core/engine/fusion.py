"""Multi-view fusion: the per-view estimates of one person at one frame → one world-frame body.

View-invariant quantities (body pose, shape) are the same whatever the camera, so they are averaged
with confidence weights (body pose per joint on the rotation manifold, by quaternion averaging).
View-dependent ones are first mapped to the world frame: the global orientation through each camera's
rotation, then quaternion-averaged; the position by triangulating the views' pelvis rays with robust
rejection of an outlier view (or, for the paper's "average only" ablation, by averaging the views'
monocular position estimates). A person seen by a single view keeps its monocular position.

Observations without a body model (``bare_keypoints``, e.g. BlazePose's landmarks) get their 3D
joints by triangulating every named keypoint over the views that see it confidently, with the same
robust rejection; a keypoint seen confidently by fewer than two views is placed on its best view's ray
at the depth of the person's pelvis. Each joint keeps how many views it stands on (``joint_views``);
a limb joint whose bone from its parent is far longer or shorter than that bone's median over the
person's track (a chimera: another person's limb, seen alike by several views) stands on none, and
so does every joint below it on the limb.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from jaxtyping import Bool, Float, Int
from scipy.spatial.transform import Rotation

from core.engine.association import world_positions
from core.geometry import (
    average_quaternions_xyzw,
    pixel_rays,
    project_points,
    triangulate_rays,
    triangulate_rays_robust,
)
from core.skeleton import JOINT_NAMES, forward_kinematics
from core.types import CameraRig, Observations, PersonTrack


@dataclass(frozen=True)
class FusionConfig:
    """How the views of one person are fused."""

    triangulate: bool = True
    """Position by pelvis-ray triangulation (True) or by averaging monocular estimates (False: ablation)."""
    outlier_distance: float = 0.3
    """Reject a view whose pelvis ray passes farther than this from the triangulated point (scene units)."""
    keypoint_outlier_distance: float = 0.1
    """The same for keypoint rays when joints are triangulated (scene units)."""
    min_keypoint_confidence: float = 0.5
    """Keypoints less confident than this take no part in triangulation or in reprojection errors."""
    keypoint_max_error_px: float = 15.0
    """After robust triangulation, a view's keypoint reprojecting farther than this (pixels) is an outlier:
    the keypoint is re-triangulated without it and it is left out of reprojection errors (Pose2Sim's
    default threshold)."""
    limb_length_tolerance: float = 0.5
    """A triangulated limb bone longer than (1 + this) or shorter than (1 − this) times its median
    length over the person's track marks its lower joint, and the joints below it, as unsupported."""


@dataclass(frozen=True)
class PersonCells:
    """Dense index of which observation sees person p at frame t in view v (-1: none)."""

    index: Int[np.ndarray, "P T V"]

    @staticmethod
    def build(
        observations: Observations,
        person: Int[np.ndarray, " N"],
        num_persons: int,
        num_frames: int,
        num_views: int,
    ) -> PersonCells:
        """If an annotator's edit puts two observations in one cell, the higher-scoring one is kept."""
        index = np.full((num_persons, num_frames, num_views), -1, dtype=np.int64)
        valid = np.flatnonzero(person >= 0)
        valid = valid[np.argsort(observations.score[valid], kind="stable")]  # best written last
        index[person[valid], observations.frame[valid], observations.view[valid]] = valid
        return PersonCells(index)


def fuse(
    observations: Observations,
    person: Int[np.ndarray, " N"],
    cameras: CameraRig,
    num_frames: int,
    config: FusionConfig,
    person_ids: Int[np.ndarray, " P"] | None = None,
) -> tuple[PersonTrack, ...]:
    """Fuse every person's observations (``person[i]`` = person of observation i, -1 = none).

    Only the persons listed in ``person_ids`` (default: all) are fused, so an identity edit re-fuses
    the persons it touched and nothing else.
    """
    num_persons = int(person.max()) + 1 if person.size else 0
    if person_ids is None:
        person_ids = np.arange(num_persons)
    person = np.where(np.isin(person, person_ids), person, -1)
    cells = PersonCells.build(observations, person, num_persons, num_frames, len(cameras)).index
    p_idx, t_idx = np.nonzero((cells >= 0).any(axis=-1))  # (C,) occupied (person, frame) cells
    obs = cells[p_idx, t_idx]  # (C, V)
    seen = obs >= 0
    safe = np.where(seen, obs, 0)
    weight = np.where(seen, np.maximum(observations.score[safe], 1e-6), 0.0)  # a 0 score still counts

    # Per-observation quantities first (only the observations used), then gathered into (C, V) cells.
    used = np.unique(obs[seen])
    row = np.zeros(len(observations), dtype=np.int64)
    row[used] = np.arange(used.size)
    cell_row = row[safe]  # (C, V) → row of ``used``
    used_obs = observations.take(used)

    body_quats = Rotation.from_rotvec(used_obs.body_pose.reshape(-1, 3)).as_quat().reshape(-1, 21, 4)
    body_quats = body_quats[cell_row].swapaxes(1, 2)  # (C, 21, V, 4)
    body_pose = (
        Rotation.from_quat(average_quaternions_xyzw(body_quats, weight[:, None, :]).reshape(-1, 4))
        .as_rotvec()
        .reshape(-1, 21, 3)
    )

    R_world_cam = np.swapaxes(cameras.R, -1, -2)[used_obs.view]
    orient_world = Rotation.from_matrix(R_world_cam) * Rotation.from_rotvec(used_obs.global_orient_cam)
    global_orient = Rotation.from_quat(
        average_quaternions_xyzw(orient_world.as_quat()[cell_row], weight)
    ).as_rotvec()

    shape = _person_shapes(observations, cells, num_persons)

    monocular = world_positions(used_obs, cameras)[cell_row]  # (C, V, 3)
    transl = np.einsum("cv,cvk->ck", weight, monocular) / weight.sum(axis=1, keepdims=True)
    inlier = seen
    if config.triangulate and len(cameras) > 1:
        view = used_obs.view
        origins, directions = pixel_rays(
            used_obs.pelvis2d[:, None], cameras.K[view], cameras.dist[view], cameras.R[view], cameras.t[view]
        )
        triangulated, inlier = triangulate_rays_robust(
            origins[cell_row, 0], directions[cell_row, 0], weight, threshold=config.outlier_distance
        )
        inlier &= seen
        ok = np.isfinite(triangulated).all(axis=-1)
        transl = np.where(ok[:, None], triangulated, transl)

    bounds = np.searchsorted(p_idx, person_ids, side="left"), np.searchsorted(p_idx, person_ids, side="right")
    if observations.bare_keypoints:
        joint_names = (*observations.keypoint_names, "head", "pelvis")
        joints, joint_views = _triangulate_keypoints(used_obs, cell_row, weight, transl, cameras, config)
        joint_views[:, -1] = inlier.sum(axis=1)
        joint_views = _drop_implausible_limbs(joints, joint_views, joint_names, bounds, config)
    else:
        joint_names = JOINT_NAMES
        joints = forward_kinematics(global_orient, body_pose, shape[p_idx], transl)
        joint_views = np.repeat(inlier.sum(axis=1)[:, None], len(joint_names), axis=1)
    confidence = weight.sum(axis=1) / np.maximum(seen.sum(axis=1), 1)
    empty_residuals = np.full(seen.shape, np.nan)
    return tuple(
        PersonTrack(
            person_id=int(pid),
            frames=t_idx[a:b],
            global_orient=global_orient[a:b],
            transl=transl[a:b],
            body_pose=body_pose[a:b],
            shape=shape[pid],
            joints=joints[a:b],
            joint_views=joint_views[a:b],
            residuals_px=empty_residuals[a:b],
            confidence=confidence[a:b],
            views=inlier[a:b],
            shape_model=observations.shape_model,
            joint_names=joint_names,
        )
        for pid, a, b in zip(person_ids, *bounds, strict=True)
        if b > a
    )


def _triangulate_keypoints(
    used_obs: Observations,
    cell_row: Int[np.ndarray, "C V"],
    weight: Float[np.ndarray, "C V"],
    transl: Float[np.ndarray, "C 3"],
    cameras: CameraRig,
    config: FusionConfig,
) -> tuple[Float[np.ndarray, "C K+2 3"], Int[np.ndarray, "C K+2"]]:
    """World joints of every cell (the keypoints, the head point and the pelvis, ``transl``) and the
    number of views each keypoint stands on (1: placed on one view's ray; 0: no confident view)."""
    points = np.concatenate([used_obs.keypoints2d, used_obs.head2d[:, None]], axis=1)  # (M, K+1, 2)
    confidence = np.concatenate([used_obs.keypoint_confidence, np.ones((len(used_obs), 1))], axis=1)
    view = used_obs.view
    origins, directions = pixel_rays(
        points, cameras.K[view], cameras.dist[view], cameras.R[view], cameras.t[view]
    )
    origins, directions = origins[cell_row].swapaxes(1, 2), directions[cell_row].swapaxes(1, 2)  # (C,K+1,V,3)
    confidence = confidence[cell_row].swapaxes(1, 2)  # (C, K+1, V)
    ray_weight = weight[:, None, :] * np.where(confidence >= config.min_keypoint_confidence, confidence, 0.0)
    joints, _ = triangulate_rays_robust(
        origins, directions, ray_weight, threshold=config.keypoint_outlier_distance
    )
    # Views whose keypoint reprojects beyond the pixel threshold are dropped and the rest re-solved.
    detected = points[cell_row].swapaxes(1, 2)  # (C, K+1, V, 2)
    projected = project_points(joints[:, None], cameras.K, cameras.dist, cameras.R, cameras.t).swapaxes(1, 2)
    close = np.linalg.norm(projected - detected, axis=-1) <= config.keypoint_max_error_px
    kept = np.where(close, ray_weight, 0.0)
    enough = (kept > 0).sum(axis=-1) >= 2
    joints = np.where(enough[..., None], triangulate_rays(origins, directions, kept), joints)
    single = np.minimum((ray_weight > 0).sum(axis=-1), 1)  # a confident view, or none
    views = np.where(enough, (kept > 0).sum(axis=-1), single)
    # Fallback: the most confident view's ray, at the depth of the pelvis in that view.
    best = np.argmax(weight[:, None, :] * (confidence + 1e-6), axis=-1)  # (C, K+1)
    best_view = view[np.take_along_axis(cell_row, best, axis=1)]  # (C, K+1)
    R, t = cameras.R[best_view], cameras.t[best_view]
    pelvis_depth = np.einsum("ckij,cj->cki", R, transl)[..., 2] + t[..., 2]
    origin = np.take_along_axis(origins, best[..., None, None], axis=2)[:, :, 0]
    direction = np.take_along_axis(directions, best[..., None, None], axis=2)[:, :, 0]
    along = pelvis_depth / np.einsum("cki,cki->ck", R[..., 2, :], direction)
    fallback = origin + along[..., None] * direction
    triangulated = np.isfinite(joints).all(axis=-1)
    joints = np.where(triangulated[..., None], joints, fallback)
    views = np.where(triangulated, views, single)
    views = np.concatenate([views, np.zeros_like(views[:, :1])], axis=1)
    return np.concatenate([joints, transl[:, None]], axis=1), views


LIMB_BONES = tuple(
    (f"{side}_{parent}", f"{side}_{child}")
    for side in ("left", "right")
    for parent, child in (
        ("shoulder", "elbow"),
        ("elbow", "wrist"),
        ("hip", "knee"),
        ("knee", "ankle"),
        ("ankle", "heel"),
        ("ankle", "foot_index"),
    )
)
"""Limb bones (upper joint, lower joint), each after the bone that ends at its upper joint."""


def _drop_implausible_limbs(
    joints: Float[np.ndarray, "C J 3"],
    views: Int[np.ndarray, "C J"],
    names: tuple[str, ...],
    bounds: tuple[Int[np.ndarray, " P"], Int[np.ndarray, " P"]],
    config: FusionConfig,
) -> Int[np.ndarray, "C J"]:
    """``views`` with 0 for the lower joint of every limb bone whose length is off its person's median
    (over frames where both ends are triangulated) by more than the tolerance, and for the joints below."""
    bones = [(names.index(a), names.index(b)) for a, b in LIMB_BONES if a in names and b in names]
    if not bones:
        return views
    upper, lower = map(np.array, zip(*bones, strict=True))
    length = np.linalg.norm(joints[:, lower] - joints[:, upper], axis=-1)  # (C, B)
    measured = np.where((views[:, upper] >= 2) & (views[:, lower] >= 2), length, np.nan)
    median = np.full_like(length, np.nan)
    for a, b in zip(*bounds, strict=True):  # one median per person and bone
        with warnings.catch_warnings():  # a bone never triangulated has no median: not judged
            warnings.simplefilter("ignore", RuntimeWarning)
            median[a:b] = np.nanmedian(measured[a:b], axis=0)
    implausible = np.abs(length / median - 1) > config.limb_length_tolerance
    dropped = np.zeros(views.shape, dtype=bool)
    for k, (a, b) in enumerate(bones):  # parents first: a dropped upper joint drops the lower one
        dropped[:, b] |= implausible[:, k] | dropped[:, a]
    return np.where(dropped, 0, views)


def _person_shapes(observations: Observations, cells, num_persons: int) -> Float[np.ndarray, "P B"]:
    """Shape is constant over time too: one confidence-weighted mean over a person's views and frames."""
    seen = cells >= 0
    safe = np.where(seen, cells, 0)
    weight = np.where(seen, observations.score[safe], 0.0)  # (P, T, V)
    total = np.einsum("ptv,ptvb->pb", weight, observations.shape[safe])
    return total / np.maximum(weight.sum(axis=(1, 2)), 1e-12)[:, None]


def keypoint_errors(
    joints: Float[np.ndarray, "F J 3"],
    joint_names: tuple[str, ...],
    observations: Observations,
    cells: Int[np.ndarray, "F V"],
    cameras: CameraRig,
    min_confidence: float = 0.0,
) -> tuple[Float[np.ndarray, "F V K"], Bool[np.ndarray, "F V K"], tuple[str, ...]]:
    """Pixel distance between the joints projected into every view and that view's 2D keypoints of the
    same name (``cells``: the observation of each frame and view, -1 where none), whether each keypoint
    counts (seen and more confident than ``min_confidence``), and the names compared."""
    index = {name: j for j, name in enumerate(joint_names)}
    pairs = [(k, index[n]) for k, n in enumerate(observations.keypoint_names) if n in index]
    if not pairs:
        return np.zeros((*cells.shape, 0)), np.zeros((*cells.shape, 0), dtype=bool), ()
    kp_index, joint_index = map(np.array, zip(*pairs, strict=True))
    seen = cells >= 0
    safe = np.where(seen, cells, 0)
    projected = project_points(joints[:, None, joint_index], cameras.K, cameras.dist, cameras.R, cameras.t)
    error = np.linalg.norm(projected - observations.keypoints2d[safe][:, :, kp_index], axis=-1)
    counts = seen[..., None] & (observations.keypoint_confidence[safe][:, :, kp_index] > min_confidence)
    return error, counts & np.isfinite(error), tuple(joint_names[j] for j in joint_index)


def reprojection_residuals(
    track: PersonTrack,
    observations: Observations,
    cells: Int[np.ndarray, "T V"],
    cameras: CameraRig,
    min_confidence: float = 0.0,
    max_error_px: float = np.inf,
) -> Float[np.ndarray, "F V"]:
    """Mean pixel distance between the track's projected joints and each view's 2D keypoints.

    Keypoints are matched to joints by name; keypoints whose confidence is not above ``min_confidence``,
    outliers farther than ``max_error_px`` and joints that stand on no view (placed, not measured) are
    ignored. NaN where a view did not see the person.
    """
    residuals = np.full((track.frames.shape[0], len(cameras)), np.nan)
    if track.frames.size == 0:
        return residuals
    obs = cells[track.frames]
    error, counts, names = keypoint_errors(
        track.joints, track.joint_names, observations, obs, cameras, min_confidence
    )
    measured = track.joint_views[:, [track.joint_names.index(n) for n in names]] > 0  # (F, K)
    counts &= (error <= max_error_px) & measured[:, None, :]
    with np.errstate(invalid="ignore"):
        mean = np.where(counts, error, 0.0).sum(-1) / counts.sum(-1)
    seen = obs >= 0
    residuals[seen] = mean[seen]
    return residuals
