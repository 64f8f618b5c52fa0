"""Tracking cost per frame in crowds: the pruned tracker vs scoring every track-pose pair.

Two scenes, 1920 x 1080, after ``--history`` frames have filled the tracks:

- ``walking``: a crowd of ``--people`` people walking, every one seen every frame;
- ``noise``: ``--people`` random poses per frame that match nothing (what an untrained
  network's heatmaps give), so unmatched tracks pile up to people x (history + 1).

For each scene it prints the median / p95 ms of ``Tracker.update`` and of the dense
reference (``keypoint_similarity`` over every pair, then ``greedy_match``: what the tracker
scored before pruning), checks that both give the same matches, and saves
``benchmarks/results/tracking.json``.

    python -m benchmarks.bench_tracking [--people 100] [--history 15] [--frames 60]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import save_results, summarize
from simplepose.bench.synthetic import WalkingPeople
from simplepose.pipeline.tracking import Tracker, greedy_match, keypoint_similarity
from simplepose.types import Poses

WIDTH, HEIGHT, FPS = 1920, 1080, 30.0


def _walking(people: int, frames: int, depth: int = 4) -> list[Poses]:
    """A crowd: ``WalkingPeople`` on a strip ``depth`` frames wide, shrunk by ``depth`` and
    spread over the frame's height in rows, so people are 95-215 px tall and overlap as in
    a real crowd (``WalkingPeople`` alone makes them 35-80 % of the frame's height)."""
    scene = WalkingPeople(people, WIDTH * depth, HEIGHT, seed=3)
    rows = np.random.default_rng(4).uniform(0, HEIGHT * (1 - 1 / depth), (people, 1))
    out = []
    for i in range(frames):
        keypoints = scene.poses(i / FPS).keypoints.copy()
        keypoints[:, :, :2] /= depth
        keypoints[:, :, 1] += rows
        out.append(Poses(keypoints, np.ones(people, np.float32)))
    return out


def _noise(people: int, frames: int) -> list[Poses]:
    rng = np.random.default_rng(5)
    out = []
    for _ in range(frames):
        centres = rng.uniform((0, 0), (WIDTH, HEIGHT), (people, 1, 2))
        xy = centres + rng.normal(0, 40, (people, 17, 2))
        keypoints = np.concatenate([xy, rng.uniform(0.1, 1, (people, 17, 1))], axis=2)
        out.append(Poses(keypoints.astype(np.float32), np.ones(people, np.float32)))
    return out


def _dense_ids(tracker: Tracker, poses: Poses, index: int) -> tuple[dict[int, int], float]:
    """What scoring every pair would match (pose -> track ID), and how long it takes."""
    alive = tracker.alive(index)  # what update() keeps
    predicted = tracker.predicted(index)[alive]
    keypoints = np.asarray(poses.keypoints, np.float64)
    start = time.perf_counter()
    similarity = keypoint_similarity(predicted, keypoints, tracker.min_area)
    rows, cols = greedy_match(similarity, tracker.min_similarity)
    seconds = time.perf_counter() - start
    track_ids = tracker.track_ids[alive]
    return {col: int(track_ids[row]) for row, col in zip(rows.tolist(), cols.tolist())}, seconds


def _measure(sequence: list[Poses], history: int) -> dict[str, object]:
    tracker = Tracker(max_age=history)
    for index, poses in enumerate(sequence[:history]):
        tracker.update(poses, index)
    pruned, dense, tracks = [], [], []
    for index, poses in enumerate(sequence[history:], start=history):
        expected, dense_s = _dense_ids(tracker, poses, index)
        tracks.append(tracker.num_tracks)
        start = time.perf_counter()
        got = tracker.update(poses, index)
        pruned.append(time.perf_counter() - start)
        dense.append(dense_s)
        if {col: int(got[col]) for col in expected} != expected:
            raise AssertionError(f"frame {index}: pruned and dense matching differ")
    return {
        "tracks_median": float(np.median(tracks)),
        "people": len(sequence[0]),
        "pruned": summarize(pruned),
        "dense": summarize(dense),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--history", type=int, default=15, help="Tracker max_age, frames")
    parser.add_argument("--frames", type=int, default=60, help="timed frames per scene")
    args = parser.parse_args()
    total = args.history + args.frames
    results = {}
    print(f"{'scene':<9}{'tracks':>7}{'tracker ms':>12}{'p95':>8}{'dense ms':>10}{'ratio':>8}")
    for name, make in (("walking", _walking), ("noise", _noise)):
        row = _measure(make(args.people, total), args.history)
        results[name] = row
        pruned, dense = row["pruned"], row["dense"]
        ratio = dense["median_ms"] / pruned["median_ms"]
        print(
            f"{name:<9}{row['tracks_median']:>7.0f}{pruned['median_ms']:>12.3f}"
            f"{pruned['p95_ms']:>8.3f}{dense['median_ms']:>10.3f}{ratio:>7.1f}x"
        )
    path = save_results("tracking", {"settings": vars(args), "scenes": results})
    print(f"same matches as dense scoring on every frame; saved {path}")


if __name__ == "__main__":
    main()
