"""Robustness of the grouping core: odd inputs never crash, outputs stay finite and bounded,
wrong inputs raise ValueError stating expected vs actual, and calls are reentrant.

Also run under AddressSanitizer/UBSan (see the report of issue 4 for the command).
"""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simplepose.config import DecodeConfig
from simplepose.grouping import decode, grid_params, reference, to_c_params

_C = pytest.importorskip("simplepose._C")

SPECIAL = [0.0, 1.0, 0.5, 0.1, -1.0, np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-30]


@st.composite
def heatmaps(draw):
    h = draw(st.integers(1, 24))
    w = draw(st.integers(1, 24))
    kind = draw(st.sampled_from(["special", "random", "zeros", "ones", "checker", "mixed"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = (50, h, w)
    if kind == "special":
        return rng.choice(np.array(SPECIAL, np.float32), shape)
    if kind == "random":
        return rng.random(shape, np.float32)
    if kind == "zeros":
        return np.zeros(shape, np.float32)
    if kind == "ones":
        return np.ones(shape, np.float32)
    if kind == "checker":  # a peak on every other cell: the largest possible peak count
        yy, xx = np.mgrid[0:h, 0:w]
        return np.broadcast_to(((yy + xx) % 2).astype(np.float32), shape).copy()
    hm = rng.random(shape, np.float32)
    hm[rng.random(shape) < 0.2] = rng.choice(np.array(SPECIAL, np.float32))
    return hm


def check_output(poses, config, h, w):
    kp = poses.keypoints
    assert kp.dtype == np.float32 and poses.scores.dtype == np.float32
    assert np.all(np.isfinite(kp)) and np.all(np.isfinite(poses.scores))
    found = kp[:, :, 2] > 0
    xy = kp[:, :, :2][found]
    # every keypoint is inside the grid's footprint in input pixels
    assert np.all(xy >= 1.5 - 1e-4)
    assert np.all(xy[:, 0] <= 4 * (w - 1) + 1.5 + 1e-4)
    assert np.all(xy[:, 1] <= 4 * (h - 1) + 1.5 + 1e-4)
    assert np.all(kp[~found] == 0)
    # every person holds >= 2 of at most 18 * max_peaks peaks, each peak in one person
    assert len(poses) <= 18 * config.max_peaks // 2
    assert np.all(np.diff(poses.scores) <= 0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hm=heatmaps(), max_peaks=st.sampled_from([1, 4, 64]), refine=st.booleans())
def test_decode_never_crashes(hm, max_peaks, refine):
    config = DecodeConfig(max_peaks=max_peaks, refine=refine, peak_threshold=0.05)
    poses = decode(hm, config)
    check_output(poses, config, hm.shape[1], hm.shape[2])
    peaks, offsets = _C.find_peaks(hm, to_c_params(grid_params(config, hm.shape[1])))
    assert np.all(np.diff(offsets) <= max_peaks)
    assert np.all(np.isfinite(peaks))


@settings(max_examples=40, deadline=None)
@given(hm=heatmaps())
def test_non_finite_values_count_as_zero(hm):
    # Replacing NaN/Inf by 0 beforehand gives the same result.
    config = DecodeConfig(peak_threshold=0.05)
    clean = np.where(np.isfinite(hm), hm, 0).astype(np.float32)
    a, b = decode(hm, config), decode(clean, config)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_huge_peak_count_is_capped():
    # 256 x 256 checkerboard: 32768 NMS peaks per channel before the cap.
    yy, xx = np.mgrid[0:256, 0:256]
    hm = np.broadcast_to(((yy + xx) % 2).astype(np.float32), (50, 256, 256)).copy()
    config = DecodeConfig(max_peaks=64)
    peaks, offsets = _C.find_peaks(hm, to_c_params(grid_params(config, 256)))
    assert np.all(np.diff(offsets) == 64)
    check_output(decode(hm, config), config, 256, 256)


# Whole messages, anchored at both ends: a C++ runtime clash once cut them after "("
# (tests/test_static_runtime.py runs these tests against such a build).
@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((50, 8, 8), np.float64), "heatmaps must have dtype float32, got float64"),
        (np.zeros((50, 8, 8), np.float16), "heatmaps must have dtype float32, got float16"),
        (
            np.zeros((50, 8, 16), np.float32)[:, :, ::2],
            "heatmaps must be C-contiguous, got a non-contiguous array of shape (50, 8, 8)"
            " (use np.ascontiguousarray)",
        ),
        (np.zeros((49, 8, 8), np.float32), "heatmaps must have shape (50, H, W), got (49, 8, 8)"),
        (np.zeros((50, 8), np.float32), "heatmaps must have shape (50, H, W), got (50, 8)"),
        (
            np.zeros((1, 50, 8, 8), np.float32),
            "heatmaps must have shape (50, H, W), got (1, 50, 8, 8)",
        ),
        (np.zeros(7, np.float32), "heatmaps must have shape (50, H, W), got (7,)"),
        (np.zeros((), np.float32), "heatmaps must have shape (50, H, W), got ()"),
        (np.zeros((50, 0, 8), np.float32), "heatmaps must have 1 <= H, W < 2^29, got (50, 0, 8)"),
    ],
)
def test_binding_rejects_bad_heatmaps(array, message):
    params = _C.DecodeParams()
    for fn in (_C.find_peaks, _C.decode):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            fn(array, params)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((17, 64), np.float32), r"shape \(50, H, W\), got \(17, 64\)"),
        (np.zeros((50, 0, 4), np.float32), r"H, W >= 1"),
        (np.full((50, 4, 4), "a"), r"numeric dtype"),
        (np.zeros((50, 4, 4), complex), r"numeric dtype"),
    ],
)
def test_decode_rejects_bad_heatmaps(array, match):
    with pytest.raises(ValueError, match=match):
        decode(array)


