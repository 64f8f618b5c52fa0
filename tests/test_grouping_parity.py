"""Parity: the C++ core (``simplepose._C``) against the NumPy reference, step by step.

Same peaks (coordinates to 1e-9 cells, same order), same connections (same parts and peak
pairs, scores to 1e-9), same people (same members, scores to 1e-9) and the same decoded
keypoints (to 1e-4) on (a) oracle heatmaps of every shared COCO image, encoded with the
ground-truth encoder, and (b) seeded random, noisy, quantised (many exact ties) and
non-finite heatmaps.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from simplepose.config import DecodeConfig
from simplepose.grouping import grid_params, reference, to_c_params, upsample

_C = pytest.importorskip("simplepose._C")


def assert_same(heatmaps: np.ndarray, config: DecodeConfig, image_height: float | None = None):
    """Compare every step of C++ and reference on one input; returns the number of people."""
    params = grid_params(config, heatmaps.shape[1], image_height)
    c_params = to_c_params(params)

    peaks, offsets = _C.find_peaks(heatmaps, c_params)
    ref_peaks, ref_offsets = reference.find_peaks(heatmaps, params)
    np.testing.assert_array_equal(offsets, ref_offsets)
    np.testing.assert_allclose(peaks, ref_peaks, rtol=0, atol=1e-9)

    # Both continue from the reference's peaks, so each step is checked on its own.
    parts, pairs, scores = _C.score_parts(heatmaps, ref_peaks, ref_offsets, c_params)
    ref_parts, ref_pairs, ref_scores = reference.score_parts(
        heatmaps, ref_peaks, ref_offsets, params
    )
    np.testing.assert_array_equal(parts, ref_parts)
    np.testing.assert_array_equal(pairs, ref_pairs)
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-9)

    members, person_scores = _C.assemble(
        ref_peaks, ref_offsets, ref_parts, ref_pairs, ref_scores, c_params
    )
    ref_members, ref_person_scores = reference.assemble(
        ref_peaks, ref_parts, ref_pairs, ref_scores, params
    )
    np.testing.assert_array_equal(members, ref_members)
    np.testing.assert_allclose(person_scores, ref_person_scores, rtol=0, atol=1e-9)

    keypoints, kp_scores = _C.decode(heatmaps, c_params)
    ref_keypoints, ref_kp_scores = reference.decode(heatmaps, params)
    assert keypoints.shape == ref_keypoints.shape
    np.testing.assert_allclose(keypoints, ref_keypoints, rtol=0, atol=1e-4)
    np.testing.assert_allclose(kp_scores, ref_kp_scores, rtol=0, atol=1e-6)
    return len(keypoints)


# -- (a) oracle heatmaps of the shared COCO images -------------------------------------------


@pytest.fixture(scope="module")
def oracle_heatmaps(coco_people: tuple[Path, Path]) -> list[tuple[int, np.ndarray]]:
    targets = pytest.importorskip("simplepose.training.targets")
    data = json.loads(coco_people[0].read_text())
    by_image: dict[int, list] = {}
    for ann in data["annotations"]:
        if ann.get("num_keypoints", 0) > 0:
            by_image.setdefault(ann["image_id"], []).append(ann["keypoints"])
    out = []
    for info in data["images"]:
        h, w = info["height"], info["width"]
        joints = targets.coco_to_joints18(np.asarray(by_image.get(info["id"], []), np.float32))
        out.append((h, targets.encode(joints, (-(-h // 64) * 64, -(-w // 64) * 64))))
    return out


def test_parity_on_oracle_heatmaps(oracle_heatmaps):
    people = sum(assert_same(hm, DecodeConfig(), image_height=h) for h, hm in oracle_heatmaps)
    assert len(oracle_heatmaps) == 69
    assert people >= 100  # the shared set has 127 people with keypoints


def test_parity_on_oracle_heatmaps_authors_rules(oracle_heatmaps):
    config = DecodeConfig(attach_both_ends=False, person_score="authors")
    for h, hm in oracle_heatmaps[::3]:
        assert_same(hm, config, image_height=h)


def test_parity_on_upsampled_oracle_heatmaps(oracle_heatmaps):
    # upsample=2: both sides see the same resized grid (the resize is not the core's job).
    config = DecodeConfig(upsample=2)
    for h, hm in oracle_heatmaps[:69:7]:
        assert_same(upsample(hm, 2), config, image_height=h)


def test_parity_on_degraded_oracle_heatmaps(oracle_heatmaps):
    rng = np.random.default_rng(5)
    for h, hm in oracle_heatmaps[::4]:
        noisy = hm + rng.normal(0, 0.05, hm.shape).astype(np.float32)
        assert_same(noisy, DecodeConfig(), image_height=h)


# -- (b) seeded random heatmaps --------------------------------------------------------------


def _random(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(3, 48, 2))
    if kind == "uniform":  # dense peaks everywhere, many accepted pairs
        return (rng.random((50, h, w)) ** 2).astype(np.float32)
    if kind == "sparse":  # mostly zero, a few bright cells
        return (rng.random((50, h, w)) * (rng.random((50, h, w)) < 0.05)).astype(np.float32)
    if kind == "quantised":  # values in {0, 0.25, ..., 1}: plateaus and exact rank ties
        return (rng.integers(0, 5, (50, h, w)) / 4).astype(np.float32)
    if kind == "negative":  # network-like outputs, partly below 0
        return rng.normal(0.1, 0.3, (50, h, w)).astype(np.float32)
    if kind == "non_finite":  # NaN and +-Inf sprinkled in
        hm = rng.random((50, h, w)).astype(np.float32)
        bad = rng.random((50, h, w))
        hm[bad < 0.05] = np.nan
        hm[(bad >= 0.05) & (bad < 0.08)] = np.inf
        hm[(bad >= 0.08) & (bad < 0.1)] = -np.inf
        return hm
    raise AssertionError(kind)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["uniform", "sparse", "quantised", "negative", "non_finite"])
def test_parity_on_random_heatmaps(kind, seed):
    # Lower thresholds than the defaults so that random maps produce people to compare.
    config = DecodeConfig(
        peak_threshold=0.2, part_threshold=0.05, connect_ratio=0.5, min_mean_score=0.2
    )
    assert_same(_random(kind, seed), config)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"refine": False},
        {"max_peaks": 3},
        {"person_score": "authors", "attach_both_ends": False},
        {"len_rate": 1.5, "connection_tolerance": 2.0},
        {"max_samples": 5, "connect_ratio": 0.3},
        {"upsample": 4},  # grid_stride 1: more samples per pair
    ],
    ids=lambda o: ",".join(o) or "defaults",
)
def test_parity_config_variants(overrides):
    base = DecodeConfig(peak_threshold=0.2, part_threshold=0.05, connect_ratio=0.5)
    config = dataclasses.replace(base, **overrides)
    for seed in range(3):
        assert_same(_random("uniform", 100 + seed), config)
        assert_same(_random("quantised", 200 + seed), config)


# -- (c) crowds: the support bound, lazy ranking and exchanges at scale ------------------------


@pytest.fixture(scope="module")
def crowds() -> list[np.ndarray]:
    # 20 and 80 people on a 128 x 128 grid, clean and with noise (every keypoint channel then
    # holds max_peaks peaks): enough pairs per part for the support bound, and at 80 people
    # enough survivors for the lazy ranking.
    from simplepose.bench.synthetic import crowd_heatmaps, template_pool

    rng = np.random.default_rng(11)
    pool = template_pool(32, seed=3)
    out = []
    for count in (20, 80):
        heatmaps = crowd_heatmaps(pool, count, rng)
        noisy = heatmaps.copy()
        noisy[:48] += rng.normal(0.0, 0.05, noisy[:48].shape).astype(np.float32)
        out += [heatmaps, noisy]
    return out


@pytest.mark.parametrize("index", range(4), ids=["20", "20_noisy", "80", "80_noisy"])
def test_parity_on_crowds(crowds, index):
    assert assert_same(crowds[index], DecodeConfig()) > 0


def test_parity_with_peaks_outside_the_grid(crowds):
    # Peaks given through the bindings may lie outside the grid (find_peaks' never do); the
    # support bound then clamps each sample as the bilinear sampling does.
    heatmaps = crowds[2]
    params = grid_params(DecodeConfig(), heatmaps.shape[1])
    c_params = to_c_params(params)
    peaks, offsets = _C.find_peaks(heatmaps, c_params)
    rng = np.random.default_rng(2)
    moved = peaks.copy()
    pick = rng.random(len(peaks)) < 0.3
    moved[pick, :2] += rng.uniform(-40.0, 40.0, (int(pick.sum()), 2))
    assert np.any(moved[:, :2] < 0) and np.any(moved[:, :2] > 127)
    parts, pairs, scores = _C.score_parts(heatmaps, moved, offsets, c_params)
    ref_parts, ref_pairs, ref_scores = reference.score_parts(heatmaps, moved, offsets, params)
    np.testing.assert_array_equal(parts, ref_parts)
    np.testing.assert_array_equal(pairs, ref_pairs)
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-9)


_STEPS_SCRIPT = """
import sys
import numpy as np
import simplepose._C as _C
from simplepose.config import DecodeConfig
from simplepose.grouping import grid_params, to_c_params
out = []
for heatmaps in np.load(sys.argv[1]):
    params = to_c_params(grid_params(DecodeConfig(), heatmaps.shape[1]))
    peaks, offsets = _C.find_peaks(heatmaps, params)
    out += [peaks, *_C.score_parts(heatmaps, peaks, offsets, params)]
np.savez(sys.argv[2], *out)
"""


def test_avx2_and_portable_kernels_agree(crowds, tmp_path):
    # Where the CPU has AVX2 the core runs AVX2 kernels; SIMPLEPOSE_NO_AVX2=1 forces the
    # SSE2 / scalar ones (on other CPUs both runs take those). Same connections, same bits.
    import os
    import subprocess
    import sys

    np.save(tmp_path / "heatmaps.npy", np.stack(crowds))
    results = {}
    for name, value in (("default", ""), ("portable", "1")):
        env = {**os.environ, "SIMPLEPOSE_NO_AVX2": value}
        subprocess.run(
            [sys.executable, "-c", _STEPS_SCRIPT, tmp_path / "heatmaps.npy", tmp_path / name],
            check=True,
            env=env,
        )
        with np.load(tmp_path / f"{name}.npz") as data:
            results[name] = [data[key] for key in sorted(data.files, key=lambda k: int(k[4:]))]
    assert len(results["default"]) == 4 * len(crowds)
    for a, b in zip(results["default"], results["portable"]):
        np.testing.assert_array_equal(a, b)
