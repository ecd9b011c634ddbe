"""Anny backend: the rotation mapping (fast, no model) and the posed model (slow: builds Anny once).

The slow tests share one model per topology; a cold build takes about a minute (``python -m pytest -m slow
tests/core/body/test_anny_backend.py``), later runs load Anny's cache in seconds.
"""

import numpy as np
import pytest
import roma
import torch

from core.body.anny_backend import (
    JOINT_NAMES,
    PHENOTYPES,
    Y_UP_TO_Z_UP,
    AnnyBody,
    _compact_cache_file,
    load_rig,
    resolve_cache_dir,
    tpose_corrections,
)
from core.body.config import AnnyConfig
from core.body.model import REQUIRED_JOINTS, BodyParameters
from core.body.rotations import chain_rotations, swing_rotation
from core.errors import InputError
from core.skeleton import PARENTS, forward_kinematics, rest_joints

slow = pytest.mark.slow
SMPLX_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
LIMBS = ((16, 18), (18, 20), (17, 19), (19, 21), (1, 4), (4, 7), (2, 5), (5, 8), (7, 10), (8, 11))
"""(joint, child) of the bones swung onto the T-pose."""


def rot(axis: str, degrees: float) -> torch.Tensor:
    return roma.euler_to_rotmat(axis, [degrees], degrees=True, dtype=torch.float64)


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def angle_deg(a, b):
    return np.degrees(np.arccos(np.clip((unit(a) * unit(b)).sum(-1), -1.0, 1.0)))


# --- the rotation mapping, no model ---------------------------------------------------------------


def test_chain_rotations_known_answer():
    assert tuple(PARENTS) == SMPLX_PARENTS
    local = torch.eye(3, dtype=torch.float64).repeat(22, 1, 1)
    local[0] = rot("y", 90)  # pelvis
    local[3] = rot("x", 90)  # spine1
    world = chain_rotations(local)
    assert torch.allclose(world[1], rot("y", 90))  # left hip: the pelvis only
    for j in (3, 6, 9, 12, 15, 16, 18, 20):  # spine1 and everything above it
        assert torch.allclose(world[j], rot("y", 90) @ rot("x", 90))
    # (Ry90 · Rx90) sends +y to +x
    expected = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    assert torch.allclose(world[15] @ torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), expected)


def test_chain_rotations_match_a_sequential_chain_and_round_trip():
    generator = torch.Generator().manual_seed(0)
    local = roma.random_rotmat((4, 22), generator=generator, dtype=torch.float64)
    world = chain_rotations(local)
    for j in range(22):
        parent = SMPLX_PARENTS[j]
        expected = local[:, j] if parent < 0 else world[:, parent] @ local[:, j]
        assert torch.allclose(world[:, j], expected)
    parents = torch.tensor(SMPLX_PARENTS[1:])
    recovered = world[:, parents].transpose(-1, -2) @ world[:, 1:]  # local = G_parentᵀ · G
    assert torch.allclose(recovered, local[:, 1:], atol=1e-12)


def test_y_up_to_z_up():
    C = torch.as_tensor(Y_UP_TO_Z_UP)
    assert torch.allclose(C @ C.T, torch.eye(3, dtype=torch.float64)) and torch.det(C) == 1
    x, y, z = torch.eye(3, dtype=torch.float64)
    assert torch.equal(C @ x, x) and torch.equal(C @ y, z) and torch.equal(C @ z, -y)  # up, facing -y
    # a turn about the canonical vertical (y) is the same turn about Anny's vertical (z)
    assert torch.allclose(C @ rot("y", 30) @ C.T, rot("z", 30))
    assert torch.allclose(C @ rot("z", 30) @ C.T, rot("y", -30))  # canonical facing +z = Anny's -y


