"""Ground-truth heatmaps: parity with the authors' released targets, hand-computed values,
masks from real COCO annotations (crowd included) and robustness."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from simplepose import skeleton
from simplepose.config import TargetConfig
from simplepose.training import targets

GRID = (128, 128)
INPUT = (512, 512)
NOT_KP_MAX = [*range(48), skeleton.KEYPOINT_MAX_CHANNEL]  # every channel but the person mask


@pytest.fixture(scope="module")
def golden_targets(golden_dir: Path) -> tuple[dict[str, np.ndarray], list[dict]]:
    with np.load(golden_dir / "targets_released.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads((golden_dir / "targets_released_meta.json").read_text())
    return arrays, meta["cases"]


@pytest.fixture(scope="module")
def coco(coco_people: tuple[Path, Path]) -> dict:
    return json.loads(coco_people[0].read_text())


def _anns(coco: dict, image_id: int) -> list[dict]:
    return [a for a in coco["annotations"] if a["image_id"] == image_id]


def _image(coco: dict, image_id: int) -> dict:
    return next(i for i in coco["images"] if i["id"] == image_id)


def _joints(people: list[list[tuple[float, float, float]]]) -> np.ndarray:
    """(P, 18, 3) with every keypoint unlabelled except the given (k, x, y) triples."""
    joints = np.zeros((len(people), 18, 3), np.float32)
    joints[..., 2] = 2
    for p, person in enumerate(people):
        for k, x, y in person:
            joints[p, int(k)] = (x, y, 1)
    return joints


def _centre(i: int) -> float:
    return 4 * i + 1.5


# ---------------------------------------------------------------------------------------
# Parity with the authors' Heatmapper
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [0, 1, 2, 3])
def test_encode_matches_released_targets(golden_targets, case: int) -> None:
    arrays, _ = golden_targets
    joints = arrays[f"case{case}_joints18"]
    expected = arrays[f"case{case}_heatmaps"]
    heatmaps = targets.encode(joints, INPUT)
    assert heatmaps.shape == (50, *GRID)
    assert heatmaps.dtype == np.float32
    np.testing.assert_allclose(heatmaps[NOT_KP_MAX], expected[NOT_KP_MAX], rtol=0, atol=1e-5)
    # No mask given: channel 48 is zero, as in the reference.
    assert not heatmaps[skeleton.PERSON_MASK_CHANNEL].any()
    # The floor is really there (guards against a vacuous comparison of near-empty maps).
    assert np.count_nonzero(np.isclose(expected[:30], 0.01)) > 0
    assert expected[30:48].max() > 0.99


@pytest.mark.parametrize("case", [0, 1, 2, 3])
def test_coco_to_joints18_reproduces_released_joints(golden_targets, coco, case: int) -> None:
    arrays, cases = golden_targets
    meta = cases[case]
    # The reference draws every person of the image that has at least one keypoint, in
    # annotation order (the crowd annotation has none).
    anns = [a for a in _anns(coco, meta["image_id"]) if a["num_keypoints"] > 0]
    assert len(anns) == meta["people"]
    joints = targets.coco_to_joints18(np.array([a["keypoints"] for a in anns]))
    # The reference converts first, then scales the image (float32 multiply).
    joints[..., :2] *= np.float32(meta["scale"])
    np.testing.assert_array_equal(joints, arrays[f"case{case}_joints18"])


def test_coco_to_joints18_flags_and_neck() -> None:
    kps = np.zeros((3, 17, 3))
    kps[:, :, :2] = np.arange(34).reshape(17, 2)
    kps[0, :, 2] = 2  # all visible
    kps[1, :, 2] = 1  # all occluded
    kps[1, skeleton.COCO_RIGHT_SHOULDER, 2] = 2
    kps[2, :, 2] = 0  # none labelled ...
    kps[2, skeleton.COCO_LEFT_SHOULDER, 2] = 2  # ... but one shoulder: still no neck
    joints = targets.coco_to_joints18(kps.reshape(3, 51))
    assert joints.shape == (3, 18, 3)
    assert joints.dtype == np.float32
    np.testing.assert_array_equal(joints[0, :, 2], 1)
    # Occluded -> 0; the neck takes the smaller COCO v of the shoulders (1 -> flag 0).
    assert joints[1, skeleton.NECK, 2] == 0
    assert joints[1, 2, 2] == 1  # right shoulder visible
    np.testing.assert_array_equal(joints[2, skeleton.NECK], (0, 0, 2))
    assert joints[2, 5, 2] == 1  # left shoulder
    # Neck position: shoulder midpoint (COCO 5 is (10, 11), COCO 6 is (12, 13)).
    np.testing.assert_array_equal(joints[0, skeleton.NECK, :2], (11, 12))
    # Nose stays first; COCO left eye (1) becomes network 15.
    np.testing.assert_array_equal(joints[0, 15, :2], kps[0, 1, :2])


def test_coco_to_joints18_nan_is_unlabelled() -> None:
    kps = np.full((1, 17, 3), 2.0)
    kps[0, :, :2] = 100.0
    kps[0, skeleton.COCO_LEFT_SHOULDER, 0] = np.nan
    joints = targets.coco_to_joints18(kps)
    assert joints[0, 5, 2] == 2  # network left shoulder
    assert joints[0, skeleton.NECK, 2] == 2
    assert np.isfinite(joints[0, skeleton.NECK, :2]).all()


@pytest.mark.parametrize("shape", [(2, 50), (2, 17, 2), (17, 3)])
def test_coco_to_joints18_rejects_bad_shapes(shape) -> None:
    with pytest.raises(ValueError, match="keypoints17"):
        targets.coco_to_joints18(np.zeros(shape))


# ---------------------------------------------------------------------------------------
# Hand-computed values
# ---------------------------------------------------------------------------------------


def test_keypoint_gaussian_values_and_window() -> None:
    x, y = 201.0, 97.0  # round(50.25) = 50, round(24.25) = 24
    heatmaps = targets.encode(_joints([[(0, x, y)]]), INPUT)
    nose = heatmaps[30]

    def gauss(i: int, j: int) -> float:
        return math.exp(-((_centre(i) - x) ** 2 + (_centre(j) - y) ** 2) / (2 * 81))

    for j, i in [(24, 50), (25, 50), (24, 43), (17, 57), (31, 43)]:
        assert nose[j, i] == pytest.approx(gauss(i, j), abs=1e-6)
    # +-7 cells around the rounded centre, nothing outside (no thresholding inside).
    rows, cols = np.nonzero(nose)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (17, 31, 43, 57)
    # Channel 49 is the keypoint max, not its inverse; other keypoints are empty.
    np.testing.assert_array_equal(heatmaps[49], nose)
    assert not heatmaps[31:48].any()
    assert not heatmaps[:30].any()  # a single keypoint draws no part


def test_keypoint_window_rounds_ties_to_even() -> None:
    # x / 4 = 2.5 and y / 4 = 10.5 round (Python round) to 2 and 10, not 3 and 11.
    nose = targets.encode(_joints([[(0, 10.0, 42.0)]]), INPUT)[30]
    rows, cols = np.nonzero(nose)
    assert (cols.min(), cols.max()) == (0, 9)  # start clamped at 0
    assert (rows.min(), rows.max()) == (3, 17)


def test_keypoint_overlap_is_max() -> None:
    a = targets.encode(_joints([[(3, 100.0, 100.0)]]), INPUT)[33]
    b = targets.encode(_joints([[(3, 110.0, 104.0)]]), INPUT)[33]
    both = targets.encode(_joints([[(3, 100.0, 100.0)], [(3, 110.0, 104.0)]]), INPUT)[33]
    np.testing.assert_array_equal(both, np.maximum(a, b))


def test_part_band_box_and_averaging() -> None:
    # Part 11 is right elbow (3) - right wrist (4); two persons with horizontal forearms.
    first = [(3, 100.0, 100.0), (4, 200.0, 100.0)]
    second = [(3, 100.0, 104.0), (4, 200.0, 104.0)]
    heatmaps = targets.encode(_joints([first, second]), INPUT)
    part = heatmaps[11]

    def band(j: int, y: float) -> float:
        return math.exp(-((_centre(j) - y) ** 2) / (2 * 49))

    # Box of the first: rows round(96/4)=24 .. round(104/4)=26, columns 24 .. round(204/4)=51.
    # Second: rows 25 .. 27 (round(108/4) = 27). Column 30 is inside both in x.
    assert part[24, 30] == pytest.approx(band(24, 100.0), abs=1e-6)
    assert part[25, 30] == pytest.approx((band(25, 100.0) + band(25, 104.0)) / 2, abs=1e-6)
    assert part[26, 30] == pytest.approx((band(26, 100.0) + band(26, 104.0)) / 2, abs=1e-6)
    assert part[27, 30] == pytest.approx(band(27, 104.0), abs=1e-6)
    rows, cols = np.nonzero(part)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (24, 27, 24, 51)
    # Only part 11 is drawn; keypoints 3 and 4 are drawn.
    assert np.count_nonzero(heatmaps[:30].reshape(30, -1).any(axis=1)) == 1
    assert heatmaps[33].max() > 0.9
    assert heatmaps[34].max() > 0.9


def test_part_floor_fills_the_box() -> None:
    # A diagonal neck (1) - right hip (8) part: box corners are far from the line.
    part = targets.encode(_joints([[(1, 100.0, 100.0), (8, 300.0, 300.0)]]), INPUT)[15]
    box = part[24:77, 24:77]  # rows/cols round(96/4) .. round(304/4)
    assert (box > 0).all()
    assert box[0, -1] == pytest.approx(0.01)  # corner: floor
    assert np.isclose(box, 0.01).sum() > box.size // 3
    assert not part[:24].any()
    assert not part[77:].any()
    # The band never drops below the threshold except to the floor.
    assert not ((box > 0.01 + 1e-7) & (box <= 0.015)).any()


def test_person_mask_channel_is_eroded() -> None:
    grid_mask = np.zeros(GRID, np.float32)
    grid_mask[10:20, 30:40] = 1
    heatmaps = targets.encode(np.zeros((0, 18, 3)), INPUT, person_mask=grid_mask)
    expected = np.zeros(GRID, np.float32)
    expected[11:19, 31:39] = 1
    np.testing.assert_array_equal(heatmaps[48], expected)
    # The same mask at input resolution (uint8, 0/255) gives the same channel.
    full = cv2.resize(grid_mask, INPUT[::-1], interpolation=cv2.INTER_NEAREST)
    full = (full * 255).astype(np.uint8)
    heatmaps_full = targets.encode(np.zeros((0, 18, 3)), INPUT, person_mask=full)
    np.testing.assert_array_equal(heatmaps_full[48], expected)


def test_config_changes_constants() -> None:
    joints = _joints([[(0, 201.0, 97.0)]])
    wide = targets.encode(joints, INPUT, TargetConfig(sigma=18.0, keypoint_threshold=0.015))
    assert TargetConfig(sigma=18.0).keypoint_radius == 14
    rows, _ = np.nonzero(wide[30])
    assert rows.max() - rows.min() == 28
    coarse = targets.encode(joints, (512, 256), TargetConfig(stride=8))
    assert coarse.shape == (50, 64, 32)
    assert np.argmax(coarse[30].max(axis=0)) == round(201.0 / 8)


# ---------------------------------------------------------------------------------------
# Robustness
# ---------------------------------------------------------------------------------------


def test_empty_person_list() -> None:
    for empty in (np.zeros((0, 18, 3), np.float32), []):
        heatmaps = targets.encode(empty, INPUT)
        assert heatmaps.shape == (50, *GRID)
        assert not heatmaps.any()


def test_outside_nan_and_infinite_are_safe() -> None:
    people = [
        [(0, -1000.0, 50.0), (1, 5000.0, 5000.0), (2, -20.0, -20.0), (3, 530.0, 100.0)],
        [(0, np.nan, 10.0), (1, 10.0, np.nan), (14, 200.0, 200.0), (2, np.inf, 0.0)],
        [(0, 300.0, 300.0), (5, 1e30, -1e30), (6, 100.0, 100.0)],
    ]
    heatmaps = targets.encode(_joints(people), INPUT)
    assert np.isfinite(heatmaps).all()
    assert heatmaps.min() >= 0
    assert heatmaps.max() <= 1
    # Noses: far outside (person 1) and NaN (person 2) draw nothing; person 3's is drawn alone.
    alone = targets.encode(_joints([[(0, 300.0, 300.0)]]), INPUT)[30]
    np.testing.assert_array_equal(heatmaps[30], alone)
    # A part whose endpoints are both far outside still covers the grid with its box (the
    # released behaviour): neck (5000, 5000) - nose (-1000, 50) spans every column, and the
    # rows from round((50 - 4) / 4) = round(11.5) = 12 (ties to even) down.
    assert heatmaps[0][12:].min() >= 0.01
    assert not heatmaps[0][:12].any()
    # Parts with a NaN / infinite endpoint are not drawn: Reye (14) - nose/neck, Rsho (2).
    assert not heatmaps[5].any()
    assert not heatmaps[1].any()


def test_zero_length_part_is_skipped() -> None:
    heatmaps = targets.encode(_joints([[(1, 300.0, 300.0), (0, 300.0, 300.0)]]), INPUT)
    assert not heatmaps[:30].any()
    assert heatmaps[30].max() > 0.97
    assert heatmaps[31].max() > 0.97


def test_outside_keypoints_draw_only_inside_cells() -> None:
    # Near the edge: the window is cut, the inside part still matches a full drawing.
    edge = targets.encode(_joints([[(0, -20.0, 60.0)]]), INPUT)[30]
    assert edge[:, 0].max() > 0
    centre = -20.0
    expected = math.exp(-((_centre(0) - centre) ** 2 + (_centre(15) - 60.0) ** 2) / 162)
    assert edge[15, 0] == pytest.approx(expected, abs=1e-6)
    far = targets.encode(_joints([[(0, -40.0, 60.0)]]), INPUT)[30]  # round(-10) + 7 < 0
    assert not far.any()


def test_nan_person_and_labelled_person_together() -> None:
    people = [[(0, np.nan, np.nan), (1, 50.0, np.nan)], [(0, 300.0, 300.0), (1, 300.0, 300.0)]]
    heatmaps = targets.encode(_joints(people), INPUT)
    assert np.isfinite(heatmaps).all()
    assert heatmaps[30].max() == pytest.approx(
        math.exp(-((_centre(75) - 300) ** 2 + (_centre(75) - 300) ** 2) / 162), abs=1e-6
    )
    assert not heatmaps[0].any()  # neck-nose of length 0 skipped


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.one_of(st.floats(-200, 700), st.just(math.nan)),
                st.one_of(st.floats(-200, 700), st.just(math.nan)),
                st.sampled_from([0.0, 1.0, 2.0]),
            ),
            min_size=18,
            max_size=18,
        ),
        max_size=6,
    )
)
def test_encode_is_always_finite_and_in_range(people) -> None:
    joints = np.array(people, np.float32).reshape(-1, 18, 3)
    heatmaps = targets.encode(joints, (256, 128))
    assert heatmaps.shape == (50, 64, 32)
    assert np.isfinite(heatmaps).all()
    assert heatmaps.min() >= 0
    assert heatmaps.max() <= 1
    np.testing.assert_array_equal(heatmaps[49], heatmaps[30:48].max(axis=0))
    # Every in-box part value is a Gaussian above the threshold or a mean that includes floors.
    assert not ((heatmaps[:30] > 0) & (heatmaps[:30] < 0.01 - 1e-7)).any()


@pytest.mark.parametrize(
    ("joints", "input_hw", "match"),
    [
        (np.zeros((2, 17, 3)), INPUT, "joints18"),
        (np.zeros((1, 18, 3)), (510, 512), "multiples"),
        (np.zeros((1, 18, 3)), (512,), "input_hw"),
    ],
)
def test_encode_rejects_bad_input(joints, input_hw, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        targets.encode(joints, input_hw)


# ---------------------------------------------------------------------------------------
# Masks from real COCO annotations
# ---------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
@pytest.mark.parametrize("image_id", [217285, 174375])
def test_ignore_mask_on_crowd_image(coco, image_id: int) -> None:
    from pycocotools import mask as mask_utils

    anns = _anns(coco, image_id)
    image = _image(coco, image_id)
    hw = (image["height"], image["width"])
    crowd_ann = next(a for a in anns if a["iscrowd"])
    # Independent decode of the crowd RLE.
    seg = crowd_ann["segmentation"]
    crowd = mask_utils.decode(mask_utils.frPyObjects(seg, *seg["size"])).astype(bool)
    # (COCO's stored areas of crowd RLEs are only approximate: within 10 % here.)
    assert crowd.sum() == pytest.approx(crowd_ann["area"], rel=0.1)

    ignore_image = targets.ignore_mask_image(anns, hw)
    assert ignore_image.shape == hw
    assert ignore_image.dtype == np.uint8
    assert set(np.unique(ignore_image)) <= {0, 255}
    people = np.zeros(hw, bool)
    no_kp = np.zeros(hw, bool)
    for ann in anns:
        if not ann["iscrowd"]:
            people |= targets.annotation_mask(ann, hw)
            if ann["num_keypoints"] == 0:
                no_kp |= targets.annotation_mask(ann, hw)
    assert (ignore_image[crowd & ~people] == 0).all()
    assert (ignore_image[no_kp] == 0).all()
    assert (ignore_image[~crowd & ~no_kp] == 255).all()
    # Keypointed people inside the crowd box stay usable.
    keypointed = people & ~no_kp
    assert (ignore_image[keypointed] == 255).all()

    grid = targets.ignore_mask(anns, hw)
    assert grid.shape == (hw[0] // 4, hw[1] // 4)
    assert grid.dtype == np.float32
    assert np.isfinite(grid).all()
    assert grid.min() >= 0
    assert grid.max() <= 1
    # Cells whose whole neighbourhood is ignored are 0, cells whose whole neighbourhood is
    # used are 1; boundary cells are fractional.
    kernel = np.ones((9, 9), np.uint8)
    all_ignored = cv2.dilate(ignore_image, kernel) == 0
    all_used = cv2.erode(ignore_image, kernel) == 255
    rows = np.clip(np.round((np.arange(grid.shape[0]) + 0.5) * hw[0] / grid.shape[0]), 0, hw[0] - 1)
    cols = np.clip(np.round((np.arange(grid.shape[1]) + 0.5) * hw[1] / grid.shape[1]), 0, hw[1] - 1)
    rr, cc = np.meshgrid(rows.astype(int), cols.astype(int), indexing="ij")
    assert all_ignored[rr, cc].sum() > 100
    assert (grid[all_ignored[rr, cc]] == 0).all()
    assert (grid[all_used[rr, cc]] == 1).all()
    assert ((grid > 0) & (grid < 1)).any()


def test_person_mask_image_is_union_including_crowd(coco) -> None:
    anns = _anns(coco, 217285)
    image = _image(coco, 217285)
    hw = (image["height"], image["width"])
    union = np.zeros(hw, bool)
    for ann in anns:
        union |= targets.annotation_mask(ann, hw)
    person = targets.person_mask_image(anns, hw)
    np.testing.assert_array_equal(person == 255, union)
    ignore_both, person_both = targets.image_masks(anns, hw)
    np.testing.assert_array_equal(person_both, person)
    np.testing.assert_array_equal(ignore_both, targets.ignore_mask_image(anns, hw))
    crowd_ann = next(a for a in anns if a["iscrowd"])
    assert (person[targets.annotation_mask(crowd_ann, hw)] == 255).all()
    # Polygon persons: the decoded area matches COCO's stored area (within rasterisation).
    polygon = next(a for a in anns if not a["iscrowd"])
    assert targets.annotation_mask(polygon, hw).sum() == pytest.approx(polygon["area"], rel=0.05)
    # As channel 48 after resizing to a 512-wide input and the grid: finite, in [0, 1].
    grid_mask = targets.mask_to_grid(person, (hw[0] // 4, hw[1] // 4))
    assert np.isfinite(grid_mask).all()
    assert 0 < grid_mask.mean() < 1


def test_masks_of_image_without_people() -> None:
    hw = (40, 60)
    np.testing.assert_array_equal(targets.ignore_mask_image([], hw), 255)
    np.testing.assert_array_equal(targets.person_mask_image([], hw), 0)
    np.testing.assert_array_equal(targets.ignore_mask([], hw), 1)


def test_rle_size_mismatch_is_an_error(coco) -> None:
    crowd_ann = next(a for a in coco["annotations"] if a["iscrowd"])
    with pytest.raises(ValueError, match="RLE size"):
        targets.annotation_mask(crowd_ann, (10, 10))


# ---------------------------------------------------------------------------------------
# Scale pyramid
# ---------------------------------------------------------------------------------------


def test_multiscale_numpy_and_torch() -> None:
    rng = np.random.default_rng(0)
    base = rng.random((50, 128, 96), dtype=np.float32)
    pyramid = targets.multiscale(base)
    assert [p.shape for p in pyramid] == [(50, 128 >> k, 96 >> k) for k in range(5)]
    assert all(p.dtype == np.float32 for p in pyramid)
    for k, level in enumerate(pyramid):
        f = 2**k
        block = base.reshape(50, 128 // f, f, 96 // f, f).mean(axis=(2, 4), dtype=np.float64)
        np.testing.assert_allclose(level, block, atol=1e-6)
    tensor_pyramid = targets.multiscale(torch.from_numpy(base)[None])
    for level, t in zip(pyramid, tensor_pyramid):
        assert isinstance(t, torch.Tensor)
        np.testing.assert_allclose(t[0].numpy(), level, atol=1e-6)
        adaptive = torch.nn.functional.adaptive_avg_pool2d(
            torch.from_numpy(base)[None], tuple(level.shape[-2:])
        )
        np.testing.assert_allclose(t.numpy(), adaptive.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="multiples of 16"):
        targets.multiscale(np.zeros((50, 40, 40), np.float32))
