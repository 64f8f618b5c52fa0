"""``PoseEstimator``: image in, poses in image pixels out.

One call runs two stages that the threaded pipeline also runs separately:

- ``infer(image)``: letterbox each scale, run the backend on [image, mirror] (flip test),
  merge the mirror back with the channel permutation, resample every scale onto one grid
  and average (vectorised: two small matrix products per scale);
- ``group(inferred)``: the C++ decoder on that grid, then the affine map to image pixels.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from simplepose import skeleton
from simplepose.config import DecodeConfig, InferenceConfig, ModelConfig
from simplepose.errors import BackendUnavailableError, InputError
from simplepose.formats import FLOAT_NCHW, cache_dir
from simplepose.inference.backends import (
    Backend,
    DevicePath,
    OnnxRuntimeBackend,
    TorchBackend,
    check_heatmaps,
    describe_backend,
    ort_cuda_available,
    ort_providers,
    resolve_providers,
    torch_cuda_available,
)
from simplepose.inference.preprocess import (
    InputTransform,
    as_bgr_uint8,
    letterbox,
    to_network_input,
)
from simplepose.types import Poses

_logger = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
_ONNX_SUFFIXES = (".onnx",)
_ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
_FLIP_CHANNELS = np.asarray(skeleton.FLIP_CHANNELS)


@dataclass
class Inferred:
    """The output of ``PoseEstimator.infer``: merged heatmaps and how to map them back.

    Attributes:
        heatmaps: float32 (50, H, W) on the stride-4 grid of ``transform``'s network input.
        transform: the map between that network input and the image.
        timings: seconds per sub-stage (``preprocess``, ``network``, ``merge``).
    """

    heatmaps: npt.NDArray[np.float32]
    transform: InputTransform
    timings: dict[str, float] = field(default_factory=dict)


#: The weights kinds ``auto_backend`` decides for.
WEIGHTS_KINDS = ("checkpoint", "onnx", "engine")


def _tensorrt_usable() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return torch_cuda_available()


def auto_backend(weights_kind: str = "checkpoint") -> str:
    """The backend ``auto`` picks on this machine for weights of ``weights_kind``.

    The GPU whenever one can be used: a TensorRT engine needs TensorRT; otherwise TensorRT
    when it is installed and torch sees a GPU; then, for an ``.onnx`` file, ONNX Runtime
    (its CUDA / TensorRT providers when the onnxruntime-gpu build is installed); for a
    checkpoint, torch on CUDA (fp16, channels-last, CUDA graphs, device-side flip merge:
    the GPU path measured here; ONNX Runtime's CUDA provider runs eager kernels and copies
    through the host), else ONNX Runtime on the CPU (faster than torch on a CPU: see
    README's Performance section), else torch on the CPU.

    Args:
        weights_kind: ``"checkpoint"`` (also an in-memory model), ``"onnx"`` or ``"engine"``.

    Returns:
        ``"tensorrt"``, ``"onnxruntime"`` or ``"torch"``.
    """
    if weights_kind not in WEIGHTS_KINDS:
        raise ValueError(f"weights_kind must be one of {WEIGHTS_KINDS}, got {weights_kind!r}")
    if weights_kind == "engine" or _tensorrt_usable():
        return "tensorrt"
    if weights_kind == "onnx":
        return "onnxruntime"
    if torch_cuda_available():
        return "torch"
    return "onnxruntime" if ort_providers() else "torch"


def _model_digest(model: Any, source: Path | None) -> str:
    """Hash identifying the weights: the checkpoint file's bytes, or the tensors' bytes."""
    digest = hashlib.sha256()
    if source is not None:
        with source.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    else:
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def exported_onnx(
    model: Any, source: Path | None = None, *, exporter: str = "dynamo", fp16: bool = False
) -> Path:
    """The ONNX export of ``model`` from the cache, exporting it on first use.

    The cache key covers the weights (file hash or tensor bytes), the package version and
    the export settings, so changing any of them exports again.
    """
    from simplepose._version import __version__
    from simplepose.export.onnx import DEFAULT_OPSET, export_to_cache

    settings = f"{__version__}-{exporter}-{'fp16' if fp16 else 'fp32'}-opset{DEFAULT_OPSET}"
    key = hashlib.sha256(f"{_model_digest(model, source)}-{settings}".encode()).hexdigest()[:24]
    stem = source.stem if source is not None else "model"
    path = cache_dir() / "onnx" / f"{stem}-{key}.onnx"
    if not path.is_file():
        export_to_cache(model, path, what=stem, exporter=exporter, fp16=fp16)
    return path


def make_backend(
    weights: str | os.PathLike[str] | Any,
    backend: str = "auto",
    *,
    device: str | None = None,
    providers: list[str] | None = None,
    threads: int | None = None,
    exporter: str = "dynamo",
    precision: str | None = None,
    cuda_graphs: bool = True,
) -> Backend:
    """Build a backend for ``weights``.

    Args:
        weights: an ``IMHN``, a checkpoint (project or authors' format), an ``.onnx`` file, a
            TensorRT engine (``.engine`` / ``.plan``), a ready ``Backend`` (returned as it
            is), or a name (``released``, downloaded on first use; ``None`` means the
            default, see ``simplepose.model.hub.resolve_weights``). A bare file name is also
            looked up in the default weights folders.
        backend: ``auto`` (see ``auto_backend``: the GPU whenever one can be used),
            ``torch``, ``onnxruntime`` or ``tensorrt``. A checkpoint used with ONNX Runtime or
            TensorRT is exported on the fly and cached.
        device: torch device for the ``torch`` backend (default CUDA when available).
        providers: ONNX Runtime providers (names or ``tensorrt`` / ``cuda`` / ``cpu``).
        threads: CPU threads for ONNX Runtime (intra-op) and torch.
        exporter: ONNX exporter for on-the-fly exports (see ``export_onnx``).
        precision: torch backend arithmetic, ``fp32`` / ``fp16`` / ``bf16`` (default fp16 on
            CUDA, fp32 on CPU).
        cuda_graphs: torch backend on CUDA: replay the network from CUDA graphs.

    Raises:
        ValueError: unknown backend.
        InputError: weights the backend cannot run, a bad device or provider name.
        WeightsNotFoundError: the weights file does not exist.
        WeightsDownloadError: named weights are missing and could not be downloaded.
        BackendUnavailableError: the backend's package or device is missing (says what to
            install or use instead).
    """
    from simplepose.model import IMHN, load_checkpoint, resolve_weights

    if isinstance(weights, Backend):  # a ready backend (custom runtimes, tests)
        return weights
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    model: IMHN | None = weights if isinstance(weights, IMHN) else None
    path = None if model is not None else resolve_weights(weights)
    kind = "model"
    if path is not None:
        suffix = path.suffix.lower()
        kind = (
            "onnx"
            if suffix in _ONNX_SUFFIXES
            else "engine"
            if suffix in _ENGINE_SUFFIXES
            else "checkpoint"
        )
    if backend == "auto" and device and kind in ("model", "checkpoint"):
        backend = "torch"  # only the torch backend takes a device
    elif backend == "auto":
        backend = auto_backend("checkpoint" if kind == "model" else kind)
        _logger.info("backend auto -> %s (ONNX Runtime CUDA: %s)", backend, ort_cuda_available())
    if device and backend != "torch":
        raise InputError(f"--device applies to the torch backend only, not {backend}")
    if precision is not None and (
        backend == "onnxruntime" or (backend == "tensorrt" and precision == "bf16")
    ):
        raise InputError(
            f"--precision {precision} does not apply to the {backend} backend (the torch "
            "backend takes fp32/fp16/bf16, TensorRT fp32/fp16; ONNX files carry their own)"
        )

    def network() -> IMHN:
        assert path is not None or model is not None
        return model if model is not None else load_checkpoint(path)  # type: ignore[arg-type]

    if backend == "torch":
        if kind in ("onnx", "engine"):
            raise InputError(
                f"the torch backend needs a checkpoint, got {path}; use --backend "
                f"{'onnxruntime' if kind == 'onnx' else 'tensorrt'} (or auto) for this file"
            )
        if threads:
            import torch

            torch.set_num_threads(threads)
        return TorchBackend(
            network(),
            device=device,
            precision=precision,
            cuda_graphs=cuda_graphs,
            copy_model=model is not None,  # a model loaded here is ours to convert
        )
    if backend == "onnxruntime":
        if kind == "engine":
            raise InputError(
                f"ONNX Runtime cannot run a TensorRT engine ({path}); use --backend tensorrt"
            )
        # Check the providers before a first use's export, which takes a while.
        resolve_providers(providers, ort_providers())
        onnx_path = path if kind == "onnx" else exported_onnx(network(), path, exporter=exporter)
        return OnnxRuntimeBackend(onnx_path, providers=providers, threads=threads)  # type: ignore[arg-type]
    # tensorrt
    from simplepose.export.tensorrt import TensorRTBackend, build_engine, import_tensorrt

    import_tensorrt()
    if not torch_cuda_available():
        raise BackendUnavailableError(
            "the TensorRT backend needs a CUDA GPU and the CUDA build of torch; none is "
            "usable here (use --backend onnxruntime or torch)"
        )
    if kind == "engine":
        return TensorRTBackend(path)  # type: ignore[arg-type]
    onnx_path = path if kind == "onnx" else exported_onnx(network(), path, exporter=exporter)
    engine = build_engine(onnx_path, fp16=precision != "fp32")  # type: ignore[arg-type]
    return TensorRTBackend(engine)


@functools.lru_cache(maxsize=64)
def _resample_matrix(n_out: int, n_in: int, scale: float, offset: float) -> npt.NDArray[np.float32]:
    """(n_out, n_in) linear-interpolation weights sampling ``src = scale * dst + offset``.

    Positions outside [0, n_in - 1] take the border value (clamped). Cached: a video asks
    for the same few matrices every frame. Read-only; do not modify.
    """
    src = np.clip(scale * np.arange(n_out, dtype=np.float64) + offset, 0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    weights = np.zeros((n_out, n_in), np.float32)
    rows = np.arange(n_out)
    np.add.at(weights, (rows, lo), 1.0 - frac)
    np.add.at(weights, (rows, hi), frac)
    weights.flags.writeable = False
    return weights


def resample_heatmaps(heatmaps: Any, source: InputTransform, target: InputTransform) -> Any:
    """Resample heatmaps from ``source``'s stride-4 grid onto ``target``'s grid.

    Both grids cover the same image at different resize factors. Target cell j sits at
    input pixel ``4 j + 1.5``, i.e. at some image pixel, i.e. at a fractional source cell;
    the values there are bilinearly interpolated (separably, as two matrix products).

    Args:
        heatmaps: float32 (C, h, w) on ``source``'s grid: a numpy array, or a torch tensor
            (resampled on its device, e.g. the GPU).

    Returns:
        float32 (C, H_t / 4, W_t / 4) on ``target``'s grid, of the input's type.
    """
    stride = ModelConfig.STRIDE
    centre = (stride - 1) / 2  # cell i sits at input pixel stride * i + centre
    out_h, out_w = target.input_hw[0] // stride, target.input_hw[1] // stride
    specs = []
    for axis, n_out, n_in in ((1, out_h, heatmaps.shape[1]), (0, out_w, heatmaps.shape[2])):
        ratio = source.scale_xy[axis] / target.scale_xy[axis]
        # target cell -> target input px -> image px -> source input px -> source cell
        # src_px + 0.5 = (dst_px + 0.5) * ratio, with px = stride * cell + centre.
        offset = ((centre + 0.5) * ratio - 0.5 - centre) / stride
        specs.append((n_out, n_in, ratio, offset))
    if not isinstance(heatmaps, np.ndarray):  # a torch tensor: stay on its device
        import torch

        rows_t, cols_t = (_device_matrix(*spec, str(heatmaps.device)) for spec in specs)
        return torch.matmul(torch.matmul(rows_t, heatmaps), cols_t.T).contiguous()
    rows, cols = (_resample_matrix(*spec) for spec in specs)
    return np.ascontiguousarray(rows @ heatmaps @ cols.T, dtype=np.float32)


@functools.lru_cache(maxsize=64)
def _device_matrix(n_out: int, n_in: int, scale: float, offset: float, device: str) -> Any:
    """``_resample_matrix`` as a tensor on ``device``, uploaded once: a video needs the same
    few every frame, and a copy from pageable memory would wait for the device's queue."""
    import torch

    return torch.from_numpy(_resample_matrix(n_out, n_in, scale, offset).copy()).to(device)


def _mean(heatmaps: list[Any]) -> Any:
    """Average of same-shape heatmaps: numpy arrays, or torch tensors on their device."""
    if isinstance(heatmaps[0], np.ndarray):
        return np.mean(heatmaps, axis=0, dtype=np.float32)
    import torch

    return torch.stack(heatmaps).mean(dim=0)


class PoseEstimator:
    """Multi-person pose estimation on images: network backend + flip/multi-scale + grouping.

    Args:
        weights: an ``IMHN``, a checkpoint (project or the authors' ``PoseNet_52_epoch.pth``),
            an ``.onnx`` file, a TensorRT engine, or a name (``released``, downloaded on
            first use); ``None`` means the default weights (see ``make_backend``).
        backend: ``auto``, ``torch``, ``onnxruntime`` or ``tensorrt``.
        input_size: the image height (by default) becomes this many input pixels at scale 1.
        flip: average with the mirrored image (flip test).
        scales: multipliers of ``input_size``; ``InferenceConfig.AUTHORS_SCALES`` is the
            authors' set. Heatmaps are merged on the grid of scale 1.0 (or the first scale).
        decode: grouping thresholds.
        config: full inference settings; overrides ``input_size``, ``flip`` and ``scales``.
        **backend_options: ``device``, ``providers``, ``threads``, ``exporter``,
            ``precision``, ``cuda_graphs`` (see ``make_backend``).

    ``estimator(image)`` returns ``Poses`` in image pixels: keypoints (P, 17, 3)
    ``[x, y, score]`` in COCO order, scores (P,) descending.
    """

    def __init__(
        self,
        weights: str | os.PathLike[str] | Any,
        backend: str = "auto",
        input_size: int = 512,
        flip: bool = True,
        scales: tuple[float, ...] = (1.0,),
        decode: DecodeConfig = DecodeConfig(),  # noqa: B008 - frozen, immutable default
        *,
        config: InferenceConfig | None = None,
        **backend_options: Any,
    ) -> None:
        self.config = config or InferenceConfig(input_size=input_size, flip=flip, scales=scales)
        self.decode_config = decode
        self.backend = make_backend(weights, backend, **backend_options)
        scales = self.config.scales
        self._reference = scales.index(1.0) if 1.0 in scales else 0

    def __repr__(self) -> str:
        return f"PoseEstimator(backend={self.backend.name!r}, config={self.config})"

    @property
    def on_device(self) -> bool:
        """Whether frames stay on the backend's device from upload to merged heatmaps."""
        return isinstance(self.backend, DevicePath)

    def describe(self) -> str:
        """One line: backend, device, precision, CUDA graphs (printed by the commands)."""
        return describe_backend(self.backend)

    def network_heatmaps(self, padded: npt.NDArray[np.uint8]) -> Any:
        """Same-size padded images -> flip-merged heatmaps (N, 50, H/4, W/4) float32.

        Args:
            padded: uint8 (N, H, W, 3) BGR letterboxed images (H, W multiples of 64).

        Returns:
            A device tensor on the device path (see ``on_device``; bring it back with
            ``self.backend.to_host``), else a numpy array.
        """
        if isinstance(self.backend, DevicePath):
            return self.backend.device_heatmaps(padded, self.config.flip)
        n = padded.shape[0]
        batch = np.concatenate([padded, padded[:, :, ::-1]]) if self.config.flip else padded
        x = to_network_input(batch) if self.backend.input_format == FLOAT_NCHW else batch
        heatmaps = self.backend.infer(x)
        check_heatmaps(heatmaps, x.shape, self.backend.input_format)
        if self.config.flip:
            # Mirroring the whole padded input makes the mirrored grid align exactly:
            # cell i of the mirror is cell w - 1 - i of the original.
            mirrored = heatmaps[n:][:, _FLIP_CHANNELS, :, ::-1]
            heatmaps = (heatmaps[:n] + mirrored) * np.float32(0.5)
        return heatmaps

    def heatmaps(self, padded: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """``network_heatmaps`` brought back to the host: float32 numpy (N, 50, H/4, W/4).

        The network step of one frame as the pipeline runs it (upload, network, flip merge,
        download); ``simplepose bench`` times this.
        """
        heatmaps = self.network_heatmaps(padded)
        if isinstance(self.backend, DevicePath):
            return self.backend.to_host([heatmaps])[0]
        return np.asarray(heatmaps, np.float32)

    def infer_batch(self, images: list[npt.NDArray[Any]]) -> list[Inferred]:
        """The ``infer`` stage for several images; same-size inputs share a backend call.

        On the device path every step after the letterbox (conversion, flip, network, flip
        merge, multi-scale resampling and averaging) runs on the device, and the merged
        heatmaps of all images come back with one synchronisation.
        """
        images = [as_bgr_uint8(image) for image in images]
        outputs: list[list[tuple[Any, InputTransform]]] = [[] for _ in images]
        timings = {"preprocess": 0.0, "network": 0.0, "merge": 0.0}
        device = self.backend if isinstance(self.backend, DevicePath) else None
        with device.stream_context() if device is not None else contextlib.nullcontext():
            for scale in self.config.scales:
                start = time.perf_counter()
                boxed = [letterbox(image, self.config, scale) for image in images]
                groups: dict[tuple[int, int], list[int]] = {}
                for i, (_, transform) in enumerate(boxed):
                    groups.setdefault(transform.input_hw, []).append(i)
                timings["preprocess"] += time.perf_counter() - start
                start = time.perf_counter()
                for members in groups.values():
                    padded = np.stack([boxed[i][0] for i in members])
                    heatmaps = self.network_heatmaps(padded)
                    for row, i in enumerate(members):
                        outputs[i].append((heatmaps[row], boxed[i][1]))
                timings["network"] += time.perf_counter() - start
            start = time.perf_counter()
            merged: list[Any] = []
            targets = []
            for per_scale in outputs:
                target = per_scale[self._reference][1]
                resampled = [
                    heatmaps if source is target else resample_heatmaps(heatmaps, source, target)
                    for heatmaps, source in per_scale
                ]
                merged.append(resampled[0] if len(resampled) == 1 else _mean(resampled))
                targets.append(target)
        if device is not None:
            merged = device.to_host(merged)
        results = [
            Inferred(np.ascontiguousarray(heatmaps, np.float32), target)
            for heatmaps, target in zip(merged, targets)
        ]
        # On the device path the wait for the device falls here: "merge" includes it.
        timings["merge"] = time.perf_counter() - start
        for result in results:
            result.timings = {k: v / len(results) for k, v in timings.items()}
        return results

    def infer(self, image: npt.NDArray[Any]) -> Inferred:
        """Preprocess, run the network (with flip and scales) and merge: the ``infer`` stage.

        Args:
            image: BGR uint8 (H, W, 3); grayscale, BGRA, 16-bit and float images are
                converted (see ``as_bgr_uint8``).
        """
        return self.infer_batch([image])[0]

    def group(self, inferred: Inferred) -> Poses:
        """Decode merged heatmaps into poses in image pixels: the ``group`` stage."""
        from simplepose.grouping import decode

        resized_h = inferred.transform.resized_hw[0]
        poses = decode(inferred.heatmaps, self.decode_config, image_height=float(resized_h))
        return inferred.transform.poses_to_image(poses)

    def __call__(self, image: npt.NDArray[Any]) -> Poses:
        """Poses of the people in one image, in image pixels."""
        return self.group(self.infer(image))

    def batch(self, images: list[npt.NDArray[Any]]) -> list[Poses]:
        """Poses for several images (same-size images share network calls)."""
        if not isinstance(images, (list, tuple)):
            raise InputError(f"images must be a list of arrays, got {type(images).__name__}")
        return [self.group(inferred) for inferred in self.infer_batch(list(images))]
