"""Classroom widgets: a thin ipywidgets layer over the pure functions of plots and geometry.

- ``margin_explorer()``: loss, m, K or θ₁₂ → the target curve, the regions on the circle and
  live readouts (angular margin, max intra, min inter, does the criterion hold?).
- ``sphere_explorer(runs)``: a slider over trained runs → the interactive sphere and the
  same/different-class angle histograms.
- ``train_explorer()``: pick loss, m and feature dimension, press Train, and watch the
  features move on the circle or sphere epoch by epoch.

Each returns a small object holding its controls and outputs, so that tests (and curious
students) can set ``explorer.controls["m"].value = 3`` and read ``explorer.readout.value``
without a browser; displaying the object in a notebook shows ``explorer.widget``.

Matplotlib output is rendered from one reused ``Figure`` (not managed by pyplot, so nothing is
displayed twice) to bytes in an ``ipywidgets.Image``: SVG with text as text for the margin
explorer (the fastest redraw, see ``benchmarks/bench_widgets.py``), PNG for the scatter plots
(thousands of points make SVG heavy). Deterministic, and free of ``%matplotlib widget``.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Callable, Mapping, Sequence

import ipywidgets as widgets
import matplotlib
import numpy as np
import plotly.graph_objects as go
from matplotlib.figure import Figure

from sphereviz import geometry, margins, plots
from sphereviz.losses.registry import loss_spec
from sphereviz.plots import interactive3d as plots3d
from sphereviz.style import OKABE_ITO
from sphereviz.validation import check_choice, check_int, check_real
from sphereviz.widget_snapshot import snapshot_html

__all__ = [
    "LOSS_CHOICES",
    "MarginExplorer",
    "SphereExplorer",
    "TrainExplorer",
    "figure_png",
    "figure_svg",
    "margin_explorer",
    "sphere_explorer",
    "train_explorer",
]

_LECTURE_ORDER = (
    "a-softmax", "cosface", "arcface", "sphereface-r", "sphereface2", "modified-softmax",
    "softmax",
)  # fmt: skip
#: (label shown, canonical loss name) in the order a lecture introduces them; the labels are
#: the registry's (``losses.registry.loss_spec(name).label``).
LOSS_CHOICES: tuple[tuple[str, str], ...] = tuple(
    (loss_spec(name).label, name) for name in _LECTURE_ORDER
)
WIDGET_DPI = 80
#: The λ slider's stops: logarithmic (1-2-5) from 0.01 to 1000, with 0 (the pure ψ) reachable
#: and 5 (the official floor) among them.
LAMBDA_STOPS: tuple[float, ...] = (
    (0.0,)
    + tuple(mantissa * 10.0**exponent for exponent in range(-2, 3) for mantissa in (1, 2, 5))
    + (1000.0,)
)


def figure_png(figure: Figure, dpi: int = WIDGET_DPI) -> bytes:
    """The figure rendered to PNG bytes (for an ``ipywidgets.Image``).

    zlib level 1: the encoding takes a quarter of the default's time for a slightly larger
    file, which matters at one redraw per slider step.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def figure_svg(figure: Figure) -> bytes:
    """The figure as SVG bytes with text kept as text (for an ``ipywidgets.Image``).

    With ``svg.fonttype = "none"`` the browser sets the labels in its own sans-serif font,
    so no glyph outlines are computed: about half the time of a PNG of the same figure, and
    sharp at any zoom. A fixed hash salt and no date keep the bytes reproducible.
    """
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "sphereviz"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()


class _Explorer:
    """Common display plumbing: ``.widget`` is what a notebook shows.

    Displaying an explorer publishes the widget view and, as its ``text/html``, a static
    picture of it (``widget_snapshot.snapshot_html``): a front end with a kernel shows the
    live widget, and a page rendered from the executed notebook shows the picture.
    """

    widget: widgets.Widget

    def _ipython_display_(self) -> None:
        from IPython.display import display

        bundle = self.widget._repr_mimebundle_()
        bundle["text/html"] = snapshot_html(self.widget)
        display(bundle, raw=True)


# ---------------------------------------------------------------------------------------------
# Margin explorer
# ---------------------------------------------------------------------------------------------


def _degrees_text(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1f}°"


_YES_COLOR, _NO_COLOR = OKABE_ITO[2], OKABE_ITO[5]  # Okabe–Ito bluish green and vermillion


