"""Run every benchmark against its baseline, print one table, write ``build/bench/latest.json``.

``make bench`` runs this. Each benchmark lives in ``benchmarks/bench_*.py`` and exposes
``run(**kw) -> list[dict]`` of rows in the schema of :mod:`common`; the baselines are measured
in the same run, on the same machine, so the ratios hold even when the absolute numbers move
with the load from other processes (printed beside each benchmark, and stored in each row).

====  ========================================================================================
 #    benchmark (target)
====  ========================================================================================
 1    A-Softmax head fwd+bwd, N=256 d=512 C=10,572 vs nn.Linear + cross-entropy (≤ 1.3×)
 2    MNIST 3-D A-Softmax m=4: wall seconds to 97 % test accuracy (≤ 60 s, < DataLoader loop)
 3    SFNet-20 + A-Softmax training images/s from the uint8 cache, CUDA only (≥ 15,000 on an
      H100, ≥ 4× fp32 NCHW)
 4    prepare-faces on LFW, 2 workers (≥ 2,500 img/s cold; cache reuse < 1 s); the same
      images packed as insightface's .rec (≥ 3,000 img/s cold) and as a zip + landmark list
 5    margin explorer update: compute + redraw (≤ 100 ms median)
 6    figure set: analytic figures (≤ 10 s); full set from cached runs (≤ 60 s)
 7    notebook suite under papermill, quick mode (≤ 8 min)
====  ========================================================================================

Usage: ``python benchmarks/run.py [--only 1,4] [--quick] [--json] [--markdown]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from common import (
    REPO_ROOT,
    format_table,
    load_average,
    machine_info,
    make_row,
    markdown_table,
    skipped_row,
    write_report,
)

OUTPUT_DIR = REPO_ROOT / "build" / "bench"


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def loss_head(quick: bool) -> list[dict]:
    import bench_loss_head

    repeats = 5 if quick else 20
    rows = bench_loss_head.run(repeats=repeats, device="cpu")
    # the same heads at d = C = 16: host dispatch cost only, the CPU's view of the GPU regime
    tiny = {"embedding_size": 16, "num_classes": 16, "targeted": False, "threads": 1}
    rows += bench_loss_head.run(repeats=20 * repeats, device="cpu", **tiny)
    if _cuda_available():
        rows += bench_loss_head.run(repeats=10 * repeats, device="cuda")
    return rows


def mnist_training(quick: bool) -> list[dict]:
    import bench_mnist_training

    return bench_mnist_training.run(quick=quick)


def sfnet_training(quick: bool) -> list[dict]:
    import gpu_check

    if not _cuda_available():
        return [skipped_row(3, gpu_check.SFNET_WHAT, "no CUDA", gpu_check.SFNET_TARGETS)]
    return gpu_check.sfnet_rows(steps=20 if quick else 50)


def prepare_faces(quick: bool) -> list[dict]:
    import bench_prepare_faces
    import bench_prepare_forms

    if not (bench_prepare_faces.LFW_ROOT / "images").is_dir():
        reason = f"LFW not found at {bench_prepare_faces.LFW_ROOT}"
        return [skipped_row(4, bench_prepare_faces.WHAT, reason)]
    workers = (2,) if quick else (1, 2)
    return bench_prepare_faces.run(workers=workers) + bench_prepare_forms.run(workers=workers)


def margin_explorer(quick: bool) -> list[dict]:
    import bench_widgets

    return bench_widgets.run(repeats=1 if quick else 3)


def figures(quick: bool) -> list[dict]:
    import bench_figures

    return bench_figures.run(repeats=1 if quick else 3)


def notebooks(quick: bool) -> list[dict]:
    import bench_notebooks

    return bench_notebooks.run()


#: number → (title, function(quick) -> rows)
BENCHMARKS: dict[int, tuple[str, Callable[[bool], list[dict]]]] = {
    1: ("A-Softmax head forward+backward", loss_head),
    2: ("MNIST 3-D: time to 97 % test accuracy", mnist_training),
    3: ("SFNet-20 + A-Softmax training throughput (CUDA)", sfnet_training),
    4: ("prepare-faces on LFW", prepare_faces),
    5: ("margin explorer update", margin_explorer),
    6: ("figure set", figures),
    7: ("notebook suite (papermill, quick mode)", notebooks),
}


def parse_only(text: str | None) -> list[int]:
    """``"1,4"`` → ``[1, 4]``; None → every benchmark."""
    if text is None or not text.strip():
        return sorted(BENCHMARKS)
    try:
        numbers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        numbers = []
    unknown = sorted(set(numbers) - set(BENCHMARKS))
    if not numbers or unknown:
        raise ValueError(
            f"--only takes comma-separated benchmark numbers from {sorted(BENCHMARKS)}, got "
            f"{text!r}; e.g. --only 1,4"
        )
    return sorted(set(numbers))


def run_benchmarks(numbers: list[int], quick: bool, log=print) -> list[dict]:
    """The rows of each selected benchmark; one that raises gives an ``error`` row instead."""
    rows: list[dict] = []
    for number in numbers:
        title, function = BENCHMARKS[number]
        load = load_average()
        log(f"[{number}] {title} … (load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})", flush=True)
        started = time.perf_counter()
        try:
            new_rows = function(quick)
        except Exception as error:  # one broken benchmark must not stop the rest
            log(traceback.format_exc(), flush=True)
            new_rows = [
                make_row(
                    number, title, "-", None, "", note=f"error: {type(error).__name__}: {error}"
                )
            ]
        for row in new_rows:
            row["benchmark"] = number
        rows += new_rows
        log(f"[{number}] done in {time.perf_counter() - started:.1f} s", flush=True)
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated benchmark numbers, e.g. 1,4")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--json", action="store_true", help="print the report as JSON, last")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--out", default=str(OUTPUT_DIR), help="folder for the JSON reports")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        numbers = parse_only(args.only)
    except ValueError as error:
        build_parser().error(str(error))
    log = (lambda *a, **k: print(*a, **k, file=sys.stderr)) if args.json else print
    machine = machine_info()
    log(
        f"{machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB, "
        f"torch {machine['torch']} ({machine['torch_threads']} threads), "
        f"device {machine['cuda_device'] or machine['device']}, commit "
        f"{(machine['git_commit'] or '?')[:10]}{' (dirty)' if machine['git_dirty'] else ''}",
        flush=True,
    )
    rows = run_benchmarks(numbers, args.quick, log=log)
    report = {
        "machine": machine,
        "options": {"only": numbers, "quick": args.quick},
        "load_at_end": load_average(),
        "rows": rows,
    }
    latest, stamped = write_report(report, Path(args.out))
    log("")
    log(markdown_table(rows) if args.markdown else format_table(rows))
    log(f"\nwritten: {latest} and {stamped}")
    if args.json:
        print(json.dumps(report, sort_keys=True), flush=True)
    return 1 if any((row["note"] or "").startswith("error") for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
