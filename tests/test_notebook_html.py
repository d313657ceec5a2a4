"""Static pages of executed notebooks: widget pictures (``widget_snapshot``) and the renderer
(``notebook_html``, ``sphereviz render-notebooks``).

The pictures are checked against the live widgets they are drawn from (the same PNG bytes,
the same readout, the plotly figure's traces), the renderer against hand-made notebooks (what
it keeps, drops and draws) and, end to end, against a notebook executed by the ``sphereviz``
kernel. tests/test_browser.py opens a rendered page in Chromium.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys

import ipywidgets
import nbformat
import numpy as np
import pytest
from conftest import REPO_ROOT

from sphereviz import notebook_html, widgets
from sphereviz.plots import interactive3d
from sphereviz.widget_snapshot import snapshot_html

NEWPLOT = re.compile(r'Plotly\.newPlot\(\s*"(plotly-[0-9a-f]{12})",\s*')


def newplot_calls(page: str) -> list[tuple[str, list, dict]]:
    """(div id, traces, layout) of every ``Plotly.newPlot`` call in ``page``, parsed as JSON."""
    decoder, calls = json.JSONDecoder(), []
    for match in NEWPLOT.finditer(page):
        traces, end = decoder.raw_decode(page, match.end())
        layout, _ = decoder.raw_decode(page, page.index("{", end))
        calls.append((match.group(1), traces, layout))
    return calls


def synthetic_runs() -> list[dict]:
    """Two runs of four classes on the sphere, the second tighter (as a larger m makes it)."""
    rng = np.random.default_rng(0)
    weights = np.eye(4, 3) + np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0], [-1.0, 0, 0]])
    labels = np.repeat(np.arange(4), 30)
    return [
        {"features": weights[labels] + 0.6 / m * rng.normal(size=(120, 3)), "labels": labels,
         "class_weights": weights, "loss": "a-softmax", "m": m, "title": f"m = {m}"}
        for m in (1, 4)
    ]  # fmt: skip


def displayed_bundle(explorer, monkeypatch) -> dict:
    """What displaying ``explorer`` in a notebook publishes (its raw mime bundle)."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: shown.append((a, k)))
    explorer._ipython_display_()
    ((args, kwargs),) = shown
    assert kwargs == {"raw": True}
    return args[0]


@pytest.fixture(scope="module")
def sphere_explorer():
    explorer = widgets.sphere_explorer(synthetic_runs())
    explorer.controls["run"].value = 1  # a picture of the state it was left in, not the first
    return explorer


# --- the pictures -----------------------------------------------------------------------------


def test_a_sphere_explorer_picture_holds_its_histogram_readout_run_and_sphere(sphere_explorer):
    picture = snapshot_html(sphere_explorer.widget)
    (png,) = re.findall(r'src="data:image/png;base64,([^"]+)"', picture)
    assert base64.b64decode(png) == sphere_explorer.histogram_image.value
    assert sphere_explorer.readout.value in picture
    assert "run: <b>m = 4</b>" in picture  # the slider's current option, by its label
    ((div, traces, layout),) = newplot_calls(picture)
    assert f'id="{div}"' in picture
    assert [t["type"] for t in traces] == [t.type for t in sphere_explorer.figure.data]
    assert layout["title"]["text"] == sphere_explorer.figure.layout.title.text
    assert "_esm" not in picture and "<script src=" not in picture  # no plotly.js inlined
    assert snapshot_html(sphere_explorer.widget) == picture  # deterministic, ids included


def test_a_margin_explorer_picture_shows_the_visible_controls_with_their_values():
    explorer = widgets.margin_explorer(loss="cosface")
    picture = snapshot_html(explorer.widget)
    (svg,) = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', picture)
    assert base64.b64decode(svg) == explorer.image.value
    cosface, a_softmax = explorer.controls["m_cosface"], explorer.controls["m"]
    shown = {
        "cosface": f"{cosface.description}: <b>{cosface.value:.2f}</b>",  # m: 0.35
        "a-softmax": f"{a_softmax.description}: <b>{a_softmax.value}</b>",  # m: 4
    }
    assert shown["cosface"] in picture and shown["a-softmax"] not in picture  # hidden
    explorer.controls["loss"].value = "a-softmax"
    picture = snapshot_html(explorer.widget)
    assert shown["a-softmax"] in picture and shown["cosface"] not in picture


def test_widgets_the_picture_does_not_know_are_named_and_boxes_nest():
    inner = ipywidgets.VBox([ipywidgets.ColorPicker(value="red", description="colour"),
                             ipywidgets.DOMWidget()])  # fmt: skip
    progress = ipywidgets.IntProgress(value=3, max=7, description="epochs")
    box = ipywidgets.HBox([ipywidgets.Label("a < b"), inner, progress])
    picture = snapshot_html(box, caption=False)
    assert picture == (
        '<div class="sphereviz-snapshot"><div style="display:flex;flex-direction:row;gap:6px;'
        'align-items:flex-start"><div>a &lt; b</div><div style="display:flex;'
        'flex-direction:column;gap:6px;align-items:flex-start"><div>colour: <b>red</b></div>'
        '<div>[DOMWidget]</div></div><div>epochs <progress max="7" value="3"></progress> '
        "3/7</div></div></div>"
    )


