"""Grouping: heatmaps -> people, through the C++ core ``simplepose._C``.

``decode`` is the public entry point. The core's steps (``_C.find_peaks``,
``_C.score_parts``, ``_C.assemble``) are exposed for testing; ``reference.py`` is the NumPy
specification they are checked against.

Coordinates: the core works on the heatmap grid (cell centre = integer index). With stride S
and upsampling factor u, grid cell j sits at network-input pixel ``(S / u) j + S / (2 u) - 0.5``,
i.e. ``4 j + 1.5`` on the native stride-4 grid (the ground-truth convention) and ``j`` after the
authors' x4 bicubic upsampling.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from simplepose import skeleton
from simplepose.config import DecodeConfig
from simplepose.grouping.reference import GridParams
from simplepose.types import Poses

if TYPE_CHECKING:
    from simplepose._C import DecodeParams

__all__ = [
    "DecodeConfig",
    "GridParams",
    "decode",
    "grid_params",
    "grid_to_input",
    "to_c_params",
    "upsample",
]

_logger = logging.getLogger(__name__)


def _check_heatmaps(heatmaps: npt.ArrayLike) -> npt.NDArray[np.float32]:
    array = np.asarray(heatmaps)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"heatmaps must have a real numeric dtype (float32), got {array.dtype}")
    if array.ndim != 3 or array.shape[0] != skeleton.NUM_CHANNELS:
        raise ValueError(f"heatmaps must have shape (50, H, W), got {array.shape}")
    if array.shape[1] < 1 or array.shape[2] < 1:
        raise ValueError(f"heatmaps must have H, W >= 1, got {array.shape}")
    # The core takes C-contiguous float32 only; convert here, visibly (no copy when it already is).
    return np.ascontiguousarray(array, dtype=np.float32)


def upsample(heatmaps: npt.NDArray[np.float32], factor: int) -> npt.NDArray[np.float32]:
    """Resize heatmaps by ``factor`` with bicubic interpolation (half-pixel centres, as cv2).

    Non-finite values are replaced by 0 first, so they cannot spread through the filter.

    Args:
        heatmaps: float32 (C, H, W).
        factor: integer >= 1.

    Returns:
        float32 (C, factor H, factor W), C-contiguous; cell j sits at original cell
        ``(j + 0.5) / factor - 0.5``.
    """
    if factor == 1:
        return heatmaps
    clean = np.nan_to_num(heatmaps, nan=0.0, posinf=0.0, neginf=0.0)
    c, h, w = clean.shape
    # cv2 resizes up to 512 channels at once in (H, W, C) layout.
    resized = cv2.resize(
        np.ascontiguousarray(clean.transpose(1, 2, 0)),
        (w * factor, h * factor),
        interpolation=cv2.INTER_CUBIC,
    )
    return np.ascontiguousarray(resized.reshape(h * factor, w * factor, c).transpose(2, 0, 1))


def grid_params(
    config: DecodeConfig, grid_height: int, image_height: float | None = None
) -> GridParams:
    """Resolve ``config`` for a grid of ``grid_height`` rows (already upsampled).

    Args:
        config: thresholds.
        grid_height: rows of the (upsampled) heatmap grid.
        image_height: height in network-input pixels for the distance prior; default the
            grid height times the grid stride (the padded input height).
    """
    grid_stride = config.stride / config.upsample
    prior = float(image_height) if image_height is not None else grid_height * grid_stride
    if not prior > 0:
        raise ValueError(f"image_height must be > 0, got {image_height!r}")
    return GridParams(config=config, grid_stride=grid_stride, prior_height=prior)


def to_c_params(params: GridParams) -> DecodeParams:
    """The ``_C.DecodeParams`` equal to ``params``."""
    import simplepose._C as _C  # the extension is loaded on first use

    config = params.config
    c_params = _C.DecodeParams()
    c_params.peak_threshold = config.peak_threshold
    c_params.max_peaks = config.max_peaks
    c_params.refine = config.refine
    c_params.part_threshold = config.part_threshold
    c_params.connect_ratio = config.connect_ratio
    c_params.max_samples = config.max_samples
    c_params.grid_stride = params.grid_stride
    c_params.prior_height = params.prior_height
    c_params.len_rate = config.len_rate
    c_params.connection_tolerance = config.connection_tolerance
    c_params.attach_both_ends = config.attach_both_ends
    c_params.exchange_partners = config.exchange_partners
    c_params.min_keypoints = config.min_keypoints
    c_params.min_mean_score = config.min_mean_score
    c_params.person_score = (
        _C.PersonScore.MEAN if config.person_score == "mean" else _C.PersonScore.AUTHORS
    )
    return c_params


def grid_to_input(
    keypoints18: npt.NDArray[np.float32], config: DecodeConfig
) -> npt.NDArray[np.float32]:
    """Map found keypoints from grid cells to network-input pixels (unfound stay 0).

    Args:
        keypoints18: float32 (P, 18, 3) ``[x, y, score]`` in grid cells.
        config: gives ``stride`` and ``upsample``.

    Returns:
        float32 (P, 18, 3) ``[x, y, score]`` in network-input pixels.
    """
    scale = config.stride / config.upsample
    offset = config.stride / (2 * config.upsample) - 0.5
    out = keypoints18.copy()
    found = out[:, :, 2] > 0
    out[:, :, :2] = np.where(found[:, :, None], out[:, :, :2] * scale + offset, 0)
    return out


def decode(
    heatmaps: npt.ArrayLike,
    config: DecodeConfig = DecodeConfig(),  # noqa: B008 - frozen, immutable default
    *,
    image_height: float | None = None,
) -> Poses:
    """Group keypoints into people.

    Args:
        heatmaps: (50, H, W) network output on the stride-4 grid (channel layout in
            ``simplepose.skeleton``); float32 C-contiguous avoids a copy. Non-finite values
            count as 0.
        config: thresholds; ``config.upsample`` > 1 resizes the heatmaps first.
        image_height: height of the image content in network-input pixels, for the
            distance prior; default ``H * stride``.

    Returns:
        Poses with keypoints float32 (P, 17, 3) ``[x, y, score]`` in network-input pixels
        (grid cell i at ``4 i + 1.5``), COCO order, unfound ``[0, 0, 0]``, and scores float32
        (P,), descending.

    Raises:
        ValueError: on a wrong shape or dtype.
    """
    import simplepose._C as _C

    grid = upsample(_check_heatmaps(heatmaps), config.upsample)
    params = grid_params(config, grid.shape[1], image_height)
    keypoints18, scores = _C.decode(grid, to_c_params(params))
    keypoints = skeleton.network_to_coco(grid_to_input(keypoints18, config))
    return Poses(np.ascontiguousarray(keypoints, dtype=np.float32), scores.astype(np.float32))
