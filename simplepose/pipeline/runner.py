"""The pipeline: capture -> infer -> group -> track/smooth -> render -> sinks.

In threaded mode each stage runs in its own thread and consecutive stages are joined by
bounded ``queue.Queue``s of ``PipelineConfig.queue_size`` items, so stages overlap and the
throughput is set by the slowest stage. File sources block when the first queue is full
(no frame is lost); live sources drop the oldest queued frame instead (latency stays
bounded) and count the drops.

Shutdown uses one ``threading.Event`` plus a sentinel that flows down the queues at the end
of the source; every ``put``/``get`` uses a timeout and checks the event, so any stage can
stop all of them. An exception in a stage sets the event; the caller gets a
``PipelineError`` that names the stage, chained from the original exception, within about
a second. Every exit path (end, error, ``stop()``, Ctrl-C, leaving a ``for`` loop early)
closes the source and finalises every sink.

A corrupt or truncated video is the one error that does not stop the run at once: the
frames that decoded are processed and written, then ``PipelineError`` (stage "capture",
chained from ``SourceDecodeError``) is raised.

The sequential mode runs the same stage objects one after another in the caller's thread.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from simplepose._signals import deferred
from simplepose.config import PipelineConfig
from simplepose.pipeline.render import Renderer
from simplepose.pipeline.sinks import Sink
from simplepose.pipeline.smoothing import PoseSmoother
from simplepose.pipeline.sources import Source, SourceDecodeError, open_source
from simplepose.pipeline.tracking import Tracker
from simplepose.types import Frame, FrameResult, Poses

_logger = logging.getLogger(__name__)

#: Stage names, in order. "capture" is the time to obtain the next frame (decoding for
#: files; mostly waiting for the device for live sources); "sink" includes every sink.
STAGES: tuple[str, ...] = ("capture", "infer", "group", "track", "render", "sink")

_POLL = 0.05  # seconds between stop-event checks while blocked on a queue
_END = object()  # sentinel that follows the last frame down the queues
_SINK_GRACE = 30.0  # extra seconds for a sink write in progress when the pipeline stops


@runtime_checkable
class Estimator(Protocol):
    """What the pipeline needs from a pose estimator (``simplepose.PoseEstimator`` is one).

    ``infer`` and ``group`` run in different threads, one frame each at a time, so
    ``infer`` of frame ``i + 1`` may overlap ``group`` of frame ``i``.
    """

    def infer(self, image: npt.NDArray[np.uint8]) -> Any:
        """Preprocess and run the network on one uint8 (H, W, 3) BGR image; opaque result."""
        ...

    def group(self, inferred: Any) -> Poses:
        """Turn ``infer``'s result into poses in image pixels."""
        ...


def _has_infer_batch(estimator: Any) -> bool:
    """Whether ``estimator`` also has ``infer_batch(images) -> list`` (``--batch N``)."""
    return callable(getattr(estimator, "infer_batch", None))


class PipelineError(RuntimeError):
    """A pipeline stage failed; ``stage`` names it and ``__cause__`` is the original error.

    Attributes:
        stage: one of ``STAGES``.
    """

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"pipeline stage {stage!r} failed: {type(error).__name__}: {error}")
        self.stage = stage


class _Stopped(Exception):
    """Raised inside a stage thread when the stop event is set."""


def _percentile_ms(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q) * 1e3) if len(values) else float("nan")


