"""A batch's sources and bad input, without Ray: folders and manifests, names, missing files, settings,
unreachable addresses and a full output disk."""

import errno
import json
import socket
import sys

import pytest

from core.config import ReconstructionConfig
from core.errors import InputError
from core.reconstruction import Reconstruction
from studio.batch import outputs
from studio.batch.outputs import OutputDiskFull, status, write_outcome
from studio.batch.ray_cluster import check_reachable, import_ray
from studio.batch.runner import BatchOptions, run_batch
from studio.batch.sequences import SourceError, find_sequences
from studio.batch.work import SequenceOutcome, worker_stats


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_a_folder_of_sequence_folders_finds_clips_calibrations_and_detections(tmp_path):
    clips = [touch(tmp_path / "walk" / "videos" / f"cam{i}.mp4") for i in (1, 2)]
    touch(tmp_path / "walk" / "calibration" / "Calib.toml")
    (
        touch(tmp_path / "talk" / "a.MOV"),
        touch(tmp_path / "talk" / "b.mov"),
        touch(tmp_path / "talk" / "Calib.qca.txt"),
    )
    touch(tmp_path / "detected" / "pose" / "cam1_json" / "f0.json")
    (tmp_path / "notes").mkdir()
    (tmp_path / ".hidden").mkdir()
    found = {s.name: s for s in find_sequences(tmp_path)}
    assert sorted(found) == ["detected", "notes", "talk", "walk"]
    assert (
        found["walk"].videos == tuple(clips)
        and found["walk"].calibration == tmp_path / "walk" / "calibration"
    )
    assert [p.name for p in found["talk"].videos] == ["a.MOV", "b.mov"]
    assert found["talk"].calibration == tmp_path / "talk"
    assert found["detected"].keypoints == tmp_path / "detected" / "pose" and found["detected"].problem is None
    assert "no clips" in found["notes"].problem and str(tmp_path / "notes") in found["notes"].problem


def test_no_sequences_and_no_source_are_refused(tmp_path):
    with pytest.raises(SourceError, match="no sequences"):
        find_sequences(tmp_path)
    with pytest.raises(SourceError, match="no such folder or manifest"):
        find_sequences(tmp_path / "missing")
    (tmp_path / "list.txt").write_text("")
    with pytest.raises(SourceError, match=r"\.csv or \.jsonl"):
        find_sequences(tmp_path / "list.txt")


def test_a_csv_manifest_reads_paths_frames_and_settings_by_their_path(tmp_path):
    clips = [touch(tmp_path / "clips" / f"c{i}.mp4") for i in (1, 2)]
    touch(tmp_path / "Calib.toml")
    (tmp_path / "runs.csv").write_text(
        "name,videos,calibration,frames,association.gate,world_tracking.enabled\n"
        "first,clips/c1.mp4;clips/c2.mp4,Calib.toml,0:50,0.8,false\n"
        "second,clips,,,,\n"
        "third,clips/c1.mp4;clips/gone.mp4,,,,\n"
        "fourth,clips,,,wide,\n"
    )
    first, second, third, fourth = find_sequences(tmp_path / "runs.csv")
    assert first.videos == tuple(clips) and first.calibration == tmp_path / "Calib.toml"
    assert first.frames == "0:50" and first.settings == {
        "association.gate": "0.8",
        "world_tracking.enabled": False,
    }
    assert first.problem is None and first.origin == "runs.csv, row 2"
    assert second.videos == tuple(clips) and second.settings == {} and second.problem is None
    assert third.problem == f"runs.csv, row 4: no such file: {tmp_path / 'clips' / 'gone.mp4'}"
    assert "runs.csv, row 5" in fourth.problem and "'wide' is not a number" in fourth.problem


def test_a_manifest_column_that_is_no_setting_is_refused_by_name(tmp_path):
    (tmp_path / "runs.csv").write_text("name,videos,association.gat\na,x.mp4,1\n")
    with pytest.raises(SourceError, match=r"runs\.csv: a column .*'association\.gat'"):
        find_sequences(tmp_path / "runs.csv")


