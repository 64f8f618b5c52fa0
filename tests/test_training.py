"""The training loop: it learns, checkpoints, resumes exactly, skips bad batches.

Tests that compare with weights built on the CPU pin ``device="cpu"`` on purpose (a CUDA
machine would otherwise train on the GPU); the ``gpu`` tests do the same on CUDA.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from simplepose.config import AugmentConfig, LossConfig, ModelConfig, TrainConfig
from simplepose.errors import CheckpointError, InputError
from simplepose.model import build_model, load_checkpoint
from simplepose.training.loop import LAST_CHECKPOINT, LOG_FILE, LrSchedule, train

NANO = ModelConfig.preset("nano")
#: Images with 1-2 people (ids from shared/data/README.md): 1 main person each.
FEW_IMAGES = (785, 30752, 84533, 368212)


def _cfg(**overrides) -> TrainConfig:
    base = dict(
        epochs=50,
        batch_size=2,
        lr=1e-3,
        optimizer="adamw",
        weight_decay=0.0,
        warmup_epochs=0.0,
        lr_step_epochs=0,
        crop_size=64,
        workers=0,
        log_every=1,
        seed=1,
    )
    base.update(overrides)
    return TrainConfig(**base)


@pytest.fixture(autouse=True)
def _one_thread():
    # Two OpenMP threads on two shared cores can be 100x slower than one (busy-waiting).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_lr_schedule_warmup_and_step_decay():
    schedule = LrSchedule(steps_per_epoch=10, warmup_epochs=2, step_epochs=15, gamma=0.2)
    assert schedule(0) == pytest.approx(1 / 21)
    assert schedule(19) == pytest.approx(20 / 21)
    assert schedule(20) == 1.0
    assert schedule(149) == 1.0
    assert schedule(150) == pytest.approx(0.2)
    assert schedule(300) == pytest.approx(0.04)


def test_a_few_steps_on_real_images_lower_the_loss(tmp_path, coco_people):
    ann, images = coco_people
    result = train(
        _cfg(max_steps=5, crop_size=128),
        ann,
        images,
        tmp_path,
        model_config=NANO,
        augment=AugmentConfig.off(),
        image_ids=FEW_IMAGES[:2],  # one batch of 2, seen every step
        device="cpu",
    )
    losses = [r["loss"] for r in result.history]
    assert len(losses) == 5 and result.step == 5 and result.skipped == 0
    assert losses[-1] < 0.8 * losses[0], losses
    # the log and the checkpoint
    lines = (tmp_path / LOG_FILE).read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4, 5]
    state = torch.load(tmp_path / LAST_CHECKPOINT, weights_only=True)
    assert state["step"] == 5 and state["format"] == "simplepose"
    assert {"optimizer", "scheduler", "scaler", "train_config", "rng"} <= set(state)
    # a training checkpoint is also an inference checkpoint
    model = load_checkpoint(tmp_path / LAST_CHECKPOINT)
    for key, value in model.state_dict().items():
        assert torch.equal(value, result.model.state_dict()[key])


@pytest.mark.parametrize(
    "device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)], ids=["cpu", "cuda"]
)
def test_fp16_loss_scaling_learns_from_the_first_step(tmp_path, coco_people, device):
    """fp16 autocast with a GradScaler: at torch's default first scale (2**16) this loss
    overflowed for 6 steps (nothing learned in 5: the flat loss seen on CUDA); now no step
    is skipped and the loss falls at once. fp16 autocast also runs on the CPU."""
    ann, images = coco_people
    result = train(
        _cfg(max_steps=4, crop_size=128, amp="fp16"),
        ann,
        images,
        tmp_path,
        model_config=NANO,
        augment=AugmentConfig.off(),
        image_ids=FEW_IMAGES[:2],
        device=device,
    )
    losses = [r["loss"] for r in result.history]
    assert result.scaler_skips == 0 and not any(r["scaler_skipped"] for r in result.history)
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.8 * losses[0], losses
    assert [r["scaler_skips"] for r in result.history] == [0] * 4


@pytest.mark.gpu
@pytest.mark.parametrize("amp", ["auto", "fp16", "off"])
def test_a_few_steps_on_cuda_lower_the_loss(tmp_path, coco_people, amp):
    """The path real training takes: CUDA with mixed precision (auto: bf16 where the GPU has
    it, else fp16 with loss scaling)."""
    ann, images = coco_people
    result = train(
        _cfg(max_steps=5, crop_size=128, amp=amp),
        ann,
        images,
        tmp_path,
        model_config=NANO,
        augment=AugmentConfig.off(),
        image_ids=FEW_IMAGES[:2],
        device="cuda",
    )
    losses = [r["loss"] for r in result.history]
    assert result.skipped == 0 and result.scaler_skips == 0
    assert losses[-1] < 0.8 * losses[0], losses
    assert next(result.model.parameters()).device.type == "cuda"


@pytest.mark.parametrize(
    "device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)], ids=["cpu", "cuda"]
)
def test_resume_gives_the_same_weights(tmp_path, coco_people, device):
    """Stop after 1 step (mid-epoch), resume to 3 (crossing an epoch): same as 3 at once.

    On CUDA bit-exactness needs deterministic kernels (``deterministic=True``: no cuDNN
    autotuning, deterministic cuBLAS); mixed precision stays on (bf16 / fp16 + scaler)."""
    ann, images = coco_people
    kwargs = dict(
        model_config=NANO,
        image_ids=FEW_IMAGES,
        loss=LossConfig(kind="focal_paper"),
        device=device,
    )
    config = _cfg(
        optimizer="sgd",
        lr=1e-2,
        warmup_epochs=1.0,
        lr_step_epochs=1,
        lr_gamma=0.5,
        deterministic=device == "cuda",
    )
    whole = train(
        TrainConfig(**{**config.to_dict(), "max_steps": 3}), ann, images, tmp_path / "a", **kwargs
    )
    first = train(
        TrainConfig(**{**config.to_dict(), "max_steps": 1}), ann, images, tmp_path / "b", **kwargs
    )
    assert first.step == 1
    resumed = train(
        TrainConfig(**{**config.to_dict(), "max_steps": 3}),
        ann,
        images,
        tmp_path / "b",
        resume=True,
        **kwargs,
    )
    assert resumed.step == 3 and resumed.epoch == 1  # 2 steps per epoch
    expected, got = whole.model.state_dict(), resumed.model.state_dict()
    initial = {k: v.to(device) for k, v in build_model(NANO).state_dict().items()}
    changed = 0
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
        changed += not torch.equal(expected[key], initial[key])
    assert changed > 10
    assert [r["loss"] for r in whole.history][1:] == [r["loss"] for r in resumed.history]
    assert not torch.are_deterministic_algorithms_enabled()  # restored for the caller


def test_bad_loss_batches_are_skipped(tmp_path, coco_people):
    ann, images = coco_people
    torch.manual_seed(1)
    before = build_model(NANO).state_dict()
    result = train(
        _cfg(max_steps=2, skip_loss_above=1e-9),
        ann,
        images,
        tmp_path,
        model_config=NANO,
        image_ids=FEW_IMAGES,
        device="cpu",
    )
    assert result.skipped == 2 and all(r["skipped"] for r in result.history)
    for key, value in result.model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_fine_tune_from_authors_format(tmp_path, coco_people):
    ann, images = coco_people
    torch.manual_seed(5)
    source = build_model(NANO)
    authors = {"weights": {f"module.posenet.{k}": v for k, v in source.state_dict().items()}}
    torch.save(authors, tmp_path / "authors.pth")
    result = train(
        _cfg(max_steps=1, freeze_bn=True),
        ann,
        images,
        tmp_path / "out",
        weights=tmp_path / "authors.pth",
        image_ids=FEW_IMAGES,
        device="cpu",
    )
    assert result.model.config == NANO
    # frozen BatchNorm keeps the running statistics of the loaded weights
    for key, value in result.model.state_dict().items():
        if "running_" in key:
            assert torch.equal(value, source.state_dict()[key]), key


def test_resume_errors(tmp_path, coco_people):
    ann, images = coco_people
    with pytest.raises(CheckpointError, match="does not exist"):
        train(_cfg(), ann, images, tmp_path, resume=True, model_config=NANO)
    torch.save({"weights": build_model(NANO).state_dict()}, tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        train(_cfg(), ann, images, tmp_path, resume=tmp_path / "w.pth", model_config=NANO)
    with pytest.raises(InputError, match="fewer than one global batch"):
        train(_cfg(batch_size=8), ann, images, tmp_path, model_config=NANO, image_ids=FEW_IMAGES)


@pytest.mark.parametrize("command", ["train", "eval"])
def test_cli_help(command):
    done = subprocess.run(
        [sys.executable, "-m", "simplepose", command, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "--coco-ann" in done.stdout


def test_train_cli_missing_annotations(tmp_path, coco_people):
    done = subprocess.run(
        [sys.executable, "-m", "simplepose", "train", "--coco-ann", str(tmp_path / "x.json")]
        + ["--images", str(coco_people[1]), "--preset", "nano", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "x.json does not exist" in done.stderr and "Traceback" not in done.stderr


def test_bf16_clipping_and_periodic_evaluation(tmp_path, coco_people):
    ann, images = coco_people
    result = train(
        _cfg(
            max_steps=2,
            amp="bf16",
            grad_clip=1.0,
            eval_every=1,
            eval_max_images=2,
            eval_input_size=128,
        ),
        ann,
        images,
        tmp_path,
        model_config=NANO,
        image_ids=FEW_IMAGES,  # 2 steps per epoch: the evaluation runs after step 2
        val_ann=ann,
        val_images=images,
    )
    assert all(r["grad_norm"] > 0 for r in result.history)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in result.history)
    records = [json.loads(line) for line in (tmp_path / LOG_FILE).read_text().splitlines()]
    evaluation = [r for r in records if "val_AP" in r]
    assert len(evaluation) == 1 and evaluation[0]["epoch"] == 1
    assert 0.0 <= evaluation[0]["val_AP"] <= 1.0
    assert result.model.training  # back in train mode after the evaluation
