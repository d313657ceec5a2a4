"""Matplotlib figures of SphereFace: ψ curves, decision regions, the bound map, learned features,
pair-angle histograms and open-set verification (score histograms and ROC).

Every ``plot_*`` function returns a ``matplotlib.figure.Figure`` and never calls ``show``;
save it with ``style.save_figure``. ``draw_*`` functions draw into an existing axes (and
clear it first), so a widget can redraw the same figure without building a new one.

Angles on axes are in degrees; every function argument that is an angle is in radians.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Wedge
from matplotlib.ticker import MaxNLocator

from sphereviz import geometry, margins, plots_sphere
from sphereviz.style import COLUMN_WIDTHS_INCH, OKABE_ITO, class_colors

if TYPE_CHECKING:
    from sphereviz import evaluate  # imported when needed: it loads torch

__all__ = [
    "TETRAHEDRON_WEIGHTS",
    "binary_criterion_map",
    "class_names_present",
    "describe_regions",
    "draw_angle_histograms",
    "draw_psi",
    "draw_regions",
    "draw_roc_curves",
    "draw_sphere_regions",
    "draw_target_curve",
    "draw_unit_circle_features",
    "draw_raw_features_2d",
    "draw_unit_sphere_features",
    "draw_verification_scores",
    "drawn_threshold",
    "format_rate",
    "plot_angle_histograms",
    "plot_bound_map",
    "plot_features_2d",
    "plot_features_sphere",
    "plot_psi",
    "plot_regions",
    "plot_sphereface_line_regions",
    "plot_training_curves",
    "plot_verification",
    "project_to_sphere",
    "regions_for",
    "run_class_names",
    "run_panel",
    "sphere_region_labels",
    "target_curve",
    "uncovered_arcs",
    "uniform_criterion_map",
    "weight_name",
]

_LOSS_TITLES = {
    "softmax": "softmax",
    "modified-softmax": "modified softmax",
    "normface": "NormFace",
    "a-softmax": "A-Softmax",
    "l-softmax": "L-Softmax",
    "cosface": "CosFace",
    "arcface": "ArcFace",
    "sphereface-r": "SphereFace-R",
    "sphereface2": "SphereFace2",
}


# ---------------------------------------------------------------------------------------------
# ψ(θ) and the target logits of the margin losses
# ---------------------------------------------------------------------------------------------


def _start_drawing(ax: Axes, kind: str) -> bool:
    """Empty ``ax`` for a ``draw_*`` function; True when the axes must be set up afresh.

    When ``kind`` drew into this axes last time, only the drawn artists are removed: a full
    ``ax.clear()`` rebuilds every tick and spine and costs as much as the drawing itself,
    which matters to a widget that redraws on every slider step.
    """
    if getattr(ax, "_sphereviz_drawing", None) == kind:
        for container in list(ax.containers):  # histogram bars: remove them and their container
            container.remove()
        for artist in (*ax.lines, *ax.patches, *ax.texts, *ax.collections, *ax.images):
            artist.remove()
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        return False
    ax.clear()
    ax._sphereviz_drawing = kind
    return True


def draw_psi(
    ax: Axes,
    ms: Sequence[int] = (1, 2, 3, 4),
    cosface_margin: float | None = 0.35,
    arcface_margin: float | None = 0.5,
    show_cos_m_theta: bool = True,
    num_points: int = 721,
) -> None:
    """Draw ψ(θ) (SphereFace eq. 7) for each m, against cos(mθ), CosFace and ArcFace targets.

    ψ(θ) = (−1)^k cos(mθ) − 2k on [kπ/m, (k+1)π/m] (solid), cos(mθ) (dashed, only where it
    differs from ψ, i.e. m ≥ 2), CosFace cos θ − m (dash-dot) and ArcFace cos(θ + m) (dotted).
    Each line's label names it, e.g. ``"ψ, m=4"``, so tests and legends can find it.
    """
    ms = [margins.check_integer_margin(m) for m in ms]
    ax.clear()
    theta = np.linspace(0.0, math.pi, num_points)
    degrees = np.degrees(theta)
    colors = class_colors(max(len(ms), 1))
    for color, m in zip(colors, ms, strict=True):
        ax.plot(degrees, margins.psi(theta, m), color=color, label=f"ψ, m={m}")
        if show_cos_m_theta and m >= 2:
            ax.plot(
                degrees,
                np.cos(m * theta),
                color=color,
                linestyle="--",
                linewidth=0.8,
                alpha=0.7,
                label=f"cos({m}θ)",
            )
    if cosface_margin is not None:
        ax.plot(
            degrees,
            np.cos(theta) - cosface_margin,
            color="0.35",
            linestyle="-.",
            label=f"CosFace cos θ − {cosface_margin:g}",
        )
    if arcface_margin is not None:
        ax.plot(
            degrees,
            np.cos(theta + arcface_margin),
            color="0.1",
            linestyle=":",
            label=f"ArcFace cos(θ + {arcface_margin:g})",
        )
    ax.set_xlim(0, 180)
    ax.set_xticks(np.arange(0, 181, 45))
    ax.set_xlabel("θ (degrees)")
    ax.set_ylabel("target logit / ‖x‖")
    ax.axhline(0.0, color="0.8", linewidth=0.5, zorder=0)
    ax.legend(loc="lower left", fontsize="small", ncol=2)


def target_curve(theta, loss: str, m=None, annealing_lambda: float = 0.0) -> np.ndarray:
    """The target logit / ‖x‖ (per unit scale s) of ``loss`` as a function of θ_y: the one
    definition the regions use, ``geometry.margin_target``.

    softmax / modified softmax / NormFace: cos θ (unit weights, no bias); A-Softmax and
    L-Softmax: (λ cos θ + ψ(θ))/(1 + λ) (integer m; ψ alone at λ = 0); CosFace: cos θ − m;
    ArcFace: cos(θ + m), with the loss's fallback past π − m; SphereFace-R: ψ_m(θ) with a
    real m (its forward value; the gradient is that of cos θ); SphereFace2: g(cos θ) − m,
    g(c) = 2((c + 1)/2)^3 − 1 (the true-class logit / r, without the bias). ``m`` defaults as
    in ``geometry`` (4, 0.35, 0.5 rad, 1.5, 0.4).
    """
    return geometry.margin_target(theta, loss, m, annealing_lambda)


def draw_target_curve(
    ax: Axes,
    loss: str,
    m=None,
    num_points: int = 361,
    legend: bool = True,
    annealing_lambda: float = 0.0,
) -> None:
    """Draw the target curve of one loss (see ``target_curve``) against cos θ into ``ax``.

    Lines are labelled ``"cos θ"`` (grey), ``"target"`` (solid) and, for A-Softmax with
    m ≥ 2, ``"cos(mθ)"`` (dashed). Used by the margin explorer, which redraws it on every
    change and passes ``legend=False`` (a legend costs a fifth of a redraw; the title then
    names the lines).
    """
    loss = geometry.canonical_loss_name(loss)
    if _start_drawing(ax, "target_curve"):
        ax.set_xlim(0, 180)
        ax.set_xticks(np.arange(0, 181, 45))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.set_xlabel("θ (degrees)")
    theta = np.linspace(0.0, math.pi, num_points)
    degrees = np.degrees(theta)
    ax.plot(degrees, np.cos(theta), color="0.6", linewidth=1.0, label="cos θ")
    default_m = 1.5 if loss == "sphereface-r" else 4
    if loss in ("a-softmax", "l-softmax", "sphereface-r") and (default_m if m is None else m) > 1:
        m_value = default_m if m is None else m
        ax.plot(
            degrees, np.cos(m_value * theta), color=OKABE_ITO[0], linestyle="--", linewidth=0.8,
            alpha=0.6, label="cos(mθ)",
        )  # fmt: skip
    annealed = annealing_lambda > 0 and loss in ("a-softmax", "l-softmax")
    if annealed:
        ax.plot(degrees, target_curve(theta, loss, m), color=OKABE_ITO[0], linestyle=":",
                linewidth=1.0, label="ψ (λ = 0)")  # fmt: skip
    ax.plot(degrees, target_curve(theta, loss, m, annealing_lambda), color=OKABE_ITO[0],
            linewidth=1.8, label="target")  # fmt: skip
    ax.axhline(0.0, color="0.85", linewidth=0.5, zorder=0)
    ax.relim()
    ax.autoscale_view(scalex=False)
    name = _LOSS_TITLES[loss]
    title = f"{name} target" if m is None else f"{name} target, m = {m:g}"
    if annealed:
        title += f", λ = {annealing_lambda:g}"
    if legend:
        ax.legend(loc="lower left", fontsize="small")
    else:
        if annealed:
            title += "\n(grey: cos θ, dashed: cos(mθ), dotted: ψ at λ = 0)"
        else:
            title += (
                "\n(grey: cos θ, dashed: cos(mθ))" if len(ax.get_lines()) > 3 else "\n(grey: cos θ)"
            )
    ax.set_title(title)


def plot_psi(
    ms: Sequence[int] = (1, 2, 3, 4),
    cosface_margin: float | None = 0.35,
    arcface_margin: float | None = 0.5,
    show_cos_m_theta: bool = True,
) -> Figure:
    """ψ(θ) for m = 1…4 against cos(mθ), with CosFace and ArcFace targets (see ``draw_psi``)."""
    fig, ax = plt.subplots()
    draw_psi(ax, ms, cosface_margin, arcface_margin, show_cos_m_theta)
    ax.set_title("A-Softmax ψ(θ) and other margin targets")
    return fig


# ---------------------------------------------------------------------------------------------
# Decision regions on the circle
# ---------------------------------------------------------------------------------------------


_SUBSCRIPT_DIGITS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def weight_name(index: int) -> str:
    """The name of weight row ``index``: W₁, W₂, … (Unicode subscripts: no mathtext to parse)."""
    return "W" + str(index + 1).translate(_SUBSCRIPT_DIGITS)


def regions_for(
    loss: str = "a-softmax",
    m: float | None = None,
    num_classes: int = 2,
    theta12: float | None = None,
    **circle_regions_options,
) -> geometry.CircleRegions:
    """``geometry.circle_regions`` for the classroom layouts of the weight vectors.

    Two classes: W₁, W₂ symmetric about the vertical axis, θ₁₂ apart (default π/2).
    K ≥ 3 classes: uniformly spaced, 2π/K apart, the first at the top (θ₁₂ must be None).
    A-Softmax with a fractional m uses the paper's boundary rule mθ_i < θ_j
    (``rule="boundary"``); with an integer m the real ψ. Other options go to circle_regions.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if num_classes == 2:
        theta12 = math.pi / 2 if theta12 is None else theta12
        if not 0 < theta12 <= math.pi:
            raise ValueError(
                f"theta12 must be in (0, π] radians, got {theta12!r}; "
                "for degrees pass math.radians(...)"
            )
        angles = np.array([math.pi / 2 + theta12 / 2, math.pi / 2 - theta12 / 2])
    else:
        if theta12 is not None:
            raise ValueError(
                "theta12 is the angle between two classes; with num_classes >= 3 the weights "
                "are uniformly spaced 2π/K apart, so leave theta12=None"
            )
        angles = geometry.uniform_weight_angles(num_classes, offset=math.pi / 2)
    loss = geometry.canonical_loss_name(loss)
    if loss in ("a-softmax", "l-softmax") and m is not None and float(m) != round(float(m)):
        circle_regions_options.setdefault("rule", "boundary")
    return geometry.circle_regions(angles, loss, m, **circle_regions_options)


