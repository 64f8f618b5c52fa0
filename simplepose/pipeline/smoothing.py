"""One-Euro filtering of keypoints per track and keypoint (Casiez et al., CHI 2012).

The One-Euro filter is an exponential smoother whose cutoff frequency rises with speed:
``cutoff = min_cutoff + beta * |speed|``. Slow or still keypoints are smoothed hard (less
jitter); fast ones follow closely (little lag). Both axes of a keypoint share one cutoff,
computed from the speed's magnitude in pixels per second, so the filter does not depend on
the direction of motion. Time steps come from the frame timestamps, so dropped frames and
variable frame rates are handled.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from simplepose import skeleton
from simplepose.types import Poses

_K = skeleton.NUM_COCO_KEYPOINTS


def _alpha(
    cutoff: npt.NDArray[np.float64] | float, dt: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    # Smoothing factor of a first-order low-pass filter at `cutoff` Hz sampled every `dt` s.
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return np.asarray(1.0 / (1.0 + tau / dt), np.float64)


class OneEuroFilter:
    """One-Euro filter over K independent 2-D points (e.g. the 17 keypoints of one person).

    A point that is not found in a sample keeps its state untouched (it neither moves the
    filter nor ages its speed estimate); when it is found again, its time step spans the
    gap, which lets the filter catch up at once.

    Args:
        min_cutoff: minimum cutoff frequency, Hz.
        beta: speed coefficient, 1 / pixel.
        d_cutoff: cutoff frequency of the speed estimate, Hz.
        num_points: K.
        fallback_dt: time step in seconds used when timestamps do not increase (e.g. images
            with timestamp 0).
    """

    def __init__(
        self,
        min_cutoff: float = 1.0,
        beta: float = 0.02,
        d_cutoff: float = 1.0,
        num_points: int = _K,
        fallback_dt: float = 1.0 / 30.0,
    ) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0 or fallback_dt <= 0:
            raise ValueError(
                "need min_cutoff > 0, d_cutoff > 0, beta >= 0, fallback_dt > 0; got "
                f"{min_cutoff}, {d_cutoff}, {beta}, {fallback_dt}"
            )
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.fallback_dt = float(fallback_dt)
        self._x = np.zeros((num_points, 2))
        self._dx = np.zeros((num_points, 2))
        self._t = np.zeros(num_points)
        self._init = np.zeros(num_points, bool)

    def __call__(
        self, points: npt.NDArray[np.floating], found: npt.NDArray[np.bool_], timestamp: float
    ) -> npt.NDArray[np.float64]:
        """Filter one sample.

        Args:
            points: float (K, 2) ``[x, y]`` pixels.
            found: bool (K,) which points are valid in this sample.
            timestamp: seconds.

        Returns:
            float64 (K, 2) filtered points; rows of unfound points are the input unchanged.
        """
        x = np.asarray(points, np.float64)
        if x.shape != self._x.shape or found.shape != self._init.shape:
            raise ValueError(
                f"points must have shape {self._x.shape} and found {self._init.shape}, got "
                f"{x.shape} and {found.shape}"
            )
        out = x.copy()
        new = found & ~self._init
        upd = found & self._init
        self._x[new] = x[new]
        self._dx[new] = 0.0
        self._t[new] = timestamp
        self._init |= new
        if upd.any():
            dt = timestamp - self._t[upd]
            dt = np.where(dt > 0, dt, self.fallback_dt)[:, None]
            dx = (x[upd] - self._x[upd]) / dt
            dx_hat = self._dx[upd] + _alpha(self.d_cutoff, dt) * (dx - self._dx[upd])
            speed = np.linalg.norm(dx_hat, axis=1, keepdims=True)
            cutoff = self.min_cutoff + self.beta * speed
            x_hat = self._x[upd] + _alpha(cutoff, dt) * (x[upd] - self._x[upd])
            self._x[upd] = x_hat
            self._dx[upd] = dx_hat
            self._t[upd] = timestamp
            out[upd] = x_hat
        return out


class PoseSmoother:
    """One-Euro filters for every tracked person; a track's filter is dropped when the
    track is absent from a frame (it starts afresh if the ID comes back).

    Args:
        min_cutoff: minimum cutoff frequency, Hz.
        beta: speed coefficient, 1 / pixel.
        d_cutoff: cutoff frequency of the speed estimate, Hz.
        fallback_dt: seconds per frame when timestamps do not increase.
    """

    def __init__(
        self,
        min_cutoff: float = 1.0,
        beta: float = 0.02,
        d_cutoff: float = 1.0,
        fallback_dt: float = 1.0 / 30.0,
    ) -> None:
        # Validate once here rather than on the first person.
        OneEuroFilter(min_cutoff, beta, d_cutoff, fallback_dt=fallback_dt)
        self._params = (min_cutoff, beta, d_cutoff)
        self._fallback_dt = fallback_dt
        self._filters: dict[int, OneEuroFilter] = {}

    @property
    def num_tracks(self) -> int:
        """Tracks with filter state."""
        return len(self._filters)

    def update(self, poses: Poses, track_ids: npt.NDArray[np.integer], timestamp: float) -> Poses:
        """Smooth one frame's poses.

        Args:
            poses: poses in image pixels.
            track_ids: int (P,) the poses' track IDs.
            timestamp: the frame's timestamp, seconds.

        Returns:
            New ``Poses`` with smoothed x, y; scores and unfound keypoints unchanged.
        """
        ids = np.asarray(track_ids)
        if ids.shape != (len(poses),):
            raise ValueError(f"track_ids must have shape ({len(poses)},), got {ids.shape}")
        keypoints = poses.keypoints.copy()
        found = poses.found
        alive: dict[int, OneEuroFilter] = {}
        for p, track_id in enumerate(ids.tolist()):
            filt = self._filters.get(track_id) or OneEuroFilter(
                *self._params, fallback_dt=self._fallback_dt
            )
            alive[track_id] = filt
            keypoints[p, :, :2] = filt(keypoints[p, :, :2], found[p], timestamp)
        self._filters = alive
        return Poses(keypoints.astype(np.float32), poses.scores.copy())

    def reset(self) -> None:
        """Forget every filter."""
        self._filters = {}
