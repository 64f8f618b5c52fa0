"""The training loop: one process or many (DistributedDataParallel), resumable exactly.

``train(...)`` runs SGD (the paper's) or AdamW with a per-iteration linear warm-up and step
decay, optional mixed precision (bf16, or fp16 with a GradScaler), gradient clipping, L2
first then (focal) L2, checkpoints, JSON Lines logging and periodic COCO evaluation.

Exact resume: a checkpoint stores the model, optimiser, scheduler and scaler states, the
global step and the torch RNG state. The data order depends only on ``(seed, epoch)``
(``DistributedSampler``) and every augmentation only on ``(seed, epoch, index)``, so a run
resumed at step k skips the first ``k mod steps_per_epoch`` batches of its epoch and then
sees exactly the batches an uninterrupted run would have seen.

Distributed rules (spec section 5): ``batch_size`` is per process; the global batch is
``batch_size x world_size``; the learning rate is ``lr x world_size`` when ``scale_lr`` (the
authors' rule). DDP averages gradients over ranks and the loss is divided by the per-process
batch, so one step over G processes equals one step of one process over the global batch
(exactly, when BatchNorm statistics are synchronised or frozen). A batch whose loss is
non-finite or above ``skip_loss_above`` on *any* rank is skipped on all ranks, decided with
one all-reduce (a rank skipping alone would hang the gradient all-reduce).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from simplepose.config import AugmentConfig, LossConfig, ModelConfig, TargetConfig, TrainConfig
from simplepose.errors import CheckpointError, InputError
from simplepose.model import IMHN, build_model, load_checkpoint, resolve_weights, save_checkpoint
from simplepose.training.data import CocoPoseDataset
from simplepose.training.distributed import DistInfo, cleanup, init_distributed
from simplepose.training.losses import focal_l2_loss

_logger = logging.getLogger(__name__)

__all__ = ["LrSchedule", "TrainResult", "build_optimizer", "train"]

LAST_CHECKPOINT = "last.pth"
LOG_FILE = "log.jsonl"


class LrSchedule:
    """Learning-rate factor per optimiser step: linear warm-up, then x gamma every N epochs.

    A plain object (not a lambda) so ``LambdaLR.state_dict`` saves its fields.

    Args:
        steps_per_epoch: optimiser steps in one epoch.
        warmup_epochs: warm-up length in epochs (fractional allowed; 0 = none).
        step_epochs: decay period in epochs (0 = no decay).
        gamma: decay factor.
    """

    def __init__(
        self, steps_per_epoch: int, warmup_epochs: float, step_epochs: int, gamma: float
    ) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.warmup_steps = warmup_epochs * steps_per_epoch
        self.step_epochs = step_epochs
        self.gamma = gamma

    def __call__(self, step: int) -> float:
        factor = 1.0
        if self.warmup_steps > 0 and step < self.warmup_steps:
            factor = (step + 1) / (self.warmup_steps + 1)
        if self.step_epochs > 0:
            factor *= self.gamma ** (step // (self.steps_per_epoch * self.step_epochs))
        return factor


@dataclass
class TrainResult:
    """What ``train`` returns (on every rank; only rank 0 wrote files).

    Attributes:
        model: the trained network (unwrapped from DDP), in train mode.
        step: optimiser steps done in total (skipped batches included).
        epoch: epochs completed.
        checkpoint: the last checkpoint written (rank 0), else ``None``.
        skipped: batches skipped for a bad loss in this run.
        scaler_skips: fp16 steps the gradient scaler skipped in this run (non-finite
            gradients; the scaler then halves its scale).
        history: the log records of this run (dicts, as written to ``log.jsonl``).
    """

    model: IMHN
    step: int
    epoch: int
    checkpoint: Path | None
    skipped: int = 0
    scaler_skips: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


class _SkipSampler(Sampler[int]):
    """Drop the first ``skip`` indices of a sampler's epoch (exact mid-epoch resume)."""

    def __init__(self, sampler: Sampler[int], skip: int) -> None:
        self.sampler, self.skip = sampler, skip

    def __iter__(self) -> Iterator[int]:
        for i, index in enumerate(self.sampler):
            if i >= self.skip:
                yield index

    def __len__(self) -> int:
        return max(len(self.sampler) - self.skip, 0)  # type: ignore[arg-type]


