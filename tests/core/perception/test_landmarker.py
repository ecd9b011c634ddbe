"""Landmark refinement by heatmaps, duplicate removal, and the embedded BlazePose models on real demo
frames (when `python -m studio assets` has installed them)."""

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.errors import InputError
from core.io.calibration import match_clips, read_calibration
from core.io.video import FrameRange, iter_frames, probe_clip, probe_clips
from core.keypoints import BLAZEPOSE_NAMES
from core.perception.blazepose import (
    DETECTOR_FILE,
    LANDMARK_FILE,
    BlazePose,
    model_directory,
    remove_duplicates,
)
from core.perception.config import BlazePoseConfig, DetectorConfig
from core.perception.hints import head_and_pelvis
from core.perception.landmarker import LANDMARK_INPUT_SIZE, Landmarks, refine_from_heatmaps
from core.perception.observer import observe_clips
from core.perception.tflite import TFLiteModel
from studio.assets import examples_directory

CELL = LANDMARK_INPUT_SIZE / 64  # crop pixels per heatmap cell
OFF = -80.0  # a logit whose sigmoid is 0 to double precision


def blob(heatmaps, r, j, col, row, peak=5.0, side=2.0):
    """A symmetric blob of logits: ``peak`` at (col, row), ``side`` at its four neighbours."""
    heatmaps[r, row, col, j] = peak
    for dc, dr in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        heatmaps[r, row + dr, col + dc, j] = side


def test_a_confident_blob_moves_the_point_to_its_cell_centre():
    heatmaps = np.full((2, 64, 64, 2), OFF)
    blob(heatmaps, 0, 0, col=20, row=30)
    blob(heatmaps, 0, 1, col=40, row=10, peak=3.0, side=3.0)  # a plus-shaped plateau: same centre
    blob(heatmaps, 1, 0, col=5, row=60)
    heatmaps[1, 50, 50, 1] = 4.0  # a single confident cell
    points = np.array(
        [
            [[20 * CELL + 7.0, 30 * CELL - 3.0], [42 * CELL + 1.0, 12 * CELL]],  # blobs inside the 7×7 window
            [[3 * CELL, 60 * CELL + 3.5], [50 * CELL, 50 * CELL]],
        ]
    )
    refined = refine_from_heatmaps(points, heatmaps)
    expected = (np.array([[[20, 30], [40, 10]], [[5, 60], [50, 50]]]) + 0.5) * CELL
    np.testing.assert_allclose(refined, expected, atol=1e-9)
    np.testing.assert_allclose(expected[0, 0], [82.0, 122.0])


def test_an_off_centre_blob_pulls_to_its_weighted_centre():
    heatmaps = np.full((1, 64, 64, 1), OFF)
    heatmaps[0, 30, 20, 0] = 10.0  # sigmoid ≈ 1
    heatmaps[0, 30, 21, 0] = 0.0  # sigmoid 1/2
    expected_col = (20 * 1 / (1 + np.exp(-10.0)) + 21 * 0.5) / (1 / (1 + np.exp(-10.0)) + 0.5)
    refined = refine_from_heatmaps(np.array([[[81.0, 121.0]]]), heatmaps)
    np.testing.assert_allclose(refined[0, 0], [(expected_col + 0.5) * CELL, 30.5 * CELL])


def test_low_confidence_heatmaps_and_blobs_outside_the_window_leave_points_untouched():
    heatmaps = np.full((1, 64, 64, 3), OFF)
    blob(heatmaps, 0, 0, col=20, row=30, peak=-1.0, side=-2.0)  # peak sigmoid 0.27 < 0.5
    blob(heatmaps, 0, 1, col=20, row=30)  # confident, but no blob cell within 3 cells of the point
    points = np.array([[[20 * CELL + 1.0, 30 * CELL + 2.0], [25 * CELL + 1.0, 30 * CELL], [100.3, 200.7]]])
    np.testing.assert_array_equal(refine_from_heatmaps(points, heatmaps), points)


def test_a_blob_at_the_heatmap_border_is_not_pulled_towards_the_edge():
    heatmaps = np.full((1, 64, 64, 1), OFF)
    blob(heatmaps, 0, 0, col=1, row=62)
    refined = refine_from_heatmaps(np.array([[[0.5, 255.5]]]), heatmaps)  # window rows 60..66, cols -3..3
    np.testing.assert_allclose(refined[0, 0], [1.5 * CELL, 62.5 * CELL], atol=1e-9)


