"""The floor fallback: a plane under people's feet, not tilted by a step, following the world's up when
known, textured from the views without the people."""

import numpy as np

from core.scene.ground import (
    WORLD_UP,
    GroundConfig,
    GroundPlane,
    TextureFrame,
    fit_ground,
    sample_ground,
)
from core.types import Camera, CameraRig, PersonTrack

NAMES = ("pelvis", "head", "left_heel", "right_heel", "left_foot_index", "right_foot_index")


def plane_basis(normal):
    helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(normal, helper)
    u /= np.linalg.norm(u)
    return u, np.cross(normal, u)


def walker(person_id, path, normal, offset, up=None, frames=None):
    """A person whose four foot points touch the plane n · x + d = 0 along ``path`` (F, 2) plane coordinates;
    pelvis and head straight above along ``up`` (default: the plane normal)."""
    normal = np.asarray(normal, dtype=float)
    up = normal if up is None else np.asarray(up, dtype=float)
    u, w = plane_basis(normal)
    foot = -offset * normal + path[:, :1] * u + path[:, 1:] * w  # (F, 3) on the plane
    feet = foot[:, None] + np.array([[0.1, 0.05], [-0.1, 0.05], [0.1, 0.25], [-0.1, 0.25]]) @ np.stack([u, w])
    pelvis = foot + 0.95 * up
    joints = np.concatenate([pelvis[:, None], (pelvis + 0.6 * up)[:, None], feet], axis=1)
    count = path.shape[0]
    return PersonTrack(
        person_id=person_id,
        frames=np.arange(count) if frames is None else frames,
        global_orient=np.zeros((count, 3)),
        transl=pelvis,
        body_pose=np.zeros((count, 21, 3)),
        shape=np.zeros(0),
        joints=joints,
        joint_views=np.full(joints.shape[:2], 2),
        residuals_px=np.full((count, 1), np.nan),
        confidence=np.ones(count),
        views=np.ones((count, 1), dtype=bool),
        joint_names=NAMES,
    )


def circle(center, radius, count=24):
    angle = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return np.asarray(center) + radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)


def test_feet_on_a_tilted_plane_give_that_plane():
    normal = np.array([-0.05, 0.03, 1.0])
    normal /= np.linalg.norm(normal)
    offset = -0.1 / np.linalg.norm([-0.05, 0.03, 1.0])  # z = 0.1 + 0.05 x - 0.03 y
    persons = [
        walker(p, circle(c, 0.6), normal, offset) for p, c in enumerate([(0, 0), (1.5, 0.5), (-1, 1.5)])
    ]
    plane = fit_ground(persons, GroundConfig())
    np.testing.assert_allclose(plane.normal, normal, atol=1e-9)
    np.testing.assert_allclose(plane.offset, offset, atol=1e-9)
    np.testing.assert_allclose(plane.height(plane.contacts), 0.0, atol=1e-9)
    assert plane.contacts.shape == (3 * 24 * 4, 3)
    np.testing.assert_allclose(plane.height(np.array([1.0, 2.0, 0.1 + 0.05 - 0.06])), 0.0, atol=1e-12)


def test_contacts_along_a_line_keep_the_people_s_up_and_an_area_fits_the_plane():
    normal = np.array([0.0, np.sin(0.015), np.cos(0.015)])  # floor tilted 0.86° about x
    up = np.array([0.0, 0.0, 1.0])  # the people stand plumb
    line = np.stack([np.linspace(-1, 1, 30), np.zeros(30)], axis=1)  # along x: heights do not vary
    plane = fit_ground([walker(0, line, normal, 0.0, up=up)], GroundConfig())
    np.testing.assert_allclose(plane.normal, up, atol=1e-12)
    area = [walker(p, circle(c, 0.5), normal, 0.0, up=up) for p, c in enumerate([(0, -0.4), (0, 0.4)])]
    plane = fit_ground(area, GroundConfig())
    np.testing.assert_allclose(plane.normal, normal, atol=1e-9)
    np.testing.assert_allclose(plane.offset, 0.0, atol=1e-9)


