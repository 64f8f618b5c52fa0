"""Inference backends: one small protocol over torch, ONNX Runtime and TensorRT.

Every backend maps a batch of network inputs to heatmaps::

    infer(batch) -> float32 numpy (N, 50, H/4, W/4)

where ``batch`` is float32 (N, 3, H, W) BGR / 255, or, for models exported with
``--uint8-input`` (``input_format == "uint8_nhwc"``), uint8 (N, H, W, 3) BGR; the cast then
happens inside the graph, on the device. Optional packages (onnxruntime GPU builds,
tensorrt) are imported lazily; a missing one is an ``ImportError`` that says what to install.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from simplepose import skeleton
from simplepose.errors import InputError

_logger = logging.getLogger(__name__)

FLOAT_NCHW = "float32_nchw"
UINT8_NHWC = "uint8_nhwc"

#: ONNX Runtime providers in the order ``auto`` prefers them, with the package that brings each.
ORT_PROVIDER_PACKAGES: dict[str, str] = {
    "TensorrtExecutionProvider": "onnxruntime-gpu and tensorrt (pip install 'simplepose[gpu]')",
    "CUDAExecutionProvider": "onnxruntime-gpu (pip install 'simplepose[gpu]')",
    "CPUExecutionProvider": "onnxruntime",
}
_PROVIDER_ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def cache_dir() -> Path:
    """``$SIMPLEPOSE_CACHE`` or ``~/.cache/simplepose``: exported models and engines."""
    return Path(os.environ.get("SIMPLEPOSE_CACHE") or Path.home() / ".cache" / "simplepose")


@runtime_checkable
class Backend(Protocol):
    """What the estimator needs from a backend."""

    name: str
    input_format: str  # FLOAT_NCHW or UINT8_NHWC

    def infer(self, batch: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        """(N, 3, H, W) float32 or (N, H, W, 3) uint8 -> (N, 50, H/4, W/4) float32."""
        ...


def check_heatmaps(heatmaps: npt.NDArray[Any], batch_shape: tuple[int, ...], fmt: str) -> None:
    """Raise ``ValueError`` unless ``heatmaps`` fit the input batch (N, 50, H/4, W/4)."""
    n, h, w = (batch_shape[0], *batch_shape[2:4]) if fmt == FLOAT_NCHW else batch_shape[:3]
    expected = (n, skeleton.NUM_CHANNELS, h // 4, w // 4)
    if tuple(heatmaps.shape) != expected:
        raise ValueError(
            f"backend returned heatmaps of shape {heatmaps.shape}, expected {expected}"
        )


class TorchBackend:
    """Runs an IMHN with PyTorch (``model.predict``), eval mode, no autograd.

    On CUDA the model runs in half precision with channels-last memory, which is what tensor
    cores want; on CPU it stays float32.

    Args:
        model: an ``IMHN``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default CUDA when available.
        half: half precision (default: on CUDA only).
    """

    name = "torch"
    input_format = FLOAT_NCHW

    def __init__(self, model: Any, device: str | None = None, half: bool | None = None) -> None:
        import torch

        self._torch = torch
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.half = self.device.type == "cuda" if half is None else half
        model = model.eval().to(self.device)
        if self.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        self.model = model.half() if self.half else model.float()

    def infer(self, batch: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device)
            if self.device.type == "cuda":
                x = x.to(memory_format=torch.channels_last)
            out = self.model.predict(x.half() if self.half else x)
            return out.float().cpu().numpy()


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as error:  # pragma: no cover - a declared dependency
        raise ImportError(
            "the onnxruntime backend needs onnxruntime: pip install onnxruntime "
            "(or onnxruntime-gpu for CUDA / TensorRT)"
        ) from error
    return onnxruntime


def resolve_providers(requested: list[str] | None, available: list[str]) -> list[str]:
    """ONNX Runtime providers to use, in priority order.

    Args:
        requested: provider names or aliases (``tensorrt``, ``cuda``, ``cpu``); ``None`` picks
            TensorRT -> CUDA -> CPU among the available ones.
        available: ``onnxruntime.get_available_providers()``.

    Raises:
        ImportError: a requested provider is not available; says which package brings it.
    """
    if requested is None:
        chosen = [p for p in ORT_PROVIDER_PACKAGES if p in available]
        return chosen or ["CPUExecutionProvider"]
    chosen = []
    for name in requested:
        provider = _PROVIDER_ALIASES.get(name.lower(), name)
        if provider not in available:
            package = ORT_PROVIDER_PACKAGES.get(provider, "an onnxruntime build that has it")
            raise ImportError(
                f"ONNX Runtime provider {provider} is not available (available: "
                f"{', '.join(available)}); install {package}"
            )
        chosen.append(provider)
    return chosen


class OnnxRuntimeBackend:
    """Runs an exported ONNX model with ONNX Runtime; one session serves every input size.

    Args:
        path: the ``.onnx`` file (from ``simplepose export``).
        providers: provider names or aliases; default TensorRT -> CUDA -> CPU, as available.
        threads: intra-op threads for the CPU provider (default: ONNX Runtime's choice).
        engine_cache_dir: where the TensorRT provider caches its engines (default
            ``cache_dir() / "ort-trt"``).
        fp16: let the TensorRT provider build FP16 engines.

    Raises:
        InputError: the file is not an ONNX model of this network (channel counts).
        ImportError: a requested provider is missing.
    """

    name = "onnxruntime"

    def __init__(
        self,
        path: str | os.PathLike[str],
        providers: list[str] | None = None,
        threads: int | None = None,
        engine_cache_dir: str | os.PathLike[str] | None = None,
        fp16: bool = True,
    ) -> None:
        ort = _import_onnxruntime()
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {path} does not exist")
        chosen = resolve_providers(providers, ort.get_available_providers())
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        provider_list: list[Any] = []
        for provider in chosen:
            if provider == "TensorrtExecutionProvider":
                cache = Path(engine_cache_dir or cache_dir() / "ort-trt")
                cache.mkdir(parents=True, exist_ok=True)
                provider_list.append(
                    (
                        provider,
                        {
                            "trt_fp16_enable": fp16,
                            "trt_engine_cache_enable": True,
                            "trt_engine_cache_path": str(cache),
                        },
                    )
                )
            else:
                provider_list.append(provider)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=provider_list)
        except Exception as error:  # ORT raises its own exception types for bad files
            raise InputError(f"{path} is not a loadable ONNX model: {error}") from error
        self.providers = self.session.get_providers()
        (model_input,) = self.session.get_inputs()
        model_output = self.session.get_outputs()[0]
        self.input_name = model_input.name
        self.input_format = UINT8_NHWC if model_input.type == "tensor(uint8)" else FLOAT_NCHW
        channel_axis = 3 if self.input_format == UINT8_NHWC else 1
        in_channels = model_input.shape[channel_axis] if len(model_input.shape) == 4 else None
        out_channels = model_output.shape[1] if len(model_output.shape) == 4 else None
        if in_channels != 3 or out_channels != skeleton.NUM_CHANNELS:
            raise InputError(
                f"{path} is not a simplepose model: input {model_input.shape}, output "
                f"{model_output.shape}; expected 3 input channels and "
                f"{skeleton.NUM_CHANNELS} output channels"
            )
        _logger.info("onnxruntime session on %s", self.providers)

    def infer(self, batch: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        dtype = np.uint8 if self.input_format == UINT8_NHWC else np.float32
        (heatmaps,) = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype)})
        return np.asarray(heatmaps, dtype=np.float32)


def ort_cuda_available() -> bool:
    """Whether ONNX Runtime has a CUDA or TensorRT provider (an onnxruntime-gpu build)."""
    try:
        providers = _import_onnxruntime().get_available_providers()
    except ImportError:
        return False
    return "CUDAExecutionProvider" in providers or "TensorrtExecutionProvider" in providers
