"""``--show`` with the headless OpenCV wheel: a real X11 window under Xvfb (Linux).

The window is checked from the outside: ``xwd`` dumps the X server's screen and the test
compares the pixels with the frame that was shown. ``.ci/run`` installs Xvfb and xwd;
under CI the tests fail instead of skipping without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import trained_like

from simplepose.errors import InputError
from simplepose.pipeline import WindowSink, open_source

VIDEO = "mmaction2_test_video_structuralize.mp4"  # 426 x 240

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 on Linux")


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed (apt-get install xvfb x11-apps)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + "; .ci/run installs it and CI needs it")
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """A private Xvfb server (24-bit, no window manager); yields its DISPLAY name."""
    xvfb = _need("Xvfb")
    _need("xwd")
    read, write = os.pipe()
    # -displayfd: Xvfb picks a free display number and writes it to the pipe when ready.
    server = subprocess.Popen(
        [xvfb, "-displayfd", str(write), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(write)
    with os.fdopen(read) as ready:
        number = ready.readline().strip()
    assert number.isdigit(), "Xvfb did not start"
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def _screen(display: str) -> np.ndarray:
    """The X server's whole screen as uint8 (H, W, 3) BGR, read from an ``xwd`` dump."""
    dump = subprocess.run(
        ["xwd", "-root", "-silent", "-display", display], capture_output=True, check=True
    ).stdout
    header = np.frombuffer(dump[:100], ">u4")  # XWDFileHeader: 25 big-endian CARD32
    size, width, height = int(header[0]), int(header[4]), int(header[5])
    byte_order, bits, line = int(header[7]), int(header[11]), int(header[12])
    colours = int(header[19])
    assert bits == 32, bits
    start = size + 12 * colours
    pixels = np.frombuffer(dump[start : start + line * height], np.uint8).reshape(height, -1, 4)
    pixels = pixels[:, :width]
    # LSBFirst pixels 0x00RRGGBB are the bytes B, G, R, X.
    return np.ascontiguousarray(pixels[..., :3] if byte_order == 0 else pixels[..., 3:0:-1])


@pytest.fixture(scope="module")
def frames(data_dir: Path) -> list[np.ndarray]:
    with open_source(data_dir / "videos" / VIDEO) as source:
        return [frame.image for _, frame in zip(range(30), source)]


def test_window_shows_the_frame_pixel_for_pixel(display, frames, monkeypatch) -> None:
    monkeypatch.setenv("DISPLAY", display)
    from simplepose.pipeline.xwindow import XWindow

    window = XWindow("simplepose test")
    try:
        for image in frames[:3]:
            window.show(image)
        # No window manager: the window sits at (0, 0) at the frame's size.
        shown = _screen(display)[: image.shape[0], : image.shape[1]]
        np.testing.assert_array_equal(shown, image)
        assert not window.closed
    finally:
        window.close()
    assert window.closed
    assert not _screen(display)[:240, :426].any()  # the window is gone: black root


def test_window_sink_uses_the_x11_window_with_headless_opencv(display, monkeypatch) -> None:
    from simplepose.pipeline.sinks import opencv_has_gui

    if opencv_has_gui():
        pytest.skip("this OpenCV has its own windows")
    monkeypatch.setenv("DISPLAY", display)
    sink = WindowSink()
    try:
        assert sink._xwindow is not None
    finally:
        sink.close()


def test_window_sink_says_why_it_cannot_open(monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(InputError, match="cannot show a window: no display"):
        WindowSink()
    from simplepose.pipeline.sinks import opencv_has_gui

    if not opencv_has_gui():
        monkeypatch.setenv("DISPLAY", ":987")  # nothing listens there
        with pytest.raises(InputError, match="cannot connect to the X display ':987'"):
            WindowSink()


@pytest.mark.timeout(240)
def test_cli_show_plays_the_video_in_a_window(display, data_dir: Path, tmp_path: Path) -> None:
    import torch

    from simplepose.config import ModelConfig
    from simplepose.model import build_model
    from simplepose.model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    weights = tmp_path / "nano.pth"
    save_checkpoint(trained_like(build_model(ModelConfig.preset("nano"))), weights)
    result = subprocess.run(
        [sys.executable, "-m", "simplepose", "run", str(data_dir / "videos" / VIDEO),
         "--weights", str(weights), "--backend", "torch", "--input-size", "128", "--no-flip",
         "--threads", "1", "--show", "--max-frames", "20", "--no-progress"],
        capture_output=True, text=True, timeout=200, cwd=tmp_path,
        env={**os.environ, "DISPLAY": display},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "20 frames in" in result.stdout
    assert "\ndisplay " in result.stdout  # capture-to-display latency in the stats table
