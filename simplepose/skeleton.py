"""The skeleton: keypoints, body parts, channel layout, flip permutations, COCO mapping.

This module is the single source of truth for every index the project uses. The order of
keypoints and body parts is the one of the authors' released code (see
``reference/simple-pose-spec.md`` section 1); the body-part order is also the order in which
the greedy grouping processes parts, so it must not be changed.

Channel layout of the network output (``NUM_CHANNELS`` = 50)::

    0 .. 29   body-part maps, in ``PARTS`` order
    30 .. 47  keypoint maps, in ``KEYPOINT_NAMES`` order (18 network keypoints)
    48        person (foreground) mask
    49        pixelwise max of the 18 keypoint maps
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

#: The 18 network keypoints (COCO 17 plus the neck), in the authors' (CMU/OpenPose) order.
KEYPOINT_NAMES: Final[tuple[str, ...]] = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)
NUM_KEYPOINTS: Final = 18
NECK: Final = 1

#: The 17 COCO keypoints, in COCO order.
COCO_KEYPOINT_NAMES: Final[tuple[str, ...]] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
NUM_COCO_KEYPOINTS: Final = 17

#: The 30 body parts (the authors' redundant skeleton) as (from, to) network keypoint indices.
#: The order is the grouping order: the greedy assembly processes parts in exactly this order.
PARTS: Final[tuple[tuple[int, int], ...]] = (
    (1, 0),  # 0 neck-nose
    (1, 14),  # 1 neck-Reye
    (1, 15),  # 2 neck-Leye
    (1, 16),  # 3 neck-Rear
    (1, 17),  # 4 neck-Lear
    (0, 14),  # 5 nose-Reye
    (0, 15),  # 6 nose-Leye
    (14, 16),  # 7 Reye-Rear
    (15, 17),  # 8 Leye-Lear
    (1, 2),  # 9 neck-Rsho
    (2, 3),  # 10 Rsho-Relb
    (3, 4),  # 11 Relb-Rwri
    (1, 5),  # 12 neck-Lsho
    (5, 6),  # 13 Lsho-Lelb
    (6, 7),  # 14 Lelb-Lwri
    (1, 8),  # 15 neck-Rhip
    (8, 9),  # 16 Rhip-Rkne
    (9, 10),  # 17 Rkne-Rank
    (1, 11),  # 18 neck-Lhip
    (11, 12),  # 19 Lhip-Lkne
    (12, 13),  # 20 Lkne-Lank
    (0, 2),  # 21 nose-Rsho
    (0, 5),  # 22 nose-Lsho
    (2, 8),  # 23 Rsho-Rhip
    (8, 12),  # 24 Rhip-Lkne
    (5, 11),  # 25 Lsho-Lhip
    (11, 9),  # 26 Lhip-Rkne
    (16, 2),  # 27 Rear-Rsho
    (17, 5),  # 28 Lear-Lsho
    (8, 11),  # 29 Rhip-Lhip
)
NUM_PARTS: Final = 30

# Channel layout.
PART_CHANNELS: Final = slice(0, NUM_PARTS)
KEYPOINT_CHANNEL_OFFSET: Final = NUM_PARTS  # channel of keypoint k is 30 + k
KEYPOINT_CHANNELS: Final = slice(NUM_PARTS, NUM_PARTS + NUM_KEYPOINTS)
PERSON_MASK_CHANNEL: Final = 48
KEYPOINT_MAX_CHANNEL: Final = 49
NUM_CHANNELS: Final = 50

#: Left/right swap of the 18 keypoints: index i of the flipped image holds FLIP_KEYPOINTS[i].
FLIP_KEYPOINTS: Final[tuple[int, ...]] = (
    0,
    1,
    5,
    6,
    7,
    2,
    3,
    4,
    11,
    12,
    13,
    8,
    9,
    10,
    15,
    14,
    17,
    16,
)

#: Left/right swap of the 30 body parts (part 29, hip-hip, maps to itself).
FLIP_PARTS: Final[tuple[int, ...]] = (
    0, 2, 1, 4, 3, 6, 5, 8, 7, 12, 13, 14, 9, 10, 11,
    18, 19, 20, 15, 16, 17, 22, 21, 25, 26, 23, 24, 28, 27, 29,
)  # fmt: skip

#: Left/right swap of all 50 output channels: ``flipped_back = mirror(heatmaps)[FLIP_CHANNELS]``.
FLIP_CHANNELS: Final[tuple[int, ...]] = (
    FLIP_PARTS
    + tuple(NUM_PARTS + k for k in FLIP_KEYPOINTS)
    + (PERSON_MASK_CHANNEL, KEYPOINT_MAX_CHANNEL)
)

#: COCO index of each network keypoint (-1 for the neck, which COCO does not have).
NETWORK_TO_COCO: Final[tuple[int, ...]] = (
    0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3,
)  # fmt: skip

#: Network index of each COCO keypoint (the inverse of ``NETWORK_TO_COCO``).
COCO_TO_NETWORK: Final[tuple[int, ...]] = tuple(
    NETWORK_TO_COCO.index(c) for c in range(NUM_COCO_KEYPOINTS)
)

#: COCO indices of the shoulders, whose midpoint defines the neck.
COCO_LEFT_SHOULDER: Final = 5
COCO_RIGHT_SHOULDER: Final = 6

#: The COCO 19-link skeleton (0-based COCO indices), for drawing in COCO order.
COCO_SKELETON: Final[tuple[tuple[int, int], ...]] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip

_LEFT_BGR: Final = (0, 128, 255)  # orange
_RIGHT_BGR: Final = (255, 128, 0)  # blue
_CENTRE_BGR: Final = (0, 200, 0)  # green


def _side_colour(*coco_indices: int) -> tuple[int, int, int]:
    # COCO puts left keypoints at odd indices and right ones at even indices (nose = 0).
    sides = {("centre" if c == 0 else "left" if c % 2 else "right") for c in coco_indices}
    if sides == {"left"}:
        return _LEFT_BGR
    if sides == {"right"}:
        return _RIGHT_BGR
    return _CENTRE_BGR


#: BGR colour of each COCO_SKELETON link: left side orange, right side blue, across green.
LIMB_COLORS: Final[tuple[tuple[int, int, int], ...]] = tuple(
    _side_colour(a, b) for a, b in COCO_SKELETON
)

#: BGR colour of each COCO keypoint, same convention.
KEYPOINT_COLORS: Final[tuple[tuple[int, int, int], ...]] = tuple(
    _side_colour(c) for c in range(NUM_COCO_KEYPOINTS)
)


def network_to_coco(
    keypoints18: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]:
    """Drop the neck and reorder network keypoints into COCO order.

    Args:
        keypoints18: (..., 18, C) per-keypoint rows in network order (any trailing width C,
            e.g. ``[x, y, score]``).

    Returns:
        (..., 17, C) rows in COCO order.
    """
    keypoints18 = np.asarray(keypoints18)
    if keypoints18.ndim < 2 or keypoints18.shape[-2] != NUM_KEYPOINTS:
        raise ValueError(f"keypoints18 must have shape (..., 18, C), got {keypoints18.shape}")
    return keypoints18[..., list(COCO_TO_NETWORK), :]


def coco_to_network(
    keypoints17: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]:
    """Reorder COCO keypoints into network order and add the neck.

    The neck is the midpoint of the two shoulders when both are labelled (last column
    ``v > 0``, COCO convention) and its ``v`` is the smaller of the two shoulder values;
    otherwise the neck row is all zeros (unlabelled).

    Args:
        keypoints17: (..., 17, 3) ``[x, y, v]`` rows in COCO order, COCO visibility
            convention (0 not labelled, 1 labelled but occluded, 2 visible).

    Returns:
        (..., 18, 3) rows in network order, same dtype, same visibility convention.
    """
    keypoints17 = np.asarray(keypoints17)
    if keypoints17.ndim < 2 or keypoints17.shape[-2:] != (NUM_COCO_KEYPOINTS, 3):
        raise ValueError(f"keypoints17 must have shape (..., 17, 3), got {keypoints17.shape}")
    order = [max(c, 0) for c in NETWORK_TO_COCO]  # the neck row is overwritten below
    out = keypoints17[..., order, :].copy()
    left = keypoints17[..., COCO_LEFT_SHOULDER, :]
    right = keypoints17[..., COCO_RIGHT_SHOULDER, :]
    both = (left[..., 2] > 0) & (right[..., 2] > 0)
    neck = np.zeros_like(left)
    neck[..., :2] = (left[..., :2] + right[..., :2]) / 2
    neck[..., 2] = np.minimum(left[..., 2], right[..., 2])
    out[..., NECK, :] = np.where(both[..., None], neck, 0)
    return out


def _check_tables() -> None:
    # Import-time sanity of the hand-written tables (cheap, and catches edit mistakes early).
    assert len(KEYPOINT_NAMES) == NUM_KEYPOINTS
    assert len(PARTS) == NUM_PARTS
    assert sorted(FLIP_KEYPOINTS) == list(range(NUM_KEYPOINTS))
    assert sorted(FLIP_PARTS) == list(range(NUM_PARTS))
    assert len(FLIP_CHANNELS) == NUM_CHANNELS
    assert sorted(c for c in NETWORK_TO_COCO if c >= 0) == list(range(NUM_COCO_KEYPOINTS))


_check_tables()
