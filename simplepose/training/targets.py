"""Ground-truth heatmaps: keypoint Gaussians, body-part bands, masks and the scale pyramid.

Reproduces the authors' released ``Heatmapper`` value for value (spec section 2; checked
against ``golden/targets_released.npz``). Conventions:

- Joints are ``(P, 18, 3)`` float32 ``[x, y, flag]`` rows in network order (see
  ``simplepose.skeleton``), continuous input-pixel coordinates (whatever the augmentation's
  affine warp produced). ``flag`` is the authors' convention: 1 visible,
  0 labelled but occluded, 2 not labelled. Flags ``>= 2`` and non-finite coordinates draw
  nothing.
- Output cell ``i`` (stride ``S``) sits at input pixel ``S i + S / 2 - 0.5`` (4 i + 1.5).
- Targets are ``(50, H / S, W / S)`` float32 in [0, 1], channel layout of
  ``simplepose.skeleton``.

Everything is vectorised over all (person, keypoint) windows and all (person, part) boxes at
once: the cells of every window/box are laid out in one flat ("ragged") array, evaluated in
one pass and reduced with ``np.maximum.at`` (keypoints) or ``np.unique`` + ``np.bincount``
(parts). Masks are merged in the run-length domain and decoded once per kind.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

import cv2
import numpy as np
import numpy.typing as npt

from simplepose import skeleton
from simplepose.config import TargetConfig

if TYPE_CHECKING:
    import torch

_logger = logging.getLogger(__name__)

__all__ = [
    "annotation_mask",
    "coco_to_joints18",
    "encode",
    "ignore_mask",
    "ignore_mask_image",
    "image_masks",
    "mask_to_grid",
    "multiscale",
    "person_mask_image",
]

_PART_FROM = np.array([a for a, _ in skeleton.PARTS], dtype=np.intp)
_PART_TO = np.array([b for _, b in skeleton.PARTS], dtype=np.intp)

#: Authors' flags: COCO v=2 (visible) -> 1, v=1 (occluded) -> 0, v=0 (absent) -> 2.
_COCO_V_TO_FLAG = np.array([2.0, 0.0, 1.0], dtype=np.float32)


# --------------------------------------------------------------------------------------
# Joints
# --------------------------------------------------------------------------------------


def coco_to_joints18(keypoints17: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Convert COCO keypoints to network joints with the authors' visibility flags.

    Args:
        keypoints17: COCO ``[x, y, v] * 17`` per person, shape (P, 51) or (P, 17, 3), in
            image pixels, COCO visibility (0 not labelled, 1 labelled but occluded,
            2 visible). A keypoint with a non-finite x or y is treated as not labelled.

    Returns:
        (P, 18, 3) float32 ``[x, y, flag]`` in network order, same pixel coordinates;
        flag 1 visible, 0 occluded, 2 not labelled. The neck is the shoulder midpoint when
        both shoulders are labelled, its flag from the smaller COCO ``v`` of the two;
        otherwise ``(0, 0, 2)``.

    Raises:
        ValueError: on a wrong shape or a ``v`` outside {0, 1, 2}.
    """
    kps = np.array(keypoints17, dtype=np.float64)
    if kps.ndim == 2 and kps.shape[1] == 3 * skeleton.NUM_COCO_KEYPOINTS:
        kps = kps.reshape(-1, skeleton.NUM_COCO_KEYPOINTS, 3)
    elif kps.ndim == 1 and kps.size == 0:
        kps = kps.reshape(0, skeleton.NUM_COCO_KEYPOINTS, 3)
    if kps.ndim != 3 or kps.shape[1:] != (skeleton.NUM_COCO_KEYPOINTS, 3):
        raise ValueError(f"keypoints17 must have shape (P, 51) or (P, 17, 3), got {kps.shape}")
    v = kps[..., 2]
    if not np.all(np.isin(v, (0, 1, 2))):
        raise ValueError(f"COCO visibility must be 0, 1 or 2, got values {np.unique(v)}")
    # Non-finite coordinates count as "not labelled" before the neck rule sees them.
    v[~np.isfinite(kps[..., :2]).all(axis=-1)] = 0
    joints = skeleton.coco_to_network(kps.astype(np.float32))
    flags = _COCO_V_TO_FLAG[joints[..., 2].astype(np.intp)]
    out = joints.astype(np.float32)
    out[..., 2] = flags
    return out


