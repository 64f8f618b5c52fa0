from __future__ import annotations

import dataclasses

import pytest

from simplepose.config import ModelConfig


def test_presets_listed_and_buildable():
    names = ModelConfig.presets()
    assert names[0] == "released"
    assert {"released", "small", "tiny", "nano"} <= set(names)
    released = ModelConfig.preset("released")
    assert (released.num_stacks, released.base_channels, released.increase) == (4, 256, 128)
    assert released.se_reduction == 16 and released.negative_slope == 0.01
    assert [released.level_channels(d) for d in range(5)] == [256, 384, 512, 640, 768]


def test_config_is_frozen_and_round_trips():
    config = ModelConfig.preset("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.num_stacks = 3  # type: ignore[misc]
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_bad_values_and_names_raise():
    with pytest.raises(ValueError, match="unknown model preset 'huge'"):
        ModelConfig.preset("huge")
    with pytest.raises(ValueError, match="num_stacks"):
        ModelConfig(num_stacks=0)
    with pytest.raises(ValueError, match="unknown ModelConfig fields"):
        ModelConfig.from_dict({"stacks": 2})
