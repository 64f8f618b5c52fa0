"""``simplepose image``: poses on image files -> overlays and a COCO results json."""

from __future__ import annotations

import argparse
import glob
import json
import logging
import sys
from pathlib import Path

from simplepose.commands.common import add_model_arguments, build_estimator
from simplepose.errors import InputError

_logger = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "image",
        help="estimate poses on images: overlays and COCO results json",
        description="Estimate poses on image files, folders or globs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("images", nargs="+", help="image files, folders or glob patterns")
    add_model_arguments(parser)
    out = parser.add_argument_group("outputs")
    out.add_argument("--output-dir", default=None, help="write overlay images here")
    out.add_argument("--json", default=None, help="write COCO keypoint results here")
    out.add_argument(
        "--coco-ann",
        default=None,
        help="COCO annotation file: image ids by file name (default: ids from numeric file names)",
    )
    parser.set_defaults(func=main)
    return parser


def expand_images(specs: list[str]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns -> image paths, in order.

    Raises:
        FileNotFoundError: a spec matches nothing.
    """
    paths: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(spec) if Path(p).is_file())
        if not found:
            raise FileNotFoundError(f"no images found for {spec!r}")
        paths.extend(found)
    return paths


def image_ids(paths: list[Path], coco_ann: str | None) -> list[int]:
    """COCO image id of each path: by file name from the annotation file when given, else
    from the file name (see ``coco_image_ids``)."""
    from simplepose.pipeline.sinks import coco_image_ids

    if not coco_ann:
        return coco_image_ids(paths)
    with open(coco_ann) as file:
        by_name = {image["file_name"]: int(image["id"]) for image in json.load(file)["images"]}
    missing = [path.name for path in paths if path.name not in by_name]
    if missing:
        raise InputError(f"{missing[0]} is not in {coco_ann} ({len(missing)} images missing)")
    return [by_name[path.name] for path in paths]


def main(args: argparse.Namespace) -> int:
    import cv2
    from tqdm import tqdm

    from simplepose.inference import read_image
    from simplepose.pipeline.render import draw_poses

    paths = expand_images(args.images)
    ids = image_ids(paths, args.coco_ann)
    output_dir = Path(args.output_dir) if args.output_dir else None
    if output_dir:
        output_dir.mkdir(parents=True, exist_ok=True)
    estimator = build_estimator(args)
    results: list[dict[str, object]] = []
    people = 0
    for path, image_id in zip(tqdm(paths, unit="img", disable=len(paths) < 2), ids):
        image = read_image(str(path))
        poses = estimator(image)
        people += len(poses)
        results.extend(poses.to_coco(image_id))
        if output_dir:
            target = output_dir / f"{path.stem}.jpg"
            if not cv2.imwrite(str(target), draw_poses(image, poses)):
                raise OSError(f"could not write {target}")
    if args.json:
        _write_json_atomically(Path(args.json), results)
    print(f"{len(paths)} images, {people} people", file=sys.stderr)  # noqa: T201
    return 0


def _write_json_atomically(path: Path, payload: object) -> None:
    from simplepose._files import atomic_write

    with atomic_write(path) as file:
        json.dump(payload, file)
