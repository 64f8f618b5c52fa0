"""NumPy reference of the grouping decoder: the specification ``simplepose._C`` must match.

Readable rather than fast: pixel work is vectorised, but the greedy matching and the assembly
are plain Python loops over candidates and connections, one rule per branch. Every step works
on the heatmap grid (x before y, cell centre = integer index, in cells) and in float64; the
arithmetic is written in the same order as the C++ core (``csrc/src``), which is compiled
without fused multiply-add, so both give the same bits except for ``log`` (used only by the
sub-pixel refinement, where libm and NumPy may differ by one ulp).

Tie rules (shared with the C++ core):

- peaks: a cell must be strictly greater than its earlier (raster order) neighbours and not
  smaller than the later ones, so a flat top yields one peak, its first cell in raster order;
  peaks of a type are ordered by score descending, ties by raster index;
- connections: candidate pairs are enumerated in (A id, B id) order and stably sorted by rank,
  so equal ranks keep that order; exchanges scan kept connections i < j in that order and
  need a strictly larger weight sum;
- people: sorted by score descending, stably, so equal scores keep creation order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simplepose import skeleton
from simplepose.config import DecodeConfig

#: Pairs shorter than this (grid cells) are skipped as zero-length.
MIN_LENGTH = 1e-6
#: Floor under heatmap values before the logarithm of the sub-pixel fit.
LOG_FLOOR = 1e-12

_NK = skeleton.NUM_KEYPOINTS
_KP0 = skeleton.KEYPOINT_CHANNEL_OFFSET


@dataclass(frozen=True)
class GridParams:
    """A ``DecodeConfig`` resolved for one heatmap grid (mirrors ``_C.DecodeParams``).

    Attributes:
        config: the thresholds.
        grid_stride: network-input pixels per grid cell (``config.stride / upsample``).
        prior_height: height (input pixels) used by the distance prior.
    """

    config: DecodeConfig
    grid_stride: float
    prior_height: float


def _finite(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    # Non-finite values count as 0 everywhere (as in the C++ core).
    return np.where(np.isfinite(values), values, np.float32(0)).astype(np.float32)


def _log_parabola_offset(
    logs: npt.NDArray[np.float64], lines: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """Sub-pixel offset along one axis from the log values around each peak.

    A parabola through (previous, centre, next) on each of the three lines through the
    3 x 3 neighbourhood, fitted jointly: 0.5 * sum(lo - hi) / sum((lo - mid) + (hi - mid)),
    lines summed in ascending order (the C++ order); exact for a Gaussian (whose logarithm is
    a parabola), less noisy than one line. 0 when flat, clamped to half a cell.

    Args:
        logs: (N, 3 lines, 3 positions) log values; positions previous, centre, next.
        lines: (N, 3) which lines exist (inside the grid).
    """
    lo, mid, hi = logs[:, :, 0], logs[:, :, 1], logs[:, :, 2]
    slope = np.zeros(len(logs))
    curvature = np.zeros(len(logs))
    for i in range(3):  # sequential sums, the C++ order
        slope = slope + np.where(lines[:, i], lo[:, i] - hi[:, i], 0.0)
        curvature = curvature + np.where(
            lines[:, i], (lo[:, i] - mid[:, i]) + (hi[:, i] - mid[:, i]), 0.0
        )
    offset = np.zeros(len(logs))
    bent = curvature < 0.0
    offset[bent] = 0.5 * slope[bent] / curvature[bent]
    return np.clip(offset, -0.5, 0.5)


def find_peaks(
    heatmaps: npt.NDArray[np.float32], params: GridParams
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Keypoint peaks: 3x3 NMS, threshold, cap per type, 3 x 3 log-parabola refinement.

    Args:
        heatmaps: float32 (50, H, W) on the grid.
        params: resolved thresholds.

    Returns:
        peaks: float64 (N, 3) ``[x, y, score]`` in grid cells, grouped by keypoint type.
        offsets: int64 (19,); peaks of type k are rows ``offsets[k]:offsets[k + 1]``.
    """
    config = params.config
    maps = _finite(heatmaps[_KP0 : _KP0 + _NK])  # (18, H, W)
    _, h, w = maps.shape
    padded = np.pad(maps, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    is_peak = maps >= np.float32(config.peak_threshold)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            neighbour = padded[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
            earlier = dy < 0 or (dy == 0 and dx < 0)
            is_peak &= (maps > neighbour) if earlier else (maps >= neighbour)

    rows = []
    offsets = np.zeros(_NK + 1, np.int64)
    for k in range(_NK):
        index = np.flatnonzero(is_peak[k])
        values = maps[k].ravel()[index]
        order = np.lexsort((index, -values))[: config.max_peaks]
        index, values = index[order], values[order].astype(np.float64)
        y, x = np.divmod(index, w)
        ox = np.zeros(len(index))
        oy = np.zeros(len(index))
        if config.refine:
            # log values of the 3 x 3 neighbourhood, clipped at the border (masked below)
            logs = np.log(np.maximum(maps[k].astype(np.float64), LOG_FLOOR))
            d = np.arange(-1, 2)
            ys = np.clip(y[:, None] + d, 0, h - 1)  # (n, 3)
            xs = np.clip(x[:, None] + d, 0, w - 1)
            block = logs[ys[:, :, None], xs[:, None, :]]  # (n, 3 rows, 3 columns)
            row_ok = (y[:, None] + d >= 0) & (y[:, None] + d < h)
            col_ok = (x[:, None] + d >= 0) & (x[:, None] + d < w)
            inner = (x > 0) & (x < w - 1)
            ox[inner] = _log_parabola_offset(block[inner], row_ok[inner])
            inner = (y > 0) & (y < h - 1)
            oy[inner] = _log_parabola_offset(block[inner].transpose(0, 2, 1), col_ok[inner])
        rows.append(np.stack([x + ox, y + oy, values], axis=1))
        offsets[k + 1] = offsets[k] + len(index)
    return np.concatenate(rows).reshape(-1, 3), offsets


def _bilinear(
    part_map: npt.NDArray[np.float32], x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    # Same expression order as bilinear() in csrc/src/part_scoring.cpp.
    h, w = part_map.shape
    x = np.minimum(np.maximum(x, 0.0), float(w - 1))
    y = np.minimum(np.maximum(y, 0.0), float(h - 1))
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = x - x0
    fy = y - y0
    m = part_map.astype(np.float64)
    top = (1.0 - fx) * m[y0, x0] + fx * m[y0, x1]
    bottom = (1.0 - fx) * m[y1, x0] + fx * m[y1, x1]
    return (1.0 - fy) * top + fy * bottom


def score_parts(
    heatmaps: npt.NDArray[np.float32],
    peaks: npt.NDArray[np.float64],
    offsets: npt.NDArray[np.int64],
    params: GridParams,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.float64]]:
    """Accepted, one-to-one matched connections of every body part.

    For part k = (from, to) and every pair (A, B) of peaks of those types: n =
    clip(floor(|AB| px + 1.5), 2, max_samples) points evenly spaced on A..B (inclusive) are
    sampled bilinearly from part map k; score = mean + min(0.5 prior_height / |AB| px - 1, 0);
    accepted when #(samples > part_threshold) >= connect_ratio n and score > 0; ranked by
    0.5 score + 0.25 score_A + 0.25 score_B; kept greedily one-to-one, at most min(#A, #B);
    with ``exchange_partners``, then improved by exchanges (``_exchange_partners``).

    Args:
        heatmaps: float32 (50, H, W) on the grid.
        peaks: float64 (N, 3) ``[x, y, score]`` from ``find_peaks``.
        offsets: int64 (19,) from ``find_peaks``.
        params: resolved thresholds.

    Returns:
        parts: int32 (C,) part index, in part order.
        pairs: int32 (C, 2) global peak ids ``[from, to]``, each part's in rank order.
        scores: float64 (C,) connection scores.
    """
    config = params.config
    parts: list[int] = []
    pairs: list[tuple[int, int]] = []
    scores: list[float] = []
    samples = np.arange(config.max_samples)
    for part, (a_type, b_type) in enumerate(skeleton.PARTS):
        a0, a1 = int(offsets[a_type]), int(offsets[a_type + 1])
        b0, b1 = int(offsets[b_type]), int(offsets[b_type + 1])
        num_a, num_b = a1 - a0, b1 - b0
        if num_a == 0 or num_b == 0:
            continue
        a_peaks, b_peaks = peaks[a0:a1], peaks[b0:b1]
        # All pairs, flattened in (A, B) order: the enumeration order that breaks rank ties.
        ai, bi = (g.ravel() for g in np.meshgrid(np.arange(num_a), np.arange(num_b), indexing="ij"))
        ax, ay = a_peaks[ai, 0], a_peaks[ai, 1]
        dx = b_peaks[bi, 0] - ax
        dy = b_peaks[bi, 1] - ay
        length = np.sqrt(dx * dx + dy * dy)
        keep = length >= MIN_LENGTH
        ai, bi, ax, ay, dx, dy, length = (v[keep] for v in (ai, bi, ax, ay, dx, dy, length))
        length_px = length * params.grid_stride
        prior = np.minimum(0.5 * params.prior_height / length_px - 1.0, 0.0)
        n = np.minimum(np.maximum(np.floor(length_px + 1.5), 2.0), float(config.max_samples))
        n = n.astype(np.int64)
        t = samples[None, :] / (n[:, None] - 1)
        in_segment = samples[None, :] < n[:, None]
        values = _bilinear(
            _finite(heatmaps[part]), ax[:, None] + t * dx[:, None], ay[:, None] + t * dy[:, None]
        )
        passed = ((values > config.part_threshold) & in_segment).sum(axis=1)
        total = np.zeros(len(n))
        for s in range(config.max_samples):  # sequential sum, the C++ order
            total = total + np.where(in_segment[:, s], values[:, s], 0.0)
        score = total / n + prior
        accepted = (passed >= config.connect_ratio * n) & (score > 0.0)
        ai, bi, score = ai[accepted], bi[accepted], score[accepted]
        rank = 0.5 * score + 0.25 * a_peaks[ai, 2] + 0.25 * b_peaks[bi, 2]
        used_a = np.zeros(num_a, bool)
        used_b = np.zeros(num_b, bool)
        kept: list[int] = []  # candidate indices, greedy order
        for c in np.argsort(-rank, kind="stable"):
            if len(kept) == min(num_a, num_b):
                break
            if used_a[ai[c]] or used_b[bi[c]]:
                continue
            used_a[ai[c]] = used_b[bi[c]] = True
            kept.append(int(c))
        if config.exchange_partners:
            weight = score * np.maximum(a_peaks[ai, 2], 0.0) * np.maximum(b_peaks[bi, 2], 0.0)
            kept = _exchange_partners(kept, ai, bi, weight, rank, num_b)
        for c in kept:
            parts.append(part)
            pairs.append((a0 + int(ai[c]), b0 + int(bi[c])))
            scores.append(float(score[c]))
    return (
        np.asarray(parts, np.int32),
        np.asarray(pairs, np.int32).reshape(-1, 2),
        np.asarray(scores, np.float64),
    )


def _exchange_partners(
    kept: list[int],
    ai: npt.NDArray[np.int64],
    bi: npt.NDArray[np.int64],
    weight: npt.NDArray[np.float64],
    rank: npt.NDArray[np.float64],
    num_b: int,
) -> list[int]:
    """Improve a greedy matching by exchanging partners (``_C.score_parts``'s rule).

    For kept connections i < j (positions in ``kept``), (A_i, B_i), (A_j, B_j) become
    (A_i, B_j), (A_j, B_i) when both crossed pairs are candidates and
    ``w[A_i B_j] + w[A_j B_i] > w[A_i B_i] + w[A_j B_j]``; passes repeat until one makes no
    exchange (at most ``len(kept)`` passes). Returns the kept candidates stably sorted by rank.

    Args:
        kept: candidate indices of the greedy matching, in greedy order.
        ai, bi: (C,) local A and B index of every accepted candidate.
        weight: (C,) score x max(score_A, 0) x max(score_B, 0).
        rank: (C,) ranking key.
        num_b: number of B peaks.
    """
    index = np.full((int(ai.max(initial=-1)) + 1, num_b), -1, np.int64)
    index[ai, bi] = np.arange(len(ai))
    kept = list(kept)
    for _ in range(len(kept)):
        changed = False
        for i in range(len(kept)):
            j = i + 1
            while j < len(kept):
                # Vectorised over the remaining j: the first one that improves is exchanged,
                # then the scan goes on from the next j with the new (A_i, B_i).
                rest = np.asarray(kept[j:], np.int64)
                ij = index[ai[kept[i]], bi[rest]]
                ji = index[ai[rest], bi[kept[i]]]
                valid = (ij >= 0) & (ji >= 0)
                gain = np.zeros(len(rest), bool)
                gain[valid] = weight[ij[valid]] + weight[ji[valid]] > (
                    weight[kept[i]] + weight[rest[valid]]
                )
                hits = np.flatnonzero(gain)
                if len(hits) == 0:
                    break
                j += int(hits[0])
                kept[i], kept[j] = int(ij[hits[0]]), int(ji[hits[0]])
                changed = True
                j += 1
        if not changed:
            break
    return sorted(kept, key=lambda c: -rank[c])  # sorted() is stable


@dataclass
class _Person:
    slot: list[int]  # peak id per keypoint type, -1 when empty
    limb_score: list[float]  # score of the connection that set each slot
    total: float  # sum of keypoint and connection scores
    count: int  # keypoints held
    longest: float  # longest accepted limb, grid cells

    def lowest_limb_score(self) -> float:
        return min(s for k, s in zip(self.slot, self.limb_score) if k >= 0)


def assemble(
    peaks: npt.NDArray[np.float64],
    parts: npt.NDArray[np.int32],
    pairs: npt.NDArray[np.int32],
    scores: npt.NDArray[np.float64],
    params: GridParams,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float64]]:
    """Greedy assembly of connections into people (the authors' rules, see ``_C.assemble``).

    Args:
        peaks: float64 (N, 3) ``[x, y, score]`` grid cells.
        parts, pairs, scores: connections from ``score_parts``, in that order.
        params: resolved thresholds.

    Returns:
        members: int32 (P, 18) peak id per network keypoint, -1 when unfound.
        scores: float64 (P,) person scores, descending (ties keep creation order).
    """
    config = params.config
    persons: list[_Person] = []
    for part, (a, b), s in zip(parts.tolist(), pairs.tolist(), scores.tolist()):
        a_type, b_type = skeleton.PARTS[part]
        dx = peaks[b, 0] - peaks[a, 0]
        dy = peaks[b, 1] - peaks[a, 1]
        length = float(np.sqrt(dx * dx + dy * dy))
        # A peak belongs to at most one person, so at most two people can match.
        found = [j for j, p in enumerate(persons) if p.slot[a_type] == a or p.slot[b_type] == b]
        found = found[:2]
        if len(found) == 1:
            p = persons[found[0]]
            short_enough = length < config.len_rate * p.longest
            if p.slot[b_type] < 0:
                if short_enough:  # attach B
                    p.slot[b_type], p.limb_score[b_type] = b, s
                    p.count += 1
                    p.total += peaks[b, 2] + s
                    p.longest = max(p.longest, length)
            elif p.slot[b_type] != b:
                if s > p.limb_score[b_type] and short_enough:  # replace a weaker B
                    p.total -= peaks[p.slot[b_type], 2] + p.limb_score[b_type]
                    p.slot[b_type], p.limb_score[b_type] = b, s
                    p.total += peaks[b, 2] + s
                    p.longest = max(p.longest, length)
            else:
                if s >= p.limb_score[b_type]:  # same B, stronger limb
                    p.total += s - p.limb_score[b_type]
                    p.limb_score[b_type] = s
                if config.attach_both_ends and p.slot[a_type] < 0 and short_enough:
                    p.slot[a_type], p.limb_score[a_type] = a, s
                    p.count += 1
                    p.total += peaks[a, 2] + s
                    p.longest = max(p.longest, length)
        elif len(found) == 2:
            p, q = persons[found[0]], persons[found[1]]
            if any(i >= 0 and j >= 0 for i, j in zip(p.slot, q.slot)):
                continue  # the authors' conflict branch is off (remove_recon = 0)
            lowest = min(p.lowest_limb_score(), q.lowest_limb_score())
            if s < config.connection_tolerance * lowest:
                continue
            if not length < config.len_rate * max(p.longest, q.longest):
                continue
            for k in range(_NK):
                if q.slot[k] >= 0:
                    p.slot[k], p.limb_score[k] = q.slot[k], q.limb_score[k]
            p.count += q.count
            p.total += q.total + s
            p.longest = max(max(p.longest, q.longest), length)
            del persons[found[1]]
        else:
            slot = [-1] * _NK
            limb_score = [0.0] * _NK
            slot[a_type], slot[b_type] = a, b
            limb_score[a_type] = limb_score[b_type] = s
            total = peaks[a, 2] + peaks[b, 2] + s
            persons.append(_Person(slot, limb_score, float(total), 2, length))

    kept = [
        p
        for p in persons
        if p.count >= config.min_keypoints and p.total / p.count >= config.min_mean_score
    ]
    if config.person_score == "mean":
        person_scores = [p.total / p.count for p in kept]
    else:
        person_scores = [1.0 - 1.0 / p.total for p in kept]
    order = np.argsort(-np.asarray(person_scores, np.float64), kind="stable")
    members = np.asarray([kept[i].slot for i in order], np.int32).reshape(-1, _NK)
    return members, np.asarray(person_scores, np.float64)[order]


def decode(
    heatmaps: npt.NDArray[np.float32], params: GridParams
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The whole decode on the grid (the reference of ``_C.decode``).

    Args:
        heatmaps: float32 (50, H, W) on the grid.
        params: resolved thresholds.

    Returns:
        keypoints: float32 (P, 18, 3) ``[x, y, score]`` in grid cells, network keypoint order,
            unfound keypoints 0.
        scores: float32 (P,), descending.
    """
    peaks, offsets = find_peaks(heatmaps, params)
    parts, pairs, scores = score_parts(heatmaps, peaks, offsets, params)
    members, person_scores = assemble(peaks, parts, pairs, scores, params)
    keypoints = np.zeros((len(members), _NK, 3), np.float32)
    found = members >= 0
    keypoints[found] = peaks[members[found]]
    # Scores are float64 sums; clamp before narrowing so huge finite inputs stay finite.
    limit = float(np.finfo(np.float32).max)
    return keypoints, np.clip(person_scores, -limit, limit).astype(np.float32)
