"""Named weights: the authors' released checkpoint, downloaded once, verified, cached.

``resolve_weights`` turns what ``--weights`` takes (a name such as ``released``, or a path)
into a local file. A name is looked up in ``weights_dir()`` and downloaded on first use;
later uses work offline. The folder holds, per named file:

- ``PoseNet_52_epoch.pth``: the checkpoint, renamed into place only once it is complete and
  has loaded as the expected architecture (exact key set and shapes);
- ``PoseNet_52_epoch.pth.sha256``: its SHA-256 in ``sha256sum`` format, recomputed and
  compared on every later use (a mismatch deletes the file, so the next use downloads it
  again);
- ``.PoseNet_52_epoch.pth~HOST~PID~<random>.part``: a download in progress, deleted on any
  failure (including Ctrl-C), so an interrupted download never leaves a file that looks
  valid; one that a killed process left behind is removed by the next fetch;
- ``PoseNet_52_epoch.pth.lock``: serialises concurrent fetches of the same file, and is
  removed when the fetch ends, whether it succeeded or not.

A file put there by hand (no ``.sha256`` record yet) is load-checked once, then its hash is
recorded. Google Drive's large-file confirmation page is handled by ``gdown``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from simplepose._files import atomic_write, remove_stale_temporaries, temporary_prefix
from simplepose.config import ModelConfig
from simplepose.errors import (
    CheckpointError,
    WeightsDownloadError,
    WeightsNotFoundError,
    WeightsVerificationError,
)
from simplepose.model.checkpoint import load_checkpoint

_logger = logging.getLogger(__name__)

#: Environment variable naming the weights folder (or, the older convention, a weights file
#: that then replaces the default weights).
WEIGHTS_ENV = "SIMPLEPOSE_WEIGHTS"
#: The weights used when none are given.
DEFAULT_WEIGHTS = "released"
#: Seconds to wait for a connection and between bytes; one attempt per URL, no retries.
DOWNLOAD_TIMEOUT = (10.0, 60.0)


@dataclass(frozen=True)
class HubWeights:
    """Weights that can be fetched by name.

    Attributes:
        name: what ``--weights`` takes.
        filename: the file's name in ``weights_dir()``.
        urls: where to download it, tried in order, once each (Google Drive links work).
        preset: the ``ModelConfig`` preset the checkpoint must match exactly (key set and
            tensor shapes).
        size_range: (min, max) bytes accepted from a download, checked before loading (an
            HTML error page or a truncated transfer fails it).
        sha256: the file's SHA-256 when known, else ``None`` (then the load check and the
            hash recorded at download vouch for the file).
        manual_url: the page to download the file from by hand (quoted in error messages).
        description: one line for ``simplepose weights list``.
    """

    name: str
    filename: str
    urls: tuple[str, ...]
    preset: str
    size_range: tuple[int, int]
    sha256: str | None
    manual_url: str
    description: str


_RELEASED_DRIVE_ID = "1gLa2oNxnbFPo0BjnpPaiAmWJwyND8wkA"

#: Known names -> weights (the authors' README links the Google Drive file).
WEIGHTS: dict[str, HubWeights] = {
    "released": HubWeights(
        name="released",
        filename="PoseNet_52_epoch.pth",
        urls=(f"https://drive.google.com/uc?id={_RELEASED_DRIVE_ID}",),
        preset="released",
        # 516,828,320 bytes of tensors (128,998,760 float32 parameters plus BatchNorm
        # statistics) and the pickle's per-key overhead.
        size_range=(500_000_000, 580_000_000),
        sha256=None,  # not published by the authors; recorded at the first download
        manual_url=f"https://drive.google.com/file/d/{_RELEASED_DRIVE_ID}/view",
        description="the authors' 4-stage IMHN plus, 68.5 AP on COCO test-dev (weights only)",
    ),
}


@dataclass(frozen=True)
class CachedWeights:
    """State of named weights in the cache (see ``list_weights``).

    Attributes:
        entry: the table entry.
        path: where the file is (or would be) cached.
        present: the file exists.
        size: its size in bytes, or ``None`` when absent.
        recorded_sha256: the hash recorded beside it, or ``None`` (absent, or put there by
            hand and not used yet).
    """

    entry: HubWeights
    path: Path
    present: bool
    size: int | None
    recorded_sha256: str | None


def _user_cache_dir() -> Path:
    # XDG base-directory rule: $XDG_CACHE_HOME when it is an absolute path, else ~/.cache.
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "simplepose"


def _env_weights_file() -> Path | None:
    env = os.environ.get(WEIGHTS_ENV)
    if env and Path(env).expanduser().is_file():
        return Path(env).expanduser()
    return None


def weights_dir() -> Path:
    """The folder named weights are cached in: ``$SIMPLEPOSE_WEIGHTS`` (unless it names a
    file), else ``$XDG_CACHE_HOME/simplepose``, else ``~/.cache/simplepose``."""
    env = os.environ.get(WEIGHTS_ENV)
    if env and _env_weights_file() is None:
        return Path(env).expanduser()
    return _user_cache_dir()


def default_weights_dirs() -> list[Path]:
    """Folders searched for weights given by bare file name: ``weights_dir()``, the user
    cache folder, and ``~/.cache/simplepose`` (without duplicates)."""
    dirs: list[Path] = []
    for folder in (weights_dir(), _user_cache_dir(), Path.home() / ".cache" / "simplepose"):
        if folder not in dirs:
            dirs.append(folder)
    return dirs


def hub_weights(name: str) -> HubWeights:
    """The table entry for ``name``.

    Raises:
        WeightsNotFoundError: unknown name (the message lists the known ones).
    """
    try:
        return WEIGHTS[name]
    except KeyError:
        raise WeightsNotFoundError(
            f"unknown weights name {name!r}; known names: {', '.join(WEIGHTS)}"
        ) from None


def cached_path(name: str) -> Path:
    """Where the weights called ``name`` are (or would be) cached."""
    return weights_dir() / hub_weights(name).filename


def list_weights() -> list[CachedWeights]:
    """Every known name with its cache state (no hashing, no network)."""
    states = []
    for entry in WEIGHTS.values():
        path = weights_dir() / entry.filename
        present = path.is_file()
        states.append(
            CachedWeights(
                entry=entry,
                path=path,
                present=present,
                size=path.stat().st_size if present else None,
                recorded_sha256=_read_record(_record_path(path)) if present else None,
            )
        )
    return states


def resolve_weights(
    weights: str | os.PathLike[str] | None = None, *, progress: bool = True
) -> Path:
    """Turn a weights name or path into a local file, downloading named weights on first use.

    Args:
        weights: first match wins:

            - ``None``: the default, i.e. the file ``$SIMPLEPOSE_WEIGHTS`` names when it names
              a file (the older convention), else ``released``;
            - an existing file: used as it is (nothing is checked here);
            - a known name (``released``): ``fetch_weights(name)``, the verified cached file;
            - a bare file name: looked up in ``default_weights_dirs()``.
        progress: show a progress bar while downloading.

    Raises:
        WeightsNotFoundError: not a file, not a known name, not found in the folders.
        WeightsDownloadError: named weights are missing and could not be downloaded; the
            message says where to get the file by hand and where to put it.
        WeightsVerificationError: the cached file fails its SHA-256 or contents check.
    """
    if weights is None:
        env_file = _env_weights_file()
        if env_file is not None:
            return env_file
        weights = DEFAULT_WEIGHTS
    given = Path(weights).expanduser()
    if given.is_file():
        return given
    if isinstance(weights, str) and weights in WEIGHTS:
        return fetch_weights(weights, progress=progress)
    if given.is_dir():
        raise WeightsNotFoundError(f"weights path {given} is a folder, not a file")
    candidates = [given]
    if given.parent == Path():
        candidates += [folder / given.name for folder in default_weights_dirs()]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    also = ", ".join(str(candidate) for candidate in candidates[1:])
    searched = f" (also looked for {also})" if also else ""
    raise WeightsNotFoundError(
        f"weights not found: {given} does not exist{searched}; "
        f"give a file path or a known name ({', '.join(WEIGHTS)})"
    )


def local_weights_file(weights: str | os.PathLike[str] | None = None) -> Path | None:
    """The local file ``weights`` stands for, as ``resolve_weights`` would pick it, but
    without downloading: named weights give their cache file even when it is absent;
    ``None`` when nothing matches."""
    if weights is None:
        env_file = _env_weights_file()
        return env_file if env_file is not None else cached_path(DEFAULT_WEIGHTS)
    if isinstance(weights, str) and weights in WEIGHTS and not Path(weights).is_file():
        return cached_path(weights)
    try:
        return resolve_weights(weights)
    except WeightsNotFoundError:
        return None


def fetch_weights(name: str, *, force: bool = False, progress: bool = True) -> Path:
    """The cached file of the weights called ``name``, downloaded if missing (or ``force``).

    A cached file is verified first (see the module docstring); a download is verified
    (size, exact checkpoint contents, SHA-256 when known) before it is renamed into place.

    Raises:
        WeightsNotFoundError: unknown name.
        WeightsDownloadError: the download failed or gave a wrong file; nothing is left that
            a later call would use.
        WeightsVerificationError: the cached file fails its check.
    """
    entry = hub_weights(name)
    path = weights_dir() / entry.filename
    if not force and path.is_file():
        return verify_cached(entry, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    lock = Path(f"{path}.lock")
    try:
        with FileLock(lock):
            if not force and path.is_file():  # another process fetched it while we waited
                return verify_cached(entry, path)
            remove_stale_temporaries(path.parent)
            _download(entry, path, progress)
    finally:
        # The lock only spares a second process a second download: a process that still
        # waits on the removed file and one that creates it anew may then both download,
        # which is safe, as each download is verified and renamed into place whole.
        lock.unlink(missing_ok=True)
    return path


def verify_cached(entry: HubWeights, path: Path) -> Path:
    """Check a cached file against its ``.sha256`` record (and ``entry.sha256`` when known).

    A file without a record (put there by hand) must load as ``entry.preset`` exactly; its
    hash is then recorded. A file whose hash differs from its record is deleted with its
    record, so the next call downloads it again.

    Returns:
        ``path``.

    Raises:
        WeightsVerificationError: the file fails the check; the message says what to do.
    """
    record = _record_path(path)
    recorded = _read_record(record)
    expected = recorded or entry.sha256
    if expected is None:
        try:
            _check_contents(entry, path, check_size=False)
        except CheckpointError as error:
            raise WeightsVerificationError(
                f"{path} {_short_detail(error, path, entry)}.\n"
                f"Delete it and run `simplepose weights fetch {entry.name}`, "
                "or pass --weights PATH."
            ) from error
        _write_record(path, file_sha256(path))
        return path
    digest = file_sha256(path)
    if digest != expected or (entry.sha256 is not None and digest != entry.sha256):
        if recorded is not None:  # our own download changed since: drop it, fetch again
            path.unlink(missing_ok=True)
            record.unlink(missing_ok=True)
            what = "was deleted"
        else:
            what = "is not the published file"
        raise WeightsVerificationError(
            f"{path} failed its SHA-256 check (corrupted or changed) and {what}.\n"
            f"Run `simplepose weights fetch {entry.name}` to download it again, "
            "or pass --weights PATH."
        )
    if recorded is None:
        _write_record(path, digest)
    return path


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _read_record(record: Path) -> str | None:
    """The hash in a ``sha256sum``-format record; ``None`` when absent or malformed."""
    try:
        fields = record.read_text().split()
    except OSError:
        return None
    if fields and re.fullmatch(r"[0-9a-f]{64}", fields[0].lower()):
        return fields[0].lower()
    return None


def _write_record(path: Path, digest: str) -> None:
    try:
        with atomic_write(_record_path(path)) as file:
            file.write(f"{digest}  {path.name}\n")
    except OSError as error:  # a read-only cache still works, only unrecorded
        _logger.warning("could not record the SHA-256 of %s: %s", path, error)


def _check_contents(entry: HubWeights, path: Path, *, check_size: bool) -> None:
    """Raise ``CheckpointError`` unless ``path`` is ``entry``'s checkpoint (exact keys and
    shapes of its preset; with ``check_size``, a size in ``entry.size_range``)."""
    if check_size:
        size = path.stat().st_size
        low, high = entry.size_range
        if not low <= size <= high:
            raise CheckpointError(f"{path} has {size:,} bytes, expected {low:,} to {high:,}")
    # load_checkpoint refuses missing, unexpected and misshapen keys alike.
    load_checkpoint(path, config=ModelConfig.preset(entry.preset))


def _short_detail(error: CheckpointError, path: Path, entry: HubWeights) -> str:
    """The error's message without the (temporary) path and the long config repr."""
    detail = str(error).replace(str(path), "").strip()
    detail = re.sub(r"ModelConfig\([^)]*\)", f"{entry.preset} preset", detail)
    return detail if len(detail) <= 200 else detail[:197] + "..."


