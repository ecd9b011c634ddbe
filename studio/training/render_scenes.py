"""Render a ``SceneLayout`` with pyrender (OpenGL on EGL, headless) into a ``MultiViewSample``.

Per camera: an RGB image (ambient plus one directional light, 4× multisampled), and from a second pass
without multisampling (each pixel is what its centre ray hits first) the metric z-depth and the person
index of every pixel. Bodies are painted by body part (the dominant Anny bone of each vertex, grouped in
``BODY_PARTS``; left and right differ), the torso and legs mixed with each person's garment colours, so
that the pose can be read from the colours; the floor is a checkerboard, boxes and walls flat colours.

pyrender is imported inside ``SceneRenderer`` only: it is an optional training dependency, and importing
it picks an OpenGL platform (``PYOPENGL_PLATFORM``), which must not happen at import time.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

import numpy as np
import trimesh
from jaxtyping import Float, Int
from scipy.spatial.transform import Rotation

from core.body.anny_backend import JOINT_NAMES as ANNY_JOINTS
from core.body.anny_backend import load_rig
from core.body.config import AnnyConfig
from core.geometry import project_points, world_to_camera
from studio.training.sample import MultiViewSample
from studio.training.scene_layout import Boxes, Floor, SceneLayout

BODY_PARTS = (
    "head",
    "torso",
    "left_upper_arm",
    "right_upper_arm",
    "left_lower_arm",
    "right_lower_arm",
    "left_hand",
    "right_hand",
    "left_upper_leg",
    "right_upper_leg",
    "left_lower_leg",
    "right_lower_leg",
    "left_foot",
    "right_foot",
)
"""The parts bodies are painted by, in ``PART_COLORS``' order."""
PART_COLORS: Float[np.ndarray, "14 3"] = np.array(
    [
        [0.95, 0.80, 0.65],  # head: skin
        [0.85, 0.85, 0.85],  # torso (mixed with the top)
        [0.90, 0.30, 0.25],  # left upper arm: red
        [0.25, 0.45, 0.90],  # right upper arm: blue
        [0.95, 0.60, 0.20],  # left lower arm: orange
        [0.25, 0.80, 0.85],  # right lower arm: cyan
        [0.95, 0.90, 0.30],  # left hand: yellow
        [0.60, 0.35, 0.85],  # right hand: purple
        [0.80, 0.25, 0.50],  # left upper leg: magenta (mixed with the trousers)
        [0.25, 0.70, 0.35],  # right upper leg: green (mixed)
        [0.95, 0.55, 0.65],  # left lower leg: pink (mixed)
        [0.55, 0.85, 0.45],  # right lower leg: light green (mixed)
        [0.55, 0.30, 0.15],  # left foot: brown
        [0.20, 0.30, 0.55],  # right foot: navy
    ]
)
"""RGB in [0, 1] of each of ``BODY_PARTS``: warm on the left, cool on the right."""
GARMENT_MIX = 0.5
"""Weight of a person's garment colour against the part colour on the torso (top) and legs (trousers)."""
MIN_VISIBLE_FRACTION = 30 / 224**2
"""A person counts as visible in a view when their head joint projects inside the image and at least
this fraction of the image's pixels shows them (30 pixels at 224², 5.5 at 96²)."""

_TOPS = [BODY_PARTS.index("torso")]
_TROUSERS = [
    BODY_PARTS.index(f"{side}_{limb}_leg") for side in ("left", "right") for limb in ("upper", "lower")
]
_BONE_PART = {
    "Root": "torso",
    "pelvis": "torso",
    "spine_01": "torso",
    "spine_02": "torso",
    "spine_03": "torso",
    "clavicle_l": "torso",
    "clavicle_r": "torso",
    "neck_01": "head",
    "head": "head",
    **{
        f"{bone}_{s}": f"{side}_{part}"
        for s, side in (("l", "left"), ("r", "right"))
        for bone, part in (
            ("upperarm", "upper_arm"),
            ("lowerarm", "lower_arm"),
            ("hand", "hand"),
            ("thigh", "upper_leg"),
            ("calf", "lower_leg"),
            ("foot", "foot"),
            ("ball", "foot"),
        )
    },
}
"""Anny ``game_engine`` bone → body part; the finger bones (not listed) belong to their side's hand."""
_CONTEXT_LOCK = threading.Lock()
"""One thread at a time draws with the process's OpenGL context."""
_Z_NEAR = 0.05
"""Near clipping plane, metres (cameras stand metres from everything)."""


