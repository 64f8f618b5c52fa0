"""Type stubs of ``simplepose._C`` (csrc/bindings.cpp), checked by test_grouping_binding.py."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

PARTS: tuple[tuple[int, int], ...]

class PersonScore:
    AUTHORS: ClassVar[PersonScore]
    MEAN: ClassVar[PersonScore]
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...
    def __int__(self) -> int: ...

class DecodeParams:
    peak_threshold: float
    max_peaks: int
    refine: bool
    part_threshold: float
    connect_ratio: float
    max_samples: int
    grid_stride: float
    prior_height: float
    len_rate: float
    connection_tolerance: float
    attach_both_ends: bool
    exchange_partners: bool
    min_keypoints: int
    min_mean_score: float
    person_score: PersonScore
    def __init__(self) -> None: ...
    def validate(self) -> None: ...

def find_peaks(
    heatmaps: npt.NDArray[np.float32], params: DecodeParams
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]: ...
def score_parts(
    heatmaps: npt.NDArray[np.float32],
    peaks: npt.NDArray[np.float64],
    offsets: npt.NDArray[np.int64],
    params: DecodeParams,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.float64]]: ...
def assemble(
    peaks: npt.NDArray[np.float64],
    offsets: npt.NDArray[np.int64],
    parts: npt.NDArray[np.int32],
    pairs: npt.NDArray[np.int32],
    scores: npt.NDArray[np.float64],
    params: DecodeParams,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float64]]: ...
def decode(
    heatmaps: npt.NDArray[np.float32], params: DecodeParams
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...
