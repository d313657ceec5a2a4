"""Shared test fixtures: headless plotting, and the LFW copy beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]
LFW_ROOT = REPO_ROOT.parent / "shared" / "data" / "lfw"


@pytest.fixture(scope="session")
def lfw_root() -> Path:
    """The real LFW copy in ../shared/data/lfw; skips the test when it is not there."""
    if not (LFW_ROOT / "images").is_dir():
        pytest.skip(
            f"LFW not found at {LFW_ROOT} (expected ../shared/data/lfw beside the checkout)"
        )
    return LFW_ROOT
