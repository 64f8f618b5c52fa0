"""The IMHN network, its checkpoints, and named weights fetched on demand."""

from __future__ import annotations

from simplepose.model.checkpoint import load_checkpoint, save_checkpoint
from simplepose.model.hub import fetch_weights, resolve_weights
from simplepose.model.imhn import IMHN, build_model

__all__ = [
    "IMHN",
    "build_model",
    "fetch_weights",
    "load_checkpoint",
    "resolve_weights",
    "save_checkpoint",
]