def test_swing_rotation():
    x, y, _ = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(swing_rotation(x, 3 * y), rot("z", 90))
    assert torch.allclose(swing_rotation(y, y), torch.eye(3, dtype=torch.float64))
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 50, 3, generator=generator, dtype=torch.float64)
    R = swing_rotation(a, b)
    a_unit, b_unit = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(b, dim=-1)
    assert torch.allclose((R @ a_unit[..., None])[..., 0], b_unit, atol=1e-12)
    # the smallest such rotation: its angle is the angle between the directions
    between = torch.arccos((a_unit * b_unit).sum(-1))
    assert torch.allclose(roma.rotmat_to_rotvec(R).norm(dim=-1), between, atol=1e-9)


def tpose_points() -> torch.Tensor:
    """The canonical skeleton's joints and hand ends (wrists continued along the forearms), (24, 3)."""
    joints = rest_joints(np.zeros(5))
    hands = 2 * joints[[20, 21]] - joints[[18, 19]]
    return torch.as_tensor(np.concatenate([joints, hands]))


def test_tpose_corrections_of_the_tpose_are_identity():
    corrections = tpose_corrections(tpose_points()[None])
    assert torch.allclose(corrections, torch.eye(3, dtype=torch.float64).expand(1, 22, 3, 3), atol=1e-12)


def test_tpose_corrections_raise_an_a_pose_arm():
    points = tpose_points()
    vertical = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    # lower the left arm 45° about an axis across its upper arm, then bend the elbow 30° across the forearm
    upper, fore = points[18] - points[16], points[20] - points[18]
    lower = roma.rotvec_to_rotmat(
        -np.pi / 4 * torch.nn.functional.normalize(torch.cross(upper, vertical, 0), dim=0)
    )
    arm = [18, 20, 22]  # left elbow, wrist, hand end
    points[arm] = (points[arm] - points[16]) @ lower.T + points[16]
    across = torch.nn.functional.normalize(torch.cross(lower @ fore, vertical, 0), dim=0)
    bend = roma.rotvec_to_rotmat(np.pi / 6 * across)
    points[[20, 22]] = (points[[20, 22]] - points[18]) @ bend.T + points[18]
    corrections = tpose_corrections(points[None])[0]
    assert torch.allclose(corrections[16], lower.T, atol=1e-12)
    assert torch.allclose(corrections[18], lower.T @ bend.T, atol=1e-12)
    assert torch.allclose(corrections[20], corrections[18], atol=1e-12)  # the hand continues the forearm
    others = [j for j in range(22) if j not in (16, 18, 20)]
    assert torch.allclose(corrections[others], torch.eye(3, dtype=torch.float64).expand(19, 3, 3), atol=1e-12)


def test_unknown_topology_is_refused_before_building():
    with pytest.raises(InputError, match="notoes_collapse10pc"):
        AnnyBody(AnnyConfig(topology="lowpoly"))


# --- the posed model (slow) -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def body():
    return AnnyBody(AnnyConfig())


def params(body, batch=1, pose=None, orient=None, transl=None, shape=None):
    return BodyParameters(
        global_orient=torch.zeros(batch, 3) if orient is None else orient,
        transl=torch.zeros(batch, 3) if transl is None else transl,
        body_pose=torch.zeros(batch, 21, 3) if pose is None else pose,
        shape=body.neutral_shape(batch) if shape is None else shape,
    )


def random_pose(batch: int, seed: int, scale: float = 0.4) -> torch.Tensor:
    return scale * torch.randn(batch, 21, 3, generator=torch.Generator().manual_seed(seed))


@slow
def test_interface(body):
    assert set(REQUIRED_JOINTS) <= set(body.joint_names) and body.joint_names == JOINT_NAMES
    assert body.name == "anny" and body.shape_dim == len(PHENOTYPES) == 6
    out = body(params(body, batch=2))
    faces = body.faces
    assert out.joints.shape == (2, len(JOINT_NAMES), 3) and out.joints.dtype == torch.float32
    assert out.vertices.shape == (2, 1229, 3) and faces.shape[1] == 3 and faces.max() == 1228
    assert _compact_cache_file(body.config.topology, resolve_cache_dir(body.config)).exists()


