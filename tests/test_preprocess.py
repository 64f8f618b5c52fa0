"""Preprocessing: letterbox sizes, the affine map back to image pixels, image formats."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from simplepose.config import InferenceConfig
from simplepose.errors import InputError
from simplepose.inference.preprocess import (
    as_bgr_uint8,
    letterbox,
    preprocess,
    read_image,
    to_network_input,
)


@pytest.mark.parametrize(
    ("hw", "config", "resized", "padded"),
    [
        ((1080, 1920), InferenceConfig(), (512, 910), (512, 960)),  # authors: height -> 512
        ((480, 640), InferenceConfig(input_size=256), (256, 341), (256, 384)),
        ((480, 640), InferenceConfig(input_size=256, resize_side="long"), (192, 256), (192, 256)),
        ((100, 3000), InferenceConfig(max_input_hw=(2600, 1000)), (33, 1000), (64, 1024)),  # cap
    ],
)
def test_letterbox_sizes_and_padding(hw, config, resized, padded):
    image = np.full((*hw, 3), 7, np.uint8)
    boxed, transform = letterbox(image, config)
    assert transform.resized_hw == resized and transform.input_hw == padded == boxed.shape[:2]
    assert (boxed[: resized[0], : resized[1]] == 7).all()
    assert (boxed[resized[0] :] == config.pad_value).all()
    assert (boxed[:, resized[1] :] == config.pad_value).all()


def test_scale_multiplies_the_input_size():
    image = np.zeros((480, 640, 3), np.uint8)
    _, half = letterbox(image, InferenceConfig(input_size=256), scale=0.5)
    assert half.resized_hw == (128, 171)


def test_affine_map_round_trips_and_matches_opencv():
    rng = np.random.default_rng(0)
    image = np.zeros((301, 457, 3), np.uint8)
    _, transform = letterbox(image, InferenceConfig(input_size=128))
    points = rng.uniform(0, 300, (50, 2))
    np.testing.assert_allclose(transform.to_image(transform.to_input(points)), points, atol=1e-3)
    # A bright blob at image pixel (x, y) lands where to_input says after cv2's resize.
    for x, y in [(100.0, 50.0), (400.0, 250.0), (40.3, 230.7)]:  # away from the border
        blob = np.zeros((301, 457), np.float32)
        yy, xx = np.mgrid[:301, :457]
        blob[:] = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 6.0**2))
        h, w = transform.resized_hw
        small = cv2.resize(blob, (w, h), interpolation=cv2.INTER_LINEAR)
        ys, xs = np.mgrid[:h, :w]
        centroid = np.array([(small * xs).sum(), (small * ys).sum()]) / small.sum()
        np.testing.assert_allclose(centroid, transform.to_input([x, y]), atol=0.05)


def test_poses_map_back_to_image_pixels():
    from simplepose.types import Poses

    image = np.zeros((200, 300, 3), np.uint8)
    _, transform = letterbox(image, InferenceConfig(input_size=100))
    keypoints = np.zeros((1, 17, 3), np.float32)
    keypoints[0, 0] = (*transform.to_input([150.0, 80.0]), 0.9)
    mapped = transform.poses_to_image(Poses(keypoints, np.ones(1, np.float32)))
    np.testing.assert_allclose(mapped.keypoints[0, 0], (150.0, 80.0, 0.9), atol=1e-4)
    np.testing.assert_array_equal(mapped.keypoints[0, 1], 0)  # unfound stays (0, 0, 0)


def test_network_input_is_bgr_over_255_nchw():
    image = np.random.default_rng(1).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    tensor, transform = preprocess(image, InferenceConfig(input_size=64, resize_side="long"))
    assert tensor.dtype == np.float32 and tensor.shape == (1, 3, *transform.input_hw)
    boxed, _ = letterbox(image, InferenceConfig(input_size=64, resize_side="long"))
    np.testing.assert_allclose(tensor[0], boxed.transpose(2, 0, 1) / 255.0, atol=1e-7)
    with pytest.raises(ValueError, match=r"uint8 \(N, H, W, 3\)"):
        to_network_input(np.zeros((2, 3, 8, 8), np.float32))


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (np.full((4, 5), 9, np.uint8), np.full((4, 5, 3), 9)),  # grayscale
        (np.full((4, 5, 1), 9, np.uint8), np.full((4, 5, 3), 9)),
        (np.dstack([np.full((4, 5, 3), 9, np.uint8), np.zeros((4, 5), np.uint8)]), 9),  # BGRA
        (np.full((4, 5, 3), 65535, np.uint16), 255),  # 16-bit
        (np.full((4, 5, 3), 257 * 9, np.uint16), 9),
        (np.full((4, 5, 3), 0.5, np.float32), 128),  # float in [0, 1]
    ],
)
def test_image_formats_convert_to_bgr_uint8(image, expected):
    out = as_bgr_uint8(image)
    assert out.dtype == np.uint8 and out.shape == (4, 5, 3)
    np.testing.assert_array_equal(out, np.broadcast_to(expected, (4, 5, 3)))


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        (np.zeros((0, 10, 3), np.uint8), InputError, "empty"),
        (np.zeros((10, 10, 2), np.uint8), InputError, "shape"),
        (np.zeros((10, 10, 3), np.int64), TypeError, "dtype"),
        ([[1, 2], [3, 4]], TypeError, "numpy array"),
    ],
)
def test_bad_images_raise_clear_errors(image, error, message):
    with pytest.raises(error, match=message):
        as_bgr_uint8(image)


def test_read_image(tmp_path, data_dir):
    image = read_image(str(data_dir / "images" / "zidane.jpg"))
    assert image.shape == (720, 1280, 3) and image.dtype == np.uint8
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_image(str(tmp_path / "missing.jpg"))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes((data_dir / "images" / "zidane.jpg").read_bytes()[:200])
    with pytest.raises(InputError, match="not a readable image"):
        read_image(str(corrupt))
    with pytest.raises(InputError, match="not a file"):
        read_image(str(tmp_path))
