"""CPU latency of the IMHN, measured in one run:

1. ``model(x)`` (all stacks, all scales) vs ``model.predict(x)`` (what inference needs);
2. per backend: torch (``predict``) vs ONNX Runtime (the exported graph), same input.

    python -m benchmarks.bench_model [--presets small released] [--sizes 256 512] [--repeats 5]

Prints median milliseconds (batch 1, float32) and ratios; saves
``benchmarks/results/bench_model.json``. Weights are deterministic random values: latency
does not depend on them.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import save_results, summarize, time_call
from simplepose.export.onnx import export_onnx
from simplepose.inference.backends import OnnxRuntimeBackend, TorchBackend
from simplepose.model import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "released"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (both)")
    parser.add_argument("--skip-forward", action="store_true", help="skip model(x) vs predict")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    rows = []
    print(f"CPU, batch 1, float32, {threads} threads; median ms over {args.repeats} runs")
    header = f"{'preset':>9} {'size':>5} {'model(x)':>9} {'predict':>8} {'fwd/pred':>8}"
    header += f" {'torch':>8} {'ORT':>8} {'torch/ORT':>9}"
    print(header)
    for preset in args.presets:
        model = build_model(preset).eval()
        torch_backend = TorchBackend(model, device="cpu")
        with tempfile.TemporaryDirectory() as tmp:
            onnx_path = export_onnx(
                model, Path(tmp) / f"{preset}.onnx", input_size=256, exporter="torchscript"
            )
            ort_backend = OnnxRuntimeBackend(onnx_path, providers=["cpu"], threads=threads)
        for size in args.sizes:
            x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
            row: dict = {"preset": preset, "size": size}
            if not args.skip_forward:
                tensor = torch.from_numpy(x)
                with torch.inference_mode():
                    row["forward"] = summarize(time_call(lambda: model(tensor), args.repeats))  # noqa: B023 - called at once
            row["torch"] = summarize(time_call(lambda: torch_backend.infer(x), args.repeats))  # noqa: B023
            row["onnxruntime"] = summarize(time_call(lambda: ort_backend.infer(x), args.repeats))  # noqa: B023
            torch_ms, ort_ms = row["torch"]["median_ms"], row["onnxruntime"]["median_ms"]
            row["torch_over_ort"] = torch_ms / ort_ms
            forward = ""
            if "forward" in row:
                fwd_ms = row["forward"]["median_ms"]
                row["forward_over_predict"] = fwd_ms / torch_ms
                forward = f"{fwd_ms:>9.1f} {torch_ms:>8.1f} {fwd_ms / torch_ms:>8.2f}"
            else:
                forward = f"{'-':>9} {torch_ms:>8.1f} {'-':>8}"
            print(
                f"{preset:>9} {size:>5} {forward} {torch_ms:>8.1f} {ort_ms:>8.1f} "
                f"{torch_ms / ort_ms:>9.2f}"
            )
            rows.append(row)
    path = save_results("bench_model", {"threads": threads, "repeats": args.repeats, "rows": rows})
    print(f"saved {path}")


if __name__ == "__main__":
    main()
