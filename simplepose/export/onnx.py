"""Export the inference graph of an IMHN to ONNX.

Only what inference uses is exported: the last stack's finest output (``IMHN.predict``),
no decoding, no NMS. Batch, height and width are dynamic (height and width as multiples of
64, which the exporter records as ``64 * h64``), so one file serves every input size. The
model's config, precision, input format and package version are stored as metadata.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from simplepose import skeleton
from simplepose._files import make_temporary_dir, remove_stale_temporaries
from simplepose._version import __version__
from simplepose.config import ModelConfig
from simplepose.formats import FLOAT_NCHW, UINT8_NHWC
from simplepose.model.imhn import IMHN

_logger = logging.getLogger(__name__)

INPUT_NAME = "input"
OUTPUT_NAME = "heatmaps"
#: The exporter's default opset; the torch.export-based exporter targets 18.
DEFAULT_OPSET = 18
EXPORTERS = ("dynamo", "torchscript")
_MAX_SIDE_UNITS = 64  # dynamic height/width up to 64 x 64 = 4096 pixels


class _ExportGraph(nn.Module):
    """``IMHN.predict`` with the input conversion and precision casts of the export."""

    def __init__(self, model: IMHN, fp16: bool, uint8_input: bool) -> None:
        super().__init__()
        self.model = model.half() if fp16 else model.float()
        self.fp16 = fp16
        self.uint8_input = uint8_input

    def forward(self, x: Tensor) -> Tensor:
        if self.uint8_input:
            # N x H x W x 3 uint8 BGR -> N x 3 x H x W / 255: the cast runs on the device.
            x = x.permute(0, 3, 1, 2).float() * (1.0 / 255.0)
        heatmaps = self.model.predict(x.half() if self.fp16 else x)
        return heatmaps.float()  # float32 out whatever the inner precision


def export_onnx(
    model: IMHN,
    path: str | os.PathLike[str],
    *,
    input_size: int = 512,
    dynamic: bool = True,
    fp16: bool = False,
    uint8_input: bool = False,
    opset: int = DEFAULT_OPSET,
    exporter: str = "dynamo",
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Export ``model.predict`` to an ONNX file, check it, and store metadata.

    Args:
        model: the network (copied; the caller's model is left as it was).
        path: the ``.onnx`` file to write (atomically: a temporary file is renamed).
        input_size: height and width of the example input; with ``dynamic=False`` the only
            size the file accepts.
        dynamic: dynamic height and width (multiples of 64); the batch is always dynamic.
        fp16: weights and arithmetic in float16 (input and output stay as documented).
        uint8_input: take uint8 (N, H, W, 3) BGR instead of float32 (N, 3, H, W) / 255.
        opset: ONNX opset, >= 17.
        exporter: ``"dynamo"`` (``torch.export``-based, PyTorch's supported exporter) or
            ``"torchscript"`` (the legacy tracer: about 10x faster, deprecated by PyTorch).
        progress: called with the name of each step as it starts (see ``StepProgress``).

    Returns:
        The path written.
    """
    import copy

    import onnx

    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    multiple = ModelConfig.INPUT_MULTIPLE
    if input_size % multiple or input_size <= 0:
        raise ValueError(f"input_size must be a positive multiple of {multiple}, got {input_size}")
    graph = _ExportGraph(copy.deepcopy(model).cpu().eval(), fp16, uint8_input).eval()
    if uint8_input:
        example = torch.zeros(2, input_size, input_size, 3, dtype=torch.uint8)
        h_axis, w_axis = 1, 2
    else:
        example = torch.zeros(2, 3, input_size, input_size)
        h_axis, w_axis = 2, 3
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    report = progress or (lambda step: None)
    # Beside the destination, so the final rename stays on one file system; its name marks
    # it as this process's, so a later export can remove it if this one is killed.
    tmp = make_temporary_dir(path)
    try:
        report(f"tracing and converting the network ({exporter} exporter)")
        raw = tmp / "raw.onnx"
        _run_exporter(graph, example, raw, opset, exporter, dynamic, (h_axis, w_axis))
        report("checking the ONNX model")
        proto = onnx.load(str(raw))
        metadata = {
            "simplepose_version": __version__,
            "config": json.dumps(model.config.to_dict()),
            "input_format": UINT8_NHWC if uint8_input else FLOAT_NCHW,
            "precision": "fp16" if fp16 else "fp32",
            "stride": str(ModelConfig.STRIDE),
            "channels": str(skeleton.NUM_CHANNELS),
            "input_size": str(input_size),
            "dynamic": str(dynamic).lower(),
            "exporter": exporter,
        }
        del proto.metadata_props[:]
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.producer_name = "simplepose"
        proto.producer_version = __version__
        onnx.checker.check_model(proto)
        report("saving")
        final = tmp / "final.onnx"
        onnx.save(proto, str(final))
        os.replace(final, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _logger.info("exported %s (%s)", path, metadata)
    return path


def export_to_cache(
    model: IMHN, path: str | os.PathLike[str], *, what: str, **options: Any
) -> Path:
    """``export_onnx`` into a cache folder, once, with visible progress (``StepProgress``),
    after removing what killed exports left in that folder.

    Args:
        model: the network.
        path: the cache file to create.
        what: how the user knows the model, for the progress line (a file name).
        **options: passed to ``export_onnx``.
    """
    from simplepose.export.progress import StepProgress

    path = Path(path)
    remove_stale_temporaries(path.parent)
    _logger.info("exporting %s to ONNX, cached as %s", what, path)
    with StepProgress(f"exporting {what} to ONNX (once, then cached)") as progress:
        return export_onnx(model, path, progress=progress.step, **options)


def _run_exporter(
    graph: nn.Module,
    example: Tensor,
    path: Path,
    opset: int,
    exporter: str,
    dynamic: bool,
    hw_axes: tuple[int, int],
) -> None:
    h_axis, w_axis = hw_axes
    with warnings.catch_warnings():
        # The exporters' own deprecation chatter is not actionable for our users.
        warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning, UserWarning))
        if exporter == "torchscript":
            axes = {0: "batch"}
            if dynamic:
                axes.update({h_axis: "height", w_axis: "width"})
            torch.onnx.export(
                graph,
                (example,),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={
                    INPUT_NAME: axes,
                    OUTPUT_NAME: {0: "batch", 2: "height/4", 3: "width/4"}
                    if dynamic
                    else {0: "batch"},
                },
            )
            return
        dims: dict[int, Any] = {0: torch.export.Dim("batch", min=1, max=256)}
        if dynamic:
            multiple = ModelConfig.INPUT_MULTIPLE
            dims[h_axis] = multiple * torch.export.Dim("h64", min=1, max=_MAX_SIDE_UNITS)
            dims[w_axis] = multiple * torch.export.Dim("w64", min=1, max=_MAX_SIDE_UNITS)
        quiet = logging.getLogger("torch.onnx")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # e.g. "torchvision is not installed" notices
        try:
            program = torch.onnx.export(
                graph,
                (example,),
                dynamo=True,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"x": dims},
                verbose=False,
            )
        finally:
            quiet.setLevel(level)
        if program is None:  # pragma: no cover - dynamo=True always returns a program
            raise RuntimeError("torch.onnx.export returned no program")
        program.save(str(path), external_data=False)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata ``export_onnx`` stored in an ONNX file (empty for foreign files)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {entry.key: entry.value for entry in proto.metadata_props}
