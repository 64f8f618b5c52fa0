"""``atomic_write``: a file is replaced whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from simplepose._files import atomic_write


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
