"""One measurement per pipeline stage, each on its own, so its cost can be read in isolation.

Every function returns plain dicts (``summarize`` output: ``median_ms``, ``p95_ms``, ``n``)
ready for ``bench.json``. Warm-up calls are never timed. The end-to-end figure comes from
``measure_pipeline``: the real threaded pipeline, where stages overlap.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from simplepose.bench.synthetic import WalkingPeople, crowd_heatmaps, template_pool
from simplepose.bench.timing import summarize, time_call
from simplepose.config import DecodeConfig, InferenceConfig, PipelineConfig
from simplepose.inference.backends import Backend
from simplepose.inference.preprocess import letterbox
from simplepose.types import Frame, FrameResult, Poses

#: Input size whose stride-4 grid (128 x 128) the grouping sweep uses, as DESIGN's budget.
GROUPING_INPUT = 512


def measure_decode(source: str, frames: int) -> tuple[dict[str, Any], list[Frame]]:
    """Time pulling each frame out of ``source`` (demux + decode + BGR conversion).

    Returns:
        The timing summary, and up to 60 decoded frames (kept for the later stages; a cap
        so that a 4K source does not fill the memory).
    """
    from simplepose.pipeline.sources import open_source

    kept: list[Frame] = []
    times: list[float] = []
    with open_source(source) as opened:
        iterator = iter(opened)
        while len(times) < frames:
            start = time.perf_counter()
            frame = next(iterator, None)
            elapsed = time.perf_counter() - start
            if frame is None:
                break
            times.append(elapsed)
            if len(kept) < 60:
                kept.append(frame)
    if not times:
        raise ValueError(f"{source} gave no frames")
    # The first frame pays for opening the codec; it is not a per-frame cost.
    stats = summarize(times[1:] or times)
    stats["frames"] = len(times)
    return stats, kept


def measure_preprocess(frames: Sequence[Frame], config: InferenceConfig) -> dict[str, Any]:
    """Letterbox (resize + pad, on the CPU) per frame: what runs before the network step.

    The float conversion is part of the network step (``measure_inference``): on the torch
    backend it runs on the device.
    """
    times = []
    for frame in frames:
        start = time.perf_counter()
        letterbox(frame.image, config)
        times.append(time.perf_counter() - start)
    stats = summarize(times)
    stats["input_hw"] = list(letterbox(frames[0].image, config)[1].input_hw)
    return stats


def measure_inference(
    backend: Backend,
    image: npt.NDArray[np.uint8],
    config: InferenceConfig,
    repeats: int,
    warmup: int = 2,
) -> dict[str, Any]:
    """The network step of one frame as the pipeline runs it, after ``warmup`` calls.

    Upload, network on [image, mirror] (flip) or the image, flip merge and download: the
    estimator's ``heatmaps`` on the letterboxed frame. Two warm-up calls let the torch
    backend on CUDA capture its CUDA graph (a shape is captured the second time it is seen).
    """
    from simplepose.inference.estimator import PoseEstimator

    padded, _ = letterbox(image, config)
    batch = padded[None]
    estimator = PoseEstimator(backend, config=config)
    stats = summarize(time_call(lambda: estimator.heatmaps(batch), repeats, warmup=warmup))
    stats["input_shape"] = [2 if config.flip else 1, 3, *padded.shape[:2]]  # N, 3, H, W
    stats["fps"] = 1e3 / stats["median_ms"]
    return stats


def measure_grouping(
    people: Sequence[int], repeats: int, config: DecodeConfig | None = None, seed: int = 7
) -> dict[str, Any]:
    """C++ grouping vs the NumPy reference on ground-truth crowds of each size.

    Inputs are oracle heatmaps (``crowd_heatmaps``) at the stride-4 grid of a 512 x 512
    input: the grouping's work grows with the number of people and peaks, not with the
    weights, so a crowd of known size measures it better than an untrained network's output.
    The same heatmaps go to both implementations.
    """
    from simplepose.grouping import decode, grid_params, reference

    config = config or DecodeConfig()
    pool = template_pool()
    rng = np.random.default_rng(seed)
    params = grid_params(config, GROUPING_INPUT // 4)
    rows: list[dict[str, Any]] = []
    for count in people:
        scenes = [crowd_heatmaps(pool, count, rng, GROUPING_INPUT) for _ in range(3)]
        cpp: list[float] = []
        numpy_ref: list[float] = []
        for heatmaps in scenes:
            cpp += time_call(functools.partial(decode, heatmaps, config), repeats * 10)
            numpy_ref += time_call(functools.partial(reference.decode, heatmaps, params), repeats)
        found = statistics.median(len(decode(h, config)) for h in scenes)
        cpp_stats, ref_stats = summarize(cpp), summarize(numpy_ref)
        rows.append(
            {
                "people": count,
                "found": found,
                "cpp": cpp_stats,
                "numpy": ref_stats,
                "speedup": ref_stats["median_ms"] / cpp_stats["median_ms"],
            }
        )
    return {
        "input_size": GROUPING_INPUT,
        "grid": [GROUPING_INPUT // 4, GROUPING_INPUT // 4],
        "by_people": rows,
        # One headline number: the median over crowd sizes of the per-size speed-up.
        "speedup_over_reference": statistics.median(row["speedup"] for row in rows),
    }


def scene_poses(frames: Sequence[Frame], scene: WalkingPeople | None) -> list[Poses]:
    """Poses to draw on each frame: the synthetic scene's, or 5 walking people otherwise."""
    if scene is None:
        height, width = frames[0].image.shape[:2]
        scene = WalkingPeople(5, width, height)
    return [scene.poses(frame.timestamp) for frame in frames]


