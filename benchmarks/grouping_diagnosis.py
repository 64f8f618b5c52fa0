"""Where a grouping loses on oracle heatmaps: connection- and person-level errors against
the ground truth, for the native decoder and for the authors' scoring on the same peaks.

Used by ``benchmarks/bench_grouping.py --oracle``. Every variant starts from the same
peaks (``_C.find_peaks`` on the stride-4 grid), so the differences are part scoring and
assembly only. Each peak is attributed to the ground-truth person whose joint of the same
type is nearest, within ``OWNER_RADIUS`` cells; then, per image and per limb:

- missed connection: a ground-truth limb whose two endpoints both have a peak is not among
  the kept connections;
- wrong connection: a kept connection joins peaks of two different people (a wrong merge
  when the assembly follows it);
- split person: a person whose peaks end up in more than one decoded person (duplicates);
- mixed person: a decoded person holding peaks of more than one ground-truth person.

The authors' scoring follows the spec (section 6) on heatmaps upsampled x4 (bicubic): n =
min(round(|AB| + 1), 20) nearest-pixel samples, mean plus the distance prior with the image
height, accepted when (#samples > 0.1) >= 0.8 n and the score > 0, ranked by 0.5 s + 0.25
s_A + 0.25 s_B, kept greedily; their assembly rules (``attach_both_ends=False``,
``person_score="authors"``, no exchange).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt

from simplepose import skeleton
from simplepose.config import DecodeConfig
from simplepose.grouping import grid_params, grid_to_input, reference, to_c_params, upsample

#: A peak belongs to the ground-truth person whose same-type joint is nearest, if within
#: this many grid cells (8 input pixels at stride 4; keypoint sigma is 9 pixels).
OWNER_RADIUS = 2.0

AUTHORS_ASSEMBLY = DecodeConfig(
    attach_both_ends=False, person_score="authors", exchange_partners=False
)


@dataclasses.dataclass
class Grouping:
    """One decoder's result on one image (grid cells, network keypoint order)."""

    peaks: npt.NDArray[np.float64]  # (N, 3) [x, y, score]
    offsets: npt.NDArray[np.int64]  # (19,)
    parts: npt.NDArray[np.int32]  # (C,)
    pairs: npt.NDArray[np.int32]  # (C, 2)
    members: npt.NDArray[np.int32]  # (P, 18) peak ids or -1
    scores: npt.NDArray[np.float64]  # (P,)


def native_grouping(
    heatmaps: npt.NDArray[np.float32], config: DecodeConfig, image_height: float
) -> Grouping:
    """The C++ core's steps (upsample 1) on one image."""
    import simplepose._C as _C

    c_params = to_c_params(grid_params(config, heatmaps.shape[1], image_height))
    peaks, offsets = _C.find_peaks(heatmaps, c_params)
    parts, pairs, scores = _C.score_parts(heatmaps, peaks, offsets, c_params)
    members, person_scores = _C.assemble(peaks, offsets, parts, pairs, scores, c_params)
    return Grouping(peaks, offsets, parts, pairs, members, person_scores)


def authors_connections(
    heatmaps: npt.NDArray[np.float32],
    peaks: npt.NDArray[np.float64],
    offsets: npt.NDArray[np.int64],
    image_height: float,
    stride: int = 4,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.float64]]:
    """The authors' part scoring of grid peaks on the x``stride`` upsampled part maps.

    Args:
        heatmaps: float32 (50, H, W) on the stride-4 grid.
        peaks, offsets: from ``_C.find_peaks`` (grid cells).
        image_height: input pixels, for the distance prior.
        stride: grid stride (the upsampling factor that makes one cell one input pixel).

    Returns:
        parts int32 (C,), pairs int32 (C, 2) global peak ids, scores float64 (C,), in part
        then rank order (as ``_C.score_parts``).
    """
    maps = upsample(np.ascontiguousarray(heatmaps[: skeleton.NUM_PARTS]), stride)
    _, h, w = maps.shape
    # Grid cell j sits at input pixel stride j + stride / 2 - 0.5 = upsampled pixel.
    xy = peaks[:, :2] * stride + (stride / 2 - 0.5)
    parts: list[int] = []
    pairs: list[tuple[int, int]] = []
    scores: list[float] = []
    for part, (a_type, b_type) in enumerate(skeleton.PARTS):
        a0, a1 = int(offsets[a_type]), int(offsets[a_type + 1])
        b0, b1 = int(offsets[b_type]), int(offsets[b_type + 1])
        if a0 == a1 or b0 == b1:
            continue
        candidates = []
        for a in range(a0, a1):
            for b in range(b0, b1):
                vec = xy[b] - xy[a]
                norm = float(np.hypot(vec[0], vec[1]))
                if norm == 0:
                    continue
                n = min(round(norm + 1), 20)
                xs = np.round(np.linspace(xy[a, 0], xy[b, 0], n)).astype(np.int64)
                ys = np.round(np.linspace(xy[a, 1], xy[b, 1], n)).astype(np.int64)
                values = maps[part, np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)]
                score = float(values.mean()) + min(0.5 * image_height / norm - 1, 0.0)
                if np.count_nonzero(values > 0.1) >= 0.8 * n and score > 0:
                    rank = 0.5 * score + 0.25 * peaks[a, 2] + 0.25 * peaks[b, 2]
                    candidates.append((rank, score, a, b))
        candidates.sort(key=lambda c: -c[0])  # stable: ties keep (A, B) order
        used_a: set[int] = set()
        used_b: set[int] = set()
        for _, score, a, b in candidates:
            if len(used_a) == min(a1 - a0, b1 - b0):
                break
            if a in used_a or b in used_b:
                continue
            used_a.add(a)
            used_b.add(b)
            parts.append(part)
            pairs.append((a, b))
            scores.append(score)
    return (
        np.asarray(parts, np.int32),
        np.asarray(pairs, np.int32).reshape(-1, 2),
        np.asarray(scores, np.float64),
    )