def test_displaying_an_explorer_publishes_the_widget_view_and_its_picture(
    sphere_explorer, monkeypatch
):
    bundle = displayed_bundle(sphere_explorer, monkeypatch)
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == sphere_explorer.widget.model_id
    assert bundle["text/html"] == snapshot_html(sphere_explorer.widget)
    assert "text/plain" in bundle


# --- the renderer -----------------------------------------------------------------------------


def widget_state(models: dict) -> dict:
    return {"application/vnd.jupyter.widget-state+json": {
        "version_major": 2, "version_minor": 0,
        "state": {key: {"model_name": name, "model_module": "@jupyter-widgets/controls",
                        "state": state} for key, (name, state) in models.items()}}}  # fmt: skip


def view(model_id: str, text: str = "a widget") -> dict:
    return {"application/vnd.jupyter.widget-view+json": {"model_id": model_id,
            "version_major": 2, "version_minor": 0}, "text/plain": text}  # fmt: skip


def executed_notebook(outputs: list[dict], models: dict) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("shown()", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("display_data", data=data) for data in outputs]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"), cell])
    notebook.metadata["widgets"] = widget_state(models)
    return notebook


def test_the_static_notebook_draws_widgets_from_their_state_and_drops_the_state():
    models = {
        "bar": ("HBoxModel", {"children": ["IPY_MODEL_label", "IPY_MODEL_progress"]}),
        "label": ("HTMLModel", {"value": "<i>epochs</i>"}),
        "progress": ("IntProgressModel", {"value": 4, "max": 10, "description": ""}),
        "sphere": ("AnyModel", {"_widget_data": []}),
    }
    outputs = [
        view("bar", "HBox(children=(HTML(...), IntProgress(...)))"),
        {**view("explorer"), "text/html": "<b>picture</b>"},  # an explorer's own picture
        view("sphere", "FigureWidget"),  # nothing to draw it from: its text stays
        {"text/plain": "42"},
    ]
    notebook = executed_notebook(outputs, models)
    static = notebook_html.static_notebook(notebook)
    drawn = [output.data for output in static.cells[1].outputs]
    assert all(notebook_html.WIDGET_VIEW not in data for data in drawn)
    assert drawn[0]["text/html"] == (
        '<div style="display:flex;flex-direction:row;gap:6px"><div><i>epochs</i></div>'
        '<div> <progress max="10" value="4"></progress></div></div>'
    )
    assert drawn[1]["text/html"] == "<b>picture</b>"
    assert drawn[2] == {"text/plain": "FigureWidget"}
    assert drawn[3] == {"text/plain": "42"}
    assert "widgets" not in static.metadata
    assert "widgets" in notebook.metadata  # the executed copy is left as it was


def test_a_page_with_a_plotly_picture_loads_plotly_before_require_js(sphere_explorer):
    picture = snapshot_html(sphere_explorer.widget)
    page = notebook_html.render_html(executed_notebook([{**view("x"), "text/html": picture}], {}))
    head = page[: page.index("</head>")]
    plotly_at = head.index('<script charset="utf-8" src="plotly.min.js"></script>')
    assert plotly_at < head.index("require.min.js")  # else plotly.js registers as AMD only
    assert "application/vnd.jupyter.widget-state+json" not in page
    assert page.count("Plotly.newPlot") == 1
    plain = notebook_html.render_html(executed_notebook([{"text/plain": "1"}], {}))
    assert "plotly.min.js" not in plain


def test_the_provenance_note_is_computed_from_the_executed_notebook():
    notebook = executed_notebook([{"text/plain": "1"}], {})
    notebook.metadata["sphereviz"] = {
        "source": "03_x.ipynb", "commit": "0123456789ab", "uncommitted_changes": True,
        "sphereviz_version": "9.9", "machine": "x86_64 with 2 CPU cores",
        "executed_at": "2026-12-07 15:00 UTC", "seconds": 754.0,
    }  # fmt: skip
    page = notebook_html.render_html(notebook)
    start = page.index("Rendered preview")
    note = page[start : page.index("</p>", start)]
    for fact in ("03_x.ipynb", "2026-12-07 15:00 UTC", "12.6 min", "x86_64 with 2 CPU cores",
                 "9.9", "0123456789ab with uncommitted changes"):  # fmt: skip
        assert fact in note, fact


# --- sphereviz render-notebooks, end to end ----------------------------------------------------


def _require_kernel():
    from jupyter_client.kernelspec import KernelSpecManager

    if "sphereviz" not in KernelSpecManager().find_kernel_specs():
        pytest.skip("the sphereviz Jupyter kernel is not installed (make setup)")


def _render(*args: str):
    return subprocess.run([sys.executable, "-m", "sphereviz", "render-notebooks", *args],
                          capture_output=True, text=True, timeout=600)  # fmt: skip