def _readout_html(regions: geometry.CircleRegions, effective_m: float | None = None) -> str:
    summary = regions.summary_degrees()
    empty = [index + 1 for index, arcs in enumerate(regions.arcs) if not arcs]
    if summary["criterion_holds"]:
        verdict = f'<b style="color:{_YES_COLOR}">yes ✓</b>'
    elif empty:
        verdict = f'<b style="color:{_NO_COLOR}">no ✗ (no class wins by this margin)</b>'
    else:
        verdict = f'<b style="color:{_NO_COLOR}">no ✗</b>'
    rows = (
        ("angular margin", _degrees_text(summary["angular_margin_deg"])),
        ("max intra-class angle", _degrees_text(summary["max_intra_class_angle_deg"])),
        ("min inter-class angle", _degrees_text(summary["min_inter_class_angle_deg"])),
        ("max intra ≤ min inter?", verdict),
    )
    if regions.grid_claim_counts is not None:  # SphereFace2: the one-vs-all rule's leftovers
        counts = regions.grid_claim_counts
        rows += (
            ("claimed by no class", _degrees_text(360.0 * float(np.mean(counts == 0)))),
            ("claimed by several", _degrees_text(360.0 * float(np.mean(counts >= 2)))),
        )
    if effective_m is not None:
        rows = (("effective m", f"{effective_m:.2f}"), *rows)
    cells = "".join(
        f"<tr><td>{html.escape(name)}</td><td style='padding-left:1em'>{value}</td></tr>"
        for name, value in rows
    )
    return f"<table>{cells}</table>"


_MARGIN_CONTROL = {
    "a-softmax": "m",
    "cosface": "m_cosface",
    "arcface": "m_arcface",
    "sphereface-r": "m_sphereface_r",
    "sphereface2": "m_sphereface2",
}


def _initial_margins(loss, m, num_classes, theta12_degrees, annealing_lambda) -> dict:
    """The margin explorer's arguments checked; each margin slider's start value (``m`` on
    ``loss``'s slider, the registry's default margin on the others)."""
    check_choice("annealing_lambda", annealing_lambda, LAMBDA_STOPS,
                 hint="the stops of the λ slider")  # fmt: skip
    check_choice("loss", loss, [name for _, name in LOSS_CHOICES], owner="margin_explorer")
    check_int("num_classes", num_classes, min=2, max=12)
    check_real("theta12_degrees", theta12_degrees, min=5, max=180, hint="in degrees")
    initial = {control: loss_spec(name).default_margin for name, control in _MARGIN_CONTROL.items()}
    if m is not None and loss in _MARGIN_CONTROL:
        if loss_spec(loss).integer_margin:  # the integer slider
            m = margins.check_integer_margin(m)
        initial[_MARGIN_CONTROL[loss]] = m
    return initial


