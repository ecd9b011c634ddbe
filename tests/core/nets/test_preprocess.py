"""Pi3X and Multi-HMR image/camera mappings: sizes, pixel maps, intrinsics, cameras, points, Sim(3)."""

import numpy as np
import pytest
from PIL import Image, ImageOps
from scipy.spatial.transform import Rotation

from core.errors import InputError
from core.geometry import project_points, world_to_camera
from core.nets.image_map import NetIOError
from core.nets.multihmr.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    multihmr_input,
    square_intrinsics,
    square_pixel_map,
)
from core.nets.pi3x.align import AlignmentError, align_rigs
from core.nets.pi3x.preprocess import (
    PIXEL_LIMIT,
    coloured_points,
    depth_maps,
    intrinsics_from_rays,
    pi3x_cameras,
    pi3x_input,
    pi3x_pixel_map,
    pi3x_size,
)
from core.types import Camera, CameraRig

RNG_SEED = 7


def _K(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def _project(K: np.ndarray, points_cam: np.ndarray) -> np.ndarray:
    return project_points(points_cam, K, np.zeros(5), np.eye(3), np.zeros(3))


# --- Pi3X size rule -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        # 1920x1080: s = sqrt(255000 / 2073600); 673.30 / 14 -> 48, 378.73 / 14 -> 27; 672 * 378 fits.
        ((1920, 1080), (672, 378)),
        ((1280, 720), (672, 378)),
        ((1080, 1920), (378, 672)),
        # 640x480: 583.10 / 14 -> 42, 437.32 / 14 -> 31; 588 * 434 = 255192 too big, 42/31 wider than 4/3.
        ((640, 480), (574, 434)),
        ((480, 640), (434, 574)),
        # 1000x1000: 504.98 / 14 -> 36 each; 504 * 504 = 254016.
        ((1000, 1000), (504, 504)),
        # 3000x1000: 874.64 / 14 -> 62, 291.55 / 14 -> 21; 868 * 294 too big, 62/21 < 3 so the height drops.
        ((3000, 1000), (868, 280)),
        # Small frames are enlarged to the same budget.
        ((64, 48), (574, 434)),
    ],
)
def test_pi3x_size_worked_examples(size, expected):
    assert pi3x_size(*size) == expected


def test_pi3x_size_properties():
    rng = np.random.default_rng(RNG_SEED)
    for width, height in rng.integers(64, 6000, size=(2000, 2)):
        if max(width / height, height / width) > 4:
            continue
        w, h = pi3x_size(int(width), int(height))
        assert w % 14 == 0 and h % 14 == 0
        assert 0.9 * PIXEL_LIMIT < w * h <= PIXEL_LIMIT
        # Each side is within 1.5 patches of its ideal length (rounding, then at most one patch dropped).
        assert abs(np.log((w / h) / (width / height))) <= 1.5 * 14 / w + 1.5 * 14 / h


def test_pi3x_size_rejects_empty_frame():
    with pytest.raises(NetIOError):
        pi3x_size(0, 10)


# --- Pixel maps -----------------------------------------------------------------------------------------


def test_pi3x_pixel_map_aligns_image_corners():
    pixel_map = pi3x_pixel_map(1920, 1080)
    assert pixel_map.network_size == (672, 378)
    corners = np.array([[-0.5, -0.5], [1919.5, 1079.5]])
    np.testing.assert_allclose(pixel_map.to_network(corners), [[-0.5, -0.5], [671.5, 377.5]], atol=1e-12)


def test_pi3x_pixel_map_matches_pil_lanczos_geometry():
    """A horizontal ramp resized by PIL reads, at each grid pixel, the original position the map gives."""
    width, height = 640, 480
    pixel_map = pi3x_pixel_map(width, height)
    ramp = np.broadcast_to(np.arange(width, dtype=np.float32), (height, width))
    resized = np.asarray(
        Image.fromarray(ramp, mode="F").resize(pixel_map.network_size, Image.Resampling.LANCZOS)
    )
    grid_u = np.arange(pixel_map.network_size[0], dtype=float)
    expected = pixel_map.to_original(np.stack([grid_u, np.zeros_like(grid_u)], axis=-1))[:, 0]
    np.testing.assert_allclose(resized[0, 10:-10], expected[10:-10], atol=0.02)


