"""Rendering: skeleton colours where the limbs are, copies unless asked, labels drawn."""

from __future__ import annotations

import numpy as np
import pytest

from simplepose import skeleton
from simplepose.pipeline.render import Renderer, draw_poses
from simplepose.types import Poses


def _one_person() -> Poses:
    keypoints = np.zeros((1, 17, 3), np.float32)
    # Left shoulder (5) -> left elbow (7): a horizontal left-side limb at y = 100.
    keypoints[0, 5] = [50, 100, 0.9]
    keypoints[0, 7] = [150, 100, 0.9]
    # Right shoulder (6) -> right elbow (8): found but below the drawing threshold.
    keypoints[0, 6] = [50, 160, 0.01]
    keypoints[0, 8] = [150, 160, 0.01]
    return Poses(keypoints, np.array([0.8], np.float32))


def test_limb_drawn_in_its_colour_and_input_untouched() -> None:
    image = np.zeros((200, 200, 3), np.uint8)
    out = Renderer(min_score=0.05, thickness=3)(image, _one_person())
    assert not image.any(), "the input frame must not be modified"
    limb = skeleton.COCO_SKELETON.index((5, 7))
    # Middle of the 5-7 limb, away from the keypoint circles: exactly the limb colour.
    assert tuple(out[100, 100].tolist()) == skeleton.LIMB_COLORS[limb]
    # Centre of keypoint 7: its keypoint colour.
    assert tuple(out[100, 150].tolist()) == skeleton.KEYPOINT_COLORS[7]
    # The low-score right arm is not drawn at all.
    assert not out[150:170, 40:160].any()


def test_in_place_and_labels() -> None:
    image = np.zeros((200, 200, 3), np.uint8)
    renderer = Renderer()
    out = renderer(image, _one_person(), np.array([42]), fps=30.0, latency_ms=12.0, in_place=True)
    assert out is image
    assert image[100, 100].any()
    # The FPS / latency text sits in the top-left corner, white on a dark outline.
    assert (image[:30, :120] == 255).all(axis=2).any()
    # The track ID label sits just above the person's top keypoint (y = 100).
    assert image[75:95, 45:100].any()


def test_empty_poses_and_validation() -> None:
    image = np.full((50, 60, 3), 7, np.uint8)
    out = draw_poses(image, Poses.empty())
    np.testing.assert_array_equal(out, image)
    with pytest.raises(ValueError, match=r"uint8 \(H, W, 3\)"):
        draw_poses(np.zeros((5, 5), np.uint8), Poses.empty())
    with pytest.raises(ValueError, match="track_ids"):
        draw_poses(image, _one_person(), np.array([1, 2]))
