"""``simplepose run`` and Ctrl-C: clear one-line errors, nothing half-written, outputs
finalised after SIGINT (run in subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import pytest

VIDEO = "mmaction2_test_video_structuralize.mp4"  # 300 frames, 426 x 240


def _simplepose(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simplepose", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_help_lists_run(tmp_path: Path) -> None:
    top = _simplepose("--help", cwd=tmp_path)
    assert top.returncode == 0
    assert "run" in top.stdout
    sub = _simplepose("run", "--help", cwd=tmp_path)
    assert sub.returncode == 0
    for flag in ("--weights", "--backend", "--input-size", "--flip", "--show", "--output",
                 "--json", "--csv", "--no-track", "--smooth", "--max-frames"):  # fmt: skip
        assert flag in sub.stdout


def _bad_cases(data_dir: Path, tmp_path: Path) -> list[tuple[list[str], str]]:
    video = str(data_dir / "videos" / VIDEO)
    data = (data_dir / "videos" / VIDEO).read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 3])
    out = tmp_path / "out"
    return [
        ([str(tmp_path / "missing.mp4")], "does not exist"),
        (["ftp://host/video.mp4"], "unknown URL scheme 'ftp'"),
        (["5"], "camera 5 is not available"),
        ([str(truncated)], "cannot open video"),
        ([video, "--json", str(tmp_path / "no" / "dir" / "a.jsonl")], "does not exist"),
        ([video, "--output", str(tmp_path)], "it is a folder"),
        # The first output is created, the second fails: the first must be removed again.
        ([video, "--json", f"{out}.jsonl", "--csv", str(tmp_path / "no" / "b.csv")], "b.csv"),
        ([video, "--smooth", "--no-track"], "--smooth needs tracking"),
        ([video, "--show"], "cannot show a window"),
    ]


def test_bad_input_one_clear_line_nothing_written(data_dir: Path, tmp_path: Path) -> None:
    for args, message in _bad_cases(data_dir, tmp_path):
        if args[-1] == "--show" and os.environ.get("DISPLAY"):
            continue
        before = sorted(tmp_path.iterdir())
        result = _simplepose("run", *args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (args, result.stderr)
        assert lines[0].startswith("simplepose run: error: ")
        assert message in lines[0], (args, lines[0])
        assert sorted(tmp_path.iterdir()) == before, args  # nothing half-written


_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from simplepose.pipeline import JsonLinesSink, Pipeline, VideoFileSink, open_source
    from simplepose.types import Poses

    class SlowFake:
        def infer(self, image):
            time.sleep(0.02)
            return image.shape
        def group(self, shape):
            keypoints = np.full((1, 17, 3), 0.5, np.float32)
            keypoints[0, :, 0] = np.linspace(10, 100, 17)
            keypoints[0, :, 1] = np.linspace(10, 200, 17)
            return Poses(keypoints, np.ones(1, np.float32))

    source = open_source(sys.argv[1])
    sinks = [VideoFileSink(sys.argv[2], fps=source.fps, time_base=source.time_base),
             JsonLinesSink(sys.argv[3])]
    try:
        with Pipeline(source, SlowFake(), sinks) as pipeline:
            for _ in pipeline:
                pass
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    """
)


def _interrupt_when_lines(process: subprocess.Popen[str], jsonl: Path, lines: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if jsonl.exists() and jsonl.read_text().count("\n") >= lines:
            break
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("the run did not produce output in time")
    process.send_signal(signal.SIGINT)


def _check_finalised(video: Path, jsonl: Path, total: int) -> None:
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(len(records)))
    assert 10 <= len(records) < total
    with av.open(str(video)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == len(records)


@pytest.mark.timeout(120)
def test_sigint_mid_file_finalises_outputs(data_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "run_fake.py"
    script.write_text(_SCRIPT)
    video, jsonl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    process = subprocess.Popen(
        [sys.executable, str(script), str(data_dir / "videos" / VIDEO), str(video), str(jsonl)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _interrupt_when_lines(process, jsonl, 10)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    _check_finalised(video, jsonl, 300)


def _has_estimator() -> bool:
    try:
        from simplepose.inference import PoseEstimator  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.timeout(300)
@pytest.mark.skipif(not _has_estimator(), reason="simplepose.inference.PoseEstimator missing")
def test_cli_sigint_mid_file(data_dir: Path, tmp_path: Path) -> None:
    import torch

    from simplepose.config import ModelConfig
    from simplepose.model import build_model
    from simplepose.model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    weights = tmp_path / "nano.pth"
    save_checkpoint(build_model(ModelConfig.preset("nano")), weights)
    video, jsonl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "simplepose", "run", str(data_dir / "videos" / VIDEO),
         "--weights", str(weights), "--backend", "torch", "--input-size", "128",
         "--output", str(video), "--json", str(jsonl), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    _interrupt_when_lines(process, jsonl, 10)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stderr
    _check_finalised(video, jsonl, 300)