@pytest.mark.parametrize(
    ("size", "side", "fitted", "pad"),
    [
        ((1920, 1080), 448, (448, 252), (0, 98)),
        ((640, 480), 896, (896, 672), (0, 112)),
        ((480, 640), 448, (336, 448), (56, 0)),
        # 481 / 640 * 448 = 336.7 -> 337; slack 111 -> round(55.5) = 56.
        ((640, 481), 448, (448, 337), (0, 56)),
        # 479 / 640 * 448 = 335.3 -> 335; slack 113 -> round(56.5) = 56 (halves to even).
        ((640, 479), 448, (448, 335), (0, 56)),
        ((300, 300), 224, (224, 224), (0, 0)),
    ],
)
def test_square_pixel_map_worked_examples(size, side, fitted, pad):
    width, height = size
    pixel_map = square_pixel_map(width, height, side)
    assert pixel_map.network_size == (side, side)
    # The original's outer corners land on the pasted image's outer corners (square pixels are edge-based).
    corners = pixel_map.to_network(np.array([[-0.5, -0.5], [width - 0.5, height - 0.5]]))
    np.testing.assert_allclose(corners, [pad, (pad[0] + fitted[0], pad[1] + fitted[1])], atol=1e-9)


def test_square_pixel_map_matches_pil_bicubic_geometry():
    width, height, side = 480, 640, 448
    pixel_map = square_pixel_map(width, height, side)
    ramp = np.broadcast_to(np.arange(width, dtype=np.float32), (height, width))
    fitted = np.asarray(Image.fromarray(ramp, mode="F").resize((336, 448), Image.Resampling.BICUBIC))
    square_u = np.arange(336) + 56 + 0.5  # pixel centres of the pasted image, edge-based square pixels
    expected = pixel_map.to_original(np.stack([square_u, np.zeros_like(square_u)], axis=-1))[:, 0]
    np.testing.assert_allclose(fitted[0, 10:-10], expected[10:-10], atol=0.05)


def test_pixel_round_trips():
    rng = np.random.default_rng(RNG_SEED)
    width, height = 1920, 1080
    pixels = rng.uniform([-0.5, -0.5], [width - 0.5, height - 0.5], size=(1000, 2))
    grid, square = pi3x_pixel_map(width, height), square_pixel_map(width, height, 896)
    np.testing.assert_allclose(grid.to_original(grid.to_network(pixels)), pixels, rtol=0, atol=1e-9)
    np.testing.assert_allclose(square.to_original(square.to_network(pixels)), pixels, rtol=0, atol=1e-9)
    grid_pixels = grid.to_network(pixels)
    via_square = grid.to_network(square.to_original(square.to_network(grid.to_original(grid_pixels))))
    np.testing.assert_allclose(via_square, grid_pixels, rtol=0, atol=1e-9)
    np.testing.assert_allclose(grid.inverse_matrix @ grid.matrix, np.eye(3), atol=1e-15)


@pytest.mark.parametrize(
    "pixel_map", [pi3x_pixel_map(1920, 1080), square_pixel_map(1920, 1080, 448)], ids=["pi3x", "multihmr"]
)
def test_intrinsics_follow_the_pixel_map(pixel_map):
    K = _K(1400.0, 1390.0, 955.0, 545.0)
    point = np.array([[0.4, -0.3, 3.0]])
    K_network = pixel_map.intrinsics_to_network(K)
    np.testing.assert_allclose(
        _project(K_network, point), pixel_map.to_network(_project(K, point)), atol=1e-9
    )
    np.testing.assert_allclose(pixel_map.intrinsics_to_original(K_network), K, atol=1e-9)
    if pixel_map.network_size[0] == pixel_map.network_size[1]:
        np.testing.assert_allclose(square_intrinsics(pixel_map, K), K_network, atol=0)


# --- Network inputs -------------------------------------------------------------------------------------


def test_pi3x_input_is_pil_lanczos_in_unit_range():
    frames = np.random.default_rng(RNG_SEED).integers(0, 256, size=(2, 480, 640, 3), dtype=np.uint8)
    images, pixel_map = pi3x_input(frames)
    assert images.shape == (1, 2, 3, 434, 574) and images.dtype.is_floating_point
    assert pixel_map.network_size == (574, 434)
    expected = np.asarray(Image.fromarray(frames[1]).resize((574, 434), Image.Resampling.LANCZOS)) / 255.0
    np.testing.assert_allclose(images[0, 1].permute(1, 2, 0).numpy(), expected, atol=1e-7)


@pytest.mark.parametrize(("size", "side"), [((640, 481), 448), ((481, 640), 448), ((101, 37), 224)])
def test_multihmr_input_matches_the_demo_pipeline(size, side):
    width, height = size
    frames = np.random.default_rng(RNG_SEED).integers(0, 256, size=(2, height, width, 3), dtype=np.uint8)
    images, pixel_map = multihmr_input(frames, side)
    assert images.shape == (2, 3, side, side)
    assert pixel_map == square_pixel_map(width, height, side)
    padded = ImageOps.pad(ImageOps.contain(Image.fromarray(frames[1]), (side, side)), size=(side, side))
    scaled = np.asarray(padded).astype(np.float32) / 255.0
    expected = ((scaled - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)).astype(np.float32)
    np.testing.assert_array_equal(images[1].permute(1, 2, 0).numpy(), expected)
    # Padding is black before normalisation.
    np.testing.assert_allclose(images[0, :, 0, 0].numpy(), -np.array(IMAGENET_MEAN) / IMAGENET_STD, rtol=1e-6)


