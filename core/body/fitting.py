"""Fit a body model to a person's fused 3D keypoints: pose per frame, one shape for the whole track.

All frames of a person are one batched problem (one model call per iteration for all frames), solved
by Adam on SMPL-X-layout parameters:

    Σ_f,j c_fj ‖J_model(f, j) + G_a(j)(f) o_j − J_target(f, j)‖²   data (weights 0 where unseen)
  + w_smooth Σ_f ‖θ_f − θ_f−1‖² over consecutive frames            temporal (pose, orientation, position)
  + w_pose ‖θ‖² + w_shape F ‖β − β_neutral‖² + w_offset F Σ_j ‖o_j‖²   priors

where ``o_j`` is a per-track offset of target j from the model's point, fixed in the frame of its
anchor joint a(j) (``offset_anchors``: the bone it hangs from), whose world rotation is ``G_a(j)``: a
detector's keypoints are not the model's joints (BlazePose's hips sit about 4 cm off the skeleton's),
and a constant offset in the bone's frame absorbs that without bending the pose. Offsets are fitted in
the second stage only, once the shape is set, so that they cannot trade off against the shape.

It runs in two stages (``FitConfig``): shape and pose on ``shape_frames`` key frames spread over the
track, at least one every ``key_frame_spacing`` frames (consecutive key frames only are smoothed), then
every frame's pose and position with the shape kept, starting from the key frames' poses slerped in
between (from the key frames that see every target, so that an occlusion is bridged by the poses around
it). The model's gradient with respect to the shape is what makes a step costly, so the shape is fitted on
the few key frames only. The step size decays exponentially from ``learning_rate``
(``refine_learning_rate`` in the second stage) to ``final_learning_rate``; a stage stops early once its
loss changes by less than ``tolerance`` (a fraction) over ``patience`` steps. A model may carry
``shape_bounds`` (lower, upper; scalars or ``(S,)``): the shape is then clamped into them after each step
(Anny's phenotypes lie in [0, 1] and their gradient vanishes outside).

Initialisation: each frame's orientation from its hips (left) and hip-to-shoulder direction (up), its
limbs (upper and lower arms and legs) swung from the model's zero pose onto the target bones
(``_limb_swings``, no twist), and its position putting the weighted joint centroid on the target's, so a
frame never waits for its predecessor. A joint unseen in some frames (legs occluded) is carried by the
smoothness term and the prior from the frames around it. The model is called for joints only.

Warm start (``WarmStart``, after an identity edit): the shape and every frame's pose of a previous fit
are taken as they are and only the second stage runs, for ``warm_iterations`` steps at most.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import roma
import torch
from jaxtyping import Float, Int

from core.body.config import FitConfig
from core.body.model import BODY_JOINTS, BodyModel, BodyParameters
from core.body.rotations import chain_rotations, swing_rotation
from core.skeleton import JOINT_NAMES as SKELETON_JOINTS
from core.skeleton import PARENTS as SKELETON_PARENTS
from core.skeleton import body_frame


@dataclass(frozen=True)
class FitResult:
    """One person's fitted track (numpy, world frame)."""

    global_orient: Float[np.ndarray, "F 3"]
    transl: Float[np.ndarray, "F 3"]
    body_pose: Float[np.ndarray, "F 21 3"]
    shape: Float[np.ndarray, " S"]
    joints: Float[np.ndarray, "F J 3"]
    """The model's joints, named by the model."""
    keypoints: Float[np.ndarray, "F K 3"]
    """The model's points matched to the targets (``keypoint_names``), offsets included."""
    keypoint_names: tuple[str, ...]
    """The targets that are model joints, in the order of ``keypoints``."""
    offsets: Float[np.ndarray, "K 3"]
    """Per-keypoint offsets from the model's joint, canonical frame of its ``offset_anchors`` joint."""
    error_m: Float[np.ndarray, " F"]
    """Mean distance between fitted and target joints per frame (seen joints only); NaN if none."""
    iterations: int = 0
    """Adam steps taken."""


