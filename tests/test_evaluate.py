"""COCO evaluation: ground truth scores 1, nothing scores 0, ids, top-20, missing images."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from simplepose.errors import InputError
from simplepose.training.evaluate import (
    MAX_DETECTIONS,
    STAT_NAMES,
    evaluate_coco,
    poses_to_results,
)
from simplepose.types import Poses


class GroundTruthEstimator:
    """Returns each image's annotated people (matched by image size + call order)."""

    def __init__(self, ann_file, drop_every: int = 0):
        data = json.loads(ann_file.read_text())
        self.images = sorted(data["images"], key=lambda i: i["id"])
        self.people: dict[int, list] = {}
        for a in data["annotations"]:
            if a["num_keypoints"] > 0 and not a["iscrowd"]:
                self.people.setdefault(a["image_id"], []).append(a["keypoints"])
        self.calls: list[tuple[int, int]] = []
        self.drop_every = drop_every

    def __call__(self, image):
        self.calls.append(image.shape[:2])
        info = next(
            i
            for i in self.images
            if (i["height"], i["width"]) == image.shape[:2] and i["id"] not in self._done
        )
        self._done.add(info["id"])
        people = self.people.get(info["id"], [])
        if self.drop_every:
            people = people[:: self.drop_every]
        if not people:
            return Poses.empty()
        kps = np.array(people, np.float32).reshape(-1, 17, 3)
        kps[..., 2] = (kps[..., 2] > 0).astype(np.float32)
        return Poses(kps, np.linspace(1.0, 0.5, len(kps)).astype(np.float32))

    _done: set = set()

    def reset(self):
        self._done = set()


def test_ground_truth_scores_one(coco_people):
    ann, images = coco_people
    estimator = GroundTruthEstimator(ann)
    estimator.reset()
    result = evaluate_coco(estimator, ann, images, progress=False)
    assert set(result.stats) == set(STAT_NAMES)
    # same check the data README reports: GT fed back as detections gives AP = AR = 1
    assert result.stats["AP"] == pytest.approx(1.0)
    assert result.stats["AR"] == pytest.approx(1.0)
    assert len(result.image_ids) == 69  # images without people are evaluated too
    ids = {r["image_id"] for r in result.results}
    assert ids <= set(result.image_ids) and 785 in ids
    assert "Average Precision" in result.summary


def test_missing_people_lower_recall(coco_people):
    ann, images = coco_people
    estimator = GroundTruthEstimator(ann, drop_every=2)
    estimator.reset()
    result = evaluate_coco(estimator, ann, images, progress=False)
    assert 0.3 < result.stats["AR"] < 0.9


def test_no_detections_scores_zero(coco_people):
    ann, images = coco_people
    result = evaluate_coco(lambda image: Poses.empty(), ann, images, max_images=5, progress=False)
    assert result.stats["AP"] == 0.0 and result.results == []
    assert len(result.image_ids) == 5


def test_poses_to_results_keeps_top_20():
    rng = np.random.default_rng(0)
    kps = rng.uniform(0, 100, (30, 17, 3)).astype(np.float32)
    scores = rng.uniform(0, 1, 30).astype(np.float32)
    results = poses_to_results(Poses(kps, scores), image_id=42)
    assert len(results) == MAX_DETECTIONS
    kept = sorted(r["score"] for r in results)
    assert kept == pytest.approx(sorted(scores)[-MAX_DETECTIONS:])
    assert all(r["image_id"] == 42 and r["category_id"] == 1 for r in results)
    assert all(len(r["keypoints"]) == 51 for r in results)


def test_missing_images_are_counted(tmp_path, coco_people, caplog):
    ann, images = coco_people
    folder = tmp_path / "images"
    folder.mkdir()
    names = sorted(p.name for p in images.iterdir())
    for name in names[:5]:
        (folder / name).symlink_to(images / name)
    with caplog.at_level(logging.WARNING):
        result = evaluate_coco(
            lambda image: Poses.empty(), ann, folder, max_images=10, progress=False
        )
    assert len(result.image_ids) + len(result.missing) == 10
    assert len(result.missing) >= 1 and "missing or unreadable" in caplog.text


def test_bad_inputs(tmp_path, coco_people):
    with pytest.raises(InputError, match="does not exist"):
        evaluate_coco(lambda image: Poses.empty(), tmp_path / "x.json", coco_people[1])
    with pytest.raises(InputError, match="does not exist"):
        evaluate_coco(lambda image: Poses.empty(), coco_people[0], tmp_path / "none")


def test_eval_cli_reports_missing_file(tmp_path, coco_people):
    weights = tmp_path / "w.pth"
    import torch

    from simplepose.model import build_model, save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(build_model("nano"), weights)
    cmd = [sys.executable, "-m", "simplepose", "eval", "--weights", str(weights)]
    cmd += ["--backend", "torch"]
    done = subprocess.run(
        [*cmd, "--coco-ann", str(tmp_path / "missing.json"), "--images", str(coco_people[1])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "missing.json does not exist" in done.stderr and "Traceback" not in done.stderr
