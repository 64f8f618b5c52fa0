"""COCO person-keypoint training data: samples, one affine augmentation, targets and masks.

A ``CocoPoseDataset`` reads a COCO keypoint annotation file with pycocotools and an image
folder (no HDF5 step). With augmentation on (the default) it yields one sample per *main
person*, as the authors define it (spec section 2): a non-crowd person with >= 5 labelled
keypoints and segment area >= 32^2 whose bbox centre is not within 0.3 x max(bbox w, h) of
an earlier main person of the same image. Every other person with >= 1 keypoint is drawn
into the same sample's targets.

Each sample is one affine warp of the image (scale so the main person's bbox height is
``target_dist`` x crop, random scale, rotation, shift and flip; spec section 5), an optional
HSV jitter, and the targets of ``simplepose.training.targets`` computed on the warped joints.
Only the stride-4 targets and ignore mask are returned: the loss average-pools them to the
coarser scales itself (``losses.pool_targets``), which costs less than shipping five
tensors through the DataLoader.

Coordinates are pixel indices with pixel k's centre at k (the convention of the targets and
of ``simplepose.inference.preprocess``). Randomness comes from one NumPy generator per
sample seeded with ``(seed, epoch, index)``, so a sample is the same whichever worker
process draws it and after a resume.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Dataset

from simplepose import skeleton
from simplepose.config import AugmentConfig, TargetConfig
from simplepose.errors import InputError
from simplepose.training import targets as gt

_logger = logging.getLogger(__name__)

__all__ = ["CocoPoseDataset", "Sample", "augment_matrix", "load_coco", "select_main_people"]

#: Main-person rules (spec section 2).
MIN_MAIN_KEYPOINTS = 5
MIN_MAIN_AREA = 32 * 32
MAIN_CENTRE_RADIUS = 0.3

_FLIP_KEYPOINTS = np.asarray(skeleton.FLIP_KEYPOINTS, dtype=np.intp)


@dataclass(frozen=True)
class Sample:
    """One training sample: an image and, with augmentation, the main person to centre on.

    Attributes:
        image_id: COCO image id.
        file_name: the image's file name inside the image folder.
        image_hw: (H, W) of the image from the annotation file.
        centre: (x, y) of the main person's bbox centre in image pixels (whole-image samples:
            the image centre).
        height: the main person's bbox height in image pixels (whole-image samples: 0).
    """

    image_id: int
    file_name: str
    image_hw: tuple[int, int]
    centre: tuple[float, float]
    height: float


def load_coco(ann_file: str | os.PathLike[str]) -> Any:
    """Load a COCO annotation file with pycocotools, quietly, with clear errors.

    Raises:
        InputError: the file is missing or is not a COCO annotation file.
    """
    from pycocotools.coco import COCO

    path = Path(ann_file).expanduser()
    if not path.is_file():
        raise InputError(f"annotation file {path} does not exist")
    try:
        # pycocotools prints progress to stdout; keep library output on logging only.
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path} is not valid JSON: {error}") from error
    except (KeyError, TypeError, AssertionError) as error:
        raise InputError(f"{path} is not a COCO annotation file ({error!r})") from error
    if "images" not in coco.dataset:
        raise InputError(f"{path} is not a COCO annotation file (no 'images' list)")
    return coco


def select_main_people(annotations: Sequence[Mapping[str, Any]]) -> list[int]:
    """Indices of the main people of one image, in annotation order (spec section 2).

    A main person is non-crowd, has >= 5 labelled keypoints and area >= 32^2, and its bbox
    centre is not within 0.3 x max(w, h) (of the *earlier* main person's bbox) of an earlier
    main person's centre. (The released HDF5 builder reused a stale variable for that radius;
    this uses the earlier person's own size, as the rule intends.)

    Args:
        annotations: the image's COCO person annotations (``bbox`` [x, y, w, h] in pixels).
    """
    chosen: list[int] = []
    centres: list[tuple[float, float, float]] = []
    for i, ann in enumerate(annotations):
        if ann.get("iscrowd", 0) or ann.get("num_keypoints", 0) < MIN_MAIN_KEYPOINTS:
            continue
        if ann.get("area", 0.0) < MIN_MAIN_AREA:
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        cx, cy = x + w / 2, y + h / 2
        if any(
            math.hypot(cx - px, cy - py) < MAIN_CENTRE_RADIUS * size for px, py, size in centres
        ):
            continue
        chosen.append(i)
        centres.append((cx, cy, max(w, h)))
    return chosen


def augment_matrix(
    centre: tuple[float, float],
    person_height: float,
    crop_size: int,
    config: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.float64], bool]:
    """The one affine warp of an augmented sample and whether it flips.

    Centre -> origin, rotate, scale (person height -> ``target_dist`` x crop, times a random
    factor), flip, then to the crop centre ``(S / 2 - 0.5)`` plus an integer shift.

    Args:
        centre: (x, y) of the main person in image pixels.
        person_height: the main person's bbox height in image pixels (> 0).
        crop_size: side S of the square crop.
        config: augmentation ranges.
        rng: the sample's generator (draws in a fixed order: scale, rotation, shift, flip).

    Returns:
        ((2, 3) float64 matrix mapping image pixels to crop pixels, flipped).
    """
    scale = config.target_dist * crop_size / max(person_height, 1.0)
    # Draw every value unconditionally so the stream of draws has a fixed layout.
    scale_draw, use_scale = rng.uniform(config.scale_min, config.scale_max), rng.random()
    angle = rng.uniform(-config.max_rotation, config.max_rotation)
    shift = rng.integers(-config.max_shift, config.max_shift + 1, size=2)
    flip = bool(rng.random() < config.flip_prob)
    if use_scale < config.scale_prob:
        scale *= scale_draw
    theta = math.radians(angle)
    cos, sin = math.cos(theta) * scale, math.sin(theta) * scale
    linear = np.array([[cos, sin], [-sin, cos]])
    if flip:
        linear[0] *= -1.0  # mirror x about the crop centre
    target = np.array([crop_size / 2 - 0.5 + shift[0], crop_size / 2 - 0.5 + shift[1]])
    offset = target - linear @ np.asarray(centre, dtype=np.float64)
    return np.hstack([linear, offset[:, None]]), flip


def fit_matrix(image_hw: tuple[int, int], crop_size: int) -> npt.NDArray[np.float64]:
    """Whole-image warp: the longer side fills the crop, top-left aligned.

    Same map as ``simplepose.inference.preprocess.InputTransform.to_input`` (pixel centres
    at half-pixel offsets: ``x -> (x + 0.5) s - 0.5``).
    """
    s = crop_size / max(image_hw)
    return np.array([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5]])


def _jitter_colour(
    image: npt.NDArray[np.uint8], config: AugmentConfig, rng: np.random.Generator
) -> npt.NDArray[np.uint8]:
    """HSV shift: hue wraps around (OpenCV 0..179), saturation and value are clipped."""
    dh = rng.uniform(-config.hue, config.hue)
    ds = rng.uniform(*config.saturation)
    dv = rng.uniform(*config.value)
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = np.mod(hsv[..., 0] + dh, 180.0)
    hsv[..., 1] = np.clip(hsv[..., 1] + ds, 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] + dv, 0, 255)
    return np.asarray(cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR), dtype=np.uint8)


class CocoPoseDataset(Dataset):
    """COCO person keypoints as training samples (see the module docstring).

    Args:
        ann_file: COCO keypoint annotation json.
        image_dir: folder holding the images (``file_name`` of each image entry).
        crop_size: side of the square network input (multiple of 64).
        augment: augmentation; ``None`` = the released values, ``AugmentConfig.off()`` =
            whole-image samples without randomness.
        target_config: ground-truth encoding; ``None`` = the released values.
        seed: base of the per-sample random generators.
        image_ids: restrict to these COCO image ids (default: all).

    Items are dicts of tensors: ``image`` uint8 (3, S, S) BGR (divide by 255 for the
    network), ``targets`` float32 (50, S / 4, S / 4), ``mask`` float32 (1, S / 4, S / 4)
    (1 = use the loss, 0 = ignore) and ``index`` int64 (the sample index actually used:
    a sample whose image cannot be read is replaced by the next readable one, and logged).

    Attributes:
        samples: the samples, in order.
        missing_images: image ids whose file was absent (skipped at construction).

    Raises:
        InputError: the annotation file is missing or malformed, the image folder is
            missing, or no usable person keypoints are found.
    """

    def __init__(
        self,
        ann_file: str | os.PathLike[str],
        image_dir: str | os.PathLike[str],
        crop_size: int = 512,
        augment: AugmentConfig | None = None,
        target_config: TargetConfig | None = None,
        seed: int = 0,
        image_ids: Sequence[int] | None = None,
    ) -> None:
        if not isinstance(crop_size, int) or crop_size < 64 or crop_size % 64:
            raise ValueError(f"crop_size must be a positive multiple of 64, got {crop_size!r}")
        self.crop_size = crop_size
        self.augment = AugmentConfig() if augment is None else augment
        self.target_config = TargetConfig() if target_config is None else target_config
        self.seed = int(seed)
        self.epoch = 0
        self.image_dir = Path(image_dir).expanduser()
        if not self.image_dir.is_dir():
            raise InputError(f"image folder {self.image_dir} does not exist")
        coco = load_coco(ann_file)
        person_ids = coco.getCatIds(catNms=["person"]) or [1]
        ids = sorted(coco.getImgIds()) if image_ids is None else list(image_ids)
        self.annotations: dict[int, list[dict[str, Any]]] = {}
        self.samples: list[Sample] = []
        self.missing_images: list[int] = []
        with_keypoints = 0
        for image_id in ids:
            info = coco.imgs.get(image_id)
            if info is None:
                raise InputError(f"image id {image_id} is not in {ann_file}")
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=person_ids))
            drawn = [a for a in anns if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0)]
            if not drawn:
                continue
            with_keypoints += 1
            if not (self.image_dir / info["file_name"]).is_file():
                self.missing_images.append(image_id)
                continue
            hw = (int(info["height"]), int(info["width"]))
            self.annotations[image_id] = anns
            if not self.augment.enabled:
                centre = ((hw[1] - 1) / 2, (hw[0] - 1) / 2)
                self.samples.append(Sample(image_id, info["file_name"], hw, centre, 0.0))
                continue
            for i in select_main_people(anns):
                x, y, w, h = (float(v) for v in anns[i]["bbox"])
                self.samples.append(
                    Sample(image_id, info["file_name"], hw, (x + w / 2, y + h / 2), h)
                )
        if with_keypoints == 0:
            raise InputError(f"{ann_file} has no person annotations with keypoints")
        if self.missing_images:
            _logger.warning(
                "%d of %d images with keypoints are missing from %s and were skipped "
                "(first: id %d)",
                len(self.missing_images),
                with_keypoints,
                self.image_dir,
                self.missing_images[0],
            )
        if not self.samples:
            raise InputError(
                f"no training samples in {ann_file}: no readable image has a main person "
                f"(>= {MIN_MAIN_KEYPOINTS} keypoints, area >= {MIN_MAIN_AREA})"
            )

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draws ``__getitem__`` uses (call before iterating).

        With worker processes, set it before the DataLoader's iterator is created (workers
        copy the dataset when an epoch starts).
        """
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        """The generator of sample ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        n = len(self.samples)
        for attempt in range(n):
            current = (int(index) + attempt) % n
            sample = self.samples[current]
            decoded = cv2.imread(str(self.image_dir / sample.file_name), cv2.IMREAD_COLOR)
            if decoded is not None:
                image = np.asarray(decoded, dtype=np.uint8)
                break
            _logger.warning(
                "cannot read image %s (corrupt or unsupported); using the next sample",
                self.image_dir / sample.file_name,
            )
        else:
            raise InputError(f"none of the {n} training images in {self.image_dir} is readable")
        return self.make_sample(current, image)

    def make_sample(self, index: int, image: npt.NDArray[np.uint8]) -> dict[str, torch.Tensor]:
        """Build sample ``index`` from its decoded BGR uint8 image (H, W, 3)."""
        sample = self.samples[index]
        anns = self.annotations[sample.image_id]
        hw = image.shape[:2]
        if hw != sample.image_hw:
            # Trust the pixels: rescale the annotation geometry when the file's size differs.
            _logger.debug(
                "image %s is %s, annotation says %s", sample.file_name, hw, sample.image_hw
            )
        size = self.crop_size
        rng = self.rng(index)
        if self.augment.enabled:
            matrix, flip = augment_matrix(sample.centre, sample.height, size, self.augment, rng)
        else:
            matrix, flip = fit_matrix(sample.image_hw, size), False
        if hw != sample.image_hw:
            ratio = np.diag([sample.image_hw[1] / hw[1], sample.image_hw[0] / hw[0], 1.0])
            pixel_matrix = matrix @ ratio
        else:
            pixel_matrix = matrix

        crop: npt.NDArray[np.uint8] = np.asarray(
            cv2.warpAffine(
                image,
                pixel_matrix,
                (size, size),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=self.augment.border,
            ),
            dtype=np.uint8,
        )
        if self.augment.enabled and rng.random() < self.augment.color_prob:
            crop = _jitter_colour(crop, self.augment, rng)

        keypoints = np.array(
            [
                a["keypoints"]
                for a in anns
                if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd")
            ],
            dtype=np.float64,
        ).reshape(-1, skeleton.NUM_COCO_KEYPOINTS, 3)
        joints = gt.coco_to_joints18(keypoints).astype(np.float64)
        xy = joints[..., :2] @ matrix[:, :2].T + matrix[:, 2]
        joints[..., :2] = xy
        if flip:
            joints = joints[:, _FLIP_KEYPOINTS]

        ignore_image, person_image = gt.image_masks(anns, sample.image_hw)
        # Masks are warped at the annotation's resolution with the same map (border:
        # ignore -> 255 = use the loss, person -> 0 = background).
        grid = size // self.target_config.stride
        ignore = cv2.warpAffine(
            ignore_image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=255
        )
        person = cv2.warpAffine(
            person_image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0
        )
        heatmaps = gt.encode(joints.astype(np.float32), (size, size), self.target_config, person)
        mask = gt.mask_to_grid(ignore, (grid, grid))
        return {
            "image": torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))),
            "targets": torch.from_numpy(heatmaps),
            "mask": torch.from_numpy(mask[None]),
            "index": torch.tensor(index, dtype=torch.int64),
        }
