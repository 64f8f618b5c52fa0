"""``atomic_write``: a file is replaced whole or not at all, with the user's permissions;
temporaries that killed processes leave behind are found and removed."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import unwritable_folder

from simplepose._files import (
    STALE_AFTER_S,
    atomic_write,
    make_temporary_dir,
    remove_stale_temporaries,
    temporary_prefix,
)


def test_replaces_the_file_and_creates_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "out.json"
    with atomic_write(path) as file:
        file.write("first")
    with atomic_write(path, "wb") as file:
        file.write(b"second")
    assert path.read_text() == "second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.json"]


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_an_error_mid_write_keeps_the_old_file_and_leaves_nothing(
    tmp_path: Path, error: BaseException
) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old, complete")

    def write_then_fail() -> None:
        with atomic_write(path) as file:
            file.write("new, half")
            raise error

    with pytest.raises(type(error)):
        write_then_fail()
    assert path.read_text() == "old, complete"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_new_files_get_the_users_umask(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        with atomic_write(tmp_path / "new.json") as file:
            file.write("{}")
        with open(tmp_path / "plain.json", "w") as file:  # what open() gives, for reference
            file.write("{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o666 & ~umask
    assert (tmp_path / "new.json").stat().st_mode == (tmp_path / "plain.json").stat().st_mode


def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "script.sh"
    path.write_text("old")
    path.chmod(0o750)
    with atomic_write(path) as file:
        file.write("new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o750


def test_errors_name_the_users_path_not_the_temporary_file(tmp_path: Path) -> None:
    target = unwritable_folder(tmp_path) / "results.json"
    with pytest.raises(OSError, match="results.json") as info:
        with atomic_write(target) as file:
            file.write("[]")
    assert info.value.filename == str(target)
    assert str(target) in str(info.value) and ".tmp" not in str(info.value)
    with pytest.raises(OSError, match="results.json") as info:
        make_temporary_dir(target)
    assert info.value.filename == str(target)


def test_special_files_are_written_in_place_not_replaced() -> None:
    with atomic_write("/dev/null") as file:
        file.write("discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)  # still the device, not a regular file


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_of_killed_processes_are_removed(tmp_path: Path) -> None:
    dead = _dead_pid()
    host = temporary_prefix("x").split("~")[1]
    stale_file = tmp_path / f".model.onnx~{host}~{dead}~abc123.tmp"
    stale_dir = tmp_path / f".model.onnx~{host}~{dead}~def456.tmp"
    stale_part = tmp_path / f".weights.pth~{host}~{dead}~ghi789.part"
    live = tmp_path / f".model.onnx~{host}~{os.getpid()}~jkl012.tmp"
    elsewhere = tmp_path / f".model.onnx~otherhost~{dead}~mno345.tmp"
    old_elsewhere = tmp_path / f".model.onnx~otherhost~{dead}~pqr678.tmp"
    unrelated = tmp_path / "model.onnx.tmp"
    for path in (stale_file, stale_part, live, elsewhere, old_elsewhere, unrelated):
        path.write_text("partial")
    stale_dir.mkdir()
    (stale_dir / "raw.onnx").write_text("partial")
    day_ago = time.time() - STALE_AFTER_S - 60
    os.utime(old_elsewhere, (day_ago, day_ago))

    removed = remove_stale_temporaries(tmp_path)

    assert sorted(removed) == sorted([stale_file, stale_dir, stale_part, old_elsewhere])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, elsewhere.name, unrelated.name]
    )


def test_temporaries_carry_the_marks_that_find_them_later(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"

    def kill_mid_write() -> None:
        with atomic_write(target, "wb") as file:
            file.write(b"half")
            names = [p.name for p in tmp_path.iterdir()]
            assert len(names) == 1 and names[0].startswith(temporary_prefix("out.bin"))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kill_mid_write()
    folder = make_temporary_dir(target)
    assert folder.name.startswith(temporary_prefix("out.bin"))
    assert remove_stale_temporaries(tmp_path) == []  # this process is alive
