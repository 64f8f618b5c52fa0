"""Helpers shared by the benchmark scripts: the package's timing helpers and result files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simplepose.bench.timing import environment, summarize, time_call

RESULTS_DIR = Path(__file__).resolve().parent / "results"

__all__ = ["RESULTS_DIR", "environment", "save_results", "summarize", "time_call"]


def save_results(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` with the environment added."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"environment": environment(), **payload}, indent=2))
    return path