def describe_regions(regions: geometry.CircleRegions, compact: bool = False) -> str:
    """The criterion's numbers in degrees: one line, or three short ones when ``compact``.

    When some class has no region at all (the margin is too large for the layout) it says so
    instead of printing NaN.
    """
    if regions.grid_claim_counts is not None:  # SphereFace2: the one-vs-all rule
        counts = regions.grid_claim_counts
        unclaimed, several = 360.0 * np.mean(counts == 0), 360.0 * np.mean(counts >= 2)
        separator = "\n" if compact else ", "
        return (
            f"unclaimed {unclaimed:.1f}°{separator}claimed by several {several:.1f}°"
            f"{separator}claimed by one {360.0 - unclaimed - several:.1f}°"
        )
    if any(not arcs for arcs in regions.arcs):
        separator = "\n" if compact else " "
        return f"a class has no region:{separator}the margin is too large for this layout"
    summary = regions.summary_degrees()
    margin = f"{summary['angular_margin_deg']:.1f}°"
    intra = f"{summary['max_intra_class_angle_deg']:.1f}°"
    inter = f"{summary['min_inter_class_angle_deg']:.1f}°"
    verdict = "holds ✓" if summary["criterion_holds"] else "fails ✗"
    if compact:
        return f"margin {margin}\nintra {intra}, inter {inter}\ncriterion {verdict}"
    return f"angular margin {margin}, max intra {intra} vs min inter {inter}: criterion {verdict}"


def uncovered_arcs(regions: geometry.CircleRegions) -> list[tuple[float, float]]:
    """The stretches of circle where no class wins by the margin, as (start, end) radians.

    The complement of the union of ``regions.arcs`` (ends may exceed 2π where they wrap) and,
    for SphereFace2, of the arcs several classes claim (``regions.contested_arcs``).
    """
    claimed = [*(arc for class_arcs in regions.arcs for arc in class_arcs), *regions.contested_arcs]
    arcs = sorted((start % (2 * math.pi), end - start) for start, end in claimed)
    if not arcs:
        return [(0.0, 2 * math.pi)]
    uncovered = []
    for index, (start, length) in enumerate(arcs):
        next_start = arcs[(index + 1) % len(arcs)][0]
        if index + 1 == len(arcs):
            next_start += 2 * math.pi
        stretch = next_start - (start + length)
        if stretch > 1e-9:
            uncovered.append((start + length, next_start))
    return uncovered


