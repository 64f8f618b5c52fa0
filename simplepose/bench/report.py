"""Presenting a benchmark report: the terminal table, ``bench.json`` and PNG plots."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from simplepose._files import atomic_write
from simplepose.bench.timing import device_label

#: The authors' published speeds (paper, section "Inference speed"): their grouping in pure
#: Python, one process on a Xeon E5-2620, and the 4-stage IMHN forward pass alone (512 x 512,
#: mixed precision, batched) on one RTX 2080 Ti.
AUTHORS: dict[str, Any] = {
    "grouping_fps": 5.2,
    "network_fps": 38.5,
    "network_device": "RTX 2080 Ti",
}


def _stage_label(name: str, values: dict[str, Any], report: dict[str, Any]) -> str:
    if name == "decode":
        source = report["source"]
        return f"decode ({source['width']}x{source['height']} {source['kind']})"
    if name == "preprocess":
        h, w = values.get("input_hw", ("?", "?"))
        return f"preprocess (-> {h}x{w})"
    if name.startswith("infer:"):
        backend = name.split(":", 1)[1]
        return f"infer {report['backends'][backend]['label']}"
    if name == "group:cpp":
        return f"group C++ ({values['people']} people)"
    if name == "group:numpy":
        return f"group NumPy reference ({values['people']})"
    if name == "render":
        return f"render ({values['people']} people)"
    if name == "encode":
        return f"encode ({values['codec']})"
    return name


def format_table(report: dict[str, Any]) -> str:
    """The report as a few aligned text tables and a closing explanation."""
    env, settings = report["environment"], report["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    weights = report["weights"]
    described = (
        f"{weights['preset']} preset, {weights['note']}"
        if weights["kind"] == "deterministic"
        else f"weights {weights['path']}"
    )
    lines = [
        f"simplepose bench on {device_label(env)}, torch threads {env.get('torch_threads')}",
        f"  {versions}",
        f"  {described}",
        f"  input height {settings['input_size']}, flip {'on' if settings['flip'] else 'off'}, "
        f"batch 1, {report['source']['frames']} frames",
        "  backend setup (not timed below): "
        + ", ".join(f"{name} {b['setup_s']:.1f} s" for name, b in report["backends"].items())
        + " (a checkpoint is exported to ONNX once, then cached)",
        "",
        f"{'stage':<36}{'median ms':>10}{'p95 ms':>9}{'FPS':>9}",
    ]
    for name, values in report["stages"].items():
        fps = 1e3 / values["median_ms"]
        lines.append(
            f"{_stage_label(name, values, report):<36}{values['median_ms']:>10.2f}"
            f"{values['p95_ms']:>9.2f}{fps:>9.1f}"
        )
    grouping = report["grouping"]
    lines += [
        "",
        f"grouping vs people (ground-truth heatmaps, {grouping['grid'][0]}x{grouping['grid'][1]}"
        " grid)",
        f"{'people':>6}{'found':>7}{'C++ ms':>9}{'p95':>8}{'NumPy ms':>10}{'speed-up':>10}",
    ]
    for row in grouping["by_people"]:
        lines.append(
            f"{row['people']:>6}{row['found']:>7.0f}{row['cpp']['median_ms']:>9.3f}"
            f"{row['cpp']['p95_ms']:>8.3f}{row['numpy']['median_ms']:>10.2f}"
            f"{row['speedup']:>9.0f}x"
        )
    lines.append(f"C++ over the NumPy reference: {grouping['speedup_over_reference']:.0f}x "
                 "(median over crowd sizes)")  # fmt: skip
    typical = report["stages"]["group:cpp"]
    lines.append(
        f"published by the authors: grouping {AUTHORS['grouping_fps']} FPS (pure Python, "
        f"full-resolution maps); here {1e3 / typical['median_ms']:.0f} FPS at "
        f"{typical['people']} people"
    )
    backends = list(report["backends"])
    sizes = sorted({row["input_size"] for row in report["inference_sweep"]})
    lines += [
        "",
        "network FPS vs input height",
        f"{'size':>6}" + "".join(f"{b:>14}" for b in backends),
    ]
    by_key = {(row["backend"], row["input_size"]): row for row in report["inference_sweep"]}
    for size in sizes:
        cells = "".join(
            f"{by_key[(b, size)]['fps']:>14.2f}" if (b, size) in by_key else f"{'-':>14}"
            for b in backends
        )
        lines.append(f"{size:>6}{cells}")
    lines.append(
        f"published by the authors: network {AUTHORS['network_fps']} FPS at 512 on an "
        f"{AUTHORS['network_device']} (4-stack IMHN, mixed precision, batched)"
    )
    pipeline, where = report["pipeline"], report["where_time_goes"]
    latency = pipeline["latency_ms"]
    lines += [
        "",
        f"threaded pipeline ({pipeline['backend']}): {pipeline['fps']:.2f} FPS, latency median "
        f"{latency['median']:.0f} ms, p95 {latency['p95']:.0f} ms ({pipeline['frames']} frames;"
        " a file source never drops frames, so latency includes waiting in the queues)",
        "where the time goes (per frame, inside the pipeline):",
    ]
    for name, ms in where["per_frame_ms"].items():
        lines.append(f"  {name:<10}{ms:>10.2f} ms {100 * where['share'][name]:>5.1f}%")
    lines.append(
        f"  stages overlap, so the slowest ({where['bottleneck']}) caps throughput at "
        f"{where['ceiling_fps']:.2f} FPS; measured {where['measured_fps']:.2f} FPS "
        f"({100 * where['measured_over_ceiling']:.0f}% of it; one stage after another: "
        f"{where['serial_fps']:.2f} FPS)"
    )
    if "live_view" in report:
        from simplepose.bench.live import format_live_view

        lines += format_live_view(report["live_view"])
    skipped = report.get("backends_skipped") or {}
    for name, reason in skipped.items():
        lines.append(f"skipped backend {name}: {reason}")
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the report atomically (a temporary file renamed into place)."""
    path = Path(path)
    with atomic_write(path) as file:
        json.dump(report, file, indent=2, allow_nan=False)
        file.write("\n")
    return path