def build_optimizer(
    model: nn.Module, config: TrainConfig, world_size: int = 1
) -> torch.optim.Optimizer:
    """SGD with momentum (the paper's) or AdamW at the (world-size scaled) learning rate."""
    lr = config.lr * (world_size if config.scale_lr else 1)
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    return torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)


def _set_train_mode(model: nn.Module, freeze_bn: bool) -> None:
    model.train()
    if freeze_bn:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def _resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: ``auto`` is bf16 on GPUs that have it (no loss scaling needed: bf16
    has float32's range), fp16 on older GPUs, and float32 (``None``) on the CPU."""
    if mode == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}[mode]


#: First loss scale of fp16 training. PyTorch's default (2**16) overflows the fp16 gradients
#: of this loss, which is summed (not averaged) over pixels with weights up to 6.4 x 3: with
#: fp16 autocast (``python -m benchmarks.bench_amp``: nano, 128 crop, 2 real images) the
#: scales 2**16 .. 2**11 all overflowed, so the first 6 steps were skipped (a 5-step run
#: learned nothing: the flat loss seen on CUDA), and the scaler settled at 2**10. Starting
#: one halving below that skips nothing and leaves the scaler free to grow.
INITIAL_LOSS_SCALE = 2.0**9


class _Logger:
    """JSON Lines (always) and TensorBoard (when installed) on rank 0; nothing elsewhere."""

    def __init__(self, output: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.file = None
        self.tensorboard: Any = None
        if not enabled:
            return
        self.file = (output / LOG_FILE).open("a", encoding="utf-8")
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
        except ImportError:
            _logger.debug("tensorboard not installed; logging to %s only", LOG_FILE)
        else:
            self.tensorboard = SummaryWriter(str(output / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled or self.file is None:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tensorboard is not None:
            step = record.get("step", 0)
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self.tensorboard.add_scalar(key, value, step)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def _load_resume(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"cannot resume: {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load fails in many ways on bad files
        raise CheckpointError(f"cannot resume from {path}: {error}") from error
    if not isinstance(state, dict) or "optimizer" not in state or "step" not in state:
        raise CheckpointError(
            f"cannot resume from {path}: not a training checkpoint (no optimizer state); "
            "use --weights to fine-tune from weights only"
        )
    return state


def _config_dict(value: Any) -> dict[str, Any]:
    return dataclasses.asdict(value)


def train(
    config: TrainConfig,
    train_ann: str | os.PathLike[str],
    train_images: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    model_config: ModelConfig | None = None,
    weights: str | os.PathLike[str] | None = None,
    resume: bool | str | os.PathLike[str] = False,
    val_ann: str | os.PathLike[str] | None = None,
    val_images: str | os.PathLike[str] | None = None,
    augment: AugmentConfig | None = None,
    loss: LossConfig | None = None,
    target: TargetConfig | None = None,
    device: str | None = None,
    image_ids: Sequence[int] | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train (or fine-tune, or resume) an IMHN on COCO person keypoints.

    Args:
        config: loop settings (per-process batch, learning rate, schedule, precision...).
        train_ann: COCO keypoint annotation json of the training set.
        train_images: its image folder.
        output_dir: where ``last.pth``, ``epoch_NNN.pth`` and ``log.jsonl`` go (rank 0).
        model_config: architecture of a freshly initialised model (default: released).
        weights: start from these weights instead (any format ``load_checkpoint`` accepts,
            e.g. the authors' ``PoseNet_52_epoch.pth``, or a name such as ``released``,
            downloaded on first use); optimiser state starts fresh.
        resume: ``True`` = continue from ``output_dir/last.pth``; a path = from that file.
        val_ann: validation annotations for the periodic COCO evaluation.
        val_images: validation image folder.
        augment: augmentation (default: released values).
        loss: loss settings (default: released values); ``config.l2_epochs`` first epochs
            use plain L2 whatever ``loss.kind`` says.
        target: ground-truth encoding (default: released values).
        device: ``"cpu"``, ``"cuda"`` or ``None`` (CUDA when available).
        image_ids: train on these image ids only.
        progress: show a tqdm bar per epoch on rank 0.

    Returns:
        ``TrainResult``.

    Raises:
        InputError, CheckpointError: bad data, too few samples, unusable checkpoints.
    """
    info = init_distributed(device)
    # Deterministic mode is process-wide state in torch: restore it for the caller.
    deterministic = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    try:
        return _train(
            config,
            info,
            train_ann,
            train_images,
            Path(output_dir),
            model_config=model_config,
            weights=weights,
            resume=resume,
            val=(val_ann, val_images) if val_ann is not None else None,
            augment=augment or AugmentConfig(),
            loss=loss or LossConfig(),
            target=target or TargetConfig(),
            image_ids=image_ids,
            progress=progress,
        )
    finally:
        torch.use_deterministic_algorithms(deterministic[0])
        torch.backends.cudnn.benchmark = deterministic[1]
        cleanup()


def _train(
    config: TrainConfig,
    info: DistInfo,
    train_ann: str | os.PathLike[str],
    train_images: str | os.PathLike[str],
    output: Path,
    *,
    model_config: ModelConfig | None,
    weights: str | os.PathLike[str] | None,
    resume: bool | str | os.PathLike[str],
    val: tuple[Any, Any] | None,
    augment: AugmentConfig,
    loss: LossConfig,
    target: TargetConfig,
    image_ids: Sequence[int] | None,
    progress: bool,
) -> TrainResult:
    device = info.device
    if config.deterministic:
        if device.type == "cuda":
            # cuBLAS is deterministic only with a fixed workspace; torch reads this variable
            # at its first cuBLAS call, so it must be set before (the tests set it early).
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    torch.manual_seed(config.seed)  # same initial weights on every rank

    resume_state: dict[str, Any] | None = None
    if resume:
        resume_path = output / LAST_CHECKPOINT if resume is True else Path(resume)
        resume_state = _load_resume(resume_path)
        model = load_checkpoint(resume_path)
    elif weights is not None:
        model = load_checkpoint(resolve_weights(weights), config=model_config)
    else:
        model = build_model(model_config or ModelConfig())
    model = model.to(device)

    dataset = CocoPoseDataset(
        train_ann,
        train_images,
        crop_size=config.crop_size,
        augment=augment,
        target_config=target,
        seed=config.seed,
        image_ids=image_ids,
    )
    sampler: DistributedSampler[int] = DistributedSampler(
        dataset,
        num_replicas=info.world_size,
        rank=info.rank,
        shuffle=True,
        seed=config.seed,
        drop_last=True,
    )
    steps_per_epoch = len(sampler) // config.batch_size
    if steps_per_epoch == 0:
        raise InputError(
            f"{len(dataset)} training samples are fewer than one global batch "
            f"({config.batch_size} per process x {info.world_size} processes)"
        )

    if config.sync_bn and info.distributed:
        if device.type != "cuda":
            raise InputError(
                "SyncBatchNorm needs CUDA (PyTorch has no CPU implementation); on CPU use "
                "--freeze-bn or run without --sync-bn"
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net: IMHN = model
    train_model: nn.Module = model
    if info.distributed:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[info.local_rank] if device.type == "cuda" else None
        )

    optimizer = build_optimizer(net, config, info.world_size)
    schedule = LrSchedule(
        steps_per_epoch, config.warmup_epochs, config.lr_step_epochs, config.lr_gamma
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    amp_dtype = _resolve_amp(config.amp, device)
    scaler = torch.amp.GradScaler(
        device.type, init_scale=INITIAL_LOSS_SCALE, enabled=amp_dtype == torch.float16
    )

    step = 0
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        if resume_state.get("scaler"):
            scaler.load_state_dict(resume_state["scaler"])
        if "rng" in resume_state:
            torch.set_rng_state(resume_state["rng"])
        step = int(resume_state["step"])
        saved_spe = resume_state.get("steps_per_epoch", steps_per_epoch)
        if saved_spe != steps_per_epoch:
            _logger.warning(
                "steps per epoch changed from %d to %d since the checkpoint (batch size or "
                "world size differ); the data order will not match the interrupted run",
                saved_spe,
                steps_per_epoch,
            )
        _logger.info("resumed from step %d", step)

    if info.is_main:
        output.mkdir(parents=True, exist_ok=True)
    log = _Logger(output, info.is_main)
    result = TrainResult(model=net, step=step, epoch=step // steps_per_epoch, checkpoint=None)
    max_steps = config.max_steps
    total_steps = steps_per_epoch * config.epochs
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)
    extra_state = {
        "train_config": config.to_dict(),
        "augment_config": _config_dict(augment),
        "loss_config": _config_dict(loss),
        "target_config": _config_dict(target),
        "steps_per_epoch": steps_per_epoch,
        "world_size": info.world_size,
    }

    def save(epoch_done: int, name: str) -> Path:
        return save_checkpoint(
            net,
            output / name,
            optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(),
            scaler=scaler.state_dict(),
            epoch=epoch_done,
            step=step,
            rng=torch.get_rng_state(),
            **extra_state,
        )

    if info.is_main:
        _logger.info(
            "training %d samples, %d steps/epoch, global batch %d, lr %.3g, amp %s",
            len(dataset),
            steps_per_epoch,
            config.batch_size * info.world_size,
            optimizer.param_groups[0]["lr"],
            amp_dtype,
        )
    try:
        while step < total_steps:
            epoch = step // steps_per_epoch
            skip_batches = step - epoch * steps_per_epoch
            sampler.set_epoch(epoch)
            dataset.set_epoch(epoch)
            loader = DataLoader(
                dataset,
                batch_size=config.batch_size,
                sampler=_SkipSampler(sampler, skip_batches * config.batch_size),
                num_workers=config.workers,
                drop_last=True,
                pin_memory=device.type == "cuda",
                persistent_workers=False,
            )
            loss_config = (
                loss if epoch >= config.l2_epochs else dataclasses.replace(loss, kind="l2")
            )
            _set_train_mode(train_model, config.freeze_bn)
            batches: Any = loader
            if progress and info.is_main:
                from tqdm import tqdm

                batches = tqdm(loader, desc=f"epoch {epoch}", leave=False)
            started = time.perf_counter()
            for batch in batches:
                lr = optimizer.param_groups[0]["lr"]
                record = _train_step(
                    train_model, batch, optimizer, scaler, loss_config, config, info, amp_dtype
                )
                with warnings.catch_warnings():
                    # A skipped first batch makes torch think the optimiser never stepped;
                    # the schedule is per iteration, skipped or not, on purpose.
                    warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler")
                    scheduler.step()
                step += 1
                if record["scaler_skipped"]:
                    result.scaler_skips += 1
                    if progress and info.is_main:
                        batches.set_postfix(scaler_skips=result.scaler_skips, refresh=False)
                if record["skipped"]:
                    result.skipped += 1
                    _logger.warning(
                        "step %d: loss %s is not finite or above %g on some rank; batch skipped",
                        step,
                        record["loss"],
                        config.skip_loss_above,
                    )
                if step % config.log_every == 0 or record["skipped"] or step == total_steps:
                    record.update(
                        scaler_skips=result.scaler_skips,
                        step=step,
                        epoch=epoch,
                        lr=lr,
                        loss_kind=loss_config.kind,
                        seconds=time.perf_counter() - started,
                    )
                    result.history.append(record)
                    log.write(record)
                if step >= total_steps:
                    break
            result.step = step
            epoch_done = step // steps_per_epoch
            result.epoch = epoch_done
            end_of_epoch = step % steps_per_epoch == 0
            if info.is_main:
                result.checkpoint = save(epoch_done, LAST_CHECKPOINT)
                if end_of_epoch and epoch_done % config.checkpoint_every == 0:
                    save(epoch_done, f"epoch_{epoch_done:03d}.pth")
            if end_of_epoch and val is not None and config.eval_every:
                if epoch_done % config.eval_every == 0 or step >= total_steps:
                    _periodic_eval(net, val, config, info, log, step, epoch_done)
                    _set_train_mode(train_model, config.freeze_bn)
    finally:
        log.close()
    if result.scaler_skips and info.is_main:
        _logger.info("the fp16 gradient scaler skipped %d steps", result.scaler_skips)
    return result


def _train_step(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    loss_config: LossConfig,
    config: TrainConfig,
    info: DistInfo,
    amp_dtype: torch.dtype | None,
) -> dict[str, Any]:
    device = info.device
    images = batch["image"].to(device, non_blocking=True).float().div_(255.0)
    targets = batch["targets"].to(device, non_blocking=True)
    mask = batch["mask"].to(device, non_blocking=True)
    autocast = (
        torch.autocast(device_type=device.type, dtype=amp_dtype)
        if amp_dtype is not None
        else nullcontext()
    )
    # BatchNorm updates its running statistics in the forward pass; keep a copy so that a
    # skipped (possibly non-finite) batch leaves no trace. The buffers are tiny next to the
    # weights, so the copy costs little.
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    with autocast:
        outputs = model(images)
    result = focal_l2_loss(outputs, targets, mask, loss_config)
    value = result.loss.detach()
    bad = (~torch.isfinite(value)) | (value > config.skip_loss_above)
    # One all-reduce decides for every rank (sum of bad flags) and averages the loss for
    # the log: no rank ever skips alone.
    stats = torch.stack([bad.float(), torch.nan_to_num(value, nan=math.inf)]).float()
    if info.distributed:
        dist.all_reduce(stats, op=dist.ReduceOp.SUM)
        stats[1] /= info.world_size
    skipped = bool(stats[0].item() > 0)
    optimizer.zero_grad(set_to_none=True)
    grad_norm = None
    scaler_skipped = False
    if skipped:
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
    else:
        scaler.scale(result.loss).backward()
        if config.grad_clip is not None:
            scaler.unscale_(optimizer)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip))
        scale = scaler.get_scale() if scaler.is_enabled() else 0.0
        scaler.step(optimizer)
        scaler.update()
        # The scaler skips the optimiser step, and halves its scale, on non-finite grads.
        scaler_skipped = scaler.is_enabled() and scaler.get_scale() < scale
    record: dict[str, Any] = {
        "loss": float(stats[1].item()),
        "skipped": skipped,
        "scaler_skipped": scaler_skipped,
    }
    if grad_norm is not None:
        record["grad_norm"] = grad_norm
    if not skipped:
        record["loss_stack_scale"] = result.components.tolist()
    return record


def _periodic_eval(
    model: IMHN,
    val: tuple[Any, Any],
    config: TrainConfig,
    info: DistInfo,
    log: _Logger,
    step: int,
    epoch: int,
) -> None:
    """COCO evaluation on rank 0 with a copy of the model (the backend may cast it)."""
    if info.is_main:
        from simplepose.config import InferenceConfig
        from simplepose.inference import PoseEstimator
        from simplepose.training.evaluate import evaluate_coco

        estimator = PoseEstimator(
            copy.deepcopy(model).float().eval(),
            backend="torch",
            config=InferenceConfig(input_size=config.eval_input_size),
            device=str(info.device),
        )
        evaluation = evaluate_coco(
            estimator, val[0], val[1], max_images=config.eval_max_images, progress=False
        )
        record = {
            "step": step,
            "epoch": epoch,
            **{f"val_{k}": v for k, v in evaluation.stats.items()},
        }
        log.write(record)
        _logger.info("epoch %d: val AP %.3f", epoch, evaluation.stats["AP"])
    if info.distributed:
        dist.barrier()
