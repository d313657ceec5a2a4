"""A real browser drives the classroom widgets in JupyterLab.

These are the tests that check what a student actually sees: JupyterLab serves the notebooks,
Debian's Chromium (driven by Playwright, never a downloaded browser) runs every cell, and

- in notebook 01, once it has run, moving the ``m`` slider of the ``margin_explorer`` with the
  keyboard changes both the numbers it reads out and the plot it draws;
- in notebook 03, once it has run, moving the ``run`` slider of the ``sphere_explorer``
  redraws its plotly sphere (a ``FigureWidget``, an anywidget) with the next run's title and
  points, as the lesson's own run folders hold them;
- every one of the six lesson notebooks runs top to bottom in quick mode ("Run All Cells"),
  the page shows no error output, and the notebook saved from the page prints the results
  that ``lesson_results`` checks (04 and 05 need LFW beside the checkout). This is the one
  execution of each lesson in a session: papermill runs them only without this test.

Screenshots go to ``build/browser/`` for a human to look at, one per notebook.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import CHROMIUM, LESSON_NOTEBOOKS, LFW_ROOT, REPO_ROOT, lesson_outputs
from lesson_results import EXECUTED_DIR, TEST_PARAMETERS, cells_tagged, check_results, results_of

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NOTEBOOK_NAME = "01_from_softmax_to_a_softmax.ipynb"
SCREENSHOT = REPO_ROOT / "build" / "browser" / "notebook01.png"
SPHERE_NOTEBOOK_NAME = "03_mnist_on_the_hypersphere.ipynb"
SPHERE_SCREENSHOT = REPO_ROOT / "build" / "browser" / "sphere_explorer.png"
# Two synthetic runs, the second's classes tighter (as a larger m does): drawn by the rendered
# page's picture and, for the expected points, by the test itself.
SPHERE_RUNS_CODE = """\
import numpy as np

rng = np.random.default_rng(0)
weights = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [-1.0, 0, 0]])
labels = np.repeat(np.arange(4), 50)
runs = [
    {"features": weights[labels] + 0.6 / m * rng.normal(size=(200, 3)), "labels": labels,
     "class_weights": weights, "loss": "a-softmax", "m": m, "title": f"m = {m}"}
    for m in (1, 4)
]
"""
LESSONS = LESSON_NOTEBOOKS
NEEDS_LFW = {"04_faces_on_the_sphere.ipynb", "05_open_set_verification.ipynb"}
NOTEBOOK_RUN_TIMEOUT_MS = 900_000  # 05 in quick mode takes about 4 minutes on a busy 2-core CPU
SERVER_START_TIMEOUT_S = 120
RUN_ALL_TIMEOUT_MS = 240_000
WIDGET_UPDATE_TIMEOUT_MS = 60_000
SAVE_TIMEOUT_S = 60

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"Debian's Chromium not found at {CHROMIUM} (apt-get install chromium)",
    ),
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_quick_lesson(root: Path, name: str, output_dir: Path) -> None:
    """``root/<name>``: the lesson in quick mode, writing its outputs to ``output_dir`` (and
    reading LFW from beside the checkout), with the tests' parameters (``lesson_results``)."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    lesson = load_notebook_node(str(REPO_ROOT / "notebooks" / name))
    parameters = {"quick": True, "output_dir": str(output_dir), **TEST_PARAMETERS.get(name, {})}
    if name in NEEDS_LFW:
        parameters["lfw_root"] = str(LFW_ROOT)
    nbformat.write(parameterize_notebook(lesson, parameters), root / name)


def _prepare_root(root: Path, settings_dir: Path) -> None:
    """Copy the six lessons into ``root`` in quick mode, each writing its outputs inside
    ``root`` (and reading LFW from beside the checkout)."""
    for name in LESSONS:
        write_quick_lesson(root, name, root / "outputs" / Path(name).stem)
    # Keep JupyterLab's per-user state (settings, workspaces) inside the temporary directory,
    # and switch off the news poll so that no notification covers the page.
    settings = settings_dir / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    # Render every cell (no windowing), so that the page holds every output to check.
    notebook_settings = settings_dir / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True)
    (notebook_settings / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"})
    )


