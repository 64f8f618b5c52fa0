"""Person tracking: stable IDs across frames from OKS-style keypoint similarity.

Each frame's poses are matched to the live tracks greedily on a similarity matrix (the best
remaining pair first), which is what the authors' grouping does for body parts too and
needs no SciPy. Tracks predict their keypoints with a constant velocity, so people who
cross or vanish behind something for a few frames keep their ID. IDs start at 1, grow by
one per new track and are never reused.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simplepose import skeleton
from simplepose.types import Poses

#: COCO per-keypoint OKS sigmas (COCO order), as published with the COCO keypoint metric.
COCO_SIGMAS: npt.NDArray[np.float64] = (
    np.array(
        [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87]
        + [0.89, 0.89]
    )
    / 10.0
)

#: Smallest person area (pixels^2) used as the OKS scale, so a pose with one or two found
#: keypoints (a zero-area box) does not make every distance look huge.
MIN_AREA = 32.0**2


def _check_keypoints(name: str, keypoints: npt.NDArray[np.floating]) -> None:
    if keypoints.ndim != 3 or keypoints.shape[1:] != (skeleton.NUM_COCO_KEYPOINTS, 3):
        raise ValueError(f"{name} must have shape (P, 17, 3), got {keypoints.shape}")


def keypoint_similarity(
    reference: npt.NDArray[np.floating],
    candidates: npt.NDArray[np.floating],
    min_area: float = MIN_AREA,
) -> npt.NDArray[np.float64]:
    """OKS-style similarity between every pair of poses.

    For keypoint ``k`` found in both poses at distance ``d``, the similarity is
    ``exp(-d^2 / (2 * area * (2 sigma_k)^2))`` (the COCO OKS term); the pair's similarity
    is the mean over the keypoints found in both, and 0 when they share none. ``area`` is
    the area of the box around the reference pose's found keypoints (at least ``min_area``).

    Args:
        reference: float (T, 17, 3) ``[x, y, score]`` poses, e.g. the tracks' predictions;
            a keypoint with score <= 0 is not found.
        candidates: float (P, 17, 3) poses of the new frame, same pixel space.
        min_area: floor of the OKS area, pixels^2.

    Returns:
        float64 (T, P) similarities in [0, 1].
    """
    _check_keypoints("reference", reference)
    _check_keypoints("candidates", candidates)
    ref = np.asarray(reference, np.float64)
    cand = np.asarray(candidates, np.float64)
    ref_found = ref[:, :, 2] > 0
    cand_found = cand[:, :, 2] > 0
    # Box of each reference pose's found keypoints; unfound ones are masked to +-inf.
    xy = ref[:, :, :2]
    lo = np.where(ref_found[:, :, None], xy, np.inf).min(axis=1)
    hi = np.where(ref_found[:, :, None], xy, -np.inf).max(axis=1)
    extent = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
    area = np.maximum(extent[:, 0] * extent[:, 1], min_area)  # (T,)
    d2 = ((ref[:, None, :, :2] - cand[None, :, :, :2]) ** 2).sum(axis=-1)  # (T, P, 17)
    variances = (2.0 * COCO_SIGMAS) ** 2
    terms = np.exp(-d2 / (2.0 * area[:, None, None] * variances))
    both = ref_found[:, None, :] & cand_found[None, :, :]
    count = both.sum(axis=-1)
    total = np.where(both, terms, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def greedy_match(
    similarity: npt.NDArray[np.floating], min_similarity: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Match rows to columns greedily, best remaining pair first.

    Ties go to the lower row, then the lower column (``argmax`` order), so older tracks
    win ties.

    Args:
        similarity: float (T, P) matrix.
        min_similarity: pairs below this are never matched.

    Returns:
        (rows, cols): int64 (M,) indices of the matched pairs, in matching order.
    """
    if similarity.ndim != 2:
        raise ValueError(f"similarity must have shape (T, P), got {similarity.shape}")
    sim = np.array(similarity, np.float64)
    rows: list[int] = []
    cols: list[int] = []
    for _ in range(min(sim.shape)):
        flat = int(np.argmax(sim))
        row, col = divmod(flat, sim.shape[1])
        if not sim[row, col] >= min_similarity:  # also stops on -inf / nan
            break
        rows.append(row)
        cols.append(col)
        sim[row, :] = -np.inf
        sim[:, col] = -np.inf
    return np.asarray(rows, np.int64), np.asarray(cols, np.int64)