def authors_grouping(heatmaps: npt.NDArray[np.float32], image_height: float) -> Grouping:
    """Native peaks, the authors' part scoring (x4 maps) and the authors' assembly."""
    import simplepose._C as _C

    params = grid_params(AUTHORS_ASSEMBLY, heatmaps.shape[1], image_height)
    peaks, offsets = _C.find_peaks(heatmaps, to_c_params(params))
    parts, pairs, scores = authors_connections(heatmaps, peaks, offsets, image_height)
    members, person_scores = reference.assemble(peaks, parts, pairs, scores, params)
    return Grouping(peaks, offsets, parts, pairs, members, person_scores)


def coco_results(
    grouping: Grouping,
    image_id: int,
    config: DecodeConfig = DecodeConfig(),  # noqa: B008
) -> list[dict[str, Any]]:
    """COCO keypoint results (image pixels = input pixels) of one image's people."""
    keypoints18 = np.zeros((len(grouping.members), skeleton.NUM_KEYPOINTS, 3), np.float32)
    found = grouping.members >= 0
    keypoints18[found] = grouping.peaks[grouping.members[found]]
    keypoints = skeleton.network_to_coco(grid_to_input(keypoints18, config))
    out = []
    for kp, score in zip(keypoints, grouping.scores):
        flat = kp.copy()
        flat[:, 2] = (kp[:, 2] > 0).astype(np.float32)
        out.append(
            {
                "image_id": image_id,
                "category_id": 1,
                "keypoints": flat.reshape(-1).tolist(),
                "score": float(score),
            }
        )
    return out


@dataclasses.dataclass
class GroupingErrors:
    """Error counts of one decoder, summed over images; per limb where it applies."""

    missed: npt.NDArray[np.int64] = dataclasses.field(
        default_factory=lambda: np.zeros(skeleton.NUM_PARTS, np.int64)
    )
    wrong: npt.NDArray[np.int64] = dataclasses.field(
        default_factory=lambda: np.zeros(skeleton.NUM_PARTS, np.int64)
    )
    split: int = 0
    mixed: int = 0

    def add(self, other: GroupingErrors) -> None:
        self.missed += other.missed
        self.wrong += other.wrong
        self.split += other.split
        self.mixed += other.mixed

    def summary(self) -> tuple[int, int, int, int]:
        return int(self.missed.sum()), int(self.wrong.sum()), self.split, self.mixed


def peak_owners(
    peaks: npt.NDArray[np.float64],
    offsets: npt.NDArray[np.int64],
    joints18: npt.NDArray[np.float32],
) -> npt.NDArray[np.int64]:
    """Ground-truth person of every peak (nearest same-type joint within OWNER_RADIUS), or -1.

    Args:
        peaks, offsets: grid-cell peaks grouped by type.
        joints18: (P, 18, 3) ``[x, y, flag]`` in input pixels (flag 2 = not labelled).
    """
    owners = np.full(len(peaks), -1, np.int64)
    if len(joints18) == 0:
        return owners
    grid = (joints18[:, :, :2] - 1.5) / 4.0  # input pixel 4 i + 1.5 -> cell i
    for k in range(skeleton.NUM_KEYPOINTS):
        lo, hi = int(offsets[k]), int(offsets[k + 1])
        if lo == hi:
            continue
        labelled = joints18[:, k, 2] < 2
        d = np.hypot(
            peaks[lo:hi, None, 0] - grid[None, :, k, 0], peaks[lo:hi, None, 1] - grid[None, :, k, 1]
        )
        d[:, ~labelled] = np.inf
        nearest = d.argmin(axis=1)
        close = d[np.arange(hi - lo), nearest] < OWNER_RADIUS
        owners[lo:hi] = np.where(close, nearest, -1)
    return owners


def grouping_errors(
    grouping: Grouping, owners: npt.NDArray[np.int64], num_people: int
) -> GroupingErrors:
    """Missed and wrong connections per limb, split and mixed people, of one image."""
    errors = GroupingErrors()
    kept = {(int(k), int(a), int(b)) for k, (a, b) in zip(grouping.parts, grouping.pairs)}
    for k, (a_type, b_type) in enumerate(skeleton.PARTS):
        a_lo, a_hi = grouping.offsets[a_type], grouping.offsets[a_type + 1]
        b_lo, b_hi = grouping.offsets[b_type], grouping.offsets[b_type + 1]
        for p in range(num_people):
            a = np.flatnonzero(owners[a_lo:a_hi] == p)
            b = np.flatnonzero(owners[b_lo:b_hi] == p)
            if len(a) and len(b) and (k, int(a_lo + a[0]), int(b_lo + b[0])) not in kept:
                errors.missed[k] += 1
    for k, a, b in kept:
        if owners[a] >= 0 and owners[b] >= 0 and owners[a] != owners[b]:
            errors.wrong[k] += 1
    holder = np.full(len(owners), -1, np.int64)
    for person, members in enumerate(grouping.members):
        ids = members[members >= 0]
        holder[ids] = person
        gt = owners[ids]
        errors.mixed += int(len(np.unique(gt[gt >= 0])) > 1)
    for p in range(num_people):
        people = holder[(owners == p) & (holder >= 0)]
        errors.split += max(0, len(np.unique(people)) - 1)
    return errors
