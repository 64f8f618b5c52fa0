"""Inference backends: one small protocol over torch, ONNX Runtime and TensorRT.

Every backend maps a batch of network inputs to heatmaps::

    infer(batch) -> float32 numpy (N, 50, H/4, W/4)

where ``batch`` is float32 (N, 3, H, W) BGR / 255, or, for models exported with
``--uint8-input`` (``input_format == "uint8_nhwc"``), uint8 (N, H, W, 3) BGR; the cast then
happens inside the graph, on the device. Optional packages (onnxruntime GPU builds,
tensorrt) are imported lazily; a missing one is an error that says what to install.

The torch backend also has a *device path* (``DevicePath``): it takes the padded uint8
images, and does the conversion, the mirrored half of a flip test, the network and the flip
merge on its device, so a GPU frame costs one upload of uint8 pixels, one replay of a CUDA
graph and (after the estimator's multi-scale merge, also on the device) one download of the
merged heatmaps, with one synchronisation.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from simplepose import skeleton
from simplepose.errors import BackendUnavailableError, InputError
from simplepose.formats import FLOAT_NCHW, UINT8_NHWC, cache_dir

_logger = logging.getLogger(__name__)

#: ONNX Runtime providers in the order ``auto`` prefers them, with the package that brings each.
ORT_PROVIDER_PACKAGES: dict[str, str] = {
    "TensorrtExecutionProvider": "onnxruntime-gpu and tensorrt (pip install 'simplepose[gpu]')",
    "CUDAExecutionProvider": "onnxruntime-gpu (pip install 'simplepose[gpu]')",
    "CPUExecutionProvider": "onnxruntime",
}
_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
_PROVIDER_ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}

#: Arithmetic precisions of the torch backend.
PRECISIONS = ("fp32", "fp16", "bf16")


@runtime_checkable
class Backend(Protocol):
    """What the estimator needs from a backend."""

    name: str
    input_format: str  # FLOAT_NCHW or UINT8_NHWC

    def infer(self, batch: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        """(N, 3, H, W) float32 or (N, H, W, 3) uint8 -> (N, 50, H/4, W/4) float32."""
        ...


@runtime_checkable
class DevicePath(Protocol):
    """A backend that keeps frames on its device from uint8 upload to merged heatmaps."""

    def device_heatmaps(self, padded: npt.NDArray[np.uint8], flip: bool) -> Any:
        """uint8 (N, H, W, 3) BGR -> float32 device tensor (N, 50, H/4, W/4), flip-merged."""
        ...

    def to_host(self, tensors: list[Any]) -> list[npt.NDArray[np.float32]]:
        """Device tensors -> numpy arrays, with one synchronisation for all of them."""
        ...

    def stream_context(self) -> Any:
        """Context manager: device operations inside run in order with the backend's."""
        ...


def describe_backend(backend: Any) -> str:
    """One line: backend, device, precision and CUDA graphs (what ``run`` prints at start)."""
    describe = getattr(backend, "describe", None)
    return describe() if callable(describe) else f"backend {getattr(backend, 'name', backend)}"


def backend_label(backend: Any) -> str:
    """Short label for tables and the live page: ``torch (cuda:0)``, ``onnxruntime (CPU)``."""
    providers = getattr(backend, "providers", None)
    if providers:
        return f"{backend.name} ({providers[0].replace('ExecutionProvider', '')})"
    device = getattr(backend, "device", None)
    return f"{backend.name} ({device})" if device is not None else str(backend.name)


