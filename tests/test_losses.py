"""The focal L2 loss: hand-computed values, masking, weights, pooling and precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from simplepose.config import LossConfig
from simplepose.training import losses, targets

ONE_SCALE = {"scale_weights": (1.0,)}


def _hand_case() -> tuple[torch.Tensor, torch.Tensor]:
    """(pred, target), (1, 50, 2, 2): three non-trivial pixels, everything else 0 = 0."""
    pred = torch.zeros(1, 50, 2, 2)
    target = torch.zeros(1, 50, 2, 2)
    pred[0, 0, 0, 0], target[0, 0, 0, 0] = 0.5, 1.0  # part (weight 1), foreground
    pred[0, 30, 0, 1] = 0.2  # keypoint (weight 3), background (target 0)
    pred[0, 48, 1, 0], target[0, 48, 1, 0] = -0.5, 0.005  # person mask (0.1), bg (< 0.01)
    return pred, target


# Per pixel: weight * factor * (S - G)^2, written out by hand.
_L2 = 1 * 0.25 + 3 * 0.04 + 0.1 * 0.255025
_RELEASED = 1 * 0.5 * 0.25 + 3 * 0.2 * 0.04 + 0.1 * 0.5 * 0.255025
_PAPER = 1 * 0.6**2 * 0.25 + 3 * 0.22**2 * 0.04 + 0.1 * 0.48**2 * 0.255025


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("l2", _L2), ("focal_released", _RELEASED), ("focal_paper", _PAPER)],
)
def test_hand_computed_values(kind: str, expected: float) -> None:
    pred, target = _hand_case()
    config = LossConfig(kind=kind, **ONE_SCALE)
    result = losses.focal_l2_loss([[pred]], [target], None, config)
    assert result.loss.dtype == torch.float32
    assert result.loss.item() == pytest.approx(expected, rel=1e-6)
    assert result.components.shape == (1, 1)
    assert result.components[0, 0].item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("kind", ["l2", "focal_released", "focal_paper"])
def test_batch_stack_and_scale_weighting(kind: str) -> None:
    pred, target = _hand_case()
    one = losses.focal_l2_loss([[pred]], [target], None, LossConfig(kind=kind, **ONE_SCALE))
    # Batch of two identical samples: the sum doubles, the division by the batch undoes it.
    two = losses.focal_l2_loss(
        [[pred.repeat(2, 1, 1, 1)]],
        [target.repeat(2, 1, 1, 1)],
        None,
        LossConfig(kind=kind, **ONE_SCALE),
    )
    assert two.loss.item() == pytest.approx(one.loss.item(), rel=1e-6)
    # Two stacks weighted (1, 3); the second predicts perfectly: total = (1 L + 3 * 0) / 4.
    stacks = LossConfig(kind=kind, scale_weights=(1.0,), stack_weights=(1.0, 3.0))
    result = losses.focal_l2_loss([[pred], [target.clone()]], [target], None, stacks)
    assert result.loss.item() == pytest.approx(one.loss.item() / 4, rel=1e-6)
    assert result.components[1, 0].item() == 0
    # Two scales with weights (0.1, 0.2); the coarse one (1 x 1) has a hand-made error.
    coarse_pred = torch.zeros(1, 50, 1, 1)
    coarse_pred[0, 1] = 0.3  # part, background: L2 0.09, released 0.3 * 0.09, paper 0.32^2 * 0.09
    coarse = {"l2": 0.09, "focal_released": 0.027, "focal_paper": 0.32**2 * 0.09}[kind]
    scales = LossConfig(kind=kind, scale_weights=(0.1, 0.2))
    result = losses.focal_l2_loss(
        [[pred, coarse_pred]], [target, torch.zeros(1, 50, 1, 1)], None, scales
    )
    expected = (0.1 * one.loss.item() + 0.2 * coarse) / 0.3
    assert result.loss.item() == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(result.components.numpy(), [[one.loss.item(), coarse]], rtol=1e-6)


def test_released_defaults() -> None:
    config = LossConfig()
    assert config.kind == "focal_released"
    weights = losses.channel_weights(config)
    assert weights[:30].eq(1).all()
    assert weights[30:48].eq(3).all()
    assert weights[48].item() == pytest.approx(0.1)
    assert weights[49].item() == 1
    assert config.scale_weights == (0.1, 0.2, 0.4, 1.6, 6.4)


def _real_targets(batch: int = 2) -> torch.Tensor:
    joints = np.zeros((1, 18, 3), np.float32)
    joints[0, :, 0] = np.linspace(40, 220, 18)
    joints[0, :, 1] = np.linspace(60, 200, 18) ** 1.1
    joints[0, :, 2] = 1
    heatmaps = targets.encode(joints, (256, 256))
    return torch.from_numpy(heatmaps)[None].repeat(batch, 1, 1, 1)


@pytest.mark.parametrize("kind", ["l2", "focal_released", "focal_paper"])
def test_zero_when_prediction_equals_target(kind: str) -> None:
    target = _real_targets()
    pyramid = targets.multiscale(target)
    outputs = [[p.clone() for p in pyramid] for _ in range(2)]
    mask = torch.ones(2, 1, 64, 64)
    for given_targets in (pyramid, target):  # the full pyramid, or the stride-4 map pooled inside
        result = losses.focal_l2_loss(outputs, given_targets, mask, LossConfig(kind=kind))
        assert result.loss.item() == pytest.approx(0.0, abs=1e-9)
    # ... and positive as soon as one stack is off.
    outputs[1][3] = outputs[1][3] + 0.1
    assert losses.focal_l2_loss(outputs, target, mask, LossConfig(kind=kind)).loss.item() > 0


def test_pooling_inside_matches_given_pyramid() -> None:
    target = _real_targets()
    rng = torch.Generator().manual_seed(0)
    outputs = [[torch.rand(2, 50, 64 >> k, 64 >> k, generator=rng) for k in range(5)]]
    inside = losses.focal_l2_loss(outputs, target)
    given_pyramid = losses.focal_l2_loss(outputs, targets.multiscale(target))
    assert inside.loss.item() == pytest.approx(given_pyramid.loss.item(), rel=1e-5)


def test_masked_pixels_contribute_nothing() -> None:
    target = _real_targets(batch=1)
    rng = torch.Generator().manual_seed(1)
    outputs = [[torch.rand(1, 50, 64 >> k, 64 >> k, generator=rng) for k in range(5)]]
    mask = torch.ones(1, 1, 64, 64)
    mask[..., :32, :] = 0  # ignore the top half (whole cells at every scale)
    before = losses.focal_l2_loss(outputs, target, mask)
    changed = [[o.clone() for o in outputs[0]]]
    for o in changed[0]:
        o[..., : o.shape[-2] // 2, :] += 5.0  # any change in the ignored half
    after = losses.focal_l2_loss(changed, target, mask)
    assert after.loss.item() == pytest.approx(before.loss.item(), rel=1e-6)
    # Without the mask the change shows.
    assert losses.focal_l2_loss(changed, target).loss.item() > before.loss.item() * 2
    # A mask of zeros gives zero loss; the gradient exists and is finite.
    outputs_grad = [[o.clone().requires_grad_() for o in outputs[0]]]
    zero = losses.focal_l2_loss(outputs_grad, target, torch.zeros(1, 1, 64, 64))
    assert zero.loss.item() == 0
    zero.loss.backward()
    assert all(torch.isfinite(o.grad).all() for o in outputs_grad[0])


def test_mask_resizing_threshold() -> None:
    mask = torch.ones(1, 1, 4, 4)
    mask[..., 0, 0] = 0
    mask[..., 1, 1] = 0.6
    half = losses.resize_mask(mask, (2, 2), threshold=0.5)
    # Bilinear with half-pixel centres = 2 x 2 mean here: (0 + 1 + 1 + 0.6) / 4 = 0.65, kept.
    assert half[0, 0, 0, 0].item() == pytest.approx(0.65)
    mask[..., 0, 1] = 0
    assert losses.resize_mask(mask, (2, 2))[0, 0, 0, 0].item() == 0  # 0.4 < 0.5 -> 0
    same = losses.resize_mask(mask, (4, 4))
    assert same[0, 0, 1, 1].item() == pytest.approx(0.6)  # >= 0.5 kept as it is
    assert same[0, 0, 0, 0].item() == 0


@settings(max_examples=60, deadline=None)
@given(
    target=st.floats(0.01, 1.0),
    easy=st.floats(0.0, 1.0),
    hard=st.floats(0.0, 1.0),
    kind=st.sampled_from(["focal_released", "focal_paper"]),
)
def test_focal_factor_down_weights_easy_pixels(
    target: float, easy: float, hard: float, kind: str
) -> None:
    """Relative to plain L2, a foreground pixel predicted closer to 1 weighs less, and a
    background pixel predicted closer to 0 weighs less."""
    if abs(easy - hard) < 1e-3:
        return
    easy, hard = max(easy, hard), min(easy, hard)  # foreground: nearer 1 is easier

    def ratio(pred: float, g: float) -> float:
        p = torch.full((1, 50, 1, 1), pred)
        t = torch.full((1, 50, 1, 1), g)
        focal = losses.focal_l2_loss([[p]], [t], None, LossConfig(kind=kind, **ONE_SCALE))
        plain = losses.focal_l2_loss([[p]], [t], None, LossConfig(kind="l2", **ONE_SCALE))
        if plain.loss.item() == 0:
            return float("nan")
        return focal.loss.item() / plain.loss.item()

    fg_easy, fg_hard = ratio(easy, target), ratio(hard, target)
    if not np.isnan(fg_easy) and not np.isnan(fg_hard):
        assert fg_easy < fg_hard
    bg_easy, bg_hard = ratio(1 - easy, 0.0), ratio(1 - hard, 0.0)  # background: nearer 0
    if not np.isnan(bg_easy) and not np.isnan(bg_hard):
        assert bg_easy < bg_hard


def test_float32_under_autocast() -> None:
    torch.manual_seed(0)
    target = _real_targets(batch=1)
    conv = torch.nn.Conv2d(50, 50, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = [[conv(p) for p in targets.multiscale(target)]]
        assert outputs[0][0].dtype == torch.bfloat16
        result = losses.FocalL2Loss()(outputs, target, torch.ones(1, 1, 64, 64))
    assert result.loss.dtype == torch.float32
    assert result.components.dtype == torch.float32
    reference = losses.focal_l2_loss([[o.float() for o in outputs[0]]], target)
    assert result.loss.item() == pytest.approx(reference.loss.item(), rel=1e-6)
    result.loss.backward()
    assert conv.weight.grad is not None
    assert torch.isfinite(conv.weight.grad).all()


@pytest.mark.parametrize(
    ("outputs", "given", "config", "match"),
    [
        (
            [[torch.zeros(1, 50, 4, 4)]],
            [torch.zeros(1, 50, 2, 2)],
            LossConfig(**ONE_SCALE),
            "shapes",
        ),
        ([[torch.zeros(1, 50, 4, 4)]], torch.zeros(1, 50, 4, 4), LossConfig(), "scale_weights"),
        (
            [[torch.zeros(1, 50, 4, 4)]],
            torch.zeros(1, 50, 4, 4),
            LossConfig(scale_weights=(1.0,), stack_weights=(1.0, 1.0)),
            "stack_weights",
        ),
        ([[torch.zeros(1, 49, 4, 4)]], torch.zeros(1, 49, 4, 4), LossConfig(**ONE_SCALE), "50"),
    ],
)
def test_rejects_inconsistent_inputs(outputs, given, config, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        losses.focal_l2_loss(outputs, given, None, config)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="kind"):
        LossConfig(kind="focal")
    with pytest.raises(ValueError, match="scale_weights"):
        LossConfig(scale_weights=())


def test_floor_regions_are_foreground_at_every_scale() -> None:
    # Part floors are exactly 0.01 (the threshold); pooled, they must stay foreground.
    target = torch.full((1, 50, 64, 64), 0.01)
    outputs = [[torch.full((1, 50, 64 >> k, 64 >> k), 0.2) for k in range(5)]]
    result = losses.focal_l2_loss(outputs, target, None, LossConfig(kind="focal_released"))
    channel_sum = 30 + 18 * 3 + 0.1 + 1
    lam = (0.1, 0.2, 0.4, 1.6, 6.4)
    per_scale = [channel_sum * (64 >> k) ** 2 * 0.8 * 0.19**2 for k in range(5)]  # fg: |1 - S|
    expected = sum(w * v for w, v in zip(lam, per_scale)) / sum(lam)
    assert result.loss.item() == pytest.approx(expected, rel=1e-5)
