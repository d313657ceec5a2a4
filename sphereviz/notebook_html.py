"""Executed notebooks as static HTML pages that read well without a kernel.

``sphereviz render-notebooks NOTEBOOK... --out DIR`` (``make rendered``, ``make
notebooks-html``) executes each notebook top to bottom with its own parameters (the full mode
of a lesson) and writes ``DIR/<name>.html``:

- the executed copy is kept in ``--executed`` (default ``build/executed``) with the sha256 of
  the notebook it came from, the commit, the machine and the times; a later call reuses it
  while the notebook is unchanged, so only the HTML is written again (``--force`` executes
  anyway), and the runs a lesson trains are reused from its own output folder as usual;
- every widget is shown as a picture: the ``text/html`` that the explorers of
  :mod:`sphereviz.widgets` publish beside their widget view, or for other widgets (progress
  bars, boxes of labels) one drawn from the widget state the execution stored; the widget
  state itself is dropped, so the page needs no widget manager;
- plotly figures load one ``plotly.min.js`` beside the pages (offline, no CDN), written once;
- a note at the top says how the page was made: when, in how long, at which commit, on what.

A cell that fails stops that notebook with a one-line error naming the cell; the notebooks
before it keep their pages. The folder is written by one process at a time (a
:class:`~sphereviz.locks.FolderLock`).
"""

from __future__ import annotations

import argparse
import hashlib
import html
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from sphereviz import __version__
from sphereviz.errors import report_error
from sphereviz.fileio import atomic_path, check_writable_folder
from sphereviz.locks import FolderLock

__all__ = [
    "DEFAULT_EXECUTED",
    "WIDGET_VIEW",
    "execute_notebook",
    "main",
    "render_html",
    "static_notebook",
]

DEFAULT_EXECUTED = Path("build") / "executed"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
KERNEL_NAME = "sphereviz"


class NotebookFailed(RuntimeError):
    """A cell of a notebook raised while it was executed."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _commit(folder: Path) -> tuple[str | None, bool]:
    """The checkout's commit and whether its tracked files differ from it (None: no git)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=folder, capture_output=True,
            text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None, False
    return commit, bool(dirty)


def _machine() -> str:
    """The machine a notebook runs on, in words: CPU cores, and the GPU when torch sees one."""
    import torch

    words = f"{platform.machine()} with {os.cpu_count()} CPU cores"
    if torch.cuda.is_available():
        words += f" and {torch.cuda.get_device_name(0)}"
    return words


def execute_notebook(source: Path, executed: Path, timeout: int = 7200, force: bool = False):
    """``source`` executed top to bottom in its own folder (as JupyterLab runs it), with the
    widget state stored, saved to ``executed`` and returned; reused from ``executed`` when
    that copy came from the same bytes of ``source`` (unless ``force``)."""
    import nbclient
    import nbformat
    from nbclient.exceptions import CellExecutionError

    digest = _sha256(source)
    if executed.is_file() and not force:
        previous = nbformat.read(executed, as_version=4)
        if previous.metadata.get("sphereviz", {}).get("source_sha256") == digest:
            return previous
    notebook = nbformat.read(source, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=KERNEL_NAME,
        store_widget_state=True,
        resources={"metadata": {"path": str(source.parent)}},
    )
    commit, dirty = _commit(source.parent)
    started = time.time()
    try:
        client.execute()
    except CellExecutionError as error:
        cell = next(
            (i for i, c in enumerate(notebook.cells) if any(
                o.get("output_type") == "error" for o in c.get("outputs", []))),
            None,
        )  # fmt: skip
        last = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise NotebookFailed(f"{source}: cell {cell} failed: {last}") from None
    notebook.metadata["sphereviz"] = {
        "source": source.name,
        "source_sha256": digest,
        "commit": commit,
        "uncommitted_changes": dirty,
        "sphereviz_version": __version__,
        "machine": _machine(),
        "executed_at": time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
    }
    with atomic_path(executed) as tmp:
        nbformat.write(notebook, tmp)
    return notebook


def _state_html(model_id: str, state: dict) -> str | None:
    """A widget drawn from its stored state (boxes, HTML, labels, progress bars), or None for
    a widget that the state cannot draw (a plotly FigureWidget keeps its traces elsewhere)."""
    model = state.get(model_id)
    if model is None:
        return None
    name, values = model.get("model_name", ""), model.get("state", {})
    if name in ("HBoxModel", "VBoxModel", "BoxModel"):
        direction = "column" if name == "VBoxModel" else "row"
        parts = [_state_html(child.removeprefix("IPY_MODEL_"), state)
                 for child in values.get("children", [])]  # fmt: skip
        if any(part is None for part in parts):
            return None
        return (
            f'<div style="display:flex;flex-direction:{direction};gap:6px">{"".join(parts)}</div>'
        )
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<div>{values.get('value', '')}</div>"
    if name == "LabelModel":
        return f"<div>{html.escape(str(values.get('value', '')))}</div>"
    if name in ("IntProgressModel", "FloatProgressModel"):
        value, top = values.get("value", 0), values.get("max", 100)
        label = html.escape(str(values.get("description", "")))
        return f'<div>{label} <progress max="{top}" value="{value}"></progress></div>'
    return None


