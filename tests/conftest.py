"""Shared fixtures: the real test data in ``../shared`` and deterministic seeds.

The data folder is found through ``SIMPLEPOSE_TEST_DATA`` (default: ``../shared`` next to
the repository root). Tests that need it skip when it is absent, except under CI
(``CI=true``), where its absence is a failure.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent

# Deterministic cuBLAS for the exact-resume tests on CUDA: torch reads this variable once, at
# its first cuBLAS call in the process, so it is set before any test runs.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


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


def deterministic_weights(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """The golden README's deterministic weights for each (full) state_dict key and shape.

    For key ``k``: ``rng = default_rng(crc32(k))``; the first matching rule draws the values
    (float64, then cast to float32); see ``shared/golden/README.md``.
    """
    weights = {}
    for key, shape in shapes.items():
        rng = np.random.default_rng(zlib.crc32(key.encode()))
        if key.endswith("num_batches_tracked"):
            weights[key] = torch.zeros(shape, dtype=torch.int64)
            continue
        if key.endswith("running_var"):
            values = rng.uniform(0.5, 1.5, shape)
        elif key.endswith("running_mean"):
            values = 0.1 * rng.standard_normal(shape)
        elif len(shape) >= 2:
            values = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))
        elif key.endswith("weight"):
            values = 1 + 0.1 * rng.standard_normal(shape)
        else:
            values = 0.1 * rng.standard_normal(shape)
        weights[key] = torch.from_numpy(np.asarray(values).astype(np.float32))
    return weights


@pytest.fixture(scope="session")
def golden_meta(golden_dir: Path) -> dict:
    """``imhn_golden_meta.json``: per golden model, its config and state_dict key shapes."""
    return json.loads((golden_dir / "imhn_golden_meta.json").read_text())


@pytest.fixture(scope="session")
def authors_checkpoint(golden_meta: dict, tmp_path_factory: pytest.TempPathFactory):
    """Factory: ``authors_checkpoint("small")`` -> path of a checkpoint in the authors' format
    (``{"weights": {"posenet.<key>": tensor}}``) holding the deterministic golden weights."""
    cache: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in cache:
            weights = deterministic_weights(golden_meta[name]["state_dict_shapes"])
            path = tmp_path_factory.mktemp("authors") / f"posenet_{name}.pth"
            torch.save({"weights": weights, "epoch": 52}, path)
            cache[name] = path
        return cache[name]

    return make


def _cuda_available() -> bool:
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` skip cleanly on machines without a CUDA device."""
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none available)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def trained_like(model: torch.nn.Module) -> torch.nn.Module:
    """Give ``model`` the golden README's deterministic weights (variance-preserving, so the
    outputs have structure, unlike the authors' near-zero initialisation)."""
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    model.load_state_dict(deterministic_weights(shapes))
    return model.eval()


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in: a read-only one under ``tmp_path``, or
    for root (whom file modes do not stop) its own ``/proc/PID`` folder."""
    if os.geteuid() == 0:
        return Path(f"/proc/{os.getpid()}")
    folder = tmp_path / "read-only"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o555)
    return folder
