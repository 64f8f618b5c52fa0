"""The real-time video pipeline: sources, tracking, smoothing, rendering, sinks, runner.

``for result in simplepose.pipeline.run(source, estimator, sinks): ...`` yields one
``FrameResult`` per frame, in frame order, with every stage in its own thread. Each piece
(``open_source``, ``Tracker``, ``PoseSmoother``, ``Renderer``, the sinks) also works on its
own.
"""

from __future__ import annotations

from simplepose.pipeline.live import LiveServer, ServeSink
from simplepose.pipeline.render import Renderer, draw_poses
from simplepose.pipeline.runner import (
    STAGES,
    Estimator,
    Pipeline,
    PipelineError,
    PipelineStats,
    run,
)
from simplepose.pipeline.sinks import (
    CocoResultsSink,
    CsvSink,
    JsonLinesSink,
    Sink,
    VideoFileSink,
    WindowSink,
    coco_image_ids,
)
from simplepose.pipeline.smoothing import OneEuroFilter, PoseSmoother
from simplepose.pipeline.sources import (
    CameraSource,
    ImageFolderSource,
    IterableSource,
    Source,
    SourceDecodeError,
    StreamSource,
    VideoFileSource,
    open_source,
)
from simplepose.pipeline.tracking import Tracker, greedy_match, keypoint_similarity

__all__ = [
    "STAGES",
    "ServeSink",
    "CameraSource",
    "CocoResultsSink",
    "CsvSink",
    "Estimator",
    "ImageFolderSource",
    "IterableSource",
    "JsonLinesSink",
    "LiveServer",
    "OneEuroFilter",
    "Pipeline",
    "PipelineError",
    "PipelineStats",
    "PoseSmoother",
    "Renderer",
    "Sink",
    "Source",
    "SourceDecodeError",
    "StreamSource",
    "Tracker",
    "VideoFileSink",
    "VideoFileSource",
    "WindowSink",
    "coco_image_ids",
    "draw_poses",
    "greedy_match",
    "keypoint_similarity",
    "open_source",
    "run",
]
