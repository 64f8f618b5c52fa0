"""Grouping benchmark: oracle accuracy (COCO AP) and decode speed of the C++ core.

    python -m benchmarks.bench_grouping --oracle            # accuracy + speed
    python -m benchmarks.bench_grouping --oracle --no-speed # accuracy only
    python -m benchmarks.bench_grouping --sweep-configs     # accuracy of config variants

Oracle: every image of ``shared/data/coco_people`` is encoded at native scale (padded to a
multiple of 64, stride 4) with the ground-truth encoder ``simplepose.training.targets``,
decoded, and scored with pycocotools ``COCOeval`` (iouType keypoints). Degraded variants
(noise, blur, attenuation, spurious peaks; seeded) check that the defaults are not tuned to
perfect inputs only. Speed: median decode time per image at upsample 1 and 4, a sweep over
synthetic crowds of 1-40 people, the speed-up over the NumPy reference measured in the same
run, and two threads decoding in parallel. Results go to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import save_results, summarize, time_call  # noqa: E402
from simplepose.bench.synthetic import crowd_heatmaps  # noqa: E402
from simplepose.config import DecodeConfig  # noqa: E402
from simplepose.grouping import decode, grid_params, reference  # noqa: E402
from simplepose.training.targets import coco_to_joints18, encode  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MULTIPLE = 64
STRIDE = 4


def shared_dir() -> Path:
    return Path(os.environ.get("SIMPLEPOSE_TEST_DATA", ROOT.parent / "shared")).resolve()


@dataclasses.dataclass
class OracleImage:
    image_id: int
    height: int
    width: int
    heatmaps: np.ndarray  # float32 (50, Hp / 4, Wp / 4)


def load_oracle(annotation_file: Path) -> tuple[dict[str, Any], list[OracleImage]]:
    """Ground-truth heatmaps of every image, at native scale, padded to a multiple of 64."""
    data = json.loads(annotation_file.read_text())
    by_image: dict[int, list[list[float]]] = {}
    for ann in data["annotations"]:
        if ann.get("num_keypoints", 0) > 0:
            by_image.setdefault(ann["image_id"], []).append(ann["keypoints"])
    images = []
    for info in data["images"]:
        h, w = info["height"], info["width"]
        hp, wp = -(-h // MULTIPLE) * MULTIPLE, -(-w // MULTIPLE) * MULTIPLE
        joints = coco_to_joints18(np.asarray(by_image.get(info["id"], []), np.float32))
        images.append(OracleImage(info["id"], h, w, encode(joints, (hp, wp))))
    return data, images


# ----------------------------------------------------------------------------------------
# Degradations (seeded), applied to channels 0-47
# ----------------------------------------------------------------------------------------


def degrade_noise(hm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = hm.copy()
    out[:48] += rng.normal(0.0, 0.05, out[:48].shape).astype(np.float32)
    return out


def degrade_blur(hm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = hm.copy()
    for c in range(48):
        out[c] = cv2.GaussianBlur(out[c], (0, 0), 1.0)
    return out


def degrade_attenuate(hm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = hm.copy()
    out[:48] *= rng.uniform(0.4, 0.9, (48, 1, 1)).astype(np.float32)
    return out


def degrade_spurious(hm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Ten random Gaussian blobs (sigma 2.25 cells, height 0.3-0.9) per keypoint channel and
    # random faint part-map patches: false peaks the grouping has to reject.
    out = hm.copy()
    _, h, w = out.shape
    yy, xx = np.mgrid[0:h, 0:w]
    for c in range(30, 48):
        for _ in range(10):
            cx, cy, a = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.3, 0.9)
            blob = a * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 2.25**2))
            out[c] = np.maximum(out[c], blob.astype(np.float32))
    out[:30] += (rng.random(out[:30].shape) < 0.02).astype(np.float32) * 0.5
    return out


def degrade_all(hm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = degrade_spurious(degrade_attenuate(degrade_blur(hm, rng), rng), rng)
    return degrade_noise(out, rng)


DEGRADATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "noise": degrade_noise,
    "blur": degrade_blur,
    "attenuate": degrade_attenuate,
    "spurious": degrade_spurious,
    "all": degrade_all,
}


# ----------------------------------------------------------------------------------------
# Accuracy
# ----------------------------------------------------------------------------------------


def coco_ap(data: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, float]:
    """COCOeval keypoints on ``results``; returns AP, AP50, AP75, AR."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = data
        gt.createIndex()
        if not results:
            return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0, "AR": 0.0}
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.imgIds = sorted(gt.getImgIds())
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = ev.stats
    return {"AP": float(s[0]), "AP50": float(s[1]), "AP75": float(s[2]), "AR": float(s[5])}