#: The files ``make_plots`` writes.
PLOT_FILES: tuple[str, ...] = ("stages.png", "grouping.png", "input_size.png")


def make_plots(report: dict[str, Any], directory: str | os.PathLike[str]) -> list[Path]:
    """``stages.png``, ``grouping.png`` and ``input_size.png`` in ``directory``.

    Raises:
        ImportError: matplotlib is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    title = f"simplepose {report['environment']['versions'].get('simplepose', '')} on " + (
        device_label(report["environment"])
    )
    written = []

    # Per-stage medians with p95 whiskers, log scale: the network is 100-1000x the rest.
    names = list(report["stages"])
    labels = [_stage_label(n, report["stages"][n], report) for n in names]
    medians = [report["stages"][n]["median_ms"] for n in names]
    p95 = [report["stages"][n]["p95_ms"] for n in names]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(names) + 1.6))
    # Network red, the reference grouping grey (it is not in the pipeline), the rest blue.
    colours = [
        "tab:red" if n.startswith("infer") else "tab:grey" if n == "group:numpy" else "tab:blue"
        for n in names
    ]
    ax.barh(range(len(names)), medians, color=colours,
            xerr=[[0] * len(names), [max(0.0, p - m) for p, m in zip(p95, medians)]])  # fmt: skip
    for i, (value, high) in enumerate(zip(medians, p95)):
        ax.text(max(value, high) * 1.2, i, f"{value:.2f} ms", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(right=max(p95 + medians) * 8)
    ax.set_xlabel("milliseconds per frame (median, whisker to p95; log scale)")
    size = report["settings"]["input_size"]
    ax.set_title(f"Per-stage time, {_model_label(report)}, input {size}\n{title}", fontsize=10)
    fig.tight_layout()
    written.append(_save(fig, directory / "stages.png"))

    rows = report["grouping"]["by_people"]
    people = [row["people"] for row in rows]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(people, [r["cpp"]["median_ms"] for r in rows], "o-", label="C++ core")
    ax.plot(people, [r["numpy"]["median_ms"] for r in rows], "s--", label="NumPy reference")
    ax.axhline(1e3 / AUTHORS["grouping_fps"], color="grey", lw=1, ls=":",
               label=f"authors' Python ({AUTHORS['grouping_fps']} FPS)")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("people in the image")
    ax.set_ylabel("ms per image (median)")
    ax.set_title(f"Grouping time vs people ({rows[0]['people']}-{rows[-1]['people']}), "
                 f"{report['grouping']['grid'][0]}x{report['grouping']['grid'][1]} grid\n{title}",
                 fontsize=10)  # fmt: skip
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    written.append(_save(fig, directory / "grouping.png"))

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for backend in report["backends"]:
        points = sorted(
            (row["input_size"], row["fps"])
            for row in report["inference_sweep"]
            if row["backend"] == backend
        )
        ax.plot(*zip(*points), "o-", label=report["backends"][backend]["label"])
    ax.set_xlabel("input height (pixels)")
    ax.set_ylabel("network FPS (batch 1, median)")
    ax.set_title(f"Network speed vs input size, {_model_label(report)}\n{title}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    written.append(_save(fig, directory / "input_size.png"))
    return written


def _model_label(report: dict[str, Any]) -> str:
    weights = report["weights"]
    if weights["kind"] == "deterministic":
        return f"{weights['preset']} preset"
    return Path(weights["path"]).name


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def check_report(report: dict[str, Any]) -> list[str]:
    """Problems with a report's figures: every stage needs a positive, finite median and p95.

    Returns:
        One message per problem; empty when the report is complete.
    """
    problems = []

    def check(where: str, value: Any) -> None:
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            problems.append(f"{where} = {value!r}")

    for name, values in report.get("stages", {}).items():
        for key in ("median_ms", "p95_ms"):
            check(f"stages.{name}.{key}", values.get(key))
    for row in report.get("grouping", {}).get("by_people", []):
        check(f"grouping.{row['people']}.speedup", row.get("speedup"))
    check(
        "grouping.speedup_over_reference", report.get("grouping", {}).get("speedup_over_reference")
    )
    check("pipeline.fps", report.get("pipeline", {}).get("fps"))
    if "live_view" in report:
        for key in ("fps_alone", "fps_watched", "server_cpu_ms_per_frame"):
            check(f"live_view.{key}", report["live_view"].get(key))
    return problems
