"""Wall time of the notebook suite under papermill in quick mode (benchmark 7, target ≤ 8 min).

Each notebook runs exactly as ``make test`` runs it: this calls the notebook's own test in
``tests/test_notebooks.py`` (``test_notebook_<NN>_…``: the ``sphereviz`` kernel, ``quick =
True``, the test's parameter overrides, its checks of the results), with a fresh temporary
folder as ``tmp_path``, so every run trains and aligns from scratch as on a fresh checkout.
A notebook without such a test is run by the module's ``execute_notebook`` with quick mode's
defaults. One run each, one after the other: a row per notebook and one for the suite. A
notebook that is not written yet, needs data that is absent, or fails gives a row with a note
(and no time unless it ran to the end); the total is then marked incomplete and its target
is not judged.

Run: ``python benchmarks/bench_notebooks.py [--only 01,03] [--json]``.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import REPO_ROOT, Target, make_row, print_rows

WHAT = "notebook under papermill, quick mode"
TARGET_TOTAL_S = 8 * 60


def _test_module():
    """``tests/test_notebooks.py`` (its ``conftest`` import needs ``tests/`` on the path)."""
    tests_dir = str(REPO_ROOT / "tests")
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    import test_notebooks

    return test_notebooks


def notebook_runner(suite, name: str) -> Callable[[Path], object]:
    """The notebook's test function if it takes only ``tmp_path``, else ``execute_notebook``."""
    prefix = f"test_notebook_{name[:2]}_"
    for attribute, function in vars(suite).items():
        if attribute.startswith(prefix) and callable(function):
            if list(inspect.signature(function).parameters) == ["tmp_path"]:
                return function
    return lambda tmp_path: suite.execute_notebook(name, tmp_path)


def run(names: list[str] | None = None) -> list[dict]:
    """One row per notebook (seconds, once) and a row for the suite's total."""
    import pytest

    suite = _test_module()
    names = list(suite.EXPECTED_NOTEBOOKS if names is None else names)
    rows, total, ran = [], 0.0, 0
    for name in names:
        note, seconds = None, None
        if not (suite.NOTEBOOK_DIR / name).is_file():
            note = "not written yet"
        else:
            runner = notebook_runner(suite, name)
            scratch = tempfile.TemporaryDirectory(prefix=f"bench-{name[:2]}-")
            started = time.perf_counter()
            try:
                runner(Path(scratch.name))
                seconds = time.perf_counter() - started
            except pytest.skip.Exception as skipped:
                note = f"skipped: {skipped.msg}"
            except pytest.fail.Exception as failed:
                note = f"failed: {str(failed.msg).splitlines()[0]}"
            except AssertionError as error:  # it ran, but a check of its results failed
                seconds = time.perf_counter() - started
                note = f"results check failed: {str(error).splitlines()[0]}"
            finally:
                scratch.cleanup()
        if seconds is not None:
            total, ran = total + seconds, ran + 1
        samples = [] if seconds is None else [seconds]
        runner_name = None if note == "not written yet" else getattr(runner, "__name__", None)
        rows.append(
            make_row(7, WHAT, name, samples, "s", note=note, details={"runner": runner_name})
        )
    incomplete = ran < len(names)
    rows.append(
        make_row(
            7,
            "notebook suite under papermill, quick mode",
            f"total of {ran} of {len(names)} notebooks",
            [total] if ran else [],
            "s",
            targets=() if incomplete else [Target("value", "<=", TARGET_TOTAL_S, "s")],
            note=f"incomplete: {len(names) - ran} did not run" if incomplete else None,
            details={"target_s": TARGET_TOTAL_S},
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated notebook name prefixes, e.g. 01,03")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    names = None
    if args.only:
        prefixes = tuple(p.strip() for p in args.only.split(","))
        names = [n for n in _test_module().EXPECTED_NOTEBOOKS if n.startswith(prefixes)]
    print_rows(run(names), as_json=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