class MarginExplorer(_Explorer):
    """Loss, m and the class layout → target curve, regions on the circle, criterion readout.

    ``controls``: ``loss`` (Dropdown of :data:`LOSS_CHOICES`), ``m`` (the integer slider of
    A-Softmax), ``m_cosface``, ``m_arcface``, ``m_sphereface_r`` (real m ≥ 1) and
    ``m_sphereface2`` (real sliders, all described "m"; ArcFace's in radians), ``num_classes``
    (K), ``theta12`` (degrees, two classes only), for softmax ``weight_norm`` (‖W₁‖, the
    others 1) and ``bias`` (b₁, the others 0), for A-Softmax ``lambda`` (the annealing weight
    λ, logarithmic stops :data:`LAMBDA_STOPS` from 0 to 1000: the trained target
    (λ cos θ + ψ)/(1 + λ), with its effective m), for SphereFace2 ``bias_sphereface2`` (its
    one shared bias b, with r = 40 and t = 3; it starts at the loss's initial bias for K = 4).
    Only the controls that apply are shown. ``readout`` is an HTML table; ``regions`` the last
    ``geometry.CircleRegions``; ``figure`` the matplotlib figure shown (as SVG) in ``image``.
    """

    def __init__(
        self,
        loss: str = "a-softmax",
        m: float | None = None,
        num_classes: int = 2,
        theta12_degrees: float = 90.0,
        annealing_lambda: float = 0.0,
    ):
        loss = geometry.canonical_loss_name(loss)
        initial = _initial_margins(loss, m, num_classes, theta12_degrees, annealing_lambda)
        style = {"description_width": "initial"}
        self.controls: dict[str, widgets.ValueWidget] = {
            "loss": widgets.Dropdown(options=LOSS_CHOICES, value=loss, description="loss"),
            "m": widgets.IntSlider(
                value=initial["m"], min=1, max=8, description="m", style=style
            ),
            "m_cosface": widgets.FloatSlider(
                value=initial["m_cosface"], min=0.0, max=1.0, step=0.01, description="m",
                continuous_update=False, style=style,
            ),
            "m_arcface": widgets.FloatSlider(
                value=initial["m_arcface"], min=0.0, max=1.5, step=0.01, description="m",
                continuous_update=False, style=style, readout_format=".2f",
            ),
            "m_sphereface_r": widgets.FloatSlider(
                value=initial["m_sphereface_r"], min=1.0, max=6.0, step=0.05, description="m",
                continuous_update=False, style=style, readout_format=".2f",
            ),
            "m_sphereface2": widgets.FloatSlider(
                value=initial["m_sphereface2"], min=0.0, max=1.0, step=0.01, description="m",
                continuous_update=False, style=style, readout_format=".2f",
            ),
            "bias_sphereface2": widgets.FloatSlider(
                value=round(2 * geometry.ClaimRule().bias_for(4, 0.4)) / 2, min=-40.0, max=60.0,
                step=0.5, description="b", continuous_update=False, style=style,
            ),
            "num_classes": widgets.IntSlider(
                value=num_classes, min=2, max=12, description="classes K", style=style
            ),
            "theta12": widgets.FloatSlider(
                value=theta12_degrees, min=5.0, max=180.0, step=1.0, description="θ₁₂ (°)",
                continuous_update=False, style=style,
            ),
            "weight_norm": widgets.FloatSlider(
                value=1.0, min=0.25, max=3.0, step=0.05, description="‖W₁‖",
                continuous_update=False, style=style,
            ),
            "bias": widgets.FloatSlider(
                value=0.0, min=-1.0, max=1.0, step=0.05, description="b₁",
                continuous_update=False, style=style,
            ),
            "lambda": widgets.SelectionSlider(
                options=[(f"{value:g}", value) for value in LAMBDA_STOPS],
                value=annealing_lambda, description="λ (annealing)", continuous_update=False,
                style=style,
            ),
        }  # fmt: skip
        self.readout = widgets.HTML()
        self.image = widgets.Image(format="svg+xml", layout={"width": "640px"})
        self.figure = Figure(figsize=(8.0, 3.6))
        self.target_ax, self.regions_ax = self.figure.subplots(1, 2)
        self.figure.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.86, wspace=0.15)
        self.controls_box = widgets.VBox()
        self.widget = widgets.VBox(
            [self.controls_box, widgets.HBox([self.image, self.readout])],
            layout={"align_items": "flex-start"},
        )
        self.regions: geometry.CircleRegions | None = None
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.update()

    @property
    def loss(self) -> str:
        return self.controls["loss"].value

    @property
    def spec(self):
        """The registry's ``LossSpec`` of the current loss: which controls apply to it."""
        return loss_spec(self.loss)

    @property
    def m(self) -> float | None:
        """The margin of the current loss (None for the margin-free ones)."""
        control = _MARGIN_CONTROL.get(self.loss)
        return self.controls[control].value if control is not None else None

    def visible_controls(self) -> list[str]:
        """Names of the controls that apply to the current loss and K."""
        names = ["loss"]
        if self.loss in _MARGIN_CONTROL:
            names.append(_MARGIN_CONTROL[self.loss])
        if self.spec.anneals:
            names.append("lambda")
        if self.spec.region_rule == "claims":
            names.append("bias_sphereface2")
        names.append("num_classes")
        if self.controls["num_classes"].value == 2:
            names.append("theta12")
        if self.spec.plain_score == "logit":
            names += ["weight_norm", "bias"]
        return names

    def compute(self) -> geometry.CircleRegions:
        """The regions for the current control values (no drawing)."""
        num_classes = self.controls["num_classes"].value
        theta12 = math.radians(self.controls["theta12"].value) if num_classes == 2 else None
        options = {}
        if self.spec.plain_score == "logit":
            options["weight_norms"] = [self.controls["weight_norm"].value] + [1.0] * (
                num_classes - 1
            )
            options["biases"] = [self.controls["bias"].value] + [0.0] * (num_classes - 1)
        if self.spec.region_rule == "claims":
            options["claim_rule"] = geometry.ClaimRule(bias=self.controls["bias_sphereface2"].value)
        if self.annealing_lambda > 0:
            options["annealing_lambda"] = self.annealing_lambda
        return plots.regions_for(self.loss, self.m, num_classes, theta12, **options)

    @property
    def annealing_lambda(self) -> float:
        """λ of A-Softmax (0 for the other losses)."""
        return self.controls["lambda"].value if self.spec.anneals else 0.0

    def effective_m(self) -> float | None:
        """A-Softmax's effective m at the current λ and layout (``geometry.annealed_margin``)."""
        if not self.spec.anneals:
            return None
        num_classes = self.controls["num_classes"].value
        theta12 = math.radians(self.controls["theta12"].value) if num_classes == 2 else None
        return geometry.annealed_margin(
            self.m, self.annealing_lambda, theta12, num_classes
        ).effective_m

    def update(self) -> None:
        """Recompute and redraw everything from the control values."""
        visible = [self.controls[name] for name in self.visible_controls()]
        if list(self.controls_box.children) != visible:
            self.controls_box.children = visible
        self.regions = self.compute()
        plots.clear_drawing(self.target_ax)
        plots.clear_drawing(self.regions_ax)
        plots.draw_target_curve(
            self.target_ax, self.loss, self.m, legend=False, annealing_lambda=self.annealing_lambda
        )
        plots.draw_regions(self.regions_ax, self.regions, annotate=False)
        self.readout.value = _readout_html(self.regions, self.effective_m())
        self.image.value = figure_svg(self.figure)

    @property
    def summary(self) -> dict:
        """The readout's numbers (degrees) and the criterion, as a dict."""
        return self.regions.summary_degrees()

    def _on_change(self, _change) -> None:
        self.update()


