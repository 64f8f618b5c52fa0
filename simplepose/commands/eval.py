"""``simplepose eval``: COCO keypoint AP/AR of weights on an annotated image folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from simplepose.commands.common import add_model_arguments, build_estimator


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "eval",
        help="COCO keypoint evaluation (AP/AR table, results json)",
        description=(
            "Run the estimator on every image of a COCO person-keypoint annotation file "
            "(images without people included) and score it with pycocotools COCOeval."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_model_arguments(parser)
    data = parser.add_argument_group("data")
    data.add_argument("--coco-ann", required=True, help="COCO person-keypoint annotation json")
    data.add_argument("--images", required=True, help="image folder of --coco-ann")
    parser.add_argument("--max-images", type=int, help="first N images by id (authors: 500)")
    parser.add_argument("--batch-size", type=int, default=1, help="images per network call")
    parser.add_argument("--json", help="write the COCO results list here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=main)
    return parser


def main(args: argparse.Namespace) -> int:
    from simplepose._files import atomic_write
    from simplepose.commands.paths import Output, check_outputs, file_inputs, weights_inputs
    from simplepose.errors import InputError
    from simplepose.training.evaluate import evaluate_coco

    # Check the cheap things before building the estimator (which may export ONNX).
    for path, what in ((args.coco_ann, "annotation file"), (args.images, "image folder")):
        if not Path(path).exists():
            raise InputError(f"{what} {path} does not exist")
    if args.json:
        inputs = file_inputs([args.coco_ann, args.images]) + weights_inputs(args.weights)
        check_outputs([Output("--json", Path(args.json))], inputs)
    estimator = build_estimator(args)
    result = evaluate_coco(
        estimator,
        args.coco_ann,
        args.images,
        max_images=args.max_images,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    if args.json:
        with atomic_write(args.json) as file:
            json.dump(result.results, file)
    print(result.summary, end="")  # noqa: T201 - the command's output
    extra = f", {len(result.missing)} missing" if result.missing else ""
    print(  # noqa: T201
        f"{len(result.image_ids)} images{extra}, {len(result.results)} people; "
        f"AP {result.stats['AP']:.3f}",
        file=sys.stderr,
    )
    return 0