def _wait_until_answering(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(
        f"JupyterLab did not answer {url} within {SERVER_START_TIMEOUT_S} s:\n{log.read_text()}"
    )


@dataclass(frozen=True)
class JupyterLab:
    """A running JupyterLab server: the folder it serves, its address, its token, its process
    and the file its output goes to."""

    root: Path
    base: str
    token: str
    process: subprocess.Popen
    log: Path

    def api(self, path: str, method: str = "GET") -> object:
        """The JSON answer of the server's REST API at ``/api/<path>`` (None when empty)."""
        request = urllib.request.Request(
            f"{self.base}/api/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)


def _start_jupyterlab(home: Path, root: Path, log: Path) -> JupyterLab:
    """A JupyterLab server on a free local port serving ``root``, its per-user state in
    ``home``, its output in ``log``; returned once it answers."""
    port, token = _free_port(), "sphereviz-browser-test"
    environment = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.extension_manager=readonly",
                *(["--allow-root"] if os.geteuid() == 0 else []),
            ],
            cwd=root,
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answering(f"{base}/api/status?token={token}", process, log)
    except BaseException:
        process.kill()
        process.wait(timeout=20)
        raise
    return JupyterLab(root, base, token, process, log)


class JupyterLabServer:
    """The JupyterLab server of one test process (each xdist worker), serving the six quick
    lessons (``_prepare_root``) from ``root``. :meth:`running` is the server, started again
    (on a new port, the exited one's log kept and reported in a warning) when it has exited:
    a server that dies fails the test it died in, not every later browser test of the worker.
    """

    def __init__(self, home: Path):
        self.home = home
        self.root = home / "root"
        self.root.mkdir()
        _prepare_root(self.root, home / "lab-settings")
        self.starts = 0
        self.lab = self._start()

    def _start(self) -> JupyterLab:
        self.starts += 1
        return _start_jupyterlab(self.home, self.root, self.home / f"jupyterlab-{self.starts}.log")

    def running(self) -> JupyterLab:
        code = self.lab.process.poll()
        if code is not None:
            tail = self.lab.log.read_text(errors="replace")[-2000:]
            message = f"JupyterLab exited with {code}; starting it again. Its log:\n{tail}"
            warnings.warn(message, stacklevel=2)
            self.lab = self._start()
        return self.lab


@pytest.fixture(scope="session")
def jupyterlab_server(tmp_path_factory) -> Iterator[JupyterLabServer]:
    """One JupyterLab server per test process (:class:`JupyterLabServer`). It starts in
    about 5 s; each test opens its notebook in a workspace of its own (:func:`jupyterlab`)."""
    server = JupyterLabServer(tmp_path_factory.mktemp("jupyterlab"))
    try:
        yield server
    finally:
        server.lab.stop()


@pytest.fixture
def jupyterlab(jupyterlab_server, request) -> Iterator[Callable[[str], str]]:
    """A function from a notebook's name to its URL in a JupyterLab workspace of this test's
    own: a workspace remembers the notebooks opened in it and reopens them, and an earlier
    test's prompts and outputs would confuse this test's locators. Afterwards every kernel
    session on the server is shut down, so that a kernel still busy (a failed test's) takes
    no CPU from the next tests (unless the server itself has exited: the next test starts
    another)."""
    lab = jupyterlab_server.running()
    workspace = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")
    yield lambda name: f"{lab.base}/lab/workspaces/{workspace}/tree/{name}?token={lab.token}"
    if lab.process.poll() is None:
        for session in lab.api("sessions"):
            lab.api(f"sessions/{session['id']}", method="DELETE")


PLOT_SIGNATURE_JS = """element => [
    ...Array.from(element.querySelectorAll('img')).map(image => image.src),
    ...Array.from(element.querySelectorAll('svg')).map(svg => svg.outerHTML),
].join('\\n')"""

READOUT_TEXT_JS = """element => {
    const copy = element.cloneNode(true);
    copy.querySelectorAll('.widget-slider, img, svg').forEach(control => control.remove());
    return copy.innerText.trim();
}"""


def _wait_until_changed(page, explorer, text_before: str, plot_before: str) -> None:
    """Wait until both the explorer's readout and its plot differ from what they were."""
    page.wait_for_function(
        f"""([element, text, plot]) =>
            ({READOUT_TEXT_JS})(element) !== text && ({PLOT_SIGNATURE_JS})(element) !== plot""",
        arg=[explorer.element_handle(), text_before, plot_before],
        timeout=WIDGET_UPDATE_TIMEOUT_MS,
    )


@contextmanager
def _browser_page(failure_screenshot: Path):
    """A Chromium page (screenshot to ``failure_screenshot`` when the test fails)."""
    from playwright.sync_api import sync_playwright

    failure_screenshot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        try:
            yield page
        except Exception:
            page.screenshot(path=str(failure_screenshot))
            raise
        finally:
            browser.close()


def _run_all_cells(page, url: str) -> None:
    """Open the notebook at ``url`` once its kernel is idle, and run all its cells."""
    from playwright.sync_api import expect

    page.goto(url)
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    # The kernel is ready when the status bar names it and says Idle.
    expect(page.locator("#jp-main-statusbar")).to_contain_text(
        "Python (sphereviz) | Idle", timeout=RUN_ALL_TIMEOUT_MS
    )
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    started = page.locator(".jp-InputPrompt", has_text=re.compile(r"\[(\*|1)\]"))
    expect(started).not_to_have_count(0)


def _explorer_with_slider(page, description: str):
    """The (outermost) output that holds a slider described ``description``, and the slider."""
    label = page.locator(".widget-label", has_text=re.compile(rf"^\s*{description}\s*$"))
    slider = page.locator(".widget-slider").filter(has=label)
    explorer = page.locator(".jp-OutputArea-output").filter(has=slider).first
    explorer.wait_for(timeout=RUN_ALL_TIMEOUT_MS)
    return explorer, explorer.locator(".widget-slider").filter(has=label)


def _wait_until_all_ran_without_error(page, timeout_ms: int = RUN_ALL_TIMEOUT_MS) -> None:
    from playwright.sync_api import expect

    kernel_status = page.locator(".jp-Notebook-ExecutionIndicator")
    expect(kernel_status).to_have_attribute("data-status", "idle", timeout=timeout_ms)
    errors = page.locator(".jp-OutputArea-output", has_text="Traceback (most recent")
    assert errors.count() == 0, errors.first.inner_text()


# Every code cell's prompt shows an execution count: "[12]", not "[ ]" or "[*]".
ALL_CELLS_RAN_JS = """() => {
    const prompts = Array.from(document.querySelectorAll(
        '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt'));
    const ran = prompt => /^\\[\\d+\\]:?$/.test(prompt.textContent.trim());
    return prompts.length > 0 && prompts.every(ran);
}"""


@pytest.mark.executes_lesson
@pytest.mark.parametrize("name", LESSONS)
def test_every_notebook_runs_top_to_bottom_without_error(
    jupyterlab_server, jupyterlab, tmp_path_factory, name
):
    """Run All Cells in JupyterLab: every code cell gets an execution count, the kernel ends
    idle, and no output on the page is an error (no traceback, no error-typed output). Then
    the notebook is saved from the page and its ``results`` JSON checked (``lesson_results``,
    in place of a second execution by papermill; the saved copy goes to ``build/notebooks/``),
    and the lesson's widgets are moved where :data:`WIDGET_CHECKS` says.
    A lesson that trains writes to the folder its solution uses (conftest's
    ``lesson_outputs``): whichever of them comes first trains, the other reuses."""
    if name in NEEDS_LFW and not (LFW_ROOT / "images").is_dir():
        pytest.skip(f"{name} needs LFW at {LFW_ROOT}")
    screenshot = REPO_ROOT / "build" / "browser" / f"{Path(name).stem}.png"
    root = jupyterlab_server.root
    with (
        lesson_outputs(tmp_path_factory, name, root / "outputs" / Path(name).stem) as outputs,
        _browser_page(screenshot.with_name(f"{Path(name).stem}_failure.png")) as page,
    ):
        write_quick_lesson(root, name, outputs)
        _run_all_cells(page, jupyterlab(name))
        page.wait_for_function(ALL_CELLS_RAN_JS, timeout=NOTEBOOK_RUN_TIMEOUT_MS, polling=1000)
        _wait_until_all_ran_without_error(page, NOTEBOOK_RUN_TIMEOUT_MS)
        # JupyterLab marks error outputs by their MIME type, whatever their text.
        error_outputs = page.locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]'
        )
        assert error_outputs.count() == 0, error_outputs.first.inner_text()
        code_cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell")
        committed = nbformat.read(REPO_ROOT / "notebooks" / name, as_version=4)
        # papermill's parameterize_notebook added one cell, the injected parameters
        assert code_cells.count() == sum(c.cell_type == "code" for c in committed.cells) + 1
        page.locator(
            ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell"
        ).last.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot))
        saved = _save_from_the_page(page, root / name)
        if name in WIDGET_CHECKS:
            WIDGET_CHECKS[name](page, outputs)
    check_results(name, results_of(saved, name))


