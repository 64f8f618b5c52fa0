"""``simplepose train``: train or fine-tune an IMHN on COCO person keypoints.

One process: ``simplepose train --coco-ann ANN --images DIR --preset nano --output runs/a``.
Many GPUs / machines: ``torchrun --nproc-per-node G [--nnodes N ...] -m simplepose train ...``
(DistributedDataParallel; ``--batch-size`` is per process, the learning rate is scaled by the
world size).
"""

from __future__ import annotations

import argparse
import sys

from simplepose.commands.common import positive_int
from simplepose.config import AugmentConfig, LossConfig, ModelConfig, TrainConfig


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    defaults = TrainConfig()
    parser = subparsers.add_parser(
        "train",
        help="train or fine-tune an IMHN on COCO person keypoints (one GPU to many machines)",
        description=(
            "Train an IMHN on a COCO person-keypoint annotation file and image folder. "
            "Launch with torchrun for several processes (DistributedDataParallel): "
            "torchrun --nproc-per-node G -m simplepose train ..."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument("--coco-ann", required=True, help="COCO person-keypoint annotation json")
    data.add_argument("--images", required=True, help="image folder of --coco-ann")
    data.add_argument("--val-ann", help="validation annotations (periodic COCO evaluation)")
    data.add_argument("--val-images", help="validation image folder")
    data.add_argument("--crop-size", type=int, default=defaults.crop_size, help="square crop side")
    data.add_argument("--workers", type=int, default=defaults.workers, help="loader workers/rank")
    data.add_argument(
        "--no-augment",
        action="store_true",
        help="no random augmentation; whole images fitted into the crop (overfitting, tests)",
    )
    model = parser.add_argument_group("model")
    start = model.add_mutually_exclusive_group()
    start.add_argument(
        "--preset",
        choices=ModelConfig.presets(),
        help="fresh model of this size (default released)",
    )
    start.add_argument(
        "--weights",
        help="fine-tune from these weights: a name (released) or a path (e.g. the authors' "
        "PoseNet_52_epoch.pth); default: train from scratch",
    )
    model.add_argument("--output", required=True, help="folder for checkpoints and log.jsonl")
    model.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CKPT",
        help="continue exactly where a run stopped (OUTPUT/last.pth, or the given file)",
    )
    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int, default=defaults.epochs)
    opt.add_argument("--batch-size", type=int, default=defaults.batch_size, help="per process")
    opt.add_argument(
        "--lr",
        type=float,
        default=defaults.lr,
        help="per process; x world size unless --no-scale-lr",
    )
    opt.add_argument("--no-scale-lr", action="store_true", help="do not scale lr by world size")
    opt.add_argument("--optimizer", choices=TrainConfig.OPTIMIZERS, default=defaults.optimizer)
    opt.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    opt.add_argument("--warmup-epochs", type=float, default=defaults.warmup_epochs)
    opt.add_argument(
        "--lr-step-epochs", type=int, default=defaults.lr_step_epochs, help="0: no decay"
    )
    opt.add_argument("--lr-gamma", type=float, default=defaults.lr_gamma)
    opt.add_argument("--max-steps", type=int, help="stop after this many steps in total")
    opt.add_argument(
        "--loss",
        choices=LossConfig.KINDS,
        default=LossConfig().kind,
        help="loss after the --l2-epochs",
    )
    opt.add_argument("--l2-epochs", type=int, default=defaults.l2_epochs, help="plain L2 first")
    opt.add_argument("--amp", choices=TrainConfig.AMP_MODES, default=defaults.amp)
    opt.add_argument("--grad-clip", type=float, help="clip the gradient norm to this")
    opt.add_argument("--seed", type=int, default=defaults.seed)
    opt.add_argument("--deterministic", action="store_true", help="deterministic algorithms")
    dist = parser.add_argument_group("distributed and BatchNorm")
    dist.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm (CUDA)")
    dist.add_argument("--freeze-bn", action="store_true", help="BatchNorm in eval mode")
    dist.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    dist.add_argument(
        "--threads",
        type=positive_int,
        help="torch CPU threads per process (1 is much faster when the cores are shared)",
    )
    misc = parser.add_argument_group("logging and evaluation")
    misc.add_argument("--log-every", type=int, default=defaults.log_every, help="steps")
    misc.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    misc.add_argument("--eval-every", type=int, default=defaults.eval_every, help="epochs; 0 off")
    misc.add_argument("--eval-max-images", type=int, help="validation images per evaluation")
    misc.add_argument("--eval-input-size", type=int, default=defaults.eval_input_size)
    misc.add_argument("--progress", action="store_true", help="tqdm bar per epoch")
    parser.set_defaults(func=main)
    return parser


def _check_outputs(args: argparse.Namespace) -> None:
    """The output folder must be creatable and writable, and its log and last checkpoint
    must not be one of the inputs (``--resume`` continues from that checkpoint on purpose)."""
    from pathlib import Path

    from simplepose.commands.paths import Output, check_outputs, file_inputs, weights_inputs
    from simplepose.training.loop import LAST_CHECKPOINT, LOG_FILE

    folder = Path(args.output)
    outputs = [Output("--output", folder, folder=True)]
    outputs += [Output("--output", folder / name, in_new_folder=True)
                for name in (LOG_FILE, LAST_CHECKPOINT)]  # fmt: skip
    inputs = file_inputs([args.coco_ann, args.val_ann])
    if args.weights:
        inputs += weights_inputs(args.weights)
    check_outputs(outputs, inputs)


def main(args: argparse.Namespace) -> int:
    from simplepose.errors import InputError
    from simplepose.training.loop import train

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if (args.val_ann is None) != (args.val_images is None):
        raise InputError("--val-ann and --val-images go together")
    _check_outputs(args)
    try:
        config = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            scale_lr=not args.no_scale_lr,
            optimizer=args.optimizer,
            weight_decay=args.weight_decay,
            warmup_epochs=args.warmup_epochs,
            lr_step_epochs=args.lr_step_epochs,
            lr_gamma=args.lr_gamma,
            l2_epochs=args.l2_epochs,
            amp=args.amp,
            grad_clip=args.grad_clip,
            crop_size=args.crop_size,
            workers=args.workers,
            seed=args.seed,
            max_steps=args.max_steps,
            checkpoint_every=args.checkpoint_every,
            eval_every=args.eval_every,
            eval_max_images=args.eval_max_images,
            eval_input_size=args.eval_input_size,
            log_every=args.log_every,
            sync_bn=args.sync_bn,
            freeze_bn=args.freeze_bn,
            deterministic=args.deterministic,
        )
    except ValueError as error:
        raise InputError(str(error)) from error
    result = train(
        config,
        args.coco_ann,
        args.images,
        args.output,
        model_config=ModelConfig.preset(args.preset) if args.preset else None,
        weights=args.weights,
        resume=args.resume,
        val_ann=args.val_ann,
        val_images=args.val_images,
        augment=AugmentConfig.off() if args.no_augment else AugmentConfig(),
        loss=LossConfig(kind=args.loss),
        device=args.device,
        progress=args.progress,
    )
    if result.checkpoint is not None:
        last = result.history[-1]["loss"] if result.history else float("nan")
        print(  # noqa: T201
            f"trained to step {result.step} (epoch {result.epoch}), last loss {last:.4g}, "
            f"{result.skipped} batches skipped; checkpoint {result.checkpoint}",
            file=sys.stderr,
        )
    return 0
