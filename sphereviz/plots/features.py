"""Learned features: 2-D features raw and on the circle, 3-D (or PCA-projected) features on the
unit sphere, and the panels and class names of trained runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sphereviz import geometry
from sphereviz.plots import sphere_views
from sphereviz.plots._common import (
    as_features_and_labels,
    keep_tick_label_sizes,
)
from sphereviz.plots.regions import weight_name
from sphereviz.plots.sphere_views import SPHERE_FILL, draw_unit_sphere_wireframe, fit_unit_sphere
from sphereviz.style import COLUMN_WIDTHS_INCH, class_colors

__all__ = [
    "as_run",
    "BACK_MODES",
    "class_legend",
    "class_names_present",
    "draw_raw_features_2d",
    "draw_unit_circle_features",
    "draw_unit_sphere_features",
    "plot_features_2d",
    "plot_features_2d_panels",
    "plot_features_sphere",
    "run_class_names",
    "run_panel",
    "VIEW_MODES",
    "WEIGHT_TICK_SPAN_CIRCLE",
    "WEIGHT_TICK_SPAN_RAW",
]


def _scatter_by_class(
    ax: Axes, points: np.ndarray, labels: np.ndarray, size: float, alpha: float = 0.6,
    rasterized: bool | None = None, classes: np.ndarray | None = None, **options,
) -> None:  # fmt: skip
    """One scatter per class; colours follow ``classes`` (default: the labels present), so a
    subset of the points keeps the colours of the whole set."""
    classes = np.unique(labels) if classes is None else classes
    for color, cls in zip(class_colors(len(classes)), classes, strict=True):
        chosen = points[labels == cls]
        if not len(chosen):
            continue
        ax.scatter(
            *chosen.T,
            s=size,
            color=color,
            alpha=alpha,
            linewidths=0,
            label=f"class {cls}",
            rasterized=len(points) > 5000 if rasterized is None else rasterized,
            **options,
        )


#: Weight ticks on the circle: from WEIGHT_TICK_SPAN[0] to [1] times the radius of the points,
#: inside it, so that a tick points at its class and covers none of its points.
WEIGHT_TICK_SPAN_CIRCLE = (0.74, 0.92)
#: Weight ticks of the raw 2-D features: beyond the farthest feature.
WEIGHT_TICK_SPAN_RAW = (1.05, 1.2)


def _draw_weight_ticks(
    ax: Axes, unit_weights: np.ndarray, span: tuple[float, float], scale: float = 1.0
) -> None:
    """Each W_j/‖W_j‖ as a short tick from span[0]·scale to span[1]·scale along it (2-D)."""
    for index, (color, w) in enumerate(
        zip(class_colors(len(unit_weights)), unit_weights, strict=True)
    ):
        inner, outer = span[0] * scale * w, span[1] * scale * w
        ax.plot([inner[0], outer[0]], [inner[1], outer[1]], color=color, linewidth=1.6,
                solid_capstyle="round", label=f"_weight {weight_name(index)}")  # fmt: skip


def draw_unit_circle_features(
    ax: Axes,
    unit_points,
    labels,
    class_weights=None,
    marker_size: float = 3.0,
    *,
    ring_histogram: bool = True,
    bins: int = 72,
    ring_unit_length: float | None = None,
    alpha: float = sphere_views.POINT_ALPHA,
) -> sphere_views.RingHistogram | None:
    """Unit 2-D features on the circle, coloured by class, with weight ticks (into ``ax``).

    Points are translucent (``alpha``) and rasterised. With ``ring_histogram`` (default) the
    angle of x/‖x‖ is counted per class and drawn as stacked bars outside the circle
    (``sphere_views.draw_ring_histogram``), so classes that overlap on the circle still show
    how many points each has at every angle; the RingHistogram drawn is returned (else None).
    Panels that compare runs share one count scale with ``ring_unit_length=
    sphere_views.ring_unit_length([unit_1, unit_2, …], bins)``.
    Each class weight W_j is a short tick inside the circle (``WEIGHT_TICK_SPAN_CIRCLE``),
    pointing at the angle of W_j and covering no point.
    """
    unit_points = np.asarray(unit_points, dtype=float)
    labels = np.asarray(labels)
    circle = np.linspace(0, 2 * math.pi, 361)
    ax.plot(np.cos(circle), np.sin(circle), color="0.75", linewidth=0.5, zorder=0)
    _scatter_by_class(ax, unit_points, labels, marker_size, alpha=alpha, rasterized=True)
    drawn = None
    reach = 1.25
    if ring_histogram:
        drawn = sphere_views.draw_ring_histogram(
            ax, unit_points, labels, bins=bins, unit_length=ring_unit_length
        )
        reach = drawn.base_radius + drawn.unit_length * drawn.counts.sum(axis=0).max() + 0.05
    if class_weights is not None:
        weights = geometry.unit_rows(np.asarray(class_weights, dtype=float))
        _draw_weight_ticks(ax, weights, WEIGHT_TICK_SPAN_CIRCLE)
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-reach, reach)
    ax.set_aspect("equal")
    return drawn


def draw_raw_features_2d(
    ax: Axes,
    features,
    labels,
    class_weights=None,
    marker_size: float = 3.0,
    alpha: float = sphere_views.POINT_ALPHA,
) -> Axes:
    """Raw 2-D features, coloured by class, with each W_j as a tick beyond the farthest one.

    The ticks run from 1.05 R to 1.2 R along W_j/‖W_j‖ (R = max ‖x‖), so they cover no
    feature, however the classes lie; points are translucent and rasterised. Returns ``ax``.
    """
    features, labels = as_features_and_labels(features, labels)
    if features.shape[1] != 2:
        raise ValueError(f"draw_raw_features_2d needs 2-D features, got {features.shape[1]}-D")
    _scatter_by_class(ax, features, labels, marker_size, alpha=alpha, rasterized=True)
    reach = float(np.max(np.linalg.norm(features, axis=1)))
    if class_weights is not None:
        weights = geometry.unit_rows(np.asarray(class_weights, dtype=float))
        _draw_weight_ticks(ax, weights, WEIGHT_TICK_SPAN_RAW, scale=reach)
    limit = 1.25 * reach
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    return ax


BACK_MODES = ("hide", "show")


def draw_unit_sphere_features(
    ax,
    unit_points,
    labels,
    unit_weights=None,
    marker_size: float = 3.0,
    *,
    view=None,
    back: str = "hide",
    alpha: float = sphere_views.POINT_ALPHA,
) -> np.ndarray:
    """Unit 3-D features on a sphere seen orthographically from ``view``; returns the view.

    ``view`` is a 3-vector to look from, or None: ``sphere_views.view_direction(unit_points)``,
    the direction that sees the most points. ``back="hide"`` (default) draws only the front
    hemisphere (p·v ≥ 0: points, weights and a wireframe whose rim is the outline), so no point
    behind shows through the ones in front; the equal-area map (``plot_features_sphere``)
    shows the rest. ``back="show"`` draws everything over a whole wireframe. Class weights
    are hollow rings on the surface at W_j/‖W_j‖: a ring covers none of its cluster.
    The view is orthographic, so the sphere's outline is a circle of one size from every
    viewpoint, and it fills the axes' square box (``fit_unit_sphere``).
    """
    if back not in BACK_MODES:
        raise ValueError(f"back must be one of {BACK_MODES}, got {back!r}")
    unit_points = np.asarray(unit_points, dtype=float)
    labels = np.asarray(labels)
    direction = (
        sphere_views.view_direction(unit_points) if view is None else np.asarray(view, float)
    )
    direction = sphere_views.map_frame(direction)[0]
    draw_unit_sphere_wireframe(ax, None if back == "show" else direction)
    front = np.ones(len(unit_points), bool) if back == "show" else unit_points @ direction >= 0
    # depthshade off: the hidden back hemisphere needs no fading, and the front keeps its colour
    _scatter_by_class(ax, unit_points[front], labels[front], marker_size, alpha=alpha,
                      rasterized=True, classes=np.unique(labels),
                      depthshade=back == "show")  # fmt: skip
    if unit_weights is not None:
        weights = geometry.unit_rows(np.asarray(unit_weights, dtype=float))
        colors = np.array(class_colors(len(weights)))
        shown = np.ones(len(weights), bool) if back == "show" else weights @ direction >= 0
        if shown.any():
            sphere_views.draw_weight_rings(
                ax, weights[shown].T, list(colors[shown]), depthshade=False
            )
    ax.view_init(*sphere_views.view_angles(direction))
    ax.set_axis_off()
    fit_unit_sphere(ax, SPHERE_FILL)
    return direction


def as_run(run):
    """``run`` itself when it is a ``sphereviz.runs.Run``; the run folder it names when it is a
    path (``sphereviz.runs.as_run``, imported on use: the plots load no torch until a run is
    opened)."""
    from sphereviz.runs import as_run as open_run

    return open_run(run)


def run_panel(run, title: str | None = None) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """``(title, features, labels, class_weights)`` of a trained run, for the panel plots.

    ``run`` is a ``sphereviz.runs.Run`` (from ``train`` or ``load_run``) or the path of a run
    folder; the default title names its loss and m, e.g. ``"a-softmax, m = 4"``. Use it as
    ``plot_features_sphere([run_panel(r) for r in runs])``; ``plot_angle_histograms`` takes
    the first three entries.
    """
    run = as_run(run)
    embeddings = run.embeddings
    if not embeddings:
        where = f" ({run.path})" if run.path is not None else ""
        raise ValueError(
            f"run{where} has no embeddings.npz yet; train it for at least one epoch first"
        )
    if title is None:
        config = run.config
        title = config.loss if config.m is None else f"{config.loss}, m = {config.m:g}"
    return (
        title,
        np.asarray(embeddings["features"]),
        np.asarray(embeddings["labels"]),
        np.asarray(embeddings["class_weights"]),
    )


def class_names_present(class_names: Sequence[str], labels) -> list[str]:
    """The names of the classes present in ``labels``, in sorted label order.

    ``class_names`` is indexed by label, as a data set's ``class_names`` (class k is
    ``class_names[k]``); the result has one name per distinct label, which is what
    ``interactive3d.sphere_figure(class_names=...)`` takes.
    """
    classes = np.unique(np.asarray(labels))
    if classes.size and (
        not np.issubdtype(classes.dtype, np.integer)
        or classes[0] < 0
        or classes[-1] >= len(class_names)
    ):
        raise ValueError(
            f"labels must be integers in 0 … {len(class_names) - 1} to index the "
            f"{len(class_names)} class_names, got the classes {classes.tolist()}"
        )
    return [str(class_names[cls]) for cls in classes]


def run_class_names(run) -> list[str] | None:
    """A run's legend names by label, or None: :func:`sphereviz.runs.run_class_names`."""
    from sphereviz.runs import run_class_names as names_of

    return names_of(run)