def _check_joints(joints18: npt.ArrayLike) -> npt.NDArray[np.float64]:
    joints = np.asarray(joints18, dtype=np.float64)
    if joints.ndim == 1 and joints.size == 0:
        joints = joints.reshape(0, skeleton.NUM_KEYPOINTS, 3)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.NUM_KEYPOINTS, 3):
        raise ValueError(f"joints18 must have shape (P, 18, 3), got {joints.shape}")
    return joints


def _check_hw(name: str, hw: Sequence[int]) -> tuple[int, int]:
    if len(hw) != 2 or any(int(v) != v or v < 1 for v in hw):
        raise ValueError(f"{name} must be two positive ints (height, width), got {hw!r}")
    return int(hw[0]), int(hw[1])


# --------------------------------------------------------------------------------------
# Heatmaps
# --------------------------------------------------------------------------------------


def _ragged_cells(
    x0: npt.NDArray[np.int64],
    x1: npt.NDArray[np.int64],
    y0: npt.NDArray[np.int64],
    y1: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Enumerate the cells of B non-empty inclusive boxes as flat (box, row, col) arrays."""
    widths = x1 - x0 + 1
    areas = widths * (y1 - y0 + 1)
    box = np.repeat(np.arange(len(areas)), areas)
    starts = np.cumsum(areas) - areas
    local = np.arange(int(areas.sum()), dtype=np.int64) - starts[box]
    box_width = widths[box]
    return box, y0[box] + local // box_width, x0[box] + local % box_width


def _cell_centre(index: npt.NDArray[np.int64], stride: int) -> npt.NDArray[np.float64]:
    return np.asarray(index * float(stride) + (stride / 2.0 - 0.5), dtype=np.float64)


def _draw_keypoints(
    joints: npt.NDArray[np.float64],
    grid_hw: tuple[int, int],
    config: TargetConfig,
    out: npt.NDArray[np.float32],
) -> None:
    """Max-over-people keypoint Gaussians into ``out``, a zeroed flat view of (18, h, w)."""
    grid_h, grid_w = grid_hw
    x, y, flag = joints[..., 0], joints[..., 1], joints[..., 2]
    with np.errstate(invalid="ignore", over="ignore"):
        # Python round (ties to even) of coordinate / stride, as in the released code.
        cx = np.round(x / config.stride)
        cy = np.round(y / config.stride)
    r = config.keypoint_radius
    # Windows entirely off the grid draw nothing; filtering before the int cast also keeps
    # huge coordinates from overflowing.
    keep = (
        (flag < 2)
        & np.isfinite(cx)
        & np.isfinite(cy)
        & (cx + r >= 0)
        & (cx - r <= grid_w - 1)
        & (cy + r >= 0)
        & (cy - r <= grid_h - 1)
    )
    if not keep.any():
        return
    kind = np.broadcast_to(np.arange(skeleton.NUM_KEYPOINTS), keep.shape)[keep]
    px, py = x[keep], y[keep]
    icx, icy = cx[keep].astype(np.int64), cy[keep].astype(np.int64)
    box, row, col = _ragged_cells(
        np.maximum(icx - r, 0),
        np.minimum(icx + r, grid_w - 1),
        np.maximum(icy - r, 0),
        np.minimum(icy + r, grid_h - 1),
    )
    # Separable product evaluated in float32, like the released code.
    inv = np.float32(1.0 / (2.0 * config.sigma**2))
    dx = (_cell_centre(col, config.stride) - px[box]).astype(np.float32)
    dy = (_cell_centre(row, config.stride) - py[box]).astype(np.float32)
    values = np.exp(-dx * dx * inv) * np.exp(-dy * dy * inv)
    flat = (kind[box] * grid_h + row) * grid_w + col
    np.maximum.at(out, flat, values)


def _draw_parts(
    joints: npt.NDArray[np.float64],
    grid_hw: tuple[int, int],
    config: TargetConfig,
    out: npt.NDArray[np.float32],
) -> None:
    """Box-clipped part bands into ``out``, a zeroed flat view of (30, h, w).

    Same-type overlaps are averaged over the boxes covering each cell.
    """
    grid_h, grid_w = grid_hw
    x, y, flag = joints[..., 0], joints[..., 1], joints[..., 2]
    labelled = (flag < 2) & np.isfinite(x) & np.isfinite(y)
    xa, ya, xb, yb = x[:, _PART_FROM], y[:, _PART_FROM], x[:, _PART_TO], y[:, _PART_TO]
    keep = labelled[:, _PART_FROM] & labelled[:, _PART_TO]
    keep &= (xa != xb) | (ya != yb)  # zero-length parts are skipped
    pad, s = config.part_box_pad, config.stride
    with np.errstate(invalid="ignore", over="ignore"):
        bx0 = np.maximum(np.round((np.minimum(xa, xb) - pad) / s), 0)
        bx1 = np.minimum(np.round((np.maximum(xa, xb) + pad) / s), grid_w - 1)
        by0 = np.maximum(np.round((np.minimum(ya, yb) - pad) / s), 0)
        by1 = np.minimum(np.round((np.maximum(ya, yb) + pad) / s), grid_h - 1)
    keep &= (bx0 <= bx1) & (by0 <= by1)
    if not keep.any():
        return
    kind = np.broadcast_to(np.arange(skeleton.NUM_PARTS), keep.shape)[keep]
    xa, ya, xb, yb = xa[keep], ya[keep], xb[keep], yb[keep]
    box, row, col = _ragged_cells(
        bx0[keep].astype(np.int64),
        bx1[keep].astype(np.int64),
        by0[keep].astype(np.int64),
        by1[keep].astype(np.int64),
    )
    ddx, ddy = xb - xa, yb - ya
    norm = np.sqrt(ddx * ddx + ddy * ddy) + 1e-6
    gx = _cell_centre(col, s)
    gy = _cell_centre(row, s)
    # Perpendicular distance from the cell centre to the infinite line through both joints.
    dist = np.abs(ddx[box] * (ya[box] - gy) - (xa[box] - gx) * ddy[box]) / norm[box]
    values = np.exp(-(dist * dist) / (2.0 * config.part_sigma**2))
    values[values <= config.part_threshold] = config.part_floor
    flat = (kind[box] * grid_h + row) * grid_w + col
    # Reduce over the touched cells only (a few thousand), never over the whole grid.
    cells, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    out[cells] = np.bincount(inverse, weights=values, minlength=len(cells)) / counts


def encode(
    joints18: npt.ArrayLike,
    input_hw: Sequence[int],
    config: TargetConfig | None = None,
    person_mask: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float32]:
    """Encode the 50-channel ground truth of one sample at the stride-S output grid.

    Args:
        joints18: (P, 18, 3) ``[x, y, flag]`` in network order and input pixels (see the
            module docstring); P may be 0. Flags ``>= 2`` or non-finite x/y draw nothing.
        input_hw: (H, W) of the network input; both multiples of ``config.stride``.
        config: encoding constants; ``None`` = the released values.
        person_mask: optional union of person segmentations for channel 48, either at the
            output grid (H / S, W / S) or at the input (H, W); uint8 is read as 0..255,
            bool and float as 0..1. Input-size masks are area-resized to the grid
            (``mask_to_grid``); the grid mask is then eroded with a square kernel of side
            ``config.person_mask_erode``. ``None``: channel 48 is zero.

    Returns:
        (50, H / S, W / S) float32 in [0, 1]: channels 0-29 body parts, 30-47 keypoints,
        48 person mask, 49 the pixelwise max of 30-47.

    Raises:
        ValueError: on malformed shapes or an input size that is not a multiple of the stride.
    """
    config = TargetConfig() if config is None else config
    joints = _check_joints(joints18)
    height, width = _check_hw("input_hw", input_hw)
    if height % config.stride or width % config.stride:
        raise ValueError(
            f"input_hw must be multiples of the stride {config.stride}, got {(height, width)}"
        )
    grid_hw = (height // config.stride, width // config.stride)
    heatmaps = np.zeros((skeleton.NUM_CHANNELS, *grid_hw), dtype=np.float32)
    # Contiguous channel slices, so reshape(-1) gives views the drawers write into.
    _draw_parts(joints, grid_hw, config, heatmaps[skeleton.PART_CHANNELS].reshape(-1))
    _draw_keypoints(joints, grid_hw, config, heatmaps[skeleton.KEYPOINT_CHANNELS].reshape(-1))
    if person_mask is not None:
        heatmaps[skeleton.PERSON_MASK_CHANNEL] = _person_mask_channel(
            person_mask, (height, width), grid_hw, config
        )
    np.max(
        heatmaps[skeleton.KEYPOINT_CHANNELS], axis=0, out=heatmaps[skeleton.KEYPOINT_MAX_CHANNEL]
    )
    # Every channel is in [0, 1] by construction (Gaussians peak at 1, part maps are means of
    # values <= 1, masks are clipped), so the released code's final clip is a no-op here and
    # is skipped: it would cost a full pass over the 50 channels.
    return heatmaps


def _person_mask_channel(
    person_mask: npt.ArrayLike,
    input_hw: tuple[int, int],
    grid_hw: tuple[int, int],
    config: TargetConfig,
) -> npt.NDArray[np.float32]:
    mask = np.asarray(person_mask)
    if mask.shape == grid_hw:
        grid = _as_unit_float(mask)
    elif mask.shape == input_hw:
        grid = mask_to_grid(mask, grid_hw)
    else:
        raise ValueError(
            f"person_mask must have shape {grid_hw} (output grid) or {input_hw} (input), "
            f"got {mask.shape}"
        )
    if config.person_mask_erode > 1:
        kernel = np.ones((config.person_mask_erode, config.person_mask_erode), np.uint8)
        grid = np.asarray(cv2.erode(grid, kernel), dtype=np.float32)
    return grid


# --------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------


def _as_unit_float(mask: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """uint8 0..255 -> [0, 1]; bool and float as they are (float32, clipped to [0, 1])."""
    if mask.dtype == np.uint8:
        return mask.astype(np.float32) * np.float32(1.0 / 255.0)
    if mask.dtype == np.bool_ or np.issubdtype(mask.dtype, np.floating):
        return np.clip(np.nan_to_num(mask.astype(np.float32)), 0.0, 1.0)
    raise TypeError(f"mask must be uint8, bool or float, got dtype {mask.dtype}")


def _annotation_rle(annotation: Mapping[str, Any], image_hw: tuple[int, int]) -> Any | None:
    """The annotation's segmentation as one compressed RLE, or None when it is empty."""
    from pycocotools import mask as mask_utils  # only the mask helpers need it

    height, width = image_hw
    seg = annotation.get("segmentation")
    if not seg:
        return None
    if isinstance(seg, Mapping):
        if [int(v) for v in seg["size"]] != [height, width]:
            raise ValueError(
                f"RLE size must equal image_hw {[height, width]}, got {list(seg['size'])}"
            )
        return (
            mask_utils.frPyObjects(seg, height, width) if isinstance(seg["counts"], list) else seg
        )
    polygons = [p for p in seg if len(p) >= 6]  # pycocotools rejects degenerate polygons
    if not polygons:
        return None
    return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))


