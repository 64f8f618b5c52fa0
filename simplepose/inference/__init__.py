"""Inference: preprocessing, backends (torch / ONNX Runtime / TensorRT), the estimator."""

from __future__ import annotations

from simplepose.inference.backends import Backend, OnnxRuntimeBackend, TorchBackend
from simplepose.inference.estimator import Inferred, PoseEstimator, make_backend
from simplepose.inference.preprocess import InputTransform, letterbox, preprocess, read_image

__all__ = [
    "Backend",
    "Inferred",
    "InputTransform",
    "OnnxRuntimeBackend",
    "PoseEstimator",
    "TorchBackend",
    "letterbox",
    "make_backend",
    "preprocess",
    "read_image",
]
