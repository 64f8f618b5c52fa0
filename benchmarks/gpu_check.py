"""The GPU check: tests, network speed, bench, a timed run and a short training, in one command.

    python benchmarks/gpu_check.py            # on a machine with a CUDA GPU; no arguments

On a CUDA machine it

1. builds the C++ extension in place if it is not importable yet;
2. runs the ``gpu``-marked tests;
3. times the network alone (released architecture, deterministic weights, fp16 channels-last)
   eagerly and replayed from a CUDA graph, batch 1 and 2, 512 x 512 and 512 x 960;
4. runs ``simplepose bench --preset released --backend torch --input-size 512 --flip`` on a
   shared video;
5. times ``simplepose run`` on that video (300 frames, flip, batch 1 and ``--batch 8``) and
   compares its frames/s with the CUDA-graph network alone at the same input (target:
   >= 0.75 x) and batch 8 with batch 1 (target: >= 1.5 x);
6. trains the nano preset for a few steps on real images (mixed precision ``auto`` and fp16):
   the loss must fall and the gradient scaler must not skip steps;
7. runs the whole test suite (``-m "not slow"``), last, in the time left.

It prints one table and writes ``benchmarks/results/gpu_check.json`` (GPU, versions, every
figure; also copied to ``$OUT`` when that is set), after every step, so a run cut short keeps
what it measured. The exit code is 1 when a GPU test fails, else 0. Without CUDA it says so
and exits 0. PyAV may be missing on such machines: the video is then decoded with OpenCV
into a folder of frames, which ``simplepose run`` reads as an image folder.

``--cpu-smoke`` runs the same steps on the CPU with the nano preset and a few frames, to
check this script on a machine without a GPU (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VIDEO = "mmaction2_test_video_structuralize.mp4"  # 300 frames, 426 x 240: 512 x 960 input
SHAPES = ((1, 512, 512), (2, 512, 512), (1, 512, 960), (2, 512, 960))
FPS_LINE = re.compile(r"(\d+) frames in ([\d.]+) s \(([\d.]+) FPS\)")
COUNTS = re.compile(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)")


class Check:
    """Collects the figures, writes them after every step, prints the table at the end."""

    def __init__(self, output: Path, smoke: bool, deadline: float) -> None:
        self.output = output
        self.smoke = smoke
        self.deadline = deadline
        self.report: dict[str, Any] = {"smoke": smoke, "steps": {}}
        self.started = time.perf_counter()

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def step(self, name: str, values: dict[str, Any]) -> None:
        self.report["steps"][name] = values
        self.save()
        print(f"[{time.perf_counter() - self.started:6.1f} s] {name}: done", flush=True)

    def save(self) -> None:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.output.write_text(json.dumps(self.report, indent=2))
        if os.environ.get("OUT"):
            shutil.copy(self.output, Path(os.environ["OUT"]) / self.output.name)


def _environment(device: str) -> dict[str, Any]:
    import torch

    from simplepose.bench.timing import environment

    info = environment()
    info["device"] = device
    info["torch_cuda"] = torch.version.cuda
    info["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["gpu_capability"] = f"{props.major}.{props.minor}"
    return info


def _ensure_extension() -> dict[str, Any]:
    try:
        import simplepose._C  # noqa: F401

        return {"built": False}
    except ImportError:
        pass
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"building the C++ extension failed:\n{done.stderr[-3000:]}")
    return {"built": True, "seconds": time.perf_counter() - start}


def _pytest(marker: str, timeout: float, parallel: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", marker]
    command += ["-rfE"]
    if _has_module("pytest_timeout"):
        command += ["--timeout", "600"]
    if parallel and _has_module("xdist"):
        command += ["-n", str(min(8, os.cpu_count() or 1))]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=max(timeout, 30)
        )
    except subprocess.TimeoutExpired as error:
        output = error.stdout or ""
        tail = output.decode(errors="replace") if isinstance(output, bytes) else output
        return {"timed_out": True, "seconds": timeout, "tail": tail[-2000:]}
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    counts = {kind.rstrip("s"): int(n) for n, kind in COUNTS.findall(summary)}
    failures = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return {
        "returncode": done.returncode,
        "seconds": time.perf_counter() - start,
        "counts": counts,
        "failures": failures[:50],
        "summary": summary,
    }


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _network(device: str, preset: str, shapes: tuple[tuple[int, int, int], ...]) -> list[dict]:
    """Network alone (``predict`` on a device tensor), eager vs replayed from a CUDA graph."""
    import torch

    from simplepose.bench.timing import summarize
    from simplepose.inference.cuda_graphs import GraphCache
    from simplepose.model import build_model

    torch.manual_seed(0)
    cuda = device == "cuda"
    dtype = torch.float16 if cuda else torch.float32
    model = build_model(preset).eval().to(device, dtype)
    if cuda:
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    repeats = 30 if cuda else 2

    def timed(function: Any, x: Any) -> dict[str, Any]:
        for _ in range(3):  # warm-up; for the graph: eager, capture, replay
            function(x)
        times = []
        for _ in range(repeats):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            function(x)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return summarize(times)

    rows = []
    with torch.inference_mode():
        for batch, height, width in shapes:
            x = torch.rand(batch, 3, height, width, device=device).to(dtype)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            eager = timed(model.predict, x)
            row: dict[str, Any] = {"batch": batch, "input_hw": [height, width]}
            row["eager_ms"] = eager["median_ms"]
            if cuda:
                graph = timed(GraphCache(model.predict), x)
                row["graph_ms"] = graph["median_ms"]
                row["graph_speedup"] = eager["median_ms"] / graph["median_ms"]
            # Batch 2 is one frame with its mirror (flip test): frames/s = calls/s either way.
            row["frames_per_s"] = 1e3 / row.get("graph_ms", row["eager_ms"])
            rows.append(row)
    del model
    if cuda:
        torch.cuda.empty_cache()
    return rows


def _source(data: Path, frames: int, folder: Path) -> tuple[str, str]:
    """The shared video, or (without PyAV) its first ``frames`` frames as JPEG files."""
    video = data / "videos" / VIDEO
    if _has_module("av"):
        return str(video), "video"
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    capture = cv2.VideoCapture(str(video))
    count = 0
    while count < frames:
        ok, image = capture.read()
        if not ok:
            break
        cv2.imwrite(str(folder / f"{count:06d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        count += 1
    capture.release()
    if count == 0:
        raise SystemExit(f"OpenCV could not decode {video} and PyAV is missing")
    return str(folder), f"image folder of {count} frames (PyAV missing)"


def _simplepose(args: list[str], timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "simplepose", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=max(timeout, 30),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    return done, time.perf_counter() - start


def _timed_run(source: str, weights: Path, frames: int, batch: int, size: int, timeout: float,
               out: Path) -> dict[str, Any]:  # fmt: skip
    """``simplepose run SOURCE --flip --batch N``: its own FPS line and stage table."""
    tracks = out / f"tracks_batch{batch}.jsonl"
    done, wall = _simplepose(
        ["run", source, "--weights", str(weights), "--backend", "torch", "--flip",
         "--input-size", str(size), "--max-frames", str(frames), "--batch", str(batch),
         "--json", str(tracks), "--no-progress"],
        timeout,
    )  # fmt: skip
    row: dict[str, Any] = {"batch": batch, "returncode": done.returncode, "wall_s": wall}
    lines = [line for line in done.stderr.splitlines() if line.startswith("backend ")]
    row["backend_line"] = lines[0] if lines else ""
    match = FPS_LINE.search(done.stdout)
    if done.returncode != 0 or match is None:
        row["error"] = done.stderr[-2000:]
        return row
    row["frames"], row["seconds"], row["fps"] = int(match[1]), float(match[2]), float(match[3])
    stages = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].isalpha() and parts[0] != "stage":
            stages[parts[0]] = {"median_ms": float(parts[1]), "p95_ms": float(parts[2])}
    row["stages"] = stages
    people = [len(json.loads(line)["persons"]) for line in tracks.read_text().splitlines()]
    row["people_per_frame_median"] = sorted(people)[len(people) // 2] if people else 0
    return row


def _training(device: str, data: Path) -> list[dict[str, Any]]:
    import torch

    from simplepose.config import AugmentConfig, ModelConfig, TrainConfig
    from simplepose.training.loop import train

    rows = []
    for amp in ("auto", "fp16") if device == "cuda" else ("off",):
        config = TrainConfig(
            epochs=100, batch_size=2, lr=1e-3, optimizer="adamw", weight_decay=0.0,
            warmup_epochs=0.0, lr_step_epochs=0, crop_size=128, workers=0, log_every=1,
            seed=1, max_steps=10, amp=amp,
        )  # fmt: skip
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as output:
            result = train(
                config, data / "coco_people" / "person_keypoints.json",
                data / "coco_people" / "images", output, model_config=ModelConfig.preset("nano"),
                augment=AugmentConfig.off(), image_ids=(785, 30752), device=device,
                progress=False,
            )  # fmt: skip
        losses = [round(r["loss"], 4) for r in result.history]
        rows.append({
            "amp": amp,
            "dtype": str({"auto": torch.bfloat16 if device == "cuda"
                          and torch.cuda.is_bf16_supported() else torch.float16,
                          "fp16": torch.float16, "off": torch.float32}[amp]),
            "steps": result.step, "losses": losses, "scaler_skips": result.scaler_skips,
            "loss_falls": losses[-1] < 0.8 * losses[0], "seconds": time.perf_counter() - start,
        })  # fmt: skip
    return rows


def _table(report: dict[str, Any]) -> str:
    steps = report["steps"]
    env = report.get("environment", {})
    lines = [f"GPU check on {env.get('gpu') or 'CPU (smoke run)'}, torch "
             f"{env.get('versions', {}).get('torch')}, CUDA {env.get('torch_cuda')}"]  # fmt: skip
    for name in ("gpu_tests", "suite"):
        if name in steps:
            s = steps[name]
            lines.append(f"{name:<22}{s.get('summary') or s}")
    for row in steps.get("network", []):
        graph = row.get("graph_ms")
        lines.append(
            f"network b{row['batch']} {row['input_hw'][0]}x{row['input_hw'][1]:<6}"
            f"eager {row['eager_ms']:7.2f} ms"
            + (f"  graph {graph:7.2f} ms  x{row['graph_speedup']:.2f}" if graph else "")
        )
    if "bench" in steps:
        bench = steps["bench"]
        fps = bench.get("pipeline_fps")
        lines.append(f"{'bench pipeline':<22}" + (f"{fps:.1f} FPS" if fps else str(bench)))
    for row in steps.get("run", []):
        fps = row.get("fps", row.get("error", "?"))
        lines.append(f"run --batch {row['batch']:<10}{fps} FPS  ({row.get('backend_line', '')})")
    for name, value in steps.get("targets", {}).items():
        lines.append(f"{name:<40}{value}")
    for row in steps.get("training", []):
        lines.append(
            f"train nano amp {row['amp']:<8}{row['dtype']:<16}losses {row['losses'][0]} -> "
            f"{row['losses'][-1]}, scaler skips {row['scaler_skips']}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/gpu_check.json")
    parser.add_argument("--cpu-smoke", action="store_true", help="check this script on the CPU")
    parser.add_argument("--skip-suite", action="store_true", help="do not run the whole suite")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for everything")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available() and not args.cpu_smoke:
        print(f"no CUDA GPU here (torch {torch.__version__} sees none): nothing to check")
        return 0
    device = "cpu" if args.cpu_smoke else "cuda"
    smoke = args.cpu_smoke
    check = Check(args.output, smoke, time.perf_counter() + args.budget)
    check.report["environment"] = _environment(device)
    check.step("extension", _ensure_extension())
    data = Path(os.environ.get("SIMPLEPOSE_TEST_DATA", ROOT.parent / "shared")) / "data"

    gpu_tests = _pytest("gpu", timeout=min(300, check.left()), parallel=False)
    check.step("gpu_tests", gpu_tests)
    preset = "nano" if smoke else "released"
    shapes = ((1, 128, 128), (2, 128, 192)) if smoke else SHAPES
    check.step("network", _network(device, preset, shapes))

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        from simplepose.model import build_model, save_checkpoint

        torch.manual_seed(0)
        weights = save_checkpoint(build_model(preset), tmp / f"{preset}.pth")
        frames, size = (12, 128) if smoke else (300, 512)
        source, kind = _source(data, frames, tmp / "frames")
        done, wall = _simplepose(
            ["bench", "--weights", str(weights), "--backend", "torch", "--input-size",
             str(size), "--sizes", str(size), "--flip", "--source", source, "--frames",
             str(min(frames, 100)), "--output-dir", str(tmp / "bench")],
            min(300, check.left()),
        )  # fmt: skip
        bench: dict[str, Any] = {"returncode": done.returncode, "wall_s": wall, "source": kind}
        if done.returncode == 0:
            saved = json.loads((tmp / "bench" / "bench.json").read_text())
            bench["pipeline_fps"] = saved["pipeline"]["fps"]
            bench["stages"] = saved["stages"]
            bench["pipeline"] = saved["pipeline"]
        else:
            bench["error"] = done.stderr[-2000:]
        check.step("bench", bench)
        runs = [
            _timed_run(source, weights, frames, batch, size, min(300, check.left()), tmp)
            for batch in (1, 8)
        ]
        check.step("run", runs)

    targets: dict[str, Any] = {}
    network = {(r["batch"], *r["input_hw"]): r for r in check.report["steps"]["network"]}
    flip_shape = (2, 512, 960) if not smoke else (2, 128, 192)
    if flip_shape in network and "fps" in runs[0]:
        network_fps = 1e3 / network[flip_shape].get("graph_ms", network[flip_shape]["eager_ms"])
        targets["run fps / graph network fps (>= 0.75)"] = round(runs[0]["fps"] / network_fps, 3)
    if all("fps" in r for r in runs):
        targets["batch 8 / batch 1 fps (>= 1.5)"] = round(runs[1]["fps"] / runs[0]["fps"], 3)
    check.step("targets", targets)
    check.step("training", _training(device, data))
    if not args.skip_suite:
        check.step("suite", _pytest("not slow", timeout=check.left() - 10, parallel=True))
    print(_table(check.report))
    print(f"wrote {args.output}")
    failed = gpu_tests.get("returncode", 1) not in (0, 5)  # 5: no tests collected
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
