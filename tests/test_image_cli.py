"""``simplepose image``: one overlay per input (names kept, collisions made unique, format
kept), unreadable inputs reported and skipped, and the results json written for what was
done, also after Ctrl-C or SIGTERM (real signals)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from conftest import trained_like

from simplepose import cli
from simplepose.commands.image import EXIT_SOME_SKIPPED, overlay_names
from simplepose.model import build_model
from simplepose.model.checkpoint import save_checkpoint


@pytest.mark.parametrize(
    ("paths", "names"),
    [
        # Distinct names are kept as they are, extension included.
        (["a/bus.jpg", "a/one.png", "b/one.jpg"], ["bus.jpg", "one.png", "one.jpg"]),
        # The same name in two folders: the folder's name goes in front.
        (["d1/x.jpg", "d2/x.jpg"], ["d1_x.jpg", "d2_x.jpg"]),
        # Names equal but for case collide on case-insensitive file systems.
        (["d1/X.JPG", "d2/x.jpg"], ["d1_X.JPG", "d2_x.jpg"]),
        # Same folder name too (or the same file twice): then a number.
        (["p/d/x.jpg", "q/d/x.jpg", "d/x.jpg"], ["d_x.jpg", "d_x-2.jpg", "d_x-3.jpg"]),
        # A generated name never takes an input's own name.
        (["d1/x.jpg", "d2/x.jpg", "d1_x.jpg"], ["d1_x-2.jpg", "d2_x.jpg", "d1_x.jpg"]),
    ],
)
def test_overlay_names_are_unique(tmp_path: Path, paths: list[str], names: list[str]) -> None:
    result = overlay_names([tmp_path / "root" / p for p in paths])
    assert result == names
    assert len({n.casefold() for n in result}) == len(result)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    return save_checkpoint(trained_like(build_model("nano")), folder / "nano.pth")


def _image(argv: list[str], weights: Path) -> int:
    return cli.main(
        ["image", *argv, "--weights", str(weights), "--backend", "torch", "--input-size", "128"]
    )


def test_collisions_and_formats(
    data_dir: Path, tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = data_dir / "images"
    for folder, photo in (("d1", "bus.jpg"), ("d2", "zidane.jpg")):
        (tmp_path / folder).mkdir()
        shutil.copyfile(photos / photo, tmp_path / folder / "x.jpg")
    zidane = cv2.imread(str(photos / "zidane.jpg"))
    cv2.imwrite(str(tmp_path / "one.png"), zidane)
    shutil.copyfile(photos / "bus.jpg", tmp_path / "one.jpg")
    inputs = [tmp_path / p for p in ("d1/x.jpg", "d2/x.jpg", "one.png", "one.jpg")]
    out = tmp_path / "ov"
    code = _image([*map(str, inputs), "--output-dir", str(out)], weights)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "4 images" in err
    assert sorted(p.name for p in out.iterdir()) == ["d1_x.jpg", "d2_x.jpg", "one.jpg", "one.png"]
    bus_shape = cv2.imread(str(photos / "bus.jpg")).shape
    assert cv2.imread(str(out / "d1_x.jpg")).shape == bus_shape
    assert cv2.imread(str(out / "d2_x.jpg")).shape == zidane.shape
    assert (out / "one.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # a PNG stays a PNG
    assert (out / "one.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


def test_a_bad_input_among_good_ones_is_skipped_and_reported(
    data_dir: Path, tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = sorted((data_dir / "coco_people" / "images").glob("*.jpg"))[:3]
    corrupt = tmp_path / "000000999999.jpg"
    corrupt.write_bytes(images[0].read_bytes()[:3000])  # a cut JPEG
    alone, mixed = tmp_path / "alone.json", tmp_path / "mixed.json"
    assert _image([*map(str, images), "--json", str(alone)], weights) == 0
    capsys.readouterr()
    argv = [str(images[0]), str(corrupt), str(images[1]), str(tmp_path / "nope*.jpg"),
            str(images[2]), "--json", str(mixed), "--output-dir", str(tmp_path / "ov")]  # fmt: skip
    code = _image(argv, weights)
    err = capsys.readouterr().err
    assert code == EXIT_SOME_SKIPPED == 1, err
    assert f"simplepose image: skipped: {corrupt} is not a readable image" in err
    assert "skipped: no such file, folder or matching image" in err and "nope*.jpg" in err
    assert "3 images" in err and "2 skipped" in err and "Traceback" not in err
    # The results of the good images are exactly those of a run without the bad ones.
    assert json.loads(mixed.read_text()) == json.loads(alone.read_text())
    assert sorted(p.name for p in (tmp_path / "ov").iterdir()) == sorted(p.name for p in images)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_results_of_the_images_done_are_written_on_a_signal(
    data_dir: Path, tmp_path: Path, weights: Path, signum: int, code: int
) -> None:
    images = data_dir / "coco_people" / "images"
    total = len(list(images.glob("*.jpg")))
    out, results = tmp_path / "ov", tmp_path / "results.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "simplepose", "image", str(images), "--weights", str(weights),
         "--backend", "torch", "--input-size", "256", "--output-dir", str(out),
         "--json", str(results), "--coco-ann",
         str(data_dir / "coco_people" / "person_keypoints.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (out.is_dir() and len(list(out.iterdir())) >= 3):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    process.send_signal(signum)
    time.sleep(0.1)
    process.send_signal(signal.SIGINT)  # a second one, during the finalisation
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    done = sorted(p.name for p in out.iterdir())
    assert 3 <= len(done) < total
    assert f"wrote {results}: results of {len(done)} of {total} images" in stderr
    entries = json.loads(results.read_text())
    annotations = json.loads((data_dir / "coco_people" / "person_keypoints.json").read_text())
    ids = {i["file_name"]: i["id"] for i in annotations["images"]}
    assert {e["image_id"] for e in entries} <= {ids[name] for name in done}
