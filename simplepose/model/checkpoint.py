"""Saving and loading IMHN checkpoints: the project's format and the authors' format.

Formats accepted by ``load_checkpoint``:

- the authors' (``PoseNet_52_epoch.pth``): ``{"weights": state_dict, ...}`` whose keys start
  with ``posenet.`` and possibly ``module.`` (saved from DistributedDataParallel); extra
  entries such as the optimizer state are ignored;
- a bare state_dict, or one under ``"state_dict"`` / ``"model"``;
- the project's: ``{"format": "simplepose", "version": ..., "config": {...},
  "state_dict": ...}`` (training checkpoints add optimizer state and the like).

A file without a config gets its architecture inferred from the tensor shapes. Weights given
by name (``released``) are resolved to a file by ``simplepose.model.hub``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simplepose._files import atomic_write
from simplepose._version import __version__
from simplepose.config import ModelConfig
from simplepose.errors import CheckpointError, WeightsNotFoundError
from simplepose.model.imhn import IMHN

_logger = logging.getLogger(__name__)

FORMAT_NAME = "simplepose"
#: Prefixes the authors' checkpoints put in front of the network's own key names.
_FOREIGN_PREFIXES = ("module.", "posenet.", "model.")


def _numpy_safe_globals() -> list[Any]:
    # Old checkpoints pickle numpy scalars (e.g. the training loss) next to the weights;
    # allow exactly those types so weights-only loading still works for them.
    allowed: list[Any] = [np.dtype, np.ndarray]
    allowed += [
        type(np.dtype(t))
        for t in (np.float16, np.float32, np.float64, np.int32, np.int64, np.bool_)
    ]
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    allowed += [multiarray.scalar, multiarray._reconstruct]
    return allowed


def _torch_load(path: Path, map_location: str | torch.device, trusted: bool) -> Any:
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=not trusted)
    except KeyboardInterrupt:
        raise
    except Exception as error:  # torch.load fails in many ways on bad files; all mean the same
        detail = str(error)
        culprit = next((line for line in detail.splitlines() if "Unsupported global" in line), "")
        name = _real_global(culprit)
        if name is not None:
            raise CheckpointError(
                f"{path} holds a Python object ({name}) besides the weights, which safe "
                "(weights-only) loading refuses; only if the file comes from a source you "
                f"trust: simplepose convert --trust-checkpoint {path} OUT.pth "
                "(Python: load_checkpoint(..., trusted=True))"
            ) from error
        raise CheckpointError(_unreadable(path, error)) from error


def _real_global(culprit: str) -> str | None:
    """The ``module.name`` in torch's "Unsupported global: GLOBAL module.name ..." when it
    exists, else ``None``. A damaged pickle names garbage (a cut
    ``torch._utils._rebuild_tens``): such a file is corrupt, and trusting it would not help."""
    import importlib

    match = re.search(r"GLOBAL ([\w.]+)\.(\w+)", culprit)
    if match is None:
        return None
    try:
        found = hasattr(importlib.import_module(match[1]), match[2])
    except Exception:  # ImportError, or a module that fails to import: not a real global
        return None
    return f"{match[1]}.{match[2]}" if found else None


_ONNX_SUFFIXES = (".onnx",)
_ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


def _is_onnx(path: Path) -> bool:
    """Whether ``path`` parses as an ONNX model with a graph (only asked of files that
    ``torch.load`` refused, so the cost of parsing does not matter)."""
    try:
        import onnx

        proto = onnx.load_model(str(path), load_external_data=False)
    except Exception:  # not protobuf, or onnx missing: not a model we can recognise
        return False
    return proto.ir_version > 0 and len(proto.graph.node) > 0


def _unreadable(path: Path, error: Exception) -> str:
    """Why ``torch.load`` could not read ``path``, in the user's terms.

    The kind of file is recognised from its first bytes (and, for ONNX and TensorRT files,
    its name), so the message can say what the file is and what to do with it. torch's own
    message is quoted only when it describes the damage (a broken zip archive): for other
    files it suggests loading with ``weights_only=False``, which would run whatever code the
    file holds, and is wrong advice for a file that is not a checkpoint anyway.
    """
    suffix = path.suffix.lower()
    if suffix in _ENGINE_SUFFIXES:
        return (
            f"{path} is a TensorRT engine, not a PyTorch checkpoint: run it with "
            "--backend tensorrt; export and convert need the checkpoint it was built from"
        )
    if _is_onnx(path):
        return (
            f"{path} is an ONNX model, not a PyTorch checkpoint: run it with --backend "
            "onnxruntime (or tensorrt); export and convert need the checkpoint it was made from"
        )
    with path.open("rb") as file:
        head = file.read(4)
    readable = f"{path} is not a readable PyTorch checkpoint"
    if not head:
        return f"{readable}: the file is empty (0 bytes)"
    if head.startswith(b"PK\x03\x04"):  # torch.save's zip format
        damage = str(error).split(". ")[0].strip()
        if "weights_only" in damage or not damage:
            damage = "the archive is damaged"
        return f"{readable} (truncated or corrupt?): {damage}"
    if head[0] == 0x80 and 2 <= head[1] <= 5:  # a pickle: the format before torch 1.6
        return f"{readable} (truncated or corrupt?): a damaged or foreign pickle file"
    return (
        f"{readable}: its content is neither PyTorch's zip format nor a pickle "
        "(corrupt, or another kind of file?)"
    )


def _extract_state_dict(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """(state_dict with the network's own key names, config dict or None)."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path} does not hold a dict of weights (found {type(obj).__name__})"
        )
    config = obj.get("config") if obj.get("format") == FORMAT_NAME else None
    state: Any = obj
    for key in ("state_dict", "weights", "model"):
        if isinstance(obj.get(key), Mapping):
            state = obj[key]
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(
            f"{path} holds no tensors; expected a state_dict, or one under 'weights' / 'state_dict'"
        )
    cleaned = {}
    for key, value in tensors.items():
        while key.startswith(_FOREIGN_PREFIXES):
            key = key.split(".", 1)[1]
        cleaned[key] = value
    return cleaned, config