def plot_features_2d(
    features,
    labels,
    class_weights=None,
    title: str | None = None,
    marker_size: float = 3.0,
) -> Figure:
    """Learned 2-D features in raw space (left) and projected onto the unit circle (right).

    The paper's Fig. 2: the right panel shows x / ‖x‖, where only the angle matters, with the
    per-class ring histogram of the angle around it (``draw_unit_circle_features``). Class
    weight vectors W_j, when given, are short ticks that cover no feature (beyond the
    farthest feature on the left, inside the circle on the right).
    """
    features, labels = as_features_and_labels(features, labels)
    if features.shape[1] != 2:
        raise ValueError(
            f"plot_features_2d needs 2-D features, got {features.shape[1]}-D; "
            "use plot_features_sphere for 3-D or higher"
        )
    weights = None
    if class_weights is not None:
        weights = np.asarray(class_weights, dtype=float)
        if weights.ndim != 2 or weights.shape[1] != 2:
            raise ValueError(f"class_weights must be (n_classes, 2), got shape {weights.shape}")
    fig, (raw_ax, unit_ax) = plt.subplots(1, 2)
    draw_raw_features_2d(raw_ax, features, labels, weights, marker_size)
    raw_ax.set_title("raw features")
    draw_unit_circle_features(unit_ax, geometry.unit_rows(features), labels, weights, marker_size)
    unit_ax.set_title("normalised: x / ‖x‖")
    if title:
        fig.suptitle(title)
    return fig