def test_bad_frames_are_input_errors():
    with pytest.raises(NetIOError) as error:
        pi3x_input(np.zeros((2, 8, 8, 3), dtype=np.float32))
    assert isinstance(error.value, InputError)
    with pytest.raises(NetIOError):
        multihmr_input(np.zeros((8, 8, 3), dtype=np.uint8), 448)
    with pytest.raises(NetIOError):
        square_pixel_map(640, 480, 450)


# --- Multi-HMR intrinsics and outputs -------------------------------------------------------------------


def test_multihmr_default_intrinsics():
    pixel_map = square_pixel_map(1920, 1080, 896)
    K = square_intrinsics(pixel_map)
    focal = 896 * np.sqrt(3.0) / 2.0  # S / (2 tan 30°)
    np.testing.assert_allclose(K, _K(focal, focal, 448.0, 448.0), rtol=1e-15)
    # The camera it implies for the frame: focal scaled by 1920 / 896 and 1080 / 504, centred on the frame.
    K_original = pixel_map.intrinsics_to_original(K)
    np.testing.assert_allclose(
        K_original, _K(focal * 1920 / 896, focal * 1080 / 504, 959.5, 539.5), rtol=1e-12
    )


# --- Pi3X outputs ---------------------------------------------------------------------------------------


def _local_points(K: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Camera-frame points through every pixel centre of a ``width`` x ``height`` grid, random depths."""
    v, u = np.mgrid[0:height, 0:width].astype(float)
    pixels = np.stack([u, v, np.ones_like(u)], axis=-1)
    rays = pixels @ np.linalg.inv(K).T
    return rays * rng.uniform(0.5, 20.0, size=(height, width, 1))


def test_intrinsics_from_rays_centred_principal_point():
    rng = np.random.default_rng(RNG_SEED)
    height, width = 28, 42
    Ks = np.stack([_K(50.0, 48.0, 20.5, 13.5), _K(90.0, 95.0, 20.5, 13.5)])
    points = np.stack([_local_points(K, height, width, rng) for K in Ks])
    np.testing.assert_allclose(intrinsics_from_rays(points), Ks, rtol=1e-8)


def test_intrinsics_from_rays_fitted_principal_point():
    rng = np.random.default_rng(RNG_SEED)
    K = _K(60.0, 61.0, 18.25, 15.75)
    points = _local_points(K, 28, 42, rng)[None, None]  # (batch, views, H, W, 3)
    recovered = intrinsics_from_rays(points, centred_principal_point=False)
    assert recovered.shape == (1, 1, 3, 3)
    np.testing.assert_allclose(recovered[0, 0], K, rtol=1e-8, atol=1e-8)


def test_pi3x_cameras_project_like_the_network():
    pixel_map = pi3x_pixel_map(1920, 1080)
    K_grid = _K(500.0, 500.0, 335.5, 188.5)
    rotation = Rotation.from_rotvec([0.2, -0.5, 0.1]).as_matrix()
    centre = np.array([1.0, -2.0, 0.5])
    c2w = np.eye(4)
    c2w[:3, :3], c2w[:3, 3] = rotation, centre
    point = np.array([[1.5, -1.0, 4.0]])
    grid_pixel = _project(K_grid, (point - centre) @ rotation)  # camera frame: R_c2w^T (X - C)

    rig = pi3x_cameras(c2w[None], K_grid[None], pixel_map, ["cam0"])
    camera = rig.cameras[0]
    assert (camera.name, camera.width, camera.height) == ("cam0", 1920, 1080)
    np.testing.assert_allclose(camera.center, centre, atol=1e-12)
    projected = project_points(point, camera.K, camera.dist, camera.R, camera.t)
    np.testing.assert_allclose(projected, pixel_map.to_original(grid_pixel), atol=1e-9)
    with pytest.raises(NetIOError):
        pi3x_cameras(c2w[None], K_grid[None], pixel_map, ["a", "b"])


def test_depth_maps_are_camera_z():
    local_points = np.arange(24, dtype=float).reshape(1, 2, 4, 3)
    np.testing.assert_array_equal(depth_maps(local_points), local_points[..., 2])


def test_coloured_points_filter():
    points = np.arange(18, dtype=float).reshape(1, 2, 3, 3)
    points[0, 1, 2] = np.nan
    # sigmoid >= 0.1 keeps logits >= log(1/9) = -2.197.
    conf = np.array([[[5.0, -5.0, 0.0], [-2.0, -2.5, 1.0]]])[..., None]
    frames = (np.arange(18, dtype=np.uint8) * 10).reshape(1, 2, 3, 3)
    kept, colours = coloured_points(points, conf, frames)
    np.testing.assert_array_equal(kept, points[0].reshape(6, 3)[[0, 2, 3]])
    np.testing.assert_array_equal(colours, frames[0].reshape(6, 3)[[0, 2, 3]])
    assert colours.dtype == np.uint8

    strict, _ = coloured_points(points, conf[..., 0], frames, threshold=0.5)  # sigmoid(0) = 0.5 is kept
    np.testing.assert_array_equal(strict, points[0].reshape(6, 3)[[0, 2]])

    subset, subset_colours = coloured_points(points, conf, frames, max_points=2, seed=3)
    rows = [int(np.flatnonzero((kept == p).all(axis=1))[0]) for p in subset]
    assert len(rows) == 2 and rows == sorted(rows)
    np.testing.assert_array_equal(subset_colours, colours[rows])


def test_coloured_points_resize_original_frames_to_the_grid():
    points = np.ones((1, 2, 3, 3))
    frames = np.broadcast_to(np.array([10, 20, 30], dtype=np.uint8), (1, 4, 6, 3)).copy()
    kept, colours = coloured_points(points, np.zeros((1, 2, 3)), frames)
    assert kept.shape == (6, 3)
    np.testing.assert_array_equal(colours, np.tile([10, 20, 30], (6, 1)))


# --- Sim(3) alignment -----------------------------------------------------------------------------------


def _rig(rotations: np.ndarray, centres: np.ndarray) -> CameraRig:
    K = _K(800.0, 800.0, 640.0, 360.0)
    return CameraRig(
        tuple(
            Camera(f"c{i}", K, np.zeros(5), R, -R @ C, 1280, 720)
            for i, (R, C) in enumerate(zip(rotations, centres, strict=True))
        )
    )


@pytest.mark.parametrize(
    "centres",
    [
        np.array([[0.0, 0.0, 2.0], [4.0, 0.0, 2.5], [4.0, 3.0, 1.5], [-1.0, 3.0, 2.0]]),
        np.array([[0.0, 0.0, 2.0], [4.0, 1.0, 2.5]]),
        np.array([[0.0, 0.0, 2.0], [2.0, 0.0, 2.0], [5.0, 0.0, 2.0]]),
    ],
    ids=["spread", "two", "collinear"],
)
def test_align_rigs_recovers_a_known_similarity(centres):
    rng = np.random.default_rng(RNG_SEED)
    scale, R, t = 2.5, Rotation.from_rotvec([0.3, -0.7, 1.1]).as_matrix(), np.array([1.0, -2.0, 0.3])
    calibrated_R = Rotation.random(len(centres), random_state=rng).as_matrix()
    calibrated = _rig(calibrated_R, centres)
    # The same cameras in Pi3X's world: x_calibrated = scale R x_pi3x + t.
    pi3x = _rig(calibrated_R @ R, (centres - t) @ R / scale)

    similarity = align_rigs(pi3x, calibrated)
    assert similarity.scale == pytest.approx(scale, rel=1e-10)
    np.testing.assert_allclose(similarity.R, R, atol=1e-10)
    np.testing.assert_allclose(similarity.t, t, atol=1e-10)
    aligned = similarity.rig(pi3x)
    np.testing.assert_allclose(aligned.R, calibrated.R, atol=1e-10)
    np.testing.assert_allclose(aligned.t, calibrated.t, atol=1e-9)

    point_pi3x = rng.normal(size=(5, 3))
    point = similarity.points(point_pi3x)
    np.testing.assert_allclose(point, scale * point_pi3x @ R.T + t, atol=1e-10)
    depth_pi3x = world_to_camera(point_pi3x, pi3x.R[0], pi3x.t[0])[:, 2]
    depth = world_to_camera(point, calibrated.R[0], calibrated.t[0])[:, 2]
    np.testing.assert_allclose(similarity.depth(depth_pi3x), depth, atol=1e-9)


def test_align_rigs_rejects_degenerate_rigs():
    rotations = np.stack([np.eye(3)] * 2)
    rig = _rig(rotations, np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    with pytest.raises(AlignmentError):
        align_rigs(CameraRig(rig.cameras[:1]), CameraRig(rig.cameras[:1]))
    with pytest.raises(AlignmentError):
        align_rigs(rig, CameraRig(rig.cameras[:1]))
    with pytest.raises(AlignmentError):
        align_rigs(_rig(rotations, np.zeros((2, 3))), rig)
    with pytest.raises(AlignmentError) as error:
        align_rigs(rig, _rig(rotations, np.zeros((2, 3))))
    assert isinstance(error.value, InputError)