def infer_config(state_dict: Mapping[str, torch.Tensor]) -> ModelConfig:
    """Infer the architecture (stacks, channels, outputs, SE reduction) from tensor shapes.

    Raises:
        CheckpointError: the keys do not look like an IMHN.
    """
    try:
        num_stacks = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("hourglass."))
        base = int(state_dict["hourglass.0.hg.0.0.convBlock.6.weight"].shape[0])
        level1 = int(state_dict["hourglass.0.hg.0.1.convBlock.6.weight"].shape[0])
        outputs = int(state_dict["outs.0.0.conv.weight"].shape[0])
        squeezed = int(state_dict["features.0.before_regress.0.2.fc.0.weight"].shape[0])
    except (KeyError, ValueError, IndexError) as error:
        sample = ", ".join(sorted(state_dict)[:3])
        raise CheckpointError(
            f"the weights do not look like an IMHN (missing {error}); first keys: {sample}"
        ) from error
    return ModelConfig(
        num_stacks=num_stacks,
        base_channels=base,
        increase=level1 - base,
        num_outputs=outputs,
        se_reduction=max(1, base // max(squeezed, 1)),
    )


def _check_compatible(model: IMHN, state_dict: Mapping[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = sorted(
        f"{k} {tuple(state_dict[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in set(expected) & set(state_dict)
        if state_dict[k].shape != expected[k].shape
    )
    if not (missing or unexpected or wrong):
        return
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if keys:
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            parts.append(f"{len(keys)} {label}: {', '.join(keys[:3])}{more}")
    raise CheckpointError(f"{path} does not match the IMHN {model.config}: " + "; ".join(parts))


def load_checkpoint(
    path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    *,
    config: ModelConfig | None = None,
    trusted: bool = False,
) -> IMHN:
    """Load an IMHN from a checkpoint file, in eval mode, with float32 weights.

    Args:
        path: the file (see the module docstring for the formats accepted).
        map_location: where tensors are loaded, as in ``torch.load``.
        config: the architecture, overriding the file's own config or the inferred one.
        trusted: allow arbitrary pickled objects (``weights_only=False``); only for files you
            trust.

    Raises:
        WeightsNotFoundError: the path does not exist.
        CheckpointError: the file is not a checkpoint, or its weights do not match the
            architecture (the message names the first missing / unexpected / misshapen keys).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"checkpoint {path} does not exist" if not path.is_dir() else f"{path} is a folder"
        )
    state_dict, stored_config = _extract_state_dict(_torch_load(path, map_location, trusted), path)
    if config is None:
        config = ModelConfig.from_dict(stored_config) if stored_config else infer_config(state_dict)
    model = IMHN(config)
    _check_compatible(model, state_dict, path)
    model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
    )
    _logger.info("loaded %s (%s)", path, config)
    return model.eval()


def checkpoint_dict(model: IMHN, **extra: Any) -> dict[str, Any]:
    """The project's checkpoint dict for ``model`` (``extra`` entries are added as they are)."""
    return {
        "format": FORMAT_NAME,
        "version": __version__,
        "config": model.config.to_dict(),
        "state_dict": model.state_dict(),
        **extra,
    }


def save_checkpoint(model: IMHN, path: str | os.PathLike[str], **extra: Any) -> Path:
    """Save ``model`` in the project's format (weights, resolved config, package version).

    The file is written to a temporary name and renamed, so an interruption never leaves a
    truncated checkpoint behind.

    Returns:
        The path written.
    """
    path = Path(path).expanduser()
    with atomic_write(path, "wb") as file:
        torch.save(checkpoint_dict(model, **extra), file)
    return path