def vertex_parts(bone_labels: list[str], weights: Float[np.ndarray, "N K"]) -> Int[np.ndarray, " N"]:
    """Index into ``BODY_PARTS`` of each vertex: the part of the bone with the largest skinning weight.

    >>> vertex_parts(["pelvis", "thigh_l", "index_01_r"], np.array([[0.6, 0.4, 0.0], [0.0, 0.1, 0.9]]))
    array([1, 7])
    """
    side = {"l": "left", "r": "right"}
    part_of_bone = [
        BODY_PARTS.index(_BONE_PART.get(label) or f"{side[label[-1]]}_hand") for label in bone_labels
    ]
    return np.asarray(part_of_bone)[np.argmax(weights, axis=1)]


def body_colors(
    parts: Int[np.ndarray, " N"], garments: Float[np.ndarray, "P 2 3"]
) -> Float[np.ndarray, "P N 3"]:
    """RGB in [0, 1] of every person's vertices: ``PART_COLORS``, the torso and legs mixed with the top and
    trousers of ``garments`` by ``GARMENT_MIX``."""
    palette = np.broadcast_to(PART_COLORS, (len(garments), *PART_COLORS.shape)).copy()  # (P, parts, 3)
    palette[:, _TOPS] = (1 - GARMENT_MIX) * palette[:, _TOPS] + GARMENT_MIX * garments[:, None, 0]
    palette[:, _TROUSERS] = (1 - GARMENT_MIX) * palette[:, _TROUSERS] + GARMENT_MIX * garments[:, None, 1]
    return palette[:, parts]


