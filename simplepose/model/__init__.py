"""The IMHN network and its checkpoints."""

from __future__ import annotations

from simplepose.model.checkpoint import load_checkpoint, resolve_weights, save_checkpoint
from simplepose.model.imhn import IMHN, build_model

__all__ = ["IMHN", "build_model", "load_checkpoint", "resolve_weights", "save_checkpoint"]
