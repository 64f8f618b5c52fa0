"""Learning works end to end: `simplepose train` overfits 4 real images, `simplepose eval`
then finds the people on those images (AP >= 0.5).

No augmentation (whole images fitted into a 256 crop, long side), AdamW at 2e-3, 200
steps of the nano preset on CPU; evaluation sees the images exactly as training did
(``--resize-side long --input-size 256``, no flip test: the model never saw mirrored
images). Measured on 2 shared CPU cores: about 3 minutes, AP 0.93 (0.70 after 100 steps).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

#: Four images with one large, well-labelled person each (shared/data/README.md).
IMAGE_IDS = {785, 30752, 84533, 368212}


@pytest.mark.parametrize(
    "device",
    [pytest.param("cpu", marks=pytest.mark.slow), pytest.param("cuda", marks=pytest.mark.gpu)],
)
def test_overfit_a_few_images_reaches_ap_05(tmp_path, coco_people, device):
    """On the GPU the same run uses mixed precision (auto) and the torch backend's fp16 CUDA
    path for the evaluation: it must reach the same AP bar."""
    ann, images = coco_people
    data = json.loads(ann.read_text())
    data["images"] = [i for i in data["images"] if i["id"] in IMAGE_IDS]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in IMAGE_IDS]
    subset = tmp_path / "subset.json"
    subset.write_text(json.dumps(data))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "simplepose"]
    train = [
        "train", "--coco-ann", str(subset), "--images", str(images), "--preset", "nano",
        "--output", str(tmp_path / "run"), "--crop-size", "256", "--batch-size", "4",
        "--epochs", "200", "--no-augment", "--optimizer", "adamw", "--lr", "2e-3",
        "--weight-decay", "0", "--warmup-epochs", "5", "--lr-step-epochs", "0",
        "--workers", "0", "--checkpoint-every", "1000", "--threads", "1", "--device", device,
    ]  # fmt: skip
    done = subprocess.run(base + train, capture_output=True, text=True, timeout=1800, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    results = tmp_path / "results.json"
    evaluate = [
        "eval", "--weights", str(tmp_path / "run" / "last.pth"), "--coco-ann", str(subset),
        "--images", str(images), "--backend", "torch", "--device", device, "--no-flip",
        "--input-size", "256",
        "--resize-side", "long", "--threads", "1", "--no-progress", "--json", str(results),
    ]  # fmt: skip
    done = subprocess.run(base + evaluate, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    ap_line = next(
        line for line in done.stdout.splitlines() if "IoU=0.50:0.95 | area=   all" in line
    )
    ap = float(ap_line.rsplit("=", 1)[1])
    assert ap >= 0.5, done.stdout
    assert {r["image_id"] for r in json.loads(results.read_text())} == IMAGE_IDS
