"""``check_outputs``: an output is never an input (by inode), never given twice, writable;
output files need an existing folder, output folders are created."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import unwritable_folder

from simplepose.commands.paths import Output, check_outputs, file_inputs
from simplepose.errors import InputError


@pytest.fixture
def video(data_dir: Path, tmp_path: Path) -> Path:
    """A copy of a real video that the test may link to (the shared data is read-only)."""
    path = tmp_path / "in.mp4"
    shutil.copyfile(data_dir / "videos" / "mmpose_demo.mp4", path)
    return path


def _refused(outputs: list[Output], inputs: list[Path], message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        check_outputs(outputs, inputs)
    assert len(str(info.value).splitlines()) == 1


def test_an_output_that_is_an_input_is_refused_by_any_name(video: Path, tmp_path: Path) -> None:
    symlink, hardlink = tmp_path / "link.mp4", tmp_path / "hard.mp4"
    symlink.symlink_to(video)
    os.link(video, hardlink)
    other_spelling = tmp_path / "sub" / ".." / "in.mp4"
    (tmp_path / "sub").mkdir()
    for path, message in [
        (video, r"--output .*in\.mp4 is an input: writing it would destroy the input"),
        (symlink, r"link\.mp4 is the same file as the input .*in\.mp4"),
        (hardlink, r"hard\.mp4 is the same file as the input .*in\.mp4"),
        (other_spelling, r"is the same file as the input"),
    ]:
        _refused([Output("--output", path)], [video], message)


def test_two_outputs_that_are_one_file_are_refused(tmp_path: Path) -> None:
    existing = tmp_path / "a.jsonl"
    existing.write_text("")
    (tmp_path / "b.jsonl").symlink_to(existing)
    _refused(
        [Output("--json", existing), Output("--csv", tmp_path / "b.jsonl")],
        [],
        r"--json .*a\.jsonl and --csv .*b\.jsonl are the same file",
    )
    new = tmp_path / "new.csv"  # not created yet: compared by its resolved path
    (tmp_path / "sub").mkdir()
    _refused(
        [Output("--json", new), Output("--csv", tmp_path / "sub" / ".." / "new.csv")],
        [],
        "are the same file",
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: Output("--json", t / "nodir" / "r.json"), "folder .*nodir does not exist"),
        (lambda t: Output("--json", t), "it is a folder; give a file name"),
        (lambda t: Output("--output-dir", t / "f.txt", folder=True), "is a file; give a folder"),
        (lambda t: Output("--json", unwritable_folder(t) / "r.json"), "is not writable"),
        (lambda t: Output("--output-dir", unwritable_folder(t) / "d", folder=True), "writable"),
    ],
)
def test_unwritable_outputs_are_refused_and_nothing_is_created(
    tmp_path: Path, make, message: str
) -> None:
    (tmp_path / "f.txt").write_text("a file")
    before = sorted(tmp_path.rglob("*"))
    _refused([make(tmp_path)], [], message)
    assert sorted(tmp_path.rglob("*")) == before


def test_output_folders_may_be_new_and_files_in_them_too(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "overlays"
    check_outputs(
        [
            Output("--output-dir", folder, folder=True),
            Output("--output-dir overlay", folder / "bus.jpg", in_new_folder=True),
            Output("--json", folder / "results.json"),  # its folder is an output: allowed
        ]
    )
    assert not (tmp_path / "new").exists()  # checked, not created


def test_overlay_onto_an_input_asks_for_another_folder(data_dir: Path, tmp_path: Path) -> None:
    image = tmp_path / "bus.jpg"
    shutil.copyfile(data_dir / "images" / "bus.jpg", image)
    _refused(
        [Output("--output-dir overlay", image, in_new_folder=True)],
        [image],
        "is an input: writing it would destroy the input; choose another folder",
    )


def test_file_inputs_expands_folders_and_skips_what_is_missing(data_dir: Path) -> None:
    images = data_dir / "images"
    found = file_inputs([images, None, data_dir / "missing.jpg", data_dir / "README.md"])
    assert sorted(found) == sorted([*images.iterdir(), data_dir / "README.md"])


def test_special_files_are_fine_outputs(tmp_path: Path) -> None:
    check_outputs([Output("--json", Path("/dev/null"))], [])
