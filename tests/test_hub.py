"""Named weights fetched on demand: download, verification, cache, failures and the CLI.

A local HTTP server on 127.0.0.1 serves checkpoints made here; the table entry ``released``
is patched to point at it, with the small ``nano`` preset.
"""

from __future__ import annotations

import dataclasses
import http.server
import socket
import threading
from pathlib import Path

import pytest
import torch

from simplepose import cli
from simplepose.config import ModelConfig
from simplepose.errors import (
    WeightsDownloadError,
    WeightsNotFoundError,
    WeightsVerificationError,
)
from simplepose.model import IMHN, build_model, hub, resolve_weights

FILENAME = "nano_weights.pth"
MANUAL_URL = "https://example.org/nano_weights"
#: Same keys as the nano preset, other shapes.
_OTHER = ModelConfig(num_stacks=1, base_channels=32, increase=16, se_reduction=8)


class _Server(http.server.ThreadingHTTPServer):
    """Serves ``body`` at any path; ``mode`` "truncate" announces more bytes than it sends."""

    body = b""
    mode = "ok"
    requests = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        self.server.requests += 1
        body = self.server.body
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        extra = 4096 if self.server.mode == "truncate" else 0
        self.send_header("Content-Length", str(len(body) + extra))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    httpd = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _authors_bytes(model: IMHN, tmp_path: Path, extra: dict | None = None) -> bytes:
    """A checkpoint in the authors' layout ``{"weights": {"posenet.<key>": tensor}}``."""
    weights = {"posenet." + k: v for k, v in model.state_dict().items()}
    weights.update(extra or {})
    path = tmp_path / "served.pth"
    torch.save({"weights": weights, "epoch": 52}, path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def nano_model() -> IMHN:
    torch.manual_seed(0)
    return build_model("nano").eval()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "weights"
    monkeypatch.setenv("SIMPLEPOSE_WEIGHTS", str(folder))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # the test server is local
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return folder


def _patch_entry(monkeypatch, url: str, **changes) -> hub.HubWeights:
    entry = dataclasses.replace(
        hub.WEIGHTS["released"],
        filename=FILENAME,
        urls=(url,),
        preset="nano",
        size_range=(1_000, 50_000_000),
        manual_url=MANUAL_URL,
        **changes,
    )
    monkeypatch.setitem(hub.WEIGHTS, "released", entry)
    return entry


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{FILENAME}"


def _refused_url() -> str:
    # A port that was free a moment ago: connecting to it is refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{FILENAME}"


def _usable_files(folder: Path) -> list[str]:
    """Everything in the cache folder: what a later call could pick up, and any leftover
    (a ``.lock`` file or a partial download) that a fetch should not leave behind."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir())


def _same_weights(a: IMHN, b: IMHN) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_download_verify_then_cache_offline(server, cache, monkeypatch, nano_model, tmp_path):
    server.body = _authors_bytes(nano_model, tmp_path)
    _patch_entry(monkeypatch, _url(server))
    path = resolve_weights("released", progress=False)
    assert path == cache / FILENAME and server.requests == 1
    assert path.read_bytes() == server.body
    digest = hub.file_sha256(path)
    assert (cache / f"{FILENAME}.sha256").read_text() == f"{digest}  {FILENAME}\n"
    assert _usable_files(cache) == [FILENAME, f"{FILENAME}.sha256"]  # no .part left
    from simplepose.model import load_checkpoint

    assert _same_weights(load_checkpoint(path), nano_model)
    # Second call: the cache, not the network (the server is gone).
    server.shutdown()
    server.server_close()
    assert resolve_weights(None) == path  # None is the default, i.e. released
    assert server.requests == 1


def test_known_sha256_is_checked(server, cache, monkeypatch, nano_model, tmp_path):
    server.body = _authors_bytes(nano_model, tmp_path)
    _patch_entry(monkeypatch, _url(server), sha256="0" * 64)
    with pytest.raises(WeightsDownloadError, match="wrong SHA-256"):
        resolve_weights("released", progress=False)
    assert _usable_files(cache) == []


@pytest.mark.parametrize(
    ("mode", "body", "expected"),
    [
        # The server announces 4 KiB more than it sends, then closes.
        ("truncate", "checkpoint", r"incomplete transfer: received [\d,]+ of [\d,]+ bytes"),
        # Bytes of the right size that are not a PyTorch file.
        ("ok", "garbage", "the file received is not a readable PyTorch checkpoint"),
        # A real checkpoint of another architecture (same keys, other shapes).
        ("ok", "wrong_shapes", "does not match the IMHN nano preset: .* wrong shape"),
        # The right weights plus one key too many: the key set must match exactly.
        ("ok", "extra_key", "1 unexpected: extra.weight"),
        # An HTML page (what a failed Google Drive request returns) fails the size check.
        ("ok", "html", r"the file received has \d+ bytes, expected 1,000 to"),
    ],
)
def test_failed_download_leaves_nothing(
    server, cache, monkeypatch, nano_model, tmp_path, mode, body, expected
):
    nano_bytes = _authors_bytes(nano_model, tmp_path)
    if body == "checkpoint":
        served = nano_bytes
    elif body == "garbage":
        served = b"\x00not a checkpoint" * (len(nano_bytes) // 17)
    elif body == "wrong_shapes":
        served = _authors_bytes(build_model(_OTHER), tmp_path)
    elif body == "extra_key":
        served = _authors_bytes(nano_model, tmp_path, {"posenet.extra.weight": torch.ones(3)})
    else:
        served = b"<html><body>quota exceeded</body></html>\n\n\n"
    server.body, server.mode = served, mode
    _patch_entry(monkeypatch, _url(server))
    with pytest.raises(WeightsDownloadError, match=expected) as info:
        resolve_weights("released", progress=False)
    message = str(info.value)
    assert message.startswith("could not download the released weights (")
    assert f"Download {MANUAL_URL} by hand and save it as {cache / FILENAME}" in message
    assert len(message.splitlines()) == 2
    assert _usable_files(cache) == []
    # The next call downloads again (nothing cached was taken for the file).
    server.body, server.mode = nano_bytes, "ok"
    assert resolve_weights("released", progress=False).read_bytes() == nano_bytes


def test_interrupted_download_leaves_nothing(server, cache, monkeypatch, nano_model, tmp_path):
    server.body = _authors_bytes(nano_model, tmp_path)
    _patch_entry(monkeypatch, _url(server))

    def interrupt(*args, **kwargs):
        assert [p.suffix for p in cache.glob("*.part")] == [".part"]  # the download so far
        raise KeyboardInterrupt

    monkeypatch.setattr(hub, "_check_contents", interrupt)
    with pytest.raises(KeyboardInterrupt):
        resolve_weights("released", progress=False)
    assert _usable_files(cache) == []


def test_a_killed_download_leaves_nothing_the_next_fetch_keeps(
    server, cache, monkeypatch, nano_model, tmp_path
):
    import subprocess
    import sys

    from simplepose._files import temporary_prefix

    # What SIGKILL mid-download leaves: a partial file named after a process now gone.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host = temporary_prefix(FILENAME).split("~")[1]
    cache.mkdir(parents=True)
    leftover = cache / f".{FILENAME}~{host}~{child.pid}~k1ll3d.part"
    leftover.write_bytes(b"partial")
    (cache / f"{FILENAME}.lock").write_text("")
    server.body = _authors_bytes(nano_model, tmp_path)
    _patch_entry(monkeypatch, _url(server))
    path = resolve_weights("released", progress=False)
    assert _usable_files(cache) == sorted([FILENAME, f"{FILENAME}.sha256"])
    assert path.read_bytes() == server.body


def test_corrupted_cache_is_deleted_and_fetched_again(
    server, cache, monkeypatch, nano_model, tmp_path
):
    server.body = _authors_bytes(nano_model, tmp_path)
    _patch_entry(monkeypatch, _url(server))
    path = resolve_weights("released", progress=False)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte deep inside a tensor
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsVerificationError, match="failed its SHA-256 check") as info:
        resolve_weights("released", progress=False)
    assert "simplepose weights fetch released" in str(info.value)
    assert _usable_files(cache) == []
    assert resolve_weights("released", progress=False).read_bytes() == server.body
    assert server.requests == 2


def test_hand_placed_file_is_checked_then_recorded(cache, monkeypatch, nano_model, tmp_path):
    _patch_entry(monkeypatch, _refused_url())  # must not be needed
    cache.mkdir()
    (cache / FILENAME).write_bytes(_authors_bytes(nano_model, tmp_path))
    assert resolve_weights("released") == cache / FILENAME
    record = (cache / f"{FILENAME}.sha256").read_text().split()[0]
    assert record == hub.file_sha256(cache / FILENAME)
    # A hand-placed wrong file is refused (and left for the user to delete).
    (cache / f"{FILENAME}.sha256").unlink()
    torch.save(build_model(_OTHER).state_dict(), cache / FILENAME)
    with pytest.raises(WeightsVerificationError, match="does not match the IMHN nano preset"):
        resolve_weights("released")
    assert not (cache / f"{FILENAME}.sha256").exists()


def test_offline_message(cache, monkeypatch):
    _patch_entry(monkeypatch, _refused_url())
    with pytest.raises(WeightsDownloadError) as info:
        resolve_weights("released", progress=False)
    assert str(info.value) == (
        "could not download the released weights (no internet connection: cannot reach "
        f"127.0.0.1).\nDownload {MANUAL_URL} by hand and save it as {cache / FILENAME}, "
        "or pass --weights PATH."
    )
    assert _usable_files(cache) == []


def test_force_downloads_again(server, cache, monkeypatch, nano_model, tmp_path):
    server.body = _authors_bytes(nano_model, tmp_path)
    _patch_entry(monkeypatch, _url(server))
    hub.fetch_weights("released", progress=False)
    assert hub.fetch_weights("released", progress=False) == cache / FILENAME
    assert server.requests == 1
    hub.fetch_weights("released", force=True, progress=False)
    assert server.requests == 2
    assert _usable_files(cache) == [FILENAME, f"{FILENAME}.sha256"]


def test_paths_and_file_names_resolve_as_before(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "mine.pth").write_bytes(b"x")
    monkeypatch.setenv("SIMPLEPOSE_WEIGHTS", str(folder))
    assert hub.weights_dir() == folder
    assert resolve_weights(folder / "mine.pth") == folder / "mine.pth"  # used as it is
    assert resolve_weights("mine.pth") == folder / "mine.pth"  # bare name: weights folders
    with pytest.raises(WeightsNotFoundError, match="not found: other.pth does not exist"):
        resolve_weights("other.pth")
    with pytest.raises(WeightsNotFoundError, match="is a folder"):
        resolve_weights(folder)
    # $SIMPLEPOSE_WEIGHTS naming a file: that file is the default; the cache is elsewhere.
    monkeypatch.setenv("SIMPLEPOSE_WEIGHTS", str(folder / "mine.pth"))
    assert resolve_weights(None) == folder / "mine.pth"
    assert hub.weights_dir() == tmp_path / "home" / ".cache" / "simplepose"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.weights_dir() == tmp_path / "xdg" / "simplepose"
    with pytest.raises(WeightsNotFoundError, match="unknown weights name 'nope'"):
        hub.fetch_weights("nope")


def test_cli_run_offline(cache, monkeypatch, capsys, data_dir):
    video = sorted((data_dir / "videos").glob("*.mp4"))[0]
    _patch_entry(monkeypatch, _refused_url())
    output = cache.parent / "out.mp4"
    code = cli.main(["run", str(video), "--output", str(output), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert lines == [
        "simplepose run: error: could not download the released weights (no internet "
        "connection: cannot reach 127.0.0.1).",
        f"Download {MANUAL_URL} by hand and save it as {cache / FILENAME}, or pass --weights PATH.",
    ]
    assert not output.exists() and _usable_files(cache) == []


def test_cli_weights_list_and_fetch(server, cache, monkeypatch, capsys, nano_model, tmp_path):
    server.body = _authors_bytes(nano_model, tmp_path)
    _patch_entry(monkeypatch, _url(server))
    assert cli.main(["weights", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"weights folder: {cache} ($SIMPLEPOSE_WEIGHTS)"
    assert out[1].split()[:3] == ["NAME", "PRESENT", "SIZE"]
    assert out[2].split()[:5] == ["released", "no", "0-50", "MB", FILENAME]
    assert cli.main(["weights", "fetch", "released", "--no-progress"]) == 0
    assert capsys.readouterr().out == f"{cache / FILENAME}\n"
    assert cli.main(["weights", "list"]) == 0
    row = capsys.readouterr().out.splitlines()[2].split()
    assert row[:5] == ["released", "yes", "6", "MB", FILENAME]
    assert cli.main(["weights", "fetch", "nope"]) == 2
    assert "unknown weights name 'nope'" in capsys.readouterr().err