def _save_from_the_page(page, path: Path) -> nbformat.NotebookNode:
    """Save the open notebook (Ctrl+S) and return it once ``path`` holds its printed results;
    a copy goes to ``build/notebooks/`` for a human to inspect."""
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + SAVE_TIMEOUT_S
    while True:
        try:
            notebook = nbformat.read(path, as_version=4)
        except nbformat.reader.NotJSONError:  # caught in the middle of the write
            notebook = nbformat.v4.new_notebook()
        results = cells_tagged(notebook, "results")
        if results and results[0].get("outputs"):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"JupyterLab did not save {path.name} within {SAVE_TIMEOUT_S} s")
        time.sleep(0.5)
    copy = EXECUTED_DIR / path.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, copy)
    return notebook


def _move_the_m_slider(page, outputs: Path) -> None:
    """In notebook 01's ``margin_explorer``: one arrow key moves ``m`` by a step, and both the
    readout and the plot change; the other arrow key restores ``m`` and its readout."""
    from playwright.sync_api import expect

    explorer, m_slider = _explorer_with_slider(page, "m")
    explorer.locator("img, svg").first.wait_for(timeout=WIDGET_UPDATE_TIMEOUT_MS)
    handle = m_slider.locator(".noUi-handle")
    m_before_text = handle.first.get_attribute("aria-valuenow")
    m_before = float(m_before_text)
    step = 1 if m_before < float(handle.first.get_attribute("aria-valuemax")) else -1
    forward, backward = ("ArrowRight", "ArrowLeft")[::step]
    text_before = explorer.evaluate(READOUT_TEXT_JS)
    plot_before = explorer.evaluate(PLOT_SIGNATURE_JS)

    handle.first.focus()
    page.keyboard.press(forward)
    page.wait_for_function(
        "([handle, value]) => Number(handle.getAttribute('aria-valuenow')) === value",
        arg=[handle.first.element_handle(), m_before + step],
    )
    _wait_until_changed(page, explorer, text_before, plot_before)
    text_after = explorer.evaluate(READOUT_TEXT_JS)
    plot_after = explorer.evaluate(PLOT_SIGNATURE_JS)
    explorer.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOT))
    assert text_after != text_before, "the readout did not change with m"
    assert plot_after and plot_after != plot_before, "the plot did not change with m"

    # And back: the other arrow key restores the original m and its readout.
    page.keyboard.press(backward)
    expect(handle.first).to_have_attribute("aria-valuenow", m_before_text)
    page.wait_for_function(
        f"([element, text]) => ({READOUT_TEXT_JS})(element) === text",
        arg=[explorer.element_handle(), text_before],
        timeout=WIDGET_UPDATE_TIMEOUT_MS,
    )


