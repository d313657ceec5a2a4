"""A static HTML picture of a live ipywidgets tree, for a page read without a kernel.

``snapshot_html(widget)`` draws the widget and its children as they are now:

- a box (``VBox``, ``HBox``, any ``Box``) becomes a flex column or row of its children;
- an ``Image`` an ``<img>`` with its bytes inlined as a ``data:`` URL (PNG or SVG);
- an ``HTML`` or ``HTMLMath`` its HTML, a ``Label`` its escaped text;
- a control (slider, dropdown, toggle buttons, checkbox, text field) the line
  "description: value", with the option's label for a selection;
- a ``Button`` a disabled button, a progress bar a ``<progress>`` with its value;
- an ``Output`` its outputs (HTML, PNG or plain text);
- a plotly ``FigureWidget`` its figure as a plotly ``<div>`` drawn by ``Plotly.newPlot``.
  plotly.js is not included: the page loads it once (the rendered notebooks share one
  ``plotly.min.js``, :mod:`sphereviz.notebook_html`).

Anything else is named, not drawn. The explorers of :mod:`sphereviz.widgets` publish this
picture as the ``text/html`` beside their widget view: JupyterLab shows the live widget, and a
static page of the executed notebook shows the picture instead of an empty box. The output is
deterministic (the plotly ``<div>`` id is a hash of the figure) so a rendered page changes only
when its content does.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import sys

import ipywidgets as widgets

__all__ = ["plotly_div", "snapshot_html"]

_CAPTION = (
    '<div style="font-size:small;color:#555">A picture of the widget as the run left it: '
    "run the notebook to move its controls.</div>"
)


def snapshot_html(widget: widgets.Widget, caption: bool = True) -> str:
    """The widget tree as static HTML (see the module docstring); ``caption`` adds a line
    that says the picture is not live."""
    body = _draw(widget)
    return f'<div class="sphereviz-snapshot">{_CAPTION if caption else ""}{body}</div>'


def _is_figure_widget(widget: widgets.Widget) -> bool:
    """Whether ``widget`` is a plotly ``FigureWidget``, without importing its module when no
    figure widget exists yet (that import pulls in nbformat's validators: seconds)."""
    module = sys.modules.get("plotly.graph_objs._figurewidget")
    return module is not None and isinstance(widget, module.FigureWidget)


def _draw(widget: widgets.Widget) -> str:
    if _is_figure_widget(widget):  # its .layout is the figure's, not a widget's
        import plotly.graph_objects as go

        return plotly_div(go.Figure(widget))
    if widget.layout.display == "none" or widget.layout.visibility == "hidden":
        return ""
    if isinstance(widget, widgets.Box):
        direction = "column" if isinstance(widget, widgets.VBox) else "row"
        children = "".join(_draw(child) for child in widget.children)
        return (
            f'<div style="display:flex;flex-direction:{direction};gap:6px;'
            f'align-items:flex-start">{children}</div>'
        )
    if isinstance(widget, widgets.Image):
        if not widget.value:
            return ""
        kind = widget.format if "/" in widget.format else f"image/{widget.format}"
        if kind == "image/svg":
            kind = "image/svg+xml"
        data = base64.b64encode(widget.value).decode("ascii")
        return f'<img alt="" src="data:{kind};base64,{data}">'
    if isinstance(widget, (widgets.HTML, widgets.HTMLMath)):
        return f"<div>{widget.value}</div>"
    if isinstance(widget, widgets.Label):
        return f"<div>{html.escape(str(widget.value))}</div>"
    if isinstance(widget, widgets.Button):
        return f"<button disabled>{html.escape(widget.description)}</button>"
    if isinstance(widget, (widgets.IntProgress, widgets.FloatProgress)):
        label = html.escape(widget.description)
        return (
            f'<div>{label} <progress max="{widget.max}" value="{widget.value}"></progress> '
            f"{widget.value}/{widget.max}</div>"
        )
    if isinstance(widget, widgets.Output):
        return "".join(_draw_output(output) for output in widget.outputs)
    if isinstance(widget, widgets.ValueWidget):
        return _draw_control(widget)
    return f"<div>[{html.escape(type(widget).__name__)}]</div>"


def _draw_control(widget: widgets.ValueWidget) -> str:
    """A control as "description: value" (the selected option's label for a selection)."""
    if getattr(widget, "_options_labels", None) and isinstance(getattr(widget, "index", None), int):
        value = widget._options_labels[widget.index]
    elif isinstance(widget.value, float) and getattr(widget, "readout_format", None):
        value = format(widget.value, widget.readout_format.lstrip("%"))
    else:
        value = widget.value
    description = getattr(widget, "description", "")
    prefix = f"{html.escape(description)}: " if description else ""
    return f"<div>{prefix}<b>{html.escape(str(value))}</b></div>"


def _draw_output(output: dict) -> str:
    data = output.get("data", {})
    if "text/html" in data:
        return f"<div>{data['text/html']}</div>"
    if "image/png" in data:
        return f'<img alt="" src="data:image/png;base64,{data["image/png"]}">'
    text = data.get("text/plain", output.get("text", ""))
    return f"<pre>{html.escape(str(text))}</pre>" if text else ""


def plotly_div(figure) -> str:
    """``figure`` as a ``<div>`` and the ``Plotly.newPlot`` call that draws it, without
    plotly.js; the ``div`` id is a hash of the figure, so the same figure gives the same
    HTML."""
    import plotly.io as pio

    spec = pio.to_json(figure, validate=False, pretty=False, engine="json")
    digest = hashlib.sha1(spec.encode("utf-8")).hexdigest()[:12]
    return pio.to_html(
        json.loads(spec),
        include_plotlyjs=False,
        include_mathjax=False,
        full_html=False,
        div_id=f"plotly-{digest}",
        config={"displaylogo": False},
        validate=False,
    )
