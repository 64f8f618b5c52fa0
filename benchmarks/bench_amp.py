"""fp16 mixed precision: how many first steps the gradient scaler skips, by initial scale.

    python -m benchmarks.bench_amp [--steps 12] [--device cpu|cuda]

Trains the ``nano`` preset on two real COCO images (``shared/data/coco_people``, one batch of
2 seen every step, no augmentation) with fp16 autocast and a GradScaler, once starting at
PyTorch's default scale (2**16) and once at ``simplepose.training.loop.INITIAL_LOSS_SCALE``;
prints the losses, the scaler's skipped steps and its final scale. fp16 autocast also runs
on the CPU, so the overflow shows without a GPU. Saves ``benchmarks/results/amp.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import save_results  # noqa: E402
from simplepose.config import AugmentConfig, ModelConfig, TrainConfig  # noqa: E402
from simplepose.training import loop  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
IMAGES = (785, 30752)  # one main person each (shared/data/README.md)


def run(scale: float, steps: int, device: str, data: Path) -> dict[str, object]:
    config = TrainConfig(
        epochs=100, batch_size=2, lr=1e-3, optimizer="adamw", weight_decay=0.0,
        warmup_epochs=0.0, lr_step_epochs=0, crop_size=128, workers=0, log_every=1, seed=1,
        max_steps=steps, amp="fp16",
    )  # fmt: skip
    default = loop.INITIAL_LOSS_SCALE
    loop.INITIAL_LOSS_SCALE = scale
    try:
        with tempfile.TemporaryDirectory() as output:
            result = loop.train(
                config, data / "person_keypoints.json", data / "images", output,
                model_config=ModelConfig.preset("nano"), augment=AugmentConfig.off(),
                image_ids=IMAGES, device=device,
            )  # fmt: skip
    finally:
        loop.INITIAL_LOSS_SCALE = default
    losses = [round(r["loss"], 4) for r in result.history]
    return {"initial_scale": scale, "losses": losses, "scaler_skips": result.scaler_skips}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    shared = Path(os.environ.get("SIMPLEPOSE_TEST_DATA", ROOT.parent / "shared"))
    data = shared / "data" / "coco_people"
    if not data.is_dir():
        print(f"shared data not found at {data} (set SIMPLEPOSE_TEST_DATA)", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    rows = [
        run(scale, args.steps, args.device, data) for scale in (2.0**16, loop.INITIAL_LOSS_SCALE)
    ]
    for row in rows:
        print(f"initial scale {row['initial_scale']:>8.0f}: {row['scaler_skips']:>2} of "
              f"{args.steps} steps skipped; losses {row['losses']}")  # fmt: skip
    path = save_results("amp", {"device": args.device, "steps": args.steps, "runs": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
