"""Loading every accepted checkpoint format, inferring the architecture, and failing clearly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from simplepose.config import ModelConfig
from simplepose.errors import CheckpointError, WeightsNotFoundError
from simplepose.model import build_model, load_checkpoint, resolve_weights, save_checkpoint


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    for p in model.parameters():  # non-trivial weights so a wrong mapping shows
        p.data.normal_(0, 0.05)
    return model


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_project_format_round_trip(tiny_model, tmp_path):
    path = save_checkpoint(tiny_model, tmp_path / "sub" / "model.pth")
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "simplepose" and raw["config"] == tiny_model.config.to_dict()
    assert "version" in raw
    loaded = load_checkpoint(path)
    assert loaded.config == tiny_model.config and not loaded.training
    assert _same_weights(loaded, tiny_model)


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(
            lambda sd: {"weights": {"posenet." + k: v for k, v in sd.items()}}, id="authors"
        ),
        pytest.param(
            lambda sd: {"weights": {"module.posenet." + k: v for k, v in sd.items()}, "epoch": 52},
            id="authors-ddp",
        ),
        pytest.param(lambda sd: dict(sd), id="bare-state-dict"),
        pytest.param(lambda sd: {"state_dict": dict(sd)}, id="state-dict-key"),
    ],
)
def test_foreign_formats_load_and_infer_the_architecture(tiny_model, tmp_path, wrap):
    path = tmp_path / "foreign.pth"
    torch.save(wrap(tiny_model.state_dict()), path)
    loaded = load_checkpoint(path)
    assert loaded.config == tiny_model.config  # inferred from shapes: stacks, widths
    assert _same_weights(loaded, tiny_model)


def test_old_pickle_formats_load(tiny_model, tmp_path):
    # Pre-1.6 (non-zip) serialization, with a numpy scalar next to the weights, as the
    # authors' training script stored its loss.
    path = tmp_path / "legacy.pth"
    weights = {"posenet." + k: v for k, v in tiny_model.state_dict().items()}
    torch.save(
        {"weights": weights, "train_loss": np.float64(1.5)},
        path,
        _use_new_zipfile_serialization=False,
    )
    assert _same_weights(load_checkpoint(path), tiny_model)


def test_half_precision_weights_become_float32(tiny_model, tmp_path):
    path = tmp_path / "half.pth"
    torch.save(
        {
            "weights": {
                k: v.half() if v.is_floating_point() else v
                for k, v in tiny_model.state_dict().items()
            }
        },
        path,
    )
    loaded = load_checkpoint(path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())


def test_untrusted_pickle_is_refused_with_advice(tmp_path):
    import argparse

    path = tmp_path / "custom.pth"
    torch.save({"weights": {}, "obj": argparse.Namespace(lr=1)}, path)
    with pytest.raises(CheckpointError, match="trusted=True"):
        load_checkpoint(path)


def test_other_architecture_names_the_mismatched_keys(tiny_model, tmp_path):
    path = save_checkpoint(tiny_model, tmp_path / "tiny.pth")
    with pytest.raises(CheckpointError, match=r"wrong shape: .*expected") as info:
        load_checkpoint(path, config=ModelConfig.preset("nano"))
    assert "unexpected" in str(info.value)  # tiny has 2 stacks, nano 1


def test_missing_keys_are_named(tiny_model, tmp_path):
    state = dict(tiny_model.state_dict())
    del state["outs.1.0.conv.bias"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"1 missing: outs\.1\.0\.conv\.bias"):
        load_checkpoint(path)


def test_truncated_file_is_a_clear_error(tiny_model, tmp_path):
    path = save_checkpoint(tiny_model, tmp_path / "full.pth")
    cut = tmp_path / "cut.pth"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(cut)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a checkpoint", "not a readable"),
        (b"", "not a readable"),
    ],
)
def test_non_checkpoint_files(tmp_path, content, message):
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_checkpoint_without_tensors_or_of_another_network(tmp_path):
    path = tmp_path / "empty.pth"
    torch.save({"weights": {"epoch": 3}}, path)
    with pytest.raises(CheckpointError, match="no tensors"):
        load_checkpoint(path)
    torch.save(torch.nn.Linear(3, 4).state_dict(), path)
    with pytest.raises(CheckpointError, match="do not look like an IMHN"):
        load_checkpoint(path)
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="does not hold a dict"):
        load_checkpoint(path)


def test_missing_path(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError for library callers
        load_checkpoint(tmp_path / "nope.pth")


def test_resolve_weights_search_and_advice(tmp_path, monkeypatch):
    # Names and downloads are tested in test_hub.py; nothing here touches the network.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SIMPLEPOSE_WEIGHTS", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    with pytest.raises(WeightsNotFoundError, match=r"or a known name \(released\)"):
        resolve_weights("PoseNet_52_epoch.pth")
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "PoseNet_52_epoch.pth").write_bytes(b"x")
    monkeypatch.setenv("SIMPLEPOSE_WEIGHTS", str(folder))
    assert resolve_weights("PoseNet_52_epoch.pth") == folder / "PoseNet_52_epoch.pth"
    # The default (released) is that cached file, which is checked before use.
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        resolve_weights(None)
    with pytest.raises(WeightsNotFoundError, match="is a folder"):
        resolve_weights(folder)


def test_interrupted_save_leaves_no_partial_file(tiny_model, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tiny_model, tmp_path / "model.pth")
    assert list(tmp_path.iterdir()) == []


def _legacy_cut(tmp_path: Path) -> Path:
    whole = tmp_path / "legacy.pth"
    torch.save({"weights": {"a": torch.ones(2)}}, whole, _use_new_zipfile_serialization=False)
    cut = tmp_path / "legacy_cut.pth"
    cut.write_bytes(whole.read_bytes()[:178])  # ends inside a class name
    return cut


@pytest.mark.parametrize(
    ("make", "message"),
    [
        # Random bytes: torch.load's message advises weights_only=False; ours must not.
        (lambda t: _write(t / "random.pth", os.urandom(1000)), "neither PyTorch's zip format"),
        (lambda t: _write(t / "empty.pth", b""), "the file is empty"),
        (_legacy_cut, r"\(truncated or corrupt\?\): a damaged or foreign pickle"),
        (lambda t: _write(t / "model.engine", b"\x00" * 64), "is a TensorRT engine, not a Py"),
    ],
)
def test_messages_say_what_the_file_is_and_never_advise_unsafe_loading(
    tmp_path: Path, make, message: str
) -> None:
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(make(tmp_path))
    text = str(info.value)
    assert "weights_only" not in text and "trust" not in text
    assert len(text.splitlines()) == 1


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ["model.onnx", "renamed.pth"])
def test_an_onnx_file_is_called_an_onnx_model(tmp_path: Path, capsys, name: str) -> None:
    from simplepose import cli
    from simplepose.export.onnx import export_onnx

    onnx_path = export_onnx(build_model("nano"), tmp_path / name, exporter="torchscript")
    with pytest.raises(CheckpointError, match="is an ONNX model, not a PyTorch checkpoint"):
        load_checkpoint(onnx_path)
    code = cli.main(["export", "--weights", str(onnx_path), "--output", str(tmp_path / "o.onnx")])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"simplepose export: error: {onnx_path} is an ONNX model, not a PyTorch checkpoint: "
        "run it with --backend onnxruntime (or tensorrt); export and convert need the "
        "checkpoint it was made from"
    ]
