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
    assert tracker.update(_poses([_person(100, 300)]), 1).tolist() == first.tolist()
    for t in (2, 3, 4):  # absent for max_age frames
        tracker.update(_poses([]), t)
    assert tracker.update(_poses([_person(101, 300)]), 5).tolist() == first.tolist()


def test_a_track_seen_once_lives_only_tentative_max_age_frames() -> None:
    """Spurious one-frame detections must not pile up as tracks for max_age frames."""
    tracker = Tracker(max_age=10, tentative_max_age=1)
    first = tracker.update(_poses([_person(100, 300)]), 0)
    tracker.update(_poses([]), 1)  # one frame missed: still matchable at frame 2
    assert tracker.update(_poses([_person(100, 300)]), 2).tolist() == first.tolist()
    tracker.update(_poses([_person(500, 300)]), 3)  # a confirmed track and a new one
    for t in (4, 5):
        tracker.update(_poses([]), t)
    assert tracker.num_tracks == 2
    tracker.update(_poses([]), 6)  # the tentative one is gone, the confirmed one kept
    assert tracker.num_tracks == 1 and tracker.track_ids.tolist() == first.tolist()
    with pytest.raises(ValueError, match="tentative_max_age"):
        Tracker(tentative_max_age=-1)


def test_pruned_matching_equals_scoring_every_pair(monkeypatch) -> None:
    """``candidate_pairs`` only skips pairs that cannot reach min_similarity: IDs over a
    crowd with spurious poses are the same as when every track-pose pair is scored."""
    from simplepose.pipeline import tracking

    rng = np.random.default_rng(0)
    people = [(x, y) for x in range(60, 1900, 75) for y in (300, 700, 1000)]  # 75 people

    def frame(t: int) -> Poses:
        walkers = [_person(x + 3 * t, y, 0.6) for x, y in people]
        noise = [_person(*rng.uniform(0, 1900, 2), 0.5) for _ in range(20)]
        for pose in noise:
            pose[:, :2] += rng.normal(0, 30, (17, 2))
        return _poses(walkers + noise)

    frames = [frame(t) for t in range(12)]
    tracker = Tracker()
    pruned = [tracker.update(f, t) for t, f in enumerate(frames)]
    # The pruning did skip most pairs here (otherwise this test would prove nothing).
    boxes = tracking._boxes(tracker.predicted(12))
    areas = tracking._oks_areas(boxes, tracker.min_area)
    kept = tracking.candidate_pairs(boxes, tracking._boxes(frames[0].keypoints.astype(float)),
                                    areas, tracker.min_similarity)[0].size  # fmt: skip
    assert kept < 0.2 * tracker.num_tracks * len(frames[0])

    def every_pair(reference_boxes, candidate_boxes, areas, min_similarity):
        return tuple(a.ravel() for a in np.indices((len(reference_boxes), len(candidate_boxes))))

    monkeypatch.setattr(tracking, "candidate_pairs", every_pair)
    tracker = Tracker()
    dense = [tracker.update(f, t) for t, f in enumerate(frames)]
    for a, b in zip(pruned, dense):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pruned[-1][: len(people)], pruned[0][: len(people)])


def test_update_validates() -> None:
    tracker = Tracker()
    tracker.update(_poses([_person(1, 1)]), 5)
    with pytest.raises(ValueError, match="must increase"):
        tracker.update(_poses([]), 5)
    with pytest.raises(TypeError, match="Poses"):
        tracker.update(np.zeros((1, 17, 3)), 6)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_age"):
        Tracker(max_age=-1)
