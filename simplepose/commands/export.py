"""``simplepose export``: checkpoint -> ONNX model (or TensorRT engine)."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export",
        help="export the inference graph to ONNX or a TensorRT engine",
        description=(
            "Export what inference uses (the last stack's finest output) to ONNX, with dynamic "
            "batch/height/width, checked with onnx.checker and tagged with the model config; "
            "--format engine then builds a TensorRT engine from it (needs a GPU)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--weights",
        default=None,
        help="a name (released) or a path: checkpoint (project or authors' format); default "
        "released (downloaded once, see 'simplepose weights list'), or the file "
        "$SIMPLEPOSE_WEIGHTS names",
    )
    parser.add_argument("--output", required=True, help="file to write (.onnx or .engine)")
    parser.add_argument("--format", choices=("onnx", "engine"), default="onnx")
    parser.add_argument(
        "--input-size", type=int, default=512, help="example (or, with --no-dynamic, fixed) size"
    )
    parser.add_argument(
        "--dynamic",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="dynamic height and width (multiples of 64); the batch is always dynamic",
    )
    parser.add_argument("--fp16", action="store_true", help="float16 weights and arithmetic")
    parser.add_argument(
        "--uint8-input", action="store_true", help="take uint8 NHWC BGR; cast inside the graph"
    )
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (>= 17)")
    parser.add_argument(
        "--exporter",
        choices=("dynamo", "torchscript"),
        default="dynamo",
        help="PyTorch exporter: dynamo (supported) or torchscript (legacy, much faster)",
    )
    engine = parser.add_argument_group("TensorRT engine (--format engine)")
    engine.add_argument("--max-size", type=int, nargs=2, default=(1024, 1920), metavar=("H", "W"))
    engine.add_argument("--no-fp16-engine", action="store_true", help="build an FP32 engine")
    parser.set_defaults(func=main)
    return parser


def main(args: argparse.Namespace) -> int:
    from simplepose.commands.paths import Output, check_outputs, weights_inputs
    from simplepose.export.onnx import export_onnx
    from simplepose.export.progress import StepProgress
    from simplepose.model import load_checkpoint, resolve_weights

    output = Path(args.output)
    check_outputs([Output("--output", output)], weights_inputs(args.weights))
    weights = resolve_weights(args.weights)
    model = load_checkpoint(weights)
    options = dict(
        input_size=args.input_size,
        dynamic=args.dynamic,
        fp16=args.fp16,
        uint8_input=args.uint8_input,
        opset=args.opset,
        exporter=args.exporter,
    )
    if args.format == "onnx":
        with StepProgress(f"exporting {weights.name} to ONNX", log_level=logging.INFO) as progress:
            path = export_onnx(model, output, progress=progress.step, **options)
        print(f"wrote {path}", file=sys.stderr)  # noqa: T201
        return 0
    from simplepose.export.tensorrt import EngineProfile, build_engine

    with tempfile.TemporaryDirectory() as tmp:
        with StepProgress(f"exporting {weights.name} to ONNX", log_level=logging.INFO) as progress:
            onnx_path = export_onnx(
                model, Path(tmp) / f"{output.stem}.onnx", progress=progress.step, **options
            )
        profile = EngineProfile(max_hw=(args.max_size[0], args.max_size[1]))
        path = build_engine(onnx_path, output, fp16=not args.no_fp16_engine, profile=profile)
    print(f"wrote {path}", file=sys.stderr)  # noqa: T201
    return 0
