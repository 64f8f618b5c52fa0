"""Image -> network input, and the exact affine map back to image pixels.

Coordinates: pixel *indices* with x before y, pixel k's centre at k (the convention of the
targets and the grouping: heatmap cell i sits at input pixel ``4 i + 1.5``). OpenCV's resize
aligns pixel centres at half-pixel offsets, so an image resized by ``s`` maps image pixel
``x`` to input pixel ``(x + 0.5) s - 0.5``; ``InputTransform`` holds that map per axis.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from simplepose.config import InferenceConfig, ModelConfig
from simplepose.errors import InputError
from simplepose.types import Poses


@dataclass(frozen=True)
class InputTransform:
    """The map between image pixels and network-input pixels of one resized, padded image.

    Attributes:
        scale_xy: (sx, sy) network-input pixels per image pixel (``resized / image`` size).
        image_hw: (H, W) of the original image.
        resized_hw: (h, w) of the resized image inside the input (the rest is padding).
        input_hw: (H_in, W_in) of the padded network input, multiples of 64.
    """

    scale_xy: tuple[float, float]
    image_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    input_hw: tuple[int, int]

    def to_image(self, xy: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Network-input pixel coordinates (..., 2) -> image pixel coordinates (..., 2)."""
        scale = np.asarray(self.scale_xy, np.float64)
        return ((np.asarray(xy, np.float64) + 0.5) / scale - 0.5).astype(np.float32)

    def to_input(self, xy: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Image pixel coordinates (..., 2) -> network-input pixel coordinates (..., 2)."""
        scale = np.asarray(self.scale_xy, np.float64)
        return ((np.asarray(xy, np.float64) + 0.5) * scale - 0.5).astype(np.float32)

    def poses_to_image(self, poses: Poses) -> Poses:
        """Map poses decoded in network-input pixels to image pixels (unfound stay 0)."""
        inverse = 1.0 / np.asarray(self.scale_xy, np.float64)
        return poses.transformed(inverse, 0.5 * inverse - 0.5)


def as_bgr_uint8(image: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    """Convert an image to BGR uint8 (H, W, 3), C-contiguous.

    Accepts uint8 or uint16 (scaled down by 257) or float in [0, 1], with 1 (grayscale),
    3 (BGR) or 4 (BGRA, alpha dropped) channels, or a 2-D grayscale array.

    Raises:
        TypeError: not a numpy array, or an unsupported dtype.
        InputError: empty image or unsupported channel count.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array (H, W, 3) BGR, got {type(image).__name__}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise InputError(f"image must have shape (H, W), (H, W, 1|3|4), got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError(f"image is empty: shape {image.shape}")
    if image.dtype == np.uint16:
        image = (image.astype(np.uint32) * 255 + 32767) // 65535
        image = image.astype(np.uint8)
    elif image.dtype.kind == "f":
        image = (np.clip(np.nan_to_num(image), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise TypeError(f"image dtype must be uint8, uint16 or float, got {image.dtype}")
    bgr = np.asarray(image, dtype=np.uint8)
    if bgr.shape[2] == 1:
        bgr = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    elif bgr.shape[2] == 4:
        bgr = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGRA2BGR), dtype=np.uint8)
    return np.ascontiguousarray(bgr)


def read_image(path: str) -> npt.NDArray[np.uint8]:
    """Read an image file as BGR uint8 (H, W, 3) (16-bit and alpha converted).

    Raises:
        FileNotFoundError: no such file.
        InputError: the file is not a decodable image.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"image {path} does not exist")
    if not os.path.isfile(path):
        raise InputError(f"image {path} is not a file")
    data = np.fromfile(path, dtype=np.uint8)  # handles non-ASCII paths, unlike cv2.imread
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f"{path} is not a readable image (corrupt or unsupported format)")
    return as_bgr_uint8(image)


def input_scale(image_hw: tuple[int, int], config: InferenceConfig, scale: float = 1.0) -> float:
    """Resize factor (input pixels per image pixel) for one scale of ``config``.

    ``config.resize_side`` of the image goes to ``config.input_size * scale``; the factor then
    shrinks, if needed, so the resized image fits ``config.max_input_hw``.
    """
    h, w = image_hw
    side = {"height": h, "width": w, "long": max(h, w), "short": min(h, w)}[config.resize_side]
    factor = config.input_size * scale / side
    cap_h, cap_w = config.max_input_hw
    return min(factor, cap_h / h, cap_w / w)


def letterbox(
    image: npt.NDArray[np.uint8],
    config: InferenceConfig | None = None,
    scale: float = 1.0,
) -> tuple[npt.NDArray[np.uint8], InputTransform]:
    """Resize (bicubic, as the authors) and pad right/bottom to a multiple of 64.

    Args:
        image: BGR uint8 (H, W, 3) (see ``as_bgr_uint8`` for other formats).
        config: sizes and padding (default ``InferenceConfig()``).
        scale: multiplier of ``config.input_size`` (one entry of ``config.scales``).

    Returns:
        (padded BGR uint8 (H_in, W_in, 3), transform back to image pixels).
    """
    config = config or InferenceConfig()
    image = as_bgr_uint8(image)
    h, w = image.shape[:2]
    factor = input_scale((h, w), config, scale)
    new_w, new_h = max(1, round(w * factor)), max(1, round(h * factor))
    if (new_w, new_h) != (w, h):
        image = np.asarray(
            cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_CUBIC), dtype=np.uint8
        )
    multiple = ModelConfig.INPUT_MULTIPLE
    in_h, in_w = math.ceil(new_h / multiple) * multiple, math.ceil(new_w / multiple) * multiple
    padded = np.asarray(
        cv2.copyMakeBorder(
            image,
            0,
            in_h - new_h,
            0,
            in_w - new_w,
            cv2.BORDER_CONSTANT,
            value=(config.pad_value,) * 3,
        ),
        dtype=np.uint8,
    )
    transform = InputTransform(
        scale_xy=(new_w / w, new_h / h),
        image_hw=(h, w),
        resized_hw=(new_h, new_w),
        input_hw=(in_h, in_w),
    )
    return padded, transform


def to_network_input(batch: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """BGR uint8 (N, H, W, 3) -> float32 (N, 3, H, W) / 255, C-contiguous."""
    if batch.ndim != 4 or batch.shape[3] != 3 or batch.dtype != np.uint8:
        raise ValueError(f"batch must be uint8 (N, H, W, 3), got {batch.dtype} {batch.shape}")
    out = np.empty((batch.shape[0], 3, batch.shape[1], batch.shape[2]), np.float32)
    np.multiply(batch.transpose(0, 3, 1, 2), np.float32(1.0 / 255.0), out=out)
    return out


def preprocess(
    image: npt.NDArray[np.generic],
    config: InferenceConfig | None = None,
    scale: float = 1.0,
) -> tuple[npt.NDArray[np.float32], InputTransform]:
    """Image -> network input (1, 3, H_in, W_in) float32 BGR / 255 and its transform."""
    padded, transform = letterbox(as_bgr_uint8(image), config, scale)
    return to_network_input(padded[None]), transform
