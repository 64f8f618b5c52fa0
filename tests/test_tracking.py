"""Tracking: OKS-style similarity, greedy matching and stable IDs on synthetic walkers."""

from __future__ import annotations

import numpy as np
import pytest

from simplepose.pipeline.tracking import (
    COCO_SIGMAS,
    Tracker,
    greedy_match,
    keypoint_similarity,
)
from simplepose.types import Poses

# A standing person, COCO order, about 200 px tall, feet at y = 0 (x before y).
_TEMPLATE = np.array(
    [
        [0, -190], [-6, -196], [6, -196], [-14, -192], [14, -192],  # face
        [-25, -160], [25, -160], [-35, -115], [35, -115], [-38, -75], [38, -75],  # arms
        [-15, -90], [15, -90], [-17, -45], [17, -45], [-18, 0], [18, 0],  # legs
    ],
    np.float64,
)  # fmt: skip


def _person(x: float, y: float, scale: float = 1.0) -> np.ndarray:
    keypoints = np.ones((17, 3), np.float32)
    keypoints[:, :2] = _TEMPLATE * scale + (x, y)
    return keypoints


def _poses(people: list[np.ndarray]) -> Poses:
    if not people:
        return Poses.empty()
    return Poses(np.stack(people).astype(np.float32), np.ones(len(people), np.float32))


def test_similarity_hand_computed() -> None:
    a = np.zeros((1, 17, 3), np.float32)
    a[0, :, 2] = 0  # only two keypoints found, 100 x 100 px apart -> area 10000
    a[0, 5] = [0, 0, 1]
    a[0, 12] = [100, 100, 1]
    b = a.copy()
    b[0, 5, 0] += 10  # left shoulder moved 10 px
    area = 100.0 * 100.0
    expected = (np.exp(-100.0 / (2 * area * (2 * COCO_SIGMAS[5]) ** 2)) + 1.0) / 2
    sim = keypoint_similarity(a, b)
    assert sim.shape == (1, 1)
    assert sim[0, 0] == pytest.approx(expected, rel=1e-12)
    # Identical poses are fully similar; poses sharing no found keypoint are not.
    assert keypoint_similarity(a, a)[0, 0] == pytest.approx(1.0)
    c = np.zeros_like(a)
    c[0, 0] = [0, 0, 1]
    assert keypoint_similarity(a, c)[0, 0] == 0.0


def test_similarity_validates_shape() -> None:
    with pytest.raises(ValueError, match=r"\(P, 17, 3\)"):
        keypoint_similarity(np.zeros((1, 18, 3)), np.zeros((1, 17, 3)))


def test_greedy_match_is_greedy_not_optimal() -> None:
    # The optimal assignment (0-1, 1-0: 1.65) differs from greedy (0-0 first, then 1-1 is
    # below the threshold and stays unmatched): the tracker documents greedy.
    sim = np.array([[0.9, 0.8], [0.85, 0.1]])
    rows, cols = greedy_match(sim, 0.2)
    assert rows.tolist() == [0]
    assert cols.tolist() == [0]
    rows, cols = greedy_match(sim, 0.05)
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 0), (1, 1)]
    assert greedy_match(np.zeros((0, 3)), 0.1)[0].size == 0


def _walk(occluded: range = range(0), seed: int = 0) -> tuple[list[Poses], list[list[str]]]:
    """Two people crossing: A walks right, B walks left, B a bit smaller and higher."""
    rng = np.random.default_rng(seed)
    frames, labels = [], []
    for t in range(70):
        people = {"A": _person(100 + 8 * t, 400), "B": _person(660 - 8 * t, 380, 0.9)}
        if t in occluded:
            del people["A"]
        names = list(people)
        rng.shuffle(names)  # detection order carries no identity
        arrays = []
        for name in names:
            kp = people[name].copy()
            kp[:, :2] += rng.normal(0, 2.0, (17, 2))
            arrays.append(kp)
        frames.append(_poses(arrays))
        labels.append(names)
    return frames, labels


@pytest.mark.parametrize("occluded", [range(0), range(20, 26)], ids=["crossing", "occlusion"])
def test_ids_stable_through_crossing_and_occlusion(occluded: range) -> None:
    frames, labels = _walk(occluded)
    tracker = Tracker(min_similarity=0.2, max_age=10)
    seen: dict[str, set[int]] = {"A": set(), "B": set()}
    for t, (poses, names) in enumerate(zip(frames, labels)):
        ids = tracker.update(poses, t)
        assert ids.dtype == np.int64
        for name, track_id in zip(names, ids.tolist()):
            seen[name].add(track_id)
    # They cross at t = 35 (x = 380) and A vanishes for 6 frames while walking 48 px.
    assert len(seen["A"]) == 1, seen
    assert len(seen["B"]) == 1, seen
    assert seen["A"] != seen["B"]


def test_long_absence_gets_new_id_and_ids_are_never_reused() -> None:
    tracker = Tracker(max_age=3)
    first = tracker.update(_poses([_person(100, 300)]), 0)
    for t in range(1, 6):  # absent for 5 frames > max_age
        assert tracker.update(_poses([]), t).size == 0
    assert tracker.num_tracks == 0
    again = tracker.update(_poses([_person(100, 300)]), 6)
    assert again[0] > first[0]
    tracker.reset()
    after_reset = tracker.update(_poses([_person(100, 300), _person(400, 300)]), 0)
    assert set(after_reset.tolist()).isdisjoint({int(first[0]), int(again[0])})
    assert len(set(after_reset.tolist())) == 2


def test_short_absence_within_max_age_keeps_id() -> None:
    tracker = Tracker(max_age=3)
    first = tracker.update(_poses([_person(100, 300)]), 0)
    tracker.update(_poses([]), 1)
    tracker.update(_poses([]), 2)
    tracker.update(_poses([]), 3)
    assert tracker.update(_poses([_person(101, 300)]), 4).tolist() == first.tolist()


def test_update_validates() -> None:
    tracker = Tracker()
    tracker.update(_poses([_person(1, 1)]), 5)
    with pytest.raises(ValueError, match="must increase"):
        tracker.update(_poses([]), 5)
    with pytest.raises(TypeError, match="Poses"):
        tracker.update(np.zeros((1, 17, 3)), 6)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_age"):
        Tracker(max_age=-1)
