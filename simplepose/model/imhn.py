"""IMHN: the Identity Mapping Hourglass Network of Simple Pose.

Structurally identical to the authors' released network (``posenet.py``, spec section 3), so
their checkpoint loads without renaming: submodule names reproduce their state_dict keys
(``pre``, ``hourglass``, ``features``, ``outs``, ``merge_features``, ``merge_preds``).

Shapes (N batch, H x W input, both multiples of 64, C = ``num_outputs`` = 50)::

    input   N x 3 x H x W  float32, BGR / 255, no mean or std
    stem    N x B x H/4 x W/4                  (B = base_channels)
    stack t, scale s (0..4): N x C x H/4/2^s x W/4/2^s

Only the last stack's finest output is used at inference (``IMHN.predict``).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from simplepose.config import ModelConfig


class ConvBlock(nn.Module):
    """k x k convolution, then optional batch norm and LeakyReLU ("same" padding).

    The convolution has a bias only when there is no batch norm after it, as in the
    authors' code (their state_dict keys depend on it).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        dilation: int = 1,
        bn: bool = True,
        act: bool = True,
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        padding = (kernel_size - 1) // 2 * dilation
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=not bn,
        )
        self.bn = nn.BatchNorm2d(out_channels) if bn else None
        self.act = nn.LeakyReLU(negative_slope) if act else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x


