"""Train the missing runs of a set of specs, in parallel, one torch thread per process.

An experiment is a list of :class:`~sphereviz.recipes.RunSpec` (:mod:`sphereviz.recipes`: the
demo's MNIST comparison and the face runs of SphereFace's Fig. 5). :func:`ensure_runs` reuses
every run already in the runs folder (:func:`sphereviz.runs.find_run`, by recipe, whatever its
folder is called), resumes the unfinished ones and trains the rest, several processes at once.
The figure set, the demo and the notebooks all use it, so a run trained by one is reused by the
others.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from sphereviz.config import ScheduleWarning, TrainConfig
from sphereviz.recipes import (
    DEFAULT_RUNS,
    FACES_RECIPE,
    MNIST_DIMS,
    MNIST_LOSSES,
    QUICK_FACES_OVERRIDES,
    QUICK_MNIST_OVERRIDES,
    QUICK_SEEDS,
    SEEDS,
    RunSpec,
    faces_run_specs,
    mnist_run_specs,
)
from sphereviz.runs import PreparedRun, find_run, load_run, target_folder
from sphereviz.train import train
from sphereviz.worker_pool import worker_pool

__all__ = [
    "DEFAULT_RUNS",
    "FACES_RECIPE",
    "MNIST_DIMS",
    "MNIST_LOSSES",
    "QUICK_FACES_OVERRIDES",
    "QUICK_MNIST_OVERRIDES",
    "QUICK_SEEDS",
    "SEEDS",
    "ensure_runs",
    "faces_run_specs",
    "mnist_run_specs",
]
# The recipes (run specs, seeds, the quick settings) are sphereviz.recipes; named here too, as
# the figure set, the demo and the notebooks have always imported them from the sweep.


def ensure_runs(
    specs: Sequence[RunSpec],
    runs_dir: str | Path = DEFAULT_RUNS,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
    jobs: int | None = None,
) -> list[PreparedRun]:
    """Each spec's finished run: reused from ``runs_dir`` when one with its config is there,
    else trained into ``runs_dir/<spec.name>`` (an unfinished one is resumed).

    Missing runs are trained by ``jobs`` processes at once, each with one torch thread (None:
    one per CPU core; on 2 cores two single-threaded runs take about half the time of two
    two-threaded runs in a row); with ``jobs=1`` they train in this process, where
    ``progress`` shows each run's bar (None: only on a terminal).

    Interrupting (Ctrl-C, or SIGINT to this process alone) stops the workers too, within
    :data:`~sphereviz.worker_pool.WORKER_STOP_SECONDS` (see
    :func:`~sphereviz.worker_pool.worker_pool`), and raises ``KeyboardInterrupt``
    here: each run keeps its last finished epoch and the next call resumes it.
    """
    runs_dir = Path(runs_dir)
    found = {}
    todo = []
    for index, spec in enumerate(specs, start=1):
        folder = find_run(spec.config, runs_dir, preferred=spec.name)
        if folder is not None:
            log(f"[{index}/{len(specs)}] reusing {folder}")
            found[index] = (folder, True, 0.0)
            continue
        folder, resume = target_folder(spec, runs_dir)
        if any(folder == other for _, other, *_ in todo):
            raise ValueError(f"two runs of this set would train into {folder}; give them names")
        todo.append((index, folder, dataclasses.replace(spec.config, out=str(folder)), resume))
        log(f"[{index}/{len(specs)}] {'resuming' if resume else 'training'} {spec.name} → {folder}")
    jobs = min(os.cpu_count() or 1, len(todo)) if jobs is None else min(jobs, len(todo))
    if jobs > 1:
        with worker_pool(jobs) as map_in_workers:
            seconds = map_in_workers(
                _train_in_worker, [(config, resume) for *_, config, resume in todo]
            )
            for (index, folder, *_), took in zip(todo, seconds, strict=True):
                log(f"[{index}/{len(specs)}] trained {folder.name} in {took:.0f} s")
                found[index] = (folder, False, took)
    else:
        for index, folder, config, resume in todo:
            started = time.perf_counter()
            train(config, progress=progress, resume=resume)
            found[index] = (folder, False, time.perf_counter() - started)
    return [
        PreparedRun(spec, load_run(found[index][0]), *found[index][1:])
        for index, spec in enumerate(specs, start=1)
    ]


def _train_in_worker(config: TrainConfig, resume: bool) -> float:
    """Train (or finish) one run in a worker process; returns its wall time in seconds."""
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScheduleWarning)  # load_run recomputes them
        train(config, progress=False, resume=resume)
    return time.perf_counter() - started
