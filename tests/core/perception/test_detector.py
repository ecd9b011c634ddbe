"""The detector's plumbing without the model: anchors, windows, batch layout, decoding and suppression."""

import numpy as np
import pytest

from core.perception.anchors import DETECTOR_INPUT_SIZE, ssd_anchor_grids
from core.perception.detector import (
    Detections,
    box_iou,
    decode,
    square_windows,
    tile_grid,
    unfold_batch,
    weighted_nms,
    window_batch,
)


def test_anchor_grids_are_blazepose_s_2254_centres_in_row_order():
    grids = ssd_anchor_grids()
    assert [len(g) for g in grids] == [28 * 28 * 2, 14 * 14 * 2, 7 * 7 * 6] == [1568, 392, 294]
    anchors = np.concatenate(grids)
    assert anchors.shape == (2254, 2)
    # Each cell's anchors are consecutive; x runs fastest, then y.
    np.testing.assert_allclose(anchors[:3], [[0.5 / 28, 0.5 / 28]] * 2 + [[1.5 / 28, 0.5 / 28]])
    np.testing.assert_allclose(anchors[2 * 28], [0.5 / 28, 1.5 / 28])
    np.testing.assert_allclose(grids[1][:3], [[0.5 / 14, 0.5 / 14]] * 2 + [[1.5 / 14, 0.5 / 14]])
    np.testing.assert_allclose(grids[2][:6], [[0.5 / 7, 0.5 / 7]] * 6)
    np.testing.assert_allclose(anchors[-6:], [[6.5 / 7, 6.5 / 7]] * 6)
    assert (anchors > 0).all() and (anchors < 1).all()


def test_a_batched_output_laid_out_grid_by_grid_is_unfolded_batch_major():
    batch, grid_sizes, channels = 3, [4, 2, 3], 2
    # What each row should hold: (window, anchor) encoded in the values.
    expected = np.zeros((batch, sum(grid_sizes), channels))
    expected[..., 0] = np.arange(batch)[:, None]
    expected[..., 1] = np.arange(sum(grid_sizes))[None, :]
    # The batched layout: for each grid, all windows' rows of that grid one window after the other.
    starts = np.cumsum([0] + grid_sizes)
    folded = np.concatenate(
        [expected[b, starts[g] : starts[g + 1]] for g in range(len(grid_sizes)) for b in range(batch)]
    )[None]  # (1, B·A, C) as the model returns it
    np.testing.assert_array_equal(unfold_batch(folded, batch, grid_sizes), expected)


def test_a_single_window_output_is_unchanged_by_unfolding():
    output = np.random.default_rng(0).normal(size=(1, 2254, 12))
    grid_sizes = [len(g) for g in ssd_anchor_grids()]
    np.testing.assert_array_equal(unfold_batch(output, 1, grid_sizes), output)


def test_decode_maps_regressions_to_image_pixels_of_their_window():
    anchors = np.array([[0.25, 0.75], [0.5, 0.5], [0.1, 0.2]])
    windows = np.array([[100.0, -50.0, 448.0], [10.0, 20.0, 224.0]])
    raw = np.zeros((2, 3, 12))
    logits = np.full((2, 3, 1), -5.0)
    # Window 0, anchor 0: centre offset (22.4, -11.2) input pixels, box 44.8 × 22.4,
    # keypoint k offset k·(2.24, 4.48).
    raw[0, 0, :4] = [22.4, -11.2, 44.8, 22.4]
    raw[0, 0, 4:] = (np.arange(1, 5)[:, None] * [2.24, 4.48]).reshape(-1)
    logits[0, 0] = 2.0
    # Window 1, anchor 2: no offsets, a 224 × 112 input-pixel box.
    raw[1, 2, :4] = [0.0, 0.0, 224.0, 112.0]
    logits[1, 2] = 1.0
    logits[1, 1] = 0.0  # score exactly 0.5: not above the threshold
    found = decode(raw, logits, windows, anchors, min_score=0.5)

    assert len(found) == 2
    np.testing.assert_allclose(found.score, 1 / (1 + np.exp([-2.0, -1.0])))
    # Window 0 is 448 px wide at (100, -50): one input pixel is 2 image pixels.
    centre = np.array([100 + 448 * 0.25 + 2 * 22.4, -50 + 448 * 0.75 - 2 * 11.2])
    np.testing.assert_allclose(found.box[0], [*(centre - [44.8, 22.4]), *(centre + [44.8, 22.4])])
    anchor_px = np.array([100 + 448 * 0.25, -50 + 448 * 0.75])
    np.testing.assert_allclose(found.keypoints[0], anchor_px + np.arange(1, 5)[:, None] * [4.48, 8.96])
    # Window 1 is 224 px at (10, 20): input pixels are image pixels.
    np.testing.assert_allclose(
        found.box[1], [10 + 22.4 - 112, 20 + 44.8 - 56, 10 + 22.4 + 112, 20 + 44.8 + 56]
    )
    np.testing.assert_allclose(found.keypoints[1], np.tile([10 + 22.4, 20 + 44.8], (4, 1)))


def test_decode_with_nothing_above_the_threshold_is_empty():
    anchors = np.concatenate(ssd_anchor_grids())
    found = decode(
        np.zeros((2, len(anchors), 12)), np.full((2, len(anchors), 1), -3.0), np.ones((2, 3)), anchors, 0.5
    )
    assert len(found) == 0 and found.box.shape == (0, 4) and found.keypoints.shape == (0, 4, 2)


