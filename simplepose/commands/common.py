"""Argument groups shared by the subcommands that run a model (``run``, ``image``, ``eval``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from simplepose.config import InferenceConfig

#: ``--weights`` help of every command that runs or converts a model.
WEIGHTS_HELP = (
    "a name (released) or a path: checkpoint (.pth, project or authors' format), .onnx or "
    "TensorRT engine; default released (downloaded once, see 'simplepose weights list'), or "
    "the file $SIMPLEPOSE_WEIGHTS names"
)


def parse_scales(text: str) -> tuple[float, ...]:
    """``"1"``, ``"0.5,1,1.5"`` or ``"authors"`` -> tuple of scales."""
    if text == "authors":
        return InferenceConfig.AUTHORS_SCALES
    try:
        scales = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"scales must be comma-separated numbers or 'authors', got {text!r}"
        ) from None
    if not scales or min(scales) <= 0:
        raise argparse.ArgumentTypeError(f"scales must be positive, got {text!r}")
    return scales


def add_model_arguments(parser: argparse.ArgumentParser, *, flip_default: bool = True) -> None:
    """``--weights``, ``--backend``, ``--input-size``, ``--flip``, ``--scales``, threads."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--weights",
        default=None,
        help=WEIGHTS_HELP,
    )
    group.add_argument(
        "--backend",
        choices=("auto", "torch", "onnxruntime", "tensorrt"),
        default="auto",
        help="auto: the GPU whenever one can be used (TensorRT, else torch on CUDA for a "
        "checkpoint, ONNX Runtime CUDA for .onnx), else ONNX Runtime on the CPU",
    )
    group.add_argument(
        "--input-size", type=int, default=512, help="--resize-side in network pixels at scale 1"
    )
    group.add_argument(
        "--resize-side",
        choices=InferenceConfig.RESIZE_SIDES,
        default="height",
        help="image side that --input-size applies to (authors: height)",
    )
    group.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=flip_default,
        help="flip test: also run the mirrored image",
    )
    group.add_argument(
        "--scales",
        type=parse_scales,
        default=(1.0,),
        help="comma-separated input scales, or 'authors' (0.5,1,1.5,2,3)",
    )
    group.add_argument("--threads", type=int, default=None, help="CPU threads for inference")
    group.add_argument(
        "--device", default=None, help="torch device for --backend torch (cpu, cuda, cuda:N)"
    )
    group.add_argument(
        "--precision",
        choices=("fp32", "fp16", "bf16"),
        default=None,
        help="torch backend arithmetic (default: fp16 on CUDA, fp32 on CPU)",
    )
    group.add_argument(
        "--cuda-graphs",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="torch backend on CUDA: replay the network from CUDA graphs",
    )
    group.add_argument(
        "--providers",
        default=None,
        help="ONNX Runtime providers, comma-separated (tensorrt,cuda,cpu); default: best available",
    )


def build_estimator(args: argparse.Namespace, **decode_overrides: Any) -> Any:
    """A ``PoseEstimator`` from the model arguments (imports the heavy modules lazily)."""
    from simplepose.config import DecodeConfig
    from simplepose.errors import InputError
    from simplepose.inference import PoseEstimator

    try:
        config = InferenceConfig(
            input_size=args.input_size,
            resize_side=args.resize_side,
            flip=args.flip,
            scales=args.scales,
        )
    except ValueError as error:
        raise InputError(str(error)) from error
    options: dict[str, Any] = {"threads": args.threads, "cuda_graphs": args.cuda_graphs}
    if args.device:
        options["device"] = args.device
    if args.precision:
        options["precision"] = args.precision
    if args.providers:
        options["providers"] = args.providers.split(",")
    estimator = PoseEstimator(
        args.weights,
        backend=args.backend,
        config=config,
        decode=DecodeConfig(**decode_overrides),
        **options,
    )
    # Which backend, device and precision 'auto' chose, before any frame: one line.
    print(estimator.describe(), file=sys.stderr)  # noqa: T201
    return estimator
