"""simplepose: real-time multi-person 2D pose estimation (Simple Pose / IMHN).

Heavy submodules (torch, onnxruntime, the C++ core) are imported on first use, so
``import simplepose`` stays cheap.
"""

from __future__ import annotations

from simplepose._version import __version__
from simplepose.config import ModelConfig

__all__ = ["ModelConfig", "__version__"]
