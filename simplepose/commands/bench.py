"""``simplepose bench``: measure every stage on this machine and explain where the time goes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simplepose.commands.common import positive_int
from simplepose.config import ModelConfig


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"sizes must be comma-separated integers: {text!r}"
        ) from None
    if not sizes:
        raise argparse.ArgumentTypeError("give at least one size")
    return sizes


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="per-stage speed on this machine: table, bench.json and plots",
        description=(
            "Measure, in one process: decoding of the source, preprocessing, the network on "
            "every backend available (and vs input size), grouping (C++ vs the NumPy "
            "reference, 1-40 people), rendering and encoding, then the threaded pipeline end "
            "to end (FPS and latency). Prints a table and writes bench.json and PNG plots. "
            "Without --weights the network has deterministic weights: speed does not depend "
            "on their values."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    model = parser.add_mutually_exclusive_group()
    model.add_argument(
        "--weights", default=None, help="checkpoint, .onnx or engine to time (default: --preset)"
    )
    model.add_argument(
        "--preset",
        default="small",
        choices=ModelConfig.presets(),
        help="architecture with deterministic weights (released = the authors' 4-stack IMHN)",
    )
    parser.add_argument(
        "--backend",
        nargs="+",
        choices=("tensorrt", "onnxruntime", "torch"),
        default=None,
        help="backends to measure (default: every one usable here)",
    )
    parser.add_argument(
        "--input-size", type=int, default=256, help="input height for the stage table and pipeline"
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=(128, 256, 384),
        help="comma-separated input heights for the FPS-vs-size curve",
    )
    parser.add_argument(
        "--source", default=None, help="video to decode and run (default: a synthetic video)"
    )
    parser.add_argument("--frames", type=int, default=100, help="frames through the pipeline")
    parser.add_argument("--repeats", type=int, default=5, help="timed network calls per backend")
    parser.add_argument("--flip", action="store_true", help="flip test (doubles network work)")
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="CPU threads for inference (>= 1)"
    )
    parser.add_argument(
        "--live-clients", type=int, default=4, metavar="N",
        help="pages watching the browser live view in its measurement (0: skip it)",
    )  # fmt: skip
    parser.add_argument("--output-dir", default="bench", help="where bench.json and plots go")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.set_defaults(func=main)
    return parser


def main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from simplepose.bench import BenchSettings, check_report, format_table, run_bench
    from simplepose.bench.report import PLOT_FILES, make_plots, write_json
    from simplepose.commands.paths import Output, check_outputs, file_inputs, weights_inputs
    from simplepose.errors import InputError

    try:
        settings = BenchSettings(
            weights=args.weights,
            preset=args.preset,
            backends=tuple(args.backend or ()),
            input_size=args.input_size,
            size_sweep=args.sizes,
            source=args.source,
            frames=args.frames,
            repeats=args.repeats,
            flip=args.flip,
            threads=args.threads,
            live_clients=args.live_clients,
        )
    except ValueError as error:
        raise InputError(str(error)) from error
    output_dir = Path(args.output_dir)
    planned = ["bench.json"] if args.no_plots else ["bench.json", *PLOT_FILES]
    outputs = [Output("--output-dir", output_dir, folder=True)]
    outputs += [Output("--output-dir", output_dir / name, in_new_folder=True) for name in planned]
    weights = weights_inputs(args.weights) if args.weights else []  # else: made-up weights
    check_outputs(outputs, file_inputs([args.source]) + weights)
    output_dir.mkdir(parents=True, exist_ok=True)

    bar: tqdm | None = None

    def log(line: str) -> None:
        print(f"[bench] {line}", file=sys.stderr, flush=True)  # noqa: T201

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="frame", desc="pipeline", leave=False)
        bar.update(done - bar.n)

    try:
        report = run_bench(settings, log=log, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    problems = check_report(report)
    print(format_table(report))  # noqa: T201 - the command's output
    written = [write_json(report, output_dir / "bench.json")]
    if not args.no_plots:
        try:
            written += make_plots(report, output_dir)
        except ImportError:
            log("plots skipped: matplotlib is not installed (pip install matplotlib)")
    print(f"wrote {', '.join(str(p) for p in written)} ({report['elapsed_s']:.0f} s)")  # noqa: T201
    if problems:
        log("some figures are not positive and finite: " + "; ".join(problems))
        return 1
    return 0
