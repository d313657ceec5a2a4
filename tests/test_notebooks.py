"""The classroom notebooks: their committed form, and their execution by papermill.

Static checks (fast): every notebook in ``notebooks/`` is committed without outputs or
execution counts, runs on the ``sphereviz`` kernel, has exactly one cell tagged ``parameters``
and one tagged ``results``, and defines no function or class (d2l discipline: the reusable
code lives in the library, where it is tested once). Papermill's own reading of each
parameters cell (what ``papermill --help-notebook`` lists, and what it checks ``-p`` names
against) must agree with Python's: the same names, the same default values, a help comment
for each, and no parser warning.

Execution (slow): papermill runs each solution notebook top to bottom in quick mode on the
``sphereviz`` kernel, its executed copy goes to ``build/notebooks/``, and the JSON that its
``results`` cell prints is checked against independent truths. Each lesson is executed once per
session, its results checked by ``lesson_results``: in JupyterLab by ``tests/test_browser.py``
when that test is collected (Chromium is installed), else here by papermill.
"""

from __future__ import annotations

import ast
import logging
import math
import os
import re
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest
from conftest import CHROMIUM, LESSON_NOTEBOOKS, LFW_ROOT, REPO_ROOT, lesson_outputs
from lesson_results import (
    EXECUTED_DIR,
    TEST_PARAMETERS,
    cells_tagged,
    check_results,
    largest_lfw_folders,
    results_of,
)

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
KERNEL_NAME = "sphereviz"
# A guard against a hung kernel, not a speed target: the CI machine ran one face cell (three
# SFNet-4 trainings) past 600 s on a loaded 2-core CPU.
CELL_TIMEOUT_S = 1200

EXPECTED_NOTEBOOKS = LESSON_NOTEBOOKS
SOLUTION_NOTEBOOKS = [f"solutions/{name}" for name in EXPECTED_NOTEBOOKS]
ALL_NOTEBOOKS = EXPECTED_NOTEBOOKS + SOLUTION_NOTEBOOKS
NEEDS_LFW = {
    prefix + name
    for prefix in ("", "solutions/")
    for name in ("04_faces_on_the_sphere.ipynb", "05_open_set_verification.ipynb")
}
# The works every notebook's References section cites (a distinctive piece of each citation).
REFERENCES = {
    "SphereFace": "arXiv:1704.08063",
    "L-Softmax": "arXiv:1612.02295",
    "NormFace": "arXiv:1704.06369",
    "CosFace": "arXiv:1801.09414",
    "AM-Softmax": "arXiv:1801.05599",
    "ArcFace": "arXiv:1801.07698",
    "SphereFace-R": "arXiv:2109.05565",
    "SphereFace2": "arXiv:2108.01513",
    "the LFW technical report": "Technical Report 07-49",
}
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")

DEFINITION_AT_LINE_START = re.compile(r"^(async\s+def|def|class)\s", re.MULTILINE)
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK_DIR / name, as_version=4)


# --- the committed notebooks ------------------------------------------------------------------


def test_the_suite_is_complete():
    present = sorted(path.name for path in NOTEBOOK_DIR.glob("*.ipynb"))
    assert present == EXPECTED_NOTEBOOKS
    solutions = sorted(f"solutions/{path.name}" for path in NOTEBOOK_DIR.glob("solutions/*.ipynb"))
    assert solutions == SOLUTION_NOTEBOOKS, "one solution notebook per lesson, of the same name"


def _links(text: str) -> list[str]:
    """The targets of the markdown links in ``text`` that point at files (not the web)."""
    return [
        target.split("#")[0]
        for target in MARKDOWN_LINK.findall(text)
        if not re.match(r"^[a-z]+:", target) and not target.startswith("#")
    ]


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_notebook_opens_with_objectives_and_closes_with_summary_and_references(name):
    """The instructor layer: learning objectives first; a Summary and a References section
    after the results (citing the eight works); links to the neighbouring notebooks and the
    syllabus, each pointing at a file that exists."""
    notebook = _read(name)
    first, last = notebook.cells[0], notebook.cells[-1]
    assert first.cell_type == "markdown" and first.source.startswith("# "), name
    assert "Learning objectives" in first.source, f"{name}: the first cell states no objectives"
    assert last.cell_type == "markdown", f"{name}: the last cell must be the summary"
    assert "## Summary" in last.source and "## References" in last.source, name
    missing = [work for work, key in REFERENCES.items() if key not in last.source]
    assert not missing, f"{name}: the references lack {missing}"
    folder = (NOTEBOOK_DIR / name).parent
    index = ALL_NOTEBOOKS.index(name) % len(EXPECTED_NOTEBOOKS)
    for cell in (first, last):
        targets = _links(cell.source)
        broken = [target for target in targets if not (folder / target).is_file()]
        assert not broken, f"{name}: links to missing files {broken}"
        neighbours = EXPECTED_NOTEBOOKS[max(index - 1, 0) : index + 2]
        linked = {Path(target).name for target in targets}
        assert set(neighbours) - {EXPECTED_NOTEBOOKS[index]} <= linked, (
            f"{name}: link the previous and the next notebook"
        )
        assert "README.md" in linked, f"{name}: link the syllabus"