def _orientation_from_targets(
    targets: Float[np.ndarray, "F J 3"], names: tuple[str, ...]
) -> Float[np.ndarray, "F 3"]:
    """Canonical-body-to-world rotations from the hips (left) and hip-to-shoulder direction (up)."""
    needed = ("left_hip", "right_hip", "left_shoulder", "right_shoulder")
    if not all(n in names for n in needed):
        return np.zeros((targets.shape[0], 3))
    matrix = body_frame(*(targets[:, names.index(n)] for n in needed))
    valid = np.isfinite(matrix).all(axis=(1, 2)) & (np.abs(np.linalg.det(matrix) - 1) < 1e-3)
    rotvec = roma.rotmat_to_rotvec(torch.as_tensor(np.where(valid[:, None, None], matrix, np.eye(3))))
    return rotvec.numpy()


_LIMBS = (
    ("left_hip", "left_knee"),
    ("right_hip", "right_knee"),
    ("left_knee", "left_ankle"),
    ("right_knee", "right_ankle"),
    ("left_shoulder", "left_elbow"),
    ("right_shoulder", "right_elbow"),
    ("left_elbow", "left_wrist"),
    ("right_elbow", "right_wrist"),
)
"""Limb bones (joint, child) whose swing the initial pose takes from the targets."""


def _limb_swings(
    rest: dict[str, Float[torch.Tensor, " 3"]],
    targets: dict[str, Float[torch.Tensor, "F 3"]],
    seen: dict[str, torch.Tensor],
    orient: Float[torch.Tensor, "F 3"],
) -> Float[torch.Tensor, "F 21 3"]:
    """A body pose pointing each limb bone of ``_LIMBS`` along its targets, parents first (no twist).

    Args:
        rest: the model's joints in the zero pose (canonical frame), by name.
        targets: target joints (world frame), by name.
        seen: per-frame bools, by name: whether the target is there.
        orient: the global orientation (canonical to world) the pose is relative to.
    """
    frames = orient.shape[0]
    eye = torch.eye(3, dtype=orient.dtype).expand(frames, 3, 3)
    world = [roma.rotvec_to_rotmat(orient)]
    local = torch.zeros(frames, BODY_JOINTS, 3, dtype=orient.dtype)
    children = dict(_LIMBS)
    for j in range(1, BODY_JOINTS + 1):
        parent = world[SKELETON_PARENTS[j]]
        name = SKELETON_JOINTS[j]
        child = children.get(name)
        rotation = eye
        if child is not None and all(n in rest and n in targets for n in (name, child)):
            toward = (parent.transpose(-1, -2) @ (targets[child] - targets[name])[..., None])[..., 0]
            rotation = swing_rotation((rest[child] - rest[name]).expand_as(toward), toward)
            rotation = torch.where((seen[name] & seen[child])[:, None, None], rotation, eye)
            local[:, j - 1] = roma.rotmat_to_rotvec(rotation)
        world.append(parent @ rotation)
    return local


_FACE = ("nose", "eye", "ear", "mouth")
_FOOT = ("heel", "foot_index")


def offset_anchors(names: tuple[str, ...] | list[str]) -> Int[np.ndarray, " J"]:
    """The skeleton joint whose rotation carries each named point's offset: a skeleton joint's parent
    (the bone that ends at it), the head for face points, the ankle of the same side for foot points."""
    anchors = []
    for name in names:
        if name in SKELETON_JOINTS:
            anchors.append(max(int(SKELETON_PARENTS[SKELETON_JOINTS.index(name)]), 0))
        elif any(part in name for part in _FACE):
            anchors.append(SKELETON_JOINTS.index("head"))
        elif any(part in name for part in _FOOT):
            anchors.append(SKELETON_JOINTS.index(f"{name.split('_')[0]}_ankle"))
        else:
            anchors.append(0)
    return np.asarray(anchors, dtype=np.int64)


