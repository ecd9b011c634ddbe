"""SMPL-X from the user's own model files (registration-gated, never shipped), posed by the ``smplx`` package.

``load_smplx`` finds ``SMPLX_<GENDER>.npz`` (or ``.pkl``) in the configured folder or in its ``smplx/``
subfolder (the layout ``smplx.create`` expects), checks every array this backend reads before ``smplx``
sees it, so that a wrong or damaged file is reported as a ``BodyModelError`` naming the file and the
array, and wraps an ``smplx.SMPLXLayer`` as a ``BodyModel``.

Semantics are SMPL-X's own, unchanged: the canonical body is y-up, faces +z, and its pelvis is *not* at
the origin (some decimetres below it in the released models, and it moves with the betas). ``global_orient``
rotates the body about its rest pelvis J₀(β), and ``transl`` is added afterwards, so a rest-pose point x
lands at ``R (x − J₀(β)) + J₀(β) + transl``; the world pelvis is ``J₀(β) + transl``, not ``transl``.

Joints (``SmplxBody.joint_names``): SMPL-X's 55 skeleton joints, then the vertex landmarks ``smplx`` adds
(nose, eyes, ears, toes, heels, finger tips), all under SMPL-X's names except the big toes, which are
``left_foot_index`` / ``right_foot_index`` (BlazePose's name), and last ``head_top``, the template vertex
highest (largest y) among those skinned mostly to the head. SMPL-X's 51 facial landmarks (brows, eyes,
nose, mouth) are not kept. Hands, jaw and eyes are at rest (identity rotations: flat hands) and the
expression is zero.
"""

from __future__ import annotations

import contextlib
import functools
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import roma
import torch
from jaxtyping import Float, Int
from smplx import SMPLXLayer
from smplx.joint_names import JOINT_NAMES as _SMPLX_JOINT_NAMES
from smplx.lbs import batch_rigid_transform, blend_shapes, vertices2joints

from core.body.config import SmplxConfig
from core.body.errors import BodyModelError
from core.body.model import BODY_JOINTS, BodyOutput, BodyParameters

NUM_VERTICES = 10475
"""Vertices of the SMPL-X mesh; ``smplx``'s landmark vertex ids assume this topology."""
NUM_SKELETON_JOINTS = 55
"""SMPL-X's skeleton: pelvis, 21 body joints, jaw, 2 eyes, 2 × 15 finger joints."""
NUM_EXPRESSION = 10
"""Expression coefficients handed to ``smplx`` (always zero here)."""
_HEAD = 15
"""SMPL-X's ``head`` joint."""
_NUM_LANDMARK_JOINTS = 21
"""Vertex landmarks ``smplx`` appends after the skeleton: 5 face, 6 feet, 10 finger tips."""
_RENAMED = {"left_big_toe": "left_foot_index", "right_big_toe": "right_foot_index"}

JOINT_NAMES: tuple[str, ...] = (
    *(_RENAMED.get(n, n) for n in _SMPLX_JOINT_NAMES[: NUM_SKELETON_JOINTS + _NUM_LANDMARK_JOINTS]),
    "head_top",
)
"""Names of ``SmplxBody``'s joints, in output order (see the module docstring)."""


