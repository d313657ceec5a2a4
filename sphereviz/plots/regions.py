"""Decision regions: on the unit circle (any loss) and on the unit sphere (the SphereFace line:
A-Softmax, SphereFace-R and SphereFace2 side by side).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Wedge

from sphereviz import geometry
from sphereviz.losses.registry import loss_spec
from sphereviz.plots import sphere_views
from sphereviz.plots.sphere_views import SPHERE_FILL, draw_unit_sphere_wireframe, fit_unit_sphere
from sphereviz.style import COLUMN_WIDTHS_INCH, class_colors
from sphereviz.validation import check_int

__all__ = [
    "describe_regions",
    "draw_regions",
    "draw_sphere_regions",
    "plot_regions",
    "plot_sphereface_line_regions",
    "regions_for",
    "sphere_region_labels",
    "TETRAHEDRON_WEIGHTS",
    "uncovered_arcs",
    "weight_name",
]


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
    num_classes = check_int("num_classes", num_classes, min=2)
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
    if geometry.default_rule(loss, m) == "boundary":
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
    title: str | None = None,
) -> Axes:
    """Draw the decision regions of ``regions`` on the unit circle into ``ax``; return ``ax``.

    Class i's region (i = 1…K, as W_i) is a coloured thick arc (label ``"class i region"``,
    one line per arc, x = cos φ, y = sin φ) over a light wedge; the stretches where no class
    wins by the margin are shaded grey (label ``"no class"``); for SphereFace2 the stretches
    that several classes claim are dark, dotted and cross-hatched (label ``"claimed by
    several"``), and the softmax rule's boundaries (argmax cos θ: the bisectors between
    neighbouring weights) are dashed rays (label ``"softmax rule"``); the weight directions W_i are
    arrows (one quiver, label ``"weights"``); the angular margin and the criterion are
    written below the circle (``annotate``). The title is ``title``, by default the loss and
    its m, e.g. ``"A-Softmax, m = 4"``. ``ax`` is not cleared first (``clear_drawing``).
    """
    colors = class_colors(len(regions.weight_angles))
    full = np.linspace(0, 2 * math.pi, 241)
    ax.plot(np.cos(full), np.sin(full), color="0.8", linewidth=0.6, zorder=1)
    _draw_arcs(ax, regions, colors, arc_points)
    _draw_weights(ax, regions, colors)
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.5, 1.5)
    ax.set_aspect("equal")
    ax.set_axis_off()
    if title is None:
        margin = "" if regions.m is None else f", m = {regions.m:g}"
        title = f"{loss_spec(regions.loss).title}{margin}"
    ax.set_title(title)
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
    return ax


def _draw_arcs(ax: Axes, regions: geometry.CircleRegions, colors, arc_points: int) -> None:
    """The uncovered stretches, SphereFace2's contested ones and each class's arcs."""
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


def _draw_weights(ax: Axes, regions: geometry.CircleRegions, colors) -> None:
    """The weight arrows W_i and their names; for SphereFace2 the softmax rule's boundaries."""
    if loss_spec(regions.loss).region_rule == "claims":
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


def _argmax_boundaries(weight_angles) -> list[float]:
    """Angles where argmax_j cos θ_j changes: the bisectors of angularly neighbouring weights."""
    ordered = np.sort(np.mod(np.asarray(weight_angles, dtype=float), 2 * math.pi))
    following = np.append(ordered[1:], ordered[0] + 2 * math.pi)
    return [float(angle) for angle in (ordered + following) / 2]


def plot_regions(
    regions: geometry.CircleRegions | Sequence[geometry.CircleRegions],
    annotate: bool = True,
    titles: Sequence[str | None] | None = None,
) -> Figure:
    """Decision regions on the circle, one panel per ``CircleRegions`` (see ``draw_regions``).

    E.g. ``plot_regions([regions_for("softmax"), regions_for("modified-softmax"),
    regions_for("a-softmax", m=4)])`` is the binary comparison of SphereFace §3. ``titles``
    gives one title per panel (None: the loss and its m).
    """
    panels = [regions] if isinstance(regions, geometry.CircleRegions) else list(regions)
    if not panels:
        raise ValueError("regions is empty; pass one or more geometry.CircleRegions")
    titles = [None] * len(panels) if titles is None else list(titles)
    if len(titles) != len(panels):
        raise ValueError(
            f"titles must give one title (or None) per panel: {len(panels)} panels, "
            f"got {len(titles)} titles"
        )
    width = min(COLUMN_WIDTHS_INCH["double"], 2.4 * len(panels))
    fig, axes = plt.subplots(
        1, len(panels), squeeze=False, figsize=(width, 1.25 * width / len(panels))
    )
    for ax, panel, title in zip(axes[0], panels, titles, strict=True):
        draw_regions(ax, panel, annotate=annotate, title=title)
    return fig


TETRAHEDRON_WEIGHTS = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / math.sqrt(3)
"""Four class weights on the sphere, 109.5° apart: the most even layout of four classes."""

_UNCLAIMED_COLOR = "0.88"
_CONTESTED_COLOR = "0.2"


def sphere_region_labels(
    points, weights, loss: str, m=None, claim_rule: geometry.ClaimRule | None = None
) -> np.ndarray:
    """Region label of each point on the sphere: its class, −1 for none, −2 (SphereFace2 only)
    where several classes claim it."""
    claims = loss_spec(loss).region_rule == "claims"
    options = {"claim_rule": claim_rule} if claims else {}
    labels = geometry.classify_points(points, weights, loss, m, **options)
    if claims:
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
    unit_weights = geometry.unit_rows(np.asarray(weights, dtype=float))
    if view is None:
        view = sphere_views.view_direction(unit_weights)
    direction = sphere_views.map_frame(np.asarray(view, dtype=float))[0]
    draw_unit_sphere_wireframe(ax, direction)
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
        sphere_views.draw_weight_rings(
            ax, unit_weights[shown].T, [colors[i] for i in shown], depthshade=False
        )
    ax.view_init(*sphere_views.view_angles(direction))
    ax.set_axis_off()
    fit_unit_sphere(ax, SPHERE_FILL)
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
        claims = loss_spec(loss).region_rule == "claims"
        options = {"claim_rule": claim_rule} if claims else {}
        draw_regions(ax, regions_for(loss, m, num_classes, **options), annotate=True)
        if sphere:
            ax3d = fig.add_subplot(rows, 3, column + 4, projection="3d")
            draw_sphere_regions(
                ax3d, TETRAHEDRON_WEIGHTS, loss, m,
                claim_rule if claims else None, num_sphere_points,
            )  # fmt: skip
    return fig
