"""Result and frame dataclasses shared by every stage.

Coordinates are pixels with x before y; pixel centres sit at integer coordinates + 0.5 in
the sense of OpenCV (``x = 0.5`` is the centre of the first column). Whether a ``Poses``
holds network-input pixels or image pixels is said by whoever returns it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from simplepose import skeleton


@dataclass(frozen=True)
class Poses:
    """Poses of P people in one image.

    Attributes:
        keypoints: float32 (P, 17, 3) ``[x, y, score]`` per COCO keypoint; a keypoint that was
            not found is ``[0, 0, 0]``.
        scores: float32 (P,) person scores, sorted descending by whoever builds the object.
    """

    keypoints: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]

    def __post_init__(self) -> None:
        kp = self.keypoints
        if kp.ndim != 3 or kp.shape[1:] != (skeleton.NUM_COCO_KEYPOINTS, 3):
            raise ValueError(f"keypoints must have shape (P, 17, 3), got {kp.shape}")
        if self.scores.shape != (kp.shape[0],):
            raise ValueError(
                f"scores must have shape ({kp.shape[0]},) to match keypoints, "
                f"got {self.scores.shape}"
            )

    @classmethod
    def empty(cls) -> Poses:
        """No people."""
        return cls(
            np.zeros((0, skeleton.NUM_COCO_KEYPOINTS, 3), np.float32), np.zeros((0,), np.float32)
        )

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def found(self) -> npt.NDArray[np.bool_]:
        """bool (P, 17): which keypoints were found (score > 0)."""
        return self.keypoints[:, :, 2] > 0

    def to_coco(
        self, image_id: int, category_id: int = 1, max_people: int | None = None
    ) -> list[dict[str, object]]:
        """COCO keypoint results, one dict per person (the format ``COCOeval`` loads).

        Args:
            image_id: the COCO image id.
            category_id: the COCO category (1 = person).
            max_people: keep only this many, highest score first (COCOeval's ``maxDets``
                keeps 20 per image); ``None`` keeps all.

        Returns:
            Dicts with ``keypoints`` ``[x, y, v] * 17``, ``v`` the keypoint score (0 when
            unfound; COCOeval ignores it), and ``score`` the person score.
        """
        order = np.argsort(-self.scores, kind="stable")[:max_people]
        return [
            {
                "image_id": int(image_id),
                "category_id": int(category_id),
                "keypoints": [round(float(v), 3) for v in self.keypoints[p].reshape(-1)],
                "score": float(self.scores[p]),
            }
            for p in order
        ]

    def transformed(self, scale: npt.ArrayLike, offset: npt.ArrayLike) -> Poses:
        """Map found keypoints by ``p -> p * scale + offset`` (per axis, x then y).

        Args:
            scale: (2,) or scalar multiplier for x and y.
            offset: (2,) or scalar addition for x and y, in the output frame.

        Returns:
            New ``Poses``; unfound keypoints stay ``[0, 0, 0]``.
        """
        keypoints = self.keypoints.copy()
        xy = keypoints[:, :, :2] * np.asarray(scale, np.float32) + np.asarray(offset, np.float32)
        keypoints[:, :, :2] = np.where(self.found[:, :, None], xy, 0).astype(np.float32)
        return Poses(keypoints, self.scores.copy())


@dataclass(frozen=True)
class Frame:
    """One frame from a source.

    Attributes:
        index: 0-based frame number in the source (files: decode order; live: capture count).
        timestamp: seconds, from the stream's time base (files) or the capture clock (live).
        image: uint8 (H, W, 3) BGR.
        captured_at: ``time.perf_counter()`` when the frame entered the pipeline, for latency.
    """

    index: int
    timestamp: float
    image: npt.NDArray[np.uint8]
    captured_at: float = 0.0


@dataclass
class FrameResult:
    """What the pipeline yields for one frame.

    Attributes:
        frame: the source frame.
        poses: poses in image pixels.
        track_ids: int64 (P,) stable person IDs, or ``None`` when tracking is off.
        rendered: uint8 (H, W, 3) BGR overlay, or ``None`` when nothing draws.
        timings: seconds spent per stage name for this frame.
    """

    frame: Frame
    poses: Poses
    track_ids: npt.NDArray[np.int64] | None = None
    rendered: npt.NDArray[np.uint8] | None = None
    timings: dict[str, float] = field(default_factory=dict)
