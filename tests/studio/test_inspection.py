"""Failure inspection images and time series on an exact synthetic scene with known gaps."""

import dataclasses
import itertools
import re

import av
import numpy as np
import pytest

from core.engine.pipeline import reconstruct_from_observations
from core.geometry import project_points
from core.skeleton import JOINT_NAMES
from core.types import CameraRig
from studio.inspection import (
    association_matrix,
    identity_color,
    matrix_image,
    overlay,
    overlay_grid,
    person_plot,
    person_timeseries,
    source_frame,
    source_thumbnails,
)
from tests.core.engine.scenes import exact_scene

GREYS = (10, 60, 110, 160, 210)


@pytest.fixture(scope="module")
def reconstruction():
    """3 persons, 3 views, 20 frames, a few false positives; view 1 loses person 0 from frame 12 on and
    view 2 misses person 1 at frame 5 (its tracklet spans the gap)."""
    scene = exact_scene(persons=3, views=3, frames=20, seed=0, false_positive_rate=0.05)
    obs, who = scene.observations, scene.observation_identity
    lost = (obs.view == 1) & (who == 0) & (obs.frame >= 12)
    missed = (obs.view == 2) & (who == 1) & (obs.frame == 5)
    drop = lost | missed
    return reconstruct_from_observations(obs.take(~drop), scene.cameras, 20, 30.0)


def observation_persons(reconstruction):
    obs = reconstruction.observations
    return reconstruction.assignment.person_of(reconstruction.tracklets.observation_tracklet, obs.frame)


def projected(reconstruction, person, row, view, scale):
    camera = reconstruction.cameras.cameras[view]
    return project_points(person.joints[row], camera.K, camera.dist, camera.R, camera.t) * scale


def test_identity_colors_are_pinned_distinct_and_grey_for_unassigned():
    assert identity_color(0) == (242, 36, 36) and identity_color(1) == (36, 96, 242)  # the same forever
    colors = np.array([identity_color(p) for p in range(10)], dtype=float)
    distances = [np.linalg.norm(a - b) for a, b in itertools.combinations(colors, 2)]
    assert min(distances) > 40.0
    assert (colors.max(axis=1) - colors.min(axis=1) > 150).all()  # saturated, never mistaken for grey
    assert identity_color(-1) == (128, 128, 128)


def test_source_frame_without_clips_is_a_dark_canvas_of_the_camera_size(reconstruction):
    image = source_frame(reconstruction, 1, 3)
    assert image.shape == (1080, 1920, 3) and image.dtype == np.uint8
    assert (image == image[0, 0]).all() and image[0, 0, 0] < 64


