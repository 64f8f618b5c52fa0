"""PoseEstimator: flip merge and multi-scale on oracle heatmaps, backends agree on a real image."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import trained_like

from simplepose import skeleton
from simplepose.config import DecodeConfig, InferenceConfig
from simplepose.errors import InputError, WeightsNotFoundError
from simplepose.formats import FLOAT_NCHW
from simplepose.inference import PoseEstimator, read_image
from simplepose.inference.estimator import resample_heatmaps
from simplepose.inference.preprocess import letterbox
from simplepose.model import build_model, save_checkpoint
from simplepose.training.targets import coco_to_joints18, encode


class OracleBackend:
    """Returns ground-truth heatmaps of the people it was given (image pixels), for whatever
    letterboxed input it receives; the second half of a flip batch gets the mirrored truth."""

    name = "oracle"
    input_format = FLOAT_NCHW

    def __init__(self, joints18_image, transform_for_size):
        self.joints = joints18_image  # (P, 18, 3) image pixels, authors' flags
        self.transform_for_size = transform_for_size  # input (h, w) -> InputTransform
        self.calls = []

    def infer(self, batch):
        n, _, h, w = batch.shape
        self.calls.append(batch.shape)
        transform = self.transform_for_size((h, w))
        joints = self.joints.copy()
        joints[:, :, :2] = transform.to_input(joints[:, :, :2])
        maps = [encode(joints, (h, w))]
        if n == 2:  # flip test: the mirrored input's truth (x mirrored, left/right swapped)
            mirrored = joints[:, list(skeleton.FLIP_KEYPOINTS)].copy()
            mirrored[:, :, 0] = (w - 1) - mirrored[:, :, 0]
            maps.append(encode(mirrored, (h, w)))
        return np.stack(maps)


@pytest.fixture(scope="module")
def crowd_image(coco_people):
    """The shared image with the most people: (image, joints18 in image pixels, annotations)."""
    ann_file, image_dir = coco_people
    data = json.loads(ann_file.read_text())
    counts = {}
    for ann in data["annotations"]:
        if ann["num_keypoints"] > 0 and not ann["iscrowd"]:
            counts.setdefault(ann["image_id"], []).append(ann)
    image_id, anns = max(counts.items(), key=lambda item: len(item[1]))
    info = next(i for i in data["images"] if i["id"] == image_id)
    image = read_image(str(image_dir / info["file_name"]))
    joints = coco_to_joints18(np.array([a["keypoints"] for a in anns], np.float32))
    return image, joints


def _oracle_estimator(image, joints, config):
    sizes = {}
    for scale in config.scales:
        _, transform = letterbox(image, config, scale)
        sizes[transform.input_hw] = transform
    backend = OracleBackend(joints, sizes.__getitem__)
    return PoseEstimator(backend, config=config), backend


def _matched_error(a, b):
    """Max coordinate error between two pose sets matched by nearest mean position."""
    assert len(a) == len(b)
    errors = []
    for person in a.keypoints:
        found = person[:, 2] > 0
        dists = [np.abs(other[found, :2] - person[found, :2]).max() for other in b.keypoints]
        errors.append(min(dists))
    return max(errors)


def test_flip_merge_of_an_oracle_is_the_oracle(crowd_image):
    image, joints = crowd_image
    config = InferenceConfig(input_size=512, flip=False)
    plain, _ = _oracle_estimator(image, joints, config)
    flipped, backend = _oracle_estimator(image, joints, InferenceConfig(input_size=512, flip=True))
    a, b = plain.infer(image), flipped.infer(image)
    assert backend.calls[-1][0] == 2  # one call with [image, mirror]
    # Mirroring is exact on the grid. The oracle's rounding of keypoint windows (values up
    # to ~0.008 at the edge) and part boxes (which cut the band) is not mirror-symmetric,
    # so compare the keypoint channels tightly and the part channels on average.
    keypoints = skeleton.KEYPOINT_CHANNELS
    np.testing.assert_allclose(b.heatmaps[keypoints], a.heatmaps[keypoints], atol=1e-2)
    assert np.abs(b.heatmaps - a.heatmaps).mean() < 2e-3
    poses_a, poses_b = plain.group(a), flipped.group(b)
    assert len(poses_a) >= 5 and len(poses_a) == len(poses_b)
    assert _matched_error(poses_a, poses_b) < 0.5


def test_mirrored_image_gives_mirrored_poses(crowd_image):
    image, joints = crowd_image
    config = InferenceConfig(input_size=512, flip=True)
    width = image.shape[1]
    estimator, _ = _oracle_estimator(image, joints, config)
    poses = estimator(image)
    mirrored_joints = joints[:, list(skeleton.FLIP_KEYPOINTS)].copy()
    mirrored_joints[:, :, 0] = (width - 1) - mirrored_joints[:, :, 0]
    mirrored_image = np.ascontiguousarray(image[:, ::-1])
    estimator_m, _ = _oracle_estimator(mirrored_image, mirrored_joints, config)
    poses_m = estimator_m(mirrored_image)
    # mirror the poses back: x -> W - 1 - x, COCO left/right swap
    coco_flip = [skeleton.COCO_KEYPOINT_NAMES.index(_swap(n)) for n in skeleton.COCO_KEYPOINT_NAMES]
    back = poses_m.keypoints[:, coco_flip].copy()
    back[:, :, 0] = np.where(back[:, :, 2] > 0, (width - 1) - back[:, :, 0], 0)
    from simplepose.types import Poses

    assert len(poses) >= 5
    assert _matched_error(poses, Poses(back, poses_m.scores)) < 1.0
    # the poses land on the ground truth (image pixels), within a couple of pixels
    truth = joints[:, list(skeleton.COCO_TO_NETWORK)]
    for person in poses.keypoints:
        found = person[:, 2] > 0
        err = [np.abs(t[found, :2] - person[found, :2]).max() for t in truth]
        assert min(err) < 3.0


def _swap(name):
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    return name


def test_resample_reproduces_a_linear_field():
    image = np.zeros((300, 400, 3), np.uint8)
    config = InferenceConfig(input_size=256)
    _, source = letterbox(image, config, 0.5)
    _, target = letterbox(image, config, 1.0)

    def image_x_field(transform):
        h, w = transform.input_hw[0] // 4, transform.input_hw[1] // 4
        xs = transform.to_image(np.stack([4 * np.arange(w) + 1.5, np.zeros(w)], 1))[:, 0]
        ys = transform.to_image(np.stack([np.zeros(h), 4 * np.arange(h) + 1.5], 1))[:, 1]
        return np.stack([np.broadcast_to(xs, (h, w)), np.broadcast_to(ys[:, None], (h, w))])

    resampled = resample_heatmaps(image_x_field(source).astype(np.float32), source, target)
    expected = image_x_field(target)
    # interior cells (away from the clamped border): exact for a linear field
    inner = (
        slice(None),
        slice(4, target.resized_hw[0] // 4 - 4),
        slice(4, target.resized_hw[1] // 4 - 4),
    )
    np.testing.assert_allclose(resampled[inner], expected[inner], atol=1e-2)


def test_multiscale_oracle_keeps_the_poses(crowd_image):
    image, joints = crowd_image
    single, _ = _oracle_estimator(image, joints, InferenceConfig(input_size=512, flip=False))
    multi, backend = _oracle_estimator(
        image, joints, InferenceConfig(input_size=512, flip=False, scales=(1.0, 0.75, 1.5))
    )
    poses_1, poses_m = single(image), multi(image)
    assert len(backend.calls) == 3
    assert multi.infer(image).heatmaps.shape == single.infer(image).heatmaps.shape
    assert abs(len(poses_1) - len(poses_m)) <= 1
    assert len(poses_m) >= 5


def test_torch_and_onnxruntime_give_the_same_poses_on_a_real_image(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMPLEPOSE_CACHE", str(tmp_path / "cache"))
    model = trained_like(build_model("nano"))
    weights = save_checkpoint(model, tmp_path / "nano.pth")
    # Thresholds low enough that these deterministic (untrained) weights yield people.
    decode = DecodeConfig(min_mean_score=0.0, part_threshold=0.05)
    image = read_image(str(data_dir / "images" / "000000081988.jpg"))
    results = {}
    # Both fp32 on the CPU on purpose: on a CUDA machine the torch backend would run fp16
    # (tests/test_backends.py compares CUDA with the CPU at fp16 tolerances).
    for backend, options in (("torch", {"device": "cpu"}), ("onnxruntime", {})):
        estimator = PoseEstimator(
            weights,
            backend=backend,
            input_size=256,
            decode=decode,
            exporter="torchscript",
            providers=None if options else ["cpu"],
            **options,
        )
        assert estimator.backend.name == backend
        results[backend] = estimator(image)
    a, b = results["torch"], results["onnxruntime"]
    assert len(a) >= 5 and len(a) == len(b)
    np.testing.assert_array_equal(a.found, b.found)
    np.testing.assert_allclose(a.keypoints, b.keypoints, atol=5e-3)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    assert list((tmp_path / "cache" / "onnx").glob("nano-*.onnx"))  # exported once, cached
    # batch() equals one call per image
    estimator = PoseEstimator(
        weights,
        backend="onnxruntime",
        input_size=256,
        decode=decode,
        exporter="torchscript",
        providers=["cpu"],
    )
    batched = estimator.batch([image, image[:200]])
    np.testing.assert_allclose(batched[0].keypoints, b.keypoints, atol=1e-4)
    assert len(batched) == 2


def test_bad_inputs(tmp_path):
    model = build_model("nano")
    estimator = PoseEstimator(model, backend="torch", input_size=64)
    with pytest.raises(InputError, match="empty"):
        estimator(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(WeightsNotFoundError, match="not found"):
        PoseEstimator(tmp_path / "missing.pth", backend="torch")
    with pytest.raises(ValueError, match="backend must be one of"):
        PoseEstimator(model, backend="tflite")
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"x")
    with pytest.raises(ValueError, match="torch backend needs a checkpoint"):
        PoseEstimator(onnx_file, backend="torch")
    with pytest.raises(ImportError, match="onnxruntime-gpu"):
        PoseEstimator(model, backend="onnxruntime", providers=["cuda"], exporter="torchscript")


def test_cli_image(tmp_path, data_dir, coco_people):
    model = trained_like(build_model("nano"))
    weights = save_checkpoint(model, tmp_path / "nano.pth")
    ann_file, image_dir = coco_people
    images = sorted(image_dir.glob("*.jpg"))[:2]
    out_dir, results = tmp_path / "overlays", tmp_path / "results.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "simplepose",
            "image",
            *map(str, images),
            "--weights",
            str(weights),
            "--backend",
            "torch",
            "--input-size",
            "128",
            "--output-dir",
            str(out_dir),
            "--json",
            str(results),
            "--coco-ann",
            str(ann_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(p.stem + ".jpg" for p in images)
    assert (
        cv2.imread(str(out_dir / (images[0].stem + ".jpg"))).shape
        == read_image(str(images[0])).shape
    )
    # Valid COCO results keyed by the annotation file's ids (possibly no people: untrained).
    ids = {i["id"] for i in json.loads(ann_file.read_text())["images"]
           if i["file_name"] in {p.name for p in images}}  # fmt: skip
    entries = json.loads(results.read_text())
    assert isinstance(entries, list)
    assert all(e["image_id"] in ids and len(e["keypoints"]) == 51 for e in entries)
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "simplepose",
            "image",
            str(tmp_path / "nope.jpg"),
            "--weights",
            str(weights),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 2 and "no images found" in missing.stderr
    assert "Traceback" not in missing.stderr
