"""Names shared by the exporters and the inference backends.

``simplepose.export`` writes models that ``simplepose.inference`` runs, and ``inference``
exports checkpoints on the fly; both import these names from here, so neither package
imports the other at module level.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Network input float32 (N, 3, H, W), BGR / 255: what ``IMHN`` and default exports take.
FLOAT_NCHW = "float32_nchw"
#: Network input uint8 (N, H, W, 3) BGR: exports made with ``--uint8-input`` (cast in-graph).
UINT8_NHWC = "uint8_nhwc"
INPUT_FORMATS = (FLOAT_NCHW, UINT8_NHWC)


def cache_dir() -> Path:
    """``$SIMPLEPOSE_CACHE`` or ``~/.cache/simplepose``: exported models and engines."""
    return Path(os.environ.get("SIMPLEPOSE_CACHE") or Path.home() / ".cache" / "simplepose")
