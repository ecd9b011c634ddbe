"""CHROMM's geometric parts: Multi-HMR's square ↔ the frame ↔ Pi3X's grid, reads of Pi3X's maps there,
the head from a depth, the pelvis refined within its patch."""

import numpy as np
import pytest
import torch

from core.nets.chromm.grid import apply_map, depth_at, patch_features_at, square_to_grid
from core.nets.chromm.placement import head_positions, pelvis_cells, refined_pelvis
from core.nets.image_map import NetIOError
from core.nets.multihmr.preprocess import square_pixel_map
from core.nets.pi3x.preprocess import pi3x_pixel_map


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (1080, 1920), (640, 480), (500, 500)])
def test_square_to_grid_and_back_is_the_identity_and_goes_through_the_frame(width, height):
    square, grid = square_pixel_map(width, height, 448), pi3x_pixel_map(width, height)
    to_grid = square_to_grid(square, grid)
    rng = np.random.default_rng(0)
    original = rng.uniform(0, [width, height], (50, 2))
    np.testing.assert_allclose(to_grid.to_network(square.to_network(original)), grid.to_network(original))
    np.testing.assert_allclose(to_grid.inverse().to_network(to_grid.to_network(original)), original)
    np.testing.assert_allclose(square.inverse().to_network(square.to_network(original)), original)
    # The frame's outer corners (OpenCV-centred at -0.5 and size - 0.5) land on the grid's.
    corners = square.to_network(np.array([[-0.5, -0.5], [width - 0.5, height - 0.5]]))
    grid_width, grid_height = grid.network_size
    np.testing.assert_allclose(
        to_grid.to_network(corners), [[-0.5, -0.5], [grid_width - 0.5, grid_height - 0.5]]
    )
    torch_pixels = torch.tensor(original)
    np.testing.assert_allclose(apply_map(grid, torch_pixels).numpy(), grid.to_network(original))


def test_maps_of_different_images_do_not_chain():
    with pytest.raises(NetIOError, match="cannot chain"):
        square_pixel_map(640, 480, 448).then(pi3x_pixel_map(1920, 1080))


def test_a_patch_centre_reads_its_own_feature_and_between_two_centres_their_mean():
    rows, cols, registers, channels = 3, 4, 2, 5
    features = torch.randn(2, registers + rows * cols, channels)
    patch = features[:, registers:].unflatten(1, (rows, cols))
    centre = lambda row, col: [14 * col + 6.5, 14 * row + 6.5]  # noqa: E731
    pixels = torch.tensor([centre(1, 2), centre(2, 0), [14 * 1 + 6.5 + 7, 14 * 0 + 6.5]])
    image = torch.tensor([0, 1, 1])
    read = patch_features_at(features, rows, cols, image, pixels)
    torch.testing.assert_close(read[0], patch[0, 1, 2])
    torch.testing.assert_close(read[1], patch[1, 2, 0])
    torch.testing.assert_close(read[2], (patch[1, 0, 1] + patch[1, 0, 2]) / 2)


def test_depth_is_read_at_pixel_centres_and_clamped_at_the_border():
    depth = torch.arange(12.0).reshape(1, 3, 4)
    pixels = torch.tensor([[2.0, 1.0], [-5.0, 0.0], [0.5, 0.0]])
    read = depth_at(depth, torch.zeros(3, dtype=torch.long), pixels)
    torch.testing.assert_close(read, torch.tensor([6.0, 0.0, 0.5]))


def test_with_no_residual_the_head_lands_at_pi3x_depth_on_its_pixel_ray():
    K = torch.tensor([[500.0, 0, 224], [0, 520.0, 210], [0, 0, 1]]).expand(3, 3, 3)
    head = torch.tensor([[100.0, 50.0], [224.0, 210.0], [400.0, 300.0]])
    depth = torch.tensor([2.0, 3.5, 7.25])
    position = head_positions("depth_residual", head, K, depth, torch.zeros(3, 3))
    torch.testing.assert_close(position[:, 2], depth)
    projected = (K @ position[..., None])[..., 0]
    torch.testing.assert_close(projected[:, :2] / projected[:, 2:], head)
    moved = head_positions("depth_residual", head, K, depth, torch.tensor([[0.5, 9, 9]] * 3))
    torch.testing.assert_close(moved[:, 2], depth + 0.5)
    direct = head_positions("direct_depth", head, K, depth, torch.tensor([[4.0, 9, 9]] * 3))
    torch.testing.assert_close(direct[:, 2], torch.full((3,), 4.0))
    regressed = torch.randn(3, 3)
    torch.testing.assert_close(head_positions("direct_translation", head, K, depth, regressed), regressed)


def test_the_pelvis_is_refined_from_the_coarse_one_and_a_point_outside_the_image_keeps_the_coarse_one():
    coarse = torch.tensor([[30.0, 45.0], [440.0, 5.0], [100.0, 100.0]])
    offset = torch.tensor([[0.2, -0.1], [3.0, 0.0], [0.0, 0.0]])  # the second leaves the 448 square
    fine, refined = refined_pelvis(coarse, offset, 448)
    torch.testing.assert_close(fine[0], torch.tensor([30 + 0.2 * 14, 45 - 0.1 * 14]))
    torch.testing.assert_close(fine[2], coarse[2])  # a zero offset keeps the coarse point
    assert refined.tolist() == [True, False, True]
    torch.testing.assert_close(fine[1], coarse[1])
    row, col = pelvis_cells(torch.tensor([[-20.0, 500.0]]), 448)
    assert (row.item(), col.item()) == (31, 0)  # clamped into the grid


def test_gradients_flow_to_the_features_and_the_offsets():
    features = torch.randn(1, 2 + 6, 3, requires_grad=True)
    read = patch_features_at(features, 2, 3, torch.tensor([0]), torch.tensor([[10.0, 12.0]]))
    read.sum().backward()
    assert features.grad[0, 2:].abs().sum() > 0 and features.grad[0, :2].abs().sum() == 0
    offset = torch.zeros(1, 2, requires_grad=True)
    refined_pelvis(torch.tensor([[50.0, 60.0]]), offset, 448)[0].sum().backward()
    torch.testing.assert_close(offset.grad, torch.full((1, 2), 14.0))
