"""Ground-truth encoding speed: milliseconds per 512 x 512 training sample.

    python -m benchmarks.bench_targets [--repeats 200]

One sample is what the training data pipeline computes per crop: the loss (ignore) mask and
the person mask from the COCO segmentations (crowd included), both warped with the image's
affine map to 512 x 512, the ignore mask area-resized to the 128 x 128 grid, the 50-channel
targets (parts, keypoints, person mask, keypoint max) and the 5-scale average-pooled pyramid.
People are real annotated persons from ``shared/data/coco_people`` (images 217285 and 370162,
scaled by 0.8 so they fit in 512), 1, 5 and 15 of them, plus the crowd annotation of 217285.
Each stage and the whole sample are timed separately (median and p95 over ``--repeats``
runs, after warm-up). Results go to ``benchmarks/results/bench_targets.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import save_results, summarize, time_call  # noqa: E402
from simplepose.config import TargetConfig  # noqa: E402
from simplepose.training import targets  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
INPUT = (512, 512)
IMAGE_HW = (427, 640)  # image 217285; the polygons of 370162 (400 x 640) fit in it
SCALE = 0.8
PEOPLE = (1, 5, 15)


def shared_dir() -> Path:
    return Path(os.environ.get("SIMPLEPOSE_TEST_DATA", ROOT.parent / "shared")).resolve()


def load_people() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Keypointed, non-crowd annotations of the two busiest images, and the crowd annotation."""
    coco = json.loads((shared_dir() / "data/coco_people/person_keypoints.json").read_text())
    pool = [
        a
        for image_id in (217285, 370162)
        for a in coco["annotations"]
        if a["image_id"] == image_id and a["num_keypoints"] > 0 and not a["iscrowd"]
    ]
    crowd = next(a for a in coco["annotations"] if a["image_id"] == 217285 and a["iscrowd"])
    return pool, crowd


def make_sample(annotations: list[dict[str, Any]], config: TargetConfig):
    """A closure computing one full training sample's targets (what a data loader does)."""
    keypointed = [a for a in annotations if a["num_keypoints"] > 0]
    affine = np.array([[SCALE, 0.0, 0.0], [0.0, SCALE, 0.0]], np.float32)
    grid_hw = (INPUT[0] // config.stride, INPUT[1] // config.stride)
    keypoints = np.array([a["keypoints"] for a in keypointed], np.float32)

    def stage_masks() -> tuple[np.ndarray, np.ndarray]:
        ignore_full, person_full = targets.image_masks(annotations, IMAGE_HW)
        size = (INPUT[1], INPUT[0])
        ignore_warped = cv2.warpAffine(ignore_full, affine, size, borderValue=255)
        person_warped = cv2.warpAffine(person_full, affine, size, borderValue=0)
        return targets.mask_to_grid(ignore_warped, grid_hw), person_warped

    def stage_joints() -> np.ndarray:
        joints = targets.coco_to_joints18(keypoints)
        joints[..., :2] *= np.float32(SCALE)
        return joints

    def full() -> tuple[list[np.ndarray], np.ndarray]:
        ignore, person = stage_masks()
        heatmaps = targets.encode(stage_joints(), INPUT, config, person_mask=person)
        return targets.multiscale(heatmaps), ignore

    joints = stage_joints()
    _, person = stage_masks()
    heatmaps = targets.encode(joints, INPUT, config, person_mask=person)
    stages = {
        "masks (decode + warp + grid)": stage_masks,
        "joints (coco_to_joints18)": stage_joints,
        "encode (no person mask)": lambda: targets.encode(joints, INPUT, config),
        "encode (+ person mask)": lambda: targets.encode(joints, INPUT, config, person_mask=person),
        "pyramid (5 scales)": lambda: targets.multiscale(heatmaps),
        "full sample": full,
    }
    return stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed runs per measurement")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)  # a data-loader worker is single-threaded
    config = TargetConfig()
    pool, crowd = load_people()
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for count in PEOPLE:
        annotations = [*pool[:count], crowd]
        stages = make_sample(annotations, config)
        rows[str(count)] = {
            name: summarize(time_call(fn, args.repeats, warmup=5)) for name, fn in stages.items()
        }
    names = list(next(iter(rows.values())))
    width = max(len(n) for n in names)
    print(f"ms per {INPUT[0]} x {INPUT[1]} sample (median / p95), single thread")
    print(f"{'stage':<{width}}  " + "  ".join(f"{c + ' people':>15}" for c in rows))
    for name in names:
        cells = "  ".join(
            f"{rows[c][name]['median_ms']:6.2f} / {rows[c][name]['p95_ms']:5.2f}" for c in rows
        )
        print(f"{name:<{width}}  {cells}")
    path = save_results(
        "bench_targets",
        {
            "input_hw": INPUT,
            "image_hw": IMAGE_HW,
            "scale": SCALE,
            "repeats": args.repeats,
            "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
            "results_ms": rows,
        },
    )
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