def class_legend(fig: Figure, labels, names: Sequence[str] | None = None) -> None:
    """A figure legend along the bottom, one dot per class present in ``labels``, in the
    colours of ``_scatter_by_class``; ``names`` (indexed by label) name them, else the label."""
    classes = np.unique(np.asarray(labels))
    colors = class_colors(len(classes))
    handles = [
        plt.Line2D([], [], marker="o", linestyle="", color=color, markersize=3) for color in colors
    ]
    texts = [str(names[c]) if names is not None else str(c) for c in classes]
    fig.legend(handles, texts, loc="lower center", ncol=min(len(classes), 10), fontsize="small",
               handletextpad=0.1, columnspacing=0.8)  # fmt: skip


def plot_features_2d_panels(
    runs: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]],
    marker_size: float = 1.5,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """SphereFace's Fig. 2 for several runs: 2-D features raw (top row) and as x/‖x‖ on the
    circle (bottom row), one column per ``(title, features, labels, class_weights)`` run.

    The panels are ``draw_raw_features_2d`` and ``draw_unit_circle_features``; the ring
    histograms around the circles share one count scale (``sphere_views.ring_unit_length``),
    so columns compare. The rows are named on the left, the classes in a legend below (of the
    first run's labels, named by ``class_names`` when given); a double column wide.
    """
    if len(runs) == 0:
        raise ValueError("runs is empty; pass (title, features, labels, class_weights) tuples")
    checked = []
    for title, features, labels, weights in runs:
        features, labels = as_features_and_labels(features, labels)
        if features.shape[1] != 2:
            raise ValueError(f"{title}: features are {features.shape[1]}-D, expected 2-D")
        checked.append((title, features, labels, weights))
    units = [geometry.unit_rows(features) for _, features, _, _ in checked]
    scale = sphere_views.ring_unit_length(units)
    fig, axes = plt.subplots(
        2, len(checked), figsize=(COLUMN_WIDTHS_INCH["double"], 3.3), squeeze=False
    )
    for column, ((title, features, labels, weights), unit) in enumerate(
        zip(checked, units, strict=True)
    ):
        raw_ax, unit_ax = axes[0][column], axes[1][column]
        draw_raw_features_2d(raw_ax, features, labels, weights, marker_size=marker_size)
        raw_ax.tick_params(labelsize=5, length=2)
        raw_ax.set_title(title)
        draw_unit_circle_features(
            unit_ax, unit, labels, weights, marker_size=marker_size, ring_unit_length=scale
        )
        for collection in unit_ax.collections:
            collection.set_rasterized(True)
        unit_ax.set_axis_off()
    axes[0][0].set_ylabel("raw features")
    axes[1][0].set_axis_on()  # an invisible frame, so that the row can be named
    axes[1][0].set_xticks([])
    axes[1][0].set_yticks([])
    for spine in axes[1][0].spines.values():
        spine.set_visible(False)
    axes[1][0].set_ylabel("x / ‖x‖")
    class_legend(fig, checked[0][2], class_names)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


