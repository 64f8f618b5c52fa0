"""Sinks: content round trips, incremental validity, unwritable paths leave nothing behind."""

from __future__ import annotations

import csv
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from simplepose import skeleton
from simplepose.errors import InputError
from simplepose.pipeline.sinks import (
    CSV_COLUMNS,
    CocoResultsSink,
    CsvSink,
    JsonLinesSink,
    VideoFileSink,
    WindowSink,
    coco_image_ids,
    gui_problem,
)
from simplepose.types import Frame, FrameResult, Poses


def _result(index: int, people: int = 2, size: tuple[int, int] = (64, 48)) -> FrameResult:
    rng = np.random.default_rng(index)
    keypoints = rng.uniform(0, 40, (people, 17, 3)).astype(np.float32)
    keypoints[:, :, 2] = rng.uniform(0.1, 1, (people, 17))
    keypoints[:, 3] = 0  # one unfound keypoint per person
    poses = Poses(keypoints, np.linspace(0.9, 0.5, people).astype(np.float32))
    image = np.full((size[1], size[0], 3), index * 20 % 255, np.uint8)
    frame = Frame(index, index / 25.0, image)
    return FrameResult(frame, poses, np.arange(people, dtype=np.int64) + 10 * index)


def test_json_lines_round_trip_and_flush(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    sink = JsonLinesSink(path)
    results = [_result(i) for i in range(3)]
    for result in results:
        sink.write(result)
        # Flushed per line: readable before close.
        assert path.read_text().count("\n") == result.frame.index + 1
    sink.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line, result in zip(lines, results):
        assert line["index"] == result.frame.index
        assert line["timestamp"] == pytest.approx(result.frame.timestamp)
        assert [p["id"] for p in line["persons"]] == result.track_ids.tolist()
        kp = np.array([p["keypoints"] for p in line["persons"]])
        np.testing.assert_allclose(kp, result.poses.keypoints, atol=1e-3)
        assert kp[:, 3].tolist() == [[0, 0, 0]] * 2


def test_csv_rows_per_keypoint(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    with CsvSink(path) as sink:
        sink.write(_result(0, people=2))
        sink.write(_result(1, people=0))
        sink.write(_result(2, people=1))
    rows = list(csv.reader(path.open()))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 1 + 17 * 3
    first = dict(zip(CSV_COLUMNS, rows[1]))
    assert first["frame"] == "0"
    assert first["keypoint_name"] == skeleton.COCO_KEYPOINT_NAMES[0]
    expected = _result(0).poses.keypoints[0, 0]
    assert float(first["x"]) == pytest.approx(float(expected[0]), abs=1e-3)
    assert rows[-1][0] == "2"


def test_coco_results_valid_after_every_frame(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    sink = CocoResultsSink(path, image_ids=[139, 785, 1000])
    assert json.loads(path.read_text()) == []
    sink.write(_result(0, people=2))
    assert len(json.loads(path.read_text())) == 2  # valid without close
    sink.write(_result(1, people=0))
    sink.write(_result(2, people=1))
    entries = json.loads(path.read_text())
    sink.close()
    assert entries == json.loads(path.read_text())
    assert [e["image_id"] for e in entries] == [139, 139, 1000]
    assert all(e["category_id"] == 1 and len(e["keypoints"]) == 51 for e in entries)
    assert entries[0]["score"] == pytest.approx(0.9)


def test_coco_image_ids() -> None:
    assert coco_image_ids(["a/000000081988.jpg", "b/bus.jpg", "c/7.png"]) == [81988, 1, 7]


def test_video_sink_frames_rate_and_size(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    sink = VideoFileSink(path, fps=25, time_base=Fraction(1, 25))
    for i in range(10):
        sink.write(_result(i, size=(64, 48)))
    sink.write(_result(10, size=(100, 80)))  # another size is resized to the first
    sink.close()
    sink.close()  # idempotent
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
        assert stream.average_rate == 25
        assert stream.codec_context.name in ("h264", "mpeg4")
    assert len(frames) == 11
    assert frames[0].shape == (48, 64, 3)
    # Lossy, but a flat grey frame stays close to its grey level.
    assert abs(float(frames[3].mean()) - 60) < 3


def test_video_sink_without_frames_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    VideoFileSink(path, fps=30).close()
    assert not path.exists()


@pytest.mark.parametrize("sink_class", [JsonLinesSink, CsvSink, CocoResultsSink, VideoFileSink])
def test_unwritable_paths(tmp_path: Path, sink_class: type) -> None:
    missing_folder = tmp_path / "no" / "such" / "out.mp4"
    with pytest.raises(InputError, match="does not exist"):
        sink_class(missing_folder)
    assert not (tmp_path / "no").exists()
    with pytest.raises(InputError, match="folder"):
        sink_class(tmp_path)  # a folder, not a file
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sink_class", [JsonLinesSink, CsvSink, CocoResultsSink, VideoFileSink])
def test_abort_removes_file(tmp_path: Path, sink_class: type) -> None:
    path = tmp_path / "out.mp4"
    sink = sink_class(path)
    assert path.exists()
    sink.abort()
    assert not path.exists()


def test_window_needs_gui_and_display() -> None:
    problem = gui_problem()
    if problem is None:
        pytest.skip("this machine can show windows")
    with pytest.raises(InputError, match="cannot show a window"):
        WindowSink()