def test_syllabus_links_every_notebook_and_the_readme_links_it():
    syllabus = (NOTEBOOK_DIR / "README.md").read_text(encoding="utf-8")
    targets = _links(syllabus)
    assert not [t for t in targets if not (NOTEBOOK_DIR / t).exists()], targets
    assert set(EXPECTED_NOTEBOOKS) <= {Path(t).name for t in targets}
    for heading in ("## The 50-minute lecture path", "## The homework and lab path", "## Glossary"):
        assert heading in syllabus
    for term in (
        "Angular margin",
        "Max intra-class",
        "Min inter-class",
        "Feasible region",
        "Closed-set / open-set",
        "View 1 / View 2",
        "TAR@FAR",
        "EER",
        "AFS",
        "effective m",
    ):
        assert term in syllabus, f"the glossary lacks {term!r}"
    assert "(notebooks/README.md)" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_committed_notebook_is_clean_and_structured(name):
    notebook = _read(name)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == KERNEL_NAME
    assert notebook.metadata["kernelspec"]["display_name"] == "Python (sphereviz)"

    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    with_outputs = [i for i, cell in enumerate(code_cells) if cell.outputs]
    with_counts = [i for i, cell in enumerate(code_cells) if cell.execution_count is not None]
    assert not with_outputs, f"{name}: code cells {with_outputs} carry outputs; clear them"
    assert not with_counts, f"{name}: code cells {with_counts} carry execution counts"

    parameters = cells_tagged(notebook, "parameters")
    results = cells_tagged(notebook, "results")
    assert len(parameters) == 1 and parameters[0].cell_type == "code"
    assert len(results) == 1 and results[0].cell_type == "code"
    assert results[0] is code_cells[-1], f"{name}: the results cell must be the last code cell"
    assert re.search(r"^quick\s*=\s*(True|False)\s*(#.*)?$", parameters[0].source, re.MULTILINE), (
        f"{name}: the parameters cell must set quick = True/False"
    )

    defining = [
        i for i, cell in enumerate(code_cells) if DEFINITION_AT_LINE_START.search(cell.source)
    ]
    assert not defining, f"{name}: code cells {defining} define a function or class"


def _assigned_parameters(source: str, name: str) -> dict[str, object]:
    """Each parameter's name and value, as Python itself parses the parameters cell."""
    values = {}
    for statement in ast.parse(source).body:
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1, (
            f"{name}: the parameters cell holds only `name = value` lines, found "
            f"{ast.unparse(statement)!r}"
        )
        (target,) = statement.targets
        assert isinstance(target, ast.Name), f"{name}: cannot parse {ast.unparse(statement)!r}"
        values[target.id] = ast.literal_eval(statement.value)
    return values


