"""Backends: the ``auto`` decision, the torch device path (CPU here, CUDA under ``gpu``), CUDA
graphs, ONNX Runtime I/O binding, batched files, and one-line errors for backend problems.

Comparisons run on one device: the device path against the NumPy path of the same backend
and precision; the ``gpu`` tests compare fp16 CUDA against fp32 with fp16 tolerances.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import trained_like

from simplepose.config import InferenceConfig, PipelineConfig
from simplepose.errors import BackendUnavailableError, InputError
from simplepose.inference import PoseEstimator, read_image
from simplepose.inference import estimator as estimator_module
from simplepose.inference.backends import (
    OnnxRuntimeBackend,
    TorchBackend,
    describe_backend,
    resolve_providers,
)
from simplepose.inference.estimator import auto_backend, make_backend
from simplepose.inference.preprocess import letterbox
from simplepose.model import build_model, save_checkpoint
from simplepose.pipeline import Pipeline, open_source

CUDA = torch.cuda.is_available()
VIDEO = "mmaction2_test_video_structuralize.mp4"


@pytest.fixture(scope="module")
def nano() -> torch.nn.Module:
    """The nano IMHN with structured deterministic weights, float32, on the CPU."""
    return trained_like(build_model("nano"))


@pytest.fixture(scope="module")
def photo(data_dir: Path) -> np.ndarray:
    return read_image(str(data_dir / "images" / "000000081988.jpg"))


class _PlainPath:
    """The same backend without its device path: the estimator takes the NumPy path."""

    def __init__(self, backend: TorchBackend) -> None:
        self.name, self.input_format, self.infer = backend.name, backend.input_format, backend.infer


# -- auto ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tensorrt", "cuda", "ort", "expected"),
    [
        # TensorRT and a GPU: TensorRT for every kind of weights.
        (True, True, ["CPUExecutionProvider"], ("tensorrt", "tensorrt", "tensorrt")),
        # A GPU seen by torch, no TensorRT: torch on CUDA for checkpoints; an ONNX file can
        # only run on ONNX Runtime (its CUDA provider when onnxruntime-gpu is there).
        (False, True, ["CPUExecutionProvider"], ("torch", "onnxruntime", "tensorrt")),
        (False, True, ["CUDAExecutionProvider", "CPUExecutionProvider"],
         ("torch", "onnxruntime", "tensorrt")),
        # No GPU: ONNX Runtime on the CPU (faster than torch there), else torch.
        (False, False, ["CPUExecutionProvider"], ("onnxruntime", "onnxruntime", "tensorrt")),
        (False, False, [], ("torch", "onnxruntime", "tensorrt")),
    ],
    ids=["tensorrt", "cuda", "cuda+ort-gpu", "cpu", "cpu-no-ort"],
)  # fmt: skip
def test_auto_backend_picks_the_gpu_whenever_one_can_be_used(
    monkeypatch, tensorrt, cuda, ort, expected
):
    monkeypatch.setattr(estimator_module, "_tensorrt_usable", lambda: tensorrt)
    monkeypatch.setattr(estimator_module, "torch_cuda_available", lambda: cuda)
    monkeypatch.setattr(estimator_module, "ort_providers", lambda: ort)
    kinds = ("checkpoint", "onnx", "engine")
    assert tuple(auto_backend(kind) for kind in kinds) == expected
    assert auto_backend() == expected[0]
    with pytest.raises(ValueError, match="weights_kind"):
        auto_backend("tflite")


def test_auto_on_this_machine_and_device_requests(nano, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMPLEPOSE_CACHE", str(tmp_path))  # the on-the-fly ONNX export
    expected = auto_backend("checkpoint")
    if expected == "tensorrt":
        pytest.skip("TensorRT is installed here: auto would build an engine (minutes)")
    assert expected == ("torch" if CUDA else "onnxruntime")
    backend = make_backend(nano, "auto", exporter="torchscript")
    assert backend.name == expected
    # Asking for a device means the torch backend.
    assert make_backend(nano, "auto", device="cpu").name == "torch"


# -- torch device path -----------------------------------------------------------------------


@pytest.mark.parametrize("flip", [False, True])
def test_device_path_equals_the_numpy_path_on_the_cpu(nano, photo, flip):
    backend = TorchBackend(nano, device="cpu")
    padded = np.stack([letterbox(photo, InferenceConfig(input_size=128))[0]] * 2)
    padded[1] = padded[1, ::-1]  # two different images in one batch
    on_device = backend.to_host([backend.device_heatmaps(padded, flip)])[0]
    numpy_path = PoseEstimator(_PlainPath(backend), config=InferenceConfig(flip=flip))
    expected = numpy_path.network_heatmaps(padded)
    assert on_device.shape == expected.shape == (2, 50, 32, padded.shape[2] // 4)
    np.testing.assert_array_equal(on_device, expected)


def test_estimator_device_path_with_flip_and_scales_matches_numpy(nano, photo):
    config = InferenceConfig(input_size=128, flip=True, scales=(1.0, 0.5, 1.5))
    device = PoseEstimator(TorchBackend(nano, device="cpu"), config=config)
    plain = PoseEstimator(_PlainPath(TorchBackend(nano, device="cpu")), config=config)
    assert device.on_device and not plain.on_device
    images = [photo, photo[:300, :400]]
    for a, b in zip(device.infer_batch(images), plain.infer_batch(images)):
        assert a.transform == b.transform and a.heatmaps.dtype == np.float32
        # The multi-scale resampling runs as torch matmuls instead of NumPy's: same maths.
        np.testing.assert_allclose(a.heatmaps, b.heatmaps, rtol=1e-5, atol=1e-6)
        assert set(a.timings) == {"preprocess", "network", "merge"}
    assert len(device(photo)) == len(plain(photo))


def test_torch_backend_options_and_description(nano):
    backend = TorchBackend(nano, device="cpu")
    assert backend.precision == "fp32" and not backend.cuda_graphs
    assert describe_backend(backend) == "backend torch, device cpu, precision fp32, CUDA graphs off"
    assert TorchBackend(nano, device="cpu", precision="bf16").dtype == torch.bfloat16
    with pytest.raises(InputError, match="precision"):
        TorchBackend(nano, device="cpu", precision="int8")
    with pytest.raises(ValueError, match=r"uint8 \(N, H, W, 3\)"):
        backend.device_heatmaps(np.zeros((1, 64, 64, 3), np.float32), flip=False)


@pytest.mark.parametrize(
    ("device", "error", "message"),
    [
        ("bogus", InputError, "not a torch device"),
        ("cuda:99", InputError if CUDA else BackendUnavailableError, "cuda:99"),
        ("meta", InputError, "cpu or cuda"),
    ],
)
def test_bad_devices(nano, device, error, message):
    with pytest.raises(error, match=message):
        TorchBackend(nano, device=device)


@pytest.mark.skipif(CUDA, reason="this machine has CUDA")
def test_cuda_device_without_a_gpu_names_the_fix(nano):
    with pytest.raises(BackendUnavailableError, match="--device cpu"):
        TorchBackend(nano, device="cuda")


# -- ONNX Runtime ----------------------------------------------------------------------------


def test_onnxruntime_io_binding_gives_the_same_heatmaps(nano, tmp_path, monkeypatch):
    """The GPU providers' I/O-binding path, run here on the CPU provider."""
    monkeypatch.setenv("SIMPLEPOSE_CACHE", str(tmp_path))
    path = estimator_module.exported_onnx(nano, exporter="torchscript")
    plain = OnnxRuntimeBackend(path)
    bound = OnnxRuntimeBackend(path, io_binding=True)
    assert not plain.io_binding and bound.io_binding and not bound.on_gpu
    assert "I/O binding on" in bound.describe() and "device cpu" in bound.describe()
    x = np.random.default_rng(0).random((2, 3, 128, 192), dtype=np.float32)
    np.testing.assert_array_equal(bound.infer(x), plain.infer(x))


