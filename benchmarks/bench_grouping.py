"""Grouping benchmark: oracle accuracy (COCO AP) and decode speed of the C++ core.

    python -m benchmarks.bench_grouping --oracle            # accuracy, diagnosis + speed
    python -m benchmarks.bench_grouping --oracle --no-speed # accuracy and diagnosis only
    python -m benchmarks.bench_grouping --crowd             # crowd sweep only
    python -m benchmarks.bench_grouping --sweep-configs     # accuracy of config variants

Oracle: every image of ``shared/data/coco_people`` is encoded at native scale (padded to a
multiple of 64, stride 4) with the ground-truth encoder ``simplepose.training.targets``,
decoded, and scored with pycocotools ``COCOeval`` (iouType keypoints). Degraded variants
(noise, blur, attenuation, spurious peaks; seeded) check that the defaults are not tuned to
perfect inputs only. The diagnosis compares decoders on the same peaks (native, native
without partner exchange, the authors' part scoring and assembly on x4 maps) by their errors
against the ground truth, per image and per limb (``benchmarks/grouping_diagnosis.py``).
Speed: median decode time per image at upsample 1 and 4, a sweep over synthetic crowds of
1-80 people, clean and with noise that fills every keypoint channel with spurious peaks up
to ``max_peaks``, the speed-up over the NumPy reference measured in the same run, and two
threads decoding in parallel. Results go to ``benchmarks/results/``.
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

from benchmarks import grouping_diagnosis as diag  # noqa: E402
from benchmarks.common import save_results, summarize  # noqa: E402
from simplepose import skeleton  # noqa: E402
from simplepose.bench.synthetic import crowd_heatmaps  # noqa: E402
from simplepose.config import DecodeConfig  # noqa: E402
from simplepose.grouping import decode, grid_params, reference, to_c_params  # noqa: E402
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
    joints: np.ndarray  # float32 (P, 18, 3) [x, y, flag] ground truth, image pixels


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
        images.append(OracleImage(info["id"], h, w, encode(joints, (hp, wp)), joints))
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
# Where the grouping loses (same peaks, different part scoring / assembly)
# ----------------------------------------------------------------------------------------


def diagnose(data: dict[str, Any], images: list[OracleImage]) -> dict[str, Any]:
    """Error counts against the ground truth for decoders that share the native peaks.

    Prints AP and the totals per decoder, the limbs where they err, and the images where
    they differ (see ``benchmarks/grouping_diagnosis.py`` for the definitions).
    """
    variants: dict[str, Callable[[OracleImage], diag.Grouping]] = {
        "native": lambda im: diag.native_grouping(im.heatmaps, DecodeConfig(), im.height),
        "native, greedy only": lambda im: diag.native_grouping(
            im.heatmaps, DecodeConfig(exchange_partners=False), im.height
        ),
        "authors, same peaks": lambda im: diag.authors_grouping(im.heatmaps, im.height),
    }
    totals = {name: diag.GroupingErrors() for name in variants}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    per_image = []
    for im in images:
        row = {}
        for name, run in variants.items():
            grouping = run(im)
            owners = diag.peak_owners(grouping.peaks, grouping.offsets, im.joints)
            errors = diag.grouping_errors(grouping, owners, len(im.joints))
            totals[name].add(errors)
            results[name] += diag.coco_results(grouping, im.image_id)
            row[name] = errors.summary()
        if len(set(row.values())) > 1:
            per_image.append((im.image_id, len(im.joints), row))
    print("\nwhere the grouping loses: the same native peaks, per decoder (ground truth:")
    print("missed / wrong connections, people split in two or more, people mixing two or more)")
    print(f"{'decoder':>22} {'AP':>6} {'missed':>7} {'wrong':>6} {'split':>6} {'mixed':>6}")
    out: dict[str, Any] = {"decoders": {}, "limbs": {}, "images": []}
    for name, errors in totals.items():
        ap = coco_ap(data, results[name])["AP"]
        missed, wrong, split, mixed = errors.summary()
        print(f"{name:>22} {ap:6.3f} {missed:7d} {wrong:6d} {split:6d} {mixed:6d}")
        out["decoders"][name] = {
            "AP": ap,
            "missed": missed,
            "wrong": wrong,
            "split": split,
            "mixed": mixed,
        }
    print("per limb (missed / wrong), limbs with any error:")
    for k, (a, b) in enumerate(skeleton.PARTS):
        counts = {n: (int(e.missed[k]), int(e.wrong[k])) for n, e in totals.items()}
        if any(sum(c) for c in counts.values()):
            limb = f"{k:2d} {skeleton.KEYPOINT_NAMES[a]}-{skeleton.KEYPOINT_NAMES[b]}"
            print(f"{limb:>30} " + "  ".join(f"{m}/{w}" for m, w in counts.values()))
            out["limbs"][limb] = counts
    print("images where the decoders differ (missed, wrong, split, mixed):")
    for image_id, people, row in per_image:
        print(f"  image {image_id:>7} ({people} people): " + "  ".join(map(str, row.values())))
        out["images"].append({"image_id": image_id, "people": people, **row})
    return out


# ----------------------------------------------------------------------------------------
# Speed
# ----------------------------------------------------------------------------------------


# Crowd sweep: synthetic oracle crowds at a 512 x 512 input (128 x 128 grid), clean and with
# Gaussian noise (sigma 0.05 on channels 0-47, as degrade_noise) that fills every keypoint
# channel with spurious peaks up to max_peaks.
CROWD_SIZES = (1, 5, 10, 20, 40, 80)
CROWD_NOISE = 0.05


def crowd_pool() -> list[np.ndarray]:
    """The ground-truth people of the shared set with >= 8 keypoints, as joints18 (18, 3)."""
    data = json.loads((shared_dir() / "data/coco_people/person_keypoints.json").read_text())
    return [
        coco_to_joints18(np.asarray([ann["keypoints"]], np.float32))[0]
        for ann in data["annotations"]
        if ann.get("num_keypoints", 0) >= 8
    ]


def timed_ms(fn: Callable[[], Any], repeats: int) -> tuple[list[float], list[float]]:
    """Wall-clock and thread CPU milliseconds of ``repeats`` runs after one warm-up run.

    On a shared machine the wall clock also counts time the thread waited for a core; the
    CPU time does not, so both are kept.
    """
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        cpu.append(1e3 * (time.thread_time() - start_cpu))
        wall.append(1e3 * (time.perf_counter() - start))
    return wall, cpu


def crowd_sweep(
    pool: list[np.ndarray],
    config: DecodeConfig,
    repeats: int,
    rng: np.random.Generator,
    sizes: tuple[int, ...] = CROWD_SIZES,
    scenes_per_size: int = 5,
    with_reference: bool = True,
) -> dict[str, Any]:
    """Whole-decode time (``simplepose.grouping.decode``, one thread) on crowds of each size.

    Returns, per ``"<people>"`` and ``"<people> noisy"``: medians over the scenes of each
    scene's median (wall and CPU ms), the best run, the worst p95, the NumPy reference's
    median and the speed-up, people found and keypoint peaks per channel (median).
    """
    import simplepose._C as _C

    params = grid_params(config, 128)
    c_params = to_c_params(params)
    print(
        "\ncrowd sweep: synthetic oracle crowds, 512 x 512 input (128 x 128 grid), upsample=1;"
        f" noisy: + N(0, {CROWD_NOISE}) on channels 0-47"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(1-min load average at start: {load:.2f} on {os.cpu_count()} CPUs)")
    print(
        f"{'people':>6} {'noise':>5} {'peaks/ch':>8} {'found':>6} {'wall ms':>8} {'CPU ms':>8}"
        f" {'best':>7} {'p95':>7} {'NumPy ms':>9} {'speed-up':>9}"
    )
    sweep: dict[str, Any] = {}
    for count in sizes:
        clean = [crowd_heatmaps(pool, count, rng) for _ in range(scenes_per_size)]
        noisy = []
        for hm in clean:
            hm = hm.copy()
            hm[:48] += rng.normal(0.0, CROWD_NOISE, hm[:48].shape).astype(np.float32)
            noisy.append(hm)
        for label, scenes in ((f"{count}", clean), (f"{count} noisy", noisy)):
            runs = [timed_ms(lambda hm=hm: decode(hm, config), repeats) for hm in scenes]
            wall = statistics.median(statistics.median(w) for w, _ in runs)
            cpu = statistics.median(statistics.median(c) for _, c in runs)
            best = statistics.median(min(w) for w, _ in runs)
            p95 = max(summarize([v / 1e3 for v in w])["p95_ms"] for w, _ in runs)
            found = statistics.median(len(decode(hm, config)) for hm in scenes)
            peaks = statistics.median(
                float(np.diff(_C.find_peaks(hm, c_params)[1]).mean()) for hm in scenes
            )
            row = {
                "wall_median_ms": wall,
                "cpu_median_ms": cpu,
                "best_ms": best,
                "p95_ms": p95,
                "found": found,
                "peaks_per_channel": peaks,
            }
            ref_text = ""
            if with_reference:
                ref = statistics.median(
                    statistics.median(timed_ms(lambda hm=hm: reference.decode(hm, params), 3)[0])
                    for hm in scenes
                )
                row.update(numpy_median_ms=ref, speedup=ref / wall)
                ref_text = f" {ref:9.1f} {ref / wall:8.0f}x"
            sweep[label] = row
            print(
                f"{count:>6} {'yes' if scenes is noisy else 'no':>5} {peaks:8.1f} {found:6.0f}"
                f" {wall:8.3f} {cpu:8.3f} {best:7.3f} {p95:7.3f}{ref_text}",
                flush=True,
            )
    return sweep


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

    joints_pool = crowd_pool()
    rng = np.random.default_rng(7)
    out["crowd_sweep"] = crowd_sweep(joints_pool, config, repeats, rng)

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
    authors = dataclasses.replace(
        base, person_score="authors", attach_both_ends=False, exchange_partners=False
    )
    return {
        "defaults": base,
        "authors_rules": authors,
        "no_exchange": dataclasses.replace(base, exchange_partners=False),
        "exchange": dataclasses.replace(authors, exchange_partners=True),
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
    parser.add_argument(
        "--crowd", action="store_true", help="only the crowd sweep (1-80 people, clean and noisy)"
    )
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
    if args.oracle:
        payload["diagnosis"] = diagnose(data, images)
    if args.crowd:
        payload["crowd_sweep"] = crowd_sweep(
            crowd_pool(), config, args.repeats, np.random.default_rng(7)
        )
    elif not args.no_speed:
        payload["speed"] = speed(images, config, args.repeats)
    path = save_results("bench_grouping", payload)
    print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
