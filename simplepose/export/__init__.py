"""Export the inference graph: ONNX (``onnx.py``) and TensorRT engines (``tensorrt.py``)."""

from __future__ import annotations

from simplepose.export.onnx import export_onnx, read_metadata

__all__ = ["export_onnx", "read_metadata"]