def test_a_person_on_a_step_does_not_tilt_the_floor_and_a_tie_goes_to_the_lower_level():
    up = np.array([0.0, 0.0, 1.0])
    floor = walker(0, circle((0, 0), 0.6), up, 0.0)
    step = walker(1, circle((2.5, 0), 0.6), up, -0.15)  # z = 0.15
    plane = fit_ground([floor, step], GroundConfig())  # as many contacts on each level
    np.testing.assert_allclose(plane.normal, up, atol=1e-12)
    np.testing.assert_allclose(plane.offset, 0.0, atol=1e-12)
    np.testing.assert_allclose(plane.contacts[:, 2], 0.0, atol=1e-12)
    # Two people on the step outnumber one on the floor: the step is the floor.
    second = walker(2, circle((2.5, 1.5), 0.6), up, -0.15)
    plane = fit_ground([floor, step, second], GroundConfig())
    np.testing.assert_allclose(plane.normal, up, atol=1e-9)
    np.testing.assert_allclose(plane.offset, -0.15, atol=1e-9)


def test_a_lifted_foot_is_not_a_contact():
    up = np.array([0.0, 0.0, 1.0])
    person = walker(0, circle((0, 0), 0.8, count=40), up, 0.0)
    joints = person.joints.copy()
    joints[::4, 2, 2] += 0.3  # the left heel swings up every fourth frame
    person = PersonTrack(**{**vars(person), "joints": joints})
    plane = fit_ground([person], GroundConfig())
    np.testing.assert_allclose(plane.offset, 0.0, atol=1e-12)
    assert plane.contacts.shape[0] == 40 * 4 - 10
    assert (plane.contacts[:, 2] == 0.0).all()


def test_no_person_with_a_head_and_feet_gives_no_floor():
    person = walker(0, circle((0, 0), 0.5), np.array([0.0, 0.0, 1.0]), 0.0)
    assert fit_ground([], GroundConfig()) is None
    headless = PersonTrack(**{**vars(person), "joint_names": ("pelvis", "neck", *NAMES[2:])})
    assert fit_ground([headless], GroundConfig()) is None
    lost = PersonTrack(**{**vars(person), "joints": np.full_like(person.joints, np.nan)})
    assert fit_ground([lost], GroundConfig()) is None


def top_down_camera(name, height, focal=100.0, size=256):
    """Straight down from (0, 0, height): world x is image right, world y image up."""
    R = np.diag([1.0, -1.0, -1.0])
    K = np.array([[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]])
    return Camera(name, K, np.zeros(5), R, -R @ [0.0, 0.0, height], size, size)


def test_the_floor_is_sampled_around_the_people_and_coloured_by_the_pixel_it_projects_to():
    plane = GroundPlane(normal=np.array([0.0, 0.0, 1.0]), offset=0.0, contacts=np.zeros((0, 3)))
    looking_up = Camera("up", np.eye(3), np.zeros(5), np.eye(3), np.zeros(3), 10, 10)  # sees no floor
    cameras = CameraRig((top_down_camera("down", 2.0), looking_up))
    rows, cols = np.indices((256, 256))
    coded = np.stack([cols, rows, np.full_like(rows, 7)], axis=-1).astype(np.uint8)  # colour = pixel
    config = GroundConfig(spacing=0.1, margin=0.5)
    nobody = np.zeros((256, 256), dtype=bool), np.zeros((10, 10), dtype=bool)
    frames = [TextureFrame([coded, coded], nobody)]
    points, colours = sample_ground(
        plane, np.array([[0.0, 0.0, 0.9], [1.0, 0.0, 0.9]]), cameras, frames, config
    )
    np.testing.assert_allclose(points[:, 2], 0.0, atol=1e-12)
    # A 0.1 grid over the people's box grown by the margin, x ∈ [-0.5, 1.5], y ∈ [-0.5, 0.5].
    for axis, (low, high) in enumerate([(-0.5, 1.5), (-0.5, 0.5)]):
        values = np.unique(np.round(points[:, axis], 9))
        np.testing.assert_allclose(np.diff(values), 0.1, atol=1e-9)
        assert low - 1e-9 <= values[0] <= low + 0.1 + 1e-9 and high - 0.1 - 1e-9 <= values[-1] <= high + 1e-9
    assert len(points) == len(np.unique(np.round(points[:, 0], 9))) * len(
        np.unique(np.round(points[:, 1], 9))
    )
    # Pixel of (x, y, 0) from 2 m up with a 100 px focal length: (128 + 50 x, 128 − 50 y).
    expected = np.round(np.stack([128 + 50 * points[:, 0], 128 - 50 * points[:, 1]], axis=1))
    np.testing.assert_array_equal(colours[:, :2], expected)
    assert (colours[:, 2] == 7).all() and colours.dtype == np.uint8


