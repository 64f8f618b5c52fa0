"""What watching costs: one pipeline run with the browser live view, clients on and off.

``measure_live_view`` runs the threaded pipeline once with a ``ServeSink`` and alternates,
every ``phase_frames`` frames, between no client and ``clients`` pages watching (each page:
one ``/video.mjpg`` and one ``/events`` stream, drained by another process over loopback, as
a browser would). Every interval between two finished frames is attributed to the phase it
fell in (intervals while clients connect or leave are left out), so both figures come from
the same run, interleaved: on a shared machine whose load drifts, that compares like with
like far better than two separate runs. It reports the pipeline FPS of both phases, their
ratio, and the server's own CPU time per frame (publishing, one JPEG encoding per frame,
building the events, sending; summed over its threads).
"""

from __future__ import annotations

import itertools
import multiprocessing
import socket
import statistics
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from simplepose.config import PipelineConfig

#: Streams per watching page: the MJPEG video and the events.
PAGE_STREAMS = ("/video.mjpg", "/events")


def _read_stream(port: int, path: str, stop: threading.Event) -> None:
    """Drain one stream until ``stop`` is set or the server closes it."""
    buffer = bytearray(1 << 18)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10.0) as connection:
            connection.settimeout(0.2)  # wake up to check ``stop``
            connection.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            while not stop.is_set():
                try:
                    if not connection.recv_into(buffer):
                        return
                except TimeoutError:
                    continue
    except OSError:
        return  # the server closed at the end of the run