# What the sphere shows: plotly's title, the number of traces, the points of the class whose
# trace is named ``name`` (plotly.js keeps the traces on the plot's element, decoded in
# _fullData: a static page hands it numpy arrays as base64 typed arrays) and whether WebGL drew
# a canvas.
SPHERE_JS = """(element, name) => {
    const plot = element.querySelector('.js-plotly-plot');
    if (!plot || !plot.data || !plot._fullData) return null;
    const title = plot.querySelector('.gtitle');
    const first = plot._fullData.find(trace => trace.name === name);
    return {
        title: title ? title.textContent : '',
        traces: plot.data.length,
        x: first ? Array.from(first.x) : [],
        y: first ? Array.from(first.y) : [],
        z: first ? Array.from(first.z) : [],
        canvas: plot.querySelector('canvas') !== null,
    };
}"""


def _first_class_on_the_sphere(run: dict) -> np.ndarray:
    """The points of class 0 as the sphere should show them: x/‖x‖ (in float64, as it does)."""
    own = np.asarray(run["features"][run["labels"] == 0], dtype=float)
    return own / np.linalg.norm(own, axis=1, keepdims=True)


def _assert_shows(sphere: dict, run: dict) -> None:
    assert sphere["title"].startswith(run["title"] + " "), sphere["title"]
    shown = np.stack([sphere["x"], sphere["y"], sphere["z"]], axis=1)
    np.testing.assert_allclose(shown, _first_class_on_the_sphere(run), atol=1e-9)


def _sphere(element, name: str) -> dict:
    return element.evaluate(SPHERE_JS, name)


def _wait_for_sphere_title(page, element, title: str, name: str) -> None:
    """Wait until the plotly sphere inside ``element`` is drawn with a title starting ``title``
    (``name``: the trace whose points :data:`SPHERE_JS` reads)."""
    page.wait_for_function(
        f"""([element, name]) => ({SPHERE_JS})(element, name)?.title.startsWith(
            {json.dumps(title + " ")})""",
        arg=[element.element_handle(), name],
        timeout=WIDGET_UPDATE_TIMEOUT_MS,
    )