def measure_render_encode(frames: Sequence[Frame], poses: Sequence[Poses]) -> dict[str, Any]:
    """Overlay drawing and video encoding (the ``VideoFileSink``, H.264) per frame."""
    from simplepose.pipeline.render import Renderer
    from simplepose.pipeline.sinks import VideoFileSink

    renderer = Renderer()
    track_ids = [np.arange(len(p), dtype=np.int64) for p in poses]
    render_times, encode_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        sink = VideoFileSink(Path(tmp) / "encode.mp4", fps=30)
        try:
            for frame, pose, ids in zip(frames, poses, track_ids):
                start = time.perf_counter()
                rendered = renderer(frame.image, pose, ids, fps=30.0, latency_ms=50.0)
                render_times.append(time.perf_counter() - start)
                result = FrameResult(frame, pose, ids, rendered)
                start = time.perf_counter()
                sink.write(result)
                encode_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            sink.close()
            flush_s = time.perf_counter() - start
        except BaseException:
            sink.abort()
            raise
    encode = summarize(encode_times[1:] or encode_times)  # frame 0 opens the encoder
    encode["codec"] = sink.codec
    # The encoder buffers frames and finishes them at close; spread that over the frames.
    encode["flush_ms_per_frame"] = 1e3 * flush_s / len(encode_times)
    return {
        "render": {**summarize(render_times), "people": int(np.median([len(p) for p in poses]))},
        "encode": encode,
    }


def measure_pipeline(
    source: str,
    estimator: Any,
    frames: int,
    progress: Callable[[int], None] | None = None,
    *,
    threaded: bool = True,
    render: bool = True,
    encode: bool = True,
) -> dict[str, Any]:
    """The pipeline end to end on ``source``, as ``simplepose run`` runs it: decode, infer,
    group, track, smooth, render and H.264 encode, each stage in its own thread.

    Args:
        threaded: ``False`` runs the stages one after another in this thread (comparison).
        render, encode: include drawing / video encoding.

    Returns:
        ``PipelineStats.summary()``: fps, latency (capture -> result, median / p95 ms),
        per-stage median / p95 ms; plus ``threaded``.
    """
    from simplepose.pipeline import Pipeline, VideoFileSink, open_source

    with tempfile.TemporaryDirectory() as tmp:
        opened = open_source(source)
        sinks = []
        if encode:
            sinks.append(
                VideoFileSink(
                    Path(tmp) / "pipeline.mp4",
                    fps=getattr(opened, "fps", None) or 30,
                    time_base=getattr(opened, "time_base", None),
                )
            )
        config = PipelineConfig(threaded=threaded, max_frames=frames, smooth=True, render=render)
        with Pipeline(opened, estimator, sinks, config) as pipeline:
            for result in pipeline:
                if progress is not None:
                    progress(result.frame.index)
            summary = pipeline.stats.summary()
    summary["threaded"] = threaded
    return summary


def inference_config(input_size: int, flip: bool) -> InferenceConfig:
    """The inference settings of one benchmark row (one scale, authors' height rule)."""
    return dataclasses.replace(InferenceConfig(), input_size=input_size, flip=flip, scales=(1.0,))
