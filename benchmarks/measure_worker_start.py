"""Measure what a worker pool of ``sphereviz.worker_pool`` costs to start, spawned or forked.

Not part of ``make bench``. Each measurement runs in a fresh interpreter (so no forkserver is
running yet) and starts two pools of ``--workers`` workers one after the other, as notebook 03
does; each worker makes a torch optimiser (which imports ``torch._dynamo``) and returns. The
wall seconds until every worker has answered are the pool's start. Then one worker trains
notebook 03's quick run (3-D A-Softmax m = 4, 300 steps, MnistNet width 8) ``--runs`` times,
timed inside the worker, after the start's warm-up: the training speed of a worker of each kind.
The two start methods alternate over ``--rounds``.

Usage: ``python benchmarks/measure_worker_start.py [--rounds 3] [--runs 2] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

METHODS = ("spawn", "forkserver")


def _ready() -> float:
    """A worker's first job: what every training job needs before its first step."""
    import torch

    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], fused=True)
    return time.time()


def _train_quick_run(out: str) -> float:
    """Notebook 03's quick 3-D m = 4 run into ``out``; its wall seconds."""
    from sphereviz.config import TrainConfig
    from sphereviz.recipes import QUICK_NOTEBOOK_MNIST_OVERRIDES
    from sphereviz.train import train

    config = TrainConfig.preset("mnist-demo", out=out, dim=3, loss="a-softmax", m=4,
                                **QUICK_NOTEBOOK_MNIST_OVERRIDES)  # fmt: skip
    started = time.perf_counter()
    train(config, progress=False)
    return time.perf_counter() - started


def measure(method: str, workers: int, runs: int) -> dict:
    """In this (fresh) process: two pool starts and ``runs`` trainings with ``method``."""
    from sphereviz import worker_pool

    if method == "spawn":
        import multiprocessing

        worker_pool._pool_context = lambda: multiprocessing.get_context("spawn")
    starts = []
    for _ in range(2):
        started = time.time()
        with worker_pool.worker_pool(workers) as map_in_workers:
            answered = list(map_in_workers(_ready, [()] * workers))
        starts.append(max(answered) - started)
    with tempfile.TemporaryDirectory() as folder:
        with worker_pool.worker_pool(1) as map_in_workers:
            map_in_workers(_ready, [()])
            seconds = list(
                map_in_workers(_train_quick_run, [(f"{folder}/run{k}",) for k in range(runs)])
            )
    return {"method": method, "pool_start_s": starts, "train_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="measurements per method (3)")
    parser.add_argument("--runs", type=int, default=2, help="trainings per measurement (2)")
    parser.add_argument("--workers", type=int, default=2, help="workers per pool (2)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)  # the fresh process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.workers, args.runs)))
        return
    rows = []
    for _ in range(args.rounds):
        for method in METHODS:
            command = [sys.executable, __file__, "--one", method, "--workers", str(args.workers),
                       "--runs", str(args.runs)]  # fmt: skip
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(output.splitlines()[-1]))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{args.workers} workers per pool, {args.rounds} rounds; medians (all values)")
    for method in METHODS:
        mine = [row for row in rows if row["method"] == method]
        first, second = ([row["pool_start_s"][k] for row in mine] for k in (0, 1))
        train = [s for row in mine for s in row["train_s"]]
        print(
            f"{method:<10} first pool {statistics.median(first):5.2f} s, second pool "
            f"{statistics.median(second):5.2f} s, a quick notebook-03 run "
            f"{statistics.median(train):5.2f} s ({', '.join(f'{s:.2f}' for s in train)})"
        )


if __name__ == "__main__":
    main()
