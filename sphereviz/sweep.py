"""Train the missing runs of a set of specs, in parallel, one torch thread per process.

An experiment is a list of :class:`~sphereviz.recipes.RunSpec` (:mod:`sphereviz.recipes`: the
demo's MNIST comparison and the face runs of SphereFace's Fig. 5). :func:`ensure_runs` reuses
every run already in the runs folder (:func:`sphereviz.runs.find_run`, by recipe, whatever its
folder is called), resumes the unfinished ones and trains the rest, several processes at once.
The figure set, the demo and the notebooks all use it, so a run trained by one is reused by the
others.
"""

from __future__ import annotations

import atexit
import dataclasses
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import torch

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
    :data:`WORKER_STOP_SECONDS` (see :func:`_worker_pool`), and raises ``KeyboardInterrupt``
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
        with _worker_pool(jobs) as map_in_workers:
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


PR_SET_PDEATHSIG = 1  # linux/prctl.h
WORKER_STOP_SECONDS = 10.0
"""How long a worker may take to stop after SIGTERM before it is killed (SIGKILL)."""


@contextmanager
def _worker_pool(jobs: int) -> Iterator[Callable]:
    """``map`` over a pool of ``jobs`` spawned worker processes that an interruption stops.

    Yields ``map_in_workers(function, items)``, the pool's ``map`` (results in order).
    ``ProcessPoolExecutor``'s own exit waits for every submitted run to finish, so a Ctrl-C
    would hang until the whole sweep was trained. Here the workers never act on SIGINT (a
    Ctrl-C at the terminal reaches the whole process group; the parent alone decides): they
    start with it blocked (the mask survives fork and exec, so not even their imports can be
    interrupted) and then ignore it. When the block is left by ``KeyboardInterrupt`` (or
    ``SystemExit``) the queued runs are cancelled and each worker gets SIGTERM, which it turns
    into ``SystemExit``: the run unwinds (its lock released, no temporary file left; its files
    are only ever replaced atomically, so the folder holds its last finished epoch, never a
    half-written one) and the worker exits at once (``os._exit`` after the exit handlers: the
    interpreter's teardown with torch loaded takes seconds). One still alive after
    :data:`WORKER_STOP_SECONDS` is killed. An ordinary error in one run cancels the queued runs
    and lets the running ones finish.
    """
    context = multiprocessing.get_context("spawn")  # no forked torch state in the workers
    pool = ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_init_worker, initargs=(os.getpid(),)
    )

    def map_in_workers(function: Callable, items: Sequence) -> Iterator:
        with _sigint_blocked():  # the workers are spawned by these submissions
            return pool.map(function, items)

    try:
        yield map_in_workers
    except (KeyboardInterrupt, SystemExit):
        with _sigint_blocked():  # a second Ctrl-C waits for the workers to be stopped
            _stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued runs, SIGTERM every worker, SIGKILL those that outlive the grace."""
    workers = list((pool._processes or {}).values())  # no public handle before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    deadline = time.monotonic() + WORKER_STOP_SECONDS
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            worker.kill()
            worker.join()


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT held back in this thread (POSIX): one that arrives meanwhile is delivered after."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _init_worker(parent: int) -> None:
    """A worker: one torch thread; SIGINT ignored, SIGTERM raised as ``SystemExit``, and on
    Linux SIGTERM too when ``parent`` dies (a notebook kernel killed or restarted), so that an
    orphaned worker stops its run at once, as after a Ctrl-C, instead of training on and
    holding the run's lock against the next call."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _stop_when_parent_dies(parent)
    torch.set_num_threads(1)


def _stop_when_parent_dies(parent: int) -> None:
    """``prctl(PR_SET_PDEATHSIG, SIGTERM)`` (Linux; elsewhere nothing), then SIGTERM to
    itself if ``parent`` died before the request was made."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _train_in_worker(job: tuple[TrainConfig, bool]) -> float:
    """Train (or finish) one run in a worker process; returns its wall time in seconds."""
    config, resume = job
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ScheduleWarning)  # load_run recomputes them
            train(config, progress=False, resume=resume)
    except SystemExit as stop:  # SIGTERM from _worker_pool; the run has unwound (lock released)
        atexit._run_exitfuncs()  # multiprocessing's own clean-up (tqdm's semaphore), then
        sys.stderr.flush()
        os._exit(stop.code if isinstance(stop.code, int) else 1)  # no slow torch teardown
    return time.perf_counter() - started