def _watch(port: int, pages: int, commands: Any) -> None:
    """The watcher process: ``"on"`` opens every page's streams, ``"off"`` closes them."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    started = time.process_time()  # Python's start-up is not a cost of watching
    commands.send("ready")
    while True:
        command = commands.recv()
        stop.set()
        for thread in threads:
            thread.join()
        if command != "on":
            if command == "quit":
                commands.send(time.process_time() - started)  # CPU seconds, all threads
                return
            continue
        stop = threading.Event()
        threads = [
            threading.Thread(target=_read_stream, args=(port, path, stop), daemon=True)
            for _ in range(pages)
            for path in PAGE_STREAMS
        ]
        for thread in threads:
            thread.start()


class _Watchers:
    """``pages`` browser-like clients in their own process (they compete for the CPU, as
    browsers on the same machine would, but not for this process's GIL)."""

    def __init__(self, port: int, pages: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._commands, child = context.Pipe()
        self._process = context.Process(target=_watch, args=(port, pages, child), daemon=True)
        self._process.start()
        # Starting Python takes a while (and CPU): not inside the measurement.
        if not self._commands.poll(60.0) or self._commands.recv() != "ready":
            raise RuntimeError("the watcher process did not start")

    def send(self, command: str) -> None:
        self._commands.send(command)

    def close(self) -> float:
        """Stop the process; returns the CPU seconds it used."""
        self._commands.send("quit")
        if not self._commands.poll(30.0):
            raise RuntimeError("the watcher process did not report its CPU time")
        cpu = float(self._commands.recv())
        self._process.join(timeout=10.0)
        if self._process.is_alive():
            self._process.kill()
        return cpu


def measure_live_view(
    images: Sequence[npt.NDArray[np.uint8]],
    estimator: Any,
    clients: int = 4,
    phase_frames: int = 8,
    rounds: int = 6,
) -> dict[str, Any]:
    """Pipeline FPS without and with ``clients`` watching pages, in one run.

    Args:
        images: BGR frames, looped as a file source (never dropped).
        estimator: the ``PoseEstimator`` to run (warmed up).
        clients: watching pages (two streams each).
        phase_frames: frames per phase; phases alternate (none, watched, none, ...).
        rounds: pairs of phases.

    Returns:
        ``clients``, ``frames``, ``phase_frames``, ``fps_alone`` / ``fps_watched``
        (frames per second over the intervals of each kind of phase), ``ratio`` (median
        over the rounds of watched / no-client FPS), ``ratio_of_totals``, ``fps_per_phase``,
        ``server_cpu_ms_per_frame`` (watched) and ``server_cpu_ms_per_frame_alone``,
        ``jpegs_per_frame`` (watched) and ``intervals`` (how many of each were used).
    """
    from simplepose.pipeline import IterableSource, Pipeline
    from simplepose.pipeline.live import ServeSink

    total = 2 * rounds * phase_frames
    sink = ServeSink("127.0.0.1", 0)
    server = sink.server
    watchers = _Watchers(server.port, clients)
    # Intervals between finished frames, the server's CPU and JPEGs, per phase.
    seconds: dict[str, list[float]] = {"alone": [], "watched": []}
    cpu: dict[str, list[float]] = {"alone": [], "watched": []}
    process_cpu: dict[str, list[float]] = {"alone": [], "watched": []}  # this whole process
    jpegs: dict[str, int] = {"alone": 0, "watched": 0}
    phases: list[list[float]] = [[]]  # intervals of each phase, for the spread
    looped = IterableSource(itertools.islice(itertools.cycle(images), total))
    try:
        with Pipeline(looped, estimator, [sink], PipelineConfig(smooth=True)) as pipeline:
            last: tuple[float, str, float, int, float] | None = None
            for count, _ in enumerate(pipeline, 1):
                streams = server.health()["clients"]
                state = {0: "alone", clients * len(PAGE_STREAMS): "watched"}.get(streams, "")
                now = (time.perf_counter(), state, server.cpu_seconds, server.jpegs_encoded,
                       time.process_time())  # fmt: skip
                if last is not None and state and last[1] == state:
                    seconds[state].append(now[0] - last[0])
                    cpu[state].append(now[2] - last[2])
                    jpegs[state] += now[3] - last[3]
                    process_cpu[state].append(now[4] - last[4])
                    phases[-1].append(now[0] - last[0])
                last = now
                if count % phase_frames == 0:
                    phases.append([])
                    watchers.send("on" if (count // phase_frames) % 2 else "off")
    finally:
        clients_cpu = watchers.close()
        sink.close()
    if not seconds["alone"] or not seconds["watched"]:
        raise RuntimeError("the live-view measurement saw no steady phase; use more frames")
    fps = {state: len(values) / sum(values) for state, values in seconds.items()}
    clients_cpu_ms = 1e3 * clients_cpu / len(seconds["watched"])
    cpu_ms = {state: 1e3 * statistics.fmean(values) for state, values in process_cpu.items()}
    # A phase can have no steady interval when each of its frames saw clients come or go.
    per_phase = [len(p) / sum(p) if p else None for p in phases[: 2 * rounds]]
    # Each watched phase against the no-client phase just before it; the median of these
    # pairs shrugs off a burst of other load better than the totals do.
    pairs = [w / a for a, w in zip(per_phase[0::2], per_phase[1::2]) if a and w]
    return {
        "clients": clients,
        "frames": total,
        "phase_frames": phase_frames,
        "fps_alone": fps["alone"],
        "fps_watched": fps["watched"],
        "ratio": statistics.median(pairs) if pairs else fps["watched"] / fps["alone"],
        "ratio_of_totals": fps["watched"] / fps["alone"],
        "server_cpu_ms_per_frame": 1e3 * statistics.fmean(cpu["watched"]),
        "server_cpu_ms_per_frame_alone": 1e3 * statistics.fmean(cpu["alone"]),
        # Per watched interval; an encoding can land in the interval after its frame's.
        "jpegs_per_frame": jpegs["watched"] / len(seconds["watched"]),
        # The watching clients' own CPU (this machine's, here; a browser's elsewhere), per
        # frame shown to them.
        "clients_cpu_ms_per_frame": clients_cpu_ms,
        # CPU time per frame of this whole process (pipeline and server), per phase; where
        # the CPU is the limit, FPS scales with its inverse, whatever else the machine runs.
        "process_cpu_ms_per_frame": cpu_ms,
        "ratio_cpu_bound": cpu_ms["alone"] / (cpu_ms["watched"] + clients_cpu_ms),
        "jpegs_encoded": server.jpegs_encoded,  # whole run: at most one per frame
        "frames_published": server._latest.seq,
        "intervals": {state: len(values) for state, values in seconds.items()},
        "fps_per_phase": [None if value is None else round(value, 3) for value in per_phase],
    }


def format_live_view(live: dict[str, Any]) -> list[str]:
    """The bench table's lines for ``measure_live_view``'s result."""
    return [
        "",
        f"live view (simplepose run --serve): one run of {live['frames']} frames, "
        f"{live['phase_frames']}-frame phases alternating between no client and "
        f"{live['clients']} pages watching (MJPEG + events each, another process, loopback)",
        f"  pipeline FPS: {live['fps_alone']:.2f} without a client, {live['fps_watched']:.2f} "
        f"watched: {live['ratio']:.3f}x, median of {len(live['fps_per_phase']) // 2} rounds "
        "(target >= 0.95)",
        f"  CPU per frame: {live['process_cpu_ms_per_frame']['alone']:.1f} ms without a client, "
        f"{live['process_cpu_ms_per_frame']['watched']:.1f} ms watched + "
        f"{live['clients_cpu_ms_per_frame']:.2f} ms in the clients: "
        f"{live['ratio_cpu_bound']:.3f}x where the CPU is the limit",
        f"  server CPU per frame: {live['server_cpu_ms_per_frame']:.2f} ms watched "
        f"({live['jpegs_per_frame']:.2f} JPEG encodings per frame for all clients), "
        f"{live['server_cpu_ms_per_frame_alone']:.3f} ms without a client (no encoding)",
    ]
