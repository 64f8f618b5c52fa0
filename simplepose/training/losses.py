"""The training loss: masked, channel-weighted (focal) L2 over all stacks and scales.

Spec section 4. For stack t, scale s, target G (pooled to that scale), prediction S, ignore
mask M (resized to the scale) and channel weight W_c::

    L[t, s] = sum over batch, channels, cells of  M * W_c * F * (S - G)^2

with the focal factor F (``LossConfig.kind``)::

    "l2"              F = 1
    "focal_released"  F = |1 - S| on foreground (G >= 0.01), |S| on background
    "focal_paper"     F = |1 - S + alpha|^gamma on foreground, |S + beta|^gamma on background

and the total ``sum_t w_t sum_s lambda_s L[t, s] / (sum(lambda) * sum(w) * N)``. Everything is
computed in float32 with autocast disabled, whatever precision the network ran in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch alias)
from torch import Tensor, nn

from simplepose import skeleton
from simplepose.config import LossConfig

__all__ = [
    "FocalL2Loss",
    "LossResult",
    "channel_weights",
    "focal_l2_loss",
    "pool_targets",
    "resize_mask",
]


#: Relative tolerance of the foreground test (see ``_focal_factor``).
_FOREGROUND_RTOL = 1e-4


class LossResult(NamedTuple):
    """Loss value and its parts.

    Attributes:
        loss: scalar float32 tensor (differentiable): the weighted total divided by the batch
            size.
        components: (T, S) float32, detached: ``L[t, s] / N`` per stack and scale, before the
            stack and scale weights (for logging).
    """

    loss: Tensor
    components: Tensor


def channel_weights(config: LossConfig, num_channels: int = skeleton.NUM_CHANNELS) -> Tensor:
    """Per-channel weights: 1 for parts and channel 49, ``keypoint_weight`` for 30-47,
    ``person_mask_weight`` for 48.

    Returns:
        (C,) float32 tensor on the CPU.
    """
    if num_channels != skeleton.NUM_CHANNELS:
        raise ValueError(
            f"the loss expects {skeleton.NUM_CHANNELS} channels (see simplepose.skeleton), "
            f"got {num_channels}"
        )
    weights = torch.ones(num_channels, dtype=torch.float32)
    weights[skeleton.KEYPOINT_CHANNELS] = config.keypoint_weight
    weights[skeleton.PERSON_MASK_CHANNEL] = config.person_mask_weight
    return weights


def pool_targets(targets: Tensor, sizes: Sequence[tuple[int, int]]) -> list[Tensor]:
    """Adaptive-average-pool stride-4 targets to each output size (as the released loss does).

    Args:
        targets: (N, C, H, W) float tensor at the finest output scale.
        sizes: (h, w) of each scale, finest first.

    Returns:
        One (N, C, h, w) tensor per size; a size equal to (H, W) returns ``targets`` itself.
    """
    if targets.ndim != 4:
        raise ValueError(f"targets must have shape (N, C, H, W), got {tuple(targets.shape)}")
    return [
        targets
        if tuple(size) == tuple(targets.shape[-2:])
        else F.adaptive_avg_pool2d(targets, size)
        for size in sizes
    ]


def resize_mask(mask: Tensor, size: tuple[int, int], threshold: float = 0.5) -> Tensor:
    """Bilinearly resize an ignore mask to one scale; values below ``threshold`` become 0.

    Args:
        mask: (N, 1, H, W) float in [0, 1], 1 = use the loss, 0 = ignore.
        size: (h, w) of the scale.
        threshold: values ``< threshold`` are set to 0, the others kept as they are.

    Returns:
        (N, 1, h, w) float32.
    """
    if tuple(mask.shape[-2:]) != tuple(size):
        mask = F.interpolate(mask, size=size, mode="bilinear", align_corners=False)
    return torch.where(mask < threshold, torch.zeros_like(mask), mask)


def _focal_factor(pred: Tensor, target: Tensor, config: LossConfig) -> Tensor | None:
    if config.kind == "l2":
        return None
    # Floor-only regions of the part maps hold exactly 0.01 (= the threshold) at stride 4, but
    # their pooled means land a few ulps either side of it depending on the pooling order.
    # The small relative tolerance keeps them foreground at every scale, as at stride 4.
    foreground = target >= config.foreground_threshold * (1.0 - _FOREGROUND_RTOL)
    if config.kind == "focal_released":
        factor = torch.where(foreground, (1.0 - pred).abs(), pred.abs())
    else:  # "focal_paper"
        factor = torch.where(
            foreground,
            (1.0 - pred + config.focal_alpha).abs().pow(config.focal_gamma),
            (pred + config.focal_beta).abs().pow(config.focal_gamma),
        )
    return factor.detach() if config.detach_focal_factor else factor


def _check_outputs(outputs: Sequence[Sequence[Tensor]]) -> list[tuple[int, int]]:
    if not outputs or not outputs[0]:
        raise ValueError("outputs must be a non-empty list (stacks) of non-empty lists (scales)")
    reference = [tuple(o.shape) for o in outputs[0]]
    for t, stack in enumerate(outputs):
        shapes = [tuple(o.shape) for o in stack]
        if shapes != reference:
            raise ValueError(f"stack {t} output shapes {shapes} differ from stack 0 {reference}")
    for shape in reference:
        if len(shape) != 4:
            raise ValueError(f"outputs must be (N, C, h, w) tensors, got shape {shape}")
    return [(shape[2], shape[3]) for shape in reference]


def focal_l2_loss(
    outputs: Sequence[Sequence[Tensor]],
    targets: Tensor | Sequence[Tensor],
    mask: Tensor | None = None,
    config: LossConfig | None = None,
) -> LossResult:
    """Masked, channel-weighted (focal) L2 loss over all stacks and scales.

    Args:
        outputs: T stacks x S scales of (N, 50, h_s, w_s) predictions, finest scale first
            (the network's raw output; any float dtype).
        targets: S tensors (N, 50, h_s, w_s) matching ``outputs[t]``, or only the finest
            (N, 50, h_0, w_0) tensor, which is then adaptive-average-pooled to every scale.
            Values in [0, 1] (``simplepose.training.targets.encode``).
        mask: (N, 1, h_0, w_0) ignore mask at the finest scale, 1 = use, 0 = ignore
            (``simplepose.training.targets.mask_to_grid``); ``None`` = use everything.
        config: loss settings; ``None`` = the released values (``LossConfig()``).

    Returns:
        ``LossResult(loss, components)``, both float32.

    Raises:
        ValueError: on inconsistent shapes or weight counts.
    """
    config = LossConfig() if config is None else config
    sizes = _check_outputs(outputs)
    num_stacks, num_scales = len(outputs), len(sizes)
    batch, channels = outputs[0][0].shape[:2]
    if len(config.scale_weights) != num_scales:
        raise ValueError(
            f"LossConfig.scale_weights has {len(config.scale_weights)} entries, "
            f"but outputs have {num_scales} scales"
        )
    stack_weights = config.stack_weights or (1.0,) * num_stacks
    if len(stack_weights) != num_stacks:
        raise ValueError(
            f"LossConfig.stack_weights has {len(stack_weights)} entries, "
            f"but outputs have {num_stacks} stacks"
        )
    device = outputs[0][0].device
    # The loss sums up to ~10^6 squared differences: keep it in float32 even under autocast.
    with torch.autocast(device_type=device.type, enabled=False):
        if isinstance(targets, Tensor):
            target_list = pool_targets(targets.float(), sizes)
        else:
            target_list = [t.float() for t in targets]
        expected = [(batch, channels, h, w) for h, w in sizes]
        got = [tuple(t.shape) for t in target_list]
        if got != expected:
            raise ValueError(f"targets must have shapes {expected}, got {got}")
        if mask is not None:
            if tuple(mask.shape) != (batch, 1, *sizes[0]):
                raise ValueError(
                    f"mask must have shape {(batch, 1, *sizes[0])}, got {tuple(mask.shape)}"
                )
            masks: list[Tensor | None] = [
                resize_mask(mask.float(), size, config.mask_threshold) for size in sizes
            ]
        else:
            masks = [None] * num_scales
        weights = channel_weights(config, channels).to(device).view(1, channels, 1, 1)

        per_term = []
        for stack in outputs:
            row = []
            for pred, target, scale_mask in zip(stack, target_list, masks):
                pred = pred.float()
                term = (pred - target).square() * weights
                factor = _focal_factor(pred, target, config)
                if factor is not None:
                    term = term * factor
                if scale_mask is not None:
                    term = term * scale_mask
                row.append(term.sum())
            per_term.append(torch.stack(row))
        components = torch.stack(per_term)  # (T, S) sums over batch, channels, cells

        lam = torch.tensor(config.scale_weights, dtype=torch.float32, device=device)
        wts = torch.tensor(stack_weights, dtype=torch.float32, device=device)
        per_stack = (components * lam).sum(dim=1) / lam.sum()
        loss = (per_stack * wts).sum() / wts.sum() / batch
    return LossResult(loss=loss, components=components.detach() / batch)


class FocalL2Loss(nn.Module):
    """``focal_l2_loss`` as a module holding its ``LossConfig``.

    Args:
        config: loss settings; ``None`` = the released values.
    """

    def __init__(self, config: LossConfig | None = None) -> None:
        super().__init__()
        self.config = LossConfig() if config is None else config

    def forward(
        self,
        outputs: Sequence[Sequence[Tensor]],
        targets: Tensor | Sequence[Tensor],
        mask: Tensor | None = None,
    ) -> LossResult:
        """See ``focal_l2_loss``."""
        return focal_l2_loss(outputs, targets, mask, self.config)
