"""``simplepose run SOURCE``: poses on a webcam, video, image folder or stream, live.

The command turns its arguments into a ``PipelineConfig``, a source, sinks and a
``PoseEstimator``, and runs ``simplepose.pipeline.Pipeline``. The source is opened first,
then the output files (an unwritable path fails before any frame is processed, and a
failure at this point deletes the outputs already created), then the model. Ctrl-C stops
the run with every output finalised (the video is playable, JSON Lines are whole lines).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from simplepose.commands.common import add_model_arguments, build_estimator, warn_if_capped
from simplepose.commands.paths import Output, check_outputs, file_inputs, weights_inputs
from simplepose.config import PipelineConfig
from simplepose.errors import InputError, UserError

_logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``run`` on the top-level parser's subparsers."""
    parser = subparsers.add_parser(
        "run",
        help="run pose estimation on a webcam, video file, image folder or stream",
        description=(
            "Estimate poses frame by frame with tracking, optional smoothing and overlay. "
            "SOURCE is a webcam index (0), a video file, an image folder or glob "
            "('frames/*.jpg') or an rtsp:// / http:// URL. Live sources keep only the newest "
            "frame; files never drop one."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("source", metavar="SOURCE", help="0, video file, folder, glob or URL")

    add_model_arguments(parser, flip_default=False)

    outputs = parser.add_argument_group("outputs")
    outputs.add_argument(
        "--show", action="store_true", help="show the overlay in a window (q / Esc close it)"
    )
    outputs.add_argument("--output", metavar="FILE", help="write the overlay video (.mp4)")
    outputs.add_argument("--json", metavar="FILE", help="write JSON Lines, one line per frame")
    outputs.add_argument("--csv", metavar="FILE", help="write CSV, one row per keypoint")
    outputs.add_argument(
        "--coco", metavar="FILE", help="write COCO keypoint results json (image folders)"
    )

    _add_live_arguments(parser)

    processing = parser.add_argument_group("processing")
    processing.add_argument("--no-track", action="store_true", help="no person IDs")
    processing.add_argument("--smooth", action="store_true", help="One-Euro smoothing per track")
    processing.add_argument(
        "--max-frames", type=int, default=None, metavar="N", help="stop after N frames"
    )
    processing.add_argument(
        "--fps", type=float, default=None, help="frame rate of an image folder (timestamps)"
    )
    processing.add_argument(
        "--queue-size", type=int, default=PipelineConfig.queue_size, metavar="N",
        help="frames buffered between two stages",
    )  # fmt: skip
    processing.add_argument(
        "--batch", type=int, default=1, metavar="N",
        help="frames per network call for files and folders (throughput); live sources use 1",
    )  # fmt: skip
    processing.add_argument(
        "--sequential", action="store_true", help="run the stages one after another (no threads)"
    )
    processing.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=main)
    return parser


def _add_live_arguments(parser: argparse.ArgumentParser) -> None:
    """``--serve`` and its options, and the webcam controls."""
    live = parser.add_argument_group("live view in a browser")
    live.add_argument(
        "--serve", nargs="?", const="127.0.0.1:8080", default=None, metavar="[HOST:]PORT",
        help="serve the live overlay, figures and events over HTTP (alone: 127.0.0.1:8080); "
        "an address other than loopback needs a token (--serve-token, or one is generated)",
    )  # fmt: skip
    live.add_argument(
        "--serve-token", default=None, metavar="TOKEN",
        help="secret every request must carry (?token=... or Authorization: Bearer)",
    )  # fmt: skip
    live.add_argument(
        "--serve-clients", type=int, default=8, metavar="N",
        help="streams served at once (a browser page holds two); more get 503",
    )  # fmt: skip
    camera = parser.add_argument_group("webcam (SOURCE 0, 1, ...)")
    camera.add_argument(
        "--camera-size", default=None, metavar="WxH",
        help="frame size to ask the camera for, e.g. 1280x720",
    )  # fmt: skip
    camera.add_argument(
        "--camera-fps", type=float, default=None, metavar="N", help="frame rate to ask for"
    )
    camera.add_argument(
        "--fourcc", default="auto", metavar="CODE",
        help="pixel format to ask for (MJPG, YUYV, ...); auto: MJPG above 640x480",
    )  # fmt: skip


def _camera_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or min(int(width), int(height)) < 1:
        raise InputError(f"--camera-size expects WIDTHxHEIGHT such as 1280x720, got {text!r}")
    return int(width), int(height)


def _camera_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """``CameraSource`` keywords from the webcam flags; ``None`` when none was given."""
    fourcc = None if args.fourcc.lower() == "auto" else args.fourcc
    if fourcc is not None and len(fourcc) != 4:
        raise InputError(f"--fourcc takes four characters (MJPG, YUYV, ...), got {fourcc!r}")
    if args.camera_fps is not None and not args.camera_fps > 0:
        raise InputError(f"--camera-fps must be > 0, got {args.camera_fps:g}")
    size = None if args.camera_size is None else _camera_size(args.camera_size)
    given = size is not None or args.camera_fps is not None or fourcc is not None
    if not given:
        return None
    if not str(args.source).strip().isdigit():
        raise InputError(
            "--camera-size, --camera-fps and --fourcc apply to webcams (SOURCE 0, 1, ...)"
        )
    return {"size": size, "fps": args.camera_fps, "fourcc": fourcc}


def _pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    if args.smooth and args.no_track:
        raise InputError("--smooth needs tracking; drop --no-track")
    try:
        return PipelineConfig(
            threaded=not args.sequential,
            queue_size=args.queue_size,
            max_frames=args.max_frames,
            batch=args.batch,
            track=not args.no_track,
            smooth=args.smooth,
        )
    except ValueError as error:
        raise InputError(str(error)) from error


def _check_outputs(args: argparse.Namespace, source: Any) -> None:
    """Refuse outputs that are inputs (the video, the images, the weights), outputs given
    twice and unwritable outputs, before anything is created (see ``commands.paths``)."""
    from simplepose.pipeline import ImageFolderSource

    options = (("--output", args.output), ("--json", args.json), ("--csv", args.csv),
               ("--coco", args.coco))  # fmt: skip
    outputs = [Output(option, Path(path)) for option, path in options if path]
    inputs = list(source.paths) if isinstance(source, ImageFolderSource) else [args.source]
    check_outputs(outputs, [*file_inputs(inputs), *weights_inputs(args.weights)])


def _open_sinks(args: argparse.Namespace, source: Any) -> list[Any]:
    """Create every requested sink; if one fails, delete the ones already created."""
    from simplepose.pipeline import (
        CocoResultsSink,
        CsvSink,
        ImageFolderSource,
        JsonLinesSink,
        VideoFileSink,
        WindowSink,
        coco_image_ids,
    )

    if args.coco and not isinstance(source, ImageFolderSource):
        _logger.warning("--coco: image IDs will be frame indices (the source is not images)")
    sinks: list[Any] = []
    try:
        if args.output:
            sinks.append(VideoFileSink(args.output, fps=source.fps, time_base=source.time_base))
        if args.json:
            sinks.append(JsonLinesSink(args.json))
        if args.csv:
            sinks.append(CsvSink(args.csv))
        if args.coco:
            ids = coco_image_ids(source.paths) if isinstance(source, ImageFolderSource) else None
            sinks.append(CocoResultsSink(args.coco, ids))
        if args.show:
            try:
                sinks.append(WindowSink())
            except InputError as error:
                raise InputError(f"{error}; watch in a browser instead with --serve") from error
        if args.serve:
            sinks.append(_serve_sink(args))
    except BaseException:
        for sink in sinks:
            sink.abort()
        raise
    return sinks


def _serve_sink(args: argparse.Namespace) -> Any:
    from simplepose.pipeline.live import ServeSink, parse_address

    if args.serve_clients < 1:
        raise InputError(f"--serve-clients must be >= 1, got {args.serve_clients}")
    host, port = parse_address(args.serve)
    sink = ServeSink(host, port, token=args.serve_token, max_clients=args.serve_clients,
                     source=str(args.source))  # fmt: skip
    print(f"live view: {sink.url}", file=sys.stderr, flush=True)  # noqa: T201
    return sink


def main(args: argparse.Namespace) -> int:
    """Run the pipeline as the arguments say; returns the exit code."""
    from tqdm import tqdm

    from simplepose.inference.backends import backend_label
    from simplepose.pipeline import CameraSource, Pipeline, PipelineError, open_source
    from simplepose.pipeline.live import ServeSink

    config = _pipeline_config(args)
    camera = _camera_options(args)
    source = open_source(args.source, fps=args.fps, camera=camera)
    if isinstance(source, CameraSource):
        print(source.describe(), file=sys.stderr, flush=True)  # noqa: T201
    try:
        _check_outputs(args, source)
        sinks = _open_sinks(args, source)
        try:
            estimator = build_estimator(args)
            if source.size:
                warn_if_capped(estimator.config, source.size[::-1], f"SOURCE {args.source}")
            for sink in sinks:
                if isinstance(sink, ServeSink):
                    sink.server.backend = backend_label(estimator.backend)
            pipeline = Pipeline(source, estimator, sinks, config)
        except BaseException:
            for sink in sinks:
                sink.abort()
            raise
    except BaseException:
        source.close()
        raise
    total = source.num_frames
    if total is not None and config.max_frames is not None:
        total = min(total, config.max_frames)
    bar = tqdm(
        total=total, unit="frame", dynamic_ncols=True, disable=args.no_progress, file=sys.stderr
    )
    try:
        with pipeline:
            for _ in pipeline:
                bar.update(1)
                if source.live and bar.n % 30 == 0:
                    bar.set_postfix(dropped=pipeline.stats.dropped, refresh=False)
    except KeyboardInterrupt:
        bar.close()
        _report(pipeline, sinks, interrupted=True)
        raise
    except PipelineError as error:
        bar.close()
        _report(pipeline, sinks, interrupted=True)
        if isinstance(error.__cause__, UserError):
            raise InputError(str(error)) from error
        raise
    bar.close()
    _report(pipeline, sinks, interrupted=False)
    return 0


def _report(pipeline: Any, sinks: list[Any], interrupted: bool) -> None:
    lines = [pipeline.stats.table()]
    written = [str(sink.path) for sink in sinks if getattr(sink, "path", None) is not None]
    if written:
        state = "finalised after interruption" if interrupted else "wrote"
        lines.append(f"{state}: {', '.join(written)}")
    print("\n".join(lines), file=sys.stderr if interrupted else sys.stdout)  # noqa: T201
