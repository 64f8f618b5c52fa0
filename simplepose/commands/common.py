"""Argument groups shared by the subcommands that run a model (``run``, ``image``, ``eval``)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from simplepose.config import InferenceConfig

_logger = logging.getLogger(__name__)

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


def positive_int(text: str) -> int:
    """``--threads`` and other counts: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def largest_input_side(config: InferenceConfig) -> int:
    """The most input pixels ``config.resize_side`` can get: the network input is capped at
    ``config.max_input_hw`` (height, width), a bound on memory, for every image."""
    cap_h, cap_w = config.max_input_hw
    return {"height": cap_h, "width": cap_w, "long": max(cap_h, cap_w),
            "short": min(cap_h, cap_w)}[config.resize_side]  # fmt: skip


def check_input_size(config: InferenceConfig) -> None:
    """Refuse an ``--input-size`` that no image could get; say when some scales are capped.

    Raises:
        InputError: ``input_size`` is above ``largest_input_side(config)``.
    """
    from simplepose.errors import InputError

    largest = largest_input_side(config)
    cap_h, cap_w = config.max_input_hw
    limit = f"network inputs are at most {cap_h} pixels high and {cap_w} wide, a memory bound"
    if config.input_size > largest:
        raise InputError(
            f"--input-size must be at most {largest} for --resize-side {config.resize_side} "
            f"({limit}), got {config.input_size}"
        )
    capped = [s for s in config.scales if config.input_size * s > largest]
    if capped:
        _logger.warning(
            "--scales %s x --input-size %d exceed %d pixels: they run at %d (%s)",
            ",".join(f"{s:g}" for s in capped), config.input_size, largest, largest, limit,
        )  # fmt: skip


def warn_if_capped(config: InferenceConfig, image_hw: tuple[int, int], what: str) -> bool:
    """Log once that an image of ``image_hw`` (height, width) gets a smaller network input
    than ``config`` asks for, because its other side reaches ``config.max_input_hw`` (a wide
    panorama at a large ``--input-size``); returns whether it does."""
    from simplepose.inference.preprocess import input_scale

    h, w = image_hw
    side = {"height": h, "width": w, "long": max(h, w), "short": min(h, w)}[config.resize_side]
    largest = largest_input_side(config)
    for scale in config.scales:
        wanted = min(config.input_size * scale, largest) / side
        factor = input_scale(image_hw, config, scale)
        if factor < wanted * (1 - 1e-6):
            _logger.warning(
                "%s (%d x %d) runs at %d x %d network pixels at scale %g, not %d x %d: "
                "network inputs are at most %d pixels high and %d wide, a memory bound",
                what, w, h, round(w * factor), round(h * factor), scale, round(w * wanted),
                round(h * wanted), *config.max_input_hw,
            )  # fmt: skip
            return True
    return False


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
    group.add_argument(
        "--threads", type=positive_int, default=None, help="CPU threads for inference (>= 1)"
    )
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
    check_input_size(config)
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
