"""TensorRT engines built from an exported ONNX file, cached on disk.

Everything here imports ``tensorrt`` (and CUDA through torch) lazily: this module is
importable on machines without a GPU, and only building or running an engine needs one.

An engine is specific to the GPU model, the TensorRT version, the precision, the ONNX file
and the optimisation profile; the cache key hashes all of them, so a stale engine is never
reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from simplepose._files import atomic_write, remove_stale_temporaries
from simplepose.errors import BackendUnavailableError
from simplepose.formats import FLOAT_NCHW, UINT8_NHWC, cache_dir

_logger = logging.getLogger(__name__)


def import_tensorrt() -> Any:
    """``import tensorrt`` with an error that says what to install."""
    try:
        import tensorrt
    except ImportError as error:
        raise BackendUnavailableError(
            "the TensorRT backend needs NVIDIA TensorRT and a CUDA GPU: "
            "pip install 'simplepose[gpu]' (tensorrt>=10), or use --backend onnxruntime or torch"
        ) from error
    return tensorrt


@dataclass(frozen=True)
class EngineProfile:
    """The optimisation profile: input shapes the engine accepts, and the one it is tuned for.

    Batch covers 1-2 so a flip test (image + mirror) is one call. Height and width are
    network-input pixels (multiples of 64).
    """

    min_hw: tuple[int, int] = (64, 64)
    opt_hw: tuple[int, int] = (512, 896)
    max_hw: tuple[int, int] = (1024, 1920)
    max_batch: int = 2
    opt_batch: int = 2

    def __post_init__(self) -> None:
        for name in ("min_hw", "opt_hw", "max_hw"):
            hw = tuple(int(v) for v in getattr(self, name))
            if len(hw) != 2 or any(v <= 0 or v % 64 for v in hw):
                raise ValueError(f"EngineProfile.{name} must be two multiples of 64, got {hw}")
            object.__setattr__(self, name, hw)
        # The tuned shape must lie inside [min, max].
        opt = tuple(min(max(o, lo), hi) for o, lo, hi in zip(self.opt_hw, self.min_hw, self.max_hw))
        object.__setattr__(self, "opt_hw", opt)
        if not 1 <= self.opt_batch <= self.max_batch:
            object.__setattr__(self, "opt_batch", max(1, min(self.opt_batch, self.max_batch)))

    def shapes(self, uint8_input: bool) -> tuple[tuple[int, ...], ...]:
        """(min, opt, max) input shapes in the ONNX input's layout."""

        def shape(batch: int, hw: tuple[int, int]) -> tuple[int, ...]:
            return (batch, *hw, 3) if uint8_input else (batch, 3, *hw)

        return (
            shape(1, self.min_hw),
            shape(self.opt_batch, self.opt_hw),
            shape(self.max_batch, self.max_hw),
        )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def engine_cache_key(
    onnx_path: Path, gpu_name: str, trt_version: str, fp16: bool, profile: EngineProfile
) -> str:
    """Hex key of everything an engine depends on."""
    facts = {
        "onnx": _file_sha256(onnx_path),
        "gpu": gpu_name,
        "tensorrt": trt_version,
        "precision": "fp16" if fp16 else "fp32",
        "profile": asdict(profile),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:24]


def default_engine_dir() -> Path:
    """``cache_dir() / "engines"`` (``$SIMPLEPOSE_CACHE`` or ``~/.cache/simplepose``)."""
    return cache_dir() / "engines"


def build_engine(
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str] | None = None,
    *,
    fp16: bool = True,
    profile: EngineProfile | None = None,
    workspace_gib: float = 4.0,
) -> Path:
    """Build (or reuse from the cache) a serialized TensorRT engine for an ONNX model.

    Args:
        onnx_path: a model from ``simplepose export``.
        engine_path: where to write the engine (always built); default: the cache folder,
            where the file name carries the key and a matching engine is reused.
        fp16: allow FP16 kernels (the default: RTX GPUs run them much faster).
        profile: input shapes to support (default ``EngineProfile()``).
        workspace_gib: builder workspace limit.

    Returns:
        The engine file (a cached one when the key matches).

    Raises:
        ImportError: TensorRT or a CUDA device is missing.
        RuntimeError: TensorRT could not parse the model or build the engine.
    """
    trt = import_tensorrt()
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailableError(
            "building a TensorRT engine needs a CUDA GPU; none is available"
        )
    from simplepose.export.onnx import read_metadata

    onnx_path = Path(onnx_path)
    profile = profile or EngineProfile()
    uint8_input = read_metadata(onnx_path).get("input_format") == "uint8_nhwc"
    key = engine_cache_key(onnx_path, torch.cuda.get_device_name(), trt.__version__, fp16, profile)
    cached = engine_path is None
    if engine_path is None:
        engine_path = default_engine_dir() / f"{onnx_path.stem}-{key}.engine"
    engine_path = Path(engine_path)
    if cached and engine_path.is_file():
        _logger.info("reusing TensorRT engine %s", engine_path)
        return engine_path

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    optimization = builder.create_optimization_profile()
    input_name = network.get_input(0).name
    optimization.set_shape(input_name, *profile.shapes(uint8_input))
    config.add_optimization_profile(optimization)
    from simplepose.export.progress import StepProgress

    remove_stale_temporaries(engine_path.parent)
    _logger.info("building a TensorRT engine for %s as %s", onnx_path, engine_path)
    title = f"building a TensorRT engine for {onnx_path.name} (minutes, once)"
    with StepProgress(title) as progress:
        monitor = _progress_monitor(trt, progress.step)
        if monitor is not None:
            config.progress_monitor = monitor
        serialized = builder.build_serialized_network(network, config)
        if monitor is not None and monitor.interrupted is not None:
            raise monitor.interrupted
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine for {onnx_path}")
    # Complete or absent: the cache never holds a partial engine.
    with atomic_write(engine_path, "wb") as file:
        file.write(serialized)
    return engine_path