VIEW_MODES = ("shared", "each")


def plot_features_sphere(
    runs: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]],
    marker_size: float = 3.0,
    columns: int | None = None,
    *,
    view="shared",
    back: str = "hide",
    equal_area_map: str | None = "hammer",
    own_angle_strip: bool = True,
    alpha: float = sphere_views.POINT_ALPHA,
    rasterized: bool = False,
) -> Figure:
    """Learned features on the unit sphere, one column per run (the paper's Fig. 5).

    ``runs`` is a sequence of ``(title, features, labels, class_weights_or_None)``, e.g. one
    per m = 1…4. 3-D features are normalised; higher-dimensional features are projected by
    ``geometry.project_to_sphere`` (PCA to 3-D without centring, then normalised), and the panel
    title says so. Each column stacks, under its title:

    - an orthographic 3-D view (``draw_unit_sphere_features``), a square as wide as the
      column, with the sphere filling it. ``view="shared"`` (default): every panel looks from
      ``sphere_views.view_direction`` of all panels' points together, so the panels compare
      at one view and one scale; ``"each"``: each panel from its own points; a 3-vector: from
      there. ``back="hide"`` draws only the front hemisphere;
    - with ``equal_area_map`` (``"hammer"`` or ``"mollweide"``; None for none) the whole
      sphere on an equal-area map centred on the view direction (``draw_equal_area_map``),
      the dashed meridians bounding the hemisphere of the 3-D view, so no point hides;
    - with ``own_angle_strip`` (panels with class weights), a histogram of θ_y, the angle of
      each feature to its own class weight (in the features' own space), on an angle axis and
      a count axis shared by all panels: the classes tighten as the mass moves left.

    Points are small, translucent (``alpha``) and rasterised, so clusters show their density;
    ``rasterized=True`` rasterises every panel whole (thousands of points in 3-D: a 300 dpi
    image inside the PDF/SVG keeps the file small).
    """
    panels = _sphere_panels(runs, view, equal_area_map)
    directions = _view_directions(panels, view)
    strips = own_angle_strip and any(p[5] is not None for p in panels)
    columns = columns or len(panels)
    width, panel, band, map_height, strip_height, block, height = _sphere_layout(
        panels, columns, bool(equal_area_map), strips
    )
    fig = plt.figure(figsize=(width, height))
    with_weights = [(p[4], p[2], p[5]) for p in panels if p[5] is not None]
    max_degrees = sphere_views.own_angle_range(with_weights) if strips else 90.0
    strip_axes = []
    for index, (title, points, labels, unit_weights, features, weights) in enumerate(panels):
        row, column = divmod(index, columns)
        left = column * panel / width

        def rect(bottom_inch, height_inch, inset_inch=0.0, left=left):
            return (left + inset_inch / width, bottom_inch / height,
                    (panel - 2 * inset_inch) / width, height_inch / height)  # fmt: skip

        below = height - row * block - band - panel  # inches from the bottom
        ax = fig.add_axes(rect(below, panel), projection="3d")
        draw_unit_sphere_features(ax, points, labels, unit_weights, marker_size,
                                  view=directions[index], back=back, alpha=alpha)  # fmt: skip
        ax.set_title(title, fontsize=_SPHERE_TITLE_SIZE, pad=_SPHERE_TITLE_PAD)
        if equal_area_map:
            below -= map_height
            map_ax = fig.add_axes(rect(below, panel / 2, _SPHERE_GAP_INCH / 2),
                                  projection=equal_area_map)  # fmt: skip
            sphere_views.draw_equal_area_map(
                map_ax, points, labels, unit_weights, directions[index], 0.6 * marker_size, alpha
            )
        if strips and weights is not None:
            below -= strip_height
            strip_ax = fig.add_axes(rect(below + _STRIP_LABELS_INCH, _STRIP_HEIGHT_INCH,
                                         _STRIP_INSET_INCH))  # fmt: skip
            _draw_own_angle_strip(strip_ax, features, labels, weights, max_degrees)
            strip_axes.append(strip_ax)
    for strip_ax in strip_axes[1:]:
        strip_ax.sharey(strip_axes[0])
    if strip_axes:
        strip_axes[0].autoscale_view(scalex=False)
    if rasterized:
        for ax in fig.axes:
            ax.set_rasterized(True)
    return fig


