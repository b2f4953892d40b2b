"""Shared test set-up: offline, seeded, small thread count, and paths to shared data."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import importlib
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The team's shared folder beside the checkout (absent on some machines).
SHARED_DIR = REPO_ROOT.parent / "shared"
SLURP_DEVEL = SHARED_DIR / "data" / "slurp" / "devel.jsonl"

torch.set_flush_denormal(True)


def benchmark_module(name: str) -> Iterator[ModuleType]:
    """Yield ``benchmarks/<name>.py`` imported as its scripts run it (``benchmarks/`` on the path)."""
    folder = str(REPO_ROOT / "benchmarks")
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(folder)


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def slurp_devel_path() -> Path:
    """The real SLURP devel annotations (text only), or a skip where ../shared is absent."""
    if not SLURP_DEVEL.is_file():
        pytest.skip(f"real SLURP devel annotations not found at {SLURP_DEVEL}")
    return SLURP_DEVEL


def _export_extra_missing() -> str | None:
    """Why the `export` extra cannot be used here, or None when it can."""
    try:
        import optimum.onnxruntime  # noqa: F401
    except Exception as err:  # ImportError, or optimum-onnx failing on transformers 5.x
        return (
            "needs the `export` extra (pip install 'hf-quads[export]'); optimum-onnx caps "
            f"transformers below 4.58 and is absent or unusable here ({type(err).__name__}: {err})"
        )
    return None


def pytest_collection_modifyitems(config, items):
    export_items = [item for item in items if item.get_closest_marker("export")]
    if not export_items:
        return
    reason = _export_extra_missing()
    if reason:
        for item in export_items:
            item.add_marker(pytest.mark.skip(reason=reason))
