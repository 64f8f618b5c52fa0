"""The COCO training dataset: main people, the affine warp, reproducibility, bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from simplepose import skeleton
from simplepose.config import AugmentConfig
from simplepose.errors import InputError
from simplepose.training.data import (
    CocoPoseDataset,
    augment_matrix,
    fit_matrix,
    select_main_people,
)
from simplepose.training.targets import coco_to_joints18


def _ann(x, y, w, h, num_keypoints=10, area=None, iscrowd=0):
    return {
        "bbox": [x, y, w, h],
        "num_keypoints": num_keypoints,
        "area": w * h if area is None else area,
        "iscrowd": iscrowd,
    }


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        # two people far apart: both main
        ([_ann(0, 0, 100, 200), _ann(400, 0, 100, 200)], [0, 1]),
        # second centre 50 px from the first, radius 0.3 * 200 = 60: not main
        ([_ann(0, 0, 100, 200), _ann(50, 0, 100, 200)], [0]),
        # second centre 70 px away (> 60): main
        ([_ann(0, 0, 100, 200), _ann(70, 0, 100, 200)], [0, 1]),
        # 4 keypoints, area 31^2, crowd: never main
        ([_ann(0, 0, 100, 200, num_keypoints=4)], []),
        ([_ann(0, 0, 100, 200, area=31 * 31)], []),
        ([_ann(0, 0, 100, 200, iscrowd=1)], []),
        # a rejected person does not block a later one at the same place
        ([_ann(0, 0, 100, 200, num_keypoints=3), _ann(0, 0, 100, 200)], [1]),
    ],
)
def test_select_main_people(annotations, expected):
    assert select_main_people(annotations) == expected


def test_augment_matrix_centres_and_scales_the_main_person():
    off = AugmentConfig(scale_prob=0.0, max_rotation=0.0, max_shift=0, flip_prob=0.0)
    matrix, flip = augment_matrix((300.0, 200.0), 100.0, 256, off, np.random.default_rng(0))
    assert not flip
    # centre -> (S/2 - 0.5, S/2 - 0.5); bbox height 100 -> 0.6 * 256
    np.testing.assert_allclose(matrix @ [300.0, 200.0, 1.0], [127.5, 127.5])
    np.testing.assert_allclose(matrix[:, :2], np.eye(2) * 0.6 * 256 / 100)
    flipped = AugmentConfig(scale_prob=0.0, max_rotation=0.0, max_shift=0, flip_prob=1.0)
    matrix, flip = augment_matrix((300.0, 200.0), 100.0, 256, flipped, np.random.default_rng(0))
    assert flip
    np.testing.assert_allclose(matrix @ [310.0, 200.0, 1.0], [127.5 - 15.36, 127.5])


def test_fit_matrix_matches_inference_preprocess():
    from simplepose.config import InferenceConfig
    from simplepose.inference.preprocess import letterbox

    image = np.zeros((300, 400, 3), np.uint8)
    _, transform = letterbox(image, InferenceConfig(input_size=256, resize_side="long"))
    points = np.array([[0.0, 0.0], [399.0, 299.0], [123.4, 56.7]])
    ours = points @ fit_matrix((300, 400), 256)[:, :2].T + fit_matrix((300, 400), 256)[:, 2]
    np.testing.assert_allclose(ours, transform.to_input(points), atol=1e-4)


@pytest.fixture(scope="module")
def dataset(coco_people):
    ann, images = coco_people
    return CocoPoseDataset(ann, images, crop_size=128, seed=3)


def test_samples_are_main_people(dataset, coco_people):
    data = json.loads(coco_people[0].read_text())
    by_image: dict[int, list] = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    expected = sum(len(select_main_people(anns)) for anns in by_image.values())
    assert len(dataset) == expected > 50
    item = dataset[0]
    assert item["image"].shape == (3, 128, 128) and item["image"].dtype == torch.uint8
    assert item["targets"].shape == (50, 32, 32) and item["targets"].dtype == torch.float32
    assert item["mask"].shape == (1, 32, 32)
    assert 0 <= float(item["targets"].min()) and float(item["targets"].max()) <= 1


def test_keypoint_peaks_follow_the_warp(coco_people):
    """With augmentation off, each keypoint's heatmap peak sits at the warped annotation."""
    ann, images = coco_people
    ds = CocoPoseDataset(ann, images, crop_size=256, augment=AugmentConfig.off())
    index = next(i for i, s in enumerate(ds.samples) if s.image_id == 785)
    item = ds[index]
    person = [a for a in ds.annotations[785] if a["num_keypoints"] > 0][0]
    joints = coco_to_joints18(np.array([person["keypoints"]]))[0]
    matrix = fit_matrix(ds.samples[index].image_hw, 256)
    checked = 0
    for k in range(skeleton.NUM_KEYPOINTS):
        if joints[k, 2] >= 2:
            continue
        x, y = matrix[:, :2] @ joints[k, :2] + matrix[:, 2]
        heatmap = item["targets"][skeleton.KEYPOINT_CHANNEL_OFFSET + k].numpy()
        row, col = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        # the peak cell's centre (4 i + 1.5) is within half a cell of the keypoint
        assert abs(4 * col + 1.5 - x) <= 2.0 + 1e-6 and abs(4 * row + 1.5 - y) <= 2.0 + 1e-6
        checked += 1
    assert checked >= 15


