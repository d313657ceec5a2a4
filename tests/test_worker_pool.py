"""The training workers of ``sphereviz.worker_pool``: forked from a forkserver that outlives
the first pool, yet each job runs in the caller's current working directory and environment,
as in a freshly spawned worker (the forkserver keeps the environment of the moment it
started)."""

from __future__ import annotations

import os

from sphereviz.worker_pool import worker_pool


def test_each_job_runs_in_the_callers_current_folder_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SPHEREVIZ_POOL_PROBE", "first")
    with worker_pool(2) as map_in_workers:  # starts the forkserver here, if none runs yet
        first = list(map_in_workers(os.getenv, [("SPHEREVIZ_POOL_PROBE",)] * 2))
    assert first == ["first", "first"]

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPHEREVIZ_POOL_PROBE", "second")
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with worker_pool(2) as map_in_workers:
        folders = list(map_in_workers(os.getcwd, [()] * 2))
        probes = list(map_in_workers(os.getenv, [("SPHEREVIZ_POOL_PROBE",)] * 2))
        removed = list(map_in_workers(os.getenv, [("OMP_WAIT_POLICY", "unset")] * 2))
    assert folders == [str(tmp_path)] * 2
    assert probes == ["second", "second"]
    assert removed == ["unset", "unset"]