def _progress_monitor(trt: Any, report: Any) -> Any:
    """A TensorRT ``IProgressMonitor`` that reports the builder's phases and steps to
    ``report`` and cancels the build on Ctrl-C / SIGTERM; ``None`` where TensorRT has no
    progress monitors (before 10.0)."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class Monitor(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)  # type: ignore[misc]
            self.steps: dict[str, int] = {}
            self.interrupted: BaseException | None = None

        def phase_start(self, phase_name: str, parent_phase: Any, num_steps: int) -> None:
            try:
                self.steps[phase_name] = num_steps
                report(phase_name)
            except KeyboardInterrupt as error:
                self.interrupted = error

        def phase_finish(self, phase_name: str) -> None:
            pass

        def step_complete(self, phase_name: str, step: int) -> bool:
            # A signal's KeyboardInterrupt must not cross TensorRT's C++ frames: keep it,
            # ask the builder to stop (False), and raise it once the builder returned.
            try:
                report(f"{phase_name} {step + 1}/{self.steps.get(phase_name, '?')}")
            except KeyboardInterrupt as error:
                self.interrupted = error
            return self.interrupted is None

    return Monitor()


class TensorRTBackend:
    """Runs a serialized TensorRT engine on CUDA buffers (torch tensors as device memory).

    Args:
        engine_path: from ``build_engine`` or ``simplepose export --format engine``.
        device: CUDA device index.

    Follows the backend protocol of ``simplepose.inference.backends``.
    """

    name = "tensorrt"

    def __init__(self, engine_path: str | os.PathLike[str], device: int = 0) -> None:
        trt = import_tensorrt()
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                "the TensorRT backend needs a CUDA GPU; none is available"
            )
        self._torch = torch
        self.device = torch.device("cuda", device)
        path = self.path = Path(engine_path)
        if not path.is_file():
            raise FileNotFoundError(f"TensorRT engine {path} does not exist")
        self._logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(self._logger)
        with torch.cuda.device(self.device):
            self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
            if self.engine is None:
                raise RuntimeError(
                    f"{path} is not an engine for this GPU / TensorRT {trt.__version__}; rebuild it"
                )
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise RuntimeError(f"{path}: expected one input and one output, got {names}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        input_dtype = self.engine.get_tensor_dtype(self.input_name)
        self.input_format = UINT8_NHWC if input_dtype == trt.DataType.UINT8 else FLOAT_NCHW
        self._output_dtype = {
            trt.DataType.FLOAT: torch.float32,
            trt.DataType.HALF: torch.float16,
        }[self.engine.get_tensor_dtype(self.output_name)]
        self._stream = torch.cuda.Stream(device=self.device)

    def describe(self) -> str:
        """``backend tensorrt, device cuda:0 (GPU name), precision as built, ...``."""
        name = self._torch.cuda.get_device_name(self.device)
        return (
            f"backend tensorrt, device {self.device} ({name}), precision as built into "
            f"{self.path.name}, CUDA graphs off (one engine launch)"
        )

    def infer(self, batch: Any) -> Any:
        import numpy as np

        torch = self._torch
        dtype = np.uint8 if self.input_format == "uint8_nhwc" else np.float32
        with torch.cuda.device(self.device), torch.cuda.stream(self._stream):
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype)).to(
                self.device, non_blocking=True
            )
            if not self.context.set_input_shape(self.input_name, tuple(x.shape)):
                raise ValueError(
                    f"input shape {tuple(x.shape)} is outside the engine's optimisation profile"
                )
            out_shape = tuple(self.context.get_tensor_shape(self.output_name))
            out = torch.empty(out_shape, dtype=self._output_dtype, device=self.device)
            self.context.set_tensor_address(self.input_name, x.data_ptr())
            self.context.set_tensor_address(self.output_name, out.data_ptr())
            if not self.context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            result = out.float().cpu()  # synchronises with the stream
        return result.numpy()