def test_a_jsonl_manifest_with_examples_settings_and_bad_rows(tmp_path):
    rows = [
        {"name": "toy", "example": "synthetic", "frames": "0:20", "settings": {"association.gate": 0.7}},
        {"name": "nowhere", "example": "Demo_Nowhere"},
    ]
    (tmp_path / "runs.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n\n")
    toy, nowhere = find_sequences(tmp_path / "runs.jsonl")
    assert toy.problem is None and toy.example == "synthetic" and toy.settings == {"association.gate": 0.7}
    assert "unknown example 'Demo_Nowhere'" in nowhere.problem
    (tmp_path / "typo.jsonl").write_text(json.dumps({"name": "a", "vidoes": ["x.mp4"]}) + "\n")
    with pytest.raises(SourceError, match=r"typo\.jsonl, line 1: unknown keys vidoes"):
        find_sequences(tmp_path / "typo.jsonl")


def test_two_sequences_of_one_name_and_names_that_cannot_be_folders_are_refused(tmp_path):
    (tmp_path / "runs.csv").write_text("name,example\nsame,synthetic\nother,synthetic\nsame,synthetic\n")
    with pytest.raises(SourceError, match=r"runs\.csv, row 2 and runs\.csv, row 4 are both named 'same'"):
        find_sequences(tmp_path / "runs.csv")
    (tmp_path / "bad.csv").write_text("name,example\n../up,synthetic\n")
    with pytest.raises(SourceError, match="cannot be a folder name"):
        find_sequences(tmp_path / "bad.csv")


def test_sequences_with_problems_fail_alone_without_ray(tmp_path, monkeypatch):
    (tmp_path / "runs.csv").write_text("name,videos\nlost,gone/a.mp4;gone/b.mp4\n")
    monkeypatch.setitem(sys.modules, "ray", None)  # nothing runnable: Ray is never needed
    result = run_batch(
        find_sequences(tmp_path / "runs.csv"), tmp_path / "out", ReconstructionConfig(), BatchOptions()
    )
    assert result.failed == ["lost"] and status(tmp_path / "out", "lost") == "failed"
    error = json.loads((tmp_path / "out" / "lost" / "error.json").read_text())["error"]
    missing = tmp_path / "gone" / "a.mp4", tmp_path / "gone" / "b.mp4"
    assert error == {
        "type": "InputError",
        "message": f"runs.csv, row 2: no such file: {missing[0]}, {missing[1]}",
        "file": str(missing[0]),
    }
    assert json.loads((tmp_path / "out" / "batch.json").read_text())["failed"] == 1


def test_ray_missing_or_unreachable_is_said_at_once(monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(InputError, match=f"127.0.0.1:{port}: unreachable"):
        check_reachable(f"127.0.0.1:{port}")
    with pytest.raises(InputError, match="expected auto, HOST:PORT"):
        check_reachable("somewhere")
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InputError, match=r"pip install -e '\.\[batch\]'"):
        import_ray()


def test_a_full_disk_while_writing_keeps_what_was_finished(small_reconstruction, tmp_path, monkeypatch):
    (sequence,) = find_sequences(_one_example(tmp_path))
    done = SequenceOutcome(sequence.name, small_reconstruction, None, 1.0, worker_stats())
    assert write_outcome(tmp_path / "out", sequence, done) == "done"
    before = sorted(p.name for p in (tmp_path / "out" / sequence.name).iterdir())

    def full_disk(self, folder):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Reconstruction, "write_files", full_disk)
    with pytest.raises(OutputDiskFull, match="disk is full .* run the batch again"):
        write_outcome(tmp_path / "out", sequence, done)
    assert sorted(p.name for p in (tmp_path / "out" / sequence.name).iterdir()) == before
    assert [p.name for p in (tmp_path / "out").iterdir()] == [sequence.name]
    assert outputs.read_record(tmp_path / "out", sequence.name)["persons"] == len(
        small_reconstruction.persons
    )


def _one_example(folder):
    (folder / "one.csv").write_text("name,example\ntoy,synthetic\n")
    return folder / "one.csv"
