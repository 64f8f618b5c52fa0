"""Ctrl-C and SIGTERM: stop once, then let the outputs be finalised whatever comes next.

``StopSignals`` (installed by the ``simplepose`` command around a subcommand) turns the
first SIGINT into ``KeyboardInterrupt`` and the first SIGTERM (``timeout``, ``docker
stop``, systemd) into ``Terminated``, a ``KeyboardInterrupt`` too, so both take the same
path: every output is finalised, then the process exits with 130 or 143. Later signals do
not raise again: they would abort the finalisation half-way (a video without its index,
worker threads torn down inside native code); they only print that the outputs are being
finished. SIGQUIT (Ctrl-\\) still ends the process at once.

``deferred()`` marks a stretch of code that a first signal must not interrupt either
(closing the sinks at the normal end of a run): a signal arriving there is raised when the
stretch ends. Without an installed ``StopSignals`` (library use) it does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, TextIO

#: Exit code of a process stopped by SIGINT / SIGTERM (128 + the signal number).
EXIT_SIGINT = 128 + int(signal.SIGINT)
EXIT_SIGTERM = 128 + int(signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM was received; handled like Ctrl-C (outputs finalised), exit code 143."""


_active: StopSignals | None = None


def exit_code(error: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM."""
    return EXIT_SIGTERM if isinstance(error, Terminated) else EXIT_SIGINT


class StopSignals:
    """Context manager handling SIGINT and SIGTERM as described in the module docstring.

    Only the main thread can install signal handlers; elsewhere it does nothing.

    Args:
        stream: where the "finishing the outputs" notice goes.
        prog: prefix of that notice.
    """

    def __init__(self, stream: TextIO | None = None, prog: str = "simplepose") -> None:
        self._stream = stream
        self._prog = prog
        self._previous: dict[int, Any] = {}
        self._raised = False
        self._pending: int | None = None
        self._depth = 0
        self._outer: StopSignals | None = None
        self._done = False

    def __enter__(self) -> StopSignals:
        global _active
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        self._outer, _active = _active, self
        return self

    def ignore_from_now(self) -> None:
        """The work is done and the process ends next: ignore SIGINT and SIGTERM from now
        on (SIGQUIT and SIGKILL still end it), and keep it so after the ``with`` block.

        A late signal would otherwise turn a finished run into a killed one: the
        interpreter puts the default handlers back early in its shutdown, and a signal
        handled by default exits with 128 + its number. Ignored signals stay ignored."""
        self._done = True
        for signum in self._previous:
            signal.signal(signum, signal.SIG_IGN)

    def __exit__(self, *exc_info: object) -> None:
        global _active
        if self._done:
            return
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if _active is self:
            _active = self._outer

    @staticmethod
    def _exception(signum: int) -> KeyboardInterrupt:
        return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self._raised and self._depth == 0:
            self._raised = True
            raise self._exception(signum)
        if self._pending is None and not self._raised:
            self._pending = signum
        stream = self._stream or sys.stderr
        try:
            stream.write(
                f"\n{self._prog}: finishing the outputs, please wait (Ctrl-\\ quits at once)\n"
            )
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr must not stop the finish
            pass

    @contextlib.contextmanager
    def _deferred(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0 and self._pending is not None and not self._raised:
            signum, self._pending = self._pending, None
            self._raised = True
            raise self._exception(signum)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold back a first SIGINT / SIGTERM until the block ends (see the module docstring)."""
    active = _active
    if active is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    with active._deferred():
        yield