def draw_regions(
    ax: Axes,
    regions: geometry.CircleRegions,
    annotate: bool = True,
    arc_points: int = 90,
) -> None:
    """Draw the decision regions of ``regions`` on the unit circle into ``ax`` (emptied first).

    Class i's region (i = 1…K, as W_i) is a coloured thick arc (label ``"class i region"``,
    one line per arc, x = cos φ, y = sin φ) over a light wedge; the stretches where no class
    wins by the margin are shaded grey (label ``"no class"``); for SphereFace2 the stretches
    that several classes claim are dark, dotted and cross-hatched (label ``"claimed by
    several"``), and the softmax rule's boundaries (argmax cos θ: the bisectors between
    neighbouring weights) are dashed rays (label ``"softmax rule"``); the weight directions W_i are
    arrows (one quiver, label ``"weights"``); the angular margin and the criterion are
    written below the circle.
    """
    first_time = _start_drawing(ax, "regions")
    colors = class_colors(len(regions.weight_angles))
    full = np.linspace(0, 2 * math.pi, 241)
    ax.plot(np.cos(full), np.sin(full), color="0.8", linewidth=0.6, zorder=1)
    for stretch_start, stretch_end in uncovered_arcs(regions):
        ax.add_patch(
            Wedge(
                (0, 0),
                1.0,
                math.degrees(stretch_start),
                math.degrees(stretch_end),
                facecolor="0.94",
                edgecolor="0.75",
                linewidth=0,
                hatch="//",
                label="no class",
                zorder=0,
            )
        )
    for start, end in regions.contested_arcs:  # SphereFace2: claimed by several classes
        ax.add_patch(
            Wedge((0, 0), 1.0, math.degrees(start), math.degrees(end), facecolor="0.55",
                  alpha=0.35, edgecolor="0.3", linewidth=0, hatch="xx",
                  label="several classes", zorder=0)
        )  # fmt: skip
        phi = np.linspace(start, end, arc_points)
        ax.plot(np.cos(phi), np.sin(phi), color="0.25", linewidth=4, linestyle=(0, (1, 1)),
                solid_capstyle="butt", label="claimed by several", zorder=3)  # fmt: skip
    for index, (color, class_arcs) in enumerate(zip(colors, regions.arcs, strict=True)):
        for start, end in class_arcs:
            ax.add_patch(
                Wedge(
                    (0, 0),
                    1.0,
                    math.degrees(start),
                    math.degrees(end),
                    facecolor=color,
                    alpha=0.18,
                    edgecolor="none",
                    zorder=0,
                )
            )
            phi = np.linspace(start, end, arc_points)
            ax.plot(
                np.cos(phi),
                np.sin(phi),
                color=color,
                linewidth=4,
                solid_capstyle="butt",
                label=f"class {index + 1} region",
                zorder=3,
            )
    if regions.loss == "sphereface2":
        for boundary in _argmax_boundaries(regions.weight_angles):
            ax.plot([0, 1.1 * math.cos(boundary)], [0, 1.1 * math.sin(boundary)], color="0.35",
                    linewidth=0.8, linestyle="--", label="softmax rule", zorder=2)  # fmt: skip
    directions = np.stack([np.cos(regions.weight_angles), np.sin(regions.weight_angles)], 1)
    # one quiver for all weight arrows: far cheaper to draw than one annotation per arrow
    ax.quiver(
        np.zeros(len(directions)), np.zeros(len(directions)), *(1.25 * directions).T,
        color=colors, angles="xy", scale_units="xy", scale=1.0, width=0.012,
        headwidth=4.0, headlength=5.0, zorder=4, label="weights",
    )  # fmt: skip
    for index, direction in enumerate(directions):
        ax.text(*(1.38 * direction), weight_name(index), ha="center", va="center")
    if first_time:
        ax.set_xlim(-1.5, 1.5)
        ax.set_ylim(-1.5, 1.5)
        ax.set_aspect("equal")
        ax.set_axis_off()
    name = _LOSS_TITLES[regions.loss]
    margin = "" if regions.m is None else f", m = {regions.m:g}"
    ax.set_title(f"{name}{margin}")
    if annotate:
        ax.text(
            0.5,
            -0.02,
            describe_regions(regions, compact=True),
            transform=ax.transAxes,
            ha="center",
            va="top",
            fontsize="x-small",
        )


def _argmax_boundaries(weight_angles) -> list[float]:
    """Angles where argmax_j cos θ_j changes: the bisectors of angularly neighbouring weights."""
    ordered = np.sort(np.mod(np.asarray(weight_angles, dtype=float), 2 * math.pi))
    following = np.append(ordered[1:], ordered[0] + 2 * math.pi)
    return [float(angle) for angle in (ordered + following) / 2]


def plot_regions(
    regions: geometry.CircleRegions | Sequence[geometry.CircleRegions],
    annotate: bool = True,
) -> Figure:
    """Decision regions on the circle, one panel per ``CircleRegions`` (see ``draw_regions``).

    E.g. ``plot_regions([regions_for("softmax"), regions_for("modified-softmax"),
    regions_for("a-softmax", m=4)])`` is the binary comparison of SphereFace §3.
    """
    panels = [regions] if isinstance(regions, geometry.CircleRegions) else list(regions)
    if not panels:
        raise ValueError("regions is empty; pass one or more geometry.CircleRegions")
    width = min(7.16, 2.4 * len(panels))
    fig, axes = plt.subplots(
        1, len(panels), squeeze=False, figsize=(width, 1.25 * width / len(panels))
    )
    for ax, panel in zip(axes[0], panels, strict=True):
        draw_regions(ax, panel, annotate=annotate)
    return fig


# ---------------------------------------------------------------------------------------------
# The SphereFace line: A-Softmax, SphereFace-R and SphereFace2 side by side
# ---------------------------------------------------------------------------------------------

TETRAHEDRON_WEIGHTS = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / math.sqrt(3)
"""Four class weights on the sphere, 109.5° apart: the most even layout of four classes."""

_UNCLAIMED_COLOR = "0.88"
_CONTESTED_COLOR = "0.2"


def sphere_region_labels(
    points, weights, loss: str, m=None, claim_rule: geometry.ClaimRule | None = None
) -> np.ndarray:
    """Region label of each point on the sphere: its class, −1 for none, −2 (SphereFace2 only)
    where several classes claim it."""
    loss = geometry.canonical_loss_name(loss)
    options = {"claim_rule": claim_rule} if loss == "sphereface2" else {}
    labels = geometry.classify_points(points, weights, loss, m, **options)
    if loss == "sphereface2":
        counts = geometry.claim_counts(points, weights, m, claim_rule).sum(1)
        labels = np.where(counts >= 2, -2, labels)
    return labels


def draw_sphere_regions(
    ax,
    weights,
    loss: str,
    m=None,
    claim_rule: geometry.ClaimRule | None = None,
    num_points: int = 4000,
    marker_size: float = 2.0,
    view=None,
) -> np.ndarray:
    """Decision regions on the unit sphere in a 3-D ``ax``: ``num_points`` Fibonacci points
    coloured by class, light grey where no class wins (SphereFace2: no class claims), dark
    where several SphereFace2 classes claim; the weights as rings. Only the hemisphere facing
    ``view`` (default: the direction that sees the most weights) is drawn, as in
    ``draw_unit_sphere_features``. Returns the labels of all the points
    (``sphere_region_labels``)."""
    points = geometry.fibonacci_sphere(num_points)
    labels = sphere_region_labels(points, weights, loss, m, claim_rule)
    unit_weights = _unit_rows(np.asarray(weights, dtype=float))
    if view is None:
        view = plots_sphere.view_direction(unit_weights)
    direction = plots_sphere.map_frame(np.asarray(view, dtype=float))[0]
    _draw_unit_sphere_wireframe(ax, direction)
    front = points @ direction >= 0  # the far side would show through the front
    points, front_labels = points[front], labels[front]
    colors = class_colors(len(unit_weights))
    for label, color, name in [(-1, _UNCLAIMED_COLOR, "no class"),
                               (-2, _CONTESTED_COLOR, "claimed by several"),
                               *((i, colors[i], f"class {i + 1} region")
                                 for i in range(len(unit_weights)))]:  # fmt: skip
        chosen = points[front_labels == label]
        if len(chosen):
            ax.scatter(*chosen.T, s=marker_size, color=color, label=name, depthshade=False,
                       linewidths=0)  # fmt: skip
    shown = np.flatnonzero(unit_weights @ direction >= 0)
    if shown.size:
        plots_sphere.draw_weight_rings(
            ax, unit_weights[shown].T, [colors[i] for i in shown], depthshade=False
        )
    ax.view_init(*plots_sphere.view_angles(direction))
    ax.set_axis_off()
    _fit_unit_sphere(ax, _SPHERE_FILL)
    return labels


