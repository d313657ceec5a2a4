"""The set-up files agree with each other: pyproject.toml, environment.yml, Makefile, CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import tomllib
import yaml
from conftest import REPO_ROOT
from packaging.requirements import Requirement
from packaging.version import Version


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _declared_names(project: dict) -> set[str]:
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return {Requirement(r).name.lower() for r in requirements}


def test_environment_yml_names_nothing_that_pyproject_does_not():
    project = _pyproject()["project"]
    declared = _declared_names(project)
    environment = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    conda_only = {"python", "pip"}  # the interpreter and the installer itself
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):
            for pip_line in entry["pip"]:
                match = re.fullmatch(r"-e \.\[(?P<extras>[\w,]+)\]", pip_line.strip())
                assert match, f"pip section should install this package: {pip_line!r}"
                extras = set(match["extras"].split(","))
                assert extras <= set(project["optional-dependencies"]), extras
                assert extras == set(project["optional-dependencies"]), "install every extra"
        else:
            name = re.split(r"[=<>! ]", entry)[0].lower()
            assert name in conda_only or name in declared, f"{name} is not in pyproject.toml"


def test_makefile_torch_pin_satisfies_the_declared_range():
    pin = re.search(r"TORCH\s*:=\s*torch==([\d.]+)", (REPO_ROOT / "Makefile").read_text())
    assert pin, "Makefile must pin the CPU build of torch before installing the package"
    torch_requirement = next(
        Requirement(r) for r in _pyproject()["project"]["dependencies"] if r.startswith("torch")
    )
    assert Version(pin.group(1)) in torch_requirement.specifier


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme


def test_console_script_reports_version_and_lists_subcommands():
    from sphereviz import __version__

    version = subprocess.run(
        [sys.executable, "-m", "sphereviz", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0 and version.stdout.strip() == f"sphereviz {__version__}"
    usage = subprocess.run([sys.executable, "-m", "sphereviz"], capture_output=True, text=True)
    assert usage.returncode == 2
    for command in (
        "demo",
        "bounds",
        "train",
        "evaluate-lfw",
        "prepare-faces",
        "fetch-lfw",
        "figures",
    ):
        assert command in usage.stdout


def _omp_wait_policy_after_import(environment: dict) -> str:
    """OMP_WAIT_POLICY as libgomp would read it: set before torch loads, in a fresh process."""
    code = "import sphereviz, os, torch; print(os.environ['OMP_WAIT_POLICY'])"
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_importing_sphereviz_makes_openmp_threads_sleep_unless_the_user_chose():
    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _omp_wait_policy_after_import(environment) == "PASSIVE"
    assert _omp_wait_policy_after_import({**environment, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"


def test_make_and_the_jupyter_kernel_set_the_same_wait_policy():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "export OMP_WAIT_POLICY ?= PASSIVE" in makefile
    assert re.search(r"ipykernel install[^\n]*\\\n\s*--env OMP_WAIT_POLICY PASSIVE", makefile)
