"""Worker processes for the parallel parts: a pool for training (the sweep, the open-set
experiment) that an interruption stops, and what every worker needs to end with its parent.

Where the platform has it (Linux, macOS) a training pool's workers are forked from Python's
forkserver: one process per program, started with the first pool, that has imported torch and
sphereviz's trainer once (:data:`PRELOAD`), so a new worker is ready in milliseconds instead of
the seconds a spawned one takes to import them (on this project's 2-core machine about 5 s of
CPU per worker, half of it ``torch._dynamo``, which every torch optimiser's constructor pulls
in; ``benchmarks/measure_worker_start.py``). The forkserver is single-threaded and has run no
torch operation, so no thread or OpenMP state of a Jupyter kernel or of torch is forked.
Elsewhere (Windows), and on a machine with a CUDA GPU (a process forked after CUDA's driver was
initialised cannot use CUDA), the workers are spawned. Face alignment
(:mod:`sphereviz.data.align_pool`) spawns its workers: they need no torch, and a forkserver
started for them would import it first.

A forked worker inherits the forkserver's environment, which is the program's when the first
pool started; :func:`worker_pool` runs each job in the caller's current one, as a freshly
spawned worker would (multiprocessing itself starts every worker in the caller's working
directory).
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

__all__ = ["PRELOAD", "WORKER_STOP_SECONDS", "end_with_parent", "worker_pool"]

PRELOAD = ("sphereviz.train", "torch._dynamo")
"""The modules the forkserver imports once for all the workers it forks."""
WORKER_STOP_SECONDS = 10.0
"""How long a worker may take to stop after SIGTERM before it is killed (SIGKILL)."""
PARENT_POLL_SECONDS = 0.5
"""How often a worker checks that the process that started its pool still runs."""
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _pool_context() -> multiprocessing.context.BaseContext:
    """The forkserver context with :data:`PRELOAD`; the spawn context where there is no
    forkserver or there is a CUDA GPU."""
    import torch

    if "forkserver" not in multiprocessing.get_all_start_methods() or torch.cuda.is_available():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))  # used when the forkserver starts
    return context


@contextmanager
def worker_pool(jobs: int) -> Iterator[Callable]:
    """``map`` over a pool of ``jobs`` worker processes that an interruption stops.

    Yields ``map_in_workers(function, arguments)``: ``function(*args)`` for each ``args`` of
    ``arguments`` in a worker (one torch thread, the caller's working directory and
    environment), the results in order. ``ProcessPoolExecutor``'s own exit waits for every
    submitted job to finish, so a Ctrl-C would hang until the whole sweep was trained. Here the
    workers never act on SIGINT (a Ctrl-C at the terminal reaches the whole process group; the
    parent alone decides): they start with it blocked (the mask is inherited, so not even their
    start-up can be interrupted) and then ignore it. When the block is left by
    ``KeyboardInterrupt`` (or ``SystemExit``) the queued jobs are cancelled and each worker gets
    SIGTERM, which it turns into ``SystemExit``: the job unwinds (a run's lock released, no
    temporary file left; a run's files are only ever replaced atomically, so its folder holds
    its last finished epoch, never a half-written one) and the worker exits at once
    (``os._exit`` after the exit handlers: the interpreter's teardown with torch loaded takes
    seconds). One still alive after :data:`WORKER_STOP_SECONDS` is killed. An ordinary error in
    one job cancels the queued jobs and lets the running ones finish.
    """
    pool = ProcessPoolExecutor(
        jobs, mp_context=_pool_context(), initializer=_init_worker, initargs=(os.getpid(),)
    )

    def map_in_workers(function: Callable, arguments: Sequence[tuple]) -> Iterator:
        job = functools.partial(_run_job, function, dict(os.environ))
        with _sigint_blocked():  # the workers (and the forkserver) are started by these
            return pool.map(job, arguments)

    try:
        yield map_in_workers
    except (KeyboardInterrupt, SystemExit):
        with _sigint_blocked():  # a second Ctrl-C waits for the workers to be stopped
            _stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued jobs, SIGTERM every worker, SIGKILL those that outlive the grace."""
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
    """A worker: one torch thread; SIGINT ignored, SIGTERM raised as ``SystemExit``, and
    SIGTERM too when ``parent`` ends (a notebook kernel killed or restarted), so that an
    orphaned worker stops its job at once, as after a Ctrl-C, instead of training on and
    holding a run's lock against the next call."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    end_with_parent(parent, signal.SIGTERM)
    torch.set_num_threads(1)


def end_with_parent(parent: int, signum: int) -> None:
    """Send ``signum`` to this worker when ``parent`` (the process that started the pool) ends.

    A SIGKILLed parent runs no clean-up, and a forked worker is a child of the forkserver, which
    outlives the parent while any worker runs (each holds its "alive" pipe), so nothing else
    would stop the worker. On Linux the kernel sends ``signum`` when the worker's own parent
    dies (``prctl(PR_SET_PDEATHSIG)``: ``parent`` itself for a spawned worker), and everywhere a
    daemon thread checks ``parent`` every :data:`PARENT_POLL_SECONDS` and sends it once
    ``parent`` is gone (or a zombie). The forkserver and the resource tracker then see their
    pipes close and exit too.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signum))
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while _process_running(parent):
            time.sleep(PARENT_POLL_SECONDS)
        os.kill(os.getpid(), signum)

    threading.Thread(target=watch, name="sphereviz-parent-watch", daemon=True).start()


def _process_running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed but not yet reaped, counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _run_job(function: Callable, environ: dict, arguments: tuple):
    """``function(*arguments)`` in the caller's ``environ``; SIGTERM (from :func:`worker_pool`,
    or the parent's death) ends the worker once the job has unwound."""
    if os.environ != environ:
        os.environ.clear()
        os.environ.update(environ)
    try:
        return function(*arguments)
    except SystemExit as stop:  # SIGTERM: the job has unwound (a run's lock released)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the pool may send another: leaving
        atexit._run_exitfuncs()  # multiprocessing's own clean-up (tqdm's semaphore), then
        sys.stderr.flush()
        os._exit(stop.code if isinstance(stop.code, int) else 1)  # no slow torch teardown
