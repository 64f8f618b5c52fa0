"""``simplepose weights list|fetch``: the named weights and their cache.

``list`` shows every name with its cache file, whether it is there and its size (no
network, no hashing). ``fetch NAME`` downloads and verifies the file if it is missing (or
with ``--force``), otherwise checks the cached file against its SHA-256 record, and prints
its path on stdout.
"""

from __future__ import annotations

import argparse
import os


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``weights`` (with ``list`` and ``fetch``) on the top-level subparsers."""
    parser = subparsers.add_parser(
        "weights",
        help="list or download the named weights (released)",
        description=(
            "Named weights are downloaded once into the weights folder ($SIMPLEPOSE_WEIGHTS, "
            "else $XDG_CACHE_HOME/simplepose, else ~/.cache/simplepose), verified, and "
            "checked against their recorded SHA-256 on every later use."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        help="names, cache folder, whether each file is present, sizes",
        description="List the named weights and the state of the cache (no network).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    listing.set_defaults(func=list_main)
    fetch = actions.add_parser(
        "fetch",
        help="download NAME into the cache (or check the cached file)",
        description=(
            "Download the weights called NAME into the weights folder unless they are there "
            "already, verify them, and print the file's path."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    fetch.add_argument("name", metavar="NAME", help="weights name (see 'simplepose weights list')")
    fetch.add_argument(
        "--force", action="store_true", help="download again even if the file is cached"
    )
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")
    fetch.set_defaults(func=fetch_main)
    return parser


def _megabytes(num_bytes: int) -> str:
    return f"{num_bytes / 1e6:,.0f}"


def list_main(args: argparse.Namespace) -> int:
    """Print the table of named weights; returns the exit code."""
    from simplepose.model.hub import WEIGHTS_ENV, list_weights, weights_dir

    env = os.environ.get(WEIGHTS_ENV)
    lines = [f"weights folder: {weights_dir()}" + (f" (${WEIGHTS_ENV})" if env else "")]
    if env and os.path.isfile(env):
        lines.append(f"default weights: {env} (${WEIGHTS_ENV} names a file)")
    rows = [("NAME", "PRESENT", "SIZE", "FILE", "DESCRIPTION")]
    for state in list_weights():
        if state.present:
            present = "yes" if state.recorded_sha256 else "yes (not yet verified)"
            size = f"{_megabytes(state.size or 0)} MB"
        else:
            low, high = state.entry.size_range
            present, size = "no", f"{_megabytes(low)}-{_megabytes(high)} MB"
        rows.append((state.entry.name, present, size, state.path.name, state.entry.description))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    print("\n".join(lines))  # noqa: T201 - the command's output
    return 0


def fetch_main(args: argparse.Namespace) -> int:
    """Fetch (or check) the named weights and print their path; returns the exit code."""
    from simplepose.model.hub import fetch_weights

    path = fetch_weights(args.name, force=args.force, progress=not args.no_progress)
    print(path)  # noqa: T201 - the command's output, usable as $(simplepose weights fetch ...)
    return 0
