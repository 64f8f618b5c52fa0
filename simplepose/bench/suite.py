"""The whole benchmark in one run: every stage, every backend available, the pipeline.

``run_bench(settings)`` returns the report (a JSON-ready dict, schema ``SCHEMA``); the
``simplepose bench`` command prints it as a table and saves it with plots (``report``).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simplepose.bench import stages
from simplepose.bench.synthetic import WalkingPeople, write_walking_video
from simplepose.bench.timing import environment
from simplepose.errors import InputError
from simplepose.inference.backends import backend_label, describe_backend

_logger = logging.getLogger(__name__)

SCHEMA = "simplepose-bench/1"
#: Backends in order of preference; the pipeline runs on the fastest one measured.
BACKEND_ORDER: tuple[str, ...] = ("tensorrt", "onnxruntime", "torch")
SYNTHETIC_SIZE = (640, 480)
SYNTHETIC_PEOPLE = 5
DETERMINISTIC_NOTE = (
    "deterministic weights (seed 0): speed does not depend on the weight values, but the "
    "poses found are meaningless"
)


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    """What ``run_bench`` measures.

    Attributes:
        weights: a checkpoint, ``.onnx`` or engine (or a weights name); ``None``: the
            ``preset`` architecture with deterministic weights.
        preset: architecture when ``weights`` is ``None`` (``ModelConfig.presets()``).
        backends: backends to measure; empty: every backend usable here.
        input_size: network input height for the stage table and the pipeline.
        size_sweep: input heights of the FPS-vs-input-size curve.
        source: video (or any ``open_source`` spec) to decode and run; ``None``: a synthetic
            640 x 480 H.264 video of 5 walking figures.
        frames: frames decoded and run through the pipeline.
        repeats: timed network calls per backend at ``input_size`` (sweep: ``max(2, r//2)``).
        flip: flip test (doubles the network's batch).
        threads: CPU threads for torch and ONNX Runtime; ``None``: the libraries' default.
        people: crowd sizes of the grouping sweep.
        live_clients: pages watching the browser live view in its measurement (0: skip it).
    """

    weights: str | None = None
    preset: str = "small"
    backends: tuple[str, ...] = ()
    input_size: int = 256
    size_sweep: tuple[int, ...] = (128, 256, 384)
    source: str | None = None
    frames: int = 100
    repeats: int = 5
    flip: bool = False
    threads: int | None = None
    people: tuple[int, ...] = (1, 5, 10, 20, 40)
    live_clients: int = 4

    def __post_init__(self) -> None:
        for name in ("input_size", "frames", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.live_clients < 0:
            raise ValueError(f"live_clients must be >= 0, got {self.live_clients}")
        sizes = (self.input_size, *self.size_sweep)
        if any(size < 64 for size in sizes):
            raise ValueError(f"input sizes must be >= 64, got {sizes}")
        if not self.people or min(self.people) < 1:
            raise ValueError(f"people counts must be >= 1, got {self.people}")
        unknown = set(self.backends) - set(BACKEND_ORDER)
        if unknown:
            raise ValueError(f"unknown backends {sorted(unknown)}; choose from {BACKEND_ORDER}")


def usable_backends() -> list[str]:
    """The backends that can run here, in ``BACKEND_ORDER``."""
    from simplepose.inference.estimator import _tensorrt_usable

    usable = []
    if _tensorrt_usable():
        usable.append("tensorrt")
    try:
        import onnxruntime  # noqa: F401

        usable.append("onnxruntime")
    except ImportError:
        pass
    usable.append("torch")
    return usable


def _load_network(settings: BenchSettings) -> tuple[Any, dict[str, Any]]:
    """The model (an ``IMHN``, or a path for ``.onnx`` / engines) and how it was obtained."""
    import torch

    from simplepose.model import build_model, load_checkpoint, resolve_weights

    if settings.weights is None:
        torch.manual_seed(0)
        model = build_model(settings.preset).eval()
        return model, {"kind": "deterministic", "preset": settings.preset,
                       "config": model.config.to_dict(), "note": DETERMINISTIC_NOTE}  # fmt: skip
    path = resolve_weights(settings.weights)
    if path.suffix.lower() in (".onnx", ".engine", ".plan", ".trt"):
        return path, {"kind": "file", "path": str(path)}
    model = load_checkpoint(path)
    return model, {"kind": "file", "path": str(path), "config": model.config.to_dict()}


def _make_backends(
    network: Any, names: list[str], threads: int | None, log: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, float], dict[str, str]]:
    """Build each backend; returns backends, seconds to build each, and skip reasons."""
    from simplepose.inference.estimator import make_backend

    built: dict[str, Any] = {}
    setup_s: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for name in names:
        log(f"building the {name} backend" + (" (exports ONNX once, cached)" if name != "torch"
            else ""))  # fmt: skip
        start = time.perf_counter()
        try:
            built[name] = make_backend(network, name, threads=threads)
        except (ValueError, ImportError) as error:
            skipped[name] = str(error).splitlines()[0]
            log(f"  skipped {name}: {skipped[name]}")
            continue
        setup_s[name] = time.perf_counter() - start
        log(f"  {describe_backend(built[name])}")
    if not built:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in skipped.items())
        raise InputError(f"no backend can run these weights ({reasons})")
    return built, setup_s, skipped


def run_bench(
    settings: BenchSettings,
    log: Callable[[str], None] = _logger.info,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Measure every stage and the threaded pipeline; returns the report dict.

    Args:
        settings: what to measure.
        log: receives one line per step (the command prints them).
        progress: ``progress(done, total)`` while the pipeline runs.

    Raises:
        InputError: no backend can run the weights; the source cannot be opened or decoded.
        WeightsNotFoundError, WeightsDownloadError: ``settings.weights`` cannot be found.
    """
    import torch

    threads_before = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        return _measure_all(settings, log, progress)
    finally:
        torch.set_num_threads(threads_before)  # leave the caller's process as it was


def _measure_all(
    settings: BenchSettings,
    log: Callable[[str], None],
    progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    started = time.perf_counter()
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(settings).items()
        },  # fmt: skip
        "environment": environment(),
    }
    with tempfile.TemporaryDirectory(prefix="simplepose-bench-") as tmp:
        scene: WalkingPeople | None = None
        source = settings.source
        if source is None:
            width, height = SYNTHETIC_SIZE
            source = str(Path(tmp) / "synthetic.mp4")
            log(f"writing a synthetic {width}x{height} video ({settings.frames} frames)")
            scene = write_walking_video(
                source, settings.frames, width, height, people=SYNTHETIC_PEOPLE
            )

        log("decode")
        decode_stats, frames = stages.measure_decode(source, settings.frames)
        height, width = frames[0].image.shape[:2]
        report["source"] = {
            "kind": "synthetic" if scene is not None else "file",
            "path": None if scene is not None else str(source),
            "width": width,
            "height": height,
            "frames": decode_stats["frames"],
            "people": SYNTHETIC_PEOPLE if scene is not None else None,
        }
        config = stages.inference_config(settings.input_size, settings.flip)
        log("preprocess")
        stage_table: dict[str, Any] = {
            "decode": decode_stats,
            "preprocess": stages.measure_preprocess(frames, config),
        }

        network, weights_info = _load_network(settings)
        report["weights"] = weights_info
        names = list(settings.backends) or usable_backends()
        names = [name for name in BACKEND_ORDER if name in names]
        backends, setup_s, skipped = _make_backends(network, names, settings.threads, log)
        report["backends"] = {
            name: {
                "label": backend_label(backend),
                "describe": describe_backend(backend),
                "setup_s": setup_s[name],
            }
            for name, backend in backends.items()
        }
        report["backends_skipped"] = skipped

        image = frames[0].image
        sweep: list[dict[str, Any]] = []
        for name, backend in backends.items():
            log(f"infer {name} at {settings.input_size}")
            main = stages.measure_inference(backend, image, config, settings.repeats)
            stage_table[f"infer:{name}"] = main
            for size in sorted(set(settings.size_sweep) | {settings.input_size}):
                if size == settings.input_size:
                    row = main
                else:
                    log(f"infer {name} at {size}")
                    # Fewer runs off the main size: the curve's shape matters, not 1 %.
                    row = stages.measure_inference(
                        backend, image, stages.inference_config(size, settings.flip),
                        max(2, settings.repeats // 2), warmup=1,
                    )  # fmt: skip
                sweep.append({"backend": name, "input_size": size, **row})
        report["inference_sweep"] = sweep

        log(f"group: C++ vs NumPy reference, crowds of {list(settings.people)} people")
        grouping = stages.measure_grouping(settings.people, settings.repeats)
        report["grouping"] = grouping
        typical = min(grouping["by_people"], key=lambda row: abs(row["people"] - 10))
        stage_table["group:cpp"] = {**typical["cpp"], "people": typical["people"]}
        stage_table["group:numpy"] = {**typical["numpy"], "people": typical["people"]}

        log("render and encode")
        stage_table.update(stages.measure_render_encode(frames, stages.scene_poses(frames, scene)))
        report["stages"] = stage_table

        fastest = min(backends, key=lambda name: stage_table[f"infer:{name}"]["median_ms"])
        from simplepose.inference import PoseEstimator

        estimator = PoseEstimator(backends[fastest], config=config)
        for _ in range(2):  # warm-up outside the timed run
            estimator.group(estimator.infer(image))
        total = decode_stats["frames"]
        log(f"threaded pipeline on {fastest}, {total} frames")
        pipeline = stages.measure_pipeline(
            source, estimator, total,
            progress=(lambda index: progress(index + 1, total)) if progress else None,
        )  # fmt: skip
        pipeline["backend"] = fastest
        report["pipeline"] = pipeline
        if settings.live_clients > 0:
            from simplepose.bench.live import measure_live_view

            # Phases of about 2 s (6 frames to half of --frames), 6 rounds of "none, watched".
            phase = max(6, min(round(2 * pipeline["fps"]), settings.frames // 2))
            log(f"live view: {12 * phase} frames, {phase}-frame phases of no client / "
                f"{settings.live_clients} pages watching")  # fmt: skip
            report["live_view"] = measure_live_view(
                [frame.image for frame in frames], estimator, settings.live_clients, phase
            )
    report["where_time_goes"] = explain(report)
    report["elapsed_s"] = time.perf_counter() - started
    return report


def explain(report: dict[str, Any]) -> dict[str, Any]:
    """Per-frame work of the pipeline's stages, their shares and the throughput ceiling.

    Stages run in their own threads, so throughput is bounded by the slowest stage
    (``ceiling_fps``), not by the sum; on a machine with fewer cores than busy stages the
    sum matters too (``serial_fps``: every stage one after another).
    """
    stage_ms = {
        name: values["median"]
        for name, values in report["pipeline"]["stages_ms"].items()
        if values["samples"]
    }
    total = sum(stage_ms.values())
    slowest = max(stage_ms, key=stage_ms.__getitem__)
    measured = report["pipeline"]["fps"]
    ceiling = 1e3 / stage_ms[slowest]
    return {
        "per_frame_ms": stage_ms,
        "share": {name: ms / total for name, ms in stage_ms.items()},
        "bottleneck": slowest,
        "ceiling_fps": ceiling,
        "serial_fps": 1e3 / total,
        "measured_fps": measured,
        "measured_over_ceiling": measured / ceiling,
    }