def plot_sphereface_line_regions(
    num_classes: int = 4,
    a_softmax_m: int = 4,
    sphereface_r_m: float = 1.5,
    sphereface2_m: float = 0.4,
    claim_rule: geometry.ClaimRule | None = None,
    sphereface2_cap_degrees: float | None = 62.0,
    sphere: bool = True,
    num_sphere_points: int = 4000,
) -> Figure:
    """The SphereFace line's decision regions, for the figure set.

    Top row, on the circle with ``num_classes`` uniformly spaced weights: A-Softmax (integer
    m, the real ψ), SphereFace-R (real m, exactly: the ψ_m rule, not the boundary rule), and
    SphereFace2's one-vs-all caps r·(g(cos θ_i) − m) + b > 0, its unclaimed and
    multiply-claimed stretches drawn as such, with the softmax rule's boundaries dashed.
    ``claim_rule`` gives r, b, t; without it, b is the one whose caps have the half-angle
    ``sphereface2_cap_degrees`` (62°: on the sphere some points are claimed by two classes and
    some by none; None: the loss's starting bias). Bottom row (``sphere``): the same three on
    the unit sphere with the four tetrahedron weights.
    """
    if claim_rule is None and sphereface2_cap_degrees is not None:
        bias = geometry.sphereface2_bias_for_cap(
            math.radians(sphereface2_cap_degrees), sphereface2_m
        )
        claim_rule = geometry.ClaimRule(bias=bias)
    layouts = [("a-softmax", a_softmax_m), ("sphereface-r", sphereface_r_m),
               ("sphereface2", sphereface2_m)]  # fmt: skip
    rows = 2 if sphere else 1
    width = COLUMN_WIDTHS_INCH["double"]
    fig = plt.figure(figsize=(width, width / 3 * 1.25 * rows))
    for column, (loss, m) in enumerate(layouts):
        ax = fig.add_subplot(rows, 3, column + 1)
        options = {"claim_rule": claim_rule} if loss == "sphereface2" else {}
        draw_regions(ax, regions_for(loss, m, num_classes, **options), annotate=True)
        if sphere:
            ax3d = fig.add_subplot(rows, 3, column + 4, projection="3d")
            draw_sphere_regions(
                ax3d, TETRAHEDRON_WEIGHTS, loss, m,
                claim_rule if loss == "sphereface2" else None, num_sphere_points,
            )  # fmt: skip
    return fig


# ---------------------------------------------------------------------------------------------
# The bound map: where does max intra ≤ min inter hold?
# ---------------------------------------------------------------------------------------------


def binary_criterion_map(theta12_degrees, ms) -> np.ndarray:
    """criterion_holds of ``geometry.binary_closed_form`` on the grid (m rows, θ₁₂ columns)."""
    return np.array(
        [
            [
                geometry.binary_closed_form(math.radians(t), "a-softmax", m).criterion_holds
                for t in theta12_degrees
            ]
            for m in ms
        ]
    )


def uniform_criterion_map(num_classes, ms) -> np.ndarray:
    """criterion_holds of ``geometry.uniform_closed_form`` on the grid (m rows, K columns)."""
    return np.array(
        [
            [
                geometry.uniform_closed_form(int(k), "a-softmax", m).criterion_holds
                for k in num_classes
            ]
            for m in ms
        ]
    )


def plot_bound_map(
    m_max: float = 8.0,
    m_step: float = 0.05,
    theta12_step_degrees: float = 1.0,
    max_classes: int = 12,
) -> Figure:
    """Where A-Softmax's criterion (max intra ≤ min inter) holds, with real m ≥ 1.

    Left: two classes, over (θ₁₂, m), from ``geometry.binary_closed_form``; the line
    m = 2 + √3 is SphereFace's Property 2 (the criterion holds for every θ₁₂ above it).
    Right: K uniformly spaced classes, over (K, m), from ``geometry.uniform_closed_form``;
    the line m = 3 is Property 3. Dark cells hold. Fractional m uses the paper's boundary
    rule mθ_i < θ_j, which equals the ψ rule at integer m.
    """
    if not m_max > 1 or not m_step > 0 or not theta12_step_degrees > 0 or max_classes < 2:
        raise ValueError(
            "need m_max > 1, m_step > 0, theta12_step_degrees > 0 and max_classes >= 2, got "
            f"{m_max}, {m_step}, {theta12_step_degrees}, {max_classes}"
        )
    ms = np.arange(1.0, m_max + m_step / 2, m_step)
    theta12 = np.arange(theta12_step_degrees, 180 + theta12_step_degrees / 2, theta12_step_degrees)
    classes = np.arange(2, max_classes + 1)
    fig, (binary_ax, uniform_ax) = plt.subplots(1, 2, figsize=(7.16, 2.8))
    colormap = ListedColormap(["#F2F2F2", "#0072B2"])
    binary_ax.pcolormesh(
        theta12, ms, binary_criterion_map(theta12, ms), cmap=colormap, vmin=0, vmax=1,
        shading="nearest", rasterized=True,
    )  # fmt: skip
    from sphereviz import bounds  # sympy: only when the map is drawn

    bound = float(bounds.derive_binary_bound().m_min)
    binary_ax.axhline(bound, color="#D55E00", linewidth=1.2, label=f"m = 2 + √3 ≈ {bound:.2f}")
    # the analytic edge of the wrapped case: θ₁₂ ≥ 2π/(m − 1), i.e. m ≥ 1 + 2π/θ₁₂, below 2 + √3
    edge_theta = np.linspace(360 / (bound - 1), 180, 200)
    binary_ax.plot(edge_theta, 1 + 360 / edge_theta, color="#D55E00", linewidth=1.2,
                   linestyle="--", label="m = 1 + 2π/θ₁₂ (wrapped case)")  # fmt: skip
    binary_ax.set_xlabel("θ₁₂ (degrees)")
    binary_ax.set_ylabel("m")
    binary_ax.set_title("two classes")
    binary_ax.legend(loc="lower right", fontsize="small", frameon=True)
    uniform_ax.pcolormesh(
        classes, ms, uniform_criterion_map(classes, ms), cmap=colormap, vmin=0, vmax=1,
        shading="nearest", rasterized=True,
    )  # fmt: skip
    multiclass = float(bounds.derive_multiclass_bound().m_min)
    uniform_ax.axhline(multiclass, color="#D55E00", linewidth=1.2, label=f"m = {multiclass:g}")
    uniform_ax.set_xlabel("K (uniformly spaced classes)")
    uniform_ax.set_title("K classes, 2π/K apart")
    uniform_ax.legend(loc="lower right", fontsize="small", frameon=True)
    fig.suptitle("max intra-class angle ≤ min inter-class angle (dark: holds)")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Angle histograms
# ---------------------------------------------------------------------------------------------


#: Labelled angles of the histogram axes (degrees): five labels (every 45°) run together in a
#: panel a quarter of a double column wide; the minor ticks keep the 45° marks.
_ANGLE_TICKS_DEGREES = (0, 90, 180)
_ANGLE_MINOR_TICKS_DEGREES = (45, 135)


def draw_angle_histograms(
    ax: Axes, features, labels, bins: int = 45, max_pairs: int = 100_000
) -> geometry.PairAngles:
    """Histograms (degrees) of same-class and different-class pair angles (SphereFace Fig. 5).

    Pair angles come from ``geometry.pair_angles`` (all pairs up to ``max_pairs``, else a
    fixed-seed sample). Bars are counts, labelled ``"same class"`` / ``"different class"``;
    the angle axis is labelled at 0, 90 and 180°, with minor ticks at 45° and 135°.
    ``ax`` is emptied first, so a widget can redraw into the same axes. No legend is drawn:
    the caller places one where it covers no bar (see ``plot_angle_histograms``). Returns the
    PairAngles drawn.
    """
    features, labels = _as_features_and_labels(features, labels)
    angles = geometry.pair_angles(features, labels, max_pairs=max_pairs)
    _start_drawing(ax, "angle_histograms")
    edges = np.linspace(0.0, 180.0, bins + 1)
    ax.hist(np.degrees(angles.same_class), bins=edges, color=OKABE_ITO[0], alpha=0.65,
            label="same class")  # fmt: skip
    ax.hist(np.degrees(angles.different_class), bins=edges, color=OKABE_ITO[5], alpha=0.65,
            label="different class")  # fmt: skip
    ax.set_xlim(0, 180)
    ax.set_xticks(_ANGLE_TICKS_DEGREES)
    ax.set_xticks(_ANGLE_MINOR_TICKS_DEGREES, minor=True)
    ax.set_xlabel("pair angle (degrees)")
    # two lines: in one, the label is taller than a panel a quarter of a page wide
    ax.set_ylabel("pairs" if angles.exhaustive else f"pairs per kind\n(sample of {max_pairs:,})")
    return angles


