"""One random training scene as geometry: people standing on a floor, boxes and walls, cameras around them.

Everything here is numpy except the call that poses the people: the body model (Anny, through
``core.body``) is given, so that each person's lowest vertex can be put on the floor (z = 0) and their
footprint kept clear of the others'. ``render_scenes`` turns a layout into images and ground truth.

World frame as everywhere (metres, z up); the people are centred on the origin and the cameras stand on
a ring around it, looking at them. A scene is a pure function of its generator's state.

Poses are the synthetic walkers' gait (``core.evaluation.synthetic.gait_pose``) at a random phase, with
a random rotation of bounded size added to each joint: ``BODY_POSE_LIMITS`` are the rig's limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from scipy.spatial.transform import Rotation

from core.body.model import BodyModel, BodyParameters
from core.errors import InputError
from core.evaluation.synthetic import gait_pose, look_at, upright_orient
from core.skeleton import JOINT_NAMES
from core.types import Camera, CameraRig

PHENOTYPE_RANGES: Float[np.ndarray, "6 2"] = np.array(
    [[0.0, 1.0], [0.68, 0.95], [0.15, 0.85], [0.15, 0.85], [0.1, 0.7], [0.2, 0.8]]
)
"""Low and high bound of each of Anny's phenotypes (``core.body.anny_backend.PHENOTYPES``: gender, age,
muscle, weight, height, proportions), drawn uniformly: any gender; adults from about 20 years (age 0.68)
to about 70 (0.95; Anny's 0.78 is 25 years); neither extreme of build; about 1.55 m to 1.90 m tall."""

BODY_POSE_LIMITS: dict[str, float] = {
    "left_hip": 0.35,
    "right_hip": 0.35,
    "spine1": 0.12,
    "left_knee": 0.6,
    "right_knee": 0.6,
    "spine2": 0.12,
    "left_ankle": 0.25,
    "right_ankle": 0.25,
    "spine3": 0.12,
    "left_foot": 0.1,
    "right_foot": 0.1,
    "neck": 0.25,
    "left_collar": 0.1,
    "right_collar": 0.1,
    "head": 0.3,
    "left_shoulder": 0.7,
    "right_shoulder": 0.7,
    "left_elbow": 1.2,
    "right_elbow": 1.2,
    "left_wrist": 0.4,
    "right_wrist": 0.4,
}
"""The rig's limits: the largest random rotation (radians) added to the gait at each SMPL-X body joint,
parent-relative. A joint of ``HINGES`` bends about its hinge axis only, by up to its limit, in the way
it flexes (knees backwards, elbows forwards); every other joint turns about a uniformly random axis by a
uniformly random angle up to its limit (hips 20°, shoulders 40°, spine 7° per joint)."""

HINGES: dict[str, tuple[int, float]] = {
    "left_knee": (0, 1.0),
    "right_knee": (0, 1.0),
    "left_elbow": (1, -1.0),
    "right_elbow": (1, 1.0),
}
"""Hinge joint → (axis of its parent-relative rotation, sign of flexion), as the gait bends them."""


@dataclass(frozen=True)
class LayoutConfig:
    """What a random scene may hold (inclusive ranges, drawn uniformly)."""

    persons: tuple[int, int] = (1, 4)
    """Fewest and most people."""
    views: tuple[int, int] = (2, 4)
    """Fewest and most cameras."""
    boxes: tuple[int, int] = (0, 3)
    """Fewest and most boxes on the floor among the people (they hide parts of them)."""
    walls: tuple[int, int] = (0, 2)
    """Fewest and most walls, standing outside the camera ring (backgrounds)."""
    person_gap: float = 0.1
    """Least horizontal gap between two people's footprints (and between a footprint and a box), metres:
    a footprint is the circle about the pelvis holding all of the body's vertices."""
    camera_height: tuple[float, float] = (1.0, 2.5)
    """Height of the cameras above the floor, metres."""
    field_of_view: tuple[float, float] = (40.0, 70.0)
    """Horizontal (= vertical, square images) field of view, degrees; the focal length follows."""
    fill: tuple[float, float] = (0.7, 1.0)
    """Angular radius of the sphere holding all people as a fraction of the half field of view: the
    camera distance follows (1: the sphere touches the image edges)."""

    def __post_init__(self) -> None:
        least = dict(persons=1, views=1, boxes=0, walls=0, camera_height=0.1, field_of_view=1, fill=0.05)
        bad = [
            f"{name} {getattr(self, name)} (needs {low} ≤ low ≤ high)"
            for name, low in least.items()
            if not low <= getattr(self, name)[0] <= getattr(self, name)[1]
        ]
        if self.field_of_view[1] >= 170:
            bad.append(f"field_of_view up to {self.field_of_view[1]}° (needs < 170°)")
        if self.person_gap < 0:
            bad.append(f"person_gap {self.person_gap} (needs ≥ 0)")
        if bad:
            raise InputError(f"scene layout: {'; '.join(bad)}")


@dataclass(frozen=True)
class People:
    """P persons in the world frame, Anny's conventions (``core.body.anny_backend``)."""

    shape: Float[np.ndarray, "P 6"]
    """Anny's phenotypes."""
    global_orient: Float[np.ndarray, "P 3"]
    """Axis-angle, canonical body (y up, facing +z) → world."""
    body_pose: Float[np.ndarray, "P 21 3"]
    """SMPL-X-layout parent-relative axis-angle."""
    transl: Float[np.ndarray, "P 3"]
    """World position of the pelvis joint, metres."""
    vertices: Float[np.ndarray, "P N 3"]
    """Posed mesh, world, metres; the lowest vertex of each person at z = 0."""
    joints: Float[np.ndarray, "P J 3"]
    """The body model's named joints (``BodyModel.joint_names``), world, metres."""
    garments: Float[np.ndarray, "P 2 3"]
    """RGB in [0, 1] of each person's top (torso) and trousers (legs)."""


@dataclass(frozen=True)
class Boxes:
    """B upright boxes standing on the floor (walls are thin tall ones)."""

    center: Float[np.ndarray, "B 3"]
    """Centre of each box, world, metres (z: half its height)."""
    size: Float[np.ndarray, "B 3"]
    """Extent along the box's own x, y and z axes, metres."""
    yaw: Float[np.ndarray, " B"]
    """Rotation of the box about the world z axis, radians (its x axis at ``yaw`` from the world's)."""
    color: Float[np.ndarray, "B 3"]
    """RGB in [0, 1]."""


@dataclass(frozen=True)
class Floor:
    """The z = 0 plane as a square checkerboard centred on the origin."""

    half_size: float
    """Half the side of the square, metres."""
    tile: float
    """Side of one checker square, metres."""
    colors: Float[np.ndarray, "2 3"]
    """RGB in [0, 1] of the two kinds of squares."""


@dataclass(frozen=True)
class Lighting:
    direction: Float[np.ndarray, 3]
    """Unit vector along which the directional light travels, world (pointing down)."""
    intensity: float
    """Directional light intensity (pyrender's units, about lux)."""
    ambient: float
    """Ambient light level in [0, 1], the same for red, green and blue."""
    background: Float[np.ndarray, 3]
    """RGB in [0, 1] where nothing is hit (above the walls, beyond the floor)."""


@dataclass(frozen=True)
class SceneLayout:
    """Everything a renderer needs to draw one scene."""

    people: People
    boxes: Boxes
    walls: Boxes
    floor: Floor
    lighting: Lighting
    cameras: CameraRig
    """Pinhole cameras without distortion; ``K`` OpenCV-centred (the first pixel's centre is 0)."""


def sample_layout(
    rng: np.random.Generator, body: BodyModel, config: LayoutConfig = LayoutConfig(), image_size: int = 224
) -> SceneLayout:
    """One random scene (deterministic for the generator's state) with square ``image_size`` images.

    Args:
        rng: the scene's only source of randomness.
        body: an Anny body model (``AnnyBody``): it poses the people.
        config: what the scene may hold.
        image_size: width and height of every camera's images, pixels.
    """
    people = _sample_people(rng, body, config)
    floor_xy = people.vertices[..., :2].reshape(-1, 2)
    low, high = floor_xy.min(axis=0), floor_xy.max(axis=0)
    center = np.array([*(low + high) / 2, people.vertices[..., 2].max() / 2])
    radius = float(np.linalg.norm(people.vertices - center, axis=-1).max())
    cameras = _sample_cameras(rng, config, center, radius, image_size)
    camera_distance = np.linalg.norm(cameras.centers[:, :2] - center[:2], axis=-1)
    boxes = _sample_boxes(rng, config, people, float(camera_distance.min()) - 1.0)
    walls = _sample_walls(rng, config, center, float(camera_distance.max()))
    extent = np.abs(np.concatenate([walls.center[:, :2], cameras.centers[:, :2]])).max() + 5.0
    base = rng.uniform(0.25, 0.85, 3)
    floor = Floor(
        half_size=float(extent),
        tile=float(rng.uniform(0.4, 1.0)),
        colors=np.stack([base, base * rng.uniform(0.55, 0.8)]),
    )
    azimuth, elevation = rng.uniform(0.0, 2 * np.pi), np.radians(rng.uniform(35.0, 80.0))
    lighting = Lighting(
        direction=-np.array(
            [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)]
        ),
        intensity=float(rng.uniform(1.2, 2.4)),
        ambient=float(rng.uniform(0.15, 0.35)),
        background=rng.uniform(0.45, 1.0, 3),
    )
    return SceneLayout(people, boxes, walls, floor, lighting, cameras)


