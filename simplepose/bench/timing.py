"""Timing helpers shared by ``simplepose bench`` and the scripts in ``benchmarks/``."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any


def time_call(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; seconds per timed run."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def summarize(seconds: list[float]) -> dict[str, Any]:
    """``{"median_ms", "p95_ms", "n"}`` of timings given in seconds.

    p95 is the nearest-rank value of the sorted samples (with 5 samples: the largest), so it
    is always a time that was actually measured.
    """
    if not seconds:
        raise ValueError("no timings to summarize")
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": 1e3 * statistics.median(ordered), "p95_ms": 1e3 * p95, "n": len(ordered)}


def environment() -> dict[str, Any]:
    """Device, load and library versions to store next to the numbers."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
    }
    try:
        info["cpus"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        info["cpus"] = os.cpu_count()
    if hasattr(os, "getloadavg"):
        info["load_average_1min"] = os.getloadavg()[0]
    versions: dict[str, str] = {}
    for name in ("simplepose", "numpy", "torch", "onnxruntime", "cv2", "av", "tensorrt"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        versions[name] = str(getattr(module, "__version__", "?"))
    info["versions"] = versions
    info["gpu"] = None
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        import onnxruntime

        info["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        pass
    return info


def device_label(info: dict[str, Any]) -> str:
    """``"CPU (2 cores, x86_64)"`` or the GPU's name, for tables and plot titles."""
    if info.get("gpu"):
        return f"GPU {info['gpu']}"
    return f"CPU ({info.get('cpus', '?')} cores, {info.get('machine', '?')})"