def test_provider_names_and_availability():
    available = ["CPUExecutionProvider"]
    assert resolve_providers(None, available) == ["CPUExecutionProvider"]
    assert resolve_providers(["CPU"], available) == ["CPUExecutionProvider"]
    with pytest.raises(BackendUnavailableError, match="onnxruntime-gpu"):
        resolve_providers(["cuda"], available)
    with pytest.raises(InputError, match="unknown ONNX Runtime provider 'foo'"):
        resolve_providers(["foo"], available)


# -- batched files ---------------------------------------------------------------------------


def test_batched_file_gives_the_poses_of_batch_1_in_order(nano, data_dir):
    """--batch N: N frames per network call, same poses, frame order kept; a partial last
    batch (10 frames = 4 + 4 + 2) included."""
    from simplepose.config import DecodeConfig

    estimator = PoseEstimator(
        TorchBackend(nano, device="cpu"),
        config=InferenceConfig(input_size=128, flip=True),
        decode=DecodeConfig(min_mean_score=0.0, part_threshold=0.05),
    )
    results = {}
    for batch in (1, 4):
        config = PipelineConfig(batch=batch, max_frames=10, track=False)
        pipeline = Pipeline(open_source(str(data_dir / "videos" / VIDEO)), estimator, (), config)
        assert pipeline.batch == batch
        with pipeline:
            results[batch] = [(r.frame.index, r.poses) for r in pipeline]
        assert len(pipeline.stats.timings("infer")) == 10
    assert [i for i, _ in results[4]] == list(range(10))
    assert sum(len(p) for _, p in results[1]) > 0
    for (_, one), (_, four) in zip(results[1], results[4]):
        np.testing.assert_allclose(four.keypoints, one.keypoints, atol=1e-4)