def margin_explorer(
    loss: str = "a-softmax",
    m: float | None = None,
    num_classes: int = 2,
    theta12_degrees: float = 90.0,
    annealing_lambda: float = 0.0,
) -> MarginExplorer:
    """The margin explorer widget (see :class:`MarginExplorer`); display it in a notebook.

    ``m`` sets the starting margin of ``loss`` (A-Softmax: an integer, default 4; CosFace
    0.35; ArcFace 0.5 rad); each loss keeps its own m slider. ``annealing_lambda``: the
    starting λ of A-Softmax (one of :data:`LAMBDA_STOPS`; 5 is the official floor).
    """
    return MarginExplorer(loss, m, num_classes, theta12_degrees, annealing_lambda)


# ---------------------------------------------------------------------------------------------
# Sphere explorer
# ---------------------------------------------------------------------------------------------


def _run_parts(run) -> tuple[str, dict, str | None, float | None, list[str] | None]:
    """(title, embeddings, loss, m, names of the classes present) of a Run or a mapping.

    A mapping may give ``class_names`` indexed by label; a Run's are its own (``Run.class_names``
    as ``plots.run_class_names`` shows them). None when unknown: the sphere says ``class <label>``.
    """
    if not isinstance(run, Mapping):
        run = plots.as_run(run)  # a Run, or the path of a run folder
    if isinstance(run, Mapping):
        embeddings = {key: run[key] for key in ("features", "labels", "class_weights")}
        loss, m = run.get("loss"), run.get("m")
        title = run.get("title") or (f"{loss}, m = {m}" if loss else "run")
        class_names = run.get("class_names")
    else:
        title, features, labels, weights = plots.run_panel(run)
        embeddings = {"features": features, "labels": labels, "class_weights": weights}
        loss, m = run.config.loss, run.config.m
        class_names = plots.run_class_names(run)
    if class_names is not None:
        class_names = plots.class_names_present(class_names, embeddings["labels"])
    return title, embeddings, loss, m, class_names


def _replace_figure(figure_widget: go.FigureWidget, figure: go.Figure) -> None:
    """Show ``figure`` in ``figure_widget``: its traces and layout replace the old ones.

    The widget stays the same object (the front end keeps its view and only receives the
    new traces and layout); the number and kinds of traces may differ from the old figure's.
    """
    with figure_widget.batch_update():
        figure_widget.data = ()
        figure_widget.add_traces(figure.data)
        figure_widget.layout = figure.layout