def test_floor_colour_is_the_median_over_views_and_frames_and_unseen_points_are_left_out():
    plane = GroundPlane(normal=np.array([0.0, 0.0, 1.0]), offset=0.0, contacts=np.zeros((0, 3)))
    near = top_down_camera("near", 1.0, focal=100.0)  # sees |x|, |y| < 1.28
    far = top_down_camera("far", 4.0, focal=100.0)  # sees |x|, |y| < 5.12
    grey = [np.full((256, 256, 3), level, np.uint8) for level in (10, 40, 100, 250)]
    nobody = np.zeros((256, 256), dtype=bool)
    everywhere = np.ones((256, 256), dtype=bool)  # a person filling the far view: not floor
    frames = [
        TextureFrame([grey[0], grey[2]], [nobody, nobody]),
        TextureFrame([grey[1], grey[3]], [nobody, everywhere]),
    ]
    config = GroundConfig(spacing=0.1, margin=1.6)
    points, colours = sample_ground(plane, np.zeros((1, 3)), CameraRig((near, far)), frames, config)
    inner = (np.abs(points[:, :2]) < 1.2).all(axis=1)
    outer = (np.abs(points[:, :2]) > 1.3).any(axis=1)
    assert inner.any() and outer.any()
    np.testing.assert_array_equal(colours[inner], 40)  # median of 10, 40, 100 (250 is a person: masked)
    np.testing.assert_array_equal(colours[outer], 100)  # only the far camera's bare frame
    only_near = [TextureFrame(f.images[:1], f.people[:1]) for f in frames]
    only_near = sample_ground(plane, np.zeros((1, 3)), CameraRig((near,)), only_near, config)[0]
    assert (np.abs(only_near[:, :2]) < 1.3).all()  # what no camera sees is not returned


def tilt_degrees(normal):
    return np.degrees(np.arccos(np.clip(normal @ WORLD_UP / np.linalg.norm(normal), -1.0, 1.0)))


def bending_walkers_with_outliers(floor_z, noise=0.0, seed=0):
    """Two people walking along lines on z = floor_z, bent 30° forward (pelvis → head is no plumb line),
    some foot points mis-triangulated 0.2–0.6 m below the floor, plus a bystander on a 0.3 m platform."""
    rng = np.random.default_rng(seed)
    bent = np.array([np.sin(np.radians(30)), 0.0, np.cos(np.radians(30))])
    line = np.stack([np.linspace(-1.5, 1.5, 60), np.zeros(60)], axis=1)  # contacts along x: no area
    offset = -floor_z
    persons = [walker(p, line + [0.0, 0.4 * p], WORLD_UP, offset, up=bent) for p in range(2)]
    persons.append(walker(2, line[:15] + [6.0, 3.0], WORLD_UP, offset - 0.3, up=bent))
    noisy = []
    for person in persons:
        joints = person.joints.copy()
        joints[:, 2:] += noise * rng.standard_normal(joints[:, 2:].shape)
        wrong = rng.random(joints.shape[0]) < 0.05  # 5% of frames: the left heel far below the floor
        joints[wrong, 2, 2] = floor_z - rng.uniform(0.2, 0.6, wrong.sum())
        noisy.append(PersonTrack(**{**vars(person), "joints": joints}))
    return noisy