def test_a_point_outside_the_crop_is_left_where_it_is():
    heatmaps = np.full((1, 64, 64, 1), OFF)
    blob(heatmaps, 0, 0, col=1, row=30)
    points = np.array([[[-40.0, 30 * CELL + 1.0]]])  # 10 cells left of the crop
    np.testing.assert_array_equal(refine_from_heatmaps(points, heatmaps), points)


def people(bodies, presence):
    """Landmarks of hand-made people; ``world[r, 0, 0]`` tags person r so that results can be traced."""
    image = np.stack(bodies)
    count = len(bodies)
    world = np.zeros((count, 33, 3))
    world[:, 0, 0] = np.arange(count)
    return Landmarks(
        image=image,
        visibility=np.ones((count, 33)),
        world=world,
        presence=np.asarray(presence, dtype=float),
        crops=np.zeros((count, 2, 2, 3), dtype=np.uint8),
        segmentation=np.zeros((count, 2, 2)),
    )


def test_duplicates_chimeras_and_absent_people_are_removed():
    rng = np.random.default_rng(0)
    a = np.stack([150 + rng.uniform(-50, 50, 33), np.linspace(100, 500, 33)], axis=1)  # 400 px tall
    far = a + [1500.0, 0.0]
    chimera = np.where((np.arange(33) < 17)[:, None], a, far)  # 17 of 33 landmarks on A
    half_chimera = np.where((np.arange(33) < 16)[:, None], a, far)  # 16 of 33: fewer than half
    bodies = [
        a,  # 0: A, most confident
        a + [600.0, 0.0],  # 1: another person
        a + [25.0, 0.0],  # 2: a second region on A (25 px < 0.1 × 400 px)
        a + [60.0, 0.0],  # 3: near the dropped duplicate only (35 px), not near A (60 px): kept
        chimera,  # 4: straddles A and someone beyond the frame
        half_chimera,  # 5
        a + [1200.0, 0.0],  # 6: not present
    ]
    found = remove_duplicates(
        people(bodies, [0.99, 0.97, 0.95, 0.93, 0.9, 0.88, 0.3]), min_presence=0.5, distance=0.1, limit=12
    )
    np.testing.assert_array_equal(found.world[:, 0, 0], [0, 1, 3, 5])  # most confident first
    np.testing.assert_array_equal(found.image, np.stack([bodies[i] for i in (0, 1, 3, 5)]))
    limited = remove_duplicates(
        people(bodies, [0.99, 0.97, 0.95, 0.93, 0.9, 0.88, 0.3]), min_presence=0.5, distance=0.1, limit=2
    )
    np.testing.assert_array_equal(limited.world[:, 0, 0], [0, 1])


def test_confidence_is_presence_times_mean_visibility():
    a = np.stack([np.full(33, 100.0), np.linspace(0, 400, 33)], axis=1)
    landmarks = people([a, a + [5.0, 0.0]], [0.9, 0.8])
    landmarks.visibility[0] = 0.5  # 0.45 against 0.8: the second region is the one kept
    found = remove_duplicates(landmarks, min_presence=0.5, distance=0.1, limit=12)
    np.testing.assert_array_equal(found.world[:, 0, 0], [1])


