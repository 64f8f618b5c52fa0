"""COCO keypoint evaluation of a ``PoseEstimator`` with pycocotools (spec section 7).

Every image of the annotation file (or the first ``max_images`` by sorted id, as the
authors' 500-image subset) is run through the estimator; images without people still count
(false positives on them lower AP). Results use the COCO image ids, category 1, and the top
20 people by score per image (COCOeval's ``maxDets`` for keypoints).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import cv2

from simplepose.errors import InputError
from simplepose.training.data import load_coco
from simplepose.types import Poses

_logger = logging.getLogger(__name__)

__all__ = ["STAT_NAMES", "EvalResult", "evaluate_coco", "poses_to_results", "score_results"]

#: The 10 numbers of ``COCOeval.summarize()`` for keypoints, in its order.
STAT_NAMES: tuple[str, ...] = (
    "AP",
    "AP50",
    "AP75",
    "APM",
    "APL",
    "AR",
    "AR50",
    "AR75",
    "ARM",
    "ARL",
)
#: COCOeval's keypoint ``maxDets``: only the 20 best people per image are scored.
MAX_DETECTIONS = 20


class EvalResult(NamedTuple):
    """Result of ``evaluate_coco``.

    Attributes:
        stats: the 10 COCO keypoint numbers by name (``STAT_NAMES``), in [0, 1] (-1 when
            COCOeval has nothing to score).
        results: the COCO results list (dicts with ``image_id``, ``category_id``,
            ``keypoints`` [x, y, v] * 17 in image pixels, ``score``).
        summary: COCOeval's printed AP/AR table.
        image_ids: the images evaluated.
        missing: image ids skipped because their file was missing or unreadable.
    """

    stats: dict[str, float]
    results: list[dict[str, Any]]
    summary: str
    image_ids: list[int]
    missing: list[int]


def poses_to_results(poses: Poses, image_id: int, max_people: int = MAX_DETECTIONS) -> list[dict]:
    """COCO result dicts for one image: the ``max_people`` best people by score
    (``Poses.to_coco``)."""
    return poses.to_coco(image_id, max_people=max_people)


def score_results(
    coco: Any, results: Sequence[dict[str, Any]], image_ids: Sequence[int]
) -> tuple[dict[str, float], str]:
    """Run ``COCOeval`` (keypoints) on ``results`` restricted to ``image_ids``.

    Returns:
        (the 10 stats by name, the printed summary table).
    """
    from pycocotools.cocoeval import COCOeval

    if not results:
        # loadRes cannot take an empty list; no detection means zero precision and recall.
        _logger.warning("no person detected in any of the %d images", len(image_ids))
        stats = dict.fromkeys(STAT_NAMES, 0.0)
        return stats, "no detections: every AP and AR is 0\n"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):  # pycocotools prints; keep it for the caller
        detections = coco.loadRes(list(results))
        evaluator = COCOeval(coco, detections, "keypoints")
        evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    table = "\n".join(
        line for line in buffer.getvalue().splitlines() if line.lstrip().startswith("Average")
    )
    return {name: float(v) for name, v in zip(STAT_NAMES, evaluator.stats)}, table + "\n"


def evaluate_coco(
    estimator: Any,
    ann_file: str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    max_images: int | None = None,
    *,
    image_ids: Sequence[int] | None = None,
    batch_size: int = 1,
    progress: bool = True,
) -> EvalResult:
    """Evaluate an estimator on COCO person keypoints.

    Args:
        estimator: callable ``estimator(image_bgr_uint8) -> Poses`` in image pixels (a
            ``simplepose.inference.PoseEstimator``); ``estimator.batch(images)`` is used when
            ``batch_size > 1``.
        ann_file: COCO keypoint annotation json (ground truth).
        image_dir: image folder.
        max_images: the first this many image ids (sorted); ``None`` = all.
        image_ids: evaluate these ids instead (``max_images`` still caps them).
        batch_size: images per estimator call.
        progress: tqdm progress bar.

    Returns:
        ``EvalResult``.

    Raises:
        InputError: missing or malformed annotation file or image folder, or no image left.
    """
    if max_images is not None and max_images < 1:
        raise ValueError(f"max_images must be None or >= 1, got {max_images}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    folder = Path(image_dir).expanduser()
    if not folder.is_dir():
        raise InputError(f"image folder {folder} does not exist")
    coco = load_coco(ann_file)
    ids = sorted(coco.getImgIds()) if image_ids is None else list(image_ids)
    if max_images is not None:
        ids = ids[:max_images]
    if not ids:
        raise InputError(f"{ann_file} lists no images")

    results: list[dict[str, Any]] = []
    done: list[int] = []
    missing: list[int] = []
    iterator: Any = range(0, len(ids), batch_size)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(ids), desc="eval", unit="img")
    for start in iterator:
        chunk_ids, images = [], []
        for image_id in ids[start : start + batch_size]:
            info = coco.imgs[image_id]
            image = cv2.imread(str(folder / info["file_name"]), cv2.IMREAD_COLOR)
            if image is None:
                missing.append(image_id)
                continue
            chunk_ids.append(image_id)
            images.append(image)
        if images:
            poses_list = estimator.batch(images) if batch_size > 1 else [estimator(images[0])]
            for image_id, poses in zip(chunk_ids, poses_list):
                results.extend(poses_to_results(poses, image_id))
            done.extend(chunk_ids)
        if bar is not None:
            bar.update(len(ids[start : start + batch_size]))
    if bar is not None:
        bar.close()
    if missing:
        _logger.warning(
            "%d of %d images are missing or unreadable in %s and were not evaluated (first: id %d)",
            len(missing),
            len(ids),
            folder,
            missing[0],
        )
    if not done:
        raise InputError(f"none of the {len(ids)} images could be read from {folder}")
    stats, summary = score_results(coco, results, done)
    return EvalResult(stats, results, summary, done, missing)