def test_with_the_world_s_up_known_the_normal_is_up_and_only_the_height_is_fitted():
    persons = bending_walkers_with_outliers(0.07)
    plane = fit_ground(persons, GroundConfig(), up=WORLD_UP)
    np.testing.assert_array_equal(plane.normal, WORLD_UP)
    np.testing.assert_allclose(plane.offset, -0.07, atol=1e-12)
    np.testing.assert_allclose(plane.contacts[:, 2], 0.07, atol=1e-12)  # no outlier, no bystander
    assert tilt_degrees(fit_ground(persons, GroundConfig()).normal) > 20  # the people's up misleads
    noisy = bending_walkers_with_outliers(0.07, noise=0.01, seed=1)  # 1 cm noise on every foot point
    plane = fit_ground(noisy, GroundConfig(), up=2.0 * WORLD_UP)  # any length: only the direction counts
    np.testing.assert_array_equal(plane.normal, WORLD_UP)
    assert abs(plane.offset + 0.07) < 0.003


def test_a_known_up_needs_no_head_and_follows_any_direction():
    normal = np.array([0.3, -0.2, 1.0]) / np.linalg.norm([0.3, -0.2, 1.0])
    person = walker(0, circle((0, 0), 0.6), normal, 0.25)
    headless = PersonTrack(**{**vars(person), "joint_names": ("pelvis", "neck", *NAMES[2:])})
    assert fit_ground([headless], GroundConfig()) is None
    plane = fit_ground([headless], GroundConfig(), up=normal)
    np.testing.assert_allclose(plane.normal, normal, atol=1e-15)
    np.testing.assert_allclose(plane.offset, 0.25, atol=1e-12)


def rectangle_mask(x0, y0, x1, y1, size=256):
    mask = np.zeros((size, size), dtype=bool)
    mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return mask


def test_the_floor_colour_is_the_floor_s_where_any_frame_saw_it_without_a_person():
    plane = GroundPlane(normal=WORLD_UP, offset=0.0, contacts=np.zeros((0, 3)))
    camera = top_down_camera("down", 2.0)  # floor (x, y) at pixel (128 + 50 x, 128 − 50 y)
    rows, cols = np.indices((256, 256))
    floor = np.stack([cols, rows, (cols + rows) % 256], axis=-1).astype(np.uint8)  # the true texture
    # A person who lingers over A in frames 0–2, then stands over B; a second one never moves from C.
    a, b, c = (60, 60, 110, 160), (150, 90, 200, 190), (20, 200, 60, 250)
    frames = []
    for t in range(5):
        people = rectangle_mask(*(a if t < 3 else b)) | rectangle_mask(*c)
        frames.append(TextureFrame([np.where(people[..., None], np.uint8([255, 0, 255]), floor)], [people]))
    config = GroundConfig(spacing=0.02, margin=2.6)  # one point per pixel over the whole image
    points, colours = sample_ground(plane, np.zeros((1, 3)), CameraRig((camera,)), frames, config)
    col, row = np.round(128 + 50 * points[:, 0]).astype(int), np.round(128 - 50 * points[:, 1]).astype(int)
    assert len(points) == 256 * 256
    always_hidden = rectangle_mask(*c)[row, col]
    np.testing.assert_array_equal(colours[~always_hidden], floor[row, col][~always_hidden])
    fill = np.median(floor[row, col][~always_hidden], axis=0).astype(np.uint8)
    np.testing.assert_array_equal(colours[always_hidden], np.broadcast_to(fill, (always_hidden.sum(), 3)))
    # Without the masks the median smears the lingering person over A.
    blind = [TextureFrame(f.images, [np.zeros((256, 256), dtype=bool)]) for f in frames]
    smeared = sample_ground(plane, np.zeros((1, 3)), CameraRig((camera,)), blind, config)[1]
    under_a = rectangle_mask(*a)[row, col]
    assert (smeared[under_a] == (255, 0, 255)).all() and under_a.sum() == 51 * 101
