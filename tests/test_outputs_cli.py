"""Every command refuses, before any work, an output that is one of its inputs, two outputs
that are one file and an output it cannot write (one line, exit 2, input untouched); one
folder rule for every output flag; options validated; files get the user's umask.

The commands run in-process (``cli.main``): they stop before any model is loaded, which is
what the tests check, by giving a corrupt weights file where it matters.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from conftest import trained_like, unwritable_folder

from simplepose import cli
from simplepose.model import build_model
from simplepose.model.checkpoint import save_checkpoint

VIDEO = "mmpose_demo.mp4"


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    return save_checkpoint(trained_like(build_model("nano")), folder / "nano.pth")


@pytest.fixture
def work(tmp_path: Path, data_dir: Path, weights: Path) -> Path:
    """A folder with copies of real inputs (they may be linked to and must survive)."""
    shutil.copyfile(data_dir / "videos" / VIDEO, tmp_path / "in.mp4")
    (tmp_path / "x").mkdir()
    shutil.copyfile(data_dir / "images" / "bus.jpg", tmp_path / "x" / "bus.jpg")
    shutil.copyfile(data_dir / "images" / "bus.jpg", tmp_path / "bus.jpg")
    ann, images = data_dir / "coco_people" / "person_keypoints.json", data_dir / "coco_people"
    shutil.copyfile(ann, tmp_path / "ann.json")
    (tmp_path / "images").symlink_to(images / "images")
    shutil.copyfile(weights, tmp_path / "w.pth")
    (tmp_path / "link.mp4").symlink_to(tmp_path / "in.mp4")
    (tmp_path / "wlink.pth").symlink_to(tmp_path / "w.pth")
    os.link(tmp_path / "in.mp4", tmp_path / "hard.mp4")
    (tmp_path / "garbage.pth").write_bytes(os.urandom(4096))
    return tmp_path


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "images" not in p.parts
    }


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str], cwd: Path) -> str:
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        code = cli.main(argv)
    finally:
        os.chdir(previous)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"simplepose {argv[0]}: error: "), lines[0]
    return lines[0]


#: (command line, what the one line says); paths are relative to ``work``.
OUTPUT_IS_INPUT = [
    # The cases: each destroyed its input, exit 0.
    (["run", "in.mp4", "--output", "in.mp4"], "--output in.mp4 is an input"),
    (["run", "in.mp4", "--json", "in.mp4"], "--json in.mp4 is an input"),
    (["image", "x/bus.jpg", "--output-dir", "x"], "x/bus.jpg is an input"),
    (["image", "bus.jpg", "--json", "bus.jpg"], "--json bus.jpg is an input"),
    # The same file under another name.
    (["run", "in.mp4", "--output", "link.mp4"], "link.mp4 is the same file as the input in.mp4"),
    (["run", "in.mp4", "--csv", "hard.mp4"], "hard.mp4 is the same file as the input in.mp4"),
    (["run", "x", "--coco", "x/bus.jpg"], "x/bus.jpg is an input"),  # an image folder
    (["run", "in.mp4", "--json", "w.pth", "--weights", "w.pth"], "w.pth is an input"),
    (
        ["image", "images/000000000785.jpg", "--json", "ann.json", "--coco-ann", "ann.json"],
        "--json ann.json is an input",
    ),  # fmt: skip
    (["export", "--weights", "w.pth", "--output", "w.pth"], "--output w.pth is an input"),
    (["convert", "wlink.pth", "w.pth"], "DST w.pth is the same file as the input wlink.pth"),
    (["convert", "w.pth", "w.pth"], "DST w.pth is an input"),
    (
        [
            "eval",
            "--coco-ann",
            "ann.json",
            "--images",
            "images",
            "--json",
            "ann.json",
            "--weights",
            "w.pth",
        ],
        "--json ann.json is an input",
    ),  # fmt: skip
    (
        [
            "train",
            "--coco-ann",
            "ann.json",
            "--images",
            "images",
            "--weights",
            "runs/last.pth",
            "--output",
            "runs",
        ],
        "--output runs/last.pth is an input",
    ),  # fmt: skip
    # Two outputs that are one file.
    (["run", "in.mp4", "--json", "a.jsonl", "--csv", "a.jsonl"], "are the same file"),
    (["image", "bus.jpg", "--output-dir", "ov", "--json", "ov/bus.jpg"], "are the same file"),
]


@pytest.mark.parametrize(("argv", "message"), OUTPUT_IS_INPUT)
def test_an_output_that_is_an_input_is_refused_and_the_input_survives(
    work: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    if "train" in argv:
        (work / "runs").mkdir()
        shutil.copyfile(work / "w.pth", work / "runs" / "last.pth")
    before = _digests(work)
    line = _error_line(capsys, argv, work)
    assert message in line
    assert "writing it would destroy the input" in line or "same file" in line
    assert _digests(work) == before  # nothing changed, nothing created


#: Output flags of every command, with an output file in a folder that does not exist.
MISSING_FOLDER = [
    ["run", "in.mp4", "--json", "nodir/t.jsonl"],
    ["run", "in.mp4", "--output", "nodir/o.mp4"],
    ["image", "bus.jpg", "--json", "nodir/r.json"],
    ["eval", "--coco-ann", "ann.json", "--images", "images", "--json", "nodir/r.json"],
    ["export", "--output", "nodir/m.onnx"],
    ["convert", "w.pth", "nodir/c.pth"],
]


@pytest.mark.parametrize("argv", MISSING_FOLDER)
def test_one_folder_rule_for_every_output_file(
    work: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    # Corrupt weights: the output must be refused before they are even read.
    if argv[0] not in ("convert",):
        argv = [*argv, "--weights", "garbage.pth"]
    line = _error_line(capsys, argv, work)
    assert "folder nodir does not exist (create it first)" in line
    assert not (work / "nodir").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "in.mp4", "--csv", "{ro}/t.csv", "--weights", "garbage.pth"],
        ["image", "bus.jpg", "--json", "{ro}/r.json", "--weights", "garbage.pth"],
        ["image", "bus.jpg", "--output-dir", "{ro}/overlays", "--weights", "garbage.pth"],
        [
            "eval",
            "--coco-ann",
            "ann.json",
            "--images",
            "images",
            "--json",
            "{ro}/r.json",
            "--weights",
            "garbage.pth",
        ],  # fmt: skip
        ["export", "--weights", "garbage.pth", "--output", "{ro}/m.onnx"],
        ["convert", "garbage.pth", "{ro}/c.pth"],
        ["bench", "--output-dir", "{ro}/bench"],
        ["train", "--coco-ann", "ann.json", "--images", "images", "--output", "{ro}/runs"],
    ],
)
def test_unwritable_outputs_fail_before_the_model_loads(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    ro = str(unwritable_folder(tmp_path))
    line = _error_line(capsys, [a.replace("{ro}", ro) for a in argv], work)
    assert f"folder {ro} is not writable" in line
    assert "garbage.pth" not in line  # the weights were never read


def test_output_folders_are_created(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        ["image", str(work / "bus.jpg"), "--weights", str(work / "w.pth"), "--backend",
         "torch", "--input-size", "128", "--output-dir", str(work / "new" / "overlays"),
         "--json", str(work / "new" / "overlays" / "r.json")]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (work / "new" / "overlays").iterdir()) == ["bus.jpg", "r.json"]


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "in.mp4", "--threads", "{n}"],
        ["image", "bus.jpg", "--threads", "{n}"],
        ["eval", "--coco-ann", "ann.json", "--images", "images", "--threads", "{n}"],
        ["bench", "--threads", "{n}"],
        ["train", "--coco-ann", "a", "--images", "b", "--output", "c", "--threads", "{n}"],
    ],
)
@pytest.mark.parametrize("threads", ["0", "-1"])
def test_threads_must_be_positive(
    work: Path, capsys: pytest.CaptureFixture[str], argv: list[str], threads: str
) -> None:
    with pytest.raises(SystemExit) as info:  # an argparse error: usage, then one line
        cli.main([a.replace("{n}", threads) for a in argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --threads: must be >= 1, got {threads}" in err
    assert "Traceback" not in err


def test_input_size_beyond_the_largest_input_is_refused(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _error_line(capsys, ["image", "bus.jpg", "--input-size", "100000"], work)
    assert "--input-size must be at most 2600 for --resize-side height" in line
    assert "at most 2600 pixels high and 3800 wide" in line
    line = _error_line(
        capsys, ["run", "in.mp4", "--input-size", "5000", "--resize-side", "width"], work
    )
    assert "--input-size must be at most 3800 for --resize-side width" in line


def test_capped_scales_and_images_are_said(
    work: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from simplepose.commands.common import check_input_size, warn_if_capped
    from simplepose.config import InferenceConfig

    check_input_size(InferenceConfig(input_size=1024, scales=(1.0, 3.0)))
    assert "--scales 3 x --input-size 1024 exceed 2600 pixels: they run at 2600" in caplog.text
    caplog.clear()
    # A 3:1 panorama at 2000 pixels high would be 6000 wide: the width cap shrinks it.
    panorama = InferenceConfig(input_size=2000)
    assert warn_if_capped(panorama, (1000, 3000), "pano.jpg")
    assert "pano.jpg (3000 x 1000) runs at 3800 x 1267 network pixels" in caplog.text
    assert not warn_if_capped(InferenceConfig(input_size=512), (1000, 3000), "pano.jpg")


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_get_the_users_umask(
    work: Path, capsys: pytest.CaptureFixture[str], umask: int
) -> None:
    previous = os.umask(umask)
    try:
        assert cli.main(["convert", str(work / "w.pth"), str(work / "c.pth")]) == 0
        code = cli.main(
            ["image", str(work / "bus.jpg"), "--weights", str(work / "w.pth"), "--backend",
             "torch", "--input-size", "128", "--json", str(work / "r.json"), "--output-dir",
             str(work / "ov")]
        )  # fmt: skip
        assert code == 0, capsys.readouterr().err
    finally:
        os.umask(previous)
    for path in (work / "c.pth", work / "r.json", work / "ov" / "bus.jpg"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
    assert isinstance(json.loads((work / "r.json").read_text()), list)
