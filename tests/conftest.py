"""Shared test fixtures: headless plotting, the LFW copy beside the checkout, small LFW face
folders linked from it, and what keeps the suite correct and quick over pytest-xdist workers
(`make test` runs two: ``-n 2 --dist loadgroup --no-loadscope-reorder``).

Under xdist:

- each worker (and the notebook kernels, JupyterLab and training processes it starts) gets its
  share of the cores, ``OMP_NUM_THREADS`` = cores ÷ workers, unless the caller set it;
- the tests not marked ``slow`` stay with the other tests of their module (one worker builds a
  module's fixtures once), and the slow ones (notebooks, browser, training) are each a unit of
  their own, handed out first so that the long ones spread over the workers and the short
  ones fill in at the end;
- a fixture that trains or caches something more than one worker needs builds it in
  :func:`shared_cache`: one folder per test session, under a file lock, so the first worker
  builds it and the others wait and reuse it;
- the quick-mode executions of a training lesson (the lesson's, in JupyterLab or by
  papermill, and its solution's) write into one :func:`lesson_outputs` folder, one at a time:
  the first trains each run and aligns each face cache, the other finds them there by their
  config (as a student who reruns a notebook does), so each run trains once per session.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from filelock import FileLock

os.environ.setdefault("MPLBACKEND", "Agg")

XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if XDIST_WORKER:
    _threads = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", 1)))
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads))
    if "torch" in sys.modules:  # a plugin imported it before this file: tell it directly
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

REPO_ROOT = Path(__file__).resolve().parents[1]
# What sphereviz caches (the parsed embedded MNIST) goes under the ignored build/, not ~/.cache;
# the notebook kernels, JupyterLab and every process the tests start inherit it.
os.environ.setdefault("SPHEREVIZ_CACHE", str(REPO_ROOT / "build" / "cache"))
#: Debian's Chromium: the browser tests drive it, and run the lessons in JupyterLab with it.
CHROMIUM = Path("/usr/bin/chromium")
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


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup``: group the fast tests by module, hand the slow ones out first.

    Runs before xdist's own hook, which turns the ``xdist_group`` marks into work units.
    """
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        if item.get_closest_marker("slow") is None and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: slow first


@contextmanager
def shared_cache(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """``<session temporary root>/<name>``, held under ``<name>.lock`` while the caller fills or
    reads it: every xdist worker of this test session gets the same folder (the parent of its
    own base temporary folder, as pytest-xdist documents), so the first builds what goes in
    and the others wait, then find it there. Without xdist it is a folder of the one process.
    """
    root = tmp_path_factory.getbasetemp()
    if XDIST_WORKER:
        root = root.parent
    folder = root / name
    with FileLock(str(root / f"{name}.lock")):
        folder.mkdir(exist_ok=True)
        yield folder


#: The lessons that train networks (their quick-mode executions share one output folder).
TRAINING_LESSONS = ("03", "04", "05")


@contextmanager
def lesson_outputs(
    tmp_path_factory: pytest.TempPathFactory, notebook: str, own: Path
) -> Iterator[Path]:
    """The output folder for one quick-mode execution of ``notebook`` (a lesson, or its
    solution under ``solutions/``): for the lessons that train, the :func:`shared_cache`
    folder of that lesson's number, held for the whole execution; for the others ``own``
    (the test's temporary folder), since they train nothing to share."""
    number = Path(notebook).name[:2]
    if number not in TRAINING_LESSONS:
        yield own
        return
    with shared_cache(tmp_path_factory, f"lesson-{number}-outputs") as folder:
        yield folder