def _model_file(config: SmplxConfig) -> Path:
    """The model file for ``config``: ``.npz`` before ``.pkl``, the folder itself before ``smplx/``."""
    if config.model_dir is None:
        raise BodyModelError(
            "no SMPL-X model folder configured: SMPL-X is registration-gated; download it from "
            "https://smpl-x.is.tue.mpg.de and set the model folder to where SMPLX_NEUTRAL.npz lies"
        )
    folder = Path(config.model_dir)
    if not folder.is_dir():
        raise BodyModelError(f"{folder}: SMPL-X model folder not found")
    stem = f"SMPLX_{config.gender.upper()}"
    candidates = [d / f"{stem}.{ext}" for ext in ("npz", "pkl") for d in (folder, folder / "smplx")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise BodyModelError(
        f"{folder}: no SMPL-X model file {stem}.npz or {stem}.pkl (looked for "
        + ", ".join(str(c) for c in candidates)
        + ")"
    )


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array of an ``.npz`` archive, read from the headers only."""
    headers = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for entry in archive.namelist():
                if not entry.endswith(".npy"):
                    continue
                with archive.open(entry) as stream:
                    version = np.lib.format.read_magic(stream)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
                headers[entry.removesuffix(".npy")] = (shape, dtype)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise BodyModelError(f"{path}: not a readable .npz archive ({error})") from error
    return headers


def _pkl_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array-like value of a pickled model dictionary."""
    try:
        with open(path, "rb") as stream:
            data = pickle.load(stream, encoding="latin1")
    except ModuleNotFoundError as error:
        raise BodyModelError(
            f"{path}: needs the module {error.name!r} to be read; use the .npz release of SMPL-X instead"
        ) from error
    except (pickle.UnpicklingError, OSError, ValueError, EOFError, AttributeError) as error:
        raise BodyModelError(f"{path}: not a readable pickled SMPL-X model ({error})") from error
    if not isinstance(data, dict):
        raise BodyModelError(f"{path}: holds a {type(data).__name__}, not a dictionary of model arrays")
    return {
        key: (tuple(value.shape), getattr(value, "dtype", np.dtype(object)))
        for key, value in data.items()
        if hasattr(value, "shape")
    }


def _check_arrays(path: Path, headers: dict[str, tuple[tuple[int, ...], np.dtype]], num_betas: int) -> None:
    """Raise a ``BodyModelError`` naming every array ``smplx`` reads that is missing or of a wrong shape."""
    V, J = NUM_VERTICES, NUM_SKELETON_JOINTS
    pose_features = 9 * (J - 1)  # one 3×3 rotation minus identity per non-root joint
    expected: dict[str, tuple[int | None, ...]] = {  # None: any size
        "v_template": (V, 3),
        "f": (None, 3),
        "J_regressor": (J, V),
        "weights": (V, J),
        "kintree_table": (2, J),
        "shapedirs": (V, 3, None),
        "posedirs": (V, 3, pose_features),
        "hands_componentsl": (None, 45),
        "hands_componentsr": (None, 45),
        "hands_meanl": (45,),
        "hands_meanr": (45,),
        "lmk_faces_idx": (None,),
        "lmk_bary_coords": (None, 3),
    }
    missing = [key for key in expected if key not in headers]
    if missing:
        raise BodyModelError(f"{path}: not an SMPL-X model, missing array(s) {', '.join(missing)}")
    problems = []
    for key, want in expected.items():
        shape, dtype = headers[key]
        if dtype == np.dtype(object) or len(shape) != len(want):
            problems.append(f"{key} has shape {shape} ({dtype}), expected {_shape_text(want)}")
        elif any(w is not None and s != w for s, w in zip(shape, want, strict=True)):
            problems.append(f"{key} has shape {shape}, expected {_shape_text(want)}")
    if not problems:
        components = headers["shapedirs"][0][2]
        available = 300 if components >= 400 else 10  # smplx: betas then expressions, 10 + 10 or 300 + 100
        if components < 20:
            problems.append(
                f"shapedirs has {components} components, expected at least 20 (betas + expression)"
            )
        elif not 1 <= num_betas <= available:
            problems.append(f"num_betas is {num_betas}, this model has 1 to {available} shape coefficients")
        if headers["lmk_faces_idx"][0][0] != headers["lmk_bary_coords"][0][0]:
            problems.append("lmk_faces_idx and lmk_bary_coords have different lengths")
    if problems:
        raise BodyModelError(f"{path}: not a usable SMPL-X model: " + "; ".join(problems))


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return (
        "("
        + ", ".join("any" if s is None else str(s) for s in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


def _check_indices(path: Path, layer: SMPLXLayer) -> None:
    """Values ``smplx`` would trip over later: parents out of order, faces or landmarks out of range."""
    parents = layer.parents[1:].cpu()
    if bool(((parents < 0) | (parents >= torch.arange(1, len(layer.parents)))).any()):
        raise BodyModelError(f"{path}: kintree_table[0] is not a tree with every parent before its child")
    faces = np.asarray(layer.faces)
    if faces.min() < 0 or faces.max() >= NUM_VERTICES:
        raise BodyModelError(f"{path}: f refers to vertices outside 0..{NUM_VERTICES - 1}")
    landmarks = layer.lmk_faces_idx.cpu()
    if len(landmarks) and (landmarks.min() < 0 or landmarks.max() >= len(faces)):
        raise BodyModelError(f"{path}: lmk_faces_idx refers to faces outside 0..{len(faces) - 1}")


@functools.lru_cache(maxsize=4)
def load_smplx(config: SmplxConfig, device: str | torch.device = "cpu") -> SmplxBody:
    """Load the user's SMPL-X model once per (config, device); later calls return the same body.

    Raises:
        BodyModelError: no folder configured, the folder or the model file missing, or the file not a
            readable SMPL-X model (a missing array or one of the wrong shape is named in the message).
    """
    path = _model_file(config)
    ext = path.suffix.removeprefix(".")
    headers = _npz_headers(path) if ext == "npz" else _pkl_headers(path)
    _check_arrays(path, headers, config.num_betas)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning for 10-beta files
            layer = SMPLXLayer(
                str(path),
                gender=config.gender,
                num_betas=config.num_betas,
                num_expression_coeffs=NUM_EXPRESSION,
                use_pca=False,
                flat_hand_mean=True,
                ext=ext,
            )
    except (KeyError, AttributeError, ValueError, IndexError, TypeError, RuntimeError) as error:
        raise BodyModelError(
            f"{path}: smplx could not build the model ({type(error).__name__}: {error})"
        ) from error
    _check_indices(path, layer)
    return SmplxBody(layer.to(device), path)


class SmplxBody:
    """SMPL-X as a ``BodyModel``: a stateless function of ``BodyParameters``, batched over any B.

    ``smplx``'s ``SMPLX`` module fixes its batch size when built; its ``SMPLXLayer`` (used here) infers B
    from its inputs, and every input (rotation matrices, betas, zero expression, identity jaw, eyes and
    hands) is passed explicitly at the right B on every call.
    """

    name = "smplx"
    joint_names = JOINT_NAMES

    def __init__(self, layer: SMPLXLayer, path: Path) -> None:
        """Wrap a built layer; use ``load_smplx`` rather than calling this."""
        self._layer = layer
        self.path = path
        """The model file loaded."""
        self.shape_dim: int = layer.num_betas
        self._faces = np.asarray(layer.faces, dtype=np.int64)
        self._faces.flags.writeable = False
        weights = layer.lbs_weights  # (V, 55)
        head = torch.nonzero(weights.argmax(dim=1) == _HEAD).squeeze(1)
        if len(head) == 0:
            raise BodyModelError(f"{path}: no vertex is skinned mostly to the head joint (weights)")
        self.head_top_vertex = int(head[layer.v_template[head, 1].argmax()])
        """Template vertex of ``head_top``: highest (y) of those skinned mostly to the head."""
        # The joints-only path needs the vertices the joint regressor reads, then the landmark vertices.
        regressed = torch.nonzero(layer.J_regressor.abs().sum(dim=0) > 0).squeeze(1)
        landmarks = layer.vertex_joint_selector.extra_joints_idxs
        landmarks = torch.cat([landmarks, landmarks.new_tensor([self.head_top_vertex])])  # (K,)
        used = torch.cat([regressed, landmarks])  # (R + K,)
        self._num_regressed = len(regressed)
        self._used_template = layer.v_template[used]
        self._used_shapedirs = layer.shapedirs[used]  # (R + K, 3, S); the expression is zero
        self._used_regressor = layer.J_regressor[:, regressed]  # (55, R)
        self._landmark_weights = weights[landmarks]  # (K, 55)
        num_pose_features = layer.posedirs.shape[0]
        self._landmark_posedirs = (  # (P, K·3): the pose blend shapes of the landmark vertices only
            layer.posedirs.view(num_pose_features, -1, 3)[:, landmarks].reshape(num_pose_features, -1)
        )

    @property
    def faces(self) -> Int[np.ndarray, "F 3"]:
        return self._faces

    @property
    def device(self) -> torch.device:
        return self._layer.v_template.device

    def neutral_shape(self, batch: int) -> Float[torch.Tensor, "B S"]:
        """Zero betas: SMPL-X's mean shape."""
        return torch.zeros(batch, self.shape_dim, device=self.device)

    def __call__(self, parameters: BodyParameters, vertices: bool = True) -> BodyOutput:
        """Pose B bodies; joints and vertices in the world frame (metres), differentiable.

        ``vertices=False`` skins only the landmark vertices the joints need (nose … heels, head top),
        which gives the same joints as the full mesh at a fraction of the cost.
        """
        betas, global_orient, body_pose, transl = self._inputs(parameters)
        if vertices:
            return self._full(betas, global_orient, body_pose, transl)
        return BodyOutput(joints=self._joints_only(betas, global_orient, body_pose, transl), vertices=None)

    def _inputs(
        self, parameters: BodyParameters
    ) -> tuple[
        Float[torch.Tensor, "B S"],
        Float[torch.Tensor, "B 3 3"],
        Float[torch.Tensor, "B 21 3 3"],
        Float[torch.Tensor, "B 3"],
    ]:
        """Checked parameters on the model's device and dtype, rotations as matrices."""
        B = parameters.global_orient.shape[0]
        expected = {
            "global_orient": (B, 3),
            "transl": (B, 3),
            "body_pose": (B, BODY_JOINTS, 3),
            "shape": (B, self.shape_dim),
        }
        for field, shape in expected.items():
            if tuple(getattr(parameters, field).shape) != shape:
                raise ValueError(
                    f"BodyParameters.{field} has shape {tuple(getattr(parameters, field).shape)}, "
                    f"expected {shape} for the SMPL-X model with {self.shape_dim} betas"
                )
        device, dtype = self.device, self._layer.v_template.dtype

        def convert(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype)

        return (
            convert(parameters.shape),
            roma.rotvec_to_rotmat(convert(parameters.global_orient)),
            roma.rotvec_to_rotmat(convert(parameters.body_pose)),
            convert(parameters.transl),
        )

    def _full(
        self,
        betas: Float[torch.Tensor, "B S"],
        global_orient: Float[torch.Tensor, "B 3 3"],
        body_pose: Float[torch.Tensor, "B 21 3 3"],
        transl: Float[torch.Tensor, "B 3"],
    ) -> BodyOutput:
        """The whole mesh through ``smplx``; joints picked from its output plus the head-top vertex."""
        layer = self._layer
        B = betas.shape[0]
        eye = torch.eye(3, device=betas.device, dtype=betas.dtype)
        hand = eye.expand(B, layer.NUM_HAND_JOINTS, 3, 3)
        face = eye.expand(B, 1, 3, 3)
        output = layer(
            betas=betas,
            global_orient=global_orient,
            body_pose=body_pose,
            left_hand_pose=hand,
            right_hand_pose=hand,
            jaw_pose=face,
            leye_pose=face,
            reye_pose=face,
            expression=betas.new_zeros(B, layer.num_expression_coeffs),
            transl=transl,
            return_verts=True,
        )
        kept = output.joints[:, : NUM_SKELETON_JOINTS + _NUM_LANDMARK_JOINTS]  # drops the face landmarks
        joints = torch.cat([kept, output.vertices[:, [self.head_top_vertex]]], dim=1)
        return BodyOutput(joints=joints, vertices=output.vertices)

    def _joints_only(
        self,
        betas: Float[torch.Tensor, "B S"],
        global_orient: Float[torch.Tensor, "B 3 3"],
        body_pose: Float[torch.Tensor, "B 21 3 3"],
        transl: Float[torch.Tensor, "B 3"],
    ) -> Float[torch.Tensor, "B J 3"]:
        """``smplx``'s linear blend skinning of the landmark vertices only (same joints as ``_full``).

        The shape blend shapes are evaluated only at the vertices the joint regressor reads (its
        non-zero columns) and at the landmarks; the pose blend shapes and the skinning only at the
        landmarks. The expression is zero, so its blend shapes are left out.
        """
        layer = self._layer
        B = betas.shape[0]
        eye = torch.eye(3, device=betas.device, dtype=betas.dtype)
        rest = eye.expand(B, 1 + 2 * layer.NUM_HAND_JOINTS + 2, 3, 3)  # jaw, eyes, hands
        # smplx's full-pose order: root, body, jaw, left eye, right eye, left hand, right hand
        rotations = torch.cat([global_orient[:, None], body_pose, rest], dim=1)  # (B, 55, 3, 3)
        v_shaped = self._used_template + blend_shapes(betas, self._used_shapedirs)  # (B, R + K, 3)
        rest_joints = vertices2joints(self._used_regressor, v_shaped[:, : self._num_regressed])
        posed_joints, transforms = batch_rigid_transform(
            rotations, rest_joints, layer.parents, dtype=betas.dtype
        )
        pose_feature = (rotations[:, 1:] - eye).reshape(B, -1)
        pose_offsets = (pose_feature @ self._landmark_posedirs).view(B, -1, 3)
        landmarks = v_shaped[:, self._num_regressed :] + pose_offsets  # (B, K, 3)
        skinning = torch.einsum("kj,bjmn->bkmn", self._landmark_weights, transforms)  # (B, K, 4, 4)
        landmarks = (skinning[..., :3, :3] @ landmarks[..., None])[..., 0] + skinning[..., :3, 3]
        return torch.cat([posed_joints, landmarks], dim=1) + transl[:, None]