def static_notebook(notebook):
    """A copy of an executed notebook whose widgets are pictures and which holds no widget
    state (see the module docstring); outputs that are not widgets are unchanged."""
    import copy

    notebook = copy.deepcopy(notebook)
    widget_metadata = notebook.metadata.pop("widgets", {})
    state = widget_metadata.get(WIDGET_STATE, {}).get("state", {})
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            view = data.pop(WIDGET_VIEW, None)
            if view is None or "text/html" in data:
                continue
            drawn = _state_html(view.get("model_id", ""), state)
            if drawn is not None:
                data["text/html"] = drawn
    return notebook


def _provenance_cell(notebook):
    import nbformat

    facts = notebook.metadata.get("sphereviz", {})
    commit = facts.get("commit") or "unknown"
    if facts.get("uncommitted_changes"):
        commit += " with uncommitted changes"
    minutes = facts.get("seconds", 0) / 60
    text = (
        f"*Rendered preview.* This page is `{facts.get('source', '?')}` executed top to bottom "
        f"with its default parameters (full mode) on {facts.get('executed_at', '?')}, in "
        f"{minutes:.1f} min on {facts.get('machine', '?')} (runs it found trained in its "
        "output folder were reused; the syllabus gives the minutes from nothing), sphereviz "
        f"{facts.get('sphereviz_version', '?')} at commit `{commit}`. The widgets are pictures "
        "of where the run left them: open the notebook in JupyterLab to move them. Numbers that "
        "depend on training differ a little on other machines and seeds."
    )
    return nbformat.v4.new_markdown_cell(text)


def render_html(notebook) -> str:
    """The page of an executed notebook: :func:`static_notebook`, a provenance note first,
    nbconvert's lab template, and ``plotly.min.js`` (beside the page) loaded in the head
    when a plotly figure is drawn, before require.js (which would otherwise capture it)."""
    from nbconvert import HTMLExporter

    from sphereviz.plots.interactive3d import PLOTLYJS_TAG

    page = static_notebook(notebook)
    if "sphereviz" in page.metadata:
        page.cells.insert(0, _provenance_cell(page))
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(page)
    if "Plotly.newPlot" in body:
        body = body.replace("<head>", f"<head>\n{PLOTLYJS_TAG}", 1)
    return body


def render_notebooks(
    sources: list[Path], out: Path, executed_dir: Path, force: bool = False, log=print
) -> list[Path]:
    """Execute (or reuse) each of ``sources`` and write its page into ``out``, at the path
    of the notebook below the sources' common folder (``solutions/03_….html``)."""
    from sphereviz.plots.interactive3d import PLOTLYJS_TAG, write_plotlyjs

    check_writable_folder(out, "output folder")
    root = Path(os.path.commonpath([str(source.parent) for source in sources]))
    pages = []
    with FolderLock(out, "rendered-notebook folder"):
        for source in sources:
            relative = source.relative_to(root)
            executed = executed_dir / relative
            log(f"{source}: executing it, or reusing {executed} if it is from this notebook")
            notebook = execute_notebook(source, executed, force=force)
            page = (out / relative).with_suffix(".html")
            body = render_html(notebook)
            with atomic_path(page) as tmp:
                tmp.write_text(body, encoding="utf-8")
            if PLOTLYJS_TAG in body:
                write_plotlyjs(page.parent)
            log(f"  wrote {page} ({len(body.encode('utf-8')) / 1e6:.1f} MB)")
            pages.append(page)
    return pages


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sphereviz render-notebooks",
        description="Execute notebooks (full mode: their own parameters) and write static HTML "
        "pages whose widgets are pictures and whose plotly figures share one plotly.min.js.",
    )
    parser.add_argument("notebooks", type=Path, nargs="+", metavar="NOTEBOOK")
    parser.add_argument("--out", type=Path, required=True, help="folder of the HTML pages")
    parser.add_argument(
        "--executed", type=Path, default=DEFAULT_EXECUTED,
        help=f"folder of the executed copies, reused while a notebook is unchanged "
        f"({DEFAULT_EXECUTED})",
    )  # fmt: skip
    parser.add_argument("--force", action="store_true", help="execute even an unchanged notebook")
    return parser


def main(argv: list[str] | None = None) -> int:
    from jupyter_client.kernelspec import NoSuchKernel

    args = build_parser().parse_args(argv)
    sources = [path.resolve() for path in args.notebooks]
    for source in sources:
        if not source.is_file() or source.suffix != ".ipynb":
            print(
                f"sphereviz render-notebooks: error: {source} is not a notebook file "
                "(give .ipynb files, e.g. notebooks/*.ipynb)",
                file=sys.stderr,
            )
            return 2
    try:
        render_notebooks(sources, args.out.resolve(), args.executed.resolve(), force=args.force)
    except NotebookFailed as error:
        print(f"sphereviz render-notebooks: error: {error}", file=sys.stderr)
        return 1
    except NoSuchKernel:
        print(
            f"sphereviz render-notebooks: error: no Jupyter kernel named {KERNEL_NAME!r}; "
            "register it with `make setup` (it installs the kernel into .venv)",
            file=sys.stderr,
        )
        return 2
    except ValueError as error:  # FolderBusyError and the folder checks
        return report_error("render-notebooks", error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