def offset_points(
    orient: Float[torch.Tensor, "F 3"],
    body_pose: Float[torch.Tensor, "F 21 3"],
    anchor: Int[torch.Tensor, " K"],
    offsets: Float[torch.Tensor, "K 3"],
) -> Float[torch.Tensor, "F K 3"]:
    """Per-frame world displacement of each offset, turned with its anchor joint's world rotation."""
    local = roma.rotvec_to_rotmat(torch.cat([orient[:, None], body_pose], 1))
    return (chain_rotations(local)[:, anchor] @ offsets[..., None])[..., 0]


def _consecutive_difference(values: torch.Tensor, consecutive: torch.Tensor) -> torch.Tensor:
    """Sum of squared changes between consecutive frames (pairs across a gap do not count)."""
    return ((values[1:] - values[:-1]) ** 2).flatten(1).sum(-1)[consecutive].sum()


def _weighted_centroid(joints: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (joints * weight[..., None]).sum(1) / weight.sum(1, keepdim=True).clamp_min(1e-9)


def _keyframes(count: int, wanted: int) -> Int[np.ndarray, " K"]:
    """``wanted`` frame indices spread evenly over ``count`` frames (all of them if fewer)."""
    if wanted <= 0 or count <= wanted:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, wanted).round().astype(int))


def _interpolate_rotvecs(
    values: Float[torch.Tensor, "K *R 3"], keys: Int[np.ndarray, " K"], count: int
) -> Float[torch.Tensor, "F *R 3"]:
    """Rotations at every frame index below ``count``, slerped between those at the sorted ``keys``."""
    if len(keys) == 1:
        return values.expand(count, *values.shape[1:]).clone()
    frames = np.arange(count)
    after = np.clip(np.searchsorted(keys, frames, side="right"), 1, len(keys) - 1)
    before = after - 1
    w = np.clip((frames - keys[before]) / (keys[after] - keys[before]), 0.0, 1.0)
    r0, r1 = values[before], values[after]
    delta = roma.rotvec_composition([roma.rotvec_inverse(r0), r1])
    w_t = torch.as_tensor(w, dtype=values.dtype, device=values.device).reshape(-1, *[1] * (values.dim() - 1))
    return roma.rotvec_composition([r0, w_t * delta])


@dataclass
class _Problem:
    """One batched least-squares problem over some frames of a track."""

    model: BodyModel
    model_index: torch.Tensor
    target: Float[torch.Tensor, "F J 3"]
    weight: Float[torch.Tensor, "F J"]
    consecutive: torch.Tensor
    """Whether frame f+1 directly follows frame f, (F-1,)."""
    neutral: Float[torch.Tensor, " S"]
    anchor: Int[torch.Tensor, " J"]
    """Skeleton joint whose frame carries each target's offset (``offset_anchors``)."""
    offsets: Float[torch.Tensor, "J 3"] | None
    """Per-target offsets from the model's point, canonical body frame of the anchor joint, metres;
    None where offsets are not fitted (the first stage, or ``offset_prior_weight`` 0)."""

    def joints(self, orient, transl, body_pose, shape) -> torch.Tensor:
        frames = orient.shape[0]
        parameters = BodyParameters(orient, transl, body_pose, shape.expand(frames, -1))
        points = self.model(parameters, vertices=False).joints[:, self.model_index]
        if self.offsets is None:
            return points
        return points + offset_points(orient, body_pose, self.anchor, self.offsets)

    def centred_transl(self, orient, body_pose, shape) -> torch.Tensor:
        """Per-frame position putting the weighted joint centroid on the target's (any transl convention)."""
        with torch.no_grad():
            start = torch.zeros_like(orient)
            posed = self.joints(orient, start, body_pose, shape)
            return _weighted_centroid(self.target, self.weight) - _weighted_centroid(posed, self.weight)


