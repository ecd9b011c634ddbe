"""SMPL-X backend on a synthetic model file with exactly known answers (never the real, gated SMPL-X files).

The synthetic ``SMPLX_NEUTRAL.npz`` has every array ``smplx`` 0.1.28 reads for SMPL-X, at SMPL-X's sizes,
but a made-up geometry: joint j's regressor row picks the single vertex ``JOINT_VERTEX[j]``, so the rest
joints are those vertices; the vertices are skinned rigidly (one joint each), and pose blend shapes are
non-zero only on the landmark vertices so that the joints-only path is compared on them.
"""

import pickle

import numpy as np
import pytest
import roma
import torch

from core.body.config import SmplxConfig
from core.body.errors import BodyModelError
from core.body.model import REQUIRED_JOINTS, BodyParameters
from core.body.smplx_backend import JOINT_NAMES, load_smplx

V, F, J = 10475, 20908, 55
# SMPL-X's kinematic tree: body and head (0–24), then index, middle, pinky, ring, thumb of each hand
PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15]
for wrist, start in ((20, 25), (21, 40)):
    for first in range(start, start + 15, 3):
        PARENTS += [wrist, first, first + 1]
assert len(PARENTS) == 55
JOINT_VERTEX = 1000 + np.arange(J)
"""The vertex joint j's regressor row picks."""
HEAD_TOP, RAISED_HAND = 2000, 2001
"""The highest head vertex, and a higher vertex that belongs to the left wrist (not the head)."""
LANDMARKS = {
    "nose": 9120,
    "left_foot_index": 5770,
    "right_foot_index": 8463,
    "left_heel": 8846,
    "right_ear": 616,
}
"""A few of smplx's landmark vertices (``smplx.vertex_ids``) under this backend's names."""
SMPLX_NAMES = ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2")
LEFT_ELBOW, LEFT_WRIST, RIGHT_WRIST = 18, 20, 21


def synthetic_model(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    v_template = rng.uniform(-0.5, 0.5, (V, 3))
    v_template[JOINT_VERTEX] = rng.uniform(-0.8, 0.8, (J, 3))
    v_template[JOINT_VERTEX[0]] = (0.01, -0.35, 0.02)  # the pelvis is not at the origin, as in SMPL-X
    v_template[HEAD_TOP] = (0.0, 1.5, 0.0)
    v_template[RAISED_HAND] = (0.5, 3.0, 0.0)
    J_regressor = np.zeros((J, V))
    J_regressor[np.arange(J), JOINT_VERTEX] = 1.0
    owner = np.arange(V) % J
    owner[HEAD_TOP], owner[RAISED_HAND] = 15, LEFT_WRIST
    weights = np.zeros((V, J))
    weights[np.arange(V), owner] = 1.0
    posedirs = np.zeros((V, 3, 9 * (J - 1)), dtype=np.float32)
    landmark_rows = [*LANDMARKS.values(), HEAD_TOP, 9448, 9929, 6, 5780, 8474, 8635, 5361, 8079]
    posedirs[landmark_rows] = rng.normal(0.0, 0.01, (len(landmark_rows), 3, 9 * (J - 1)))
    faces = (np.arange(F)[:, None] + np.arange(3)) % V
    return {
        "v_template": v_template.astype(np.float32),
        "f": faces.astype(np.int32),
        "J_regressor": J_regressor.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": np.stack([np.where(np.array(PARENTS) < 0, 2**32 - 1, PARENTS), np.arange(J)]),
        "shapedirs": rng.normal(0.0, 0.01, (V, 3, 20)).astype(np.float32),  # 10 betas + 10 expressions
        "posedirs": posedirs,
        "hands_componentsl": np.eye(45, dtype=np.float32),
        "hands_componentsr": np.eye(45, dtype=np.float32),
        "hands_meanl": np.zeros(45, dtype=np.float32),
        "hands_meanr": np.zeros(45, dtype=np.float32),
        "lmk_faces_idx": np.arange(51) * 7,
        "lmk_bary_coords": np.full((51, 3), 1.0 / 3.0, dtype=np.float32),
        "dynamic_lmk_faces_idx": np.zeros((79, 17), dtype=np.int64),
        "dynamic_lmk_bary_coords": np.full((79, 17, 3), 1.0 / 3.0, dtype=np.float32),
    }


@pytest.fixture(scope="module")
def arrays():
    return synthetic_model()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, arrays):
    folder = tmp_path_factory.mktemp("smplx_models")
    np.savez_compressed(folder / "SMPLX_NEUTRAL.npz", **arrays)
    return folder


@pytest.fixture(scope="module")
def body(model_dir):
    return load_smplx(SmplxConfig(model_dir=model_dir))


