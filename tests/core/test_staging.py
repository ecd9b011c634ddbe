"""Staging names: a killed writer's leftovers are found, a running writer's and a user's files are not."""

import os
import subprocess
import sys

from core.staging import abandoned, remove_abandoned, staging_path


def a_finished_process() -> int:
    """The id of a process that has exited (and been waited for)."""
    return int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout
    )


def test_only_leftovers_of_finished_writers_and_of_untagged_staging_are_abandoned(tmp_path):
    dead = a_finished_process()
    (tmp_path / f".run.saving-{dead}-00ff").mkdir()  # a killed save
    (tmp_path / f".run.retired-{dead}-00ff").mkdir()
    (tmp_path / f".x.creating-{dead}-1234").mkdir()  # a killed creation of another target
    (tmp_path / ".run.k2j4_x9q").mkdir()  # staged before names carried a writer
    mine = staging_path(tmp_path / "run", "saving")  # a write in progress in this process
    mine.mkdir()
    for user in ("run", ".git", ".runner", f"run.saving-{dead}-00ff"):  # a user's, not staging
        (tmp_path / user).mkdir()
    assert sorted(p.name for p in abandoned(tmp_path, "run")) == sorted(
        [f".run.saving-{dead}-00ff", f".run.retired-{dead}-00ff", ".run.k2j4_x9q"]
    )
    tagged = [f".run.saving-{dead}-00ff", f".run.retired-{dead}-00ff", f".x.creating-{dead}-1234"]
    assert sorted(p.name for p in remove_abandoned(tmp_path)) == sorted(tagged)  # untagged: needs a target
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([".run.k2j4_x9q", mine.name, "run", ".git", ".runner", f"run.saving-{dead}-00ff"])


def test_a_file_is_removed_like_a_folder(tmp_path):
    leftover = tmp_path / f".session.json.writing-{a_finished_process()}-abcd"
    leftover.write_text("{")
    assert remove_abandoned(tmp_path, "session.json") == [leftover] and not leftover.exists()
    assert os.listdir(tmp_path) == []
