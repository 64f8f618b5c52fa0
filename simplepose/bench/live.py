"""What watching costs: the pipeline with the browser live view, without and with clients.

``measure_live_view`` runs the threaded pipeline with a ``ServeSink`` several times in one
process, alternately with no client and with ``clients`` pages watching (each page: one
``/video.mjpg`` and one ``/events`` stream, read by a thread over loopback), and reports the
pipeline FPS of both, their ratio, and the server's own CPU time per frame (publishing,
JPEG encoding once per frame, building the events, sending; the sum over its threads).
The clients only drain their sockets, so their own cost stays small; a real browser runs
elsewhere.
"""

from __future__ import annotations

import multiprocessing
import socket
import statistics
import threading
import time
from typing import Any

from simplepose.config import PipelineConfig

#: Streams per watching page: the MJPEG video and the events.
PAGE_STREAMS = ("/video.mjpg", "/events")


def _read_stream(port: int, path: str, stop: Any) -> None:
    """Drain one stream until ``stop`` is set or the server closes it."""
    buffer = bytearray(1 << 18)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10.0) as connection:
            connection.settimeout(0.5)  # wake up to check ``stop``
            connection.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            while not stop.is_set():
                try:
                    if not connection.recv_into(buffer):
                        return
                except TimeoutError:
                    continue
    except OSError:
        return  # the server closed at the end of the run


def _watch(port: int, pages: int, stop: Any) -> None:
    """A watcher process: ``pages`` pages, one thread per stream."""
    threads = [
        threading.Thread(target=_read_stream, args=(port, path, stop), daemon=True)
        for _ in range(pages)
        for path in PAGE_STREAMS
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class _Watchers:
    """``pages`` browser-like clients of a live server in their own process (as browsers
    are: they compete for the CPU, not for this process's GIL)."""

    def __init__(self, port: int, pages: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._process = context.Process(target=_watch, args=(port, pages, self._stop),
                                         daemon=True)  # fmt: skip
        self._process.start()

    def stop(self) -> None:
        self._stop.set()
        self._process.join(timeout=10.0)
        if self._process.is_alive():
            self._process.kill()


def _one_run(source: str, estimator: Any, frames: int, pages: int) -> dict[str, Any]:
    from simplepose.pipeline import Pipeline, open_source
    from simplepose.pipeline.live import ServeSink

    sink = ServeSink("127.0.0.1", 0)
    watchers = _Watchers(sink.server.port, pages) if pages else None
    config = PipelineConfig(max_frames=frames, smooth=True)
    try:
        # Every stream connected before the clock starts (a new process takes a while).
        deadline = time.monotonic() + 60.0
        while pages and sink.server.health()["clients"] < pages * len(PAGE_STREAMS):
            if time.monotonic() > deadline:
                raise RuntimeError("the watching clients did not connect")
            time.sleep(0.05)
        with Pipeline(open_source(source), estimator, [sink], config) as pipeline:
            for _ in pipeline:
                pass
    finally:
        if watchers is not None:
            watchers.stop()
        sink.close()
    published = sink.server._latest.seq
    return {
        "fps": pipeline.stats.fps,
        "frames": published,
        "server_cpu_ms_per_frame": 1e3 * sink.server.cpu_seconds / max(1, published),
        "jpegs_encoded": sink.server.jpegs_encoded,
    }


def measure_live_view(
    source: str, estimator: Any, frames: int, clients: int = 4, repeats: int = 2
) -> dict[str, Any]:
    """Pipeline FPS without and with ``clients`` watching pages, in alternating runs.

    Args:
        source: a video (any ``open_source`` spec that ends).
        estimator: the ``PoseEstimator`` to run (warmed up).
        frames: frames per run.
        clients: watching pages (two streams each).
        repeats: runs of each kind; the order alternates (none, watched, watched, none, ...)
            so that a machine getting slower or faster affects both alike.

    Returns:
        ``clients``, ``frames``, ``fps_alone`` / ``fps_watched`` (medians),
        ``ratio`` (watched / alone), ``server_cpu_ms_per_frame`` (median, watched) and
        ``server_cpu_ms_per_frame_alone``, ``jpegs_per_frame``, and every run.
    """
    runs: dict[str, list[dict[str, Any]]] = {"alone": [], "watched": []}
    for repeat in range(repeats):
        order = ("alone", "watched") if repeat % 2 == 0 else ("watched", "alone")
        for kind in order:
            runs[kind].append(_one_run(source, estimator, frames, clients if kind == "watched"
                                       else 0))  # fmt: skip
    alone = statistics.median(run["fps"] for run in runs["alone"])
    watched = statistics.median(run["fps"] for run in runs["watched"])
    return {
        "clients": clients,
        "frames": frames,
        "fps_alone": alone,
        "fps_watched": watched,
        "ratio": watched / alone,
        "server_cpu_ms_per_frame": statistics.median(
            run["server_cpu_ms_per_frame"] for run in runs["watched"]
        ),
        "server_cpu_ms_per_frame_alone": statistics.median(
            run["server_cpu_ms_per_frame"] for run in runs["alone"]
        ),
        "jpegs_per_frame": statistics.median(
            run["jpegs_encoded"] / max(1, run["frames"]) for run in runs["watched"]
        ),
        "runs": runs,
    }


def format_live_view(live: dict[str, Any]) -> list[str]:
    """The bench table's lines for ``measure_live_view``'s result."""
    return [
        "",
        f"live view (simplepose run --serve): {live['clients']} pages watching over loopback, "
        f"MJPEG + events each, {live['frames']} frames per run",
        f"  pipeline FPS: {live['fps_alone']:.2f} without a client, {live['fps_watched']:.2f} "
        f"watched: {live['ratio']:.3f}x (target >= 0.95)",
        f"  server CPU per frame: {live['server_cpu_ms_per_frame']:.2f} ms watched "
        f"({live['jpegs_per_frame']:.2f} JPEG encodings per frame for all clients), "
        f"{live['server_cpu_ms_per_frame_alone']:.3f} ms without a client (no encoding)",
    ]