def random_limb_rotations(rng: np.random.Generator, persons: int) -> Float[np.ndarray, "P 21 3"]:
    """Random parent-relative rotations within ``BODY_POSE_LIMITS`` (see there), axis-angle."""
    limits = np.array([BODY_POSE_LIMITS[name] for name in JOINT_NAMES[1:]])
    axis = rng.normal(size=(persons, 21, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = rng.uniform(0.0, 1.0, (persons, 21)) * limits
    for name, (component, sign) in HINGES.items():
        joint = JOINT_NAMES.index(name) - 1
        axis[:, joint] = np.eye(3)[component] * sign
    return axis * angle[..., None]


def _sample_people(rng: np.random.Generator, body: BodyModel, config: LayoutConfig) -> People:
    """Posed people on the floor, spaced by their footprints and centred on the origin."""
    P = int(rng.integers(config.persons[0], config.persons[1] + 1))
    shape = rng.uniform(PHENOTYPE_RANGES[:, 0], PHENOTYPE_RANGES[:, 1], (P, 6))
    walk = gait_pose(
        rng.uniform(0.0, 2 * np.pi, (P, 1)),
        rng.uniform(0.85, 1.15, (P, 1)),
        rng.normal(0, 0.03, (P, 1, 21, 3)),
    )[:, 0]
    jitter = random_limb_rotations(rng, P)
    body_pose = (
        (Rotation.from_rotvec(walk.reshape(-1, 3)) * Rotation.from_rotvec(jitter.reshape(-1, 3)))
        .as_rotvec()
        .reshape(P, 21, 3)
    )
    global_orient = upright_orient(rng.uniform(-np.pi, np.pi, P))
    posed = body(
        BodyParameters(
            global_orient=torch.as_tensor(global_orient, dtype=torch.float32),
            transl=torch.zeros(P, 3),
            body_pose=torch.as_tensor(body_pose, dtype=torch.float32),
            shape=torch.as_tensor(shape, dtype=torch.float32),
        )
    )
    vertices = posed.vertices.numpy().astype(np.float64)  # pelvis at the origin
    footprint = np.linalg.norm(vertices[..., :2], axis=-1).max(axis=1)  # (P,)
    ground = _place_footprints(rng, footprint, config.person_gap)
    ground -= (ground - footprint[:, None]).min(axis=0) / 2 + (ground + footprint[:, None]).max(axis=0) / 2
    transl = np.concatenate([ground, -vertices[..., 2].min(axis=1, keepdims=True)], axis=1)
    return People(
        shape=shape,
        global_orient=global_orient,
        body_pose=body_pose,
        transl=transl,
        vertices=vertices + transl[:, None],
        joints=posed.joints.numpy().astype(np.float64) + transl[:, None],
        garments=rng.uniform(0.1, 0.95, (P, 2, 3)),
    )


def _place_footprints(
    rng: np.random.Generator, radius: Float[np.ndarray, " P"], gap: float, tries: int = 64
) -> Float[np.ndarray, "P 2"]:
    """Centres of P discs (footprints of ``radius``) on the floor, at least ``gap`` apart, one at a time:
    each takes the first of ``tries`` uniform candidates in a disc that clears the ones placed, the disc
    growing by a fifth whenever no candidate does."""
    spread = np.sqrt(np.sum((radius + gap) ** 2))
    placed = np.zeros((0, 2))
    for r in radius:
        while True:
            candidates = _uniform_disc(rng, spread, tries)
            clearance = np.linalg.norm(candidates[:, None] - placed[None], axis=-1) - radius[: len(placed)]
            free = np.all(clearance >= r + gap, axis=1)
            if free.any():
                placed = np.concatenate([placed, candidates[free.argmax()][None]])
                break
            spread *= 1.2
    return placed


def _uniform_disc(rng: np.random.Generator, radius: float, count: int) -> Float[np.ndarray, "N 2"]:
    angle = rng.uniform(0.0, 2 * np.pi, count)
    r = radius * np.sqrt(rng.uniform(0.0, 1.0, count))
    return np.stack([r * np.cos(angle), r * np.sin(angle)], axis=-1)


def _sample_cameras(
    rng: np.random.Generator,
    config: LayoutConfig,
    center: Float[np.ndarray, 3],
    radius: float,
    image_size: int,
) -> CameraRig:
    """V cameras spread around a ring about ``center`` (the people's bounding sphere of ``radius``), each
    far enough for that sphere to fill ``config.fill`` of its half field of view, looking near its
    centre."""
    V = int(rng.integers(config.views[0], config.views[1] + 1))
    angles = (np.arange(V) + rng.uniform(-0.2, 0.2, V)) * 2 * np.pi / V + rng.uniform(0.0, 2 * np.pi)
    half_fov = np.radians(rng.uniform(*config.field_of_view, V)) / 2
    distance = radius / np.sin(rng.uniform(*config.fill, V) * half_fov)
    height = rng.uniform(*config.camera_height, V)
    ring = np.sqrt(np.maximum(distance**2 - (height - center[2]) ** 2, 0.25))
    focal = image_size / 2 / np.tan(half_fov)
    principal = (image_size - 1) / 2
    targets = center + rng.uniform(-0.1, 0.1, (V, 3)) * radius
    cameras = []
    for v in range(V):
        position = np.array(
            [center[0] + ring[v] * np.cos(angles[v]), center[1] + ring[v] * np.sin(angles[v]), height[v]]
        )
        R, t = look_at(position, targets[v])
        K = np.array([[focal[v], 0.0, principal], [0.0, focal[v], principal], [0.0, 0.0, 1.0]])
        cameras.append(Camera(f"cam{v:02d}", K, np.zeros(5), R, t, image_size, image_size))
    return CameraRig(tuple(cameras))


def _sample_boxes(rng: np.random.Generator, config: LayoutConfig, people: People, reach: float) -> Boxes:
    """Boxes within ``reach`` of the origin (inside the camera ring), each clear of every footprint and
    box before it by ``config.person_gap``; one that finds no room in 32 tries is left out."""
    count = int(rng.integers(config.boxes[0], config.boxes[1] + 1))
    size = np.concatenate([rng.uniform(0.3, 1.2, (count, 2)), rng.uniform(0.3, 1.4, (count, 1))], axis=1)
    yaw = rng.uniform(0.0, np.pi / 2, count)
    color = rng.uniform(0.15, 0.95, (count, 3))
    ground = people.transl[:, :2]
    footprint = np.linalg.norm(people.vertices[..., :2] - ground[:, None], axis=-1).max(axis=1)
    keep, centers = [], []
    for b in range(count):
        half = np.linalg.norm(size[b, :2]) / 2
        candidates = _uniform_disc(rng, max(reach - half, 0.0), 32)
        clearance = np.linalg.norm(candidates[:, None] - ground[None], axis=-1) - footprint
        free = np.all(clearance >= half + config.person_gap, axis=1)
        if free.any():
            position = candidates[free.argmax()]
            keep.append(b)
            centers.append([*position, size[b, 2] / 2])
            ground = np.concatenate([ground, position[None]])
            footprint = np.append(footprint, half)
    return Boxes(np.array(centers).reshape(-1, 3), size[keep], yaw[keep], color[keep])


def _sample_walls(
    rng: np.random.Generator, config: LayoutConfig, center: Float[np.ndarray, 3], ring: float
) -> Boxes:
    """Thin tall boxes facing ``center`` from beyond the camera ring (``ring``: its largest radius)."""
    count = int(rng.integers(config.walls[0], config.walls[1] + 1))
    angle = rng.uniform(0.0, 2 * np.pi, count)
    distance = ring + rng.uniform(0.5, 2.5, count)
    size = np.stack(
        [np.full(count, 0.15), rng.uniform(3.0, 8.0, count), rng.uniform(2.2, 3.5, count)], axis=1
    )
    center = np.stack(
        [center[0] + distance * np.cos(angle), center[1] + distance * np.sin(angle), size[:, 2] / 2], axis=1
    )
    color = rng.uniform(0.5, 0.9, (count, 1)) * rng.uniform(0.85, 1.0, (count, 3))
    return Boxes(center, size, angle, color)
