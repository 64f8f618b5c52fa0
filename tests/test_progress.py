"""The one-time ONNX export shows honest progress, and a killed export leaves nothing that
the next one does not clean up (a real SIGKILL in the middle of a real export)."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from simplepose.export.progress import StepProgress
from simplepose.model import build_model


def test_live_line_shows_the_step_and_the_time_spent() -> None:
    stream = io.StringIO()
    with StepProgress("exporting nano to ONNX", stream=stream, live=True, interval=0.05) as p:
        p.step("tracing")
        time.sleep(0.2)
        p.step("checking")
        time.sleep(0.2)
    frames = stream.getvalue().split("\r")
    assert any(f.startswith("exporting nano to ONNX: 0 s, tracing ...") for f in frames)
    assert any(f.startswith("exporting nano to ONNX: 0 s, checking ...") for f in frames)
    assert frames[-1].startswith("exporting nano to ONNX: done in 0 s")
    assert frames[-1].endswith("\n")
    assert "%" not in stream.getvalue()  # no made-up fraction done


def test_live_line_says_when_the_work_was_interrupted() -> None:
    stream = io.StringIO()
    with pytest.raises(KeyboardInterrupt), StepProgress("export", stream=stream, live=True):
        raise KeyboardInterrupt
    assert stream.getvalue().split("\r")[-1].startswith("export: interrupted after 0 s")


def test_without_a_terminal_it_logs_a_line_instead(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()  # not a terminal
    with caplog.at_level(logging.INFO), StepProgress("export", stream=stream) as progress:
        progress.step("tracing")
    assert stream.getvalue() == ""
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "export ..." and caplog.records[0].levelno == logging.WARNING
    assert "export: tracing" in messages and messages[-1].startswith("export: done in")


_EXPORT = textwrap.dedent(
    """
    import sys, torch
    from simplepose.inference.estimator import exported_onnx
    from simplepose.model import build_model
    torch.manual_seed(0)
    exported_onnx(build_model("nano"), exporter="dynamo")
    """
)


@pytest.mark.timeout(300)
def test_sigkill_during_the_export_leaves_nothing_the_next_export_keeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simplepose.inference.estimator import exported_onnx

    cache = tmp_path / "cache"
    monkeypatch.setenv("SIMPLEPOSE_CACHE", str(cache))
    process = subprocess.Popen(
        [sys.executable, "-c", _EXPORT],
        env={**os.environ, "SIMPLEPOSE_CACHE": str(cache)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    folder = cache / "onnx"
    deadline = time.monotonic() + 120
    while not (folder.is_dir() and any(folder.iterdir())):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    leftovers = list(folder.iterdir())
    assert len(leftovers) == 1 and leftovers[0].is_dir()
    assert leftovers[0].name.endswith(".tmp") and leftovers[0].name.startswith(".model-")

    path = exported_onnx(build_model("nano"), exporter="torchscript")  # the fast exporter
    assert sorted(folder.iterdir()) == [path]
