"""Shared fixtures: the real test data in ``../shared`` and deterministic seeds.

The data folder is found through ``SIMPLEPOSE_TEST_DATA`` (default: ``../shared`` next to
the repository root). Tests that need it skip when it is absent, except under CI
(``CI=true``), where its absence is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _shared_dir() -> Path:
    return Path(os.environ.get("SIMPLEPOSE_TEST_DATA", REPO_ROOT.parent / "shared")).resolve()


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared test-data folder (``golden/``, ``data/``), read in place, never copied."""
    path = _shared_dir()
    if not (path / "golden").is_dir() or not (path / "data").is_dir():
        message = f"shared test data not found at {path} (set SIMPLEPOSE_TEST_DATA)"
        if _in_ci():
            pytest.fail(message + "; it is required under CI")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def golden_dir(shared_dir: Path) -> Path:
    """``shared/golden``: test vectors from the authors' code."""
    return shared_dir / "golden"


@pytest.fixture(scope="session")
def data_dir(shared_dir: Path) -> Path:
    """``shared/data``: real COCO images, videos and photos."""
    return shared_dir / "data"


@pytest.fixture(scope="session")
def coco_people(data_dir: Path) -> tuple[Path, Path]:
    """(annotation json, image folder) of the shared COCO person-keypoint subset."""
    return data_dir / "coco_people" / "person_keypoints.json", data_dir / "coco_people" / "images"