def results_for(
    images: list[OracleImage], heatmaps: list[np.ndarray], config: DecodeConfig
) -> list[dict[str, Any]]:
    results = []
    for image, hm in zip(images, heatmaps):
        # Native scale, content at the top-left: network-input pixels are image pixels.
        poses = decode(hm, config, image_height=image.height)
        for kp, score in zip(poses.keypoints, poses.scores):
            flat = kp.copy()
            flat[:, 2] = (kp[:, 2] > 0).astype(np.float32)
            results.append(
                {
                    "image_id": image.image_id,
                    "category_id": 1,
                    "keypoints": flat.reshape(-1).tolist(),
                    "score": float(score),
                }
            )
    return results


def accuracy(
    data: dict[str, Any], images: list[OracleImage], configs: dict[str, DecodeConfig]
) -> dict[str, Any]:
    inputs = {"perfect": [im.heatmaps for im in images]}
    for name, fn in DEGRADATIONS.items():
        rng = np.random.default_rng(1234)
        inputs[name] = [fn(im.heatmaps, rng) for im in images]
    table: dict[str, Any] = {}
    for config_name, config in configs.items():
        for input_name, hms in inputs.items():
            ap = coco_ap(data, results_for(images, hms, config))
            table[f"{config_name}/{input_name}"] = ap
            print(
                f"{config_name:>22} {input_name:>10}  AP {ap['AP']:.3f}  AP50 {ap['AP50']:.3f}"
                f"  AP75 {ap['AP75']:.3f}  AR {ap['AR']:.3f}",
                flush=True,
            )
    return table


# ----------------------------------------------------------------------------------------
# Speed
# ----------------------------------------------------------------------------------------


def run_ms(fn: Callable[[], Any], repeats: int) -> list[float]:
    """Milliseconds of ``repeats`` timed runs after one warm-up run."""
    return [1e3 * seconds for seconds in time_call(fn, repeats)]


