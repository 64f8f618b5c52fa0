from __future__ import annotations

import numpy as np
import pytest

from simplepose import skeleton


def _swap_side(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    return name


@pytest.mark.parametrize(
    "perm", [skeleton.FLIP_KEYPOINTS, skeleton.FLIP_PARTS, skeleton.FLIP_CHANNELS]
)
def test_flip_permutations_are_involutions(perm):
    perm = np.asarray(perm)
    np.testing.assert_array_equal(perm[perm], np.arange(len(perm)))


def test_keypoint_flip_swaps_exactly_left_and_right():
    for i, j in enumerate(skeleton.FLIP_KEYPOINTS):
        assert skeleton.KEYPOINT_NAMES[j] == _swap_side(skeleton.KEYPOINT_NAMES[i])


def test_part_flip_maps_each_part_to_its_mirror():
    names = skeleton.KEYPOINT_NAMES
    for i, j in enumerate(skeleton.FLIP_PARTS):
        a, b = skeleton.PARTS[i]
        mirrored = {_swap_side(names[a]), _swap_side(names[b])}
        assert {names[k] for k in skeleton.PARTS[j]} == mirrored, (i, j)


def test_channel_flip_combines_parts_keypoints_and_fixed_channels():
    perm = skeleton.FLIP_CHANNELS
    assert perm[:30] == skeleton.FLIP_PARTS
    assert [c - 30 for c in perm[30:48]] == list(skeleton.FLIP_KEYPOINTS)
    assert perm[48:] == (48, 49)


def test_names_agree_between_network_and_coco_orders():
    for k, c in enumerate(skeleton.NETWORK_TO_COCO):
        if c >= 0:
            assert skeleton.COCO_KEYPOINT_NAMES[c] == skeleton.KEYPOINT_NAMES[k]
    assert skeleton.NETWORK_TO_COCO[skeleton.NECK] == -1


def test_parts_are_the_30_authors_pairs_in_grouping_order():
    assert len(set(skeleton.PARTS)) == 30
    assert skeleton.PARTS[0] == (1, 0) and skeleton.PARTS[29] == (8, 11)
    assert skeleton.PARTS[9:12] == ((1, 2), (2, 3), (3, 4))


def test_coco_round_trip_and_neck_rule():
    rng = np.random.default_rng(0)
    coco = np.concatenate(
        [rng.uniform(0, 500, (6, 17, 2)), rng.integers(0, 3, (6, 17, 1))], axis=2
    ).astype(np.float32)
    coco[0, [5, 6], 2] = (2, 1)  # both shoulders labelled: neck = midpoint, v = min
    coco[1, 5, 2] = 0  # left shoulder missing: no neck
    coco[1, 6, 2] = 2
    net = skeleton.coco_to_network(coco)
    assert net.shape == (6, 18, 3)
    np.testing.assert_array_equal(skeleton.network_to_coco(net), coco)
    np.testing.assert_allclose(net[0, 1, :2], (coco[0, 5, :2] + coco[0, 6, :2]) / 2)
    assert net[0, 1, 2] == 1
    np.testing.assert_array_equal(net[1, 1], 0)


def test_mapping_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3\)"):
        skeleton.coco_to_network(np.zeros((18, 3)))
    with pytest.raises(ValueError, match=r"\(\.\.\., 18, C\)"):
        skeleton.network_to_coco(np.zeros((17, 3)))


def test_colours_cover_every_link_and_keypoint():
    assert len(skeleton.LIMB_COLORS) == len(skeleton.COCO_SKELETON)
    assert len(skeleton.KEYPOINT_COLORS) == 17
    # a left link and its right mirror get different colours
    left = skeleton.COCO_SKELETON.index((5, 7))
    right = skeleton.COCO_SKELETON.index((6, 8))
    assert skeleton.LIMB_COLORS[left] != skeleton.LIMB_COLORS[right]