def _initial_pose(
    model: BodyModel, problem: _Problem, shape: torch.Tensor, names: list[str], orient: torch.Tensor
) -> torch.Tensor:
    """``_limb_swings`` of the model at ``shape`` towards the problem's targets (named ``names``)."""
    with torch.no_grad():
        zero = torch.zeros(1, 3, device=orient.device)
        rest = model(
            BodyParameters(zero, zero, torch.zeros(1, BODY_JOINTS, 3, device=orient.device), shape[None]),
            vertices=False,
        ).joints[0]
    rest_by_name = {n: rest[model.joint_names.index(n)] for n in SKELETON_JOINTS if n in model.joint_names}
    targets = {n: problem.target[:, i] for i, n in enumerate(names)}
    seen = {n: problem.weight[:, i] > 0 for i, n in enumerate(names)}
    return _limb_swings(rest_by_name, targets, seen, orient)


def _solve(
    problem: _Problem,
    orient: torch.Tensor,
    transl: torch.Tensor,
    body_pose: torch.Tensor,
    shape: torch.Tensor,
    fit_shape: bool,
    bounds: tuple[torch.Tensor, torch.Tensor] | None,
    config: FitConfig,
) -> int:
    """Adam on the parameters in place (shape too if ``fit_shape``); the number of steps taken."""
    offsets = problem.offsets
    fit_offsets = offsets is not None
    variables = [
        orient,
        transl,
        body_pose,
        *([shape] if fit_shape else []),
        *([offsets] if fit_offsets else []),
    ]
    for v in variables:
        v.requires_grad_(True)
    frames = orient.shape[0]
    rate = config.learning_rate if fit_shape else config.refine_learning_rate
    optimizer = torch.optim.Adam(variables, lr=rate)
    decay = config.final_learning_rate / rate
    history: list[float] = []
    step = 0
    iterations = config.iterations if fit_shape else config.refine_iterations
    for step in range(1, iterations + 1):
        optimizer.zero_grad()
        residual = ((problem.joints(orient, transl, body_pose, shape) - problem.target) ** 2).sum(-1)
        loss = (problem.weight * residual).sum()
        loss = loss + config.smoothness_weight * sum(
            _consecutive_difference(v, problem.consecutive) for v in (orient, transl, body_pose)
        )
        loss = loss + config.pose_prior_weight * (body_pose**2).sum()
        loss = loss + config.shape_prior_weight * frames * ((shape - problem.neutral) ** 2).sum()
        if fit_offsets:
            loss = loss + config.offset_prior_weight * frames * (offsets**2).sum()
        loss.backward()
        optimizer.step()
        if bounds is not None and fit_shape:
            with torch.no_grad():
                shape.copy_(torch.maximum(torch.minimum(shape, bounds[1]), bounds[0]))
        for group in optimizer.param_groups:
            group["lr"] = rate * decay ** (step / iterations)
        history.append(loss.item())
        window = config.patience
        if len(history) > window and abs(history[-1 - window] - history[-1]) < config.tolerance * history[-1]:
            break
    for v in variables:
        v.requires_grad_(False)
    return step


@dataclass(frozen=True)
class WarmStart:
    """A previous fit of the same person (after an identity edit): the shape is kept and every frame's
    pose starts from it, so that only the second stage runs."""

    frames: Int[np.ndarray, " G"]
    global_orient: Float[np.ndarray, "G 3"]
    body_pose: Float[np.ndarray, "G 21 3"]
    shape: Float[np.ndarray, " S"]


