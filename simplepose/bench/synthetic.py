"""Synthetic inputs for benchmarks: people, crowds of ground-truth heatmaps, a test video.

Speed does not depend on pixel values or weights, but grouping and drawing do depend on how
many people there are; these helpers make inputs with a known number of plausible people,
so the benchmark runs anywhere (no dataset, no camera) and the numbers can be compared.

Coordinates are image pixels, x before y; people are COCO-17 keypoints ``[x, y, v]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from simplepose.types import Poses

#: A person standing, facing the camera, COCO order, in units of body height: x from the
#: body's vertical axis (the person's left is image right), y down from the top of the head.
STANDING_PERSON: npt.NDArray[np.float32] = np.array(
    [
        [0.00, 0.06],  # nose
        [0.02, 0.045],  # left eye
        [-0.02, 0.045],  # right eye
        [0.045, 0.055],  # left ear
        [-0.045, 0.055],  # right ear
        [0.11, 0.19],  # left shoulder
        [-0.11, 0.19],  # right shoulder
        [0.14, 0.34],  # left elbow
        [-0.14, 0.34],  # right elbow
        [0.15, 0.47],  # left wrist
        [-0.15, 0.47],  # right wrist
        [0.08, 0.52],  # left hip
        [-0.08, 0.52],  # right hip
        [0.085, 0.74],  # left knee
        [-0.085, 0.74],  # right knee
        [0.085, 0.97],  # left ankle
        [-0.085, 0.97],  # right ankle
    ],
    np.float32,
)
#: Joints that swing when a synthetic person walks (elbows, wrists, knees, ankles) and the
#: sign of their swing (left and right limbs move in opposite directions).
_SWING = {7: 0.5, 9: 1.0, 8: -0.5, 10: -1.0, 13: -0.5, 15: -1.0, 14: 0.5, 16: 1.0}


def person_template(rng: np.random.Generator, jitter: float = 0.02) -> npt.NDArray[np.float32]:
    """One person (17, 2) in body-height units: the standing pose with random limb jitter."""
    return STANDING_PERSON + rng.normal(0.0, jitter, STANDING_PERSON.shape).astype(np.float32)


def template_pool(count: int = 32, seed: int = 0) -> list[npt.NDArray[np.float32]]:
    """``count`` jittered standing people as joints18 (18, 3) ``[x, y, flag]``, unit height.

    The pool for ``crowd_heatmaps`` when no annotated people are at hand.
    """
    from simplepose.training.targets import coco_to_joints18

    rng = np.random.default_rng(seed)
    people = []
    for _ in range(count):
        xy = person_template(rng)
        coco = np.concatenate([xy, np.full((17, 1), 2, np.float32)], axis=1)
        people.append(coco_to_joints18(coco[None])[0])
    return people


def crowd_heatmaps(
    pool: Sequence[npt.NDArray[np.float32]],
    count: int,
    rng: np.random.Generator,
    size: int = 512,
) -> npt.NDArray[np.float32]:
    """Ground-truth heatmaps (50, size / 4, size / 4) of ``count`` people pasted at random.

    Each person (joints18 (18, 3), any scale) is scaled to 80-200 input pixels and placed at
    a random position inside a ``size`` x ``size`` input; overlap happens, as in real crowds.
    """
    from simplepose.training.targets import encode

    chosen = []
    for i in rng.choice(len(pool), count, replace=count > len(pool)):
        joints = pool[i].copy()
        labelled = joints[:, 2] < 2
        xy = joints[labelled, :2]
        lo, hi = xy.min(0), xy.max(0)
        scale = rng.uniform(80, 200) / max(hi[1] - lo[1], hi[0] - lo[0], 1e-6)
        extent = (hi - lo) * scale
        origin = rng.uniform(0, np.maximum(size - extent - 1, 1))
        joints[labelled, :2] = (xy - lo) * scale + origin
        chosen.append(joints)
    return encode(np.stack(chosen), (size, size))


class WalkingPeople:
    """``count`` people walking across a ``width`` x ``height`` frame, limbs swinging.

    ``poses(t)`` gives their keypoints at time ``t`` seconds: deterministic for a seed, so
    the same scene can be drawn into a video and reused as ground truth.
    """

    def __init__(self, count: int, width: int, height: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.width, self.height = width, height
        self.bodies = np.stack([person_template(rng, 0.01) for _ in range(count)])  # (P, 17, 2)
        self.body_height = rng.uniform(0.35, 0.8, count) * height
        self.start_x = rng.uniform(0.1, 0.9, count) * width
        self.top = rng.uniform(0.02, 1.0, count) * (height - self.body_height)
        self.speed = rng.choice([-1.0, 1.0], count) * rng.uniform(0.05, 0.2, count) * width
        self.phase = rng.uniform(0, 2 * np.pi, count)
        swing = np.zeros(17, np.float32)
        swing[list(_SWING)] = list(_SWING.values())
        self.swing = swing

    def poses(self, t: float) -> Poses:
        """Keypoints (P, 17, 3) ``[x, y, 1]`` in pixels at time ``t`` (people wrap around)."""
        stride = np.sin(2 * np.pi * 1.2 * t + self.phase)[:, None] * 0.06  # (P, 1)
        xy = self.bodies.copy()
        xy[:, :, 0] += stride * self.swing
        xy *= self.body_height[:, None, None]
        margin = 0.3 * self.body_height
        span = self.width + 2 * margin
        centre = (self.start_x + self.speed * t + margin) % span - margin
        xy[:, :, 0] += centre[:, None]
        xy[:, :, 1] += self.top[:, None]
        keypoints = np.concatenate([xy, np.ones((*xy.shape[:2], 1), np.float32)], axis=2)
        return Poses(keypoints.astype(np.float32), np.ones(len(xy), np.float32))


def background(width: int, height: int, seed: int = 0) -> npt.NDArray[np.uint8]:
    """A textured BGR background (gradients plus noise), so the encoder has real work."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack(
        [
            96 + 60 * np.sin(x / 53.0),
            110 + 50 * np.cos(y / 41.0),
            120 + 40 * np.sin((x + y) / 97.0),
        ],
        axis=2,
    )
    image += rng.normal(0, 12, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_walking_video(
    path: str | os.PathLike[str],
    frames: int,
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    people: int = 5,
    seed: int = 0,
) -> WalkingPeople:
    """Write an H.264 (or MPEG-4) video of ``people`` stick figures walking; returns the scene.

    The figures are drawn with the overlay renderer on a textured background, so decoding
    the file costs what decoding a camera video of that size costs.
    """
    import av

    from simplepose.pipeline.render import draw_poses
    from simplepose.pipeline.sinks import video_codec

    scene = WalkingPeople(people, width, height, seed)
    base = background(width, height, seed)
    codec = video_codec()
    with av.open(os.fspath(path), "w") as container:
        options = {"preset": "veryfast", "crf": "23"} if codec == "libx264" else {}
        stream: Any = container.add_stream(codec, rate=Fraction(fps), options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            image = draw_poses(base.copy(), scene.poses(index / fps))
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return scene
