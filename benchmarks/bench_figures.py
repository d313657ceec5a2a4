"""Wall time of the figure set (benchmark 6): analytic figures ≤ 10 s, full set ≤ 60 s.

Two sets, as ``sphereviz figures`` makes them:

- the analytic figures (``--analytic-only``: ψ curves, decision regions with two and four
  classes, the bound map; PDF + SVG + PNG each, then the README, gallery and manifest);
- the full set of ``make figures``: the analytic figures and the MNIST figures from the demo's
  ten cached runs in ``build/runs`` (2-D features, the sphere panels and their interactive
  pages, angle histograms, accuracy and training curves).

The runs are trained first when they are missing (the demo recipe, ``sweep.ensure_runs``;
not timed). Each set is timed two ways: in this process (``figures.generate_figures``, median
over repeats after one untimed warm-up that pays for imports and font caches) and as the user
runs it, ``python -m sphereviz figures`` in a fresh process (imports included; one untimed
run first, so a run it finds missing is trained outside the clock). Output goes to a
temporary folder. Run: ``python benchmarks/bench_figures.py [--repeats N] [--json]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO_ROOT, Target, make_row, print_rows, time_calls

TARGETS_S = {"analytic": 10.0, "full": 60.0}
WHAT = {
    "analytic": "figure set: analytic figures",
    "full": "figure set: full, from the cached demo runs",
}


def prepare_runs(runs_dir: Path, log=print) -> None:
    """Train the demo's ten MNIST runs into ``runs_dir`` unless they are already there."""
    from sphereviz import sweep

    sweep.ensure_runs(sweep.mnist_run_specs(), runs_dir, progress=False, log=log)


def _command_seconds(arguments: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "sphereviz", "figures", "--no-progress", *arguments],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def run(repeats: int = 3, runs_dir: str | Path | None = None, log=print) -> list[dict]:
    """Rows for each set: in-process median, and the ``sphereviz figures`` command's median."""
    from sphereviz import figures, sweep

    runs_dir = Path(runs_dir) if runs_dir is not None else REPO_ROOT / sweep.DEFAULT_RUNS
    prepare_runs(runs_dir, log=log)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-figures-") as scratch:
        out = Path(scratch)
        quiet = {"runs_dir": runs_dir, "progress": False, "log": lambda *_: None}
        in_process = time_calls(
            {
                "analytic": lambda: figures.generate_figures(
                    out / "analytic", analytic_only=True, **quiet
                ),
                "full": lambda: figures.generate_figures(out / "full", **quiet),
            },
            repeats=repeats,
        )
        arguments = {
            "analytic": ["--analytic-only", "--out", str(out / "cli-analytic")],
            "full": ["--out", str(out / "cli-full"), "--runs", str(runs_dir)],
        }
        for name in ("analytic", "full"):
            written = len(list((out / name).glob("*.pdf")))
            target = [Target("value", "<=", TARGETS_S[name], "s")]
            details = {"pdf_figures": written, "runs_dir": str(runs_dir)}
            # one untimed run first: it trains whatever runs a fresh process finds missing
            # (its configs come from the code on disk, which another session may have changed)
            _command_seconds(arguments[name])
            variants = {
                "in process (warm)": in_process[name],
                "`sphereviz figures` command (fresh process)": [
                    _command_seconds(arguments[name]) for _ in range(repeats)
                ],
            }
            for variant, samples in variants.items():
                rows.append(
                    make_row(6, WHAT[name], variant, samples, "s", targets=target, details=details)
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", default=None, help="run folder cache (default build/runs)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    print_rows(run(args.repeats, args.runs), as_json=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
