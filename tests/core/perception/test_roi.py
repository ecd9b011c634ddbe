"""Rotated regions: their affine maps, and crops that put image content where the maps say.

Coordinates are continuous: pixel i spans [i, i + 1], so a crop pixel's centre is at i + 0.5.
"""

import numpy as np
import pytest

from core.perception.roi import Regions, apply_affine, crop_regions, image_pyramid

UP = np.array([[0.0, -1.0]])  # the image's own up: an upright region


def region(center, side, up=UP):
    return Regions(
        center=np.array([center], dtype=float), side=np.array([side], dtype=float), up=np.asarray(up)
    )


def test_from_keypoints_is_the_enlarged_square_around_the_circle_pointing_at_the_second_point():
    regions = Regions.from_keypoints(
        np.array([[100.0, 100.0], [0.0, 0.0]]), np.array([[100.0, 50.0], [30.0, 40.0]]), 1.25
    )
    np.testing.assert_allclose(regions.side, [125.0, 125.0])
    np.testing.assert_allclose(regions.up, [[0.0, -1.0], [0.6, 0.8]])
    np.testing.assert_allclose(regions.center, [[100.0, 100.0], [0.0, 0.0]])


@pytest.mark.parametrize("angle", [0.0, 0.3, np.pi / 2, 2.0, np.pi])
def test_crop_to_image_maps_the_crop_centre_and_top_onto_the_region(angle):
    up = np.array([[np.sin(angle), -np.cos(angle)]])  # rotated clockwise from the image's up
    regions = region([320.0, 240.0], 100.0, up)
    affine = regions.crop_to_image(256)
    points = apply_affine(affine, np.array([[[128.0, 128.0], [128.0, 0.0], [256.0, 128.0], [0.0, 256.0]]]))[0]
    right = np.array([np.cos(angle), np.sin(angle)])  # the image's +x turned by the same angle
    np.testing.assert_allclose(points[0], [320.0, 240.0], atol=1e-12)
    np.testing.assert_allclose(points[1], [320.0, 240.0] + 50.0 * up[0], atol=1e-12)
    np.testing.assert_allclose(points[2], [320.0, 240.0] + 50.0 * right, atol=1e-12)
    np.testing.assert_allclose(points[3], [320.0, 240.0] - 50.0 * right - 50.0 * up[0], atol=1e-12)


def test_upright_box_is_the_square_and_a_45_degree_box_is_root_two_wider():
    upright = region([50.0, 60.0], 100.0)
    np.testing.assert_allclose(upright.box(), [[0.0, 10.0, 100.0, 110.0]], atol=1e-12)
    tilted = region([0.0, 0.0], 100.0, [[np.sqrt(0.5), -np.sqrt(0.5)]])
    half = 50.0 * np.sqrt(2.0)
    np.testing.assert_allclose(tilted.box(), [[-half, -half, half, half]], atol=1e-9)


def dot_image(height, width, x, y):
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[y, x] = 255
    return image


def test_an_upright_unit_scale_crop_copies_pixels_exactly():
    image = dot_image(200, 300, 120, 80)  # pixel (120, 80) spans [120, 121] × [80, 81]
    crops = crop_regions([image], region([120.0, 80.0], 64.0), 64)
    # The region centre (120, 80) is crop point (32, 32), so the dot's centre (120.5, 80.5) is the centre
    # of crop pixel (32, 32).
    expected = np.zeros((64, 64, 3), dtype=np.uint8)
    expected[32, 32] = 255
    np.testing.assert_array_equal(crops[0], expected)


def test_a_region_turned_a_quarter_shows_image_right_at_the_crop_top():
    image = dot_image(200, 300, 130, 85)  # dot centre (130.5, 85.5): 10.5 right, 5.5 below the centre
    crops = crop_regions([image], region([120.0, 80.0], 64.0, [[1.0, 0.0]]), 64)
    # Up is image +x, so the crop's +x is image +y and its +y is image -x: the dot is at crop
    # (32 + 5.5, 32 - 10.5) = (37.5, 21.5), the centre of crop pixel (37, 21).
    assert crops[0, 21, 37, 0] == 255
    assert crops[0].sum() == 3 * 255


def test_zero_outside_the_image():
    image = np.full((100, 100, 3), 90, dtype=np.uint8)
    crops = crop_regions([image], region([0.0, 50.0], 64.0), 64)  # left half of the crop is off the image
    assert (crops[0, :, :31] == 0).all() and (crops[0, :, 33:] == 90).all()


def blob_image(height, width, x, y, sigma):
    """A bright Gaussian centred at continuous point (x, y)."""
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    value = 255.0 * np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma**2))
    return np.repeat(np.round(value).astype(np.uint8)[..., None], 3, axis=-1)


def centroid(crop):
    weight = crop[..., 0].astype(float)
    rows, cols = np.indices(weight.shape) + 0.5
    return np.array([(weight * cols).sum(), (weight * rows).sum()]) / weight.sum()


@pytest.mark.parametrize(
    ("side", "angle", "levels"),
    [
        (64.0, 0.0, 1),  # 1 image pixel per crop pixel
        (64.0, 0.4, 1),
        (128.0, 2.5, 1),  # 2 per crop pixel, no pyramid: bilinear from the full image
        (128.0, 0.4, 3),  # 2 per crop pixel: pyramid level 1
        (256.0, -1.1, 3),  # 4 per crop pixel: level 2
        (512.0, 2.5, 3),  # 8 per crop pixel: the coarsest level there is (2)
    ],
)
def test_a_blob_lands_where_the_inverse_affine_puts_it_at_every_pyramid_level(side, angle, levels):
    centre = np.array([600.0, 500.0])
    blob = centre + side * np.array([0.137, -0.093])  # off every pixel grid, well inside the crop
    image = blob_image(1000, 1200, *blob, sigma=side / 16)  # 4 crop pixels wide whatever the scale
    up = np.array([[np.sin(angle), -np.cos(angle)]])
    regions = region(centre, side, up)
    crop = crop_regions(image_pyramid(image, levels), regions, 64)[0]
    # Expected crop position by hand: offsets along the crop's right and down axes, in crop pixels.
    right, down = np.array([-up[0, 1], up[0, 0]]), -up[0]
    expected = 32.0 + np.array([(blob - centre) @ right, (blob - centre) @ down]) * 64 / side
    np.testing.assert_allclose(centroid(crop), expected, atol=0.03)


def test_image_pyramid_halves_each_level():
    image = np.zeros((1920, 1088, 3), dtype=np.uint8)
    pyramid = image_pyramid(image, 3)
    assert [p.shape for p in pyramid] == [(1920, 1088, 3), (960, 544, 3), (480, 272, 3)]
    assert pyramid[0] is image
