"""Signals: a second Ctrl-C cannot abort the finalisation, SIGTERM finalises like Ctrl-C
(exit 143), and after SIGKILL the video still decodes up to its last complete fragment.

Real signals, sent to real ``simplepose`` processes working on a real shared video; the
outputs are then decoded with PyAV and parsed as JSON Lines and CSV.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from conftest import trained_like

from simplepose._signals import EXIT_SIGINT, EXIT_SIGTERM, StopSignals, Terminated, deferred
from simplepose.model import build_model
from simplepose.model.checkpoint import save_checkpoint
from simplepose.pipeline.sinks import CSV_COLUMNS, FRAGMENT_SECONDS

VIDEO = "mmaction2_test_video_structuralize.mp4"  # 300 frames, 426 x 240, 30 FPS


# -- in-process: the handler itself ----------------------------------------------------


def _signal_self(signum: int, wait: float = 1.0) -> None:
    """Send ``signum`` to this process; its handler runs at one of the next bytecodes."""
    os.kill(os.getpid(), signum)
    time.sleep(wait)


def test_the_first_signal_raises_later_ones_only_say_so() -> None:
    notices = io.StringIO()
    with StopSignals(stream=notices, prog="test") as signals:
        assert signals is not None
        with pytest.raises(KeyboardInterrupt) as info:
            _signal_self(signal.SIGINT)
        assert not isinstance(info.value, Terminated)
        # Finalising now: further Ctrl-C and SIGTERM must not raise.
        _signal_self(signal.SIGINT, 0.1)
        _signal_self(signal.SIGTERM, 0.1)
    assert notices.getvalue().count("test: finishing the outputs, please wait") == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_sigterm_is_a_keyboard_interrupt_with_its_own_exit_code() -> None:
    from simplepose._signals import exit_code

    with StopSignals(stream=io.StringIO()), pytest.raises(Terminated) as info:
        _signal_self(signal.SIGTERM)
    assert isinstance(info.value, KeyboardInterrupt)
    assert exit_code(info.value) == EXIT_SIGTERM == 143
    assert exit_code(KeyboardInterrupt()) == EXIT_SIGINT == 130


def test_deferred_holds_a_signal_until_the_block_ends() -> None:
    finished: list[str] = []

    def finalise() -> None:
        with deferred():
            _signal_self(signal.SIGINT, 0.1)
            with deferred():  # nested: raised at the outermost end only
                _signal_self(signal.SIGINT, 0.1)
            finished.append("closed the sinks")
        finished.append("after the block")  # not reached: raised at the block's end

    with StopSignals(stream=io.StringIO()), pytest.raises(KeyboardInterrupt):
        finalise()
    assert finished == ["closed the sinks"]


def test_deferred_does_nothing_without_the_handler() -> None:
    with deferred():
        pass


# -- real processes ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    return save_checkpoint(trained_like(build_model("nano")), folder / "nano.pth")


def _start(data_dir: Path, weights: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "simplepose", "run", str(data_dir / "videos" / VIDEO),
         "--weights", str(weights), "--backend", "torch", "--output", str(out / "o.mp4"),
         "--json", str(out / "o.jsonl"), "--csv", str(out / "o.csv"), "--no-progress",
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=out,
    )  # fmt: skip


def _wait_for_lines(process: subprocess.Popen[str], jsonl: Path, lines: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if jsonl.exists() and jsonl.read_text().count("\n") >= lines:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    process.kill()
    pytest.fail("the run produced no output in time")


def _decoded_frames(video: Path) -> int:
    with av.open(str(video)) as container:
        return sum(1 for _ in container.decode(video=0))


def _whole_outputs(out: Path) -> tuple[int, int]:
    """(JSON Lines records, decoded video frames), after checking that every JSON line and
    CSV row is whole and that both cover the same frames, in order."""
    text = (out / "o.jsonl").read_text()
    assert text == "" or text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["index"] for r in records] == list(range(len(records)))
    rows = list(csv.reader((out / "o.csv").read_text().splitlines()))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert all(len(row) == len(CSV_COLUMNS) for row in rows[1:])
    persons = sum(len(r["persons"]) for r in records)
    framed = [int(row[0]) for row in rows[1:]]
    # A kill may land between the JSON line and the CSV rows of one frame, never inside one.
    assert len(framed) in (17 * persons, 17 * (persons - len(records[-1]["persons"])))
    assert framed == sorted(framed)
    return len(records), _decoded_frames(out / "o.mp4")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("gap", [0.05, 0.15])
def test_a_second_ctrl_c_does_not_abort_the_finalisation(
    data_dir: Path, weights: Path, tmp_path: Path, gap: float
) -> None:
    process = _start(data_dir, weights, tmp_path, "--input-size", "128")
    _wait_for_lines(process, tmp_path / "o.jsonl", 10)
    process.send_signal(signal.SIGINT)
    time.sleep(gap)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "terminate called" not in stderr and "Traceback" not in stderr
    assert "finalised after interruption" in stderr
    records, frames = _whole_outputs(tmp_path)
    assert 10 <= records < 300
    assert frames == records


@pytest.mark.timeout(300)
def test_ctrl_c_twice_while_the_network_outlives_the_stop(
    data_dir: Path, weights: Path, tmp_path: Path
) -> None:
    # At 1024 input pixels one nano call takes seconds here, longer than the pipeline waits
    # for its threads: the interpreter used to abort at exit with a worker still inside
    # torch ("terminate called without an active exception", exit 134).
    process = _start(data_dir, weights, tmp_path, "--input-size", "1024")
    _wait_for_lines(process, tmp_path / "o.jsonl", 1)
    process.send_signal(signal.SIGINT)
    time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "terminate called" not in stderr and "Traceback" not in stderr
    records, frames = _whole_outputs(tmp_path)
    assert frames == records >= 1


@pytest.mark.timeout(300)
def test_sigterm_finalises_like_ctrl_c(data_dir: Path, weights: Path, tmp_path: Path) -> None:
    process = _start(data_dir, weights, tmp_path, "--input-size", "128")
    _wait_for_lines(process, tmp_path / "o.jsonl", 10)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert stderr.strip().endswith("simplepose run: terminated")
    records, frames = _whole_outputs(tmp_path)
    assert 10 <= records < 300
    assert frames == records


@pytest.mark.timeout(300)
def test_after_sigkill_the_video_plays_up_to_its_last_fragment(
    data_dir: Path, weights: Path, tmp_path: Path
) -> None:
    process = _start(data_dir, weights, tmp_path, "--input-size", "128")
    _wait_for_lines(process, tmp_path / "o.jsonl", 90)
    process.kill()
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    records, frames = _whole_outputs(tmp_path)
    assert records >= 90
    # Lost: the unfinished fragment (FRAGMENT_SECONDS of the 30 FPS video) and the frames
    # inside the encoder (libx264's look-ahead and frame threads: a few dozen at most).
    assert records - 30 * FRAGMENT_SECONDS - 64 <= frames <= records
    assert frames > 0


@pytest.mark.timeout(300)
def test_killed_before_the_first_packet_leaves_a_valid_empty_video(
    data_dir: Path, weights: Path, tmp_path: Path
) -> None:
    process = _start(data_dir, weights, tmp_path, "--input-size", "128")
    _wait_for_lines(process, tmp_path / "o.jsonl", 2)
    process.kill()
    process.communicate(timeout=60)
    _whole_outputs(tmp_path)  # decodes (0 or more frames) rather than failing to open
