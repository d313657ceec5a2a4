"""Train the missing runs of a set of specs, in parallel, one torch thread per process.

An experiment is a list of :class:`~sphereviz.runs.RunSpec`: the demo's MNIST comparison
(:func:`mnist_run_specs`) and the face runs of SphereFace's Fig. 5 (:func:`faces_run_specs`),
with the recipes they are built from. :func:`ensure_runs` reuses every run already in the runs
folder (:func:`sphereviz.runs.find_run`, by recipe, whatever its folder is called), resumes the
unfinished ones and trains the rest, several processes at once. The figure set, the demo and
the notebooks all use it, so a run trained by one is reused by the others.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from sphereviz.config import ScheduleWarning, TrainConfig
from sphereviz.runs import PreparedRun, RunSpec, find_run, load_run, target_folder
from sphereviz.train import train

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

DEFAULT_RUNS = Path("build") / "runs"
"""Where trained runs are kept and looked for (``--runs``)."""

#: The demo's comparison: (loss, m, short label). m = 1 of A-Softmax is modified softmax.
MNIST_LOSSES: tuple[tuple[str, int | None, str], ...] = (
    ("softmax", None, "softmax"),
    ("modified-softmax", None, "modified softmax (m=1)"),
    ("a-softmax", 2, "A-Softmax m=2"),
    ("a-softmax", 3, "A-Softmax m=3"),
    ("a-softmax", 4, "A-Softmax m=4"),
)
MNIST_DIMS = (3, 2)
#: Seeds of every configuration: numbers are reported as mean ± std over them, and the panel
#: figures draw the first (a representative run, not the best one).
SEEDS = (0, 1, 2)
QUICK_SEEDS = (0, 1)
"""``--quick`` (tests): two seeds, enough for a standard deviation."""
#: ``--quick``: a few seconds per run, for tests and a first look (accuracy well above chance,
#: not the converged geometry).
QUICK_MNIST_OVERRIDES: dict = {
    "epochs": 2,
    "max_train_samples": 512,
    "max_test_samples": 300,
    "width": 8,
    "batch_size": 16,  # 64 steps: the margin-biting floor is reached after 32 of them
}
#: SphereFace's Fig. 5 on a CPU: SFNet-4 with 3-D features on the six largest LFW identities
#: (1,217 aligned 112×96 crops; 80 % train, 20 % test), Adam, random flips, batch 32 (310
#: optimiser steps in 10 epochs), the margin-biting λ schedule of every recipe.
FACES_RECIPE: dict = {
    "dataset": "faces",
    "model": "sfnet4",
    "dim": 3,
    "shift": 0,
    "flip": True,
    "test_fraction": 0.2,
    "epochs": 10,
    "batch_size": 32,
    "optimizer": "adam",
    "lr": 1e-3,
}
QUICK_FACES_OVERRIDES: dict = {"epochs": 2}


def mnist_run_specs(
    quick: bool = False, seeds: Sequence[int] = SEEDS, **overrides
) -> list[RunSpec]:
    """The demo's MNIST runs: 5 losses × (3-D, 2-D) × ``seeds``, the ``mnist-demo`` preset.

    ``quick`` applies :data:`QUICK_MNIST_OVERRIDES` (run names end in ``-quick``); further
    keyword arguments override TrainConfig fields of every run.
    """
    settings = {**(QUICK_MNIST_OVERRIDES if quick else {}), **overrides}
    suffix = "-quick" if quick else ""
    specs = []
    for dim in MNIST_DIMS:
        for loss, m, label in MNIST_LOSSES:
            for seed in seeds:
                config = TrainConfig.preset(
                    "mnist-demo", loss=loss, m=m, dim=dim, **{"seed": seed, **settings}
                )
                margin = f"-m{m}" if m is not None else ""
                name = f"mnist-{loss}{margin}-{dim}d-s{config.seed}{suffix}"
                specs.append(RunSpec(name, label, loss, m, config))
    return specs


def faces_run_specs(
    faces_cache: str | Path, quick: bool = False, seeds: Sequence[int] = SEEDS, **overrides
) -> list[RunSpec]:
    """The face runs of Fig. 5: SFNet-4, 3-D features, m = 1 (modified softmax) … 4, × seeds."""
    settings = {
        **FACES_RECIPE,
        **(QUICK_FACES_OVERRIDES if quick else {}),
        "faces_cache": str(faces_cache),
        **overrides,
    }
    suffix = "-quick" if quick else ""
    specs = []
    for m in (1, 2, 3, 4):
        loss, margin = ("modified-softmax", None) if m == 1 else ("a-softmax", m)
        for seed in seeds:
            config = TrainConfig(**{"seed": seed, **settings, "loss": loss, "m": margin})
            name = f"lfw-top6-m{m}-s{config.seed}{suffix}"
            specs.append(RunSpec(name, f"m={m}", loss, m, config))
    return specs


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
        context = multiprocessing.get_context("spawn")  # no forked torch state in the workers
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_one_thread) as pool:
            seconds = pool.map(_train_in_worker, [(config, resume) for *_, config, resume in todo])
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


def _one_thread() -> None:
    torch.set_num_threads(1)


def _train_in_worker(job: tuple[TrainConfig, bool]) -> float:
    """Train (or finish) one run in a worker process; returns its wall time in seconds."""
    config, resume = job
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScheduleWarning)  # load_run recomputes them
        train(config, progress=False, resume=resume)
    return time.perf_counter() - started
