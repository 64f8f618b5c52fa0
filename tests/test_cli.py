"""The ``simplepose`` command: help for every subcommand, version, convert, error lines."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from simplepose import __version__
from simplepose.cli import SUBCOMMANDS
from simplepose.model import build_model, load_checkpoint


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simplepose", *args], capture_output=True, text=True, timeout=120
    )


def test_version():
    result = _run("--version")
    assert result.returncode == 0 and __version__ in result.stdout


@pytest.mark.parametrize("command", [None, *SUBCOMMANDS])
def test_help_for_every_entry_point(command):
    result = _run(*([command] if command else []), "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: simplepose" in result.stdout


def test_console_script_is_installed():
    # pip puts console scripts next to the interpreter of the environment it installs into.
    exe = shutil.which("simplepose", path=str(Path(sys.executable).parent))
    assert exe is not None, "the simplepose console script is not installed"
    result = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and __version__ in result.stdout


def test_convert_authors_checkpoint(tmp_path):
    model = build_model("nano")
    src = tmp_path / "authors.pth"
    torch.save({"weights": {"module.posenet." + k: v for k, v in model.state_dict().items()}}, src)
    dst = tmp_path / "converted.pth"
    result = _run("convert", str(src), str(dst))
    assert result.returncode == 0, result.stderr
    raw = torch.load(dst, weights_only=True)
    assert raw["format"] == "simplepose" and raw["config"]["num_stacks"] == 1
    converted = load_checkpoint(dst)
    for key, value in model.state_dict().items():
        assert torch.equal(converted.state_dict()[key], value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "does not exist"), (b"garbage", "not a readable PyTorch checkpoint")],
)
def test_user_errors_are_one_line_without_traceback(tmp_path, content, expected):
    src = tmp_path / "in.pth"
    if content is not None:
        src.write_bytes(content)
    result = _run("convert", str(src), str(tmp_path / "out.pth"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and lines[0].startswith("simplepose convert")
    assert not (tmp_path / "out.pth").exists()