def test_model_files_that_are_missing_or_not_models_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="model file not found; run `python -m studio assets`"):
        TFLiteModel(tmp_path / "pose_detection.tflite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(InputError, match="not a readable TFLite model"):
        TFLiteModel(junk)


# --- the real models -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_frame():
    models = model_directory()
    clip = examples_directory() / "Demo_MultiPerson" / "videos" / "cam01.mp4"
    missing = [p for p in (models / DETECTOR_FILE, models / LANDMARK_FILE, clip) if not p.is_file()]
    if missing:
        pytest.skip(f"needs `python -m studio assets` (missing {', '.join(map(str, missing))})")
    _, image = next(iter(iter_frames(probe_clip(clip), FrameRange(0, 1))))
    return image


@pytest.fixture(scope="module")
def blazepose(demo_frame):
    """The embedded detector (only once the models are known to be installed)."""
    return BlazePose(BlazePoseConfig())


def test_blazepose_finds_the_two_people_of_the_demo_frame(blazepose, demo_frame):
    height, width = demo_frame.shape[:2]
    people = blazepose(demo_frame)
    assert len(people) == 2
    assert (people.presence > 0.9).all()
    head, pelvis = head_and_pelvis(people.image)
    assert ((pelvis > 0) & (pelvis < [width, height])).all()
    assert (head[:, 1] < pelvis[:, 1]).all()  # both stand upright
    assert (np.ptp(people.image[..., 1], axis=1) > 500).all()  # body height in pixels
    assert np.linalg.norm(pelvis[0] - pelvis[1]) > 200  # two people, not one found twice
    # Metric landmarks: hip centre at the origin, a standing adult's size.
    _, world_pelvis = head_and_pelvis(people.world)
    np.testing.assert_allclose(world_pelvis, 0.0, atol=0.05)
    assert ((np.ptp(people.world[..., 1], axis=1) > 1.2) & (np.ptp(people.world[..., 1], axis=1) < 2.2)).all()
    assert people.crops.shape == (2, 256, 256, 3) and people.segmentation.shape == (2, 256, 256)


def test_a_black_frame_has_nobody(blazepose):
    found = blazepose(np.zeros((1920, 1088, 3), dtype=np.uint8))
    assert len(found) == 0 and found.image.shape == (0, 33, 2) and found.world.shape == (0, 33, 3)


def test_observe_clips_turns_two_frames_of_four_views_into_observations(blazepose, demo_frame):
    scene = examples_directory() / "Demo_MultiPerson"
    clips = probe_clips(sorted((scene / "videos").glob("*.mp4")))
    calibration = scene / "calibration" / "Calib.qca.txt"
    cameras = match_clips(
        read_calibration(calibration),
        [(c.width, c.height) for c in clips],
        [c.name for c in clips],
        calibration,
    )
    calls = []
    result = observe_clips(blazepose, clips, FrameRange(0, 40, 20), cameras, lambda *a: calls.append(a))
    obs = result.observations
    assert calls == [(1, 2), (2, 2)]
    assert result.messages == ()
    assert obs.shape_model == "none" and obs.keypoint_names == BLAZEPOSE_NAMES
    assert set(obs.frame.tolist()) == {0, 1} and set(obs.view.tolist()) == {0, 1, 2, 3}
    # View 0, frame 0 is what BlazePose finds in that frame, in OpenCV's pixel-centre convention.
    first = (obs.view == 0) & (obs.frame == 0)
    np.testing.assert_allclose(obs.keypoints2d[first], blazepose(demo_frame).image - 0.5)
    np.testing.assert_allclose(obs.pelvis2d, head_and_pelvis(obs.keypoints2d)[1])
    assert ((obs.bbox[:, :2] < obs.pelvis2d) & (obs.pelvis2d < obs.bbox[:, 2:])).all()
    # 3D hints: people a few metres in front of the camera, upright (body up is image up).
    assert ((obs.position_cam[:, 2] > 1.0) & (obs.position_cam[:, 2] < 15.0)).all()
    body_up = Rotation.from_rotvec(obs.global_orient_cam).as_matrix()[:, :, 1]
    assert (body_up[:, 1] < -0.6).all()  # cameras look down a little at people walking about
    np.testing.assert_allclose(obs.canonical_pose[:, 0], 0.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(obs.embedding, axis=1), 1.0)


DOME = Path(__file__).parents[3] / "examples/data/panoptic_dome"


def _dome_views(instant: str) -> list[np.ndarray]:
    import cv2

    cameras = ("00_03", "00_06", "00_12", "00_13", "00_23")
    return [cv2.imread(str(DOME / c / f"{c}_{instant}.jpg"))[:, :, ::-1].copy() for c in cameras]


def test_a_view_finding_fewer_people_than_two_others_is_searched_again_with_finer_tiles(blazepose):
    """The dome from above: in 00_06 three people in full view stand about 400 px tall in a 1080-pixel
    frame; the coarse windows find one (three other views find two), the finer tiles all three."""
    views = _dome_views("00005514")
    coarse = np.bincount(blazepose.detect(views, cameras=None)["view"], minlength=5)
    assert coarse.tolist() == [2, 1, 1, 2, 2]
    fine = BlazePose(BlazePoseConfig(detector=DetectorConfig(fine_tile_scale=0.5)))
    found = np.bincount(fine.detect(views, cameras=None)["view"], minlength=5)
    assert found[1] == 3 and found[2] >= 1
    assert (found[[0, 3, 4]] == coarse[[0, 3, 4]]).all()  # views that agree are not searched again
