"""One-Euro smoothing: less jitter on a still keypoint, bounded lag on a moving one."""

from __future__ import annotations

import numpy as np
import pytest

from simplepose.pipeline.smoothing import OneEuroFilter, PoseSmoother
from simplepose.types import Poses

FPS = 30.0


def _track(positions: np.ndarray, found: np.ndarray | None = None, **params: float) -> np.ndarray:
    """Filter a (T, 2) trajectory of keypoint 0 (the other 16 unfound); returns (T, 2)."""
    smoother = PoseSmoother(**params)
    out = np.zeros_like(positions)
    for t, xy in enumerate(positions):
        keypoints = np.zeros((1, 17, 3), np.float32)
        if found is None or found[t]:
            keypoints[0, 0] = [xy[0], xy[1], 0.9]
        poses = smoother.update(Poses(keypoints, np.ones(1, np.float32)), np.array([7]), t / FPS)
        out[t] = poses.keypoints[0, 0, :2]
        assert (poses.keypoints[0, 1:] == 0).all()  # unfound keypoints stay [0, 0, 0]
    return out


def test_jitter_reduced_on_static_keypoint() -> None:
    rng = np.random.default_rng(0)
    raw = np.array([320.0, 240.0]) + rng.normal(0, 3.0, (300, 2))
    smoothed = _track(raw)
    raw_var = raw[30:].var(axis=0).sum()
    smooth_var = smoothed[30:].var(axis=0).sum()
    # A first-order filter at ~1-2 Hz sampled at 30 Hz keeps roughly a tenth of white-noise
    # variance; 0.3 leaves margin for the speed-dependent cutoff.
    assert smooth_var < 0.3 * raw_var, (smooth_var, raw_var)
    # And it stays centred on the true position.
    assert np.abs(smoothed[30:].mean(axis=0) - [320, 240]).max() < 1.0


def test_lag_bounded_on_moving_keypoint() -> None:
    t = np.arange(120)
    truth = np.stack([100.0 + 10.0 * t, np.full(t.shape, 200.0)], axis=1)  # 300 px/s
    adaptive = _track(truth, beta=0.02)
    fixed = _track(truth, beta=0.0)
    lag_adaptive = np.abs(adaptive[60:, 0] - truth[60:, 0]).max()
    lag_fixed = np.abs(fixed[60:, 0] - truth[60:, 0]).max()
    # Steady-state lag of an exponential filter on a ramp is v dt (1 - a) / a: about 6.8 px
    # with cutoff 1 + 0.02 * 300 = 7 Hz, about 48 px with the fixed 1 Hz cutoff.
    assert lag_adaptive < 10.0, lag_adaptive
    assert lag_fixed > 40.0, lag_fixed
    assert np.abs(adaptive[60:, 1] - 200.0).max() < 1e-6


def test_unfound_keypoints_do_not_poison_state() -> None:
    positions = np.tile([[500.0, 300.0]], (40, 1))
    found = np.ones(40, bool)
    found[10:20] = False  # missing: reported as [0, 0, 0]
    out = _track(positions, found)
    assert (out[10:20] == 0).all()
    # Back at the old place: no pull towards (0, 0).
    np.testing.assert_allclose(out[20:], positions[20:], atol=1e-3)


def test_disappeared_tracks_are_dropped() -> None:
    smoother = PoseSmoother()
    kp = np.ones((2, 17, 3), np.float32)
    smoother.update(Poses(kp, np.ones(2, np.float32)), np.array([1, 2]), 0.0)
    assert smoother.num_tracks == 2
    smoother.update(Poses(kp[:1], np.ones(1, np.float32)), np.array([2]), 0.1)
    assert smoother.num_tracks == 1


def test_one_euro_matches_hand_computation() -> None:
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.0, d_cutoff=1.0, num_points=1)
    found = np.array([True])
    assert filt(np.array([[0.0, 0.0]]), found, 0.0).tolist() == [[0.0, 0.0]]
    out = filt(np.array([[10.0, 0.0]]), found, 0.1)
    alpha = 1.0 / (1.0 + (1.0 / (2 * np.pi)) / 0.1)
    assert out[0, 0] == pytest.approx(alpha * 10.0)


def test_validation() -> None:
    with pytest.raises(ValueError, match="min_cutoff"):
        PoseSmoother(min_cutoff=0.0)
    with pytest.raises(ValueError, match="track_ids"):
        PoseSmoother().update(Poses.empty(), np.array([1]), 0.0)
