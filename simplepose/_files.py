"""Writing files so that readers only ever see a complete file or none."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; rename it onto ``path`` when the
    block ends normally, delete it when the block raises (Ctrl-C included).

    The rename is atomic on one file system, so an interruption never leaves a truncated
    file at ``path``: readers and later runs see the old file, or none, or the new one.
    Missing parent folders are created.

    Args:
        path: the file to (re)place.
        mode: ``"w"`` (text) or ``"wb"`` (bytes).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as file:
            yield file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