def _decode_union(rles: list[Any], image_hw: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """Union of RLEs, merged in the run-length domain and decoded once."""
    from pycocotools import mask as mask_utils

    if not rles:
        return np.zeros(image_hw, dtype=bool)
    rle = rles[0] if len(rles) == 1 else mask_utils.merge(rles, intersect=False)
    with warnings.catch_warnings():
        # pycocotools < 2.1 trips NumPy 2's __array__(copy=...) deprecation on every decode;
        # the result is correct, the warning is noise in data-loading logs.
        warnings.filterwarnings(
            "ignore", message=r"__array__ implementation", category=DeprecationWarning
        )
        return mask_utils.decode(rle).astype(bool)


def annotation_mask(
    annotation: Mapping[str, Any], image_hw: Sequence[int]
) -> npt.NDArray[np.bool_]:
    """Decode one COCO annotation's segmentation to a boolean image mask.

    Args:
        annotation: a COCO annotation dict; ``segmentation`` is a polygon list, an
            uncompressed RLE (``counts`` a list) or a compressed RLE (``counts`` a string).
            A missing or empty segmentation gives an empty mask.
        image_hw: (H, W) of the image the annotation belongs to.

    Returns:
        (H, W) bool, True inside the segmentation.

    Raises:
        ValueError: when an RLE's ``size`` differs from ``image_hw``.
    """
    hw = _check_hw("image_hw", image_hw)
    rle = _annotation_rle(annotation, hw)
    return _decode_union([] if rle is None else [rle], hw)


def image_masks(
    annotations: Sequence[Mapping[str, Any]], image_hw: Sequence[int]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Both full-resolution masks of one image at once (each segmentation converted once).

    Args:
        annotations: the person annotations of one image (COCO dicts with ``segmentation``,
            ``iscrowd``, ``num_keypoints``).
        image_hw: (H, W) of the image, in pixels.

    Returns:
        ``(ignore, person)``: the ``ignore_mask_image`` and ``person_mask_image`` results,
        (H, W) uint8 each.
    """
    hw = _check_hw("image_hw", image_hw)
    crowd, people, no_keypoints = [], [], []
    for ann in annotations:
        rle = _annotation_rle(ann, hw)
        if rle is None:
            continue
        if ann.get("iscrowd", 0):
            crowd.append(rle)
        else:
            people.append(rle)
            if ann.get("num_keypoints", 0) == 0:
                no_keypoints.append(rle)
    people_mask = _decode_union(people, hw)
    crowd_mask = _decode_union(crowd, hw)
    ignore = _decode_union(no_keypoints, hw)
    ignore |= crowd_mask & ~people_mask
    ignore_image = np.where(ignore, np.uint8(0), np.uint8(255))
    person_image = np.where(people_mask | crowd_mask, np.uint8(255), np.uint8(0))
    return ignore_image, person_image


def ignore_mask_image(
    annotations: Sequence[Mapping[str, Any]], image_hw: Sequence[int]
) -> npt.NDArray[np.uint8]:
    """Full-resolution loss mask of one image (the authors' ``mask_miss``): 255 use, 0 ignore.

    Ignored: the segmentation of every non-crowd person with ``num_keypoints == 0`` (people
    the network may see but that have no targets), and every crowd region minus the
    segmentations of the non-crowd people (who do have targets). The released code only
    subtracts the people listed *before* the crowd annotation; here the subtraction does not
    depend on annotation order (COCO lists the crowd last, so both agree on COCO files).

    Warp this mask together with the image (border value 255 = use), then call
    ``mask_to_grid``. ``image_masks`` computes it together with ``person_mask_image``.

    Args:
        annotations: the person annotations of one image (COCO dicts with ``segmentation``,
            ``iscrowd``, ``num_keypoints``).
        image_hw: (H, W) of the image, in pixels.

    Returns:
        (H, W) uint8, 255 where the loss is used, 0 where it is ignored.
    """
    return image_masks(annotations, image_hw)[0]


def person_mask_image(
    annotations: Sequence[Mapping[str, Any]], image_hw: Sequence[int]
) -> npt.NDArray[np.uint8]:
    """Full-resolution person foreground (channel 48): union of all segmentations, crowd included.

    Args:
        annotations: the person annotations of one image.
        image_hw: (H, W) of the image, in pixels.

    Returns:
        (H, W) uint8, 255 on people, 0 elsewhere. Warp it with the image (border 0), then
        pass it to ``encode(person_mask=...)``.
    """
    hw = _check_hw("image_hw", image_hw)
    rles = [r for r in (_annotation_rle(a, hw) for a in annotations) if r is not None]
    return np.where(_decode_union(rles, hw), np.uint8(255), np.uint8(0))


def mask_to_grid(mask_image: npt.ArrayLike, output_hw: Sequence[int]) -> npt.NDArray[np.float32]:
    """Area-resize a (warped) full-resolution mask to the output grid, as fractions.

    Args:
        mask_image: (H, W) mask in input/image pixels; uint8 is read as 0..255, bool and
            float as 0..1.
        output_hw: (h, w) of the output grid (H / S, W / S for network inputs).

    Returns:
        (h, w) float32 in [0, 1]: the covered fraction of each cell (cv2 ``INTER_AREA``).
    """
    out_h, out_w = _check_hw("output_hw", output_hw)
    mask = np.asarray(mask_image)
    if mask.ndim != 2:
        raise ValueError(f"mask_image must have shape (H, W), got {mask.shape}")
    unit = _as_unit_float(mask)
    if unit.shape == (out_h, out_w):
        return unit
    resized = np.asarray(
        cv2.resize(unit, (out_w, out_h), interpolation=cv2.INTER_AREA), dtype=np.float32
    )
    return np.clip(resized, 0.0, 1.0, out=resized)


def ignore_mask(
    annotations: Sequence[Mapping[str, Any]],
    image_hw: Sequence[int],
    output_hw: Sequence[int] | None = None,
    stride: int = 4,
) -> npt.NDArray[np.float32]:
    """Loss mask at the output grid for an unwarped image (1 = use, 0 = ignore).

    Shortcut for ``mask_to_grid(ignore_mask_image(annotations, image_hw), output_hw)``; the
    training pipeline warps ``ignore_mask_image`` first and calls ``mask_to_grid`` itself.

    Args:
        annotations: the person annotations of one image.
        image_hw: (H, W) of the image, in pixels.
        output_hw: (h, w) of the grid; ``None`` = ``(H // stride, W // stride)``.
        stride: input pixels per cell, used when ``output_hw`` is None.

    Returns:
        (h, w) float32 in [0, 1]; fractional on cells partly covered by an ignored region.
    """
    height, width = _check_hw("image_hw", image_hw)
    if output_hw is None:
        output_hw = (max(height // stride, 1), max(width // stride, 1))
    return mask_to_grid(ignore_mask_image(annotations, (height, width)), output_hw)


# --------------------------------------------------------------------------------------
# Scale pyramid
# --------------------------------------------------------------------------------------


@overload
def multiscale(
    targets: npt.NDArray[np.float32], num_scales: int = 5
) -> list[npt.NDArray[np.float32]]: ...
@overload
def multiscale(targets: torch.Tensor, num_scales: int = 5) -> list[torch.Tensor]: ...


def multiscale(targets: Any, num_scales: int = 5) -> list[Any]:
    """Average-pool stride-S targets into the pyramid of the network's output scales.

    Scale k is the exact 2^k x 2^k block mean of scale 0 (computed as repeated 2 x 2 means,
    what adaptive average pooling gives when the sizes are multiples).

    Args:
        targets: (..., C, h, w) numpy array or torch tensor (floating); h and w must be
            multiples of ``2 ** (num_scales - 1)``.
        num_scales: number of scales, finest first.

    Returns:
        ``num_scales`` arrays/tensors of the input's type: (..., C, h / 2^k, w / 2^k);
        element 0 is ``targets`` itself.
    """
    if num_scales < 1:
        raise ValueError(f"num_scales must be >= 1, got {num_scales}")
    shape = tuple(targets.shape)
    if len(shape) < 2:
        raise ValueError(f"targets must have shape (..., h, w), got {shape}")
    factor = 2 ** (num_scales - 1)
    if shape[-1] % factor or shape[-2] % factor:
        raise ValueError(
            f"targets height and width must be multiples of {factor} for {num_scales} scales, "
            f"got {shape[-2:]}"
        )
    pyramid = [targets]
    current = targets
    for _ in range(num_scales - 1):
        h, w = current.shape[-2] // 2, current.shape[-1] // 2
        lead = tuple(current.shape[:-2])
        # Sum row pairs, then column pairs, on contiguous views: ~30x faster in NumPy than a
        # mean over a (h, 2, w, 2) reshape, and the same operations work on torch tensors.
        rows = current.reshape(*lead, h, 2, 2 * w)
        pairs = (rows[..., 0, :] + rows[..., 1, :]).reshape(*lead, h, w, 2)
        current = (pairs[..., 0] + pairs[..., 1]) * 0.25
        pyramid.append(current)
    return pyramid
