"""Training: ground-truth targets, losses, the COCO data pipeline, the loop, COCO evaluation.

Submodules are imported explicitly (``from simplepose.training import targets``) so that
importing this package stays cheap and does not pull in torch.
"""

from __future__ import annotations
