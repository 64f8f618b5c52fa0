"""``simplepose image``: poses on image files -> overlays and a COCO results json.

Nothing is lost, whatever happens: outputs are checked before the model loads (never an
input, never twice, writable; see ``commands.paths``); every overlay keeps its input's
name and format, with names that several inputs share made unique; an input that cannot
be read is reported and skipped; and the results json is written for every image done,
also after a skipped input or Ctrl-C. Exit code 0: all done; 1: some inputs skipped.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from simplepose.commands.common import add_model_arguments, build_estimator, warn_if_capped
from simplepose.commands.paths import Output, check_outputs, file_inputs, weights_inputs
from simplepose.errors import InputError

_logger = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: Exit code when some inputs were skipped (unreadable, or matching no file).
EXIT_SOME_SKIPPED = 1


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "image",
        help="estimate poses on images: overlays and COCO results json",
        description=(
            "Estimate poses on image files, folders or globs. An input that cannot be read "
            "is reported and skipped (exit code 1); the others are processed."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("images", nargs="+", help="image files, folders or glob patterns")
    add_model_arguments(parser)
    out = parser.add_argument_group("outputs")
    out.add_argument(
        "--output-dir",
        default=None,
        help="write overlay images here (created if missing), named and encoded as their "
        "inputs; inputs with the same name get their folder's name in front (d1_x.jpg)",
    )
    out.add_argument("--json", default=None, help="write COCO keypoint results to this file")
    out.add_argument(
        "--coco-ann",
        default=None,
        help="COCO annotation file: image ids by file name (default: ids from numeric file names)",
    )
    parser.set_defaults(func=main)
    return parser


def expand_images(specs: list[str]) -> tuple[list[Path], list[str]]:
    """Files, folders (their images, sorted) and glob patterns -> image paths, in order.

    Returns:
        (image paths, the specs that matched nothing).
    """
    paths: list[Path] = []
    unmatched: list[str] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(spec) if Path(p).is_file())
        if not found:
            unmatched.append(spec)
        paths.extend(found)
    return paths, unmatched


def overlay_names(paths: list[Path]) -> list[str]:
    """A distinct file name per input for its overlay in one folder.

    An input's own name is kept (its extension too, so a PNG stays a lossless PNG). Names
    that several inputs share (``d1/x.jpg``, ``d2/x.jpg``; compared ignoring case, as some
    file systems do) get the input's folder name in front (``d1_x.jpg``, ``d2_x.jpg``), then
    a number when that is not enough (``x-2.jpg``).
    """
    counts = Counter(path.name.casefold() for path in paths)
    taken = {path.name.casefold() for path in paths if counts[path.name.casefold()] == 1}
    names = []
    for path in paths:
        if counts[path.name.casefold()] == 1:
            names.append(path.name)
            continue
        folder = path.resolve().parent.name
        base = f"{folder}_{path.name}" if folder else path.name
        name, number = base, 2
        while name.casefold() in taken:
            name = f"{Path(base).stem}-{number}{Path(base).suffix}"
            number += 1
        taken.add(name.casefold())
        names.append(name)
    return names


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


def _check_outputs(args: argparse.Namespace, paths: list[Path], names: list[str]) -> None:
    outputs = []
    if args.output_dir:
        folder = Path(args.output_dir)
        outputs.append(Output("--output-dir", folder, folder=True))
        outputs += [
            Output("--output-dir overlay", folder / name, in_new_folder=True) for name in names
        ]
    if args.json:
        outputs.append(Output("--json", Path(args.json)))
    inputs = [*paths, *file_inputs([args.coco_ann]), *weights_inputs(args.weights)]
    check_outputs(outputs, inputs)


def _skip(bar: Any, reason: str) -> None:
    bar.write(f"simplepose image: skipped: {reason}", file=sys.stderr)


def main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from simplepose._signals import deferred
    from simplepose.inference import read_image

    paths, unmatched = expand_images(args.images)
    if not paths:
        raise InputError(f"no images found for {unmatched[0]!r}")
    ids = image_ids(paths, args.coco_ann)
    names = overlay_names(paths)
    _check_outputs(args, paths, names)
    estimator = build_estimator(args)
    results: list[dict[str, object]] = []
    done = people = 0
    skipped = len(unmatched)
    bar = tqdm(total=len(paths), unit="img", disable=len(paths) < 2, file=sys.stderr)
    for spec in unmatched:
        _skip(bar, f"no such file, folder or matching image: {spec!r}")
    finished = capped = False
    try:
        for path, image_id, name in zip(paths, ids, names):
            try:
                image = read_image(str(path))
            except (InputError, OSError) as error:
                skipped += 1
                _skip(bar, str(error))
                bar.update(1)
                continue
            capped = capped or warn_if_capped(estimator.config, image.shape[:2], str(path))
            poses = estimator(image)
            with deferred():  # an image counts as done with its overlay and its results
                if args.output_dir:
                    _write_overlay(Path(args.output_dir) / name, image, poses)
                results.extend(poses.to_coco(image_id))
                people += len(poses)
                done += 1
            bar.update(1)
        finished = True
    finally:
        # Whatever ended the loop (Ctrl-C, SIGTERM, a failed write), keep what was done.
        bar.close()
        if args.json:
            with deferred():
                _write_json_atomically(Path(args.json), results)
            if not finished:
                print(  # noqa: T201
                    f"wrote {args.json}: results of {done} of {len(paths)} images",
                    file=sys.stderr,
                )
    extra = f"; {skipped} skipped" if skipped else ""
    print(f"{done} images, {people} people{extra}", file=sys.stderr)  # noqa: T201
    return EXIT_SOME_SKIPPED if skipped else 0


def _write_overlay(path: Path, image: Any, poses: Any) -> None:
    """The overlay, encoded as ``path``'s extension says, written whole or not at all."""
    import cv2

    from simplepose._files import atomic_write
    from simplepose.pipeline.render import draw_poses

    ok, encoded = cv2.imencode(path.suffix, draw_poses(image, poses))
    if not ok:
        raise OSError(f"could not encode the overlay as {path.suffix}: {path}")
    with atomic_write(path, "wb") as file:
        file.write(encoded.tobytes())


def _write_json_atomically(path: Path, payload: object) -> None:
    from simplepose._files import atomic_write

    with atomic_write(path) as file:
        json.dump(payload, file)
