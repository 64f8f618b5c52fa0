"""simplepose: real-time multi-person 2D pose estimation (Simple Pose / IMHN).

Heavy submodules (torch, onnxruntime, the C++ core) are imported on first use, so
``import simplepose`` stays cheap.
"""

from __future__ import annotations

from simplepose._version import __version__
from simplepose.config import ModelConfig

__all__ = ["ModelConfig", "PoseEstimator", "__version__"]


def __getattr__(name: str) -> object:
    # Lazy: ``simplepose.PoseEstimator`` pulls in OpenCV and the backends on first use only.
    if name == "PoseEstimator":
        from simplepose.inference.estimator import PoseEstimator

        return PoseEstimator
    raise AttributeError(f"module 'simplepose' has no attribute {name!r}")
