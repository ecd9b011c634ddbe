"""The viewer without a browser (or with a headless one): scrubbing swaps node contents, clips are decoded
around the frame shown, edits rebuild the touched persons only."""

import dataclasses
import socket
import time

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.body.model import BodyOutput
from core.engine.editing import Merge, Reassign
from core.engine.pipeline import reconstruct_from_observations
from core.types import CameraRig
from studio.session import SessionStore
from tests.core.body.test_fitting import ToySkeleton
from tests.core.engine.scenes import exact_scene
from tests.core.io.test_video import H, W, coded_clip, read_code
from ui.bench import headless_client
from ui.viewer import SessionViewer, _PersonNodes, _posed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def viewer(run, tmp_path):
    viewer = SessionViewer(SessionStore(tmp_path).create("viewer", run), port=free_port())
    yield viewer
    viewer.stop()


def test_scrubbing_moves_each_skeleton_to_its_frame(viewer, run):
    for frame in (0, 7, 11):
        viewer.show_frame(frame)
        for person in run.persons:
            nodes = viewer._nodes[person.person_id]
            row = int(np.flatnonzero(person.frames == frame)[0])
            np.testing.assert_allclose(nodes.bones.points, nodes.skeleton[row])
            assert nodes.bones.visible  # no body model: the skeleton stands for the mesh


def test_an_edit_rebuilds_the_touched_persons_and_undo_restores_them(viewer, run, tmp_path):
    untouched = viewer._nodes[0]
    piece = viewer.pieces(1)[0]
    status = viewer.edit(Reassign(piece))
    assert "persons 1, 2 updated" in status and "saved" in status
    assert sorted(viewer._nodes) == [0, 1, 2] and viewer._nodes[0] is untouched
    assert viewer.pieces(2) == [piece]
    assert "not done: person 9 has no piece" in viewer.edit(Merge(9, 0))
    viewer.undo()
    assert sorted(viewer._nodes) == [0, 1] and piece in viewer.pieces(1)
    assert len(SessionStore(tmp_path).open(viewer.session.directory).undone) == 1  # as on disk


def test_a_compared_run_is_scrubbed_with_the_first_and_can_be_hidden(run, tmp_path):
    store = SessionStore(tmp_path)
    first, second = store.create("first", run), store.create("second", run)
    second.edit(Merge(1, 0))
    viewer = SessionViewer(first, port=free_port(), compare=second)
    try:
        assert sorted(viewer._compared) == [0]
        viewer.show_frame(5)
        assert viewer._compared[0].bones.visible
        viewer._layers["compared run"].value = False
        assert not viewer._compared[0].bones.visible
    finally:
        viewer.stop()


def shown_frame(image: np.ndarray) -> int:
    """The clip frame a frustum's thumbnail shows (the coded clips spell their index)."""
    return read_code(cv2.resize(image, (W, H), interpolation=cv2.INTER_AREA))


def test_the_clips_are_decoded_around_the_frame_shown_into_a_bounded_cache(tmp_path):
    frames = 40
    scene = exact_scene(persons=2, views=2, frames=frames, seed=3)
    run = reconstruct_from_observations(scene.observations, scene.cameras, frames, scene.config.fps)
    clips = tuple(str(coded_clip(tmp_path / f"cam{v}.mp4", frames)) for v in range(2))
    viewer = SessionViewer(
        SessionStore(tmp_path).create("clips", dataclasses.replace(run, clips=clips)), port=free_port()
    )
    try:
        viewer.show_frame(3)
        assert viewer._thumbnails is None  # no browser connected: nothing decoded
        with headless_client(viewer.url):
            for frame in [*range(frames), 5, 33]:  # scrub the whole clip, then jump back
                viewer.show_frame(frame)
                deadline = time.monotonic() + 10
                while any(f.image is None or shown_frame(f.image) != frame for f in viewer._frustums):
                    assert time.monotonic() < deadline, f"frame {frame} never shown"
                    time.sleep(0.005)
                assert len(viewer._thumbnails) <= viewer._thumbnails.capacity
        cache = viewer._thumbnails
        assert cache.capacity < frames and len(cache) == cache.capacity
    finally:
        viewer.stop()


class CountingMesh(ToySkeleton):
    """The toy skeleton with its joints as mesh vertices, counting the frames it poses."""

    posed = 0

    def __call__(self, parameters, vertices=True):
        self.posed += len(parameters.transl)
        joints = super().__call__(parameters).joints
        return BodyOutput(joints=joints, vertices=joints)


def test_after_an_edit_only_the_frames_whose_pose_changed_are_posed_again(run):
    body = CountingMesh()
    person = dataclasses.replace(run.persons[0], shape_model=body.name, shape=np.zeros(5))
    before = _PersonNodes(person, _posed(body, person, None), np.zeros(0), None, None)
    changed = person.body_pose.copy()
    changed[4:6] += 0.1
    edited = dataclasses.replace(person, body_pose=changed)
    body.posed = 0
    vertices = _posed(body, edited, before)
    assert body.posed == 2
    np.testing.assert_array_equal(vertices, _posed(body, edited, None))


def test_a_calibration_files_cameras_overlay_the_estimated_ones_when_toggled(run, tmp_path):
    """The file's cameras in their own world (scaled, turned, shifted) land on the run's cameras."""
    turn = Rotation.from_rotvec([0.0, 0.0, 1.1]).as_matrix()
    elsewhere = CameraRig(
        tuple(
            dataclasses.replace(c, R=c.R @ turn.T, t=2.0 * c.t - c.R @ turn.T @ [1.0, 2.0, 0.0])
            for c in run.cameras.cameras
        )
    )
    with_file = dataclasses.replace(run, reference_cameras=elsewhere)
    viewer = SessionViewer(SessionStore(tmp_path).create("calibrated", with_file), port=free_port())
    try:
        assert not any(f.visible for f in viewer._calibrated)
        viewer._layers["calibrated cameras"].value = True
        assert all(f.visible for f in viewer._calibrated)
        for overlay, camera in zip(viewer._calibrated, viewer._frustums, strict=True):
            np.testing.assert_allclose(overlay.position, camera.position, atol=1e-9)
            np.testing.assert_allclose(np.abs(overlay.wxyz @ camera.wxyz), 1.0, atol=1e-9)
    finally:
        viewer.stop()


def test_without_a_calibration_file_there_is_no_overlay_toggle(viewer):
    assert viewer._calibrated == [] and "calibrated cameras" not in viewer._layers