def plot_angle_histograms(
    runs: Sequence[tuple[str, np.ndarray, np.ndarray]],
    bins: int = 45,
    max_pairs: int = 100_000,
) -> Figure:
    """One angle-histogram panel per ``(title, features, labels)`` run, e.g. m = 1…4.

    When every run has the same numbers of same-class and different-class pairs (the same test
    set, or the same sample of ``max_pairs`` of each kind), the panels share their count
    axis, so bar heights compare across panels; its label and tick labels are then written
    once, on the first panel. Runs with different numbers of pairs keep a count axis each.
    The angle axis is labelled at 0, 90 and 180° only (``draw_angle_histograms``), which
    stays legible with four panels to a double column.
    The legend is a figure legend below the panels (constrained layout makes room for it),
    so it never covers a bar, however the pairs are distributed.
    """
    if len(runs) == 0:
        raise ValueError("runs is empty; pass (title, features, labels) tuples")
    width = min(COLUMN_WIDTHS_INCH["double"], 2.2 * len(runs))
    fig, axes = plt.subplots(
        1, len(runs), squeeze=False, figsize=(width, width / len(runs) + 0.3), layout="constrained"
    )
    pair_counts = set()
    for ax, (title, features, labels) in zip(axes[0], runs, strict=True):
        angles = draw_angle_histograms(ax, features, labels, bins, max_pairs)
        pair_counts.add((angles.same_class.size, angles.different_class.size))
        ax.set_title(title)
        _keep_tick_label_sizes(ax)
    if len(pair_counts) == 1:
        _share_count_axis(axes[0])
    _legend_below(fig, axes[0][:1], one_row=len(runs) > 1)
    return fig


def _share_count_axis(axes: Sequence[Axes]) -> None:
    """Give ``axes`` the first one's y axis, labelled and numbered on the first panel only.

    The shared limits are autoscaled afresh, so they take in the highest bar of every panel.
    """
    first, *others = axes
    for ax in others:
        ax.sharey(first)
        ax.set_ylabel("")
        ax.tick_params(axis="y", labelleft=False)
    first.autoscale_view(scalex=False)


def _keep_tick_label_sizes(ax: Axes) -> None:
    """Fix the tick label sizes of the rcParams in force now on ``ax``'s future ticks too.

    Matplotlib makes the ticks a locator asks for when the figure is drawn, with the rcParams
    in force then: a figure made inside ``style.publication_style`` (7 pt tick labels) and
    saved outside it would get 10 pt count labels, wide enough to run into the next panel.
    """
    ax.tick_params(axis="x", which="both", labelsize=plt.rcParams["xtick.labelsize"])
    ax.tick_params(axis="y", which="both", labelsize=plt.rcParams["ytick.labelsize"])


def _legend_below(fig: Figure, axes: Sequence[Axes], one_row: bool = True) -> None:
    """A figure legend of the labelled artists of ``axes`` (each label once), below the panels.

    "outside lower center" asks the figure's constrained layout to shrink the panels, so the
    legend covers no data. ``one_row=False`` stacks the entries (a single narrow panel).
    """
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(text, handle)
    fig.legend(list(entries.values()), list(entries), loc="outside lower center",
               ncol=len(entries) if one_row else 1, fontsize="small", frameon=False)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Open-set verification: score histograms and ROC
# ---------------------------------------------------------------------------------------------

SAME_PERSON_COLOR = OKABE_ITO[0]
DIFFERENT_PEOPLE_COLOR = OKABE_ITO[1]


def drawn_threshold(result: evaluate.VerificationResult) -> float:
    """The threshold a score histogram shows: the mean of the fold thresholds.

    One fold (View 1, ``single_split_verification``): its threshold itself. k folds (View 2,
    ``verification_accuracy``): each fold has its own threshold t_f, chosen on the other
    folds, so the line is at t̄ = (1/k) Σ_f t_f and the span [min t_f, max t_f] is shaded.
    """
    return float(np.mean(result.thresholds))


def draw_verification_scores(
    ax: Axes, result: evaluate.VerificationResult, title: str | None = None, bins: int = 40
) -> None:
    """Histograms of the cosine scores of same-person and different-people pairs, into ``ax``.

    ``result.scores[result.same]`` (label ``"same person"``) and ``result.scores[~result.same]``
    (``"different people"``) are counted over ``bins`` equal bins on [−1, 1] (scores clipped
    to it against rounding); the vertical line (``"threshold"``) is ``drawn_threshold(result)``;
    with several folds the range of the fold thresholds is shaded (``"fold thresholds"``). The
    title is ``title`` and, on a second line, the verification accuracy (mean ± sample std
    over folds). ``ax`` is emptied first; no legend is drawn (``plot_verification`` puts one
    below the panels).
    """
    _check_verification_result(result, title or "result")
    _start_drawing(ax, "verification_scores")
    edges = np.linspace(-1.0, 1.0, bins + 1)
    scores = np.clip(result.scores, -1.0, 1.0)  # a cosine of 1 + 1e-16 still counts
    ax.hist(scores[result.same], bins=edges, color=SAME_PERSON_COLOR, alpha=0.65,
            label="same person")  # fmt: skip
    ax.hist(scores[~result.same], bins=edges, color=DIFFERENT_PEOPLE_COLOR, alpha=0.65,
            label="different people")  # fmt: skip
    if result.thresholds.size > 1:
        ax.axvspan(result.thresholds.min(), result.thresholds.max(), color="0.5", alpha=0.25,
                   linewidth=0, label="fold thresholds")  # fmt: skip
    ax.axvline(drawn_threshold(result), color="black", linewidth=1.0, label="threshold")
    ax.set_xlim(-1.0, 1.0)
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("pairs")
    accuracy = f"accuracy {result.accuracy_mean:.3f}"
    if result.fold_accuracies.size > 1:
        accuracy += f" ± {result.accuracy_std:.3f}"
    ax.set_title(accuracy if title is None else f"{title}\n{accuracy}")


def format_rate(rate: float) -> str:
    """A false accept rate as researchers write it: 1e-3, 5e-4, 0.05."""
    if rate < 0.01:
        return np.format_float_scientific(rate, trim="-", exp_digits=1)
    return f"{rate:g}"