def write_grey_clip(path, greys, width=64, height=48):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for grey in greys:
            image = np.full((height, width, 3), grey, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def test_source_frame_decodes_the_clip_frame_of_a_reconstruction_frame(reconstruction, tmp_path):
    clip = tmp_path / "cam.mp4"
    write_grey_clip(clip, GREYS)
    small = CameraRig(
        tuple(dataclasses.replace(c, width=64, height=48) for c in reconstruction.cameras.cameras)
    )
    views = len(small)
    from_clips = dataclasses.replace(
        reconstruction, cameras=small, clips=(str(clip),) * views, first_frame=1, frame_step=2
    )
    for frame, clip_frame in ((0, 1), (1, 3)):  # clip frame = first_frame + frame * frame_step
        image = source_frame(from_clips, 2, frame)
        assert image.shape == (48, 64, 3) and image.dtype == np.uint8
        assert np.abs(image.astype(int) - GREYS[clip_frame]).max() <= 8
    moved = dataclasses.replace(from_clips, clips=(str(tmp_path / "gone.mp4"),) * views)
    assert source_frame(moved, 0, 0).shape == (48, 64, 3)

    two_frames = dataclasses.replace(from_clips, num_frames=2)
    thumbnails = np.stack(list(source_thumbnails(two_frames, 2, 32)))  # one stream for the whole run
    assert thumbnails.shape == (2, 24, 32, 3)
    for frame, clip_frame in ((0, 1), (1, 3)):
        assert np.abs(thumbnails[frame].astype(int) - GREYS[clip_frame]).max() <= 8
    (later,) = source_thumbnails(two_frames, 2, 32, start=1)
    assert np.abs(later.astype(int) - GREYS[3]).max() <= 8
    canvases = list(source_thumbnails(dataclasses.replace(two_frames, clips=()), 0, 32))
    assert len(canvases) == 2 and canvases[0].shape == (24, 32, 3)


def test_overlay_draws_the_selected_skeleton_at_its_projection_and_nothing_far_away(reconstruction):
    person, view, frame = reconstruction.persons[0], 0, 3
    background = source_frame(reconstruction, view, frame)
    image = overlay(reconstruction, person.person_id, frame, view)
    plain = overlay(reconstruction, None, frame, view)
    assert image.shape == (720, 1280, 3) and image.dtype == np.uint8  # 1920 wide, drawn at 1280
    joints = projected(reconstruction, person, frame, view, 1280 / 1920)
    color = identity_color(person.person_id)
    pelvis = np.round(joints[JOINT_NAMES.index("pelvis")]).astype(int)
    assert tuple(image[pelvis[1], pelvis[0]]) == color
    spine = joints[JOINT_NAMES.index("spine1")]
    x, y = np.round((joints[JOINT_NAMES.index("pelvis")] + spine) / 2).astype(int)  # mid-bone: no keypoint
    assert tuple(image[y, x]) == color
    assert (plain[y, x] == background[0, 0]).all()  # without a selection, the bone is not drawn
    obs = reconstruction.observations
    boxes = obs.bbox[(obs.view == view) & (obs.frame == frame)] * 1280 / 1920
    assert (boxes[:, :2] > 50).all()  # the corner is far from every detection
    assert (image[0, 0] == background[0, 0]).all()
    given = np.zeros((720, 1280, 3), dtype=np.uint8)
    drawn = overlay(reconstruction, person.person_id, frame, view, given)
    assert tuple(drawn[pelvis[1], pelvis[0]]) == color and not given.any()  # drawn on a copy


def test_overlay_draws_each_detection_in_its_persons_colour(reconstruction):
    obs = reconstruction.observations
    person = observation_persons(reconstruction)
    unassigned = np.flatnonzero(person < 0)
    assert unassigned.size  # the false positives are too short to be tracked
    for row in [*unassigned, *np.flatnonzero((obs.view == 1) & (obs.frame == 4))]:
        image = overlay(reconstruction, None, int(obs.frame[row]), int(obs.view[row]))
        points = np.round(obs.keypoints2d[row] * 1280 / 1920).astype(int)
        inside = (points >= 0).all(axis=1) & (points < [1280, 720]).all(axis=1)
        colors = image[points[inside, 1], points[inside, 0]]
        hits = (colors == identity_color(int(person[row]))).all(axis=1)
        assert hits.mean() >= 0.8  # overlapping people may cover a few dots


def test_overlay_of_an_unknown_person_is_an_error(reconstruction):
    with pytest.raises(KeyError, match="no person 99"):
        overlay(reconstruction, 99, 0, 0)


def tracklets_at(reconstruction, frame, person_id=None):
    """Naive reference: tracklets with an observation at ``frame`` (of one person if given)."""
    obs = reconstruction.observations
    persons = observation_persons(reconstruction)
    return {
        int(reconstruction.tracklets.observation_tracklet[i])
        for i in range(len(obs))
        if obs.frame[i] == frame
        and reconstruction.tracklets.observation_tracklet[i] >= 0
        and (person_id is None or persons[i] == person_id)
    }


def test_person_timeseries_holds_the_persons_evidence(reconstruction):
    cost = reconstruction.diagnostics.association_cost
    for person in reconstruction.persons:
        series = person_timeseries(reconstruction, person.person_id)
        frames = person.frames.size
        assert np.array_equal(series["frames"], person.frames)
        assert np.array_equal(series["reprojection_px"], person.residuals_px, equal_nan=True)
        assert np.array_equal(series["views"], person.views.sum(axis=1))
        sample = reconstruction.diagnostics.scale_sample_person == person.person_id
        assert np.array_equal(series["scale_frames"], reconstruction.diagnostics.scale_sample_frame[sample])
        assert np.array_equal(series["scale_ratios"], reconstruction.diagnostics.scale_samples[sample])
        assert series["association_cost"].shape == (frames,)
        for row, frame in enumerate(person.frames):
            pairs = itertools.combinations(sorted(tracklets_at(reconstruction, frame, person.person_id)), 2)
            expected = [cost[a, b] for a, b in pairs if np.isfinite(cost[a, b])]
            reference = np.mean(expected) if expected else np.nan
            np.testing.assert_allclose(series["association_cost"][row], reference, rtol=1e-9, atol=1e-15)
    (ended,) = np.flatnonzero(reconstruction.tracklets.last_frame == 11)  # view 1 lost its person
    lost = int(observation_persons(reconstruction)[reconstruction.tracklets.observation_tracklet == ended][0])
    assert len(tracklets_at(reconstruction, 15, lost)) == 2  # one pair of views left
    assert np.isfinite(person_timeseries(reconstruction, lost)["association_cost"][15])


def test_person_timeseries_without_association_costs_is_nan(reconstruction):
    refused = dataclasses.replace(
        reconstruction,
        diagnostics=dataclasses.replace(reconstruction.diagnostics, association_cost=np.zeros((0, 0))),
    )
    assert np.isnan(person_timeseries(refused, 0)["association_cost"]).all()


@pytest.mark.parametrize(("frame", "count"), [(0, 9), (5, 8), (15, 8)])
def test_association_matrix_shows_the_tracklets_alive_at_the_frame(reconstruction, frame, count):
    labels, matrix = association_matrix(reconstruction, frame)
    parsed = [re.fullmatch(r"(cam\d+)/t(\d+)→P(\d+|–)", label).groups() for label in labels]
    ids = np.array([int(t) for _, t, _ in parsed])
    assert set(ids.tolist()) == tracklets_at(reconstruction, frame) and len(ids) == count
    assert np.array_equal(matrix, reconstruction.diagnostics.association_cost[np.ix_(ids, ids)])
    persons = [int(p) for _, _, p in parsed]
    views = [reconstruction.cameras.names.index(c) for c, _, _ in parsed]
    assert list(zip(persons, views, strict=True)) == sorted(zip(persons, views, strict=True))
    tracklet_person = reconstruction.assignment.person_of(ids, np.full(ids.shape, frame))
    assert persons == tracklet_person.tolist()


def test_images_are_non_blank_rgb_of_the_documented_sizes(reconstruction):
    series = person_timeseries(reconstruction, 1)
    images = {
        "plot": (person_plot(series, reconstruction.cameras.names), (360, 900, 3)),
        "matrix": (matrix_image(*association_matrix(reconstruction, 5)), (600, 600, 3)),
        "empty matrix": (matrix_image([], np.zeros((0, 0))), (600, 600, 3)),
        "grid": (overlay_grid(reconstruction, 1, 5), (720, 1280, 3)),  # 3 views: 2×2 tiles of 640×360
    }
    for name, (image, shape) in images.items():
        assert image.shape == shape and image.dtype == np.uint8, name
        packed = image.reshape(-1, 3).astype(np.int64) @ [1 << 16, 1 << 8, 1]
        assert np.unique(packed).size > 2, name  # more than a background and one colour