def parameters(B: int, seed: int | None = None, shape_dim: int = 10) -> BodyParameters:
    """B bodies at rest (seed None) or with random orientation, position, pose and shape."""
    if seed is None:
        return BodyParameters(
            torch.zeros(B, 3), torch.zeros(B, 3), torch.zeros(B, 21, 3), torch.zeros(B, shape_dim)
        )
    g = torch.Generator().manual_seed(seed)
    return BodyParameters(
        global_orient=torch.rand(B, 3, generator=g) * 2 - 1,
        transl=torch.rand(B, 3, generator=g) * 4 - 2,
        body_pose=(torch.rand(B, 21, 3, generator=g) * 2 - 1) * 0.6,
        shape=torch.randn(B, shape_dim, generator=g),
    )


def index(*names: str) -> list[int]:
    return [JOINT_NAMES.index(n) for n in names]


def test_names_cover_the_required_joints_and_keep_smplx_names(body):
    assert body.name == "smplx" and body.shape_dim == 10
    assert set(REQUIRED_JOINTS) <= set(body.joint_names)
    assert len(set(body.joint_names)) == len(body.joint_names)
    assert body.joint_names[: len(SMPLX_NAMES)] == SMPLX_NAMES
    assert body.joint_names.index("head") == 15 and "left_big_toe" not in body.joint_names
    assert body(parameters(1)).joints.shape == (1, len(body.joint_names), 3)
    assert body.faces.shape == (F, 3) and body.faces.dtype == np.int64
    assert torch.equal(body.neutral_shape(4), torch.zeros(4, 10))


def test_rest_pose_gives_the_template_joints_and_landmarks(body, arrays):
    out = body(parameters(2))
    template = torch.as_tensor(arrays["v_template"])
    torch.testing.assert_close(out.joints[:, :J], template[JOINT_VERTEX].expand(2, J, 3))
    torch.testing.assert_close(
        out.joints[:, index(*LANDMARKS)], template[list(LANDMARKS.values())].expand(2, -1, 3)
    )
    assert body.head_top_vertex == HEAD_TOP  # the raised hand is higher but not part of the head
    torch.testing.assert_close(out.joints[0, index("head_top")[0]], template[HEAD_TOP])
    torch.testing.assert_close(out.vertices, template.expand(2, V, 3))


def test_global_orient_turns_about_the_rest_pelvis_then_transl_moves(body, arrays):
    """SMPL-X's semantics: x ↦ R (x − J₀) + J₀ + t; with J₀ ≠ 0 this is not R x + t."""
    B = 3
    rest = body(parameters(B))
    g = torch.Generator().manual_seed(3)
    rotvec, t = torch.rand(B, 3, generator=g) * 4 - 2, torch.rand(B, 3, generator=g)
    out = body(BodyParameters(rotvec, t, torch.zeros(B, 21, 3), torch.zeros(B, 10)))
    R = roma.rotvec_to_rotmat(rotvec)
    pelvis = torch.as_tensor(arrays["v_template"][JOINT_VERTEX[0]])

    def expected(x):
        return torch.einsum("bij,bnj->bni", R, x - pelvis) + pelvis + t[:, None]

    torch.testing.assert_close(out.joints, expected(rest.joints))
    torch.testing.assert_close(out.vertices, expected(rest.vertices))
    torch.testing.assert_close(out.joints[:, 0], pelvis + t)


def test_a_quarter_turn_of_the_left_elbow_swings_the_forearm_and_hand_only(body):
    rest = body(parameters(1)).joints[0]
    pose = torch.zeros(1, 21, 3)
    pose[0, LEFT_ELBOW - 1] = torch.tensor([0.0, 0.0, torch.pi / 2])  # body_pose starts at joint 1
    joints = body(BodyParameters(torch.zeros(1, 3), torch.zeros(1, 3), pose, torch.zeros(1, 10))).joints[0]
    quarter_z = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    below = [LEFT_ELBOW]  # the elbow and every skeleton joint after it in the chain
    for j in range(J):
        if PARENTS[j] in below:
            below.append(j)
    assert LEFT_WRIST in below and len(below) == 1 + 1 + 15  # elbow, wrist, 15 finger joints
    elbow = rest[LEFT_ELBOW]
    torch.testing.assert_close(joints[below], elbow + (rest[below] - elbow) @ quarter_z.T)
    unmoved = [j for j in range(J) if j not in below]
    torch.testing.assert_close(joints[unmoved], rest[unmoved])