class PipelineStats:
    """Timings and counters of one run; safe to read while the pipeline runs.

    Per-stage timings and latencies keep the last ``window`` samples (so a long live run
    uses bounded memory); counts cover the whole run.

    Args:
        window: samples kept per stage.
    """

    def __init__(self, window: int = 4096) -> None:
        self._lock = threading.Lock()
        self._stages: dict[str, deque[float]] = {}
        self._latency: deque[float] = deque(maxlen=window)
        self._display: deque[float] = deque(maxlen=window)
        self._done_at: deque[float] = deque(maxlen=64)
        self._window = window
        self.frames = 0
        self.queue_dropped = 0
        self.source_dropped = 0
        self.started_at = time.perf_counter()
        self.ended_at: float | None = None

    def record(self, stage: str, seconds: float) -> None:
        """Add one timing sample for ``stage``."""
        with self._lock:
            samples = self._stages.get(stage)
            if samples is None:
                samples = self._stages[stage] = deque(maxlen=self._window)
            samples.append(seconds)

    def frame_done(self, captured_at: float) -> float:
        """Count one finished frame; returns its end-to-end latency in seconds."""
        now = time.perf_counter()
        latency = now - captured_at
        with self._lock:
            self.frames += 1
            self._latency.append(latency)
            self._done_at.append(now)
        return latency

    def frame_displayed(self, captured_at: float) -> None:
        """Record that a display sink (window, browser view) has shown a frame."""
        latency = time.perf_counter() - captured_at
        with self._lock:
            self._display.append(latency)

    @property
    def dropped(self) -> int:
        """Frames dropped by a live source and by the first queue together."""
        return self.queue_dropped + self.source_dropped

    @property
    def elapsed(self) -> float:
        """Seconds from start to end (or to now while running)."""
        end = self.ended_at if self.ended_at is not None else time.perf_counter()
        return end - self.started_at

    @property
    def fps(self) -> float:
        """Finished frames per second over the whole run."""
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0

    def window_fps(self) -> float | None:
        """Frames per second over the last (up to) 64 finished frames, ``None`` before 2."""
        with self._lock:
            if len(self._done_at) < 2:
                return None
            span = self._done_at[-1] - self._done_at[0]
            return (len(self._done_at) - 1) / span if span > 0 else None

    def latencies(self) -> list[float]:
        """The kept end-to-end latency samples, seconds (capture -> result)."""
        with self._lock:
            return list(self._latency)

    def timings(self, stage: str) -> list[float]:
        """The kept timing samples of ``stage``, seconds."""
        with self._lock:
            return list(self._stages.get(stage, ()))

    def summary(self) -> dict[str, Any]:
        """Plain dict: frames, dropped, elapsed, fps and per-stage / latency median, p95 ms.

        ``latency_ms`` is capture -> result; ``display_ms`` (only when a display sink ran) is
        capture -> shown in a window or handed to the browser view.
        """
        with self._lock:
            stages = {name: list(values) for name, values in self._stages.items()}
            latency = list(self._latency)
            display = list(self._display)
        ordered = [s for s in STAGES if s in stages] + [s for s in stages if s not in STAGES]
        summary: dict[str, Any] = {
            "frames": self.frames,
            "dropped": self.dropped,
            "source_dropped": self.source_dropped,
            "queue_dropped": self.queue_dropped,
            "elapsed_s": self.elapsed,
            "fps": self.fps,
            "stages_ms": {
                name: {
                    "median": _percentile_ms(stages[name], 50),
                    "p95": _percentile_ms(stages[name], 95),
                    "samples": len(stages[name]),
                }
                for name in ordered
            },
            "latency_ms": {
                "median": _percentile_ms(latency, 50),
                "p95": _percentile_ms(latency, 95),
            },
        }
        if display:
            # Capture -> shown in a window or handed to the browser view (display sinks).
            summary["display_ms"] = {
                "median": _percentile_ms(display, 50),
                "p95": _percentile_ms(display, 95),
            }
        return summary

    def table(self) -> str:
        """The summary as a small text table."""
        summary = self.summary()
        lines = [f"{'stage':<10}{'median ms':>11}{'p95 ms':>10}"]
        for name, values in summary["stages_ms"].items():
            lines.append(f"{name:<10}{values['median']:>11.2f}{values['p95']:>10.2f}")
        latency = summary["latency_ms"]
        lines.append(f"{'latency':<10}{latency['median']:>11.2f}{latency['p95']:>10.2f}")
        display = summary.get("display_ms")
        if display is not None:
            lines.append(f"{'display':<10}{display['median']:>11.2f}{display['p95']:>10.2f}")
        lines.append(
            f"{summary['frames']} frames in {summary['elapsed_s']:.2f} s "
            f"({summary['fps']:.1f} FPS), dropped {summary['dropped']} "
            f"(source {summary['source_dropped']}, queue {summary['queue_dropped']})"
        )
        return "\n".join(lines)

    def line(self) -> str:
        """One progress line for logs."""
        latency = _percentile_ms(self.latencies(), 50)
        fps = self.window_fps() or 0.0
        return (
            f"{self.frames} frames, {fps:.1f} FPS, latency {latency:.0f} ms, dropped {self.dropped}"
        )


