"""ONNX export and the ONNX Runtime backend against PyTorch (and TensorRT on a GPU)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from conftest import trained_like

from simplepose.config import ModelConfig
from simplepose.errors import InputError
from simplepose.export import export_onnx, read_metadata
from simplepose.inference.backends import (
    OnnxRuntimeBackend,
    TorchBackend,
    resolve_providers,
)
from simplepose.model import build_model, load_checkpoint, save_checkpoint
from simplepose.model.imhn import IMHN


@pytest.fixture(scope="module")
def released(authors_checkpoint):
    return load_checkpoint(authors_checkpoint("released"))


@pytest.fixture(scope="module")
def released_onnx(released, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "released.onnx"
    return export_onnx(released, path, input_size=128, exporter="torchscript")


@pytest.fixture(scope="module")
def small_model():
    return trained_like(build_model("small"))


@pytest.fixture(scope="module")
def small_onnx_dynamo(small_model, tmp_path_factory):
    # The default exporter (torch.export-based), once, on a 2-stack model.
    return export_onnx(small_model, tmp_path_factory.mktemp("onnx") / "small.onnx", input_size=128)


def _parity(model, onnx_path, shape, atol=1e-4):
    x = np.random.default_rng(sum(shape)).random(shape, dtype=np.float32)
    expected = TorchBackend(model, device="cpu").infer(x)
    actual = OnnxRuntimeBackend(onnx_path, providers=["cpu"]).infer(x)
    assert actual.shape == expected.shape == (shape[0], 50, shape[2] // 4, shape[3] // 4)
    assert np.abs(expected).max() > 0.05  # the comparison is not between near-zero maps
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=0)


@pytest.mark.parametrize("batch", [1, 2])
def test_released_onnx_matches_torch_at_128(released, released_onnx, batch):
    _parity(released, released_onnx, (batch, 3, 128, 128))


@pytest.mark.parametrize(
    ("batch", "hw"), [(1, (128, 128)), (2, (128, 128)), (1, (192, 256)), (2, (192, 256))]
)
def test_one_dynamic_onnx_file_serves_two_sizes(small_model, small_onnx_dynamo, batch, hw):
    _parity(small_model, small_onnx_dynamo, (batch, 3, *hw))


def test_exported_model_is_checked_and_tagged(small_onnx_dynamo, small_model):
    proto = onnx.load(str(small_onnx_dynamo))
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    meta = read_metadata(small_onnx_dynamo)
    assert ModelConfig.from_dict(json.loads(meta["config"])) == small_model.config
    assert meta["input_format"] == "float32_nchw" and meta["precision"] == "fp32"
    assert "simplepose_version" in meta
    # only the last stack's finest output: one output, 50 channels
    assert len(proto.graph.output) == 1
    assert proto.graph.output[0].type.tensor_type.shape.dim[1].dim_value == 50


def test_uint8_input_casts_inside_the_graph(tmp_path):
    model = trained_like(build_model("nano"))
    path = export_onnx(
        model, tmp_path / "u8.onnx", input_size=64, uint8_input=True, exporter="torchscript"
    )
    backend = OnnxRuntimeBackend(path, providers=["cpu"])
    assert backend.input_format == "uint8_nhwc"
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 128, 3), dtype=np.uint8)
    expected = TorchBackend(model, device="cpu").infer(
        images.transpose(0, 3, 1, 2) / np.float32(255)
    )
    np.testing.assert_allclose(backend.infer(images), expected, atol=1e-4, rtol=0)


def test_fp16_export_stays_close(tmp_path):
    model = trained_like(build_model("nano"))
    path = export_onnx(
        model, tmp_path / "fp16.onnx", input_size=64, fp16=True, exporter="torchscript"
    )
    assert read_metadata(path)["precision"] == "fp16"
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    expected = TorchBackend(model, device="cpu").infer(x)
    actual = OnnxRuntimeBackend(path, providers=["cpu"]).infer(x)
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, atol=2e-2, rtol=0)


def test_static_export_fixes_height_and_width(tmp_path):
    model = trained_like(build_model("nano"))
    path = export_onnx(
        model, tmp_path / "static.onnx", input_size=64, dynamic=False, exporter="torchscript"
    )
    backend = OnnxRuntimeBackend(path, providers=["cpu"])
    assert backend.infer(np.zeros((2, 3, 64, 64), np.float32)).shape == (2, 50, 16, 16)
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        backend.infer(np.zeros((1, 3, 128, 64), np.float32))


def test_wrong_onnx_models_are_rejected(tmp_path):
    other = IMHN(ModelConfig(num_stacks=1, base_channels=64, increase=16, num_outputs=17))
    path = export_onnx(other, tmp_path / "other.onnx", input_size=64, exporter="torchscript")
    with pytest.raises(InputError, match="expected 3 input channels and 50 output channels"):
        OnnxRuntimeBackend(path)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a loadable ONNX model"):
        OnnxRuntimeBackend(junk)
    with pytest.raises(FileNotFoundError):
        OnnxRuntimeBackend(tmp_path / "missing.onnx")


def test_missing_provider_says_what_to_install():
    available = ["CPUExecutionProvider"]
    with pytest.raises(ImportError, match="onnxruntime-gpu"):
        resolve_providers(["cuda"], available)
    with pytest.raises(ImportError, match="tensorrt"):
        resolve_providers(["TensorrtExecutionProvider"], available)
    assert resolve_providers(None, available) == ["CPUExecutionProvider"]
    full = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers(None, full[::-1]) == full  # auto order: TensorRT, CUDA, CPU


def test_export_argument_checks(tmp_path):
    model = build_model("nano")
    with pytest.raises(ValueError, match="opset must be >= 17"):
        export_onnx(model, tmp_path / "a.onnx", opset=13)
    with pytest.raises(ValueError, match="multiple of 64"):
        export_onnx(model, tmp_path / "a.onnx", input_size=100)
    with pytest.raises(ValueError, match="exporter must be one of"):
        export_onnx(model, tmp_path / "a.onnx", exporter="tf")
    assert not (tmp_path / "a.onnx").exists()


def test_cli_export(tmp_path):
    model = trained_like(build_model("nano"))
    weights = save_checkpoint(model, tmp_path / "nano.pth")
    out = tmp_path / "nano.onnx"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "simplepose",
            "export",
            "--weights",
            str(weights),
            "--output",
            str(out),
            "--input-size",
            "64",
            "--exporter",
            "torchscript",
            "--uint8-input",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert read_metadata(out)["input_format"] == "uint8_nhwc"


@pytest.mark.gpu
def test_tensorrt_engine_matches_torch(tmp_path):
    pytest.importorskip("tensorrt")
    from simplepose.export.tensorrt import EngineProfile, TensorRTBackend, build_engine

    model = trained_like(build_model("tiny"))
    onnx_path = export_onnx(model, tmp_path / "tiny.onnx", input_size=128, exporter="torchscript")
    engine = build_engine(
        onnx_path,
        tmp_path / "tiny.engine",
        fp16=False,
        profile=EngineProfile(opt_hw=(128, 128), max_hw=(256, 256)),
    )
    backend = TensorRTBackend(engine)
    x = np.random.default_rng(0).random((2, 3, 128, 192), dtype=np.float32)
    expected = TorchBackend(model, device="cpu").infer(x)
    np.testing.assert_allclose(backend.infer(x), expected, atol=1e-3, rtol=0)