def _lesson_sphere_runs(outputs: Path) -> list[dict]:
    """The runs that notebook 03's sphere explorer steps through in quick mode, read from the
    lesson's run folders: the first seed's 3-D A-Softmax runs, m = 1 then m = 4, as
    ``features``, ``labels`` and the ``title`` that ``plots.run_panel`` gives them."""
    from sphereviz import plots

    runs = []
    for m in (1, 4):
        (folder,) = (outputs / "runs" / "quick").glob(f"3d-m{m}-s0-*")
        title, features, labels, _ = plots.run_panel(folder)
        runs.append({"title": title, "features": features, "labels": labels})
    return runs


def _move_the_run_slider(page, outputs: Path) -> None:
    """In notebook 03's ``sphere_explorer``: the sphere shows the first run (m = 1) with a WebGL
    canvas; one arrow key on the run slider redraws the same single plot with the second run's
    (m = 4) title and points."""
    before_run, after_run = _lesson_sphere_runs(outputs)
    digit = "digit 0"  # the legend name of class 0 of an MNIST run (runs.run_class_names)
    explorer, run_slider = _explorer_with_slider(page, "run")
    explorer.scroll_into_view_if_needed()
    _wait_for_sphere_title(page, explorer, before_run["title"], digit)
    before = _sphere(explorer, digit)
    _assert_shows(before, before_run)
    assert before["canvas"], "plotly drew no WebGL canvas for the sphere"

    handle = run_slider.locator(".noUi-handle").first
    handle.focus()
    page.keyboard.press("ArrowRight")
    _wait_for_sphere_title(page, explorer, after_run["title"], digit)
    after = _sphere(explorer, digit)
    page.screenshot(path=str(SPHERE_SCREENSHOT))
    _assert_shows(after, after_run)
    assert after["traces"] == before["traces"]
    # one sphere, redrawn in place: the explorer holds a single plot
    assert explorer.locator(".js-plotly-plot").count() == 1


#: What the lesson test does with a lesson's live widgets once every cell has run: each check
#: gets the page and the folder the lesson wrote its outputs to.
WIDGET_CHECKS = {NOTEBOOK_NAME: _move_the_m_slider, SPHERE_NOTEBOOK_NAME: _move_the_run_slider}


def test_a_rendered_page_draws_the_sphere_explorer_picture_offline(tmp_path, monkeypatch):
    """``render_html`` of a notebook that displayed a sphere explorer, opened from disk with
    no kernel: plotly.js, loaded from the ``plotly.min.js`` beside the page before require.js,
    draws the picture's sphere with the current run's title, traces and points (the CDN
    scripts of nbconvert's template fail offline without stopping it)."""
    import IPython.display

    from sphereviz import notebook_html, widgets
    from sphereviz.plots.interactive3d import write_plotlyjs

    namespace: dict = {}
    exec(SPHERE_RUNS_CODE, namespace)
    runs = namespace["runs"]
    explorer = widgets.sphere_explorer(runs)
    explorer.controls["run"].value = 1
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda bundle, raw: shown.append(bundle))
    explorer._ipython_display_()
    cell = nbformat.v4.new_code_cell("widgets.sphere_explorer(runs)", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("display_data", data=shown[0])]
    page_path = tmp_path / "page.html"
    page_path.write_text(
        notebook_html.render_html(nbformat.v4.new_notebook(cells=[cell])), encoding="utf-8"
    )
    write_plotlyjs(tmp_path)
    with _browser_page(REPO_ROOT / "build" / "browser" / "rendered_failure.png") as page:
        page.goto(page_path.as_uri(), wait_until="domcontentloaded")
        picture = page.locator(".sphereviz-snapshot").first
        _wait_for_sphere_title(page, picture, "m = 4", "class 0")
        sphere = _sphere(picture, "class 0")
        picture.scroll_into_view_if_needed()
        page.screenshot(path=str(REPO_ROOT / "build" / "browser" / "rendered_page.png"))
    _assert_shows(sphere, runs[1])
    assert sphere["traces"] == len(explorer.figure.data)


def test_a_jupyterlab_server_that_exited_is_started_again(jupyterlab_server):
    """A server that dies (here killed) is replaced, with a warning that carries its log, by
    one that answers; the browser tests after it on this worker get the new one."""
    dead = jupyterlab_server.running()
    dead.process.kill()
    dead.process.wait(timeout=20)
    with pytest.warns(UserWarning, match=r"JupyterLab exited with -9; starting it again"):
        lab = jupyterlab_server.running()
    assert lab is not dead and lab.process.poll() is None
    assert lab.api("status")["started"]
    assert jupyterlab_server.running() is lab  # a running server is kept