def draw_roc_curves(
    ax: Axes,
    results: Mapping[str, evaluate.VerificationResult],
    far: float = 1e-3,
    legend: bool = True,
) -> dict[str, evaluate.RocSummary]:
    """ROC curves (TAR against FAR) of each named result, with TAR@FAR marked, into ``ax``.

    Each curve is ``evaluate.roc_summary`` of the result's scores (scikit-learn's
    ``roc_curve``: FAR = FP/(FP + TN), TAR = TP/(TP + FN) at every threshold), labelled
    ``"<name>: AUC <auc>, TAR@FAR=<far> <tar>"`` with TAR@FAR = max{TAR : FAR ≤ far}; a ring
    marks that operating point on the curve. With fewer than 1/far different-people pairs the
    only FAR ≤ far is 0, so TAR@FAR is then the TAR at zero false accepts. The dashed
    diagonal is chance (AUC 0.5). ``legend=False`` leaves the legend to the caller
    (``plot_verification`` puts it beside the panels). Returns the RocSummary of each name.
    """
    from sphereviz import evaluate

    if len(results) == 0:
        raise ValueError("results is empty; pass {name: evaluate.VerificationResult}")
    _start_drawing(ax, "roc_curves")
    summaries = {}
    for color, (name, result) in zip(_roc_colors(len(results)), results.items(), strict=True):
        _check_verification_result(result, name)
        try:
            roc = evaluate.roc_summary(result.scores, result.same, far)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from error
        summaries[name] = roc
        ax.plot(roc.fpr, roc.tpr, color=color, label=f"{name}: AUC {roc.auc:.3f}, "
                f"TAR@FAR={format_rate(far)} {roc.tar_at_far:.3f}")  # fmt: skip
        at_far = np.flatnonzero(roc.fpr <= far)[-1]  # fpr and tpr never decrease along the ROC
        ax.plot(roc.fpr[at_far], roc.tpr[at_far], marker="o", markersize=5, color=color,
                markerfacecolor="none", linestyle="", label=f"_TAR@FAR {name}",
                clip_on=False)  # fmt: skip
    ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle="--", label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(f"ROC\n(ring: TAR@FAR={format_rate(far)})")
    if legend:
        ax.legend(loc="lower right", fontsize="small")
    return summaries


def plot_verification(
    results: Mapping[str, evaluate.VerificationResult], far: float = 1e-3
) -> Figure:
    """Open-set verification of one or more models (e.g. softmax vs A-Softmax on LFW).

    One panel per named result (``draw_verification_scores``: same-person and different-people
    cosine-score histograms, the threshold, the accuracy in the title), then one panel of ROC
    curves (``draw_roc_curves``: AUC and TAR@FAR=``far`` in the legend, the operating point
    marked, the chance diagonal). ``results`` maps a name (the loss) to what
    ``evaluate.single_split_verification`` or ``evaluate.verification_accuracy`` returned.
    The histogram key is a figure legend below the panels and the ROC key one to the right of
    them, so no legend covers data. With several folds the line is the mean fold threshold
    (``drawn_threshold``).
    """
    if len(results) == 0:
        raise ValueError(
            "results is empty; pass {name: evaluate.VerificationResult}, e.g. "
            "{'softmax': single_split_verification(...), 'a-softmax': ...}"
        )
    for name, result in results.items():
        _check_verification_result(result, name)
    if not 0 < far < 1:
        raise ValueError(f"far must be a false accept rate in (0, 1), e.g. 1e-3; got {far!r}")
    panels = len(results) + 1
    width = max(COLUMN_WIDTHS_INCH["double"], 2.4 * panels + 2.0)
    fig, axes = plt.subplots(1, panels, squeeze=False, figsize=(width, 2.6), layout="constrained")
    for ax, (name, result) in zip(axes[0][:-1], results.items(), strict=True):
        draw_verification_scores(ax, result, title=name)
    roc_ax = axes[0][-1]
    draw_roc_curves(roc_ax, results, far, legend=False)
    fig.legend(*roc_ax.get_legend_handles_labels(), loc="outside right center",
               fontsize="small", frameon=False)  # fmt: skip
    _legend_below(fig, axes[0][:-1])
    return fig


def _roc_colors(n: int) -> list[str]:
    """Curve colours that are not the histograms' blue and orange (unless there are many)."""
    distinct = [c for c in OKABE_ITO if c not in (SAME_PERSON_COLOR, DIFFERENT_PEOPLE_COLOR)]
    return distinct[:n] if n <= len(distinct) else class_colors(n)


def _check_verification_result(result, name: str) -> None:
    from sphereviz import evaluate

    if not isinstance(result, evaluate.VerificationResult):
        raise ValueError(
            f"{name}: expected an evaluate.VerificationResult (from single_split_verification "
            f"or verification_accuracy), got {type(result).__name__}"
        )


# ---------------------------------------------------------------------------------------------
# Learned features
# ---------------------------------------------------------------------------------------------


def _as_features_and_labels(features, labels) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, dtype=float)
    labels = np.asarray(labels)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(
            f"features must be a non-empty (n_samples, n_dims) array, got shape {features.shape}"
        )
    if labels.shape != (features.shape[0],):
        raise ValueError(
            f"labels must have shape ({features.shape[0]},) to match features, got {labels.shape}"
        )
    if not np.all(np.isfinite(features)):
        raise ValueError("features contain NaN or inf; check the run that produced them")
    return features, labels


def _unit_rows(array: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms > 0, norms, 1.0)


