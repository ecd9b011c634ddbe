import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest

from core.reconstruction import (
    FORMAT_VERSION,
    Reconstruction,
    ReconstructionFormatError,
    remove_abandoned_saves,
)
from tests.core.test_staging import a_finished_process


def assert_identical(a, b, path="root"):
    """Recursive equality: same types, arrays equal in dtype, shape and value (NaN == NaN)."""
    assert type(a) is type(b), path
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), path
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_identical(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, tuple | list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{path}.{i}")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            assert_identical(a[key], b[key], f"{path}.{key}")
    else:
        assert a == b, path


def test_round_trip_is_lossless(small_reconstruction, tmp_path):
    small_reconstruction.save(tmp_path / "run")
    loaded = Reconstruction.load(tmp_path / "run")
    assert loaded.format_version == FORMAT_VERSION
    assert len(loaded.persons) == len(small_reconstruction.persons) > 0
    assert_identical(small_reconstruction, loaded)


def test_saving_over_an_existing_reconstruction_replaces_it(small_reconstruction, tmp_path):
    small_reconstruction.save(tmp_path / "run")
    fewer = dataclasses.replace(small_reconstruction, persons=small_reconstruction.persons[:1])
    fewer.save(tmp_path / "run")
    assert len(Reconstruction.load(tmp_path / "run").persons) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging leftovers


def test_other_format_version_is_refused_with_the_file_named(small_reconstruction, tmp_path):
    small_reconstruction.save(tmp_path / "run")
    metadata = tmp_path / "run" / "reconstruction.json"
    tree = json.loads(metadata.read_text())
    tree["format_version"] = FORMAT_VERSION + 1
    metadata.write_text(json.dumps(tree))
    with pytest.raises(ReconstructionFormatError, match="reconstruction.json.*format version"):
        Reconstruction.load(tmp_path / "run")


def test_a_directory_without_a_reconstruction_is_a_clear_error(tmp_path):
    with pytest.raises(ReconstructionFormatError, match="not a reconstruction"):
        Reconstruction.load(tmp_path)


def test_a_failed_save_keeps_the_previous_result_and_leaves_no_staging(
    small_reconstruction, tmp_path, monkeypatch
):
    small_reconstruction.save(tmp_path / "run")

    def disk_full(path, **arrays):
        Path(path).write_bytes(b"PK")  # half a file, then the disk is full
        raise OSError("no space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    fewer = dataclasses.replace(small_reconstruction, persons=small_reconstruction.persons[:1])
    with pytest.raises(OSError, match="no space"):
        fewer.save(tmp_path / "run")
    assert len(Reconstruction.load(tmp_path / "run").persons) == len(small_reconstruction.persons)
    assert os.listdir(tmp_path) == ["run"]


def test_what_killed_saves_left_is_removed_and_a_running_save_is_not(small_reconstruction, tmp_path):
    small_reconstruction.save(tmp_path / "run")
    dead = a_finished_process()
    killed = [f".run.saving-{dead}-0a1b", f".run.retired-{dead}-0a1b", ".run.old", ".run.x7_k2p9q"]
    running = f".run.saving-{os.getpid()}-99aa"
    for name in [*killed, running]:
        (tmp_path / name).mkdir()
    assert sorted(p.name for p in remove_abandoned_saves(tmp_path / "run")) == sorted(killed)
    assert sorted(os.listdir(tmp_path)) == sorted([running, "run"])
    assert len(Reconstruction.load(tmp_path / "run").persons) == len(small_reconstruction.persons)