def test_decode_converts_in_plain_sight():
    # float64 and non-contiguous inputs are converted by the wrapper, with the same result.
    rng = np.random.default_rng(0)
    hm = rng.random((50, 12, 12), np.float32)
    expected = decode(hm, DecodeConfig(peak_threshold=0.5))
    for variant in (hm.astype(np.float64), np.asfortranarray(hm)):
        got = decode(variant, DecodeConfig(peak_threshold=0.5))
        np.testing.assert_array_equal(got.keypoints, expected.keypoints)


def test_binding_rejects_inconsistent_peaks():
    params = _C.DecodeParams()
    hm = np.zeros((50, 8, 8), np.float32)
    peaks = np.array([[0.0, 0.0, 1.0], [0.0, 3.0, 1.0]])
    with pytest.raises(ValueError, match="offsets"):
        _C.score_parts(hm, peaks, np.zeros(19, np.int64), params)
    offsets = np.array([0, 1, 2] + [2] * 16, np.int64)
    for bad_peaks, bad_offsets, message in [
        (np.zeros((2, 2)), offsets, "peaks must have shape (N, 3), got (2, 2)"),
        (peaks[:, :, None].copy(), offsets, "peaks must have shape (N, 3), got (2, 3, 1)"),
        (
            np.asfortranarray(np.zeros((3, 3))),
            offsets,
            "peaks must be C-contiguous, got a non-contiguous array of shape (3, 3)"
            " (use np.ascontiguousarray)",
        ),
        (peaks, np.zeros(5, np.int64), "offsets must have shape (19,), got (5,)"),
    ]:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            _C.score_parts(hm, bad_peaks, bad_offsets, params)
    # part 0 is neck (type 1) -> nose (type 0): peak 0 is a nose, peak 1 a neck
    good = (np.array([0], np.int32), np.array([[1, 0]], np.int32), np.array([0.5]))
    members, _ = _C.assemble(peaks, offsets, *good, params)
    assert members.shape == (1, 18)
    with pytest.raises(ValueError, match="not of keypoint type"):
        _C.assemble(peaks, offsets, good[0], np.array([[0, 1]], np.int32), good[2], params)
    with pytest.raises(ValueError, match=r"parts must be in \[0, 30\)"):
        _C.assemble(peaks, offsets, np.array([30], np.int32), *good[1:], params)
    with pytest.raises(ValueError, match="dtype int32, got int64"):
        _C.assemble(peaks, offsets, good[0].astype(np.int64), *good[1:], params)
    wide_pairs = np.zeros((1, 3), np.int32)
    for bad, message in [
        ((np.zeros((1, 1), np.int32), *good[1:]), "parts must have shape (C,), got (1, 1)"),
        ((good[0], wide_pairs, good[2]), "pairs must have shape (1, 2), got (1, 3)"),
        ((*good[:2], np.zeros(2)), "scores must have shape (1,), got (2,)"),
    ]:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            _C.assemble(peaks, offsets, *bad, params)


def test_threads_are_reentrant():
    # Two threads decoding different inputs at once get what a serial run gets.
    rng = np.random.default_rng(1)
    inputs = [rng.random((50, 40, 40), np.float32) ** 3 for _ in range(6)]
    config = DecodeConfig(peak_threshold=0.3, part_threshold=0.05, connect_ratio=0.5)
    expected = [decode(hm, config) for hm in inputs]
    results: dict[tuple[int, int], object] = {}

    def work(tid: int) -> None:
        for _ in range(10):
            for i, hm in enumerate(inputs):
                results[(tid, i)] = decode(hm, config)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (_, i), poses in results.items():
        np.testing.assert_array_equal(poses.keypoints, expected[i].keypoints)


def test_reference_handles_the_same_odd_inputs():
    # The reference is a specification, not a crash test, but it must not fail on NaN either.
    hm = np.full((50, 3, 3), np.nan, np.float32)
    params = grid_params(DecodeConfig(), 3)
    keypoints, scores = reference.decode(hm, params)
    assert keypoints.shape == (0, 18, 3) and scores.shape == (0,)
