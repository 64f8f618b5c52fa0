"""Benchmarks of every stage: ``simplepose bench`` and the scripts in ``benchmarks/``.

``run_bench(BenchSettings(...))`` measures decode, preprocess, the network per backend and
input size, grouping (C++ vs the NumPy reference, vs crowd size), render and encode, and
the threaded pipeline end to end; ``format_table`` / ``report.write_json`` /
``report.make_plots`` present the result. ``timing`` and ``synthetic`` hold the pieces the
scripts share.
"""

from __future__ import annotations

from simplepose.bench.report import check_report, format_table, make_plots, write_json
from simplepose.bench.suite import SCHEMA, BenchSettings, run_bench, usable_backends

__all__ = [
    "SCHEMA",
    "BenchSettings",
    "check_report",
    "format_table",
    "make_plots",
    "run_bench",
    "usable_backends",
    "write_json",
]
