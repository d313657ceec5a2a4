"""Shared test fixtures: headless plotting, the LFW copy beside the checkout, and small LFW
face folders linked from it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]
LFW_ROOT = REPO_ROOT.parent / "shared" / "data" / "lfw"

#: The six lesson notebooks in order (their solutions have the same names under solutions/).
LESSON_NOTEBOOKS = [
    "01_from_softmax_to_a_softmax.ipynb",
    "02_why_m_is_4.ipynb",
    "03_mnist_on_the_hypersphere.ipynb",
    "04_faces_on_the_sphere.ipynb",
    "05_open_set_verification.ipynb",
    "06_figures_for_papers.ipynb",
]


@pytest.fixture(scope="session")
def lfw_root() -> Path:
    """The real LFW copy in ../shared/data/lfw; skips the test when it is not there."""
    if not (LFW_ROOT / "images").is_dir():
        pytest.skip(
            f"LFW not found at {LFW_ROOT} (expected ../shared/data/lfw beside the checkout)"
        )
    return LFW_ROOT


def link_lfw_folder(lfw_root: Path, root: Path, people: Sequence[str], per_person: int) -> Path:
    """A face folder ``root/<person>/<image>`` of symbolic links to the first ``per_person``
    LFW images (sorted by file name) of each of ``people``."""
    for person in people:
        (root / person).mkdir(parents=True)
        for path in sorted((lfw_root / "images" / person).glob("*.jpg"))[:per_person]:
            (root / person / path.name).symlink_to(path)
    return root