class SphereExplorer(_Explorer):
    """A slider over trained runs → the interactive sphere and the angle histograms.

    ``runs``: ``sphereviz.runs.Run`` objects (``load_run``/``train``) or mappings with
    ``features``, ``labels``, ``class_weights`` and optional ``loss``, ``m``, ``title`` and
    ``class_names`` (indexed by label). The sphere's legend names the classes (digits, the
    identities of a face run's cache) when the names are known, else ``class <label>``.
    ``controls["run"]`` picks one (described "run"); ``figure`` is the current plotly figure
    (a ``go.Figure``), shown in ``figure_widget``, one ``go.FigureWidget`` whose traces and
    layout are replaced in place when the run changes (keeping the camera the student has
    turned to, so that runs compare from one viewpoint); ``histogram_figure`` the matplotlib
    angle histograms (shown in ``histogram_image``), ``readout`` a short HTML summary
    (``feature_summary``).

    The sphere is a widget of its own rather than ``display(figure)`` in an
    ``ipywidgets.Output``: papermill (nbclient) can hang for ever executing a notebook whose
    Output widget captures a large output (jupyter/nbclient#312), and the FigureWidget
    updates the plot in place instead of clearing and redrawing a whole output.
    """

    def __init__(self, runs: Sequence, dpi: int = WIDGET_DPI, boundary_resolution: int = 120):
        if len(runs) == 0:
            raise ValueError("runs is empty; pass trained runs (e.g. load_run(path) for m=1…4)")
        self.runs = [_run_parts(run) for run in runs]
        self.dpi = dpi
        self.boundary_resolution = boundary_resolution
        self.controls = {
            "run": widgets.SelectionSlider(
                options=[(title, index) for index, (title, *_) in enumerate(self.runs)],
                value=0,
                description="run",
                continuous_update=False,
                layout={"width": "500px"},
            )
        }
        self.figure_widget = go.FigureWidget()
        self.histogram_figure = Figure(figsize=(4.0, 3.0))
        self.histogram_ax = self.histogram_figure.subplots()
        # room below the axis label for the legend, which would otherwise cover bars
        self.histogram_figure.subplots_adjust(left=0.16, bottom=0.27, right=0.97, top=0.9)
        self.histogram_image = widgets.Image(format="png")
        self.readout = widgets.HTML()
        self.figure: go.Figure | None = None
        self.pair_angles: geometry.PairAngles | None = None
        self.widget = widgets.VBox(
            [
                self.controls["run"],
                widgets.HBox(
                    [self.figure_widget, widgets.VBox([self.histogram_image, self.readout])]
                ),
            ]
        )
        self.controls["run"].observe(lambda _change: self.update(), names="value")
        self.update()

    def update(self) -> None:
        title, embeddings, loss, m, class_names = self.runs[self.controls["run"].value]
        features, labels = embeddings["features"], embeddings["labels"]
        weights = embeddings["class_weights"]
        self.figure = plots3d.sphere_figure(
            features, labels, weights, loss, m, title=title, size=520,
            boundary_resolution=self.boundary_resolution, class_names=class_names,
        )  # fmt: skip
        plots.clear_drawing(self.histogram_ax)
        self.pair_angles = plots.draw_angle_histograms(self.histogram_ax, features, labels)
        self.histogram_ax.set_title(title)
        self.histogram_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
                                 fontsize="small", frameon=False)  # fmt: skip
        self.histogram_image.value = figure_png(self.histogram_figure, self.dpi)
        summary = geometry.feature_summary(features, labels, weights)
        self.readout.value = (
            f"mean angle to own W: {summary['mean_angle_to_own_class_deg']:.1f}°<br>"
            f"Angular Fisher Score: {summary['angular_fisher_score']:.3f}"
        )
        if self.figure_widget.data:  # not the first drawing: keep the student's viewpoint
            self.figure.layout.scene.camera = self.figure_widget.layout.scene.camera
        _replace_figure(self.figure_widget, self.figure)


def sphere_explorer(runs: Sequence) -> SphereExplorer:
    """The sphere explorer widget over ``runs`` (see :class:`SphereExplorer`)."""
    return SphereExplorer(runs)


# ---------------------------------------------------------------------------------------------
# Train explorer
# ---------------------------------------------------------------------------------------------


_DEFAULT_TRAIN_MARGIN = {
    name: loss_spec(name).default_margin
    for name in ("a-softmax", "cosface", "arcface", "sphereface-r", "sphereface2")
}


