"""Progress of the slow one-time steps that report nothing themselves: the ONNX export of a
checkpoint (tens of seconds on a CPU) and the TensorRT engine build (minutes).

``StepProgress`` shows, on a terminal, one line that a background thread refreshes every
second with the current step and the time spent, so the terminal never looks frozen. It is
honest: a step name and elapsed seconds, never a made-up percentage or time left (the
exporter and TensorRT's builder give no fraction done; TensorRT's own phases are shown
when it reports them). Where stderr is not a terminal (logs, CI), it logs one line when
the work starts and one when it ends instead.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from types import TracebackType
from typing import TextIO

_logger = logging.getLogger(__name__)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class StepProgress:
    """A live "what is happening, for how long" line for work that reports no progress.

    Use as a context manager around the work; call ``step(name)`` when it moves on.

    Args:
        title: what the work is, e.g. ``"exporting model to ONNX (once; cached)"``.
        stream: where the live line goes (default ``sys.stderr``).
        live: refresh a line in place; default: when ``stream`` is a terminal.
        interval: seconds between refreshes.
        log_level: level of the start line logged instead of the live line (WARNING by
            default: the work is an unexpected wait when it happens on first use).
    """

    def __init__(
        self,
        title: str,
        *,
        stream: TextIO | None = None,
        live: bool | None = None,
        interval: float = 1.0,
        log_level: int = logging.WARNING,
    ) -> None:
        self.title = title
        self._stream = stream or sys.stderr
        self._live = _is_terminal(self._stream) if live is None else live
        self._interval = interval
        self._log_level = log_level
        self._step = "starting"
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = 0.0
        self._width = 0

    @property
    def elapsed(self) -> float:
        """Seconds since the work started."""
        return time.perf_counter() - self._start

    def step(self, name: str) -> None:
        """The work moved on to ``name`` (shown at the next refresh)."""
        with self._lock:
            self._step = name
        if not self._live:
            _logger.info("%s: %s", self.title, name)

    def _line(self) -> str:
        with self._lock:
            step = self._step
        # Time first: a narrow terminal cuts the line's end.
        return f"{self.title}: {self.elapsed:.0f} s, {step} ..."

    def _write(self, text: str, end: str = "") -> None:
        # Pad over the previous line's tail: "\r" alone leaves longer text behind.
        try:
            columns = os.get_terminal_size(self._stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns if columns > 0 else 120  # a pseudo-terminal may report 0
        text = text[: max(columns - 1, 20)]
        padding = " " * max(self._width - len(text), 0)
        self._width = len(text)
        try:
            self._stream.write("\r" + text + padding + end)
            self._stream.flush()
        except (OSError, ValueError):  # a closed stderr must not fail the work itself
            pass

    def _refresh(self) -> None:
        while not self._done.wait(self._interval):
            self._write(self._line())

    def __enter__(self) -> StepProgress:
        self._start = time.perf_counter()
        if self._live:
            self._write(self._line())
            self._thread = threading.Thread(target=self._refresh, name="progress-line", daemon=True)
            self._thread.start()
        else:
            _logger.log(self._log_level, "%s ...", self.title)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if exc_type is None:
            outcome = f"done in {self.elapsed:.0f} s"
        elif issubclass(exc_type, KeyboardInterrupt):
            outcome = f"interrupted after {self.elapsed:.0f} s; nothing was kept"
        else:
            outcome = f"failed after {self.elapsed:.0f} s"
        if self._live:
            self._write(f"{self.title}: {outcome}", end="\n")
        elif exc_type is None:
            _logger.info("%s: %s", self.title, outcome)
        else:
            _logger.warning("%s: %s", self.title, outcome)
