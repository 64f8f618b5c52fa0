"""Writing files so that readers only ever see a complete file or none.

Temporary files and folders are created beside their destination with a recognisable,
hidden name that carries the host and process ID (``.NAME~HOST~PID~RANDOM.tmp``), so a
later run can tell the leftovers of a killed process (SIGKILL, power loss) from those of a
process still writing, and remove them (``remove_stale_temporaries``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

_logger = logging.getLogger(__name__)

#: Leftovers older than this are removed whoever made them (another host, a reused PID).
STALE_AFTER_S = 24 * 3600.0
_TEMPORARY = re.compile(r"^\..+~(?P<host>[A-Za-z0-9_-]*)~(?P<pid>\d+)~[A-Za-z0-9_]+\.(?:tmp|part)$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:32]


def _umask() -> int:
    # /proc/self/status shows the umask without changing it; os.umask() can only read it by
    # setting it, which races with other threads creating files meanwhile.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """Permission bits a plain ``open(path, "w")`` gives a new file: 0o666 less the umask."""
    return 0o666 & ~_umask()


def temporary_prefix(name: str) -> str:
    """Prefix of a temporary entry standing in for ``name`` (see the module docstring)."""
    return f".{name}~{_host()}~{os.getpid()}~"


def make_temporary_dir(destination: str | os.PathLike[str]) -> Path:
    """A new, empty temporary folder beside ``destination`` (for multi-file writes that end
    in one rename); remove it with ``shutil.rmtree`` when done."""
    destination = Path(destination)
    try:
        folder = tempfile.mkdtemp(
            prefix=temporary_prefix(destination.name), suffix=".tmp", dir=destination.parent
        )
    except OSError as error:  # it names the temporary folder: name the destination instead
        raise type(error)(error.errno, error.strerror, str(destination)) from None
    return Path(folder)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files and folders that killed processes left in ``folder``.

    An entry is stale when its name says this host made it and that process is gone, or
    when it is older than ``STALE_AFTER_S`` (made elsewhere, or the PID was reused).
    Other entries, including live processes' temporaries, are left alone.

    Returns:
        The entries removed.
    """
    folder = Path(folder)
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    host, now, removed = _host(), time.time(), []
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None:
            continue
        try:
            old = now - entry.lstat().st_mtime > STALE_AFTER_S
        except OSError:
            continue
        dead = match["host"] == host and not _alive(int(match["pid"]))
        if not (dead or old):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as error:
            _logger.warning("could not remove the leftover %s: %s", entry, error)
            continue
        _logger.info("removed %s, left by an interrupted run", entry)
        removed.append(entry)
    return removed


def _as_user_path(error: OSError, temporary: str, path: Path) -> OSError:
    """``error`` with ``path`` in place of the temporary file name it mentions."""
    if temporary not in (error.filename, error.filename2):
        return error
    return type(error)(error.errno, error.strerror, str(path))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; rename it onto ``path`` when the
    block ends normally, delete it when the block raises (Ctrl-C included).

    The rename is atomic on one file system, so an interruption never leaves a truncated
    file at ``path``: readers and later runs see the old file, or none, or the new one.
    Missing parent folders are created. The file gets the permissions of the file it
    replaces, or those of a newly created file under the user's umask (not ``mkstemp``'s
    0600). A ``path`` that is not a regular file (``/dev/null``, a FIFO) is written in
    place: it cannot be replaced by a rename. Errors name ``path``, never the temporary file.

    Args:
        path: the file to (re)place.
        mode: ``"w"`` (text) or ``"wb"`` (bytes).
    """
    path = Path(path)
    try:
        existing = path.stat()
    except OSError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        if stat.S_ISDIR(existing.st_mode):
            raise IsADirectoryError(21, "Is a directory", str(path))
        with open(path, mode) as file:
            yield file
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=temporary_prefix(path.name), suffix=".tmp", dir=path.parent
        )
    except OSError as error:  # it names the temporary file: name the user's instead
        raise type(error)(error.errno, error.strerror, str(path)) from None
    try:
        with os.fdopen(fd, mode) as file:
            keep = stat.S_IMODE(existing.st_mode) if existing else new_file_mode()
            os.fchmod(file.fileno(), keep)
            yield file
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        user_error = _as_user_path(error, tmp, path)
        if user_error is error:
            raise
        raise user_error from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