def speed(images: list[OracleImage], config: DecodeConfig, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    hms = [im.heatmaps for im in images]
    print("\nspeed: median ms per image over the shared COCO images (whole decode, 1 thread)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out["load_average_1min"] = load
    print(f"(1-min load average at start: {load:.2f} on {os.cpu_count()} CPUs)")
    print(f"{'variant':>28} {'median':>8} {'p95':>8}")
    for factor in (1, 4):
        cfg = dataclasses.replace(config, upsample=factor)
        per_image = []
        for hm in hms:
            decode(hm, cfg)
            t = []
            for _ in range(repeats if factor == 1 else max(2, repeats // 10)):
                start = time.perf_counter()
                decode(hm, cfg)
                t.append(time.perf_counter() - start)
            per_image.append(statistics.median(t))
        s = summarize(per_image)
        out[f"coco_upsample{factor}"] = s
        print(f"{f'COCO images, upsample={factor}':>28} {s['median_ms']:8.3f} {s['p95_ms']:8.3f}")

    # Crowd sweep: C++ vs NumPy reference on the same inputs, stride-4 grid, 512 x 512 input.
    joints_pool = []  # the GT people of the shared set with >= 8 keypoints
    data = json.loads((shared_dir() / "data/coco_people/person_keypoints.json").read_text())
    for ann in data["annotations"]:
        if ann.get("num_keypoints", 0) >= 8:
            joints_pool.append(coco_to_joints18(np.asarray([ann["keypoints"]], np.float32))[0])
    rng = np.random.default_rng(7)
    print("\ncrowd sweep: synthetic oracle crowds, 512 x 512 input (128 x 128 grid), upsample=1")
    header = (
        f"{'people':>6} {'found':>6} {'C++ ms':>8} {'best':>8} {'p95':>8} {'NumPy ms':>9}"
        f" {'speed-up':>9}"
    )
    print(header)
    params = grid_params(config, 128)
    sweep = {}
    for count in (1, 5, 10, 20, 40):
        scenes = [crowd_heatmaps(joints_pool, count, rng) for _ in range(5)]
        cpp = [run_ms(lambda hm=hm: decode(hm, config), repeats) for hm in scenes]
        ref = [
            run_ms(lambda hm=hm: reference.decode(hm, params), max(3, repeats // 50))
            for hm in scenes
        ]
        found = statistics.median(len(decode(hm, config)) for hm in scenes)
        # median over scenes of each scene's median (best: of each scene's fastest run)
        c_ms = statistics.median(statistics.median(t) for t in cpp)
        c_best = statistics.median(min(t) for t in cpp)
        c_p95 = max(summarize([v / 1e3 for v in t])["p95_ms"] for t in cpp)
        r_ms = statistics.median(statistics.median(t) for t in ref)
        sweep[count] = {
            "cpp_median_ms": c_ms,
            "cpp_best_ms": c_best,
            "cpp_p95_ms": c_p95,
            "numpy_median_ms": r_ms,
            "speedup": r_ms / c_ms,
            "found": found,
        }
        print(
            f"{count:>6} {found:>6.0f} {c_ms:8.3f} {c_best:8.3f} {c_p95:8.3f} {r_ms:9.2f}"
            f" {r_ms / c_ms:8.0f}x"
        )
    out["crowd_sweep"] = sweep

    # Two threads: the GIL is released while the core runs, so they should overlap.
    scenes = [crowd_heatmaps(joints_pool, 20, rng) for _ in range(8)]
    loops = max(10, repeats // 4)

    def work() -> None:
        for _ in range(loops):
            for hm in scenes:
                decode(hm, config)

    work()
    start = time.perf_counter()
    work()
    work()
    serial = time.perf_counter() - start
    threads = [threading.Thread(target=work) for _ in range(2)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    parallel = time.perf_counter() - start
    out["two_threads"] = {"serial_s": serial, "parallel_s": parallel, "scaling": serial / parallel}
    print(
        f"\ntwo threads, 20 people, same total work: serial {serial:.3f} s, "
        f"2 threads {parallel:.3f} s -> x{serial / parallel:.2f} "
        f"({os.cpu_count()} CPUs visible)"
    )
    return out


def config_variants() -> dict[str, DecodeConfig]:
    base = DecodeConfig()
    authors = dataclasses.replace(base, person_score="authors", attach_both_ends=False)
    return {
        "defaults": base,
        "authors_rules": authors,
        "mean_score": dataclasses.replace(authors, person_score="mean"),
        "both_ends": dataclasses.replace(authors, attach_both_ends=True),
        "both_ends+mean": dataclasses.replace(authors, attach_both_ends=True, person_score="mean"),
        "no_refine": dataclasses.replace(base, refine=False),
        "upsample4": dataclasses.replace(base, upsample=4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--oracle", action="store_true", help="oracle accuracy (COCO AP)")
    parser.add_argument("--sweep-configs", action="store_true", help="AP of config variants")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed part")
    parser.add_argument("--repeats", type=int, default=200, help="timed runs per input")
    args = parser.parse_args(argv)

    annotation_file = shared_dir() / "data/coco_people/person_keypoints.json"
    data, images = load_oracle(annotation_file)
    config = DecodeConfig()
    payload: dict[str, Any] = {"config": config.to_dict(), "images": len(images)}
    if args.oracle or args.sweep_configs:
        configs = config_variants() if args.sweep_configs else {"defaults": config}
        if args.oracle and not args.sweep_configs:
            configs["upsample4"] = dataclasses.replace(config, upsample=4)
        print(f"oracle accuracy on {len(images)} shared COCO images (pycocotools keypoints)")
        payload["accuracy"] = accuracy(data, images, configs)
    if not args.no_speed:
        payload["speed"] = speed(images, config, args.repeats)
    path = save_results("bench_grouping", payload)
    print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
