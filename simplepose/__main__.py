"""``python -m simplepose`` (also what ``torchrun -m simplepose`` runs)."""

from __future__ import annotations

import sys

from simplepose.cli import main

sys.exit(main())