@slow
def test_zero_pose_is_the_rest_body_in_t_pose_with_the_pelvis_at_transl(body):
    transl = torch.tensor([[0.3, -0.2, 1.0]])
    joints = body(params(body, transl=transl)).joints[0].numpy()
    assert np.allclose(joints[0], transl[0], atol=1e-6)
    rig = load_rig(body.config)
    empty = torch.zeros(1, 0)
    coefficients = rig.model._get_phenotype_blendshape_coefficients(body.neutral_shape(1), empty, empty)
    heads = rig.model.get_rest_model(coefficients)["rest_bone_heads"][0, rig.joint_bone].numpy()
    rest = heads @ Y_UP_TO_Z_UP  # Anny's rest joints, canonical axes
    trunk = [3, 6, 9, 12, 13, 14, 15]  # spine, neck, collars, head: Anny's rest, unchanged
    assert np.allclose(joints[trunk] - joints[0], rest[trunk] - rest[0], atol=1e-5)
    template = rest_joints(np.zeros(5))
    for joint, child in LIMBS:  # limbs straightened onto the T-pose, their lengths kept
        bone = joints[child] - joints[joint]
        assert np.isclose(np.linalg.norm(bone), np.linalg.norm(rest[child] - rest[joint]), atol=1e-5)
        assert angle_deg(bone, template[child] - template[joint]) < 0.1
    assert abs(joints[20, 1] - joints[16, 1]) < 0.05 and joints[20, 0] > 0.6  # left arm out along +x


@slow
def test_elbow_flexion_bends_the_forearm_as_smplx_does(body):
    pose = torch.zeros(1, 21, 3)
    pose[0, 17, 1] = -np.pi / 2  # left elbow (joint 18), 90° about y: the forearm comes forward
    joints = body(params(body, pose=pose)).joints[0].numpy()
    skeleton = forward_kinematics(np.zeros(3), pose[0].numpy().astype(float), np.zeros(5), np.zeros(3))
    forearm = joints[20] - joints[18]
    assert angle_deg(forearm, skeleton[20] - skeleton[18]) < 1.0
    assert unit(forearm)[2] > 0.99  # forward (+z)


@slow
def test_limb_directions_follow_the_canonical_skeleton_for_any_pose(body):
    pose, orient = random_pose(4, seed=2), 0.5 * torch.randn(4, 3, generator=torch.Generator().manual_seed(3))
    joints = body(params(body, batch=4, pose=pose, orient=orient)).joints.numpy()
    skeleton = forward_kinematics(
        orient.numpy().astype(float), pose.numpy().astype(float), np.zeros((4, 5)), np.zeros((4, 3))
    )
    for joint, child in LIMBS:
        bone, reference = joints[:, child] - joints[:, joint], skeleton[:, child] - skeleton[:, joint]
        assert angle_deg(bone, reference).max() < 0.1, (joint, child)


@slow
def test_global_orient_rotates_the_whole_body_about_the_pelvis(body):
    pose, transl = random_pose(1, seed=4), torch.tensor([[1.0, 2.0, 0.5]])
    orient = torch.tensor([[0.3, -1.2, 0.7]])
    base = body(params(body, pose=pose))
    turned = body(params(body, pose=pose, orient=orient, transl=transl))
    R = roma.rotvec_to_rotmat(orient)[0]
    assert torch.allclose(turned.joints[0], base.joints[0] @ R.T + transl, atol=1e-5)
    assert torch.allclose(turned.vertices[0], base.vertices[0] @ R.T + transl, atol=1e-5)
    # canonical up (+y) turned by a quarter turn about x becomes world up (+z)
    up = body(params(body, orient=torch.tensor([[np.pi / 2, 0.0, 0.0]]))).joints[0]
    assert up[JOINT_NAMES.index("head_top"), 2] > 0.7


@slow
def test_a_batch_equals_single_calls(body):
    generator = torch.Generator().manual_seed(5)
    batch = params(
        body,
        batch=3,
        pose=random_pose(3, seed=6),
        orient=torch.randn(3, 3, generator=generator),
        transl=torch.randn(3, 3, generator=generator),
        shape=torch.rand(3, 6, generator=generator),
    )
    together = body(batch)
    for b in range(3):
        single = body(BodyParameters(*(getattr(batch, f)[b : b + 1] for f in batch.__dataclass_fields__)))
        assert torch.allclose(together.joints[b], single.joints[0], atol=1e-5)
        assert torch.allclose(together.vertices[b], single.vertices[0], atol=1e-5)
    joints_only = body(batch, vertices=False)
    assert joints_only.vertices is None and torch.allclose(joints_only.joints, together.joints, atol=1e-5)