def project_to_sphere(
    features, class_weights=None, dim: int = 3
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Unit vectors in ``dim`` dimensions for features (and class weights) of any dimension.

    d == dim: x / ‖x‖. d > dim: the features are first normalised (x / ‖x‖), PCA
    (scikit-learn) is fitted on them, both features and weights are mapped **linearly** onto
    the ``dim`` leading principal axes (x ↦ V x, without subtracting the mean, so the origin
    and thus the angles' vertex stay put) and normalised again. Returns
    ``(points, weights_or_None, description)``; the description names the projection, for
    an axis title.
    """
    features = np.asarray(features, dtype=float)
    if features.ndim != 2 or features.shape[1] < dim:
        raise ValueError(
            f"features must be (n_samples, n_dims) with n_dims >= {dim}, got shape "
            f"{features.shape}; 2-D features go on the circle (plot_features_2d)"
        )
    weights = None if class_weights is None else np.asarray(class_weights, dtype=float)
    if weights is not None and (weights.ndim != 2 or weights.shape[1] != features.shape[1]):
        raise ValueError(
            f"class_weights must be (n_classes, {features.shape[1]}) to match the features, "
            f"got shape {weights.shape}"
        )
    if features.shape[1] == dim:
        description = f"{dim}-D features, normalised"
        return (
            _unit_rows(features),
            None if weights is None else _unit_rows(weights),
            description,
        )
    from sklearn.decomposition import PCA  # imported here: it takes seconds, and few plots need it

    unit_features = _unit_rows(features)
    pca = PCA(n_components=dim, svd_solver="full").fit(unit_features)
    axes = pca.components_
    description = f"PCA {features.shape[1]}-D → {dim}-D, normalised"
    projected_weights = None if weights is None else _unit_rows(weights @ axes.T)
    return _unit_rows(unit_features @ axes.T), projected_weights, description


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
    alpha: float = plots_sphere.POINT_ALPHA,
) -> plots_sphere.RingHistogram | None:
    """Unit 2-D features on the circle, coloured by class, with weight ticks (into ``ax``).

    Points are translucent (``alpha``) and rasterised. With ``ring_histogram`` (default) the
    angle of x/‖x‖ is counted per class and drawn as stacked bars outside the circle
    (``plots_sphere.draw_ring_histogram``), so classes that overlap on the circle still show
    how many points each has at every angle; the RingHistogram drawn is returned (else None).
    Panels that compare runs share one count scale with ``ring_unit_length=
    plots_sphere.ring_unit_length([unit_1, unit_2, …], bins)``.
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
        drawn = plots_sphere.draw_ring_histogram(
            ax, unit_points, labels, bins=bins, unit_length=ring_unit_length
        )
        reach = drawn.base_radius + drawn.unit_length * drawn.counts.sum(axis=0).max() + 0.05
    if class_weights is not None:
        weights = _unit_rows(np.asarray(class_weights, dtype=float))
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
    alpha: float = plots_sphere.POINT_ALPHA,
) -> None:
    """Raw 2-D features, coloured by class, with each W_j as a tick beyond the farthest one.

    The ticks run from 1.05 R to 1.2 R along W_j/‖W_j‖ (R = max ‖x‖), so they cover no
    feature, however the classes lie; points are translucent and rasterised.
    """
    features, labels = _as_features_and_labels(features, labels)
    if features.shape[1] != 2:
        raise ValueError(f"draw_raw_features_2d needs 2-D features, got {features.shape[1]}-D")
    _scatter_by_class(ax, features, labels, marker_size, alpha=alpha, rasterized=True)
    reach = float(np.max(np.linalg.norm(features, axis=1)))
    if class_weights is not None:
        weights = _unit_rows(np.asarray(class_weights, dtype=float))
        _draw_weight_ticks(ax, weights, WEIGHT_TICK_SPAN_RAW, scale=reach)
    limit = 1.25 * reach
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")


#: Fraction of a 3-D axes' square box that the sphere spans. Not all of it: mplot3d's 2-D view
#: box is off-centre by 1.4 % of its side, and the weight rings reach a little past the rim.
_SPHERE_FILL = 0.95
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
    alpha: float = plots_sphere.POINT_ALPHA,
) -> np.ndarray:
    """Unit 3-D features on a sphere seen orthographically from ``view``; returns the view.

    ``view`` is a 3-vector to look from, or None: ``plots_sphere.view_direction(unit_points)``,
    the direction that sees the most points. ``back="hide"`` (default) draws only the front
    hemisphere (p·v ≥ 0: points, weights and a wireframe whose rim is the outline), so no point
    behind shows through the ones in front; the equal-area map (``plot_features_sphere``)
    shows the rest. ``back="show"`` draws everything over a whole wireframe. Class weights
    are hollow rings on the surface at W_j/‖W_j‖: a ring covers none of its cluster.
    The view is orthographic, so the sphere's outline is a circle of one size from every
    viewpoint, and it fills the axes' square box (``_fit_unit_sphere``).
    """
    if back not in BACK_MODES:
        raise ValueError(f"back must be one of {BACK_MODES}, got {back!r}")
    unit_points = np.asarray(unit_points, dtype=float)
    labels = np.asarray(labels)
    direction = (
        plots_sphere.view_direction(unit_points) if view is None else np.asarray(view, float)
    )
    direction = plots_sphere.map_frame(direction)[0]
    _draw_unit_sphere_wireframe(ax, None if back == "show" else direction)
    front = np.ones(len(unit_points), bool) if back == "show" else unit_points @ direction >= 0
    # depthshade off: the hidden back hemisphere needs no fading, and the front keeps its colour
    _scatter_by_class(ax, unit_points[front], labels[front], marker_size, alpha=alpha,
                      rasterized=True, classes=np.unique(labels),
                      depthshade=back == "show")  # fmt: skip
    if unit_weights is not None:
        weights = _unit_rows(np.asarray(unit_weights, dtype=float))
        colors = np.array(class_colors(len(weights)))
        shown = np.ones(len(weights), bool) if back == "show" else weights @ direction >= 0
        if shown.any():
            plots_sphere.draw_weight_rings(
                ax, weights[shown].T, list(colors[shown]), depthshade=False
            )
    ax.view_init(*plots_sphere.view_angles(direction))
    ax.set_axis_off()
    _fit_unit_sphere(ax, _SPHERE_FILL)
    return direction


