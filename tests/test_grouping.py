"""Golden cases of the grouping decoder: small handmade heatmaps with known peaks and people.

Scenes are drawn on a small grid: keypoints are Gaussian blobs (sigma 1.5 cells) whose
centres the log-parabola refinement must recover exactly; body parts are bands of constant
value covering every cell within 1.5 cells of the segment, so every bilinear sample on the
segment reads exactly that value. Every expectation below is computed by hand from the
rules in ``simplepose/grouping/reference.py``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simplepose import skeleton
from simplepose.config import DecodeConfig
from simplepose.grouping import decode, grid_params, grid_to_input, reference, to_c_params, upsample

_C = pytest.importorskip("simplepose._C")

NOSE, NECK, RSHO, RELB = 0, 1, 2, 3
PART_NECK_NOSE, PART_NECK_RSHO, PART_RSHO_RELB, PART_NOSE_RSHO = 0, 9, 10, 21


def scene(h, w, blobs=(), bands=(), sigma=1.5):
    """(50, h, w) float32: blobs (type, x, y, amplitude), bands (part, (x0, y0), (x1, y1), v)."""
    heatmaps = np.zeros((50, h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    for k, x, y, amp in blobs:
        blob = amp * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
        c = skeleton.KEYPOINT_CHANNEL_OFFSET + k
        heatmaps[c] = np.maximum(heatmaps[c], blob.astype(np.float32))
    for part, (x0, y0), (x1, y1), value in bands:
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / (dx * dx + dy * dy), 0, 1)
        dist = np.hypot(xx - (x0 + t * dx), yy - (y0 + t * dy))
        heatmaps[part] = np.where(dist <= 1.5, np.maximum(heatmaps[part], value), heatmaps[part])
    return heatmaps


def c_peaks(heatmaps, config=None):
    config = config or DecodeConfig()
    params = to_c_params(grid_params(config, heatmaps.shape[1]))
    peaks, offsets = _C.find_peaks(heatmaps, params)
    return [(k, *peaks[i, :2]) for k in range(18) for i in range(offsets[k], offsets[k + 1])], peaks


# -- peaks -----------------------------------------------------------------------------------

PEAK_CASES = [
    # one Gaussian off the grid in x and y: the log-parabola recovers the centre exactly
    ("subpixel", scene(12, 14, [(NOSE, 5.3, 4.7, 1.0)]), {}, [(NOSE, 5.3, 4.7)]),
    # a 2 x 2 flat top: one peak (its first raster cell), refined to the plateau's centre
    (
        "plateau",
        np.pad(np.ones((1, 2, 2), np.float32), ((30, 19), (3, 5), (3, 5))),
        {},
        [(NOSE, 3.5, 3.5)],
    ),
    # a peak of 0.09 is under the authors' threshold 0.1
    ("below_threshold", scene(10, 10, [(NECK, 5, 5, 0.09)]), {}, []),
    # ... and found with the threshold lowered
    ("threshold", scene(10, 10, [(NECK, 5, 5, 0.09)]), {"peak_threshold": 0.05}, [(NECK, 5, 5)]),
    # a blob centred on the left border: no x refinement there (no left neighbour)
    ("border", scene(10, 10, [(RSHO, 0.0, 4.25, 1.0)]), {}, [(RSHO, 0.0, 4.25)]),
    # five peaks, cap 3: the three highest, in score order
    (
        "cap",
        scene(10, 40, [(NOSE, 3 + 8 * i, 5, a) for i, a in enumerate((0.5, 0.9, 0.3, 0.7, 0.6))]),
        {"max_peaks": 3},
        [(NOSE, 11, 5), (NOSE, 27, 5), (NOSE, 35, 5)],
    ),
    # two equal peaks: ties by raster index (row first), so (7, 2) before (2, 7)
    (
        "tie_raster",
        scene(12, 12, [(NOSE, 2, 7, 0.8), (NOSE, 7, 2, 0.8)]),
        {},
        [(NOSE, 7, 2), (NOSE, 2, 7)],
    ),
    # no refinement: integer cells
    ("no_refine", scene(12, 14, [(NOSE, 5.3, 4.7, 1.0)]), {"refine": False}, [(NOSE, 5, 5)]),
]


@pytest.mark.parametrize(
    ("heatmaps", "overrides", "expected"),
    [c[1:] for c in PEAK_CASES],
    ids=[c[0] for c in PEAK_CASES],
)
def test_peaks_golden(heatmaps, overrides, expected):
    config = dataclasses.replace(DecodeConfig(), **overrides)
    found, _ = c_peaks(heatmaps, config)
    assert [k for k, *_ in found] == [k for k, *_ in expected]
    np.testing.assert_allclose(
        np.array([xy for _, *xy in found]).reshape(-1, 2),
        np.array([xy for _, *xy in expected], float).reshape(-1, 2),
        atol=1e-6,
    )
    ref_peaks, _ = reference.find_peaks(heatmaps, grid_params(config, heatmaps.shape[1]))
    np.testing.assert_allclose(ref_peaks[:, :2], np.array([xy for _, *xy in found]).reshape(-1, 2))


def test_peak_score_is_peak_value():
    found, peaks = c_peaks(scene(12, 14, [(NOSE, 5, 4, 0.8)]))
    assert peaks[0, 2] == pytest.approx(0.8, abs=1e-7)


# -- grouping --------------------------------------------------------------------------------

ONE = [(NOSE, 5, 3, 1.0), (NECK, 5, 8, 1.0)]
ONE_BAND = [(PART_NECK_NOSE, (5, 8), (5, 3), 0.8)]
TWO = [*ONE, (NOSE, 15, 3, 0.9), (NECK, 15, 8, 0.9)]
TWO_BANDS = [*ONE_BAND, (PART_NECK_NOSE, (15, 8), (15, 3), 0.8)]
ARM = [(RSHO, 3, 11, 1.0), (RELB, 3, 16, 1.0)]
ARM_BANDS = [(PART_NECK_RSHO, (5, 8), (3, 11), 0.8), (PART_RSHO_RELB, (3, 11), (3, 16), 0.8)]

GROUP_CASES = [
    # nose and neck joined by their part: one person of two keypoints
    ("one_pair", scene(20, 24, ONE, ONE_BAND), {}, [{NOSE: (5, 3), NECK: (5, 8)}]),
    # the same keypoints without a part map: no connection, nobody (min 2 keypoints)
    ("no_part", scene(20, 24, ONE), {}, []),
    # a band covering only the nose end (samples pass for y < 5.875, i.e. 11 of 20): fails
    # the 80 % rule
    ("broken_part", scene(20, 24, ONE, [(PART_NECK_NOSE, (5, 3.5), (5, 3), 0.8)]), {}, []),
    # a band of 0.09 (not > part_threshold 0.1): every sample fails
    ("weak_part", scene(20, 24, ONE, [(PART_NECK_NOSE, (5, 8), (5, 3), 0.09)]), {}, []),
    # two people side by side, each grouped with its own keypoints, brighter one first
    (
        "two_people",
        scene(20, 24, TWO, TWO_BANDS),
        {},
        [{NOSE: (5, 3), NECK: (5, 8)}, {NOSE: (15, 3), NECK: (15, 8)}],
    ),
    # a chain neck -> Rsho -> Relb grows one person along the parts, in part order
    (
        "chain",
        scene(20, 24, ONE + ARM, ONE_BAND + ARM_BANDS),
        {},
        [{NOSE: (5, 3), NECK: (5, 8), RSHO: (3, 11), RELB: (3, 16)}],
    ),
    # min_keypoints 3 drops the two-keypoint person
    ("min_keypoints", scene(20, 24, ONE, ONE_BAND), {"min_keypoints": 3}, []),
    # weak keypoints (0.15) and part (0.15): total / count = 0.225 < 0.45, dropped
    (
        "low_mean",
        scene(20, 24, [(NOSE, 5, 3, 0.15), (NECK, 5, 8, 0.15)], [(0, (5, 8), (5, 3), 0.15)]),
        {},
        [],
    ),
    # one neck, two noses, both with a band: one-to-one keeps the brighter nose (rank)
    (
        "one_to_one",
        scene(
            20,
            24,
            [(NECK, 10, 10, 1.0), (NOSE, 10, 4, 0.6), (NOSE, 16, 10, 1.0)],
            [(0, (10, 10), (10, 4), 0.8), (0, (10, 10), (16, 10), 0.8)],
        ),
        {},
        [{NECK: (10, 10), NOSE: (16, 10)}],
    ),
]


def _people(poses):
    # {network keypoint: (grid x, grid y)} per person, from input pixels (4 i + 1.5).
    out = []
    for kp in poses.keypoints:
        person = {}
        for coco, row in enumerate(kp):
            if row[2] > 0:
                person[skeleton.COCO_TO_NETWORK[coco]] = tuple(np.round((row[:2] - 1.5) / 4, 4))
        out.append(person)
    return out


@pytest.mark.parametrize(
    ("heatmaps", "overrides", "expected"),
    [c[1:] for c in GROUP_CASES],
    ids=[c[0] for c in GROUP_CASES],
)
def test_grouping_golden(heatmaps, overrides, expected):
    config = dataclasses.replace(DecodeConfig(), **overrides)
    poses = decode(heatmaps, config)
    # The neck is not a COCO keypoint: compare the rest.
    expected = [{k: v for k, v in p.items() if k != NECK} for p in expected]
    assert _people(poses) == expected
    assert np.all(np.diff(poses.scores) <= 0)
    ref_kp, ref_scores = reference.decode(heatmaps, grid_params(config, heatmaps.shape[1]))
    np.testing.assert_allclose(ref_scores, poses.scores, rtol=1e-6)


def test_exchange_fixes_collinear_limbs():
    # Two people's neck -> right shoulder limbs in a row: shoulder 4, neck 10 | shoulder 14,
    # neck 20 (y = 5). The band between neck 10 and shoulder 14 (0.85) beats the limbs' own
    # bands (0.8), so the greedy takes that wrong pair first and is left with the long pair
    # 20 -> 4 (mean ~0.82, distance prior 0.5 * 40 / 64 - 1 = -0.69: score 0.134). The
    # crossed pairs 10 -> 4 and 20 -> 14 (mean ~0.81, prior -1/6: 0.646 each) weigh more
    # together (1.29 > 0.98), so the exchange swaps them back.
    heatmaps = scene(
        12,
        24,
        [(NECK, 20, 5, 1.0), (RSHO, 14, 5, 1.0), (NECK, 10, 5, 1.0), (RSHO, 4, 5, 1.0)],
        [
            (PART_NECK_RSHO, (20, 5), (14, 5), 0.8),
            (PART_NECK_RSHO, (10, 5), (4, 5), 0.8),
            (PART_NECK_RSHO, (10, 5), (14, 5), 0.85),
        ],
    )
    found = {}
    for exchange in (False, True):
        params = grid_params(DecodeConfig(exchange_partners=exchange), 12, image_height=40)
        peaks, offsets = _C.find_peaks(heatmaps, to_c_params(params))
        parts, pairs, scores = _C.score_parts(heatmaps, peaks, offsets, to_c_params(params))
        ref = reference.score_parts(heatmaps, peaks, offsets, params)
        np.testing.assert_array_equal(pairs, ref[1])
        np.testing.assert_allclose(scores, ref[2], rtol=0, atol=1e-12)
        # (neck x, shoulder x) of each connection, in rank order
        found[exchange] = [(peaks[a, 0], peaks[b, 0]) for a, b in pairs]
        assert list(parts) == [PART_NECK_RSHO, PART_NECK_RSHO]
    assert found[False] == [(10, 14), (20, 4)]
    assert found[True] == [(10, 4), (20, 14)]
    # mirror images of each other: the same score, mean ~0.81 minus 1/6
    assert scores[0] == scores[1] and 0.64 < scores[0] < 0.65


def test_person_score_hand_computed():
    # peaks 1.0 and 1.0, one part of mean 0.8 and no distance penalty (5 cells = 20 px is
    # shorter than half the 80 px prior height): total 2.8 over 2 keypoints.
    heatmaps = scene(20, 24, ONE, ONE_BAND)
    mean = decode(heatmaps, DecodeConfig(person_score="mean"))
    authors = decode(heatmaps, DecodeConfig(person_score="authors"))
    assert mean.scores[0] == pytest.approx(1.4, abs=1e-6)
    assert authors.scores[0] == pytest.approx(1 - 1 / 2.8, abs=1e-6)


def test_distance_prior_uses_image_height():
    # 5 cells = 20 px. With a prior height of 20 px: 0.5 * 20 / 20 - 1 = -0.5, so the part
    # score 0.8 - 0.5 = 0.3 > 0 is still accepted, total 2.3; at 6 px: 0.8 - 0.85 < 0, rejected.
    heatmaps = scene(20, 24, ONE, ONE_BAND)
    poses = decode(heatmaps, DecodeConfig(person_score="mean"), image_height=20.0)
    assert poses.scores[0] == pytest.approx(2.3 / 2, abs=1e-6)
    assert len(decode(heatmaps, DecodeConfig(), image_height=6.0)) == 0


def test_output_convention():
    # grid cell i -> input pixel 4 i + 1.5, COCO order, unfound keypoints (0, 0, 0)
    poses = decode(scene(20, 24, ONE, ONE_BAND))
    assert poses.keypoints.dtype == np.float32 and poses.scores.dtype == np.float32
    assert poses.keypoints.shape == (1, 17, 3)
    nose = poses.keypoints[0, 0]
    np.testing.assert_allclose(nose, [4 * 5 + 1.5, 4 * 3 + 1.5, 1.0], atol=1e-6)
    assert np.all(poses.keypoints[0, 1:] == 0)


@pytest.mark.parametrize("factor", [2, 4])
def test_upsample_keeps_the_pixel_convention(factor):
    # A Gaussian at grid (6.25, 5.5) is input pixel (26.5, 23.5) at every upsampling factor
    # (bicubic resizing bends the Gaussian a little; a wrong half-pixel convention would be
    # off by 0.5 px or more).
    heatmaps = scene(16, 16, [(NOSE, 6.25, 5.5, 1.0), (NECK, 6.25, 10.5, 1.0)])
    heatmaps[0] = scene(16, 16, bands=[(0, (6.25, 10.5), (6.25, 5.5), 0.8)])[0]
    poses = decode(heatmaps, DecodeConfig(upsample=factor))
    assert len(poses) == 1
    np.testing.assert_allclose(poses.keypoints[0, 0, :2], [26.5, 23.5], atol=0.25)
    grid = upsample(heatmaps, factor)
    assert grid.shape == (50, 16 * factor, 16 * factor) and grid.flags.c_contiguous


def test_grid_to_input_leaves_unfound_at_zero():
    kp = np.zeros((1, 18, 3), np.float32)
    kp[0, 3] = [2, 3, 0.5]
    out = grid_to_input(kp, DecodeConfig())
    np.testing.assert_allclose(out[0, 3], [9.5, 13.5, 0.5])
    assert np.all(out[0, :3] == 0)


def test_c_params_defaults_match_config():
    # The C++ struct's defaults are documented as DecodeConfig's; keep them equal.
    config = DecodeConfig()
    default = _C.DecodeParams()
    converted = to_c_params(grid_params(config, 32))
    for name in (
        "peak_threshold",
        "max_peaks",
        "refine",
        "part_threshold",
        "connect_ratio",
        "max_samples",
        "len_rate",
        "connection_tolerance",
        "attach_both_ends",
        "exchange_partners",
        "min_keypoints",
        "min_mean_score",
        "person_score",
    ):
        assert getattr(default, name) == getattr(converted, name), name
    assert converted.grid_stride == 4.0 and converted.prior_height == 128.0


def test_parts_table_matches_skeleton():
    assert _C.PARTS == skeleton.PARTS


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"person_score": "max"}, "person_score"),
        ({"upsample": 3}, "upsample"),
        ({"max_peaks": 0}, "max_peaks"),
        ({"max_samples": 1}, "max_samples"),
        ({"connect_ratio": 1.5}, "connect_ratio"),
    ],
)
def test_decode_config_validation(overrides, match):
    with pytest.raises(ValueError, match=match):
        DecodeConfig(**overrides)


def test_c_params_validation():
    params = _C.DecodeParams()
    params.max_samples = 1
    with pytest.raises(ValueError, match="max_samples"):
        params.validate()
    with pytest.raises(ValueError, match="max_samples"):
        _C.decode(np.zeros((50, 4, 4), np.float32), params)
