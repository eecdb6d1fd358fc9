"""The work folder: what a stopped command left there is cleared or named, what a
running one holds is left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from preserve import workdir
from preserve.capture.warc import WarcFile
from preserve.errors import PreserveError

INFO = {"software": "preserve/test", "isPartOf": "news"}


def aged(path: Path, seconds: float = 2 * workdir.QUIET_SECONDS) -> Path:
    """Make a file or folder look untouched for ``seconds``."""
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_a_folder_a_stopped_command_left_is_removed(tmp_path: Path) -> None:
    left = tmp_path / "preserve-import-x1"
    left.mkdir()
    (left / "0.index").write_bytes(b"index")
    aged(left)
    assert workdir.sweep(tmp_path) == []
    assert not left.exists()


def test_a_folder_in_use_or_just_made_or_not_ours_is_left_alone(tmp_path: Path) -> None:
    fresh = tmp_path / "reindex-fresh"
    fresh.mkdir()  # no lock yet: its command may be about to take it
    others = tmp_path / "photos"
    others.mkdir()
    aged(others)
    with workdir.private_folder(tmp_path, "reindex-", "{work}: {problem}") as folder:
        aged(folder)
        assert workdir.sweep(tmp_path) == []
        assert folder.is_dir() and fresh.is_dir() and others.is_dir()
    assert not folder.exists()  # removed when its command is done


def test_a_folder_held_by_another_process_is_left_alone(tmp_path: Path) -> None:
    # The lock is the system's: another process holding the folder keeps it, and
    # the folder goes once that process is killed.
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from preserve import workdir\n"
        f"with workdir.private_folder(Path({str(tmp_path)!r}), 'preserve-import-', 'x') as f:\n"
        "    print(f, flush=True); time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        folder = Path(holder.stdout.readline().strip())
        aged(folder)
        workdir.sweep(tmp_path)
        assert folder.is_dir()
    finally:
        holder.kill()
        holder.wait()
    workdir.sweep(tmp_path)
    assert not folder.exists()


def test_a_warc_being_written_is_not_named_and_one_left_is_named_with_its_collection(
        tmp_path: Path) -> None:
    writing = WarcFile(tmp_path / "open.warc.gz", INFO)
    writing._file.flush()
    aged(writing.path)
    assert workdir.sweep(tmp_path) == []
    writing._file.close()  # as a process that dies lets go of it; the file stays
    [left] = workdir.sweep(tmp_path)
    assert left.path == writing.path and left.size == writing.path.stat().st_size > 0
    assert left.collection == "news"
    assert f"preserve import --lenient {writing.path} --collection news" in left.note()
    assert writing.path.exists()  # records fetched once are never removed by a sweep


def test_a_warc_a_redescribe_left_is_named_as_such(tmp_path: Path) -> None:
    for name, policy in (("captured.warc.gz", "news-daily"), ("described.warc.gz",
                                                              "redescribe")):
        warc = WarcFile(tmp_path / name, {**INFO, "policy": policy})
        warc._file.close()
        aged(warc.path)
    captured, described = workdir.sweep(tmp_path)
    assert "was left by a capture that did not finish" in captured.note()
    assert ("was left by a redescribe (descriptions only; running it again makes them "
            "anew) that did not finish") in described.note()
    assert described.collection == "news" and described.policy == "redescribe"


def test_an_empty_warc_left_is_removed_and_other_files_are_left_alone(tmp_path: Path) -> None:
    empty = tmp_path / "empty.warc.gz"
    empty.touch()
    aged(empty)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    aged(notes)
    unreadable = tmp_path / "garbled.warc.gz"
    unreadable.write_bytes(b"not gzip at all")
    aged(unreadable)
    [left] = workdir.sweep(tmp_path)
    assert left.path == unreadable and left.collection is None
    assert "--collection COLLECTION" in left.note()
    assert not empty.exists() and notes.exists()


def test_no_work_folder_yet_is_nothing_to_sweep(tmp_path: Path) -> None:
    assert workdir.sweep(tmp_path / "work") == []


def test_a_folder_that_cannot_be_made_is_one_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "work"
    blocked.write_text("a file where the folder should be")
    with pytest.raises(PreserveError, match=rf"^import: no folder in {blocked} \(.+\)$"), \
            workdir.private_folder(blocked, "preserve-import-", "import: no folder in {work} "
                                   "({problem})"):
        pass


def test_a_work_folder_that_is_no_folder_is_left_to_its_command_to_name(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.write_text("a file where the folder should be")
    assert workdir.sweep(work) == []  # no traceback: the command says it in one line