class TrainExplorer(_Explorer):
    """Pick loss, m and feature dimension, press Train, watch the features move.

    Trains ``sphereviz.train.train`` on ``base_config`` (default the ``mnist-demo`` preset)
    with the chosen ``loss``, ``m`` and ``dim``; after every epoch ``on_epoch`` redraws the
    evaluation features on the unit circle (dim 2) or sphere (dim 3) into ``image``, advances
    ``progress`` and writes the epoch's metrics into ``readout``. Training runs in the
    button's callback (the kernel is busy meanwhile; the widgets still update). ``run`` is
    the last finished :class:`~sphereviz.runs.Run`; ``history`` the metrics seen so far.
    """

    def __init__(self, base_config=None, dpi: int = WIDGET_DPI):
        from sphereviz.config import TrainConfig

        self.base_config = base_config or TrainConfig.preset("mnist-demo")
        self.dpi = dpi
        style = {"description_width": "initial"}
        self.controls = {
            "loss": widgets.Dropdown(
                options=LOSS_CHOICES, value="a-softmax", description="loss", style=style
            ),
            "m": widgets.FloatText(
                value=4, description="m", style=style, layout={"width": "160px"}
            ),
            "dim": widgets.ToggleButtons(options=[2, 3], value=3, description="feature dim"),
            "train": widgets.Button(description="Train", button_style="primary", icon="play"),
        }  # fmt: skip
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="epochs")
        self.readout = widgets.HTML("Press Train.")
        self.image = widgets.Image(format="png")
        self.figure = Figure(figsize=(4.2, 4.0))
        self.history: list[dict] = []
        self.run = None
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.controls[name] for name in ("loss", "m", "dim", "train")]),
                self.progress,
                widgets.HBox([self.image, self.readout]),
            ]
        )
        self.controls["loss"].observe(self._on_loss_change, names="value")
        self.controls["train"].on_click(lambda _button: self.train())

    def _on_loss_change(self, change) -> None:
        """Each loss gets its paper's margin; the margin-free ones grey the field out."""
        default = _DEFAULT_TRAIN_MARGIN.get(change["new"])
        self.controls["m"].disabled = default is None
        if default is not None:
            self.controls["m"].value = default

    def config(self):
        """The TrainConfig that Train would use now."""
        import dataclasses

        loss = self.controls["loss"].value
        m = self.controls["m"].value if loss in _DEFAULT_TRAIN_MARGIN else None
        if m is not None and loss_spec(loss).integer_margin:
            m = int(m) if float(m).is_integer() else m
        return dataclasses.replace(
            self.base_config, loss=loss, m=m, dim=self.controls["dim"].value, out=None
        )

    def train(self, on_epoch: Callable[[int, dict, dict], None] | None = None):
        """Train with the current controls, redrawing after each epoch; returns the Run."""
        from sphereviz.train import train

        config = self.config()
        self.history = []
        self.progress.max, self.progress.value = config.epochs, 0
        self.controls["train"].disabled = True
        self.readout.value = f"training {config.loss}, m = {config.m}, {config.dim}-D …"

        def show_epoch(epoch: int, metrics: dict, embeddings: dict) -> None:
            self.history.append(metrics)
            self.draw(embeddings, f"epoch {epoch}/{config.epochs}")
            self.progress.value = epoch
            self.readout.value = (
                f"epoch {epoch}: loss {metrics['loss']:.3f}<br>"
                f"test accuracy {100 * metrics['test_accuracy']:.1f} %<br>"
                f"λ = {_format_lambda(metrics.get('lambda'))}<br>"
                f"{metrics['seconds']:.1f} s on {metrics['device']}"
            )
            if on_epoch is not None:
                on_epoch(epoch, metrics, embeddings)

        try:
            self.run = train(config, progress=False, on_epoch=show_epoch)
        except Exception as error:
            self.readout.value = f"<b>training failed:</b> {html.escape(str(error))}"
            raise
        finally:
            self.controls["train"].disabled = False
        return self.run

    def draw(self, embeddings: Mapping[str, np.ndarray], title: str = "") -> None:
        """Redraw the features (unit circle or sphere) from one epoch's embeddings."""
        features = np.asarray(embeddings["features"], dtype=float)
        labels = np.asarray(embeddings["labels"])
        weights = np.asarray(embeddings["class_weights"], dtype=float)
        self.figure.clear()
        if features.shape[1] == 2:
            ax = self.figure.add_subplot()
            unit = geometry.unit_rows(features)
            plots.draw_unit_circle_features(ax, unit, labels, weights)
        else:
            ax = self.figure.add_subplot(projection="3d")
            points, unit_weights, _ = plots.project_to_sphere(features, weights)
            plots.draw_unit_sphere_features(ax, points, labels, unit_weights)
        ax.set_title(title)
        self.image.value = figure_png(self.figure, self.dpi)


def _format_lambda(value) -> str:
    return "–" if value is None else f"{float(value):.1f}"


def train_explorer(base_config=None) -> TrainExplorer:
    """The train explorer widget (see :class:`TrainExplorer`); MNIST demo preset by default."""
    return TrainExplorer(base_config)