def _sphere_panels(runs, view, equal_area_map) -> list[tuple]:
    """The options of ``plot_features_sphere`` checked; per run (title, points on the sphere,
    labels, unit weights or None, features, weights or None), the title naming a projection."""
    if len(runs) == 0:
        raise ValueError("runs is empty; pass (title, features, labels, class_weights) tuples")
    if equal_area_map is not None and equal_area_map not in sphere_views.EQUAL_AREA_PROJECTIONS:
        raise ValueError(
            f"equal_area_map must be one of {sphere_views.EQUAL_AREA_PROJECTIONS} or None, "
            f"got {equal_area_map!r}"
        )
    if isinstance(view, str) and view not in VIEW_MODES:
        raise ValueError(f"view must be one of {VIEW_MODES} or a 3-vector, got {view!r}")
    panels = []
    for title, features, labels, weights in runs:
        features, labels = as_features_and_labels(features, labels)
        points, unit_weights, description = geometry.project_to_sphere(features, weights)
        full_title = title if features.shape[1] == 3 else f"{title}\n{description}"
        panels.append((full_title, points, labels, unit_weights, features, weights))
    return panels


def _sphere_layout(panels, columns: int, has_map: bool, strips: bool) -> tuple[float, ...]:
    """Inches of the sphere figure: its width, a panel's width, the title band, the map and
    strip heights under a sphere, one row's height (block) and the figure's height."""
    rows = math.ceil(len(panels) / columns)
    width = min(COLUMN_WIDTHS_INCH["double"], 2.2 * columns)
    panel = width / columns
    title_lines = max(title.count("\n") + 1 for title, *_ in panels)
    band = _title_band_inch(title_lines, _SPHERE_TITLE_SIZE, _SPHERE_TITLE_PAD)
    map_height = panel / 2 + _SPHERE_GAP_INCH if has_map else 0.0
    strip_height = _STRIP_HEIGHT_INCH + _STRIP_LABELS_INCH if strips else 0.0
    block = band + panel + map_height + strip_height
    return width, panel, band, map_height, strip_height, block, rows * block + _SPHERE_BOTTOM_INCH


