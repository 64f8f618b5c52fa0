"""Two processes (torchrun, gloo on CPU) take the same step as one process with their batch.

SyncBatchNorm has no CPU implementation in PyTorch (it raises for CPU tensors), so the
comparison freezes BatchNorm (``--freeze-bn``: running statistics fixed, affine parameters
trained). Then each process's loss only depends on its own samples, DDP averages the
per-process gradients (each loss divided by the per-process batch), and the update equals
the single-process update over the global batch up to float summation order.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from simplepose.model import build_model

COMMON = [
    "--preset", "nano", "--crop-size", "64", "--max-steps", "2", "--optimizer", "sgd",
    "--warmup-epochs", "0", "--workers", "0", "--freeze-bn", "--device", "cpu", "--seed", "3",
    "--log-every", "1",
]  # fmt: skip


def _run(cmd: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_processes_equal_one_process_with_the_global_batch(tmp_path, coco_people):
    ann, images = coco_people
    data = ["--coco-ann", str(ann), "--images", str(images)]
    # 2 processes x batch 2 at lr 0.05 per process, scaled by the world size -> 0.1
    _run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
        + ["-m", "simplepose", "train", *data, *COMMON]
        + ["--batch-size", "2", "--lr", "0.05", "--output", str(tmp_path / "ddp")]
    )
    # 1 process x batch 4 at lr 0.1
    _run(
        [sys.executable, "-m", "simplepose", "train", *data, *COMMON]
        + ["--batch-size", "4", "--lr", "0.1", "--output", str(tmp_path / "single")]
    )
    ddp = torch.load(tmp_path / "ddp" / "last.pth", weights_only=True)
    single = torch.load(tmp_path / "single" / "last.pth", weights_only=True)
    assert ddp["world_size"] == 2 and single["world_size"] == 1
    assert ddp["step"] == single["step"] == 2
    assert ddp["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.1)
    torch.manual_seed(3)  # the initial weights of both runs (same seed)
    initial = build_model("nano").state_dict()
    moved = 0
    for key, value in single["state_dict"].items():
        torch.testing.assert_close(ddp["state_dict"][key], value, rtol=1e-4, atol=1e-6)
        moved += int((value - initial[key]).abs().max() > 1e-4)
    assert moved > 50  # the step really moved the weights (beyond the tolerance)
    # rank 0 alone wrote the log: one line per step
    assert len((tmp_path / "ddp" / "log.jsonl").read_text().splitlines()) == 2
