"""Webcam controls (``--camera-size``, ``--camera-fps``, ``--fourcc``) against a stand-in for
``cv2.VideoCapture`` that behaves like a UVC camera: it offers 720p and 1080p only as MJPG,
and falls back silently to what it can do."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import trained_like

from simplepose.cli import main as cli_main
from simplepose.pipeline import CameraSource, open_source
from simplepose.pipeline.sources import fourcc_text


class _UvcCamera:
    """YUYV up to 640x480 at 30 FPS; MJPG up to 1920x1080 at 30 FPS. Requests out of range
    are replaced by the nearest mode, without an error (as V4L2 drivers do)."""

    MODES = {"YUYV": [(640, 480)], "MJPG": [(640, 480), (1280, 720), (1920, 1080)]}

    def __init__(self, index: int) -> None:
        self.index = index
        self.calls: list[str] = []
        self.format, self.size, self.fps = "YUYV", (640, 480), 30.0
        _UvcCamera.last = self

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def set(self, prop: int, value: float) -> bool:
        if prop == cv2.CAP_PROP_FOURCC:
            self.calls.append("fourcc")
            code = fourcc_text(value)
            self.format = code if code in self.MODES else self.format
            self.size = min(self.size, max(self.MODES[self.format]))
        elif prop == cv2.CAP_PROP_FRAME_WIDTH:
            self.calls.append("width")
            fitting = [s for s in self.MODES[self.format] if s[0] <= value] or [(640, 480)]
            self.size = max(fitting)
        elif prop == cv2.CAP_PROP_FRAME_HEIGHT:
            self.calls.append("height")
        elif prop == cv2.CAP_PROP_FPS:
            self.calls.append("fps")
            self.fps = min(float(value), 30.0)
        return True

    def get(self, prop: int) -> float:
        return {
            cv2.CAP_PROP_FOURCC: float(cv2.VideoWriter.fourcc(*self.format)),
            cv2.CAP_PROP_FRAME_WIDTH: float(self.size[0]),
            cv2.CAP_PROP_FRAME_HEIGHT: float(self.size[1]),
            cv2.CAP_PROP_FPS: self.fps,
        }.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray]:
        width, height = self.size
        return True, np.full((height, width, 3), 90, np.uint8)

    def release(self) -> None:
        pass


@pytest.fixture
def camera(monkeypatch) -> type[_UvcCamera]:
    monkeypatch.setattr(cv2, "VideoCapture", _UvcCamera)
    return _UvcCamera


def test_720p_asks_for_mjpg_first_and_gets_it(camera) -> None:
    with open_source(0, camera={"size": (1280, 720), "fps": 30}) as source:
        assert isinstance(source, CameraSource)
        assert camera.last.calls == ["fourcc", "width", "height", "fps"]
        assert (source.size, source.fps, source.fourcc) == ((1280, 720), 30.0, "MJPG")
        assert source.describe() == "camera 0: 1280x720 at 30 FPS, MJPG"
        frame = next(iter(source))
        assert frame.image.shape == (720, 1280, 3)


def test_fallback_is_reported_not_hidden(camera) -> None:
    source = CameraSource(0, size=(1920, 1080), fps=60, fourcc="YUYV")
    try:
        assert (source.size, source.fps, source.fourcc) == ((640, 480), 30.0, "YUYV")
        assert source.describe() == (
            "camera 0: 640x480 at 30 FPS, YUYV (asked for 1920x1080, 60 FPS; the camera fell back)"
        )
    finally:
        source.close()


def test_small_sizes_and_defaults_leave_the_format_alone(camera) -> None:
    CameraSource(0, size=(640, 480)).close()
    assert camera.last.calls == ["width", "height"]
    source = CameraSource(1)
    assert camera.last.calls == [] and source.describe() == "camera 1: 640x480 at 30 FPS, YUYV"
    source.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"size": (0, 480)}, "size"), ({"fps": 0}, "fps"), ({"fourcc": "MJPEG"}, "4 characters")],
)
def test_bad_requests(camera, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        CameraSource(0, **kwargs)


def test_fourcc_text() -> None:
    assert fourcc_text(cv2.VideoWriter.fourcc(*"MJPG")) == "MJPG"
    assert fourcc_text(0) == "" and fourcc_text(-1) == ""


def test_cli_prints_what_the_camera_delivers(camera, tmp_path: Path, capsys) -> None:
    import torch

    from simplepose.config import ModelConfig
    from simplepose.model import build_model
    from simplepose.model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    weights = tmp_path / "nano.pth"
    save_checkpoint(trained_like(build_model(ModelConfig.preset("nano"))), weights)
    code = cli_main(["run", "0", "--camera-size", "1920x1080", "--camera-fps", "60",
                     "--weights", str(weights), "--backend", "torch", "--input-size", "128",
                     "--no-flip", "--max-frames", "3", "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err.splitlines()[0] == (
        "camera 0: 1920x1080 at 30 FPS, MJPG (asked for 60 FPS; the camera fell back)"
    )
    assert "3 frames in" in captured.out
