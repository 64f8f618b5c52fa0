"""The outputs of a command, checked before it does any work.

Every command lists what it will write (``Output``) and what it reads, then calls
``check_outputs`` before loading a model or opening a sink, so that it refuses at once,
with one line (``InputError``, exit code 2):

- an output that is one of its inputs: the same file, by device and inode, so a hard link,
  a symbolic link or another spelling of the path is caught too;
- two outputs that are the same file;
- an output it cannot write.

One rule for folders, for every output option: an output *file* goes into a folder that
exists (a mistyped folder is an error, not a new folder); an output *folder*
(``--output-dir``, ``train --output``) is created when missing, with its parents.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from simplepose.errors import InputError


@dataclass(frozen=True)
class Output:
    """One file or folder a command writes.

    Attributes:
        option: how the user named it, for messages (``"--json"``, ``"DST"``).
        path: the path, as given.
        folder: it is a folder (created when missing) rather than a file.
        in_new_folder: a file inside an output folder that the command creates, so its
            folder need not exist yet (also assumed for a file whose folder is one of the
            outputs).
    """

    option: str
    path: Path
    folder: bool = False
    in_new_folder: bool = False


def _identity(path: Path) -> tuple[int, int] | str:
    """(device, inode) of an existing path, else its absolute, symlink-free spelling."""
    try:
        info = path.stat()
    except OSError:
        return os.path.realpath(path)
    return (info.st_dev, info.st_ino)


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_writable(output: Output, new_folders: set[str]) -> None:
    path, option = output.path, output.option
    if output.folder:
        if path.exists() and not path.is_dir():
            raise InputError(f"{option} {path} is a file; give a folder")
        folder = _nearest_existing(path)
        if not folder.is_dir():
            raise InputError(f"cannot create {option} {path}: {folder} is a file")
    else:
        if path.is_dir():
            raise InputError(f"cannot write {option} {path}: it is a folder; give a file name")
        if path.exists() and not path.is_file():  # /dev/null, a FIFO: written in place
            if not os.access(path, os.W_OK):
                raise InputError(f"cannot write {option} {path}: permission denied")
            return
        in_new_folder = output.in_new_folder or os.path.realpath(path.parent) in new_folders
        folder = _nearest_existing(path.parent) if in_new_folder else path.parent
        if not folder.is_dir():
            raise InputError(
                f"cannot write {option} {path}: folder {folder} does not exist (create it first)"
            )
        if path.exists() and not os.access(path, os.W_OK):
            raise InputError(f"cannot write {option} {path}: the file is read-only")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {option} {path}: folder {folder} is not writable")


def check_outputs(outputs: Sequence[Output], inputs: Iterable[str | os.PathLike[str]] = ()) -> None:
    """Refuse outputs that are inputs, outputs given twice, and outputs that cannot be
    written (see the module docstring). Nothing is created or changed.

    Args:
        outputs: what the command writes; overlays and other files inside an output folder
            are listed one by one (``in_new_folder``).
        inputs: every file the command reads (missing ones are ignored).

    Raises:
        InputError: one line naming the option, the path and the problem.
    """
    new_folders = {os.path.realpath(output.path) for output in outputs if output.folder}
    for output in outputs:
        _check_writable(output, new_folders)
    read: dict[tuple[int, int] | str, Path] = {}
    for path in inputs:
        if Path(path).is_file():
            read.setdefault(_identity(Path(path)), Path(path))
    written: dict[tuple[int, int] | str, Output] = {}
    for output in outputs:
        if output.folder:
            continue
        identity = _identity(output.path)
        if identity in read:
            same = read[identity]
            what = "an input" if same == output.path else f"the same file as the input {same}"
            other = "folder" if output.in_new_folder else "file"
            raise InputError(
                f"{output.option} {output.path} is {what}: writing it would destroy the "
                f"input; choose another {other}"
            )
        first = written.setdefault(identity, output)
        if first is not output:
            raise InputError(
                f"{first.option} {first.path} and {output.option} {output.path} are the same "
                "file; give each output its own file"
            )


def file_inputs(paths: Iterable[str | os.PathLike[str] | None]) -> list[Path]:
    """The existing files among ``paths`` (folders are expanded to the files in them)."""
    files: list[Path] = []
    for item in paths:
        if item is None:
            continue
        path = Path(item)
        if path.is_dir():
            files.extend(child for child in path.iterdir() if child.is_file())
        elif path.is_file():
            files.append(path)
    return files


def weights_inputs(weights: str | os.PathLike[str] | None) -> list[Path]:
    """The local file ``--weights`` stands for, if any (nothing is downloaded)."""
    from simplepose.model.hub import local_weights_file

    path = local_weights_file(weights)
    return [path] if path is not None else []
