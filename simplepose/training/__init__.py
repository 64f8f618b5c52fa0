"""Training: ground-truth targets, losses (and later the data pipeline and the loop).

Submodules are imported explicitly (``from simplepose.training import targets``) so that
importing this package stays cheap and does not pull in torch.
"""

from __future__ import annotations
