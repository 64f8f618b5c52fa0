"""The ``simplepose`` command: one console script with subcommands.

Each subcommand lives in ``simplepose/commands/<name>.py`` and exposes
``add_parser(subparsers)`` and ``main(args) -> int``. This module only wires them together,
turns user-caused errors into one clear line on stderr, and maps Ctrl-C to exit code 130.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from simplepose import __version__
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
    try:
        return int(args.func(args))
    except (UserError, OSError) as error:
        # Errors the user can cause (bad paths, bad files): one line, no traceback.
        print(f"simplepose {args.command}: error: {error}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        print(f"simplepose {args.command}: interrupted", file=sys.stderr)  # noqa: T201
        return 130


if __name__ == "__main__":
    sys.exit(main())