RUNS_CODE = """\
import numpy as np

rng = np.random.default_rng(0)
weights = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
labels = np.repeat(np.arange(3), 20)
runs = [{"features": weights[labels] + 0.3 * rng.normal(size=(60, 3)), "labels": labels,
         "class_weights": weights, "loss": "a-softmax", "m": 4, "title": "m = 4"}]
"""


@pytest.mark.slow
def test_make_notebooks_html_executes_writes_a_page_and_reuses_an_unchanged_notebook(tmp_path):
    """`make notebooks-html` on a small notebook that displays a sphere explorer: the page in
    build/html/ shows the run's output and the explorer's picture (one plotly figure, no
    widget state), plotly.min.js beside it, the executed copy in build/executed/ records the
    notebook's sha256; a second call reuses that copy; a failing cell is a one-line error."""
    import shutil

    _require_kernel()
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    if subprocess.run(["make", "-q", "setup"], cwd=REPO_ROOT).returncode != 0:
        pytest.skip("the venv is not set up (run `make setup` first); not rebuilding it here")
    source_dir = tmp_path / "notebooks"
    source_dir.mkdir()
    source = source_dir / "render_test_lesson.ipynb"
    lesson = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(RUNS_CODE),
        nbformat.v4.new_code_cell("from sphereviz import widgets\nwidgets.sphere_explorer(runs)"),
        nbformat.v4.new_code_cell("print('answer', 6 * 7)"),
    ])  # fmt: skip
    nbformat.write(lesson, source)
    out, executed = REPO_ROOT / "build" / "html", REPO_ROOT / "build" / "executed"
    (out / "render_test_lesson.html").unlink(missing_ok=True)
    (executed / "render_test_lesson.ipynb").unlink(missing_ok=True)

    made = subprocess.run(["make", "notebooks-html", f"NOTEBOOKS_HTML={source}"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert made.returncode == 0, made.stderr[-3000:]
    page = (out / "render_test_lesson.html").read_text(encoding="utf-8")
    assert "answer 42" in page and "Rendered preview" in page
    assert len(newplot_calls(page)) == 1 and "widget-state+json" not in page
    assert "Traceback (most recent call last)" not in page
    script = (out / "plotly.min.js").read_text(encoding="utf-8")
    assert script == interactive3d._offline_plotlyjs() and "cdn.plot.ly" not in script
    copy = nbformat.read(executed / "render_test_lesson.ipynb", as_version=4)
    facts = copy.metadata["sphereviz"]
    assert facts["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert facts["seconds"] > 0 and "widgets" in copy.metadata  # the copy keeps the state

    stamp = (executed / "render_test_lesson.ipynb").stat().st_mtime_ns
    again = _render(str(source), "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert (executed / "render_test_lesson.ipynb").stat().st_mtime_ns == stamp  # reused

    broken_source = tmp_path / "broken.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")]),
                   broken_source)  # fmt: skip
    broken = _render(str(broken_source), "--out", str(tmp_path / "out"), "--executed",
                     str(tmp_path / "executed"))  # fmt: skip
    assert broken.returncode == 1
    line = broken.stderr.strip().splitlines()[-1]
    assert "broken.ipynb: cell 0 failed" in line and "ZeroDivisionError" in line
    assert not (tmp_path / "out" / "broken.html").exists()


def test_render_notebooks_refuses_bad_paths_in_one_line(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a notebook")
    result = _render(str(text), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"sphereviz render-notebooks: error: {text} is not a notebook file "
        "(give .ipynb files, e.g. notebooks/*.ipynb)"
    )
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "empty.ipynb")
    (tmp_path / "taken").write_text("a file")
    result = _render(str(tmp_path / "empty.ipynb"), "--out", str(tmp_path / "taken"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"sphereviz render-notebooks: error: output folder {tmp_path / 'taken'} is a file, "
        "not a folder; give a folder path"
    ]


def test_the_committed_preview_pages_are_the_lessons_in_full_mode():
    """notebooks/rendered/ (``make rendered``): one page per lesson, each from the lesson's
    default (full-mode) parameters, sharing one plotly.min.js, with no widget state."""
    rendered = REPO_ROOT / "notebooks" / "rendered"
    lessons = sorted(path.stem for path in (REPO_ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(path.stem for path in rendered.glob("*.html")) == lessons
    for name in lessons:
        page = (rendered / f"{name}.html").read_text(encoding="utf-8")
        assert f"*Rendered preview.* This page is `{name}.ipynb`" not in page  # markdown rendered
        assert f"This page is <code>{name}.ipynb</code>" in page, name
        assert "with its default parameters (full mode)" in page
        assert "widget-state+json" not in page and "Traceback (most recent call last)" not in page
        if "Plotly.newPlot" in page:
            assert '<script charset="utf-8" src="plotly.min.js"></script>' in page
    assert (rendered / "plotly.min.js").read_text(encoding="utf-8") == (
        interactive3d._offline_plotlyjs()
    )