def _download_error(entry: HubWeights, path: Path, reason: str) -> WeightsDownloadError:
    return WeightsDownloadError(
        f"could not download the {entry.name} weights ({reason}).\n"
        f"Download {entry.manual_url} by hand and save it as {path}, or pass --weights PATH."
    )


def _download(entry: HubWeights, path: Path, progress: bool) -> None:
    """Download ``entry`` to a temporary file beside ``path``, verify it, record its hash
    and rename it into place. Any failure (or Ctrl-C) deletes the temporary file."""
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=temporary_prefix(path.name), suffix=".part", dir=path.parent
        )
    except OSError as error:  # name the cache file, not the temporary one
        raise _download_error(entry, path, f"cannot write {path}: {error.strerror}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as file:
            digest = _transfer(entry, path, file, progress)
        try:
            _check_contents(entry, tmp, check_size=True)
        except CheckpointError as error:
            detail = _short_detail(error, tmp, entry)
            raise _download_error(entry, path, f"the file received {detail}") from error
        if entry.sha256 is not None and digest != entry.sha256:
            raise _download_error(entry, path, "the file received has the wrong SHA-256")
        # A replaced file (--force) must not keep the old record for a moment.
        _record_path(path).unlink(missing_ok=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_record(path, digest)
    _logger.info("saved the %s weights as %s (sha256 %s)", entry.name, path, digest)


def _transfer(entry: HubWeights, path: Path, file: BinaryIO, progress: bool) -> str:
    """Write the file's bytes into ``file`` from the first URL that works; return their
    SHA-256. One attempt per URL; the first URL's failure is the one reported."""
    try:
        import gdown
        import requests
    except ImportError:  # gdown >= 6.3 needs Python >= 3.10
        raise _download_error(entry, path, "downloads need gdown >= 6.3, Python >= 3.10") from None
    from tqdm import tqdm

    reasons = []
    for url in entry.urls:
        file.seek(0)
        file.truncate()
        hasher = hashlib.sha256()
        state: dict[str, Any] = {"bar": None, "done": 0, "total": None}

        def report(done: int, total: int | None, state: dict[str, Any] = state) -> None:
            # The bar appears with the first bytes, so an offline run prints only the error.
            if state["bar"] is None:
                state["bar"] = tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=f"downloading {entry.name} weights",
                    disable=not progress,
                    dynamic_ncols=True,
                )
            state["done"], state["total"] = done, total
            state["bar"].update(done - state["bar"].n)

        _logger.info("downloading the %s weights from %s to %s", entry.name, url, path)
        try:
            gdown.download(
                url=url,
                output=file,
                quiet=True,
                progress=report,
                hasher=hasher,
                timeout=DOWNLOAD_TIMEOUT,
                retries=0,
                use_cookies=False,  # leave ~/.cache/gdown alone
            )
            return hasher.hexdigest()
        except (requests.exceptions.RequestException, gdown.exceptions.DownloadError) as error:
            _logger.info("download from %s failed: %r", url, error)
            reasons.append(_failure_reason(error, url, state["done"], state["total"]))
        finally:
            if state["bar"] is not None:
                state["bar"].close()
    raise _download_error(entry, path, reasons[0])


def _failure_reason(error: Exception, url: str, done: int, total: int | None) -> str:
    """A few words on why a download failed."""
    import gdown
    import requests

    host = urllib.parse.urlsplit(url).hostname or url
    exceptions = requests.exceptions
    if isinstance(error, (exceptions.ConnectionError, exceptions.Timeout)):
        if done:
            return f"the connection to {host} broke after {done:,} bytes"
        if isinstance(error, exceptions.Timeout):
            return f"{host} did not answer in time; no internet connection?"
        return f"no internet connection: cannot reach {host}"
    if isinstance(error, exceptions.HTTPError) and error.response is not None:
        return f"{host} answered HTTP {error.response.status_code}"
    if isinstance(error, gdown.exceptions.FileURLRetrievalError):
        return "Google Drive did not hand out the file (download quota or permissions)"
    if isinstance(error, gdown.exceptions.DownloadError):
        expected = f" of {total:,}" if total else ""
        return f"incomplete transfer: received {done:,}{expected} bytes"
    first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
    return first_line[:120]
