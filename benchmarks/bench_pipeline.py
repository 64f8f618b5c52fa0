"""Threaded vs sequential pipeline on a real video: per-stage medians and end-to-end FPS.

Runs the same stages (capture/decode, infer, group, track + smooth, render, video encode)
once one after another in one thread and once with a thread per stage, on the same frames,
and prints the per-stage median / p95 ms, end-to-end FPS of both and their ratio. The
model is a randomly initialised preset (``nano`` by default) loaded through
``simplepose.inference.PoseEstimator``, so timings are real but the poses are not.

    python benchmarks/bench_pipeline.py --preset nano --input-size 256 --frames 150

``--dry-run`` replaces the estimator by a stand-in that sleeps (to check the harness when
no estimator is available); its numbers say nothing about the model.

Writes ``benchmarks/results/bench_pipeline-<time>.json`` (device, versions, config, numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from simplepose.bench.stages import measure_pipeline
from simplepose.bench.timing import environment
from simplepose.config import ModelConfig
from simplepose.pipeline import open_source
from simplepose.types import Poses

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VIDEO = "mmaction2_test_video_structuralize.mp4"


def _default_video() -> Path:
    shared = Path(os.environ.get("SIMPLEPOSE_TEST_DATA", ROOT.parent / "shared"))
    return shared / "data" / "videos" / DEFAULT_VIDEO


class _StandIn:
    """Dry-run estimator: sleeps like a small CPU model (infer) and a grouping pass."""

    def __init__(self, infer_ms: float = 20.0, group_ms: float = 2.0) -> None:
        self.infer_s, self.group_s = infer_ms / 1e3, group_ms / 1e3

    def infer(self, image: np.ndarray) -> Any:
        time.sleep(self.infer_s)
        return image.shape

    def group(self, shape: Any) -> Poses:
        time.sleep(self.group_s)
        keypoints = np.full((2, 17, 3), 0.5, np.float32)
        keypoints[:, :, 0] = np.linspace(0.2, 0.4, 17) * shape[1]
        keypoints[:, :, 1] = np.linspace(0.2, 0.8, 17) * shape[0]
        keypoints[1, :, 0] += 0.3 * shape[1]
        return Poses(keypoints, np.array([0.9, 0.8], np.float32))


def _estimator(args: argparse.Namespace, workdir: Path) -> Any:
    if args.dry_run:
        return _StandIn()
    import torch

    from simplepose.inference import PoseEstimator
    from simplepose.model import build_model, save_checkpoint

    torch.manual_seed(0)
    weights = workdir / f"{args.preset}.pth"
    save_checkpoint(build_model(ModelConfig.preset(args.preset)), weights)
    return PoseEstimator(
        str(weights), backend=args.backend, input_size=args.input_size, flip=args.flip
    )


def _run(args: argparse.Namespace, estimator: Any, threaded: bool) -> dict:
    return measure_pipeline(
        str(args.video),
        estimator,
        args.frames,
        threaded=threaded,
        render=not args.no_render,
        encode=not args.no_output,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=_default_video())
    parser.add_argument("--preset", default="nano", choices=ModelConfig.presets())
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--frames", type=int, default=150, help="frames per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed estimator calls first")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=3, help="runs per mode (median kept)")
    parser.add_argument("--no-render", action="store_true")
    parser.add_argument("--no-output", action="store_true", help="no video encoding")
    parser.add_argument("--dry-run", action="store_true", help="sleeping stand-in estimator")
    args = parser.parse_args()
    if not args.video.is_file():
        print(f"video not found: {args.video}", file=sys.stderr)
        return 2

    import torch

    # One intra-op thread: the pipeline's own threads (decode, encode, grouping) need the
    # other core; with 2 OpenMP threads on a busy 2-core machine infer was 6-10x slower
    # (spin-waiting), and the OpenMP setting is per calling thread anyway.
    torch.set_num_threads(args.torch_threads)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        estimator = _estimator(args, workdir)
        first = next(iter(open_source(args.video))).image
        for _ in range(args.warmup):
            estimator.group(estimator.infer(first))
        # Alternate the two modes so that load from other processes hits both alike.
        runs: dict[str, list[dict]] = {"sequential": [], "threaded": []}
        for _ in range(args.repeats):
            runs["sequential"].append(_run(args, estimator, False))
            runs["threaded"].append(_run(args, estimator, True))
    # Report the run with the median FPS of each mode.
    sequential, threaded = (
        sorted(runs[mode], key=lambda r: r["fps"])[len(runs[mode]) // 2]
        for mode in ("sequential", "threaded")
    )

    print(f"video {args.video.name}, {args.frames} frames, preset {args.preset}, "
          f"input {args.input_size}, backend {args.backend}, flip {args.flip}"
          f"{' (DRY RUN: stand-in estimator)' if args.dry_run else ''}")  # fmt: skip
    print(f"{'stage':<10}{'seq median':>12}{'seq p95':>10}{'thr median':>12}{'thr p95':>10}  ms")
    for stage in sequential["stages_ms"]:
        s = sequential["stages_ms"][stage]
        t = threaded["stages_ms"].get(stage, {"median": float("nan"), "p95": float("nan")})
        print(f"{stage:<10}{s['median']:>12.2f}{s['p95']:>10.2f}"
              f"{t['median']:>12.2f}{t['p95']:>10.2f}")  # fmt: skip
    for name, summary in (("sequential", sequential), ("threaded", threaded)):
        latency = summary["latency_ms"]
        print(f"{name:<10} {summary['fps']:7.2f} FPS  latency median {latency['median']:.1f} "
              f"ms p95 {latency['p95']:.1f} ms  ({summary['frames']} frames)")  # fmt: skip
    for mode, summaries in runs.items():
        per_run = ", ".join(f"{r['fps']:.2f}" for r in summaries)
        print(f"{mode:<10} FPS per run: {per_run}")
    ratio = threaded["fps"] / sequential["fps"] if sequential["fps"] else float("nan")
    print(f"threaded / sequential FPS (median runs): {ratio:.2f}x")

    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "bench_pipeline",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "environment": environment(),
        "config": {
            "video": args.video.name,
            "frames": args.frames,
            "preset": args.preset,
            "model": ModelConfig.preset(args.preset).to_dict(),
            "backend": args.backend,
            "input_size": args.input_size,
            "flip": args.flip,
            "render": not args.no_render,
            "video_output": not args.no_output,
            "dry_run": args.dry_run,
        },
        "repeats": args.repeats,
        "fps_per_run": {mode: [r["fps"] for r in rs] for mode, rs in runs.items()},
        "sequential": sequential,
        "threaded": threaded,
        "threaded_over_sequential_fps": ratio,
    }
    path = results / f"bench_pipeline-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(record, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