def fit_track(
    model: BodyModel,
    frames: Int[np.ndarray, " F"],
    targets: Float[np.ndarray, "F J 3"],
    target_names: tuple[str, ...],
    weights: Float[np.ndarray, "F J"],
    config: FitConfig,
    device: str = "cpu",
    warm_start: WarmStart | None = None,
) -> FitResult:
    """Fit ``model`` to one person's target joints (matched to the model's joints by name)."""
    common = [n for n in target_names if n in model.joint_names]
    if not common:
        raise ValueError(f"no joint of {target_names} is a joint of the {model.name} model")
    target_index = [target_names.index(n) for n in common]
    model_index = torch.tensor([model.joint_names.index(n) for n in common], device=device)
    target = np.asarray(targets, dtype=float)[:, target_index]
    weight = np.where(np.isfinite(target).all(-1), np.asarray(weights, dtype=float)[:, target_index], 0.0)
    frames = np.asarray(frames)
    F = target.shape[0]

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.nan_to_num(array), dtype=torch.float32, device=device)

    bounds = getattr(model, "shape_bounds", None)
    if bounds is not None:
        bounds = tuple(tensor(np.broadcast_to(b, (model.shape_dim,))) for b in bounds)
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        neutral = model.neutral_shape(1).to(device=device, dtype=torch.float32)[0]
        problem = _Problem(
            model,
            model_index,
            tensor(target),
            tensor(weight),
            torch.as_tensor(np.diff(frames) == 1, device=device),
            neutral,
            torch.as_tensor(offset_anchors(common), device=device),
            torch.zeros((len(common), 3), device=device) if config.offset_prior_weight > 0 else None,
        )
        kept = np.isin(warm_start.frames, frames) if warm_start is not None else np.zeros(0, dtype=bool)
        iterations = 0
        if kept.any():  # the previous fit's shape and poses, at the frames it shares with this track
            keys = np.searchsorted(frames, warm_start.frames[kept])
            shape = tensor(warm_start.shape)
            orient = tensor(warm_start.global_orient[kept])
            body_pose = tensor(warm_start.body_pose[kept])
            source = np.ones(len(keys), dtype=bool)
        else:  # 1. shape and pose on a few frames spread over the track
            wanted = max(config.shape_frames, -(-F // config.key_frame_spacing)) if config.shape_frames else 0
            keys = _keyframes(F, wanted)
            on_keys = replace(
                problem,
                target=problem.target[keys],
                weight=problem.weight[keys],
                consecutive=torch.as_tensor(np.diff(frames[keys]) == 1, device=device),
                offsets=None,  # fitted in the second stage only
            )
            shape = neutral.clone()
            orient = tensor(_orientation_from_targets(target, tuple(common)))[keys].clone()
            body_pose = torch.zeros((len(keys), BODY_JOINTS, 3), device=device)
            if config.limb_initialisation:
                body_pose = _initial_pose(model, on_keys, neutral, common, orient)
            transl = on_keys.centred_transl(orient, body_pose, shape)
            iterations = _solve(on_keys, orient, transl, body_pose, shape, True, bounds, config)
            # from the key frames that see every target where there are some: a gap is bridged by the
            # poses around it, not by the key frames in it (whose unseen joints only the prior holds)
            whole = (weight[keys] > 0).all(1)
            source = whole if whole.any() else np.ones(len(keys), dtype=bool)

        # 2. pose on every frame, the shape kept, starting from the key frames' poses
        if len(keys) < F or kept.any():
            orient = _interpolate_rotvecs(orient[source], keys[source], F)
            body_pose = _interpolate_rotvecs(body_pose[source], keys[source], F)
            transl = problem.centred_transl(orient, body_pose, shape)
            refine = replace(config, refine_iterations=config.warm_iterations) if kept.any() else config
            iterations += _solve(problem, orient, transl, body_pose, shape, False, bounds, refine)

        with torch.no_grad():
            parameters = BodyParameters(orient, transl, body_pose, shape.expand(F, -1))
            posed = model(parameters, vertices=False).joints
            fitted = problem.joints(orient, transl, body_pose, shape)
            distance = torch.linalg.norm(fitted - problem.target, dim=-1).cpu().numpy()
    finally:
        torch.set_num_threads(threads)
    seen = weight > 0
    with np.errstate(invalid="ignore"):
        error = np.where(seen, distance, 0.0).sum(1) / seen.sum(1)
    return FitResult(
        global_orient=orient.cpu().numpy().astype(float),
        transl=transl.cpu().numpy().astype(float),
        body_pose=body_pose.cpu().numpy().astype(float),
        shape=shape.cpu().numpy().astype(float),
        joints=posed.cpu().numpy().astype(float),
        keypoints=fitted.cpu().numpy().astype(float),
        keypoint_names=tuple(common),
        offsets=np.zeros((len(common), 3))
        if problem.offsets is None
        else problem.offsets.cpu().numpy().astype(float),
        error_m=error,
        iterations=iterations,
    )
