"""The ``simplepose`` command: one console script with subcommands.

Each subcommand lives in ``simplepose/commands/<name>.py`` and exposes
``add_parser(subparsers)`` and ``main(args) -> int``. This module only wires them together,
turns user-caused errors into one clear line on stderr, and maps Ctrl-C to exit code 130
and SIGTERM to 143, after the command has finalised its outputs (see ``simplepose._signals``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import threading
from collections.abc import Sequence

from simplepose import __version__
from simplepose._signals import StopSignals, Terminated, exit_code
from simplepose.errors import UserError

#: Subcommand modules under ``simplepose.commands``, in the order ``--help`` lists them.
SUBCOMMANDS: tuple[str, ...] = (
    "run",
    "image",
    "export",
    "bench",
    "train",
    "eval",
    "convert",
    "weights",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="simplepose",
        description="Real-time multi-person 2D pose estimation (Simple Pose / IMHN).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"simplepose {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"simplepose.commands.{name}")
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    # Installed for the error lines too, so a second Ctrl-C cannot interrupt them.
    with StopSignals(prog=f"simplepose {args.command}") as signals:
        code = _run(args)
        if argv is None:  # the process ends next: a late signal must not change its exit code
            signals.ignore_from_now()
    if argv is None and _busy_threads():
        _exit_now(code)
    return code


def _busy_threads() -> list[str]:
    """Pipeline threads (named ``simplepose-*``) still running after the command ended."""
    return [t.name for t in threading.enumerate() if t.name.startswith("simplepose-")]


def _exit_now(code: int) -> None:
    """End the process without the interpreter's teardown.

    A worker thread still inside native code (a network call that outlived a stop) makes
    that teardown abort the process ("terminate called without an active exception", exit
    134) after the command succeeded or finalised its outputs. Every output is closed by
    now, so only the standard streams and log handlers need flushing.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except (UserError, OSError) as error:
        # Errors the user can cause (bad paths, bad files): one line, no traceback.
        print(f"simplepose {args.command}: error: {error}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt as error:
        what = "terminated" if isinstance(error, Terminated) else "interrupted"
        print(f"simplepose {args.command}: {what}", file=sys.stderr)  # noqa: T201
        return exit_code(error)


if __name__ == "__main__":
    sys.exit(main())