def test_betas_move_the_joints_along_the_shape_directions(body, arrays):
    betas = torch.randn(1, 10, generator=torch.Generator().manual_seed(5))
    out = body(BodyParameters(torch.zeros(1, 3), torch.zeros(1, 3), torch.zeros(1, 21, 3), betas))
    directions = torch.as_tensor(arrays["shapedirs"][JOINT_VERTEX, :, :10])  # (J, 3, 10)
    expected = torch.as_tensor(arrays["v_template"][JOINT_VERTEX]) + directions @ betas[0]
    torch.testing.assert_close(out.joints[0, :J], expected)


def test_a_batch_equals_single_calls_and_joints_only_equals_the_mesh(body):
    batch = parameters(5, seed=7)
    out = body(batch)
    joints_only = body(batch, vertices=False)
    assert joints_only.vertices is None
    torch.testing.assert_close(joints_only.joints, out.joints, atol=1e-5, rtol=1e-5)
    for b in range(5):
        single = body(
            BodyParameters(*(getattr(batch, f)[b : b + 1] for f in BodyParameters.__dataclass_fields__))
        )
        torch.testing.assert_close(single.joints, out.joints[b : b + 1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(single.vertices, out.vertices[b : b + 1], atol=1e-5, rtol=1e-5)


def test_joints_only_is_differentiable(body):
    pose = torch.zeros(2, 21, 3, requires_grad=True)
    joints = body(
        BodyParameters(torch.zeros(2, 3), torch.zeros(2, 3), pose, torch.zeros(2, 10)), vertices=False
    )
    joints.joints[:, index("left_heel", "left_wrist")].sum().backward()
    assert pose.grad is not None and pose.grad.abs().sum() > 0


def test_wrong_parameter_shapes_are_refused(body):
    with pytest.raises(ValueError, match="shape"):
        body(parameters(2, shape_dim=11))


def test_loads_are_cached_and_the_smplx_subfolder_and_pkl_layouts_work(tmp_path, model_dir, arrays, body):
    assert load_smplx(SmplxConfig(model_dir=model_dir)) is body
    (tmp_path / "smplx").mkdir()
    (tmp_path / "smplx" / "SMPLX_NEUTRAL.npz").symlink_to(model_dir / "SMPLX_NEUTRAL.npz")
    assert load_smplx(SmplxConfig(model_dir=tmp_path)).path == tmp_path / "smplx" / "SMPLX_NEUTRAL.npz"
    with open(tmp_path / "SMPLX_FEMALE.pkl", "wb") as stream:
        pickle.dump(arrays, stream)
    female = load_smplx(SmplxConfig(model_dir=tmp_path, gender="female", num_betas=4))
    assert female.shape_dim == 4
    torch.testing.assert_close(female(parameters(1, shape_dim=4)).joints, body(parameters(1)).joints)


def broken(tmp_path, arrays, **changes) -> SmplxConfig:
    """A model folder whose SMPLX_NEUTRAL.npz has ``changes`` (None: array left out)."""
    changed = {k: v for k, v in {**arrays, **changes}.items() if v is not None}
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", **changed)
    return SmplxConfig(model_dir=tmp_path)


def test_a_missing_folder_or_file_names_it(tmp_path):
    with pytest.raises(BodyModelError, match="registration"):
        load_smplx(SmplxConfig(model_dir=None))
    with pytest.raises(BodyModelError, match="nowhere.*not found"):
        load_smplx(SmplxConfig(model_dir=tmp_path / "nowhere"))
    with pytest.raises(BodyModelError, match="SMPLX_MALE.npz"):
        load_smplx(SmplxConfig(model_dir=tmp_path, gender="male"))


def test_a_broken_file_names_the_file_and_what_is_wrong(tmp_path, arrays):
    path = tmp_path / "SMPLX_NEUTRAL.npz"
    with pytest.raises(BodyModelError, match=f"{path}.*missing.*J_regressor"):
        load_smplx(broken(tmp_path, arrays, J_regressor=None))
    with pytest.raises(BodyModelError, match=f"{path}.*weights has shape \\(10475, 54\\)"):
        load_smplx(broken(tmp_path, arrays, weights=np.zeros((V, J - 1), dtype=np.float32)))
    with pytest.raises(BodyModelError, match="num_betas is 11"):
        load_smplx(SmplxConfig(model_dir=broken(tmp_path, arrays).model_dir, num_betas=11))
    with pytest.raises(BodyModelError, match="kintree_table"):
        load_smplx(broken(tmp_path, arrays, kintree_table=arrays["kintree_table"][:, ::-1].copy()))
    path.write_text("not a model")
    with pytest.raises(BodyModelError, match=f"{path}.*not a readable .npz"):
        load_smplx(SmplxConfig(model_dir=tmp_path))