def test_flip_swaps_left_and_right(coco_people):
    ann, images = coco_people
    base = dict(scale_prob=0.0, max_rotation=0.0, max_shift=0, color_prob=0.0)
    plain = CocoPoseDataset(ann, images, 128, AugmentConfig(flip_prob=0.0, **base))
    flipped = CocoPoseDataset(ann, images, 128, AugmentConfig(flip_prob=1.0, **base))
    a, b = plain[5], flipped[5]
    # mirroring the crop about its centre: column c <-> 127 - c (image), 31 - c (grid)
    # (OpenCV's fixed-point bilinear weights round differently when mirrored: +-1 grey level)
    diff = a["image"].numpy()[:, :, ::-1].astype(int) - b["image"].numpy().astype(int)
    assert np.abs(diff).max() <= 1
    mirrored = a["targets"].numpy()[list(skeleton.FLIP_CHANNELS), :, ::-1]
    ours, theirs = mirrored[30:48], b["targets"].numpy()[30:48]
    # The +-7-cell windows start at round(x / 4), which may move by one cell when mirrored,
    # so only far-tail values (< 0.02) may differ; peaks must match.
    assert np.abs(ours - theirs).max() < 0.02
    both = (ours > 0.5) & (theirs > 0.5)
    np.testing.assert_allclose(ours[both], theirs[both], atol=1e-5)
    assert both.sum() > 20


def test_reproducible_per_seed_epoch_index(coco_people):
    ann, images = coco_people
    one = CocoPoseDataset(ann, images, crop_size=128, seed=7)
    two = CocoPoseDataset(ann, images, crop_size=128, seed=7)
    assert torch.equal(one[4]["image"], two[4]["image"])
    two.set_epoch(1)
    assert not torch.equal(one[4]["image"], two[4]["image"])
    # worker processes draw the same samples as the main process
    subset = torch.utils.data.Subset(one, range(6))
    serial = [b["targets"] for b in DataLoader(subset, batch_size=3, num_workers=0)]
    parallel = [b["targets"] for b in DataLoader(subset, batch_size=3, num_workers=2)]
    for x, y in zip(serial, parallel):
        assert torch.equal(x, y)


def _image_folder(tmp_path: Path, source: Path, names: list[str]) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for name in names:
        (folder / name).symlink_to(source / name)
    return folder


def test_missing_annotation_file(tmp_path, coco_people):
    with pytest.raises(InputError, match="does not exist"):
        CocoPoseDataset(tmp_path / "nope.json", coco_people[1])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        CocoPoseDataset(bad, coco_people[1])


def test_no_person_keypoints(tmp_path, coco_people):
    data = json.loads(coco_people[0].read_text())
    for a in data["annotations"]:
        a["num_keypoints"] = 0
        a["keypoints"] = [0] * 51
    path = tmp_path / "empty.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="no person annotations with keypoints"):
        CocoPoseDataset(path, coco_people[1])


def test_missing_images_are_skipped_and_counted(tmp_path, coco_people, caplog):
    ann, images = coco_people
    full = CocoPoseDataset(ann, images, crop_size=128)
    names = sorted({s.file_name for s in full.samples})
    folder = _image_folder(tmp_path, images, names[:10])
    with caplog.at_level(logging.WARNING, logger="simplepose.training.data"):
        ds = CocoPoseDataset(ann, folder, crop_size=128)
    assert {s.file_name for s in ds.samples} == set(names[:10])
    assert len(ds.missing_images) > 30
    assert "missing" in caplog.text


def test_corrupt_image_is_replaced_not_fatal(tmp_path, coco_people, caplog):
    ann, images = coco_people
    full = CocoPoseDataset(ann, images, crop_size=128)
    names = sorted({s.file_name for s in full.samples})[:3]
    folder = _image_folder(tmp_path, images, names[1:])
    (folder / names[0]).write_bytes(b"\xff\xd8 this is not a jpeg")
    ds = CocoPoseDataset(ann, folder, crop_size=128)
    bad = next(i for i, s in enumerate(ds.samples) if s.file_name == names[0])
    with caplog.at_level(logging.WARNING, logger="simplepose.training.data"):
        item = ds[bad]
    assert int(item["index"]) != bad
    assert "cannot read image" in caplog.text
    # a whole epoch runs through
    assert sum(len(b["index"]) for b in DataLoader(ds, batch_size=2)) == len(ds)
