"""CPU latency of the IMHN: ``model(x)`` (all stacks, all scales) vs ``model.predict(x)``.

    python benchmarks/bench_model.py [--preset released] [--sizes 256 512] [--repeats 5]

Prints the median milliseconds per forward pass for both calls and their ratio, measured in
the same run, and saves ``benchmarks/results/bench_model.json``.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import save_results, summarize, time_call
from simplepose.model import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="released")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = build_model(args.preset).eval()
    rows = []
    print(f"preset {args.preset}, {torch.get_num_threads()} threads, batch 1, float32, CPU")
    print(f"{'size':>6} {'model(x) ms':>12} {'predict ms':>11} {'ratio':>6}")
    with torch.inference_mode():
        for size in args.sizes:
            x = torch.rand(1, 3, size, size)
            full = summarize(time_call(lambda: model(x), args.repeats))
            pred = summarize(time_call(lambda: model.predict(x), args.repeats))
            ratio = full["median_ms"] / pred["median_ms"]
            rows.append({"size": size, "forward": full, "predict": pred, "ratio": ratio})
            print(f"{size:>6} {full['median_ms']:>12.1f} {pred['median_ms']:>11.1f} {ratio:>6.2f}")
    path = save_results(
        "bench_model",
        {"preset": args.preset, "config": model.config.to_dict(), "rows": rows},
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