@dataclass
class _Item:
    frame: Frame
    inferred: Any = None
    poses: Poses | None = None
    track_ids: npt.NDArray[np.int64] | None = None
    rendered: npt.NDArray[np.uint8] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def result(self) -> FrameResult:
        assert self.poses is not None
        return FrameResult(self.frame, self.poses, self.track_ids, self.rendered, self.timings)


class Pipeline:
    """Runs an estimator over a source, with tracking, smoothing, rendering and sinks.

    Iterate it to get ``FrameResult`` objects in frame order; the source and every sink are
    closed when the iteration ends, fails or is abandoned (or on ``close()``). Use it as a
    context manager to be sure of that.

    Args:
        source: a ``Source`` or anything ``open_source`` accepts.
        estimator: an object with ``infer`` and ``group`` (see ``Estimator``).
        sinks: where results are written; the pipeline owns and closes them.
        config: threads, queue size, tracking, smoothing, rendering.
        tracker: a custom tracker (default: from ``config`` when ``config.track``).
        smoother: a custom smoother (default: from ``config`` when ``config.smooth``).
        renderer: a custom renderer (default: ``Renderer(config.draw_min_score)``).
    """

    def __init__(
        self,
        source: Source | str | int | os.PathLike[str],
        estimator: Estimator,
        sinks: Sequence[Sink] = (),
        config: PipelineConfig | None = None,
        *,
        tracker: Tracker | None = None,
        smoother: PoseSmoother | None = None,
        renderer: Renderer | None = None,
    ) -> None:
        config = config or PipelineConfig()
        if not isinstance(config, PipelineConfig):
            raise TypeError(f"config must be a PipelineConfig, got {type(config).__name__}")
        for name in ("infer", "group"):
            if not callable(getattr(estimator, name, None)):
                raise TypeError(f"estimator must have an {name}() method, got {estimator!r}")
        for sink in sinks:
            if not isinstance(sink, Sink):
                raise TypeError(f"sinks must be Sink objects, got {type(sink).__name__}")
        self.config = config
        self.estimator = estimator
        self.sinks = list(sinks)
        if tracker is None and config.track:
            tracker = Tracker(config.track_min_similarity, config.track_max_age)
        if smoother is None and config.smooth:
            smoother = PoseSmoother(
                config.smooth_min_cutoff, config.smooth_beta, config.smooth_d_cutoff
            )
        if smoother is not None and tracker is None:
            raise ValueError("smoothing needs tracking (the filters are per track)")
        self.tracker = tracker
        self.smoother = smoother
        render = config.render
        if render is None:
            render = any(sink.needs_rendered for sink in self.sinks)
        self.renderer = (renderer or Renderer(config.draw_min_score)) if render else None
        self.source = source if isinstance(source, Source) else open_source(source)
        # Batches only for sources that never drop a frame: a live source's newest frame
        # must not wait for the next ones.
        self.batch = 1 if self.source.live else config.batch
        if self.batch > 1 and not _has_infer_batch(estimator):
            raise TypeError(
                f"batch {config.batch} needs an estimator with infer_batch(images), got "
                f"{type(estimator).__name__}"
            )
        self.stats = PipelineStats()
        self._stop = threading.Event()
        self._error_lock = threading.Lock()
        self._error: tuple[str, BaseException] | None = None
        self._deferred: tuple[str, BaseException] | None = None
        self._threads: list[threading.Thread] = []
        self._started = False
        self._finished = False
        self._last_log = time.perf_counter()

    # -- public --------------------------------------------------------------------------

    def __iter__(self) -> Iterator[FrameResult]:
        if self._started:
            raise RuntimeError("a Pipeline runs once; build a new one")
        self._started = True
        return self._threaded() if self.config.threaded else self._sequential()

    def run(self) -> PipelineStats:
        """Process the whole source (results go to the sinks only); returns the stats."""
        for _ in self:
            pass
        return self.stats

    def stop(self) -> None:
        """Ask every stage to stop (thread-safe); iteration ends soon after."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """Whether a stop was requested or a stage failed."""
        return self._stop.is_set()

    def close(self) -> None:
        """Stop, wait for the stages (at most ``config.stop_timeout``), close source and sinks."""
        self._stop.set()
        self._shutdown()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- stages --------------------------------------------------------------------------

    def _stages(self) -> list[tuple[str, Callable[[_Item], None]]]:
        stages: list[tuple[str, Callable[[_Item], None]]] = [
            ("infer", self._infer),
            ("group", self._group),
        ]
        if self.tracker is not None:
            stages.append(("track", self._track))
        if self.renderer is not None:
            stages.append(("render", self._render))
        stages.append(("sink", self._write_sinks))
        return stages

    def _infer(self, item: _Item) -> None:
        item.inferred = self.estimator.infer(item.frame.image)

    def _group(self, item: _Item) -> None:
        poses = self.estimator.group(item.inferred)
        if not isinstance(poses, Poses):
            raise TypeError(f"estimator.group must return Poses, got {type(poses).__name__}")
        item.poses = poses
        item.inferred = None  # free the network output early

    def _track(self, item: _Item) -> None:
        assert self.tracker is not None
        assert item.poses is not None
        item.track_ids = self.tracker.update(item.poses, item.frame.index)
        if self.smoother is not None:
            item.poses = self.smoother.update(item.poses, item.track_ids, item.frame.timestamp)

    def _render(self, item: _Item) -> None:
        assert self.renderer is not None
        assert item.poses is not None
        latency_ms = (time.perf_counter() - item.frame.captured_at) * 1e3
        item.rendered = self.renderer(
            item.frame.image,
            item.poses,
            item.track_ids,
            fps=self.stats.window_fps(),
            latency_ms=latency_ms if item.frame.captured_at else None,
        )

    def _write_sinks(self, item: _Item) -> None:
        result = item.result()
        for sink in self.sinks:
            if not sink.main_thread:
                sink.write(result)
                if sink.displays and item.frame.captured_at:
                    self.stats.frame_displayed(item.frame.captured_at)
            if sink.stop_requested:
                self._stop.set()

    def _finish(self, item: _Item) -> FrameResult:
        """Main-thread end of one frame: GUI sinks, latency, periodic log."""
        result = item.result()
        for sink in self.sinks:
            if sink.main_thread:
                sink.write(result)
                if sink.displays and item.frame.captured_at:
                    self.stats.frame_displayed(item.frame.captured_at)
                if sink.stop_requested:
                    self._stop.set()
        latency = self.stats.frame_done(item.frame.captured_at)
        result.timings["latency"] = latency
        interval = self.config.stats_interval
        if self.source.live and interval > 0:
            now = time.perf_counter()
            if now - self._last_log >= interval:
                self._last_log = now
                _logger.info("%s", self.stats.line())
        return result

    # -- threaded mode -------------------------------------------------------------------

    def _fail(self, stage: str, error: BaseException) -> None:
        with self._error_lock:
            if self._error is None:
                self._error = (stage, error)
        self._stop.set()

    def _get(self, q: queue.Queue[Any]) -> Any:
        while not self._stop.is_set():
            try:
                return q.get(timeout=_POLL)
            except queue.Empty:
                continue
        raise _Stopped

    def _put(self, q: queue.Queue[Any], item: Any) -> None:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue
        raise _Stopped

    def _put_latest(self, q: queue.Queue[Any], item: Any) -> None:
        # Live sources: make room by dropping the oldest queued frame. Only this thread
        # puts into the queue, so after one get the put cannot fail again for long.
        while not self._stop.is_set():
            try:
                q.put_nowait(item)
                return
            except queue.Full:
                try:
                    q.get_nowait()
                    self.stats.queue_dropped += 1
                except queue.Empty:
                    pass
        raise _Stopped

    def _frames(self) -> Iterator[tuple[Frame, float]]:
        """The source's frames with their "capture" seconds, up to ``max_frames``."""
        frames = iter(self.source)
        limit = self.config.max_frames
        count = 0
        while limit is None or count < limit:
            start = time.perf_counter()
            try:
                frame = next(frames)
            except StopIteration:
                return
            except SourceDecodeError as error:
                # Keep what decoded: end the stream normally, report after the drain.
                self._deferred = ("capture", error)
                return
            finally:
                self.stats.source_dropped = self.source.dropped
            elapsed = time.perf_counter() - start
            self.stats.record("capture", elapsed)
            count += 1
            yield frame, elapsed

    def _capture_loop(self, out: queue.Queue[Any]) -> None:
        try:
            put = self._put_latest if self.source.live else self._put
            for frame, elapsed in self._frames():
                if self._stop.is_set():
                    return
                put(out, _Item(frame, timings={"capture": elapsed}))
            self._put(out, _END)
        except _Stopped:
            return
        except BaseException as error:
            self._fail("capture", error)

    def _stage_loop(
        self,
        name: str,
        function: Callable[[_Item], None],
        source: queue.Queue[Any],
        out: queue.Queue[Any],
    ) -> None:
        try:
            while True:
                item = self._get(source)
                if item is _END:
                    self._put(out, _END)
                    return
                start = time.perf_counter()
                function(item)
                elapsed = time.perf_counter() - start
                item.timings[name] = elapsed
                self.stats.record(name, elapsed)
                self._put(out, item)
        except _Stopped:
            return
        except BaseException as error:
            self._fail(name, error)

    def _batched_infer_loop(self, source: queue.Queue[Any], out: queue.Queue[Any]) -> None:
        """The infer stage with ``batch`` frames per ``estimator.infer_batch`` call.

        Takes up to ``batch`` frames (fewer at the end of the source), runs them together and
        passes them on in order; each frame is charged an equal share of the call's time.
        """
        estimator: Any = self.estimator
        try:
            ended = False
            while not ended:
                items: list[_Item] = []
                while len(items) < self.batch:
                    item = self._get(source)
                    if item is _END:
                        ended = True
                        break
                    items.append(item)
                if not items:
                    break
                start = time.perf_counter()
                inferred = estimator.infer_batch([item.frame.image for item in items])
                share = (time.perf_counter() - start) / len(items)
                for item, result in zip(items, inferred):
                    item.inferred = result
                    item.timings["infer"] = share
                    self.stats.record("infer", share)
                    self._put(out, item)
            self._put(out, _END)
        except _Stopped:
            return
        except BaseException as error:
            self._fail("infer", error)

    def _raise_error(self) -> None:
        if self._error is not None:
            stage, error = self._error
            raise PipelineError(stage, error) from error

    def _threaded(self) -> Iterator[FrameResult]:
        # With batches, room for a whole batch lets decoding and the later stages run
        # while the network works on the next batch.
        size = max(self.config.queue_size, self.batch)
        stages = self._stages()
        queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=size) for _ in range(len(stages) + 1)]
        self._threads = [
            threading.Thread(
                target=self._capture_loop, args=(queues[0],), name="simplepose-capture",
                daemon=True,
            )
        ]  # fmt: skip
        for i, (name, function) in enumerate(stages):
            batched = name == "infer" and self.batch > 1
            self._threads.append(
                threading.Thread(
                    target=self._batched_infer_loop if batched else self._stage_loop,
                    args=(queues[i], queues[i + 1])
                    if batched
                    else (name, function, queues[i], queues[i + 1]),
                    name=f"simplepose-{name}",
                    daemon=True,
                )
            )
        self.stats.started_at = time.perf_counter()
        for thread in self._threads:
            thread.start()
        results = queues[-1]
        try:
            while True:
                self._raise_error()
                try:
                    item = results.get(timeout=_POLL)
                except queue.Empty:
                    if self._stop.is_set():
                        self._raise_error()
                        return
                    continue
                if item is _END:
                    break
                yield self._finish(item)
                if self._stop.is_set():
                    self._raise_error()
                    return
        finally:
            self._stop.set()
            self._shutdown()
        self._raise_deferred()

    # -- sequential mode -----------------------------------------------------------------

    def _sequential(self) -> Iterator[FrameResult]:
        stages = self._stages()
        self.stats.started_at = time.perf_counter()
        try:
            frames = self._frames()
            while not self._stop.is_set():
                try:
                    frame, elapsed = next(frames)
                except StopIteration:
                    break
                except Exception as error:
                    raise PipelineError("capture", error) from error
                item = _Item(frame, timings={"capture": elapsed})
                for name, function in stages:
                    start = time.perf_counter()
                    try:
                        function(item)
                    except Exception as error:
                        raise PipelineError(name, error) from error
                    elapsed = time.perf_counter() - start
                    item.timings[name] = elapsed
                    self.stats.record(name, elapsed)
                yield self._finish(item)
        finally:
            self._stop.set()
            self._shutdown()
        self._raise_deferred()

    # -- shutdown ------------------------------------------------------------------------

    def _raise_deferred(self) -> None:
        if self._deferred is not None:
            stage, error = self._deferred
            raise PipelineError(stage, error) from error

    def _shutdown(self) -> None:
        if self._finished:
            return
        self._finished = True
        # A first Ctrl-C or SIGTERM arriving now is raised once the sinks are closed (in the
        # simplepose command; see simplepose._signals): half-closed outputs are worse.
        with deferred():
            if self.source.live:
                # Unblocks the capture thread waiting for the device.
                self.source.close()
            deadline = time.perf_counter() + self.config.stop_timeout
            for thread in self._threads:
                thread.join(timeout=max(0.0, deadline - time.perf_counter()))
            for thread in self._threads:
                if thread.name == "simplepose-sink" and thread.is_alive():
                    # Closing a sink while its thread still writes to it races inside
                    # FFmpeg; a write ends on its own, so give it longer.
                    thread.join(timeout=_SINK_GRACE)
            stuck = [thread.name for thread in self._threads if thread.is_alive()]
            if stuck:
                _logger.warning("pipeline threads still busy after stop: %s", ", ".join(stuck))
            self.stats.source_dropped = self.source.dropped
            self.stats.ended_at = time.perf_counter()
            errors: list[BaseException] = []
            if "simplepose-capture" not in stuck:
                # Closing a file source while its thread still decodes would race with FFmpeg.
                try:
                    self.source.close()
                except Exception as error:
                    errors.append(error)
            for sink in self.sinks:
                if "simplepose-sink" in stuck and not sink.main_thread:
                    # Still written to: closing it now could crash the process, and every
                    # file sink is readable up to its last flushed frame without it.
                    _logger.error("%s left open: its writer is still busy", type(sink).__name__)
                    continue
                try:
                    sink.close()
                except Exception as error:  # close every sink even if one fails
                    _logger.error("closing %s failed: %s", type(sink).__name__, error)
                    errors.append(error)
            if errors and self._error is None:
                raise PipelineError("sink", errors[0]) from errors[0]


def run(
    source: Source | str | int | os.PathLike[str],
    estimator: Estimator,
    sinks: Sequence[Sink] = (),
    config: PipelineConfig | None = None,
    **kwargs: Any,
) -> Iterator[FrameResult]:
    """Run the pipeline and yield a ``FrameResult`` per frame, in frame order.

    ``for result in simplepose.pipeline.run("video.mp4", estimator): ...``. Leaving the loop
    early stops the pipeline and closes source and sinks.

    Args:
        source: a ``Source`` or anything ``open_source`` accepts.
        estimator: an object with ``infer`` and ``group`` (see ``Estimator``).
        sinks: where results are written; they are closed at the end.
        config: pipeline settings.
        **kwargs: passed to ``Pipeline`` (``tracker``, ``smoother``, ``renderer``).

    Returns:
        An iterator of ``FrameResult`` with poses in image pixels; it raises
        ``PipelineError`` when a stage fails (``stage`` says which; the cause is chained).
    """
    # Built here, not inside the generator, so bad arguments fail at the call.
    return _iterate(Pipeline(source, estimator, sinks, config, **kwargs))


def _iterate(pipeline: Pipeline) -> Iterator[FrameResult]:
    with pipeline:
        yield from pipeline