def _literal_or_text(text: str) -> object:
    """The Python value written in ``text``, or ``text`` itself when it is no valid literal."""
    try:
        return ast.literal_eval(text)
    except (SyntaxError, ValueError):
        return text


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_papermill_reads_every_parameter(name, caplog):
    """Papermill parses parameters line by line with a regular expression, not with Python: a
    value spread over several lines or an ``=`` in a trailing comment makes it drop the
    parameter or mangle its default (and warn "Unable to parse line" or "Passed unknown
    parameter" on every run). Compare its reading with ``ast``'s."""
    import papermill

    (cell,) = cells_tagged(_read(name), "parameters")
    assigned = _assigned_parameters(cell.source, name)
    with caplog.at_level(logging.WARNING, logger="papermill"):
        inferred = papermill.inspect_notebook(str(NOTEBOOK_DIR / name))
    warnings = [record.getMessage() for record in caplog.records]
    assert not warnings, f"{name}: papermill warned while reading the parameters: {warnings}"
    assert list(inferred) == list(assigned), (
        f"{name}: papermill reads the parameters {list(inferred)}, Python assigns "
        f"{list(assigned)}; keep each on one line with no `=` in its comment"
    )
    for parameter, value in assigned.items():
        default = inferred[parameter]["default"]
        assert _literal_or_text(default) == value, (
            f"{name}: papermill reads the default of {parameter} as {default!r}, not {value!r}"
        )
        assert inferred[parameter]["help"], (
            f"{name}: {parameter} has no help for `papermill --help-notebook`; end its line "
            "with a short # comment"
        )


# --- executing the notebooks ------------------------------------------------------------------


def _require_kernel() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL_NAME not in KernelSpecManager().find_kernel_specs():
        pytest.fail(
            f"Jupyter kernel {KERNEL_NAME!r} is not registered; run `make setup` or "
            f"`.venv/bin/python -m ipykernel install --sys-prefix --name {KERNEL_NAME} "
            '--display-name "Python (sphereviz)"`'
        )


def _require_lfw(name: str) -> None:
    if name in NEEDS_LFW and not (LFW_ROOT / "images").is_dir():
        pytest.skip(
            f"{name} needs the real LFW images, not found at {LFW_ROOT} "
            "(expected ../shared/data/lfw beside the checkout)"
        )


