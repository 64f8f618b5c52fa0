"""Frozen configuration dataclasses, passed explicitly (no module-level mutable config).

Defaults equal the authors' released values (``reference/simple-pose-spec.md``) unless a
comment names the benchmark that measured a better value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from simplepose import skeleton


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of an IMHN (Identity Mapping Hourglass Network).

    Attributes:
        num_stacks: number of stacked hourglasses (released: 4).
        base_channels: channels of the stem output, of the hourglass top level and of each
            head (released: 256, the authors' ``inp_dim``).
        increase: channels added per hourglass level; level ``d`` (0..4) has
            ``base_channels + increase * d`` channels (released: 128 -> 256 ... 768).
        num_outputs: output channels per scale (50, see ``simplepose.skeleton``).
        se_reduction: squeeze-and-excitation reduction ratio of each head.
        negative_slope: slope of every LeakyReLU.
    """

    num_stacks: int = 4
    base_channels: int = 256
    increase: int = 128
    num_outputs: int = skeleton.NUM_CHANNELS
    se_reduction: int = 16
    negative_slope: float = 0.01

    #: Hourglass order (recursion depth) and number of output scales; fixed by the design.
    HOURGLASS_DEPTH: ClassVar[int] = 4
    NUM_SCALES: ClassVar[int] = 5
    #: The network's total stride (input pixels per heatmap cell) and input multiple.
    STRIDE: ClassVar[int] = 4
    INPUT_MULTIPLE: ClassVar[int] = 64

    def __post_init__(self) -> None:
        for name in ("num_stacks", "base_channels", "increase", "num_outputs", "se_reduction"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive int, got {value!r}")
        if self.base_channels % 2:
            raise ValueError(f"ModelConfig.base_channels must be even, got {self.base_channels}")
        if self.base_channels < self.se_reduction:
            raise ValueError(
                f"ModelConfig.base_channels ({self.base_channels}) must be >= se_reduction "
                f"({self.se_reduction})"
            )

    def level_channels(self, level: int) -> int:
        """Channels of hourglass level ``level`` (0 = full resolution, 4 = deepest)."""
        return self.base_channels + self.increase * level

    @classmethod
    def preset(cls, name: str) -> ModelConfig:
        """Return a named preset (see ``presets()``); raises ``ValueError`` for unknown names."""
        try:
            return _PRESETS[name]
        except KeyError:
            raise ValueError(
                f"unknown model preset {name!r}; expected one of {', '.join(cls.presets())}"
            ) from None

    @staticmethod
    def presets() -> tuple[str, ...]:
        """Names of the presets, largest first."""
        return tuple(_PRESETS)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Inverse of ``to_dict``; unknown keys raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {unknown}; expected a subset of {sorted(known)}")
        return cls(**values)


_PRESETS: dict[str, ModelConfig] = {
    # The authors' released network (posenet.py): 128,998,760 parameters.
    "released": ModelConfig(num_stacks=4, base_channels=256, increase=128),
    # Two stacks, narrow hourglass: the authors' code with nstack=2, increase=32 (golden "small").
    "small": ModelConfig(num_stacks=2, base_channels=256, increase=32),
    # CPU-friendly variants: one code path, fewer stacks and channels.
    "tiny": ModelConfig(num_stacks=2, base_channels=128, increase=32),
    "nano": ModelConfig(num_stacks=1, base_channels=64, increase=16),
}