class Residual(nn.Module):
    """Bottleneck residual: 1x1 (out/2), 3x3 (out/2), 1x1 (out), BN after each, add, act.

    The shortcut is the identity, or a 1x1 convolution + BN when the channel count changes.
    ``convBlock`` and ``skipConv`` are the authors' attribute names (checkpoint keys).
    """

    def __init__(self, in_channels: int, out_channels: int, negative_slope: float) -> None:
        super().__init__()
        mid = out_channels // 2
        self.convBlock = nn.Sequential(
            nn.Conv2d(in_channels, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.LeakyReLU(negative_slope),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.LeakyReLU(negative_slope),
            nn.Conv2d(mid, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.skipConv: nn.Module | None = None
        if in_channels != out_channels:
            self.skipConv = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.act = nn.LeakyReLU(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.skipConv is None else self.skipConv(x)
        return self.act(self.convBlock(x) + shortcut)


class Stem(nn.Module):
    """Stride-4 stem: 7x7/2 conv, residuals, 2x2 max-pool, then a plain branch (A) and six
    dilated 3x3 convolutions on top of it (B, dilations 3, 3, 4, 4, 5, 5) concatenated.

    Output: N x base_channels x H/4 x W/4 (A and B have base_channels / 2 each).
    """

    DILATIONS = (3, 3, 4, 4, 5, 5)

    def __init__(self, base_channels: int, negative_slope: float) -> None:
        super().__init__()
        half = base_channels // 2
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.act = nn.LeakyReLU(negative_slope)
        self.res1 = Residual(64, half, negative_slope)
        self.pool = nn.MaxPool2d(2, 2)
        self.res2 = Residual(half, half, negative_slope)
        self.dilation = nn.Sequential(
            *(
                ConvBlock(half, half, 3, dilation=d, negative_slope=negative_slope)
                for d in self.DILATIONS
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.bn1(self.conv1(x)))
        x = self.res2(self.pool(self.res1(x)))
        return torch.cat([x, self.dilation(x)], dim=1)


class Hourglass(nn.Module):
    """Order-4 hourglass of bottleneck residuals; channels grow by ``increase`` per level.

    ``hg[d]`` holds level d's modules, in the authors' order: 0 skip residual, 1 down
    residual (after 2x2 max-pool), 2 up residual, 3 3x3 conv after nearest x2 upsampling, and
    for the deepest level 4 the bottom residual.

    ``forward`` returns 5 features, finest first: the level-0 output (c_0 channels, 1/1 of
    the input) and, for each level d, the inner result before its up-residual (c_{d+1}
    channels at 1/2^{d+1}).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        slope = config.negative_slope
        depth = config.HOURGLASS_DEPTH
        self.depth = depth
        levels = []
        for d in range(depth):
            c, c_next = config.level_channels(d), config.level_channels(d + 1)
            modules = [
                Residual(c, c, slope),
                Residual(c, c_next, slope),
                Residual(c_next, c, slope),
                ConvBlock(c, c, 3, negative_slope=slope),
            ]
            if d == depth - 1:
                modules.append(Residual(c_next, c_next, slope))
            levels.append(nn.ModuleList(modules))
        self.hg = nn.ModuleList(levels)

    def _level(self, d: int, x: Tensor, features: list[Tensor]) -> Tensor:
        level = cast(nn.ModuleList, self.hg[d])
        skip_res, down_res, up_res, up_conv = level[:4]
        skip = skip_res(x)
        low = down_res(F.max_pool2d(x, 2, 2))
        if d == self.depth - 1:
            inner = level[4](low)
        else:
            inner = self._level(d + 1, low, features)
        features[d + 1] = inner
        up = up_conv(F.interpolate(up_res(inner), scale_factor=2.0, mode="nearest"))
        return skip + up

    def forward(self, x: Tensor) -> list[Tensor]:
        features: list[Tensor] = [x] * (self.depth + 1)
        features[0] = self._level(0, x, features)
        return features


class SqueezeExcite(nn.Module):
    """Channel attention: global average -> FC (C/r) -> LeakyReLU -> FC (C) -> sigmoid -> scale."""

    def __init__(self, channels: int, reduction: int, negative_slope: float) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction),
            nn.LeakyReLU(negative_slope),
            nn.Linear(channels // reduction, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        weights = self.fc(x.mean(dim=(2, 3)))
        return x * weights[:, :, None, None]


class Features(nn.Module):
    """The 5 heads of one stack (finest first): 3x3 conv, 3x3 conv, squeeze-excite."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        slope, base = config.negative_slope, config.base_channels
        self.before_regress = nn.ModuleList(
            nn.Sequential(
                ConvBlock(config.level_channels(s), base, 3, negative_slope=slope),
                ConvBlock(base, base, 3, negative_slope=slope),
                SqueezeExcite(base, config.se_reduction, slope),
            )
            for s in range(config.NUM_SCALES)
        )


class Merge(nn.Module):
    """1x1 convolution + BN, no activation: one half of an identity mapping."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = ConvBlock(in_channels, out_channels, 1, act=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class IMHN(nn.Module):
    """The Identity Mapping Hourglass Network.

    Args:
        config: the architecture (see ``ModelConfig.preset``).

    ``model(x)`` returns every stack's 5 outputs (training); ``model.predict(x)`` returns the
    last stack's finest output only and skips the heads it does not need.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        config = config or ModelConfig()
        self.config = config
        slope, base, scales = config.negative_slope, config.base_channels, config.NUM_SCALES
        level = config.level_channels
        self.pre = Stem(base, slope)
        self.hourglass = nn.ModuleList(Hourglass(config) for _ in range(config.num_stacks))
        self.features = nn.ModuleList(Features(config) for _ in range(config.num_stacks))
        self.outs = nn.ModuleList(
            nn.ModuleList(
                ConvBlock(base, config.num_outputs, 1, bn=False, act=False) for _ in range(scales)
            )
            for _ in range(config.num_stacks)
        )
        # Identity mappings between stacks t and t + 1 (none after the last stack).
        self.merge_features = nn.ModuleList(
            nn.ModuleList(Merge(base, level(s)) for s in range(scales))
            for _ in range(config.num_stacks - 1)
        )
        self.merge_preds = nn.ModuleList(
            nn.ModuleList(Merge(config.num_outputs, level(s)) for s in range(scales))
            for _ in range(config.num_stacks - 1)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The authors' initialisation: tiny convolutions, so outputs start near zero."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.001)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.zeros_(module.bias)

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is N x 3 x H x W with H, W multiples of 64."""
        multiple = self.config.INPUT_MULTIPLE
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(
                f"input must have shape (N, 3, H, W) (BGR / 255, NCHW), got {tuple(x.shape)}"
            )
        h, w = int(x.shape[2]), int(x.shape[3])
        if h % multiple or w % multiple or h == 0 or w == 0:
            raise ValueError(
                f"input height and width must be positive multiples of {multiple}, got {h} x {w}"
            )
        if not x.is_floating_point():
            raise ValueError(f"input must be a floating-point tensor, got {x.dtype}")

    def _run(self, x: Tensor, last_stack_finest_only: bool) -> list[list[Tensor]]:
        if not (torch.compiler.is_compiling() or torch.jit.is_tracing()):
            # Under export/compile shapes are symbolic: checking them as Python ints would
            # specialise the graph to the example size.
            self.check_input(x)
        x = self.pre(x)
        outputs: list[list[Tensor]] = []
        mappings: list[Tensor] | None = None
        last = self.config.num_stacks - 1
        for t in range(self.config.num_stacks):
            features = self.hourglass[t](x)
            scales = 1 if (t == last and last_stack_finest_only) else self.config.NUM_SCALES
            heads_t = cast(Features, self.features[t]).before_regress
            outs_t = cast(nn.ModuleList, self.outs[t])
            preds, heads = [], []
            for s in range(scales):
                feature = features[s] if mappings is None else features[s] + mappings[s]
                head = heads_t[s](feature)
                heads.append(head)
                preds.append(outs_t[s](head))
            outputs.append(preds)
            if t < last:
                merge_preds = cast(nn.ModuleList, self.merge_preds[t])
                merge_features = cast(nn.ModuleList, self.merge_features[t])
                mappings = [
                    merge_preds[s](preds[s]) + merge_features[s](heads[s])
                    for s in range(self.config.NUM_SCALES)
                ]
                x = x + mappings[0]
        return outputs

    def forward(self, x: Tensor) -> tuple[tuple[Tensor, ...], ...]:
        """All outputs: ``outputs[t][s]`` is N x C x H/4/2^s x W/4/2^s for stack t, scale s."""
        return tuple(tuple(preds) for preds in self._run(x, last_stack_finest_only=False))

    def predict(self, x: Tensor) -> Tensor:
        """The inference output: the last stack's finest scale, N x C x H/4 x W/4.

        The last stack's coarser heads are not computed.
        """
        return self._run(x, last_stack_finest_only=True)[-1][0]


class InferenceWrapper(nn.Module):
    """``forward = model.predict``: the graph that export and inference backends run."""

    def __init__(self, model: IMHN) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model.predict(x)


def build_model(config: ModelConfig | str | None = None) -> IMHN:
    """Build an IMHN from a config or a preset name (default: ``released``)."""
    if isinstance(config, str):
        config = ModelConfig.preset(config)
    return IMHN(config or ModelConfig())