def execute_notebook(name: str, output_dir: Path, **parameters) -> dict:
    """Run ``notebooks/<name>`` in quick mode; return the JSON its ``results`` cell printed.

    The notebook's outputs (runs, face caches, figures) go to ``output_dir``; the executed
    copy goes to ``build/notebooks/<name>`` for a human to inspect.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    _require_kernel()
    _require_lfw(name)
    executed_path = EXECUTED_DIR / name
    executed_path.parent.mkdir(parents=True, exist_ok=True)
    parameters = {"quick": True, "output_dir": str(output_dir), **parameters}
    if name in NEEDS_LFW:
        parameters.setdefault("lfw_root", str(LFW_ROOT))
    # The kernel inherits this process's environment: draw figures inline, as in JupyterLab
    # (conftest sets Agg for the test process itself).
    environment = {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    try:
        # No ipywidgets.Output in the notebooks (the sphere explorer's plot is a plotly
        # FigureWidget): nbclient's imitation of one can lose the cell's reply and wait for
        # ever, or here until CELL_TIMEOUT_S (jupyter/nbclient#312).
        with _patched_environ(environment), _papermill_warnings() as warnings:
            executed = papermill.execute_notebook(
                str(NOTEBOOK_DIR / name),
                str(executed_path),
                parameters=parameters,
                kernel_name=KERNEL_NAME,
                cwd=str((NOTEBOOK_DIR / name).parent),
                execution_timeout=CELL_TIMEOUT_S,
                progress_bar=False,
                log_output=False,
            )
    except PapermillExecutionError as error:
        traceback = ANSI_ESCAPE.sub("", "\n".join(error.traceback))
        pytest.fail(
            f"{name} raised in cell {error.cell_index} (execution count {error.exec_count}): "
            f"{error.ename}: {error.evalue}\n{traceback}\nexecuted copy: {executed_path}",
            pytrace=False,
        )
    assert not warnings, f"{name}: papermill warned: {warnings}"
    return results_of(executed, name)


@pytest.fixture
def run_notebook(tmp_path_factory, tmp_path):
    """:func:`execute_notebook` into this test session's folder for the notebook's lesson
    (conftest's ``lesson_outputs``): a lesson that trains shares it with its solution and its
    browser run, so the first of them trains each run from scratch and the others reuse it;
    the other lessons write to this test's own temporary folder. Never a folder of an earlier
    session, so every session trains and aligns anew."""

    def run(name: str, **parameters) -> dict:
        with lesson_outputs(tmp_path_factory, name, tmp_path) as output_dir:
            return execute_notebook(name, output_dir, **parameters)

    return run


@contextmanager
def _papermill_warnings():
    """Collect the messages of the warnings papermill logs (e.g. "Passed unknown parameter")."""
    messages: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("papermill")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


@contextmanager
def _patched_environ(values: dict[str, str]):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED_NOTEBOOKS)
def test_lesson_results_by_papermill(run_notebook, request, name):
    """A lesson in quick mode, executed by papermill, prints the results ``lesson_results``
    expects; skipped when the browser test that runs it in JupyterLab (and checks the same
    results from the notebook saved there) is part of this session."""
    if _run_by_the_browser_test(request.session, name):
        pytest.skip(f"{name} runs in JupyterLab in this session (tests/test_browser.py)")
    check_results(name, run_notebook(name, **TEST_PARAMETERS.get(name, {})))


def _run_by_the_browser_test(session: pytest.Session, name: str) -> bool:
    """Whether this session runs ``name`` in the browser: Chromium is installed and a test
    marked ``executes_lesson`` for it (the browser's lesson test) was collected and not
    deselected."""
    return CHROMIUM.exists() and any(
        item.get_closest_marker("executes_lesson") is not None
        and item.callspec.params.get("name") == name
        for item in session.items
    )


# --- the solution notebooks: each exercise's answer, against an independent truth ------------


@pytest.mark.slow
def test_solutions_01(run_notebook):
    answers = run_notebook("solutions/01_from_softmax_to_a_softmax.ipynb")
    # Two classes: m = 4 at 90° (48° < 54°); m = 3 at 180° with equality (2π/4 = 2/4·π).
    assert answers["ex1_smallest_m"] == {"90deg": 4, "180deg": 3}
    assert answers["ex1_equality_at_180deg_m3_deg"] == pytest.approx([90.0, 90.0], abs=1e-9)
    # Property 3 at K = 5: m = 3, with 2·72°/4 = 36° against 72° − 36°.
    assert answers["ex5_k5_smallest_m"] == 3
    assert answers["ex5_k5_m3_intra_inter_deg"] == pytest.approx([36.0, 36.0], abs=1e-9)
    assert answers["ex6_arcface_gap_deg"] == pytest.approx([math.degrees(0.5)] * 4, abs=1e-9)
    # CosFace's gap 2·asin(m / (2 sin(θ₁₂/2))) at θ₁₂ = 90°.
    cosface_90 = math.degrees(2 * math.asin(0.35 / (2 * math.sin(math.pi / 4))))
    assert answers["ex6_cosface_gap_deg"][1] == pytest.approx(cosface_90, abs=1e-9)
    assert answers["ex4_jump_without_2k"] == pytest.approx(2.0, abs=1e-6)
    # ArcFace's regions exist only for θ₁₂ > m = 0.5 rad, CosFace's for θ₁₂ > 2 asin(m/2).
    assert answers["ex6_arcface_regions_from_deg"] == pytest.approx(math.degrees(0.5), abs=0.1)
    assert answers["ex6_cosface_regions_from_deg"] == pytest.approx(
        math.degrees(2 * math.asin(0.175)), abs=0.1
    )
    # ψ and (λ cos θ + ψ)/(1 + λ) from scratch: at θ = π, ψ = 1 − 2m, so (−5 − 7)/6 = −2.
    assert answers["ex7_psi_matches_library_m1_to_m6"] is True
    assert answers["ex8_target_at_pi_m4_lambda5"] == pytest.approx(-2.0, abs=1e-12)


@pytest.mark.slow
def test_solutions_02(run_notebook):
    from scipy.optimize import brentq

    answers = run_notebook("solutions/02_why_m_is_4.ipynb")
    # The wrapped case of m = 3.5 holds from 2π/(m − 1) = 144° (scanned in 0.1° steps).
    assert answers["ex2_m3_5_holds_from_deg"] == pytest.approx(360 / 2.5, abs=0.1 + 1e-9)
    assert answers["ex2_m3_holds_at_deg"] == [180.0]
    # The effective m at λ = 5, solved here without the library: class 1's edge towards W₂ at
    # θ₁₂ = 90° is where (5 cos φ + cos 4φ)/6 = cos(90° − φ) (ψ = cos 4φ below 45°).
    reach = brentq(
        lambda phi: (5 * math.cos(phi) + math.cos(4 * phi)) / 6 - math.sin(phi), 0.1, math.pi / 4
    )
    assert answers["ex5_effective_m"] == pytest.approx((math.pi / 2) / reach - 1, abs=1e-6)
    assert answers["ex5_effective_m"] == pytest.approx(1.617, abs=0.001)
    assert answers["ex5_criterion_holds_at_lambda5"] is False


@pytest.mark.slow
def test_solutions_03(run_notebook):
    answers = run_notebook("solutions/03_mnist_on_the_hypersphere.ipynb")
    assert answers["chance"] == pytest.approx(0.1)
    assert answers["seeds"] == [0, 1]  # quick mode: two seeds, so every reading has a spread
    assert sorted(answers["ex1_mean_angle_deg"]) == ["m1", "m2", "m3", "m4"]
    assert all(step in {"up", "down", "flat"} for steps in answers["ex1_steps"].values()
               for step in steps)  # fmt: skip
    # (the m = 4 vs m = 1 tightening is asserted in full mode only: quick runs are too short)
    assert all(0 < angle < 90 for angle in answers["ex1_mean_angle_deg"].values())
    loss = answers["ex2_first_epoch_loss"]
    assert loss["pure psi"] > loss["annealed"] > 0
    assert answers["ex3_narrowest"] in {"m4", "cosface", "arcface"}
    by_scale = [answers["ex4_loss_by_scale"][str(scale)] for scale in (1, 2, 4, 8)]
    assert by_scale == sorted(by_scale, reverse=True)


@pytest.mark.slow
def test_solutions_04(run_notebook):
    answers = run_notebook("solutions/04_faces_on_the_sphere.ipynb")
    assert answers["identities"] == largest_lfw_folders(6)
    assert sorted(answers["ex2_per_person"]) == sorted(answers["identities"])
    assert answers["seeds"] == [0]  # quick mode: one seed per run (full mode: three)
    assert all(0 <= p["accuracy"] <= 1 for p in answers["ex2_per_person"].values())
    assert all(0 <= angle <= 180 for angle in answers["ex1_mean_angle_deg"].values())
    assert answers["ex1_shrinks"] == "no finding (one seed: no spread)"  # quick: one seed
    assert answers["ex2_imbalance"].startswith("no imbalance")  # quick mode: 40 images each
    assert answers["ex3_reading"] == "one seed: no spread, so no finding"
    # 10,000 directions on S²: about √(8π / (√3·10,000)) rad apart for a hexagonal packing.
    hexagonal = math.degrees(math.sqrt(8 * math.pi / (math.sqrt(3) * 10_000)))
    assert answers["ex4_nearest_3d_deg"] == pytest.approx(hexagonal, rel=0.15)


@pytest.mark.slow
def test_solutions_05(run_notebook):
    answers = run_notebook("solutions/05_open_set_verification.ipynb")
    lines = (LFW_ROOT / "peopleDevTrain.txt").read_text().splitlines()[1:]
    with_two = [line for line in lines if line.strip() and int(line.split("\t")[1]) >= 2]
    assert answers["ex5_people_listed"] == int(
        (LFW_ROOT / "peopleDevTrain.txt").read_text().split()[0]
    )
    assert answers["ex5_people_with_2_images"] == len(with_two)
    assert answers["ex3_flattery"] >= 0
    assert set(answers["ex4_by_flip"]) == {"concat", "sum", "None"}
    assert set(answers["ex1_closed_set"]) == {"softmax", "a-softmax", "a-softmax λ 0.1"}
    assert all(0 <= value <= 1 for value in answers["ex1_closed_set"].values())
    # Exercise 6: the plain-numpy 10 folds (asserted equal to the library inside the notebook)
    assert len(answers["ex6_fold_accuracies"]) == 10
    assert len(answers["ex6_fold_accuracies_mean_subtracted"]) == 10
    assert all(0 <= value <= 1 for value in answers["ex6_fold_accuracies"])


@pytest.mark.slow
def test_solutions_06(run_notebook):
    answers = run_notebook("solutions/06_figures_for_papers.ipynb")
    assert answers["ex1_pdf_widths_inch"] == pytest.approx(
        {"ieee_double": 7.16, "cvpr_text_width": 6.875}, abs=0.01
    )
    assert answers["ex2_fonts"]["serif"] != answers["ex2_fonts"]["sans-serif"]
    assert answers["ex3_gallery_links"] > 0
    assert answers["ex4_files_compared"] > 0 and answers["ex4_changed"] == []
    assert answers["ex4_git_diff_stat"] in ("", None)  # empty, or git is not installed
    assert "plotly.min.js" in answers["ex3_sphere_page_links"]