def check_heatmaps(heatmaps: npt.NDArray[Any], batch_shape: tuple[int, ...], fmt: str) -> None:
    """Raise ``ValueError`` unless ``heatmaps`` fit the input batch (N, 50, H/4, W/4)."""
    n, h, w = (batch_shape[0], *batch_shape[2:4]) if fmt == FLOAT_NCHW else batch_shape[:3]
    expected = (n, skeleton.NUM_CHANNELS, h // 4, w // 4)
    if tuple(heatmaps.shape) != expected:
        raise ValueError(
            f"backend returned heatmaps of shape {heatmaps.shape}, expected {expected}"
        )


def torch_cuda_available() -> bool:
    """Whether torch is a CUDA build that sees a GPU."""
    try:
        import torch
    except ImportError:  # pragma: no cover - a declared dependency
        return False
    return bool(torch.cuda.is_available())


def resolve_torch_device(device: str | None) -> Any:
    """The ``torch.device`` for ``--device``: default CUDA when torch sees a GPU, else CPU.

    Raises:
        InputError: not a device name torch knows, or a GPU index that does not exist.
        BackendUnavailableError: a CUDA device on a CPU build of torch or a machine without a
            GPU.
    """
    import torch

    if not device:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise InputError(
            f"device {device!r} is not a torch device; use cpu, cuda or cuda:N"
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU build" if torch.version.cuda is None else "a CUDA build without a GPU"
            raise BackendUnavailableError(
                f"device {device!r}: torch {torch.__version__} here is {build}; install the "
                "CUDA build of torch on a machine with an NVIDIA GPU, or use --device cpu"
            )
        count = torch.cuda.device_count()
        if (resolved.index or 0) >= count:
            raise InputError(f"device {device!r}: this machine has {count} CUDA device(s)")
    elif resolved.type != "cpu":
        raise InputError(f"device {device!r}: the torch backend runs on cpu or cuda")
    return resolved


class TorchBackend:
    """Runs an IMHN with PyTorch (``model.predict``), eval mode, no autograd.

    On CUDA it is built for speed: half precision (``bf16`` optional), channels-last memory
    and cuDNN autotuning, and the device path (``device_heatmaps``) replayed from CUDA graphs,
    one per input shape (see ``GraphCache``). On the CPU it runs float32, eagerly.

    Args:
        model: an ``IMHN``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default CUDA when available.
        half: deprecated spelling of ``precision="fp16"`` (``True``) / ``"fp32"`` (``False``).
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``; default fp16 on CUDA, fp32 on CPU.
        cuda_graphs: replay the device path from CUDA graphs (CUDA only).
        max_graphs: graphs kept at most (one per input shape).
        copy_model: convert a copy when the device or precision differs, leaving the
            caller's model as it was (``False``: convert ``model`` in place, saving memory).

    Raises:
        InputError, BackendUnavailableError: see ``resolve_torch_device``; an unknown
            precision.
    """

    name = "torch"
    input_format = FLOAT_NCHW

    def __init__(
        self,
        model: Any,
        device: str | None = None,
        half: bool | None = None,
        *,
        precision: str | None = None,
        cuda_graphs: bool = True,
        max_graphs: int = 8,
        copy_model: bool = True,
    ) -> None:
        import torch

        from simplepose.inference.cuda_graphs import GraphCache

        self._torch = torch
        self.device = resolve_torch_device(device)
        cuda = self.device.type == "cuda"
        if precision is None:
            precision = (
                ("fp16" if half else "fp32") if half is not None else ("fp16" if cuda else "fp32")
            )
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[
            precision
        ]
        first = next(model.parameters(), None)
        if (
            copy_model
            and first is not None
            and (first.device, first.dtype)
            != (
                self.device,
                self.dtype,
            )
        ):
            model = copy.deepcopy(model)  # Module.to converts in place
        model = model.eval().to(self.device, self.dtype)
        if cuda:
            torch.backends.cudnn.benchmark = True  # fixed shapes: autotune once per shape
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self._flip_channels = torch.as_tensor(skeleton.FLIP_CHANNELS, device=self.device)
        self._stream = torch.cuda.Stream(device=self.device) if cuda else None
        self._lock = threading.Lock()
        self._graphs: dict[bool, GraphCache] = {}
        if cuda and cuda_graphs:
            # One cache per flip setting: the flip is part of the captured function.
            self._graphs = {
                flip: GraphCache(self._forward_flipped if flip else self._forward, max_graphs)
                for flip in (False, True)
            }

    @property
    def half(self) -> bool:
        """Whether the network runs in a 16-bit float precision."""
        return self.precision != "fp32"

    @property
    def cuda_graphs(self) -> bool:
        """Whether the device path replays CUDA graphs (off on CPU, or after a failure)."""
        return bool(self._graphs) and all(cache.enabled for cache in self._graphs.values())

    @property
    def graph_stats(self) -> dict[str, int]:
        """CUDA graphs held, captured and replayed so far (zeros without graphs)."""
        caches = self._graphs.values()
        return {
            "graphs": sum(len(cache) for cache in caches),
            "captures": sum(cache.captures for cache in caches),
            "replays": sum(cache.replays for cache in caches),
        }

    def describe(self) -> str:
        """``backend torch, device cuda:0 (NVIDIA H200), precision fp16, CUDA graphs on``."""
        device = str(self.device)
        if self.device.type == "cuda":
            device += f" ({self._torch.cuda.get_device_name(self.device)})"
        graphs = "on" if self.cuda_graphs else "off"
        return f"backend torch, device {device}, precision {self.precision}, CUDA graphs {graphs}"

    # -- device path -------------------------------------------------------------------

    def _forward(self, images: Any) -> Any:
        """uint8 (N, H, W, 3) device tensor -> float32 (N, 50, H/4, W/4) heatmaps."""
        torch = self._torch
        # Permuting NHWC gives an NCHW view with channels-last strides, which the float
        # conversion keeps: on CUDA the input is channels-last without a copy.
        x = images.permute(0, 3, 1, 2).float().mul_(1.0 / 255.0)
        if self.device.type != "cuda":
            x = x.contiguous()
        heatmaps = self.model.predict(x.to(self.dtype))
        return heatmaps.float().contiguous(memory_format=torch.contiguous_format)

    def _forward_flipped(self, images: Any) -> Any:
        """``_forward`` of [images, mirrored images], merged: the flip test in one call."""
        torch = self._torch
        n = images.shape[0]
        heatmaps = self._forward(torch.cat([images, images.flip(2)]))
        # Mirroring the whole padded input aligns the grids exactly: cell i of the mirror is
        # cell w - 1 - i of the original; left and right channels swap.
        mirrored = heatmaps[n:].index_select(1, self._flip_channels).flip(3)
        return (heatmaps[:n] + mirrored) * 0.5

    def _upload(self, padded: npt.NDArray[np.uint8]) -> Any:
        torch = self._torch
        host = torch.from_numpy(np.ascontiguousarray(padded, np.uint8))
        if self.device.type != "cuda":
            return host
        # Through pinned memory, so the copy is asynchronous; the caching host allocator
        # keeps the buffer until the copy has run.
        staging = torch.empty(host.shape, dtype=torch.uint8, pin_memory=True)
        staging.copy_(host)
        return staging.to(self.device, non_blocking=True)

    def device_heatmaps(self, padded: npt.NDArray[np.uint8], flip: bool) -> Any:
        """Padded uint8 BGR images (N, H, W, 3) -> flip-merged float32 (N, 50, H/4, W/4)
        heatmaps on the device; nothing is synchronised (see ``to_host``)."""
        torch = self._torch
        if padded.ndim != 4 or padded.shape[3] != 3 or padded.dtype != np.uint8:
            raise ValueError(
                f"padded must be uint8 (N, H, W, 3), got {padded.dtype} {padded.shape}"
            )
        with self._lock, torch.inference_mode(), self.stream_context():
            x = self._upload(padded)
            if self._graphs:
                return self._graphs[flip](x)
            return self._forward_flipped(x) if flip else self._forward(x)

    def to_host(self, tensors: list[Any]) -> list[npt.NDArray[np.float32]]:
        """Device tensors -> float32 numpy arrays: asynchronous copies into pinned memory and
        one synchronisation of the backend's stream."""
        torch = self._torch
        if self.device.type != "cuda":
            return [t.numpy() for t in tensors]
        with self.stream_context():
            hosts = [torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for t in tensors]
            for host, tensor in zip(hosts, tensors):
                host.copy_(tensor, non_blocking=True)
            assert self._stream is not None
            self._stream.synchronize()
        return [host.numpy() for host in hosts]

    def stream_context(self) -> Any:
        """A context under which torch operations run on this backend's CUDA stream (the
        estimator's multi-scale merge runs there, between ``device_heatmaps`` and
        ``to_host``); a no-op on the CPU."""
        import contextlib

        if self._stream is None:
            return contextlib.nullcontext()
        return self._torch.cuda.stream(self._stream)

    # -- plain protocol ----------------------------------------------------------------

    def infer(self, batch: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        torch = self._torch
        with self._lock, torch.inference_mode(), self.stream_context():
            x = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device)
            if self.device.type == "cuda":
                x = x.to(memory_format=torch.channels_last)
            out = self.model.predict(x.to(self.dtype)).float().cpu()
        return out.numpy()


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as error:  # pragma: no cover - a declared dependency
        raise BackendUnavailableError(
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
        InputError: a name that is neither an alias nor an ONNX Runtime provider name.
        BackendUnavailableError: a requested provider is not available; says which package
            brings it.
    """
    if requested is None:
        chosen = [p for p in ORT_PROVIDER_PACKAGES if p in available]
        return chosen or ["CPUExecutionProvider"]
    chosen = []
    for name in requested:
        name = name.strip()
        provider = _PROVIDER_ALIASES.get(name.lower(), name)
        if provider not in available and not provider.endswith("ExecutionProvider"):
            raise InputError(
                f"unknown ONNX Runtime provider {name!r}; use tensorrt, cuda, cpu or a full "
                f"provider name (available here: {', '.join(available)})"
            )
        if provider not in available:
            package = ORT_PROVIDER_PACKAGES.get(provider, "an onnxruntime build that has it")
            raise BackendUnavailableError(
                f"ONNX Runtime provider {provider} is not available here (available: "
                f"{', '.join(available)}); install {package}, or drop --providers"
            )
        chosen.append(provider)
    return chosen


class OnnxRuntimeBackend:
    """Runs an exported ONNX model with ONNX Runtime; one session serves every input size.

    On a GPU provider (CUDA, TensorRT) the run goes through I/O binding: ONNX Runtime copies
    the input to the device once and writes the heatmaps straight into a numpy array, with
    no intermediate output copy.

    Args:
        path: the ``.onnx`` file (from ``simplepose export``).
        providers: provider names or aliases; default TensorRT -> CUDA -> CPU, as available.
        threads: intra-op threads for the CPU provider (default: ONNX Runtime's choice).
        engine_cache_dir: where the TensorRT provider caches its engines (default
            ``cache_dir() / "ort-trt"``).
        fp16: let the TensorRT provider build FP16 engines.
        io_binding: run through I/O binding; default: on GPU providers only.

    Raises:
        InputError: the file is not an ONNX model of this network (channel counts).
        BackendUnavailableError: a requested provider is missing.
    """

    name = "onnxruntime"

    def __init__(
        self,
        path: str | os.PathLike[str],
        providers: list[str] | None = None,
        threads: int | None = None,
        engine_cache_dir: str | os.PathLike[str] | None = None,
        fp16: bool = True,
        io_binding: bool | None = None,
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
        self.on_gpu = self.providers[0] in _GPU_PROVIDERS
        self.io_binding = self.on_gpu if io_binding is None else io_binding
        (model_input,) = self.session.get_inputs()
        model_output = self.session.get_outputs()[0]
        self.input_name = model_input.name
        self.output_name = model_output.name
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

    def describe(self) -> str:
        """``backend onnxruntime, device cpu (providers CPU), precision fp32, CUDA graphs off,
        I/O binding off``."""
        providers = ", ".join(p.replace("ExecutionProvider", "") for p in self.providers)
        device = "cuda" if self.on_gpu else "cpu"
        metadata = self.session.get_modelmeta().custom_metadata_map
        precision = metadata.get("precision", "fp32")
        binding = "on" if self.io_binding else "off"
        return (
            f"backend onnxruntime, device {device} (providers {providers}), precision "
            f"{precision}, CUDA graphs off, I/O binding {binding}"
        )

    def infer(self, batch: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        dtype = np.uint8 if self.input_format == UINT8_NHWC else np.float32
        batch = np.ascontiguousarray(batch, dtype)
        if not self.io_binding:
            (heatmaps,) = self.session.run(None, {self.input_name: batch})
            return np.asarray(heatmaps, dtype=np.float32)
        n, h, w = (batch.shape[0], *batch.shape[2:4]) if dtype == np.float32 else batch.shape[:3]
        heatmaps = np.empty((n, skeleton.NUM_CHANNELS, h // 4, w // 4), np.float32)
        binding = self.session.io_binding()
        binding.bind_cpu_input(self.input_name, batch)
        # ORT copies the device output once, into this array (the documented buffer_ptr form).
        binding.bind_output(
            self.output_name, "cpu", 0, np.float32, list(heatmaps.shape), heatmaps.ctypes.data
        )
        self.session.run_with_iobinding(binding)
        return heatmaps


def ort_providers() -> list[str]:
    """``onnxruntime.get_available_providers()``, or ``[]`` without onnxruntime."""
    try:
        return list(_import_onnxruntime().get_available_providers())
    except ImportError:
        return []


def ort_cuda_available() -> bool:
    """Whether ONNX Runtime has a CUDA or TensorRT provider (an onnxruntime-gpu build)."""
    return any(provider in _GPU_PROVIDERS for provider in ort_providers())
