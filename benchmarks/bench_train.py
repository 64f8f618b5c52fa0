"""Training throughput on CPU: the data pipeline alone and the training step.

    python -m benchmarks.bench_train [--crop-size 256] [--batches 12] [--preset nano]

1. Data pipeline (image decode, the augmentation's affine warp + colour jitter, masks and
   targets, collation) over ``shared/data/coco_people`` with the released augmentation:
   samples per second through a ``DataLoader`` with 0 and 2 worker processes (batch 4,
   ``--batches`` batches after one warm-up batch; worker start-up is excluded).
2. Training step (forward of all stacks and scales, focal L2 loss, backward, SGD step) of
   ``--preset`` at ``--crop-size`` on CPU with batch 4: median and p95 milliseconds, with
   1 and 2 torch threads (on shared cores 1 thread can be faster: OpenMP busy-waits).

Results go to ``benchmarks/results/bench_train.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import save_results, summarize, time_call  # noqa: E402
from simplepose.config import LossConfig, ModelConfig, TrainConfig  # noqa: E402
from simplepose.model import build_model  # noqa: E402
from simplepose.training.data import CocoPoseDataset  # noqa: E402
from simplepose.training.loop import build_optimizer  # noqa: E402
from simplepose.training.losses import focal_l2_loss  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BATCH = 4


def _data_dir() -> Path:
    shared = Path(os.environ.get("SIMPLEPOSE_TEST_DATA", ROOT.parent / "shared"))
    return shared / "data" / "coco_people"


def bench_data(dataset: CocoPoseDataset, workers: int, batches: int) -> dict[str, float]:
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=False, num_workers=workers)
    iterator = iter(loader)
    next(iterator)  # warm-up: worker start-up and first decode are not timed
    start = time.perf_counter()
    count = 0
    for _ in range(batches):
        try:
            batch = next(iterator)
        except StopIteration:
            break
        count += len(batch["index"])
    elapsed = time.perf_counter() - start
    return {"samples": count, "seconds": elapsed, "samples_per_s": count / elapsed}


def bench_step(
    preset: str, crop: int, threads: int, repeats: int, dataset: CocoPoseDataset
) -> dict[str, float]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(preset).train()
    optimizer = build_optimizer(model, TrainConfig(crop_size=crop))
    batch = next(iter(DataLoader(dataset, batch_size=BATCH)))
    images = batch["image"].float() / 255
    loss_config = LossConfig()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        result = focal_l2_loss(model(images), batch["targets"], batch["mask"], loss_config)
        result.loss.backward()
        optimizer.step()

    stats = summarize(time_call(step, repeats=repeats, warmup=2))
    stats["samples_per_s"] = 1e3 * BATCH / stats["median_ms"]
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=12, help="timed batches per loader")
    parser.add_argument("--preset", choices=ModelConfig.presets(), default="nano")
    parser.add_argument("--repeats", type=int, default=5, help="timed training steps")
    args = parser.parse_args()
    folder = _data_dir()
    if not folder.is_dir():
        print(f"shared data not found at {folder} (set SIMPLEPOSE_TEST_DATA)", file=sys.stderr)
        return 2
    dataset = CocoPoseDataset(
        folder / "person_keypoints.json", folder / "images", crop_size=args.crop_size, seed=0
    )
    data = {}
    for workers in (0, 2):
        data[f"workers_{workers}"] = bench_data(dataset, workers, args.batches)
        print(
            f"data pipeline, {workers} workers: "
            f"{data[f'workers_{workers}']['samples_per_s']:.1f} samples/s "
            f"(crop {args.crop_size}, batch {BATCH})"
        )
    ratio = data["workers_2"]["samples_per_s"] / data["workers_0"]["samples_per_s"]
    print(f"  2 workers / 0 workers: {ratio:.2f}x")
    steps = {}
    for threads in (1, 2):
        steps[f"threads_{threads}"] = bench_step(
            args.preset, args.crop_size, threads, args.repeats, dataset
        )
        s = steps[f"threads_{threads}"]
        print(
            f"train step {args.preset} @ {args.crop_size}, batch {BATCH}, {threads} thread(s): "
            f"median {s['median_ms']:.0f} ms, p95 {s['p95_ms']:.0f} ms "
            f"({s['samples_per_s']:.1f} samples/s)"
        )
    path = save_results(
        "bench_train",
        {
            "config": {
                "crop_size": args.crop_size,
                "batch": BATCH,
                "preset": args.preset,
                "batches": args.batches,
                "repeats": args.repeats,
                "samples": len(dataset),
            },
            "data": data,
            "data_ratio_2_vs_0_workers": ratio,
            "train_step": steps,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