@dataclass
class _Track:
    track_id: int
    keypoints: npt.NDArray[np.float64]  # (17, 3) last observation
    last_index: int
    velocity: npt.NDArray[np.float64]  # (2,) pixels per frame
    hits: int = 1

    def predicted(self, index: int) -> npt.NDArray[np.float64]:
        keypoints = self.keypoints.copy()
        found = keypoints[:, 2] > 0
        keypoints[found, :2] += self.velocity * (index - self.last_index)
        return keypoints


class Tracker:
    """Assigns stable person IDs across frames.

    Args:
        min_similarity: lowest ``keypoint_similarity`` that continues a track.
        max_age: frames a track may go unseen and still be matched (0: must be seen in
            every frame).
        min_area: OKS area floor, pixels^2.
    """

    def __init__(self, min_similarity: float = 0.2, max_age: int = 15, min_area: float = MIN_AREA):
        if not 0.0 <= min_similarity <= 1.0:
            raise ValueError(f"min_similarity must be in [0, 1], got {min_similarity!r}")
        if not isinstance(max_age, int) or max_age < 0:
            raise ValueError(f"max_age must be an int >= 0, got {max_age!r}")
        self.min_similarity = float(min_similarity)
        self.max_age = max_age
        self.min_area = float(min_area)
        self._tracks: list[_Track] = []
        self._next_id = itertools.count(1)
        self._last_index = -1

    @property
    def num_tracks(self) -> int:
        """Tracks currently alive (seen within ``max_age`` frames)."""
        return len(self._tracks)

    def update(self, poses: Poses, frame_index: int | None = None) -> npt.NDArray[np.int64]:
        """Match one frame's poses to the tracks and return their IDs.

        Args:
            poses: the frame's poses in image pixels.
            frame_index: the frame's index in the source; gaps (dropped frames) age the
                tracks and scale the velocity prediction. ``None``: previous index + 1.

        Returns:
            int64 (P,) track IDs in the order of ``poses``.
        """
        if not isinstance(poses, Poses):
            raise TypeError(f"poses must be Poses, got {type(poses).__name__}")
        index = self._last_index + 1 if frame_index is None else int(frame_index)
        if index <= self._last_index:
            raise ValueError(f"frame_index must increase, got {index} after {self._last_index}")
        self._last_index = index
        self._tracks = [t for t in self._tracks if index - t.last_index <= self.max_age + 1]
        keypoints = np.asarray(poses.keypoints, np.float64)
        ids = np.zeros(len(poses), np.int64)
        matched = np.zeros(len(poses), bool)
        if self._tracks and len(poses):
            predicted = np.stack([t.predicted(index) for t in self._tracks])
            similarity = keypoint_similarity(predicted, keypoints, self.min_area)
            rows, cols = greedy_match(similarity, self.min_similarity)
            for row, col in zip(rows.tolist(), cols.tolist()):
                self._continue(self._tracks[row], keypoints[col], index)
                ids[col] = self._tracks[row].track_id
                matched[col] = True
        for col in np.flatnonzero(~matched).tolist():
            track = _Track(next(self._next_id), keypoints[col].copy(), index, np.zeros(2))
            self._tracks.append(track)
            ids[col] = track.track_id
        return ids

    @staticmethod
    def _continue(track: _Track, keypoints: npt.NDArray[np.float64], index: int) -> None:
        gap = index - track.last_index
        both = (track.keypoints[:, 2] > 0) & (keypoints[:, 2] > 0)
        if both.any():
            step = (keypoints[both, :2] - track.keypoints[both, :2]).mean(axis=0) / gap
            # Average the first two steps equally, then smooth: one noisy detection must
            # not throw the prediction off.
            weight = 1.0 if track.hits == 1 else 0.5
            track.velocity = (1.0 - weight) * track.velocity + weight * step
        track.keypoints = keypoints.copy()
        track.last_index = index
        track.hits += 1

    def reset(self) -> None:
        """Forget every track (IDs keep counting up, so none is ever reused)."""
        self._tracks = []
        self._last_index = -1
