"""The IMHN against the authors' released network (golden outputs) and its contracts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simplepose.config import ModelConfig
from simplepose.model import IMHN, build_model, load_checkpoint


@pytest.mark.parametrize("name", ["released", "small"])
def test_golden_parity_with_authors_network(name, golden_dir, golden_meta, authors_checkpoint):
    """Authors'-format checkpoint with the golden weights -> every stack and scale matches."""
    model = load_checkpoint(authors_checkpoint(name))
    meta = golden_meta[name]
    assert model.config.num_stacks == meta["nstack"]
    assert model.config.increase == meta["increase"]
    golden = np.load(golden_dir / f"imhn_{name}.npz")
    x = torch.from_numpy(golden["input_nhwc"]).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        outputs = model(x)
        predicted = model.predict(x)
    assert len(outputs) == meta["nstack"]
    for t, stack in enumerate(outputs):
        assert len(stack) == 5
        for s, out in enumerate(stack):
            expected = golden[f"stack{t}_scale{s}"]
            assert out.shape == expected.shape
            np.testing.assert_allclose(out.numpy(), expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(predicted, outputs[-1][0], rtol=0, atol=0)


def test_released_parameter_count():
    model = IMHN(ModelConfig.preset("released"))
    assert sum(p.numel() for p in model.parameters()) == 128_998_760


def test_output_shapes_for_every_preset_share_one_code_path():
    x = torch.rand(2, 3, 128, 192)
    for name in ("small", "tiny", "nano"):
        model = build_model(name).eval()
        with torch.no_grad():
            outputs = model(x)
        assert len(outputs) == model.config.num_stacks
        for s, out in enumerate(outputs[-1]):
            assert out.shape == (2, 50, 32 >> s, 48 >> s)
        assert model.predict(x).shape == (2, 50, 32, 48)


def test_predict_does_not_run_the_last_stacks_coarse_heads():
    model = build_model("nano").eval()
    calls: list[int] = []
    for s, head in enumerate(model.features[-1].before_regress):
        head.register_forward_hook(lambda *_, s=s: calls.append(s))
    with torch.no_grad():
        model.predict(torch.rand(1, 3, 64, 64))
    assert calls == [0]
    calls.clear()
    with torch.no_grad():
        model(torch.rand(1, 3, 64, 64))
    assert calls == [0, 1, 2, 3, 4]


def test_initialisation_gives_near_zero_outputs():
    # The authors' init (conv N(0, 0.001)) makes a fresh network predict ~0 everywhere.
    model = build_model("nano").eval()
    with torch.no_grad():
        out = model.predict(torch.rand(1, 3, 64, 64))
    assert out.abs().max() < 1e-2


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 3, 100, 128), "multiples of 64, got 100 x 128"),
        ((1, 3, 64, 96), "multiples of 64, got 64 x 96"),
        ((1, 4, 64, 64), r"shape \(N, 3, H, W\)"),
        ((3, 64, 64), r"shape \(N, 3, H, W\)"),
    ],
)
def test_bad_input_sizes_raise_clear_errors(shape, message):
    model = build_model("nano").eval()
    with pytest.raises(ValueError, match=message):
        model.predict(torch.rand(*shape))
    with pytest.raises(ValueError, match=message):
        model(torch.rand(*shape))


def test_integer_input_is_rejected():
    model = build_model("nano").eval()
    with pytest.raises(ValueError, match="floating-point"):
        model.predict(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
