"""Skeleton overlay drawn with OpenCV (antialiased lines, filled keypoint circles, labels)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from simplepose import skeleton
from simplepose.types import Poses

# cv2 drawing takes integer points; 4 fractional bits keep sub-pixel positions (x16).
_SHIFT = 4
_SCALE = 1 << _SHIFT
_LIMBS = np.asarray(skeleton.COCO_SKELETON, np.int64)  # (L, 2)


class Renderer:
    """Draws poses, track IDs and a small FPS / latency overlay on BGR images.

    Args:
        min_score: keypoints with a score at or below this are not drawn (nor their limbs).
        thickness: limb line width in pixels; ``None`` scales with the image size.
        radius: keypoint radius in pixels; ``None`` scales with the image size.
        draw_ids: write each person's track ID above their head.
    """

    def __init__(
        self,
        min_score: float = 0.05,
        thickness: int | None = None,
        radius: int | None = None,
        draw_ids: bool = True,
    ) -> None:
        if min_score < 0:
            raise ValueError(f"min_score must be >= 0, got {min_score!r}")
        self.min_score = float(min_score)
        self.thickness = thickness
        self.radius = radius
        self.draw_ids = draw_ids

    def __call__(
        self,
        image: npt.NDArray[np.uint8],
        poses: Poses,
        track_ids: npt.NDArray[np.integer] | None = None,
        *,
        fps: float | None = None,
        latency_ms: float | None = None,
        in_place: bool = False,
    ) -> npt.NDArray[np.uint8]:
        """Draw the overlay.

        Args:
            image: uint8 (H, W, 3) BGR frame.
            poses: poses in the image's pixels (x before y).
            track_ids: int (P,) IDs to write next to each person, or ``None``.
            fps: frames per second for the overlay text, or ``None``.
            latency_ms: end-to-end latency for the overlay text, or ``None``.
            in_place: draw on ``image`` itself instead of on a copy.

        Returns:
            uint8 (H, W, 3) BGR image with the overlay (``image`` itself when ``in_place``).
        """
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
        if track_ids is not None and np.shape(track_ids) != (len(poses),):
            raise ValueError(
                f"track_ids must have shape ({len(poses)},), got {np.shape(track_ids)}"
            )
        canvas = image if in_place else image.copy()
        if not canvas.flags.c_contiguous:
            raise ValueError("in-place drawing needs a C-contiguous image")
        size = max(canvas.shape[:2])
        thickness = self.thickness or max(1, round(size / 400))
        radius = self.radius or max(2, round(size / 250))
        if len(poses):
            self._draw_poses(canvas, poses, thickness, radius)
            if self.draw_ids and track_ids is not None:
                self._draw_ids(canvas, poses, np.asarray(track_ids), size)
        self._draw_overlay(canvas, fps, latency_ms, size)
        return canvas

    def _draw_poses(
        self, canvas: npt.NDArray[np.uint8], poses: Poses, thickness: int, radius: int
    ) -> None:
        keypoints = poses.keypoints
        visible = keypoints[:, :, 2] > self.min_score  # (P, 17)
        fixed = np.round(keypoints[:, :, :2] * _SCALE).astype(np.int32)  # (P, 17, 2)
        # All limbs of all people at once: (P, L) visibility, then one polylines call per
        # colour instead of one cv2.line call per limb.
        limb_visible = visible[:, _LIMBS[:, 0]] & visible[:, _LIMBS[:, 1]]
        segments = np.stack([fixed[:, _LIMBS[:, 0]], fixed[:, _LIMBS[:, 1]]], axis=2)  # P,L,2,2
        for colour in set(skeleton.LIMB_COLORS):
            limbs = np.array([c == colour for c in skeleton.LIMB_COLORS])
            chosen = segments[:, limbs][limb_visible[:, limbs]]  # (n, 2, 2)
            if len(chosen):
                cv2.polylines(canvas, list(chosen), False, colour, thickness, cv2.LINE_AA, _SHIFT)
        people, joints = np.nonzero(visible)
        for p, k in zip(people.tolist(), joints.tolist()):
            centre = (int(fixed[p, k, 0]), int(fixed[p, k, 1]))
            cv2.circle(canvas, centre, radius * _SCALE, skeleton.KEYPOINT_COLORS[k], -1,
                       cv2.LINE_AA, _SHIFT)  # fmt: skip

    def _draw_ids(
        self,
        canvas: npt.NDArray[np.uint8],
        poses: Poses,
        track_ids: npt.NDArray[np.integer],
        size: int,
    ) -> None:
        scale = max(0.4, size / 1600)
        found = poses.keypoints[:, :, 2] > self.min_score
        for p in range(len(poses)):
            if not found[p].any():
                continue
            xy = poses.keypoints[p, found[p], :2]
            x, y = int(xy[:, 0].min()), int(xy[:, 1].min()) - 6
            _text(canvas, f"#{int(track_ids[p])}", (x, max(y, 12)), scale)

    @staticmethod
    def _draw_overlay(
        canvas: npt.NDArray[np.uint8], fps: float | None, latency_ms: float | None, size: int
    ) -> None:
        parts = []
        if fps is not None:
            parts.append(f"{fps:5.1f} FPS")
        if latency_ms is not None:
            parts.append(f"{latency_ms:4.0f} ms")
        if parts:
            scale = max(0.4, size / 1600)
            _text(canvas, "  ".join(parts), (8, int(8 + 24 * scale)), scale)


def _text(canvas: npt.NDArray[np.uint8], text: str, origin: tuple[int, int], scale: float) -> None:
    # A dark outline under white text stays readable on any background.
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(canvas, text, origin, font, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, origin, font, scale, (255, 255, 255), 1, cv2.LINE_AA)


def draw_poses(
    image: npt.NDArray[np.uint8],
    poses: Poses,
    track_ids: npt.NDArray[np.integer] | None = None,
    *,
    min_score: float = 0.05,
    in_place: bool = False,
) -> npt.NDArray[np.uint8]:
    """Draw poses (and track IDs) with a default ``Renderer``; see ``Renderer.__call__``."""
    return Renderer(min_score=min_score)(image, poses, track_ids, in_place=in_place)
