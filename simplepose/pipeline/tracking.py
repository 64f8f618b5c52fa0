"""Person tracking: stable IDs across frames from OKS-style keypoint similarity.

Each frame's poses are matched to the live tracks greedily on a similarity matrix (the best
remaining pair first), which is what the authors' grouping does for body parts too and
needs no SciPy. Tracks predict their keypoints with a constant velocity, so people who
cross or vanish behind something for a few frames keep their ID. IDs start at 1, grow by
one per new track and are never reused.
"""

from __future__ import annotations

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


def _boxes(keypoints: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(P, 4) ``[x0, y0, x1, y1]`` around each pose's found keypoints (NaN when none)."""
    found = keypoints[:, :, 2:3] > 0
    xy = keypoints[:, :, :2]
    with np.errstate(invalid="ignore"):
        lo = np.where(found, xy, np.inf).min(axis=1)
        hi = np.where(found, xy, -np.inf).max(axis=1)
    boxes = np.concatenate([lo, hi], axis=1)
    boxes[~np.isfinite(boxes).all(axis=1)] = np.nan
    return boxes


def _oks_areas(boxes: npt.NDArray[np.float64], min_area: float) -> npt.NDArray[np.float64]:
    """OKS scale per pose: its box area, at least ``min_area`` (also for no/one keypoint)."""
    extent = np.nan_to_num(boxes[:, 2:] - boxes[:, :2], nan=0.0)
    return np.maximum(extent[:, 0] * extent[:, 1], min_area)


def pair_similarity(
    reference: npt.NDArray[np.float64],
    candidates: npt.NDArray[np.float64],
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    areas: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """``keypoint_similarity`` of the pairs ``(reference[rows[i]], candidates[cols[i]])``.

    Args:
        reference: float64 (T, 17, 3) poses; ``areas`` (T,) their OKS areas.
        candidates: float64 (P, 17, 3) poses.
        rows, cols: int64 (K,) pair indices.

    Returns:
        float64 (K,) similarities in [0, 1].
    """
    # Per-coordinate (K, 17) arrays and one exponent scale per reference keypoint: a few
    # contiguous passes instead of strided (K, 17, 2) temporaries.
    scale = -1.0 / (2.0 * areas[:, None] * (2.0 * COCO_SIGMAS) ** 2)  # (T, 17)
    dx = reference[:, :, 0][rows] - candidates[:, :, 0][cols]
    dy = reference[:, :, 1][rows] - candidates[:, :, 1][cols]
    both = (reference[:, :, 2] > 0)[rows] & (candidates[:, :, 2] > 0)[cols]
    terms = np.exp((dx * dx + dy * dy) * scale[rows])
    count = both.sum(axis=1)
    total = (terms * both).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


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
    rows, cols = (a.ravel() for a in np.indices((len(ref), len(cand)), dtype=np.int64))
    areas = _oks_areas(_boxes(ref), min_area)
    similarity = pair_similarity(ref, cand, rows, cols, areas)
    return similarity.reshape(len(ref), len(cand))


def candidate_pairs(
    reference_boxes: npt.NDArray[np.float64],
    candidate_boxes: npt.NDArray[np.float64],
    areas: npt.NDArray[np.float64],
    min_similarity: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The (row, col) pairs whose ``keypoint_similarity`` can reach ``min_similarity``.

    Exact pruning, so a crowd costs O(T P) cheap box tests plus OKS on the few pairs that are
    near each other, instead of O(T P K) exponentials: the similarity is a mean of per-
    keypoint terms, so it reaches ``s`` only if one term does, and every term is at most
    ``exp(-g^2 / (2 area max_var))`` where ``g`` is the gap between the two poses' boxes
    (no two keypoints are closer than their boxes).

    Args:
        reference_boxes: float64 (T, 4) ``[x0, y0, x1, y1]`` of the reference poses' found
            keypoints (NaN: none found); ``areas`` (T,) their OKS areas.
        candidate_boxes: float64 (P, 4), the same for the candidate poses.
        min_similarity: in [0, 1]; 0 keeps every pair.

    Returns:
        (rows, cols): int64 (K,) pairs, row-major order.
    """
    ref_boxes, cand_boxes = reference_boxes, candidate_boxes
    if min_similarity <= 0.0:
        rows, cols = np.indices((len(ref_boxes), len(cand_boxes)), dtype=np.int64)
        return rows.ravel(), cols.ravel()
    # Gap between the boxes along x and along y, (T, P) each; NaN for a pose without a
    # found keypoint (np.maximum keeps NaN, and NaN <= reach is False: it matches nothing).
    gap_x = np.maximum(
        np.maximum(cand_boxes[None, :, 0] - ref_boxes[:, None, 2], 0.0),
        ref_boxes[:, None, 0] - cand_boxes[None, :, 2],
    )
    gap_y = np.maximum(
        np.maximum(cand_boxes[None, :, 1] - ref_boxes[:, None, 3], 0.0),
        ref_boxes[:, None, 1] - cand_boxes[None, :, 3],
    )
    reach = -np.log(min_similarity) * 2.0 * areas * float(((2.0 * COCO_SIGMAS) ** 2).max())
    with np.errstate(invalid="ignore"):
        near = gap_x * gap_x + gap_y * gap_y <= reach[:, None]
    rows, cols = np.nonzero(near)
    return rows.astype(np.int64), cols.astype(np.int64)


def _greedy(
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    min_similarity: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Greedy matching over candidate pairs: best first, ties to the lower row, then col."""
    keep = values >= min_similarity  # drops NaN too
    rows, cols, values = rows[keep], cols[keep], values[keep]
    order = np.lexsort((cols, rows, -values))
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    matched_rows: list[int] = []
    matched_cols: list[int] = []
    for row, col in zip(rows[order].tolist(), cols[order].tolist()):
        if row in used_rows or col in used_cols:
            continue
        used_rows.add(row)
        used_cols.add(col)
        matched_rows.append(row)
        matched_cols.append(col)
    return np.asarray(matched_rows, np.int64), np.asarray(matched_cols, np.int64)


def greedy_match(
    similarity: npt.NDArray[np.floating], min_similarity: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Match rows to columns greedily, best remaining pair first.

    Ties go to the lower row, then the lower column, so older tracks win ties. Pairs below
    ``min_similarity`` (or NaN) are never matched.

    Args:
        similarity: float (T, P) matrix.
        min_similarity: pairs below this are never matched.

    Returns:
        (rows, cols): int64 (M,) indices of the matched pairs, in matching order.
    """
    if similarity.ndim != 2:
        raise ValueError(f"similarity must have shape (T, P), got {similarity.shape}")
    sim = np.asarray(similarity, np.float64)
    rows, cols = (a.ravel() for a in np.indices(sim.shape, dtype=np.int64))
    return _greedy(rows, cols, sim.ravel(), min_similarity)


class Tracker:
    """Assigns stable person IDs across frames.

    Tracks are kept as arrays (one row per track), and only pairs of a track and a pose
    that are near each other are scored (``candidate_pairs``, exact), so a crowd of 100
    people with 15 frames of track history costs about a millisecond, not tens.

    A track seen once is tentative: unless it is matched again within
    ``tentative_max_age`` frames it is dropped. Spurious detections (an untrained or
    uncertain network gives dozens per frame) then do not pile up as hundreds of tracks for
    ``max_age`` frames, which would make every frame slower and give them old IDs to steal.

    Args:
        min_similarity: lowest ``keypoint_similarity`` that continues a track.
        max_age: frames a track may go unseen and still be matched (0: must be seen in
            every frame).
        min_area: OKS area floor, pixels^2.
        tentative_max_age: ``max_age`` of a track seen only once (at most ``max_age``).
    """

    def __init__(
        self,
        min_similarity: float = 0.2,
        max_age: int = 15,
        min_area: float = MIN_AREA,
        tentative_max_age: int = 2,
    ):
        if not 0.0 <= min_similarity <= 1.0:
            raise ValueError(f"min_similarity must be in [0, 1], got {min_similarity!r}")
        for name, value in (("max_age", max_age), ("tentative_max_age", tentative_max_age)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        self.min_similarity = float(min_similarity)
        self.max_age = max_age
        self.tentative_max_age = min(tentative_max_age, max_age)
        self.min_area = float(min_area)
        self._next_id = 1
        self._last_index = -1
        self._clear()

    def _clear(self) -> None:
        k = skeleton.NUM_COCO_KEYPOINTS
        self._ids = np.zeros(0, np.int64)  # (T,)
        self._keypoints = np.zeros((0, k, 3), np.float64)  # (T, 17, 3) last observation
        self._boxes = np.zeros((0, 4), np.float64)  # (T, 4) box of its found keypoints
        self._seen_at = np.zeros(0, np.int64)  # (T,) frame index of the last observation
        self._velocity = np.zeros((0, 2), np.float64)  # (T, 2) pixels per frame
        self._hits = np.zeros(0, np.int64)  # (T,) observations so far

    @property
    def num_tracks(self) -> int:
        """Tracks kept (seen recently enough to be matched again)."""
        return len(self._ids)

    @property
    def track_ids(self) -> npt.NDArray[np.int64]:
        """int64 (T,) IDs of the kept tracks, in the row order of ``predicted``."""
        return self._ids.copy()

    def alive(self, index: int) -> npt.NDArray[np.bool_]:
        """bool (T,): which kept tracks can still be matched at frame ``index``."""
        max_age = np.where(self._hits > 1, self.max_age, self.tentative_max_age)
        return index - self._seen_at <= max_age + 1

    def _keep(self, rows: npt.NDArray[np.bool_]) -> None:
        self._ids = self._ids[rows]
        self._keypoints = self._keypoints[rows]
        self._boxes = self._boxes[rows]
        self._seen_at = self._seen_at[rows]
        self._velocity = self._velocity[rows]
        self._hits = self._hits[rows]

    def _shifts(self, index: int) -> npt.NDArray[np.float64]:
        """(T, 2): how far each track has moved since it was seen, at constant velocity."""
        return self._velocity * (index - self._seen_at)[:, None]

    def predicted(self, index: int) -> npt.NDArray[np.float64]:
        """float64 (T, 17, 3): each track's keypoints moved by its velocity to ``index``."""
        keypoints = self._keypoints.copy()
        found = keypoints[:, :, 2:3] > 0
        keypoints[:, :, :2] += np.where(found, self._shifts(index)[:, None, :], 0.0)
        return keypoints

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
        self._keep(self.alive(index))
        keypoints = np.asarray(poses.keypoints, np.float64)
        boxes = _boxes(keypoints)
        ids = np.zeros(len(poses), np.int64)
        matched = np.zeros(len(poses), bool)
        if len(self._ids) and len(poses):
            # Every found keypoint of a track moves by the same shift: so does its box.
            track_boxes = self._boxes + np.tile(self._shifts(index), 2)
            areas = _oks_areas(track_boxes, self.min_area)
            rows, cols = candidate_pairs(track_boxes, boxes, areas, self.min_similarity)
            predicted = self.predicted(index)
            similarity = pair_similarity(predicted, keypoints, rows, cols, areas)
            rows, cols = _greedy(rows, cols, similarity, self.min_similarity)
            self._continue(rows, keypoints[cols], boxes[cols], index)
            ids[cols] = self._ids[rows]
            matched[cols] = True
        new = np.flatnonzero(~matched)
        if new.size:
            new_ids = np.arange(self._next_id, self._next_id + new.size, dtype=np.int64)
            self._next_id += new.size
            ids[new] = new_ids
            self._ids = np.concatenate([self._ids, new_ids])
            self._keypoints = np.concatenate([self._keypoints, keypoints[new]])
            self._boxes = np.concatenate([self._boxes, boxes[new]])
            self._seen_at = np.concatenate([self._seen_at, np.full(new.size, index)])
            self._velocity = np.concatenate([self._velocity, np.zeros((new.size, 2))])
            self._hits = np.concatenate([self._hits, np.ones(new.size, np.int64)])
        return ids

    def _continue(
        self,
        rows: npt.NDArray[np.int64],
        keypoints: npt.NDArray[np.float64],
        boxes: npt.NDArray[np.float64],
        index: int,
    ) -> None:
        """Update the matched tracks ``rows`` with their new observations (M, 17, 3)."""
        if not rows.size:
            return
        old = self._keypoints[rows]
        gap = (index - self._seen_at[rows]).astype(np.float64)
        both = (old[:, :, 2] > 0) & (keypoints[:, :, 2] > 0)  # (M, 17)
        count = both.sum(axis=1)
        moved = np.where(both[:, :, None], keypoints[:, :, :2] - old[:, :, :2], 0.0).sum(axis=1)
        step = moved / np.maximum(count, 1)[:, None] / gap[:, None]
        # Average the first two steps equally, then smooth: one noisy detection must not
        # throw the prediction off. Tracks sharing no keypoint keep their velocity.
        weight = np.where(self._hits[rows] == 1, 1.0, 0.5)[:, None]
        blended = (1.0 - weight) * self._velocity[rows] + weight * step
        self._velocity[rows] = np.where((count > 0)[:, None], blended, self._velocity[rows])
        self._keypoints[rows] = keypoints
        self._boxes[rows] = boxes
        self._seen_at[rows] = index
        self._hits[rows] += 1

    def reset(self) -> None:
        """Forget every track (IDs keep counting up, so none is ever reused)."""
        self._clear()
        self._last_index = -1
