"""The Multi-HMR human backend: per view and frame, each detected head becomes one Observation.

Multi-HMR gives, per person, the head's pixel and camera-frame position and SMPL-X-layout rotations.
The body is posed with the studio's skeleton from those rotations (no SMPL-X file needed), hung from the
head, and projected for the 2D evidence; the backbone token at the head's cell is the appearance.
With ``head_depth="pi3x"`` the head sits at the Pi3X depth of its pixel in the same frame instead of
Multi-HMR's own depth: CHROMM's depth residual with a zero residual.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from core.errors import InputError
from core.geometry import project_points
from core.nets.config import NetworksConfig
from core.nets.multihmr.model import MultiHMR
from core.nets.multihmr.preprocess import multihmr_input, square_intrinsics
from core.nets.runtime import inference
from core.perception.observer import PersonColumns
from core.scene.pi3x_scene import FrameGeometry
from core.skeleton import HEAD, JOINT_NAMES, SHAPE_DIM, canonical_joints, forward_kinematics
from core.types import BODY_POSE_JOINTS, CameraRig, Observations


def load_multihmr(config: NetworksConfig, device: str) -> MultiHMR:
    """The user's Multi-HMR checkpoint (given, or found in the checkpoint folder), strictly loaded; a
    clear error when it is missing or wrong."""
    from core.nets.checkpoints import (
        MULTIHMR_IGNORED_PREFIX,
        checkpoint_directory,
        find_checkpoint,
        load_pickled_model,
    )

    path = find_checkpoint(config.mhmr_ckpt, "multihmr", "multiHMR_*.pt")
    if path is None:
        raise InputError(
            "--humans multihmr needs a Multi-HMR checkpoint: download multiHMR_896_L.pt from the naver/"
            f"multi-hmr release page (non-commercial licence) into {checkpoint_directory() / 'multihmr'}, or "
            "pass --mhmr-ckpt PATH"
        )
    return load_pickled_model(
        path,
        "Multi-HMR",
        "--mhmr-ckpt",
        MultiHMR.from_key_shapes,
        device,
        ignored_prefix=MULTIHMR_IGNORED_PREFIX,
    )


def detect_views(
    model: MultiHMR,
    images: Sequence[np.ndarray],
    cameras: CameraRig,
    config: NetworksConfig,
    device: str,
) -> PersonColumns:
    """Multi-HMR on every view of one frame in one batch; positions in original pixels, float64."""
    squares, maps = zip(*(multihmr_input(image[None], model.image_size) for image in images), strict=True)
    K = np.stack([square_intrinsics(m, cameras.K[v]) for v, m in enumerate(maps)])
    with inference(device, config.precision):
        out = model.detect(
            torch.cat(squares).to(device),
            torch.as_tensor(K, dtype=torch.float32, device=device),
            config.detection_threshold,
            config.nms_kernel,
        )
    view = out.pop("image").cpu().numpy()
    out = {
        key: value.cpu().double().numpy() for key, value in out.items() if key not in ("score_map", "cell")
    }
    loc = np.empty_like(out["loc"])
    for v, pixel_map in enumerate(maps):
        loc[view == v] = pixel_map.to_original(out["loc"][view == v])
    return {**out, "view": view, "loc": loc}


def to_observations(people: PersonColumns, frame: np.ndarray, cameras: CameraRig) -> Observations:
    """Observations of detected people (any frames and views at once), batched over persons. With
    ``people["head_depth"]``, each head is moved along its ray to that depth; with ``people["pelvis"]``
    (a network's own pelvis pixel), that is the pelvis the scale stage reads, else the posed body's."""
    view = people["view"]
    count = len(view)
    rotmat = people["rotmat"][:, : 1 + BODY_POSE_JOINTS]  # root and body; hands and jaw follow
    rotvec = Rotation.from_matrix(rotmat.reshape(-1, 3, 3)).as_rotvec().reshape(*rotmat.shape[:2], 3)
    global_orient, body_pose = rotvec[:, 0], rotvec[:, 1:]
    head = people["transl"]
    if "head_depth" in people:
        head = head / head[:, 2:3] * people["head_depth"][:, None]
    shape = np.zeros((count, SHAPE_DIM))
    posed = forward_kinematics(global_orient, body_pose, shape, np.zeros((count, 3)))
    pelvis = head - posed[:, HEAD]
    joints = posed + pelvis[:, None]
    identity = np.broadcast_to(np.eye(3), (count, 3, 3))
    keypoints = project_points(joints, cameras.K[view], cameras.dist[view], identity, np.zeros((count, 3)))
    margin = 0.1 * (keypoints.max(axis=1) - keypoints.min(axis=1)).max(axis=-1, keepdims=True)
    token = people["token"]
    return Observations(
        view=view,
        frame=np.asarray(frame, dtype=np.int64),
        score=people["scores"],
        bbox=np.concatenate([keypoints.min(axis=1) - margin, keypoints.max(axis=1) + margin], axis=1),
        keypoints2d=keypoints,
        keypoint_confidence=np.repeat(people["scores"][:, None], len(JOINT_NAMES), axis=1),
        head2d=people["loc"],
        pelvis2d=people["pelvis"] if "pelvis" in people else keypoints[:, 0],
        position_cam=pelvis,
        global_orient_cam=global_orient,
        body_pose=body_pose,
        shape=shape,
        canonical_pose=canonical_joints(body_pose, shape),
        embedding=token / np.maximum(np.linalg.norm(token, axis=1, keepdims=True), 1e-12),
        keypoint_names=JOINT_NAMES,
        shape_model="skeleton",
    )


class MultiHMRObserver:
    """Multi-HMR as an :class:`~core.perception.observer.Observer`: all views of a frame in one batch.
    With ``frame_depth`` (Pi3X on the same frame's views), each head sits at Pi3X's depth of its pixel."""

    def __init__(
        self,
        model: MultiHMR,
        config: NetworksConfig,
        device: str = "cpu",
        frame_depth: Callable[[np.ndarray], FrameGeometry] | None = None,
    ):
        self._model = model
        self._config = config
        self._device = device
        self._frame_depth = frame_depth

    def detect(self, images: Sequence[np.ndarray], cameras: CameraRig) -> PersonColumns:
        """Multi-HMR's people of every view of one frame."""
        people = detect_views(self._model, images, cameras, self._config, self._device)
        if self._frame_depth is not None:
            people["head_depth"] = self._frame_depth(np.stack(images)).depth_at(people["view"], people["loc"])
        return people

    def to_observations(self, columns: PersonColumns, frame: np.ndarray, cameras: CameraRig) -> Observations:
        """Posed, projected bodies (see :func:`to_observations`)."""
        return to_observations(columns, frame, cameras)