def _view_directions(panels, view) -> list[np.ndarray]:
    """Each panel's view direction: shared by all panels, each its own, or the given one."""
    if not isinstance(view, str):
        return [sphere_views.map_frame(view)[0]] * len(panels)
    pooled = np.concatenate([points for _, points, *_ in panels])
    shared = sphere_views.view_direction(pooled) if view == "shared" else None
    return [
        shared if shared is not None else sphere_views.view_direction(points)
        for _, points, *_ in panels
    ]


def _draw_own_angle_strip(strip_ax, features, labels, weights, max_degrees: float) -> None:
    """The histogram of θ_y under a sphere panel, on the angle axis all panels share."""
    sphere_views.draw_own_angle_histogram(strip_ax, features, labels, weights,
                                          max_degrees=max_degrees)  # fmt: skip
    step = 15 if max_degrees <= 45 else 30 if max_degrees <= 120 else 90
    strip_ax.set_xticks(np.arange(0, max_degrees + 1e-9, step))
    strip_ax.xaxis.set_major_formatter("{x:g}°")
    strip_ax.set_yticks([])
    strip_ax.spines["left"].set_visible(False)
    strip_ax.set_xlabel("angle to own W", labelpad=1, fontsize="small")
    keep_tick_label_sizes(strip_ax)


_SPHERE_TITLE_SIZE = "small"
#: Points between a title and its sphere's box: the box's top rim is already blank.
_SPHERE_TITLE_PAD = 2.0
#: Blank strip under the bottom row (inches): a one-row class legend there, as
#: ``figures.sphere_panels_figure`` draws, then covers no panel.
_SPHERE_BOTTOM_INCH = 0.3
#: Gap between the 3-D view and the map under it, and the map's side margins (inches).
_SPHERE_GAP_INCH = 0.06
#: Height of the own-angle histogram strip, of its tick labels and axis label under it, and
#: its side margins, which keep the end tick labels inside the column (inches).
_STRIP_HEIGHT_INCH = 0.32
_STRIP_LABELS_INCH = 0.32
_STRIP_INSET_INCH = 0.18


def _title_band_inch(lines: int, fontsize: str | float, pad: float) -> float:
    """Height (inches) of an axes title of ``lines`` lines: their text, the pad and a margin.

    band = (lines · 1.2 · size + pad + 3 pt) / 72, with the font size and the pad in points.
    """
    from matplotlib.font_manager import FontProperties

    size = FontProperties(size=fontsize).get_size_in_points()
    return (lines * 1.2 * size + pad + 3.0) / 72