def test_box_iou_of_known_pairs():
    a = np.array([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    b = np.array([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0]])
    np.testing.assert_allclose(box_iou(a, b), [[1 / 7, 1.0, 0.0], [0.0, 0.25, 0.0]])


def detections(boxes, scores):
    boxes = np.asarray(boxes, dtype=float)
    keypoints = np.repeat(boxes[:, None, :2], 4, axis=1) + np.arange(4)[None, :, None]
    return Detections(boxes, keypoints, np.asarray(scores, dtype=float))


def test_weighted_nms_merges_overlapping_faces_into_their_score_weighted_mean():
    found = detections(
        [[0, 0, 10, 10], [1, 0, 11, 10], [100, 100, 110, 110], [2, 1, 12, 11]], [0.9, 0.6, 0.8, 0.3]
    )
    merged = weighted_nms(found, iou_threshold=0.3)
    assert len(merged) == 2
    np.testing.assert_allclose(merged.score, [0.9, 0.8])  # the cluster keeps its best score
    weight = np.array([0.9, 0.6, 0.3]) / 1.8
    np.testing.assert_allclose(merged.box[0], weight @ found.box[[0, 1, 3]])
    np.testing.assert_allclose(
        merged.keypoints[0], np.einsum("c,ckd->kd", weight, found.keypoints[[0, 1, 3]])
    )
    np.testing.assert_allclose(merged.box[1], [100, 100, 110, 110])
    np.testing.assert_allclose(merged.keypoints[1], found.keypoints[2])


def test_weighted_nms_clusters_around_the_best_box_only():
    # B overlaps A (the best) and C, C does not overlap A: A absorbs B, C stays a person of its own.
    found = detections([[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]], [0.9, 0.5, 0.7])
    merged = weighted_nms(found, iou_threshold=0.3)
    np.testing.assert_allclose(merged.score, [0.9, 0.7])
    shift = 0.5 / 1.4 * 5  # B's weight times its offset from A
    np.testing.assert_allclose(merged.box, [[shift, 0, 10 + shift, 10], [10, 0, 20, 10]])


def test_weighted_nms_of_nothing_is_empty():
    merged = weighted_nms(detections(np.zeros((0, 4)), []), 0.3)
    assert len(merged) == 0 and merged.box.shape == (0, 4) and merged.keypoints.shape == (0, 4, 2)


def test_portrait_frame_gets_a_letterboxed_square_and_three_half_overlapping_tiles():
    windows = square_windows(1088, 1920, overlap=0.5)
    np.testing.assert_array_equal(windows, [[-416, 0, 1920], [0, 0, 1088], [0, 416, 1088], [0, 832, 1088]])


def test_landscape_frame_tiles_run_along_x_and_a_square_frame_has_one_window():
    np.testing.assert_array_equal(
        square_windows(1920, 1080, overlap=0.5),
        [[0, -420, 1920], [0, 0, 1080], [420, 0, 1080], [840, 0, 1080]],
    )
    np.testing.assert_array_equal(square_windows(640, 640, overlap=0.5), [[0, 0, 640]])


@pytest.mark.parametrize(
    ("width", "height", "overlap"), [(1088, 1920, 0.5), (1920, 1080, 0.3), (720, 3000, 0.5)]
)
def test_tiles_cover_the_long_side_with_at_least_the_requested_overlap(width, height, overlap):
    tiles = square_windows(width, height, overlap)[1:]
    long_side, side = max(width, height), min(width, height)
    start = tiles[:, 1] if height > width else tiles[:, 0]
    assert start[0] == 0 and start[-1] + side == long_side
    assert (np.diff(start) <= side * (1 - overlap) + 1e-9).all()


@pytest.mark.parametrize(
    ("width", "height", "side"), [(1920, 1080, 540), (1088, 1920, 544), (1000, 1000, 300)]
)
def test_fine_tiles_cover_the_whole_frame_edge_to_edge_with_the_overlap(width, height, side):
    tiles = tile_grid(width, height, side, overlap=0.5)
    assert (tiles[:, 2] == side).all()
    for axis, extent in ((0, width), (1, height)):
        start = np.unique(tiles[:, axis])
        assert start[0] == 0 and start[-1] + side == pytest.approx(extent)
        assert (np.diff(start) <= side * 0.5 + 1e-9).all()
    assert len(tiles) == len(np.unique(tiles[:, 0])) * len(np.unique(tiles[:, 1]))  # a full grid


def test_window_batch_letterboxes_the_frame_and_resamples_the_tiles():
    image = np.zeros((1920, 1088, 3), dtype=np.uint8)
    image[416:1504] = 200  # exactly the middle tile
    batch = window_batch(image, square_windows(1088, 1920, 0.5), DETECTOR_INPUT_SIZE)
    assert batch.shape == (4, 224, 224, 3) and batch.dtype == np.uint8
    # Letterbox: the 1088-wide frame is 127 of 224 columns, starting at round(416·224/1920) = 49.
    assert (batch[0, :, :49] == 0).all() and (batch[0, :, 176:] == 0).all()
    np.testing.assert_array_equal(batch[0, 60:160, 49:176], 200)
    np.testing.assert_array_equal(batch[0, :40, 49:176], 0)
    np.testing.assert_array_equal(batch[2], 200)
    # First tile: rows 0..415 of 1088 are dark, i.e. the top 85.6 of its 224 rows.
    np.testing.assert_array_equal(batch[1, :85], 0)
    np.testing.assert_array_equal(batch[1, 86:], 200)
    np.testing.assert_array_equal(batch[3, :138], 200)
    np.testing.assert_array_equal(batch[3, 139:], 0)
