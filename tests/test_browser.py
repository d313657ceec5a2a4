"""A real browser drives notebook 01 in JupyterLab and moves the m slider of the margin explorer.

This is the one test that checks what a student actually sees: JupyterLab serves the notebook,
Debian's Chromium (driven by Playwright, never a downloaded browser) runs every cell, the
``margin_explorer`` widget renders, and moving its ``m`` slider with the keyboard changes both
the numbers it reads out and the plot it draws. A screenshot goes to
``build/browser/notebook01.png`` for a human to look at.
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
from pathlib import Path

import nbformat
import pytest
from conftest import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
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
SERVER_START_TIMEOUT_S = 120
RUN_ALL_TIMEOUT_MS = 240_000
WIDGET_UPDATE_TIMEOUT_MS = 60_000

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


def _prepare_root(root: Path, settings_dir: Path) -> None:
    """Copy notebook 01 into ``root`` in quick mode, writing its outputs inside ``root``."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    notebook = load_notebook_node(str(REPO_ROOT / "notebooks" / NOTEBOOK_NAME))
    notebook = parameterize_notebook(notebook, {"quick": True, "output_dir": str(root / "outputs")})
    nbformat.write(notebook, root / NOTEBOOK_NAME)
    # Keep JupyterLab's per-user state (settings, workspaces) inside the temporary directory,
    # and switch off the news poll so that no notification covers the page.
    settings = settings_dir / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
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


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on a free local port, serving a copy of notebook 01; yields its URL."""
    root = tmp_path / "root"
    root.mkdir()
    _prepare_root(root, tmp_path / "lab-settings")
    port, token = _free_port(), "sphereviz-browser-test"
    environment = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    log = tmp_path / "jupyterlab.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(
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
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_answering(f"{base}/api/status?token={token}", server, log)
        yield f"{base}/lab/tree/{NOTEBOOK_NAME}?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)


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


def test_moving_the_m_slider_changes_the_readout_and_the_plot(jupyterlab):
    from playwright.sync_api import expect, sync_playwright

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        kernel_status = page.locator(".jp-Notebook-ExecutionIndicator")
        try:
            page.goto(jupyterlab)
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
            # The kernel is ready when the status bar names it and says Idle.
            expect(page.locator("#jp-main-statusbar")).to_contain_text(
                "Python (sphereviz) | Idle", timeout=RUN_ALL_TIMEOUT_MS
            )
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            started = page.locator(".jp-InputPrompt", has_text=re.compile(r"\[(\*|1)\]"))
            expect(started).not_to_have_count(0)

            # The explorer is the (outermost) output that holds a slider labelled m.
            m_label = page.locator(".widget-label", has_text=re.compile(r"^\s*m\s*$"))
            m_slider = page.locator(".widget-slider").filter(has=m_label)
            explorer = page.locator(".jp-OutputArea-output").filter(has=m_slider).first
            explorer.wait_for(timeout=RUN_ALL_TIMEOUT_MS)
            explorer.locator("img, svg").first.wait_for(timeout=WIDGET_UPDATE_TIMEOUT_MS)
            expect(kernel_status).to_have_attribute(
                "data-status", "idle", timeout=RUN_ALL_TIMEOUT_MS
            )
            errors = page.locator(".jp-OutputArea-output", has_text="Traceback (most recent")
            assert errors.count() == 0, errors.first.inner_text()

            handle = explorer.locator(".widget-slider").filter(has=m_label).locator(".noUi-handle")
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
        except Exception:
            page.screenshot(path=str(SCREENSHOT.with_name("failure.png")))
            raise
        finally:
            browser.close()
