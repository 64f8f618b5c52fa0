"""Frozen configuration dataclasses, passed explicitly (no module-level mutable config).

Defaults equal the authors' released values (``reference/simple-pose-spec.md``) unless a
comment names the benchmark that measured a better value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from simplepose import skeleton

_ConfigT = TypeVar("_ConfigT", bound="_Serializable")


class _Serializable:
    """``to_dict`` / ``from_dict`` for the frozen config dataclasses (stored in checkpoints,
    exported models and benchmark results)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (JSON-serialisable)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[_ConfigT], values: dict[str, Any]) -> _ConfigT:
        """Inverse of ``to_dict``; unknown keys raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} fields {unknown}; expected a subset of {sorted(known)}"
            )
        return cls(**values)


@dataclass(frozen=True)
class ModelConfig(_Serializable):
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


_PRESETS: dict[str, ModelConfig] = {
    # The authors' released network (posenet.py): 128,998,760 parameters.
    "released": ModelConfig(num_stacks=4, base_channels=256, increase=128),
    # Two stacks, narrow hourglass: the authors' code with nstack=2, increase=32 (golden "small").
    "small": ModelConfig(num_stacks=2, base_channels=256, increase=32),
    # CPU-friendly variants: one code path, fewer stacks and channels.
    "tiny": ModelConfig(num_stacks=2, base_channels=128, increase=32),
    "nano": ModelConfig(num_stacks=1, base_channels=64, increase=16),
}


@dataclass(frozen=True)
class TargetConfig(_Serializable):
    """Ground-truth heatmap encoding (``simplepose.training.targets``).

    Defaults are the authors' released values (spec section 2). Lengths are in input pixels.

    Attributes:
        stride: input pixels per heatmap cell; cell ``i`` sits at pixel ``stride * i +
            stride / 2 - 0.5`` (4 i + 1.5 for stride 4).
        sigma: standard deviation of the keypoint Gaussian.
        part_sigma: standard deviation of the body-part band across the part's line.
        keypoint_threshold: truncation level that sets the keypoint window half-size
            (``ceil(sqrt(-2 sigma^2 ln t) / stride)`` cells, 7 for the defaults).
        part_threshold: part values ``<=`` this are replaced by ``part_floor`` in the box.
        part_floor: value of the in-box cells far from the part's line.
        part_box_pad: padding of the part's axis-aligned bounding box.
        person_mask_erode: side of the square erosion kernel for the person-mask channel
            (cells; 0 or 1 disables it).
    """

    stride: int = 4
    sigma: float = 9.0
    part_sigma: float = 7.0
    keypoint_threshold: float = 0.015
    part_threshold: float = 0.015
    part_floor: float = 0.01
    part_box_pad: float = 4.0
    person_mask_erode: int = 3

    def __post_init__(self) -> None:
        if not isinstance(self.stride, int) or self.stride < 1:
            raise ValueError(f"TargetConfig.stride must be a positive int, got {self.stride!r}")
        for name in ("sigma", "part_sigma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"TargetConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if not 0 < self.keypoint_threshold < 1:
            raise ValueError(
                "TargetConfig.keypoint_threshold must be in (0, 1), got "
                f"{self.keypoint_threshold!r}"
            )
        if not 0 <= self.part_threshold < 1 or not 0 <= self.part_floor <= 1:
            raise ValueError(
                "TargetConfig.part_threshold must be in [0, 1) and part_floor in [0, 1], got "
                f"{self.part_threshold!r} and {self.part_floor!r}"
            )
        if not self.part_box_pad >= 0:
            raise ValueError(f"TargetConfig.part_box_pad must be >= 0, got {self.part_box_pad!r}")
        if not isinstance(self.person_mask_erode, int) or self.person_mask_erode < 0:
            raise ValueError(
                "TargetConfig.person_mask_erode must be an int >= 0, got "
                f"{self.person_mask_erode!r}"
            )

    @property
    def keypoint_radius(self) -> int:
        """Half-size of the keypoint window in cells (7 for the released values)."""
        import math

        reach = math.sqrt(-2.0 * self.sigma**2 * math.log(self.keypoint_threshold))
        return math.ceil(reach / self.stride)


@dataclass(frozen=True)
class LossConfig(_Serializable):
    """Training loss over all stacks and scales (``simplepose.training.losses``).

    Defaults are the authors' released values (spec section 4).

    Attributes:
        kind: ``"l2"`` (factor 1), ``"focal_paper"`` (``(1 - S + alpha)^gamma`` on
            foreground, ``(S + beta)^gamma`` on background) or ``"focal_released"`` (the
            released code: ``|1 - S|`` and ``|S|``, i.e. gamma 1, alpha = beta = 0).
        keypoint_weight: channel weight of the 18 keypoint channels (30-47).
        person_mask_weight: channel weight of the person-mask channel (48).
        scale_weights: weight per output scale, finest (stride 4) first; normalised by the sum.
        stack_weights: weight per stack (weighted mean); ``None`` = all 1.
        foreground_threshold: a target value ``>=`` this is foreground.
        mask_threshold: resized ignore-mask values below this become 0, others are kept.
        focal_alpha: ``alpha`` of ``"focal_paper"``.
        focal_beta: ``beta`` of ``"focal_paper"``.
        focal_gamma: ``gamma`` of ``"focal_paper"``.
        detach_focal_factor: stop the gradient through the focal factor (the released code
            does not).
    """

    kind: str = "focal_released"
    keypoint_weight: float = 3.0
    person_mask_weight: float = 0.1
    scale_weights: tuple[float, ...] = (0.1, 0.2, 0.4, 1.6, 6.4)
    stack_weights: tuple[float, ...] | None = None
    foreground_threshold: float = 0.01
    mask_threshold: float = 0.5
    focal_alpha: float = 0.1
    focal_beta: float = 0.02
    focal_gamma: float = 2.0
    detach_focal_factor: bool = False

    KINDS: ClassVar[tuple[str, ...]] = ("l2", "focal_paper", "focal_released")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"LossConfig.kind must be one of {self.KINDS}, got {self.kind!r}")
        if not self.scale_weights or min(self.scale_weights) < 0 or sum(self.scale_weights) <= 0:
            raise ValueError(
                "LossConfig.scale_weights must be non-negative with a positive sum, got "
                f"{self.scale_weights!r}"
            )
        if self.stack_weights is not None and (
            not self.stack_weights or min(self.stack_weights) < 0 or sum(self.stack_weights) <= 0
        ):
            raise ValueError(
                "LossConfig.stack_weights must be None or non-negative with a positive sum, got "
                f"{self.stack_weights!r}"
            )
        if self.focal_gamma < 0:
            raise ValueError(f"LossConfig.focal_gamma must be >= 0, got {self.focal_gamma!r}")


@dataclass(frozen=True)
class PipelineConfig(_Serializable):
    """The real-time video pipeline (``simplepose.pipeline``): threads, tracking, smoothing.

    Attributes:
        threaded: run every stage in its own thread (``False``: one after another in the
            caller's thread, for comparison and debugging).
        queue_size: capacity of each bounded queue between two stages. Small on purpose: a
            live source keeps latency bounded by dropping the oldest frame when the first
            queue is full; later stages block (backpressure).
        max_frames: stop after this many frames (``None``: until the source ends).
        batch: frames per network call for file and folder sources (throughput; results
            stay in frame order); live sources always run batch 1 and keep dropping stale
            frames. Needs ``threaded`` and an estimator with ``infer_batch``.
        track: give people stable IDs across frames.
        track_min_similarity: lowest OKS-style similarity that continues a track.
        track_max_age: frames a track survives unseen (short occlusions keep the ID).
        smooth: One-Euro filter keypoints per track and keypoint (needs ``track``).
        smooth_min_cutoff: One-Euro minimum cutoff frequency in Hz (less jitter when low).
        smooth_beta: One-Euro speed coefficient in 1 / pixel (less lag when high).
        smooth_d_cutoff: One-Euro cutoff frequency of the speed estimate, Hz.
        render: draw the overlay; ``None`` draws only when a sink needs the drawing.
        draw_min_score: keypoints with a lower score are not drawn.
        stats_interval: seconds between progress log lines for live sources (0: never).
        stop_timeout: seconds to wait for the stages to finish after a stop or an error.
    """

    threaded: bool = True
    queue_size: int = 2
    max_frames: int | None = None
    batch: int = 1
    track: bool = True
    track_min_similarity: float = 0.2
    track_max_age: int = 15
    smooth: bool = False
    smooth_min_cutoff: float = 1.0
    smooth_beta: float = 0.02
    smooth_d_cutoff: float = 1.0
    render: bool | None = None
    draw_min_score: float = 0.05
    stats_interval: float = 5.0
    stop_timeout: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.queue_size, int) or self.queue_size < 1:
            raise ValueError(
                f"PipelineConfig.queue_size must be an int >= 1, got {self.queue_size!r}"
            )
        if self.max_frames is not None and (
            not isinstance(self.max_frames, int) or self.max_frames < 1
        ):
            raise ValueError(
                f"PipelineConfig.max_frames must be None or an int >= 1, got {self.max_frames!r}"
            )
        if not isinstance(self.batch, int) or self.batch < 1:
            raise ValueError(f"PipelineConfig.batch must be an int >= 1, got {self.batch!r}")
        if self.batch > 1 and not self.threaded:
            raise ValueError("PipelineConfig.batch > 1 needs the threaded pipeline")
        if not isinstance(self.track_max_age, int) or self.track_max_age < 0:
            raise ValueError(
                f"PipelineConfig.track_max_age must be an int >= 0, got {self.track_max_age!r}"
            )
        if not 0.0 <= self.track_min_similarity <= 1.0:
            raise ValueError(
                "PipelineConfig.track_min_similarity must be in [0, 1], got "
                f"{self.track_min_similarity!r}"
            )
        for name in ("smooth_min_cutoff", "smooth_d_cutoff"):
            if getattr(self, name) <= 0:
                raise ValueError(f"PipelineConfig.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("smooth_beta", "draw_min_score", "stats_interval", "stop_timeout"):
            if getattr(self, name) < 0:
                raise ValueError(f"PipelineConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.smooth and not self.track:
            raise ValueError("PipelineConfig.smooth needs track=True (the filter is per track)")


@dataclass(frozen=True)
class DecodeConfig(_Serializable):
    """Thresholds of the grouping decoder (``simplepose.grouping.decode``).

    Defaults are the authors' ``utils/config`` values (spec section 6) unless a comment names
    the benchmark that measured a better one. Lengths are in network-input pixels.

    Attributes:
        peak_threshold: keypoint peaks must be >= this (authors' ``thre1``).
        max_peaks: at most this many peaks per keypoint channel, the highest; bounds the work
            on noisy heatmaps (with all 18 channels at 64 peaks: 2-6 ms per 128 x 128 grid,
            1-80 people, ``benchmarks/bench_grouping.py --crowd``).
        refine: sub-pixel peak refinement (log-parabola fit on the 3 x 3 neighbourhood).
        part_threshold: a body-part sample passes when > this (``thre2``).
        connect_ratio: fraction of samples that must pass (``connect_ration``).
        max_samples: samples per candidate body part (``mid_num``).
        len_rate: a limb joins a person only if shorter than ``len_rate`` x its longest limb.
        connection_tolerance: two people merge unless the connection scores below this
            fraction of their weakest limb (``connection_tole``).
        attach_both_ends: also attach the ``from`` keypoint to a person found through the
            ``to`` keypoint (the authors only ever attach ``to``).
        exchange_partners: after the authors' greedy one-to-one matching of a body part,
            exchange the partners of two kept connections when both crossed pairs were
            accepted and their weights (score x both peak scores) sum to more; fixes the
            greedy's swaps of collinear same-type limbs (arms in a row), which a scalar part
            map cannot tell apart pair by pair.
        min_keypoints: people with fewer keypoints are dropped.
        min_mean_score: people whose total score / keypoint count is below this are dropped.
        person_score: ``"authors"`` (1 - 1 / total) or ``"mean"`` (total / keypoint count).
        upsample: 1 decodes on the stride-4 grid; 2 or 4 first resize the heatmaps bicubically
            (the authors use 4), slower and finer.
        stride: network-input pixels per heatmap cell.
    """

    peak_threshold: float = 0.1
    max_peaks: int = 64
    refine: bool = True
    part_threshold: float = 0.1
    connect_ratio: float = 0.8
    max_samples: int = 20
    len_rate: float = 16.0
    connection_tolerance: float = 0.7
    # Changed from the authors' (False, "authors"): `python -m benchmarks.bench_grouping
    # --sweep-configs` (oracle heatmaps of the shared COCO images) measured AP 0.893 -> 0.896
    # on perfect inputs, 0.834 -> 0.844 with noise, 0.544 -> 0.550 with all degradations.
    attach_both_ends: bool = True
    # Added (the authors have no such step): `python -m benchmarks.bench_grouping --oracle`
    # on the shared COCO images measured AP 0.896 -> 0.912 on perfect heatmaps, 0.869 ->
    # 0.872 with noise, 0.900 -> 0.901 blur, 0.894 -> 0.911 attenuation, 0.895 -> 0.910 with
    # spurious peaks, 0.595 -> 0.600 with all degradations. Its diagnosis (same peaks, per
    # limb) traces the gain to three pairs of neighbours whose collinear limbs the greedy
    # swapped (6 wrong connections, 6 mixed people -> 0); the authors' scoring on their x4
    # maps swaps two of them too (AP 0.894). Weighting by the score alone (no peak scores)
    # paired true keypoints with weak noise peaks on the limb: 0.869 -> 0.819 with noise.
    exchange_partners: bool = True
    min_keypoints: int = 2
    min_mean_score: float = 0.45
    person_score: str = "mean"
    upsample: int = 1
    stride: int = 4

    PERSON_SCORES: ClassVar[tuple[str, ...]] = ("authors", "mean")

    def __post_init__(self) -> None:
        if self.person_score not in self.PERSON_SCORES:
            raise ValueError(
                f"DecodeConfig.person_score must be one of {self.PERSON_SCORES}, "
                f"got {self.person_score!r}"
            )
        if self.upsample not in (1, 2, 4):
            raise ValueError(f"DecodeConfig.upsample must be 1, 2 or 4, got {self.upsample!r}")
        for name in ("max_peaks", "max_samples", "stride", "min_keypoints"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"DecodeConfig.{name} must be a positive int, got {value!r}")
        if not 2 <= self.max_samples <= 256:
            raise ValueError(
                f"DecodeConfig.max_samples must be in [2, 256], got {self.max_samples}"
            )
        if not 0.0 <= self.connect_ratio <= 1.0:
            raise ValueError(
                f"DecodeConfig.connect_ratio must be in [0, 1], got {self.connect_ratio!r}"
            )
        if self.len_rate <= 0:
            raise ValueError(f"DecodeConfig.len_rate must be > 0, got {self.len_rate!r}")


@dataclass(frozen=True)
class InferenceConfig(_Serializable):
    """How images become network inputs and how outputs are merged (``PoseEstimator``).

    Attributes:
        input_size: length, in network-input pixels, that ``resize_side`` of the image is
            resized to at scale 1 (authors: the height goes to 512).
        resize_side: which image side ``input_size`` applies to: ``"height"`` (authors),
            ``"width"``, ``"long"`` or ``"short"``.
        scales: multipliers of ``input_size``, one network pass each; heatmaps are resized to
            the grid of the first scale and averaged (``AUTHORS_SCALES`` is the authors' set).
        flip: also run the mirrored image and average it in (flip test).
        max_input_hw: cap on the resized image (height, width) before padding, as the authors
            cap very large inputs; the scale shrinks until both fit.
        pad_value: grey level of the right/bottom padding up to a multiple of 64 (authors: 128).
    """

    input_size: int = 512
    resize_side: str = "height"
    scales: tuple[float, ...] = (1.0,)
    flip: bool = True
    max_input_hw: tuple[int, int] = (2600, 3800)
    pad_value: int = 128

    RESIZE_SIDES: ClassVar[tuple[str, ...]] = ("height", "width", "long", "short")
    #: The authors' multi-scale test set (relative to the height -> 512 resize).
    AUTHORS_SCALES: ClassVar[tuple[float, ...]] = (0.5, 1.0, 1.5, 2.0, 3.0)

    def __post_init__(self) -> None:
        if not isinstance(self.input_size, int) or self.input_size < 16:
            raise ValueError(
                f"InferenceConfig.input_size must be an int >= 16, got {self.input_size!r}"
            )
        if self.resize_side not in self.RESIZE_SIDES:
            raise ValueError(
                f"InferenceConfig.resize_side must be one of {self.RESIZE_SIDES}, "
                f"got {self.resize_side!r}"
            )
        scales = tuple(float(s) for s in self.scales)
        if not scales or any(not s > 0 for s in scales):
            raise ValueError(
                f"InferenceConfig.scales must be positive numbers, got {self.scales!r}"
            )
        object.__setattr__(self, "scales", scales)
        if not 0 <= self.pad_value <= 255:
            raise ValueError(
                f"InferenceConfig.pad_value must be in [0, 255], got {self.pad_value!r}"
            )
        cap = tuple(int(v) for v in self.max_input_hw)
        if len(cap) != 2 or min(cap) < 64:
            raise ValueError(
                "InferenceConfig.max_input_hw must be (height, width), both >= 64, "
                f"got {self.max_input_hw!r}"
            )
        object.__setattr__(self, "max_input_hw", cap)


@dataclass(frozen=True)
class AugmentConfig(_Serializable):
    """Training augmentation: one affine warp per sample plus an optional colour jitter.

    Defaults are the authors' released values (spec section 5). Lengths are in crop pixels,
    angles in degrees.

    Attributes:
        enabled: ``False`` turns every random change off *and* switches the sampler to whole
            images: each image (with at least one keypointed person) is resized so its longer
            side fills the crop and placed at the top-left, exactly as ``PoseEstimator`` with
            ``resize_side="long"`` and ``input_size = crop`` sees it (for overfitting tests
            and fine-tuning on fixed views).
        target_dist: the main person's bbox height becomes this fraction of the crop.
        scale_prob: probability of a random scale factor.
        scale_min: lower end of the uniform scale factor.
        scale_max: upper end of the uniform scale factor.
        max_rotation: rotation drawn uniformly in [-max_rotation, max_rotation].
        max_shift: integer shift drawn uniformly in [-max_shift, max_shift], x and y.
        flip_prob: probability of a horizontal flip (left/right keypoints swapped).
        color_prob: probability of an HSV jitter.
        hue: hue shift drawn in [-hue, hue] (OpenCV hue units, 0..179 wrap around).
        saturation: (low, high) saturation shift (0..255 scale, clipped).
        value: (low, high) value shift (0..255 scale, clipped).
        border: BGR fill of the pixels the warp brings in from outside the image.
    """

    enabled: bool = True
    target_dist: float = 0.6
    scale_prob: float = 0.8
    scale_min: float = 0.7
    scale_max: float = 1.3
    max_rotation: float = 40.0
    max_shift: int = 50
    flip_prob: float = 0.5
    color_prob: float = 0.2
    hue: float = 10.0
    saturation: tuple[float, float] = (-20.0, 60.0)
    value: tuple[float, float] = (-20.0, 40.0)
    border: tuple[int, int, int] = (124, 127, 127)

    def __post_init__(self) -> None:
        for name in ("scale_prob", "flip_prob", "color_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"AugmentConfig.{name} must be in [0, 1], got {getattr(self, name)!r}"
                )
        if not 0 < self.scale_min <= self.scale_max:
            raise ValueError(
                "AugmentConfig needs 0 < scale_min <= scale_max, got "
                f"{self.scale_min!r} and {self.scale_max!r}"
            )
        if not self.target_dist > 0:
            raise ValueError(f"AugmentConfig.target_dist must be > 0, got {self.target_dist!r}")
        if self.max_rotation < 0 or self.max_shift < 0 or self.hue < 0:
            raise ValueError(
                "AugmentConfig.max_rotation, max_shift and hue must be >= 0, got "
                f"{self.max_rotation!r}, {self.max_shift!r}, {self.hue!r}"
            )
        object.__setattr__(self, "saturation", tuple(float(v) for v in self.saturation))
        object.__setattr__(self, "value", tuple(float(v) for v in self.value))
        object.__setattr__(self, "border", tuple(int(v) for v in self.border))

    @classmethod
    def off(cls) -> AugmentConfig:
        """No augmentation, whole-image samples (see ``enabled``)."""
        return cls(enabled=False)


@dataclass(frozen=True)
class TrainConfig(_Serializable):
    """The training loop (``simplepose.training.loop``).

    Defaults follow the authors' released training (spec section 5) where they have one.

    Attributes:
        epochs: passes over the training samples.
        batch_size: samples per process (per GPU); the global batch is this x world size.
        lr: learning rate of one process; with ``scale_lr`` the optimiser uses
            ``lr x world_size`` (the authors: 2.5e-5 x 4 GPUs = 1e-4).
        scale_lr: multiply ``lr`` by the world size (linear scaling rule).
        optimizer: ``"sgd"`` (momentum, the paper's) or ``"adamw"``.
        momentum: SGD momentum.
        weight_decay: L2 weight decay (SGD) or decoupled decay (AdamW).
        warmup_epochs: linear warm-up from 0 to ``lr``, per iteration, over this many epochs.
        lr_step_epochs: multiply the learning rate by ``lr_gamma`` every this many epochs
            (0: constant after warm-up).
        lr_gamma: step-decay factor.
        l2_epochs: epochs of plain L2 loss before ``loss.kind`` takes over (the paper trains
            L2 first, then focal L2).
        amp: ``"auto"`` (fp16 with a GradScaler on CUDA, off on CPU), ``"off"``, ``"fp16"``
            or ``"bf16"``.
        grad_clip: clip the global gradient norm to this (``None``: no clipping).
        skip_loss_above: skip batches whose loss is non-finite or above this (all ranks skip
            together).
        crop_size: side of the square training crop (multiple of 64).
        workers: DataLoader worker processes per rank.
        seed: seeds the data order, the augmentation (per sample: seed, epoch, index) and
            the initial weights.
        max_steps: stop after this many optimiser steps in total (``None``: run all epochs).
        checkpoint_every: save ``epoch_NNN.pth`` every this many epochs (``last.pth`` is
            written after every epoch and at the end regardless).
        eval_every: run COCO evaluation on the validation set every this many epochs (0: never).
        eval_max_images: evaluate on at most this many validation images.
        eval_input_size: inference input size of the periodic evaluation.
        log_every: write a log line every this many steps.
        sync_bn: convert BatchNorm to SyncBatchNorm under DistributedDataParallel (CUDA only).
        freeze_bn: keep BatchNorm in eval mode (running statistics fixed, affine parameters
            trained), e.g. for fine-tuning with small per-GPU batches.
        deterministic: deterministic algorithms (``torch.use_deterministic_algorithms``).
    """

    epochs: int = 100
    batch_size: int = 4
    lr: float = 2.5e-5
    scale_lr: bool = True
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 2.0
    lr_step_epochs: int = 15
    lr_gamma: float = 0.2
    l2_epochs: int = 0
    amp: str = "auto"
    grad_clip: float | None = None
    skip_loss_above: float = 2e5
    crop_size: int = 512
    workers: int = 4
    seed: int = 0
    max_steps: int | None = None
    checkpoint_every: int = 1
    eval_every: int = 0
    eval_max_images: int | None = None
    eval_input_size: int = 512
    log_every: int = 10
    sync_bn: bool = False
    freeze_bn: bool = False
    deterministic: bool = False

    OPTIMIZERS: ClassVar[tuple[str, ...]] = ("sgd", "adamw")
    AMP_MODES: ClassVar[tuple[str, ...]] = ("auto", "off", "fp16", "bf16")

    def __post_init__(self) -> None:
        if self.optimizer not in self.OPTIMIZERS:
            raise ValueError(
                f"TrainConfig.optimizer must be one of {self.OPTIMIZERS}, got {self.optimizer!r}"
            )
        if self.amp not in self.AMP_MODES:
            raise ValueError(f"TrainConfig.amp must be one of {self.AMP_MODES}, got {self.amp!r}")
        for name in ("epochs", "batch_size", "checkpoint_every", "log_every", "eval_input_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive int, got {value!r}")
        for name in ("workers", "l2_epochs", "lr_step_epochs", "eval_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"TrainConfig.{name} must be an int >= 0, got {value!r}")
        if not isinstance(self.crop_size, int) or self.crop_size < 64 or self.crop_size % 64:
            raise ValueError(
                f"TrainConfig.crop_size must be a positive multiple of 64, got {self.crop_size!r}"
            )
        if self.max_steps is not None and (
            not isinstance(self.max_steps, int) or self.max_steps < 1
        ):
            raise ValueError(f"TrainConfig.max_steps must be None or >= 1, got {self.max_steps!r}")
        if not self.lr > 0 or self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError(
                "TrainConfig needs lr > 0, weight_decay >= 0 and 0 <= momentum < 1, got "
                f"{self.lr!r}, {self.weight_decay!r}, {self.momentum!r}"
            )
        if self.warmup_epochs < 0 or not 0 < self.lr_gamma <= 1:
            raise ValueError(
                "TrainConfig needs warmup_epochs >= 0 and 0 < lr_gamma <= 1, got "
                f"{self.warmup_epochs!r} and {self.lr_gamma!r}"
            )
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainConfig.grad_clip must be None or > 0, got {self.grad_clip!r}")
        if self.sync_bn and self.freeze_bn:
            raise ValueError("TrainConfig.sync_bn and freeze_bn exclude each other")
