"""The summary of a saved reconstruction and its joints exported as JSON."""

import dataclasses
import json

import numpy as np
import pytest

from core.reconstruction import Reconstruction
from studio.export import export_joints_json, joints_tree, write_atomically
from studio.summary import format_summary, summarize


@pytest.fixture(scope="module")
def saved(small_reconstruction, tmp_path_factory):
    """The small reconstruction as clip frames 100, 102, … (every second frame), saved and loaded back."""
    directory = tmp_path_factory.mktemp("summary") / "run"
    dataclasses.replace(small_reconstruction, first_frame=100, frame_step=2).save(directory)
    return Reconstruction.load(directory)


def test_summary_counts_persons_and_spans_them_in_clip_frames(saved):
    summary = summarize(saved)
    assert summary["persons"] == len(saved.persons) == 3
    assert summary["frames"] == 60 and summary["fps"] == saved.fps
    for entry, person in zip(summary["person"], saved.persons, strict=True):
        assert entry["person_id"] == person.person_id
        assert entry["first_frame"] == 100 + 2 * int(person.frames[0])
        assert entry["last_frame"] == 100 + 2 * int(person.frames[-1])
        assert entry["frames"] == person.frames.size


def test_summary_reprojection_errors_are_means_of_the_residuals_seen(saved):
    summary = summarize(saved)
    names = saved.cameras.names
    for entry, person in zip(summary["person"], saved.persons, strict=True):
        residuals = person.residuals_px
        assert entry["reprojection_error_px"] == round(float(np.nanmean(residuals)), 2)
        expected = {names[v]: round(float(np.nanmean(residuals[:, v])), 2) for v in range(len(names))}
        assert entry["reprojection_error_px_per_view"] == expected


def test_summary_of_a_person_no_view_measured_and_of_a_view_that_never_saw_someone(saved):
    first, *rest = saved.persons
    residuals = first.residuals_px.copy()
    residuals[:, 1] = np.nan  # view 1 never saw person 0
    unmeasured = dataclasses.replace(rest[0], residuals_px=np.full_like(rest[0].residuals_px, np.nan))
    edited = dataclasses.replace(
        saved, persons=(dataclasses.replace(first, residuals_px=residuals), unmeasured)
    )
    summary = summarize(edited)
    assert set(summary["person"][0]["reprojection_error_px_per_view"]) == {
        saved.cameras.names[0],
        saved.cameras.names[2],
    }
    assert summary["person"][1]["reprojection_error_px"] is None
    assert summary["person"][1]["reprojection_error_px_per_view"] == {}
    assert "reprojection n/a" in format_summary(summary)


def test_summary_reports_scale_seconds_and_messages_and_is_json(saved):
    diagnostics = saved.diagnostics
    summary = summarize(saved)
    assert summary["scale_factor"] == diagnostics.scale_factor
    assert summary["stage_seconds"] == {k: round(v, 3) for k, v in diagnostics.stage_seconds.items()}
    assert summary["total_seconds"] == round(sum(diagnostics.stage_seconds.values()), 3)
    assert summary["messages"] == list(diagnostics.messages)
    assert json.loads(json.dumps(summary)) == summary
    text = format_summary(summary)
    assert text.splitlines()[0] == f"3 persons over 60 frames at {saved.fps:g} fps"
    first = saved.persons[0]
    start, end = 100 + 2 * first.frames[0], 100 + 2 * first.frames[-1]
    span = f"person {first.person_id}: frames {start}–{end} ({first.frames.size})"
    assert span in text


def test_joints_json_round_trips_the_joints_in_clip_frame_numbers(saved, tmp_path):
    path = tmp_path / "out" / "joints.json"
    export_joints_json(saved, path)
    tree = json.loads(path.read_text())
    assert tree == joints_tree(saved)
    assert set(tree) == {str(p.person_id) for p in saved.persons}
    for person in saved.persons:
        frames = tree[str(person.person_id)]
        assert list(frames) == [str(100 + 2 * f) for f in person.frames]
        values = np.array(
            [[frames[str(100 + 2 * f)][name] for name in person.joint_names] for f in person.frames]
        )
        np.testing.assert_allclose(values, person.joints, atol=5e-6)  # rounded to 10 µm
    assert [p.name for p in path.parent.iterdir()] == ["joints.json"]  # no temporary left behind


def test_non_finite_joints_are_left_out(saved):
    person = saved.persons[0]
    joints = person.joints.copy()
    joints[3, 5] = np.nan
    joints[4, 0, 2] = np.inf
    edited = dataclasses.replace(saved, persons=(dataclasses.replace(person, joints=joints),))
    frames = joints_tree(edited)[str(person.person_id)]
    name = person.joint_names
    assert set(frames[str(100 + 2 * person.frames[3])]) == set(name) - {name[5]}
    assert set(frames[str(100 + 2 * person.frames[4])]) == set(name) - {name[0]}
    assert set(frames[str(100 + 2 * person.frames[5])]) == set(name)


def test_a_failed_write_leaves_the_previous_file_whole_and_no_temporary(tmp_path):
    path = tmp_path / "joints.json"
    write_atomically(path, '{"old": 1}')
    with pytest.raises(TypeError):
        write_atomically(path, 12345)  # not text: fails while writing
    assert path.read_text() == '{"old": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["joints.json"]
    write_atomically(path, '{"new": 2}')
    assert path.read_text() == '{"new": 2}'


def test_summary_says_how_many_people_each_camera_recalled(saved):
    assert summarize(saved)["recalled_per_camera"] == {}  # no second look ran (a synthetic scene)
    recalled = np.arange(len(saved.cameras))
    edited = dataclasses.replace(
        saved, diagnostics=dataclasses.replace(saved.diagnostics, recalled_observations=recalled)
    )
    summary = summarize(edited)
    assert summary["recalled_per_camera"] == dict(zip(saved.cameras.names, recalled.tolist(), strict=True))
    names = saved.cameras.names
    assert f"{names[1]} 1, {names[2]} 2" in format_summary(summary)