def test_a_track_sharing_one_shape_equals_bodies_with_their_own(body):
    # one shape for every body builds the rest model once; the result must not depend on that
    shape = torch.rand(1, 6, generator=torch.Generator().manual_seed(7)).expand(4, -1)
    shared = params(body, batch=4, pose=random_pose(4, seed=8), shape=shape)
    separate = BodyParameters(*(getattr(shared, f).clone() for f in shared.__dataclass_fields__))
    separate.shape[3] += 1e-6  # no longer one shape for all
    assert torch.allclose(body(shared).vertices, body(separate).vertices, atol=1e-5)
    assert torch.allclose(
        body(shared, vertices=False).joints, body(separate, vertices=False).joints, atol=1e-5
    )


@slow
def test_height_phenotype_raises_the_head_top(body):
    shape = body.neutral_shape(3)
    shape[1, PHENOTYPES.index("height")] = 0.2
    shape[2, PHENOTYPES.index("height")] = 0.9
    out = body(params(body, batch=3, shape=shape))
    head_top = out.joints[:, JOINT_NAMES.index("head_top"), 1]  # above the pelvis
    stature = head_top - out.vertices[..., 1].min(-1).values
    assert head_top[2] > head_top[0] + 0.03 > head_top[1] + 0.06 and stature[2] > stature[1] + 0.3
    assert 1.6 < stature[0] < 1.8  # the neutral shape is an average adult


@slow
def test_landmarks_sit_where_they_belong(body):
    j = dict(zip(JOINT_NAMES, body(params(body)).joints[0].numpy(), strict=True))
    assert j["nose"][2] > j["head"][2] + 0.05  # in front of the head (+z)
    assert j["left_eye"][0] > 0 > j["right_eye"][0] and j["left_ear"][0] > j["left_eye"][0]
    assert j["head_top"][1] > j["left_eye"][1] > j["neck"][1]
    for side in ("left", "right"):
        assert j[f"{side}_heel"][2] < j[f"{side}_ankle"][2] < j[f"{side}_foot_index"][2]
        assert j[f"{side}_heel"][1] < j[f"{side}_ankle"][1]


@slow
def test_gradients_reach_pose_and_shape(body):
    pose = random_pose(2, seed=7).requires_grad_(True)
    shape = body.neutral_shape(2).requires_grad_(True)
    body(params(body, batch=2, pose=pose, shape=shape), vertices=False).joints.square().sum().backward()
    assert torch.isfinite(pose.grad).all() and pose.grad.abs().sum() > 0
    assert torch.isfinite(shape.grad).all() and shape.grad.abs().sum() > 0


@slow
def test_export_topology_agrees_with_the_viewer_topology(body):
    full = AnnyBody(AnnyConfig(topology="anny"))  # its own COCO regressor; another build when cold
    parameters = params(body, batch=2, pose=random_pose(2, seed=8), shape=torch.full((2, 6), 0.4))
    coarse_joints, full_out = body(parameters).joints, full(parameters)
    assert full_out.vertices.shape[1] > 10_000
    assert (coarse_joints[:, :22] - full_out.joints[:, :22]).abs().max() < 1e-4  # the same skeleton
    assert (coarse_joints - full_out.joints).norm(dim=-1).max() < 0.01  # landmarks moved across meshes


@pytest.mark.gpu
@slow
def test_cuda_matches_cpu(body):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    parameters = params(body, batch=5, pose=random_pose(5, seed=9))
    on_gpu = body(BodyParameters(*(getattr(parameters, f).cuda() for f in parameters.__dataclass_fields__)))
    assert on_gpu.vertices.device.type == "cuda"
    assert torch.allclose(on_gpu.vertices.cpu(), body(parameters).vertices, atol=1e-4)