class SceneRenderer:
    """Anny's mesh topology and part colours, made once, drawn through the process's OpenGL context.

    Args:
        anny: the Anny topology the layouts' people were posed with (their vertex count must match).
    """

    def __init__(self, anny: AnnyConfig | None = None) -> None:
        model = load_rig(anny or AnnyConfig()).model
        self.faces: Int[np.ndarray, "F 3"] = model.faces.cpu().numpy()
        self.parts: Int[np.ndarray, " N"] = vertex_parts(
            list(model.bone_labels), model.dense_vertex_bone_weights.cpu().numpy()
        )

    def render(self, layout: SceneLayout, name: str) -> MultiViewSample:
        """Every camera's image, depth and masks with the people's camera-frame ground truth.

        Args:
            layout: the scene; its people posed on this renderer's topology.
            name: the sample's name (its file, for messages).
        """
        pyrender = _pyrender()
        first = layout.cameras.cameras[0]
        scene, segmentation, camera_nodes = self._scene(pyrender, layout)
        with _CONTEXT_LOCK:
            offscreen = _offscreen_renderer()
            offscreen.viewport_width, offscreen.viewport_height = first.width, first.height
            views = [_render_view(pyrender, offscreen, scene, node, segmentation) for node in camera_nodes]
        images = np.stack([image for image, _, _ in views])
        depth = np.stack([d for _, d, _ in views])
        masks = np.stack([m for _, _, m in views])
        return _sample(layout, name, images, depth, masks)

    def _scene(self, pyrender, layout: SceneLayout) -> tuple[Any, dict, list]:
        """The pyrender scene, its segmentation colours (person p: red p + 1, the rest 0) and the camera
        nodes in the layout's order."""
        people, lighting = layout.people, layout.lighting
        if people.vertices.shape[1] != len(self.parts):
            raise ValueError(
                f"the layout's bodies have {people.vertices.shape[1]} vertices, this renderer's Anny "
                f"topology {len(self.parts)}"
            )
        scene = pyrender.Scene(
            bg_color=[*lighting.background, 1.0], ambient_light=np.full(3, lighting.ambient)
        )
        colors = body_colors(self.parts, people.garments)
        segmentation = {}
        for p, (vertices, color) in enumerate(zip(people.vertices, colors, strict=True)):
            mesh = trimesh.Trimesh(vertices, self.faces, process=False)
            primitive = pyrender.Primitive(
                positions=vertices,
                normals=mesh.vertex_normals,
                indices=self.faces,
                color_0=color,
                material=_matte(pyrender, np.ones(3)),
            )
            segmentation[scene.add(pyrender.Mesh([primitive]))] = (p + 1, 0, 0)
        for mesh in (_floor_mesh(pyrender, layout.floor), *_box_meshes(pyrender, layout.boxes)):
            segmentation[scene.add(mesh)] = (0, 0, 0)
        for mesh in _box_meshes(pyrender, layout.walls):
            segmentation[scene.add(mesh)] = (0, 0, 0)
        scene.add(
            pyrender.DirectionalLight(intensity=lighting.intensity), pose=_light_pose(lighting.direction)
        )
        z_far = 3.0 * layout.floor.half_size + 10.0
        camera_nodes = []
        for camera in layout.cameras.cameras:
            K = camera.K
            intrinsics = pyrender.IntrinsicsCamera(
                K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5, znear=_Z_NEAR, zfar=z_far
            )  # pyrender's principal point is in pixel-corner coordinates
            camera_nodes.append(scene.add(intrinsics, pose=_gl_camera_pose(camera.R, camera.t)))
        return scene, segmentation, camera_nodes


def _sample(
    layout: SceneLayout,
    name: str,
    images: np.ndarray,
    depth: np.ndarray,
    masks: np.ndarray,
) -> MultiViewSample:
    """The rendered views with the people's ground truth in each camera's frame."""
    people, cameras = layout.people, layout.cameras
    V, P = len(cameras), len(people.shape)
    H, W = images.shape[1:3]
    R, t, K = cameras.R, cameras.t, cameras.K
    orient_cam = Rotation.from_matrix(np.repeat(R, P, axis=0)) * Rotation.from_rotvec(
        np.tile(people.global_orient, (V, 1))
    )  # view-major (V * P,)
    keypoints = people.joints[:, [ANNY_JOINTS.index("head"), ANNY_JOINTS.index("pelvis")]]  # (P, 2, 3)
    pixels = project_points(keypoints.reshape(1, -1, 3), K, cameras.dist, R, t).reshape(V, P, 2, 2)
    head = pixels[:, :, 0]
    inside = np.all((head >= -0.5) & (head < [W - 0.5, H - 0.5]), axis=-1)  # NaN (behind): False
    labels = masks + 1 + (P + 1) * np.arange(V)[:, None, None]  # (V, H, W): one bin per (view, label)
    counts = np.bincount(labels.reshape(-1), minlength=V * (P + 1)).reshape(V, P + 1)[:, 1:]
    visible = inside & (counts >= MIN_VISIBLE_FRACTION * H * W)
    return MultiViewSample(
        name=name,
        images=images,
        K=K.astype(np.float32),
        R=R.astype(np.float32),
        t=t.astype(np.float32),
        depth=depth,
        masks=masks,
        body_model="anny",
        global_orient=orient_cam.as_rotvec().reshape(V, P, 3).astype(np.float32),
        body_pose=np.broadcast_to(people.body_pose, (V, P, 21, 3)).astype(np.float32),
        shape=people.shape.astype(np.float32),
        transl=world_to_camera(people.transl[None], R, t).astype(np.float32),
        head2d=head.astype(np.float32),
        pelvis2d=pixels[:, :, 1].astype(np.float32),
        visible=visible,
    ).check()