def _fit_unit_sphere(ax, fraction: float) -> None:
    """View the unit sphere orthographically, its outline ``fraction`` of the axes' box wide.

    A 3-D axes draws into a square box whose side spans ``ax.viewLim.width`` projected units.
    An orthographic view maps a point p to projected coordinates (x, y) = A p + b, A a scaled
    rotation, so the unit sphere's outline is a circle of radius r = ‖A₁‖ (the norm of A's
    first row), whatever the view angles. r is proportional to the zoom of
    ``set_box_aspect``; the zoom that makes the diameter 2r span ``fraction`` of the box is

        zoom = fraction · viewLim.width / (2 r₁),   r₁: the radius at zoom 1.

    The data limits are [−1, 1] on every axis; lines beyond them (the weight rays) are drawn.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], the share of the axes box; got {fraction!r}")
    ax.set_proj_type("ortho")
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_zlim(-1, 1)
    ax.set_box_aspect((1, 1, 1), zoom=1)
    radius_at_zoom_1 = _projected_sphere_radius(ax)
    ax.set_box_aspect((1, 1, 1), zoom=fraction * ax.viewLim.width / (2 * radius_at_zoom_1))


def _projected_sphere_radius(ax) -> float:
    """‖A₁‖: the projected radius of the unit sphere, from the origin and the unit vectors."""
    from mpl_toolkits.mplot3d import proj3d

    x, _, _ = proj3d.proj_transform([0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], ax.get_proj())
    return float(np.linalg.norm(np.asarray(x[1:]) - x[0]))


def as_run(run):
    """``run`` itself when it is a ``sphereviz.runs.Run``; the run folder it names when it is a
    path (``load_run``, which says what is wrong with a folder that is not a run)."""
    import os

    from sphereviz.runs import Run, load_run

    if isinstance(run, Run):
        return run
    if isinstance(run, str | os.PathLike):
        return load_run(run)
    raise TypeError(
        f"expected a sphereviz Run (from train or load_run) or a run folder path, got "
        f"{type(run).__name__}"
    )


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
    ``plots3d.sphere_figure(class_names=...)`` takes.
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
    """Legend names of a run's classes, indexed by label, or None when they are unknown.

    A run folder stores labels, not names, so they come from the run's data set:
    ``"digit 0"`` … ``"digit 9"`` for MNIST, the Fashion-MNIST item names, and for faces the
    identity names of the face cache that ``config.faces_cache`` points to (underscores as
    spaces), when that cache is still there and has one name per class weight. Otherwise None
    (callers then label classes by number, or pass names they know).
    """
    from sphereviz.data.mnist import DIGIT_NAMES, FASHION_NAMES

    config = run.config
    if config.dataset == "mnist":
        return [f"digit {digit}" for digit in DIGIT_NAMES]
    if config.dataset == "fashion-mnist":
        return list(FASHION_NAMES)
    if config.dataset != "faces" or not config.faces_cache:
        return None
    from sphereviz.data.prepare import load_face_cache

    try:
        names = load_face_cache(config.faces_cache).class_names
    except (OSError, ValueError, KeyError):  # cache moved, rebuilt or damaged: names unknown
        return None
    weights = (getattr(run, "embeddings", None) or {}).get("class_weights")
    if weights is not None and len(weights) != len(names):
        return None
    return [name.replace("_", " ") for name in names]


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
    features, labels = _as_features_and_labels(features, labels)
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
    draw_unit_circle_features(unit_ax, _unit_rows(features), labels, weights, marker_size)
    unit_ax.set_title("normalised: x / ‖x‖")
    if title:
        fig.suptitle(title)
    return fig


def _draw_unit_sphere_wireframe(ax, front=None) -> None:
    """A light wireframe of the unit sphere, 15° a line: all of it (``front`` None), or only
    the hemisphere facing ``front``, drawn in that direction's ``map_frame`` so that its rim
    (the meridians λ = ±90°) is the sphere's outline, plus the rim drawn darker."""
    if front is None:
        u = np.linspace(0, 2 * math.pi, 25)
        v = np.linspace(0, math.pi, 13)
        ax.plot_wireframe(
            np.outer(np.cos(u), np.sin(v)),
            np.outer(np.sin(u), np.sin(v)),
            np.outer(np.ones_like(u), np.cos(v)),
            color="0.85",
            linewidth=0.3,
        )
        return
    frame = plots_sphere.map_frame(front)
    longitude, latitude = np.meshgrid(np.radians(np.arange(-90, 91, 15)),
                                      np.radians(np.arange(-90, 91, 7.5)))  # fmt: skip
    grid = (
        (np.cos(latitude) * np.cos(longitude))[..., None] * frame[0]
        + (np.cos(latitude) * np.sin(longitude))[..., None] * frame[1]
        + np.sin(latitude)[..., None] * frame[2]
    )
    ax.plot_wireframe(*np.moveaxis(grid, -1, 0), rstride=2, cstride=1, color="0.88",
                      linewidth=0.3)  # fmt: skip
    rim = np.linspace(0, 2 * math.pi, 181)
    outline = np.outer(np.cos(rim), frame[1]) + np.outer(np.sin(rim), frame[2])
    ax.plot(*outline.T, color="0.6", linewidth=0.5, label="_outline")


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
    alpha: float = plots_sphere.POINT_ALPHA,
) -> Figure:
    """Learned features on the unit sphere, one column per run (the paper's Fig. 5).

    ``runs`` is a sequence of ``(title, features, labels, class_weights_or_None)``, e.g. one
    per m = 1…4. 3-D features are normalised; higher-dimensional features are projected by
    ``project_to_sphere`` (PCA to 3-D without centring, then normalised), and the panel
    title says so. Each column stacks, under its title:

    - an orthographic 3-D view (``draw_unit_sphere_features``), a square as wide as the
      column, with the sphere filling it. ``view="shared"`` (default): every panel looks from
      ``plots_sphere.view_direction`` of all panels' points together, so the panels compare
      at one view and one scale; ``"each"``: each panel from its own points; a 3-vector: from
      there. ``back="hide"`` draws only the front hemisphere;
    - with ``equal_area_map`` (``"hammer"`` or ``"mollweide"``; None for none) the whole
      sphere on an equal-area map centred on the view direction (``draw_equal_area_map``),
      the dashed meridians bounding the hemisphere of the 3-D view, so no point hides;
    - with ``own_angle_strip`` (panels with class weights), a histogram of θ_y, the angle of
      each feature to its own class weight (in the features' own space), on an angle axis and
      a count axis shared by all panels: the classes tighten as the mass moves left.

    Points are small, translucent (``alpha``) and rasterised, so clusters show their density.
    """
    if len(runs) == 0:
        raise ValueError("runs is empty; pass (title, features, labels, class_weights) tuples")
    if equal_area_map is not None and equal_area_map not in plots_sphere.EQUAL_AREA_PROJECTIONS:
        raise ValueError(
            f"equal_area_map must be one of {plots_sphere.EQUAL_AREA_PROJECTIONS} or None, "
            f"got {equal_area_map!r}"
        )
    if isinstance(view, str) and view not in VIEW_MODES:
        raise ValueError(f"view must be one of {VIEW_MODES} or a 3-vector, got {view!r}")
    panels = []
    for title, features, labels, weights in runs:
        features, labels = _as_features_and_labels(features, labels)
        points, unit_weights, description = project_to_sphere(features, weights)
        full_title = title if features.shape[1] == 3 else f"{title}\n{description}"
        panels.append((full_title, points, labels, unit_weights, features, weights))
    if isinstance(view, str):
        pooled = np.concatenate([points for _, points, *_ in panels])
        shared = plots_sphere.view_direction(pooled) if view == "shared" else None
        directions = [
            shared if shared is not None else plots_sphere.view_direction(points)
            for _, points, *_ in panels
        ]
    else:
        directions = [plots_sphere.map_frame(view)[0]] * len(panels)
    strips = own_angle_strip and any(p[5] is not None for p in panels)
    columns = columns or len(panels)
    rows = math.ceil(len(panels) / columns)
    width = min(COLUMN_WIDTHS_INCH["double"], 2.2 * columns)
    panel = width / columns
    title_lines = max(title.count("\n") + 1 for title, *_ in panels)
    band = _title_band_inch(title_lines, _SPHERE_TITLE_SIZE, _SPHERE_TITLE_PAD)
    map_height = panel / 2 + _SPHERE_GAP_INCH if equal_area_map else 0.0
    strip_height = _STRIP_HEIGHT_INCH + _STRIP_LABELS_INCH if strips else 0.0
    block = band + panel + map_height + strip_height
    height = rows * block + _SPHERE_BOTTOM_INCH
    fig = plt.figure(figsize=(width, height))
    max_degrees = 90.0
    if strips:
        max_degrees = plots_sphere.own_angle_range(
            [(p[4], p[2], p[5]) for p in panels if p[5] is not None]
        )
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
            plots_sphere.draw_equal_area_map(
                map_ax, points, labels, unit_weights, directions[index], 0.6 * marker_size, alpha
            )
        if strips and weights is not None:
            below -= strip_height
            strip_ax = fig.add_axes(rect(below + _STRIP_LABELS_INCH, _STRIP_HEIGHT_INCH,
                                         _STRIP_INSET_INCH))  # fmt: skip
            plots_sphere.draw_own_angle_histogram(strip_ax, features, labels, weights,
                                                  max_degrees=max_degrees)  # fmt: skip
            step = 15 if max_degrees <= 45 else 30 if max_degrees <= 120 else 90
            strip_ax.set_xticks(np.arange(0, max_degrees + 1e-9, step))
            strip_ax.xaxis.set_major_formatter("{x:g}°")
            strip_ax.set_yticks([])
            strip_ax.spines["left"].set_visible(False)
            strip_ax.set_xlabel("angle to own W", labelpad=1, fontsize="small")
            _keep_tick_label_sizes(strip_ax)
            strip_axes.append(strip_ax)
    for strip_ax in strip_axes[1:]:
        strip_ax.sharey(strip_axes[0])
    if strip_axes:
        strip_axes[0].autoscale_view(scalex=False)
    return fig


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


# ---------------------------------------------------------------------------------------------
# Training curves
# ---------------------------------------------------------------------------------------------


def _metric_series(metrics: Sequence[Mapping], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [row for row in metrics if row.get(key) is not None]
    epochs = np.array([row["epoch"] for row in rows], dtype=float)
    return epochs, np.array([row[key] for row in rows], dtype=float)


def plot_training_curves(metrics: Sequence[Mapping]) -> Figure:
    """Loss, train/test accuracy and λ against epoch, from a run's metrics (one dict per epoch).

    Each dict needs ``epoch``; ``loss``, ``train_accuracy``, ``test_accuracy`` and ``lambda``
    are drawn when present. Accuracies are plotted as given (fractions or percent).
    """
    if len(metrics) == 0:
        raise ValueError("metrics is empty; pass run.metrics (one dict per epoch)")
    missing = [i for i, row in enumerate(metrics) if "epoch" not in row]
    if missing:
        raise ValueError(f"every metrics row needs an 'epoch' key; rows {missing} have none")
    fig, (loss_ax, accuracy_ax, lambda_ax) = plt.subplots(1, 3)
    loss_ax.plot(*_metric_series(metrics, "loss"), marker="o", label="loss")
    loss_ax.set_title("loss")
    for key in ("train_accuracy", "test_accuracy"):
        accuracy_ax.plot(*_metric_series(metrics, key), marker="o", label=key.replace("_", " "))
    accuracy_ax.set_title("accuracy")
    accuracy_ax.legend(fontsize="small")
    lambda_ax.plot(*_metric_series(metrics, "lambda"), marker="o", label="lambda")
    lambda_ax.set_title("annealing λ (log scale)")
    if any(row.get("lambda") for row in metrics):
        lambda_ax.set_yscale("log")
    for ax in (loss_ax, accuracy_ax, lambda_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig
