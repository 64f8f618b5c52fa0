"""``simplepose convert SRC DST``: any accepted checkpoint -> the project's format."""

from __future__ import annotations

import argparse
import sys

from simplepose.config import ModelConfig


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "convert",
        help="convert a checkpoint (e.g. the authors' PoseNet_52_epoch.pth) to simplepose format",
        description=(
            "Load a checkpoint in any accepted format (the authors' {'weights': ...} with "
            "posenet./module. prefixes, a bare state_dict, or simplepose's own) and save it in "
            "simplepose's format: weights + resolved config + package version."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "src", help="checkpoint to read: a path, or a name (released; downloaded once)"
    )
    parser.add_argument("dst", help="file to write (.pth)")
    parser.add_argument(
        "--preset",
        choices=ModelConfig.presets(),
        default=None,
        help="architecture to assume (default: the file's config, else inferred from shapes)",
    )
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow arbitrary pickled objects in SRC (only for files you trust)",
    )
    parser.set_defaults(func=main)
    return parser


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from simplepose.commands.paths import Output, check_outputs, weights_inputs
    from simplepose.model import load_checkpoint, resolve_weights, save_checkpoint

    check_outputs([Output("DST", Path(args.dst))], weights_inputs(args.src))
    config = ModelConfig.preset(args.preset) if args.preset else None
    src = resolve_weights(args.src)
    model = load_checkpoint(src, config=config, trusted=args.trust_checkpoint)
    path = save_checkpoint(model, args.dst)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {path}: {model.config} ({params:,} parameters)", file=sys.stderr)  # noqa: T201
    return 0