def _render_view(pyrender, offscreen, scene, camera_node, segmentation) -> tuple[np.ndarray, ...]:
    """(RGB, z-depth with NaN for nothing, person index with -1 for none) seen from one camera."""
    scene.main_camera_node = camera_node
    image, _ = offscreen.render(scene)
    labels, depth = offscreen.render(scene, pyrender.RenderFlags.SEG, segmentation)
    masks = labels[..., 0].astype(np.int16) - 1
    return image.copy(), np.where(depth > 0, depth, np.nan).astype(np.float32), masks


@functools.cache
def _offscreen_renderer():
    """The process's one pyrender context, kept for its life: pyrender's ``delete`` terminates the EGL
    display, which every context of the process shares, so a second renderer closing would break the
    first."""
    return _pyrender().OffscreenRenderer(1, 1)


def _pyrender():
    """pyrender, on EGL unless the environment picked another OpenGL platform."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    import pyrender

    return pyrender


def _matte(pyrender, color: Float[np.ndarray, 3]):
    return pyrender.MetallicRoughnessMaterial(
        baseColorFactor=[*color, 1.0], metallicFactor=0.0, roughnessFactor=0.9, alphaMode="OPAQUE"
    )


def _floor_mesh(pyrender, floor: Floor):
    """The checkerboard: one quad per square (four vertices of its own, so colours do not blend)."""
    n = int(np.ceil(2 * floor.half_size / floor.tile))
    corner = np.arange(n + 1) * floor.tile - n * floor.tile / 2
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    i, j = i.reshape(-1), j.reshape(-1)  # one square per (i, j)
    di, dj = np.array([0, 1, 1, 0]), np.array([0, 0, 1, 1])  # the square's corners, counter-clockwise
    positions = np.stack(
        [corner[i[:, None] + di], corner[j[:, None] + dj], np.zeros((len(i), 4))], axis=-1
    ).reshape(-1, 3)
    quads = np.arange(4 * len(i)).reshape(-1, 4)
    indices = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    colors = np.repeat(floor.colors[(i + j) % 2], 4, axis=0)
    primitive = pyrender.Primitive(
        positions=positions,
        normals=np.broadcast_to([0.0, 0.0, 1.0], positions.shape),
        indices=indices,
        color_0=colors,
        material=_matte(pyrender, np.ones(3)),
    )
    return pyrender.Mesh([primitive])


def _box_meshes(pyrender, boxes: Boxes) -> list:
    """One flat-shaded mesh per box."""
    meshes = []
    for center, size, yaw, color in zip(boxes.center, boxes.size, boxes.yaw, boxes.color, strict=True):
        pose = np.eye(4)
        pose[:3, :3] = Rotation.from_euler("z", yaw).as_matrix()
        pose[:3, 3] = center
        box = trimesh.creation.box(extents=size, transform=pose)
        meshes.append(pyrender.Mesh.from_trimesh(box, material=_matte(pyrender, color), smooth=False))
    return meshes


def _gl_camera_pose(R: Float[np.ndarray, "3 3"], t: Float[np.ndarray, 3]) -> Float[np.ndarray, "4 4"]:
    """pyrender's camera pose (camera → world, OpenGL axes: y up, looking along -z) of an OpenCV camera."""
    pose = np.eye(4)
    pose[:3, :3] = R.T @ np.diag([1.0, -1.0, -1.0])
    pose[:3, 3] = -R.T @ t
    return pose


def _light_pose(direction: Float[np.ndarray, 3]) -> Float[np.ndarray, "4 4"]:
    """A directional light's pose: pyrender's light shines along its node's -z axis."""
    back = -direction / np.linalg.norm(direction)
    side = np.cross([0.0, 1.0, 0.0] if abs(back[1]) < 0.9 else [1.0, 0.0, 0.0], back)
    side /= np.linalg.norm(side)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([side, np.cross(back, side), back], axis=1)
    return pose