def test_batch_validation(nano):
    with pytest.raises(ValueError, match="threaded"):
        PipelineConfig(batch=2, threaded=False)
    with pytest.raises(ValueError, match="batch"):
        PipelineConfig(batch=0)

    class NoBatch:
        def infer(self, image):
            return image

        def group(self, inferred):
            raise AssertionError

    frames = [np.zeros((64, 64, 3), np.uint8)] * 3
    from simplepose.pipeline.sources import IterableSource

    with pytest.raises(TypeError, match="infer_batch"):
        Pipeline(IterableSource(frames), NoBatch(), (), PipelineConfig(batch=2))
    live = Pipeline(IterableSource(frames, live=True), NoBatch(), (), PipelineConfig(batch=2))
    assert live.batch == 1  # live sources stay at batch 1


# -- command line ----------------------------------------------------------------------------


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simplepose", *args],
        capture_output=True, text=True, timeout=300, cwd=cwd,
        env={**os.environ, "SIMPLEPOSE_CACHE": str(cwd / "cache")},
    )  # fmt: skip


@pytest.fixture(scope="module")
def nano_checkpoint(nano, tmp_path_factory) -> Path:
    return save_checkpoint(nano, tmp_path_factory.mktemp("weights") / "nano.pth")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--backend", "tensorrt"], "TensorRT"),
        (["--backend", "onnxruntime", "--providers", "cuda"], "onnxruntime-gpu"),
        (["--backend", "onnxruntime", "--providers", "foo"], "unknown ONNX Runtime provider"),
        (["--device", "bogus"], "not a torch device"),
        (["--backend", "onnxruntime", "--device", "cpu"], "torch backend only"),
        (["--backend", "onnxruntime", "--precision", "fp16"], "does not apply"),
        (["--batch", "2", "--sequential"], "threaded"),
    ],
    ids=["tensorrt", "provider-cuda", "provider-foo", "device", "device-ort", "precision", "batch"],
)
def test_backend_problems_are_one_line_exit_2(tmp_path, data_dir, nano_checkpoint, options,
                                              message):  # fmt: skip
    if options[:2] == ["--backend", "tensorrt"] and CUDA:
        pytest.skip("a CUDA machine may have TensorRT")
    video = str(data_dir / "videos" / VIDEO)
    done = _run("run", video, "--weights", str(nano_checkpoint), *options, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.skipif(CUDA, reason="this machine has CUDA")
def test_cuda_device_on_a_cpu_build_is_one_line(tmp_path, data_dir, nano_checkpoint):
    done = _run("image", str(data_dir / "images" / "bus.jpg"), "--weights", str(nano_checkpoint),
                "--device", "cuda", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--device cpu" in done.stderr


def test_onnx_weights_with_the_torch_backend_name_the_fix(tmp_path, data_dir, nano, monkeypatch):
    monkeypatch.setenv("SIMPLEPOSE_CACHE", str(tmp_path))
    onnx = estimator_module.exported_onnx(nano, exporter="torchscript")
    done = _run("image", str(data_dir / "images" / "bus.jpg"), "--weights", str(onnx),
                "--backend", "torch", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--backend onnxruntime" in done.stderr


def test_run_prints_what_auto_chose(tmp_path, data_dir, nano_checkpoint):
    video = str(data_dir / "videos" / VIDEO)
    done = _run("run", video, "--weights", str(nano_checkpoint), "--backend", "torch",
                "--input-size", "64", "--max-frames", "3", "--batch", "2", "--no-progress",
                cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = "backend torch, device cuda" if CUDA else "backend torch, device cpu"
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("backend ")]
    assert line.startswith(expected)
    assert line.endswith("CUDA graphs on" if CUDA else "CUDA graphs off")


# -- CUDA (skipped without a GPU) ------------------------------------------------------------


def _padded(photo: np.ndarray, size: int = 256, count: int = 1) -> np.ndarray:
    padded, _ = letterbox(photo, InferenceConfig(input_size=size))
    return np.stack([padded] * count)


def _close(a: np.ndarray, b: np.ndarray, relative: float) -> None:
    """fp16 tolerance: the largest difference against the heatmaps' own range."""
    scale = float(np.abs(b).max())
    assert float(np.abs(a - b).max()) <= relative * scale + 1e-3, (np.abs(a - b).max(), scale)


@pytest.mark.gpu
@pytest.mark.parametrize("flip", [False, True])
def test_cuda_graph_replay_equals_eager(nano, photo, flip):
    graphs = TorchBackend(nano, device="cuda")
    eager = TorchBackend(nano, device="cuda", cuda_graphs=False)
    assert graphs.cuda_graphs and not eager.cuda_graphs
    assert graphs.describe().endswith("precision fp16, CUDA graphs on")
    padded = _padded(photo)
    expected = eager.to_host([eager.device_heatmaps(padded, flip)])[0]
    for _ in range(3):  # eager (first sight), capture + replay, replay
        got = graphs.to_host([graphs.device_heatmaps(padded, flip)])[0]
        _close(got, expected, 1e-3)
    assert graphs.graph_stats == {"graphs": 1, "captures": 1, "replays": 2}
    # A second shape gets its own graph; the first one stays.
    for _ in range(2):
        graphs.device_heatmaps(_padded(photo, 128), flip)
    assert graphs.graph_stats["graphs"] == 2


@pytest.mark.gpu
def test_gpu_flip_merge_equals_the_numpy_merge(nano, photo):
    """Same fp16 network: the merge on the GPU (channel permutation, mirror, average) against
    NumPy's merge of the same backend's two outputs."""
    backend = TorchBackend(nano, device="cuda")
    padded = _padded(photo, count=2)
    numpy_path = PoseEstimator(_PlainPath(backend), config=InferenceConfig(flip=True))
    expected = numpy_path.network_heatmaps(padded)
    for _ in range(3):
        _close(backend.to_host([backend.device_heatmaps(padded, True)])[0], expected, 2e-3)


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp16", "bf16", "fp32"])
def test_cuda_estimator_matches_the_cpu(nano, photo, precision):
    """The whole device path (upload, flip, network, merge, two scales resampled on the GPU,
    one download) against float32 on the CPU, with the precision's tolerance."""
    config = InferenceConfig(input_size=256, flip=True, scales=(1.0, 0.75))
    cpu = PoseEstimator(TorchBackend(nano, device="cpu"), config=config)
    cuda = PoseEstimator(TorchBackend(nano, device="cuda", precision=precision), config=config)
    tolerance = {"fp16": 1e-2, "bf16": 5e-2, "fp32": 1e-3}[precision]
    for _ in range(3):  # eager, capture, replay
        a, b = cuda.infer(photo), cpu.infer(photo)
        assert a.transform == b.transform
        _close(a.heatmaps, b.heatmaps, tolerance)
    # Batched images (one graph for batch 2) equal one at a time.
    batched = cuda.infer_batch([photo, photo])
    _close(batched[1].heatmaps, cuda.infer(photo).heatmaps, tolerance)


@pytest.mark.gpu
def test_failed_capture_falls_back_to_eager_with_one_warning(caplog):
    from simplepose.inference.cuda_graphs import GraphCache

    def needs_the_host(x: torch.Tensor) -> torch.Tensor:
        return x * float(x.sum().item())  # a host synchronisation: not capturable

    cache = GraphCache(needs_the_host)
    x = torch.ones(4, device="cuda")
    results = [cache(x) for _ in range(4)]
    assert not cache.enabled and len(cache) == 0
    assert all(torch.equal(r, x * 4) for r in results)
    assert sum("CUDA graph capture failed" in r.message for r in caplog.records) == 1


@pytest.mark.gpu
def test_cli_run_on_cuda_end_to_end(tmp_path, data_dir, nano_checkpoint):
    av = pytest.importorskip("av")

    out, tracks = tmp_path / "out.mp4", tmp_path / "tracks.jsonl"
    done = _run("run", str(data_dir / "videos" / VIDEO), "--weights", str(nano_checkpoint),
                "--flip", "--input-size", "256", "--batch", "4", "--max-frames", "30",
                "--output", str(out), "--json", str(tracks), "--no-progress",
                cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "backend torch, device cuda" in done.stderr and "CUDA graphs on" in done.stderr
    assert len(tracks.read_text().splitlines()) == 30
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 30


@pytest.mark.skipif(CUDA, reason="this machine has CUDA: the check would run for minutes")
def test_gpu_check_without_cuda_says_so_and_exits_0():
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0 and "no CUDA GPU here" in done.stdout
