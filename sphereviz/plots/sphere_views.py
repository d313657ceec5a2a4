"""Views of unit features that hide nothing: a view direction chosen from the data, an
equal-area map of the whole sphere, weight markers that cover no cluster, a ring histogram of
angles around the circle, and a strip of angles to the own class weight.

- ``view_direction(points)``: the direction to look from, so that most points face the viewer.
- ``view_angles(direction)``: matplotlib's ``(elev, azim)`` for it; ``plotly_camera`` plotly's.
- ``map_frame`` / ``map_coordinates``: longitude and latitude about a chosen centre.
- ``draw_equal_area_map(ax, points, labels, weights)``: the whole sphere on a Hammer or
  Mollweide axes (both equal-area), the view direction at the centre.
- ``draw_ring_histogram(ax, points, labels)``: per-class counts of the angle of x/‖x‖ as
  stacked bars around the unit circle (a rose plot outside the circle).
- ``draw_own_angle_histogram(ax, features, labels, weights)``: counts of θ_y, the angle of each
  feature to its own class weight W_y.

- ``draw_unit_sphere_wireframe(ax, front)`` and ``fit_unit_sphere(ax, fraction)``: the unit
  sphere in a 3-D axes, seen orthographically and filling the axes' box.

The module draws with matplotlib and numpy only (no plotly): the static plots and
``plots.interactive3d`` both use it, so the static and the interactive sphere start from the
same view.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection

from sphereviz import geometry
from sphereviz.style import class_colors
from sphereviz.validation import check_int

__all__ = [
    "EQUAL_AREA_PROJECTIONS",
    "SPHERE_FILL",
    "VIEW_METHODS",
    "RingHistogram",
    "draw_equal_area_map",
    "draw_own_angle_histogram",
    "draw_unit_sphere_wireframe",
    "draw_weight_rings",
    "draw_ring_histogram",
    "map_coordinates",
    "fit_unit_sphere",
    "map_frame",
    "own_angle_range",
    "plotly_camera",
    "ring_unit_length",
    "view_angles",
    "view_direction",
    "visible_fraction",
]

#: matplotlib projections that show the whole sphere with areas preserved.
EQUAL_AREA_PROJECTIONS = ("hammer", "mollweide")
VIEW_METHODS = ("points", "class-means", "mean")
#: A point this close (degrees) to the rim of the front hemisphere is foreshortened to a sliver
#: in an orthographic view, so ``view_direction`` does not count it as seen.
LIMB_DEGREES = 10.0
#: Opacity of feature points: dense clusters show as darker, not as opaque blobs.
POINT_ALPHA = 0.45
#: Number of candidate view directions (a Fibonacci lattice, about 4.5° apart).
VIEW_CANDIDATES = 2000


def _as_unit_points(points, name: str = "points", dim: int = 3) -> np.ndarray:
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != dim or points.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty (n, {dim}) array of vectors, got shape {points.shape}; "
            "project higher-dimensional features first (geometry.project_to_sphere)"
        )
    if not np.all(np.isfinite(points)):
        raise ValueError(f"{name} contain NaN or inf; check the run that produced them")
    return geometry.unit_rows(points)


def _as_direction(direction) -> np.ndarray:
    vector = np.asarray(direction, dtype=float)
    if vector.shape != (3,) or not np.all(np.isfinite(vector)) or np.linalg.norm(vector) == 0:
        raise ValueError(f"a view direction must be a non-zero 3-vector, got {direction!r}")
    return vector / np.linalg.norm(vector)


# ---------------------------------------------------------------------------------------------
# Choosing the view
# ---------------------------------------------------------------------------------------------


def visible_fraction(points, direction, limb_degrees: float = LIMB_DEGREES) -> float:
    """The share of unit points seen well from ``direction``: angle to it ≤ 90° − limb.

    In an orthographic view from v, a point p is on the front hemisphere when p·v > 0; one
    within ``limb_degrees`` of the rim is drawn squeezed, so it counts as seen only when
    p·v > sin(limb).
    """
    unit = _as_unit_points(points)
    return float(np.mean(unit @ _as_direction(direction) > math.sin(math.radians(limb_degrees))))


def view_direction(
    points,
    labels=None,
    method: str = "points",
    limb_degrees: float = LIMB_DEGREES,
    candidates: int = VIEW_CANDIDATES,
) -> np.ndarray:
    """The unit direction to look at the sphere from, chosen so that the data faces the viewer.

    - ``"points"`` (default): among ``candidates`` directions of a Fibonacci lattice (and the
      mean direction), the v that sees the most points well, i.e. maximises
      #{p : p·v > sin(limb)}; ties go to the largest Σ p·v (closest to the mean direction).
    - ``"class-means"``: the same count over the mean direction of each class (``labels``
      needed), so that as many classes as possible face the viewer; ties by the points' count.
    - ``"mean"``: v = Σ p / ‖Σ p‖, the mean direction of all points ("points" when the mean
      is shorter than 1e-6: the data covers the sphere evenly).

    ``points`` are (n, 3) vectors (normalised here). Returns a (3,) unit vector.
    """
    if method not in VIEW_METHODS:
        raise ValueError(f"method must be one of {VIEW_METHODS}, got {method!r}")
    unit = _as_unit_points(points)
    total = unit.sum(axis=0)
    mean = total / np.linalg.norm(total) if np.linalg.norm(total) > 1e-6 * len(unit) else None
    if method == "mean" and mean is not None:
        return mean
    lattice = geometry.fibonacci_sphere(candidates)
    directions = lattice if mean is None else np.vstack([mean, lattice])
    threshold = math.sin(math.radians(limb_degrees))
    seen = np.zeros(len(directions))
    closeness = np.zeros(len(directions))
    for begin in range(0, len(directions), 256):  # chunks: memory n × 256, not n × candidates
        dots = unit @ directions[begin : begin + 256].T
        seen[begin : begin + 256] = (dots > threshold).sum(axis=0)
        closeness[begin : begin + 256] = dots.sum(axis=0)
    if method == "class-means":
        if labels is None:
            raise ValueError("method='class-means' needs the labels of the points")
        _, means = geometry.class_mean_directions(unit, labels)
        means = means[np.all(np.isfinite(means), axis=1)]
        classes_seen = (means @ directions.T > threshold).sum(axis=0)
        order = np.lexsort((closeness, seen, classes_seen))
    else:
        order = np.lexsort((closeness, seen))
    return directions[order[-1]]


def view_angles(direction) -> tuple[float, float]:
    """matplotlib's ``(elev, azim)`` in degrees that look at the origin from ``direction``.

    mplot3d puts the eye along (cos e cos a, cos e sin a, sin e), so e = arcsin v_z and
    a = atan2(v_y, v_x).
    """
    x, y, z = _as_direction(direction)
    return math.degrees(math.asin(max(-1.0, min(1.0, z)))), math.degrees(math.atan2(y, x))


def map_frame(center) -> np.ndarray:
    """Rows (e₁, e₂, e₃): e₁ = centre, e₃ = the z axis made perpendicular to it (screen up),
    e₂ = e₃ × e₁ (screen right, as in an mplot3d view from e₁ with z up).

    When the centre is (nearly) ±z, the x axis takes the place of z.
    """
    first = _as_direction(center)
    up = np.array([0.0, 0.0, 1.0])
    if abs(first @ up) > 1 - 1e-9:
        up = np.array([1.0, 0.0, 0.0])
    third = up - (up @ first) * first
    third /= np.linalg.norm(third)
    return np.stack([first, np.cross(third, first), third])


def map_coordinates(points, center) -> tuple[np.ndarray, np.ndarray]:
    """(longitude, latitude) in radians of unit points about ``center`` (``map_frame``).

    With q = F p (F the frame's rows): λ = atan2(q₂, q₁) ∈ (−π, π], φ = arcsin q₃; the centre
    maps to (0, 0) and the screen-right direction to λ > 0.
    """
    rotated = _as_unit_points(points) @ map_frame(center).T
    return np.arctan2(rotated[:, 1], rotated[:, 0]), np.arcsin(np.clip(rotated[:, 2], -1, 1))


def plotly_camera(direction, distance: float = 1.94) -> dict:
    """A plotly ``scene.camera`` looking at the origin from ``direction``, ``distance`` away,
    with the frame's e₃ (``map_frame``) up, so the view matches the static one and the map."""
    frame = map_frame(direction)
    eye, up = distance * frame[0], frame[2]
    return {
        "eye": dict(zip("xyz", eye.tolist(), strict=True)),
        "up": dict(zip("xyz", up.tolist(), strict=True)),
        "center": {"x": 0.0, "y": 0.0, "z": 0.0},
    }


# ---------------------------------------------------------------------------------------------
# Equal-area map of the whole sphere
# ---------------------------------------------------------------------------------------------


#: Area (pt²) of the hollow ring that marks a class weight: about 9 pt across, wider than a
#: tight cluster (a few degrees on a sphere 2 in wide), which then shows inside it.
WEIGHT_RING_SIZE = 64.0


def draw_weight_rings(
    ax: Axes, coordinates, colors: Sequence[str], size: float = WEIGHT_RING_SIZE, **options
) -> Axes:
    """Class weights as hollow rings at ``coordinates`` (a sequence of x, y[, z] arrays): a
    thin black halo under a ring in each class's colour, nothing inside, so a ring covers no
    point of a cluster narrower than it. Labelled ``"weights"`` (the halo ``"_weights halo"``).
    Returns ``ax``.
    """
    for edges, width, label in (("black", 1.1, "_weights halo"), (list(colors), 0.6, "weights")):
        ax.scatter(*coordinates, s=size, facecolors="none", edgecolors=edges, linewidths=width,
                   zorder=4, label=label, **options)  # fmt: skip
    return ax


def draw_equal_area_map(
    ax: Axes,
    unit_points,
    labels,
    unit_weights=None,
    center=None,
    marker_size: float = 2.0,
    alpha: float = POINT_ALPHA,
    front_outline: bool = True,
) -> np.ndarray:
    """The whole unit sphere on an equal-area map, centred on ``center``; returns the centre.

    ``ax`` must have a ``"hammer"`` or ``"mollweide"`` projection (both equal-area, so a
    cluster's drawn area is proportional to the solid angle it covers, wherever it lies).
    Each point p goes to (λ, φ) = ``map_coordinates(p, center)``; ``center`` defaults to
    ``view_direction(unit_points)``, the direction an orthographic 3-D view of the same data
    looks from, so the map's centre is the middle of that view and its right is the view's
    right. Points are small, translucent and rasterised, one collection per class (label
    ``class <c>``); weights are hollow rings (label ``"weights"``); with ``front_outline``
    the meridians λ = ±90° (dashed) bound the hemisphere the 3-D view shows.
    """
    if ax.name not in EQUAL_AREA_PROJECTIONS:
        raise ValueError(
            f"ax must be an equal-area map axes, projection one of {EQUAL_AREA_PROJECTIONS}, "
            f"got {ax.name!r}; make it with fig.add_subplot(projection='hammer')"
        )
    unit = _as_unit_points(unit_points, "unit_points")
    labels = np.asarray(labels)
    if labels.shape != (len(unit),):
        raise ValueError(f"labels must have shape ({len(unit)},), got {labels.shape}")
    center = view_direction(unit) if center is None else _as_direction(center)
    longitude, latitude = map_coordinates(unit, center)
    classes = np.unique(labels)
    colors = class_colors(len(classes))
    for color, cls in zip(colors, classes, strict=True):
        chosen = labels == cls
        ax.scatter(longitude[chosen], latitude[chosen], s=marker_size, color=color, alpha=alpha,
                   linewidths=0, rasterized=True, label=f"class {cls}")  # fmt: skip
    if unit_weights is not None:
        weight_lon, weight_lat = map_coordinates(unit_weights, center)
        draw_weight_rings(ax, (weight_lon, weight_lat), class_colors(len(weight_lon)))
    if front_outline:
        rim = np.linspace(-math.pi / 2, math.pi / 2, 91)
        for side in (-1, 1):
            ax.plot(np.full_like(rim, side * math.pi / 2), rim, color="0.45", linewidth=0.6,
                    linestyle=(0, (3, 2)), label="_front hemisphere")  # fmt: skip
    ax.grid(True, color="0.88", linewidth=0.3)
    ax.spines["geo"].set(color="0.45", linewidth=0.6)
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    return center


# ---------------------------------------------------------------------------------------------
# Angles around the circle and to the own weight
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not objects
class RingHistogram:
    """What ``draw_ring_histogram`` drew: bin edges (radians, [−π, π]), counts per class
    (classes × bins, in ``classes`` order), and the radial length of one count."""

    edges: np.ndarray
    classes: np.ndarray
    counts: np.ndarray
    unit_length: float
    base_radius: float


def _sector(inner: float, outer: float, start: float, end: float, steps: int) -> np.ndarray:
    angles = np.linspace(start, end, steps)
    ring = np.concatenate([angles, angles[::-1]])
    radii = np.concatenate([np.full(steps, outer), np.full(steps, inner)])
    return np.stack([radii * np.cos(ring), radii * np.sin(ring)], axis=1)


def draw_ring_histogram(
    ax: Axes,
    unit_points,
    labels,
    bins: int = 72,
    base_radius: float = 1.06,
    height: float = 0.42,
    alpha: float = 0.9,
    unit_length: float | None = None,
) -> RingHistogram:
    """Per-class histograms of the angle of x/‖x‖, as stacked bars outside the unit circle.

    The angle α = atan2(y, x) of each 2-D point is counted in ``bins`` equal bins on [−π, π]
    (``np.histogram`` per class). Bin b is a stack of annular sectors from ``base_radius``
    outward, one per class in label order, each as long as its count times one count's length
    ℓ = height / (largest stack); pass ``unit_length`` (``ring_unit_length`` of several
    panels) to give panels one count scale. Points on the circle overlap where classes crowd;
    the bars do not. One PolyCollection per class, labelled ``class <c> angles``.
    """
    unit = _as_unit_points(unit_points, "unit_points", dim=2)
    labels = np.asarray(labels)
    if labels.shape != (len(unit),):
        raise ValueError(f"labels must have shape ({len(unit)},), got {labels.shape}")
    bins = check_int("bins", bins, min=4)
    angles = np.arctan2(unit[:, 1], unit[:, 0])
    edges = np.linspace(-math.pi, math.pi, bins + 1)
    classes = np.unique(labels)
    counts = np.stack([np.histogram(angles[labels == c], bins=edges)[0] for c in classes])
    if unit_length is None:
        unit_length = height / max(int(counts.sum(axis=0).max()), 1)
    elif not unit_length > 0:
        raise ValueError(f"unit_length must be a positive radius per count, got {unit_length!r}")
    below = np.zeros(bins)
    steps = max(2, math.ceil(720 / bins / 4))  # arcs drawn every ~1.25°
    for color, cls, row in zip(class_colors(len(classes)), classes, counts, strict=True):
        sectors = [
            _sector(
                base_radius + below[b] * unit_length,
                base_radius + (below[b] + row[b]) * unit_length,
                edges[b],
                edges[b + 1],
                steps,
            )  # fmt: skip
            for b in np.flatnonzero(row)
        ]
        ax.add_collection(PolyCollection(sectors, facecolors=color, edgecolors="none",
                                         alpha=alpha, label=f"class {cls} angles"))  # fmt: skip
        below += row
    return RingHistogram(edges, classes, counts, unit_length, base_radius)


def ring_unit_length(point_sets: Sequence, bins: int = 72, height: float = 0.42) -> float:
    """One count's radial length for ring histograms of several panels on one scale: ``height``
    over the largest stack (points of all classes in one bin) of any of the 2-D ``point_sets``.
    """
    edges = np.linspace(-math.pi, math.pi, bins + 1)
    tallest = 1
    for points in point_sets:
        unit = _as_unit_points(points, "points", dim=2)
        counts, _ = np.histogram(np.arctan2(unit[:, 1], unit[:, 0]), bins=edges)
        tallest = max(tallest, int(counts.max()))
    return height / tallest


def own_angle_range(features_sets: Sequence[tuple], step_degrees: float = 15.0) -> float:
    """The upper end (degrees) of a shared own-angle axis: the largest 99th percentile of θ_y
    over the given ``(features, labels, class_weights)`` sets, rounded up to ``step``."""
    largest = 0.0
    for features, labels, weights in features_sets:
        own, _ = geometry.angles_to_class_weights(features, labels, weights)
        largest = max(largest, float(np.percentile(np.degrees(own), 99)))
    return float(min(180.0, step_degrees * max(1, math.ceil(largest / step_degrees))))


def draw_own_angle_histogram(
    ax: Axes,
    features,
    labels,
    class_weights,
    max_degrees: float = 90.0,
    bins: int = 30,
    color: str = "0.3",
) -> np.ndarray:
    """Counts of θ_y = ∠(x, W_y), each feature's angle to its own class weight, in degrees.

    ``bins`` equal bins on [0, ``max_degrees``]; angles beyond it are counted in the last bin
    (so every feature is counted). A vertical line marks the median θ_y, written in the upper
    right corner.
    Angles are those of the features' own space (``geometry.angles_to_class_weights``), not of
    a projection. Returns the counts.
    """
    if not 0 < max_degrees <= 180:
        raise ValueError(f"max_degrees must be in (0, 180], got {max_degrees!r}")
    own, _ = geometry.angles_to_class_weights(features, labels, class_weights)
    degrees = np.minimum(np.degrees(own), max_degrees)
    edges = np.linspace(0.0, max_degrees, bins + 1)
    counts, _, _ = ax.hist(degrees, bins=edges, color=color, linewidth=0, label="θ_y")
    median = float(np.median(np.degrees(own)))
    ax.axvline(median, color="black", linewidth=0.8, label="median θ_y")
    # in the upper right, where the tail of the counts is low, so it covers no bar's top
    ax.text(0.98, 0.95, f"median {median:.0f}°", transform=ax.transAxes, ha="right",
            va="top", fontsize="x-small")  # fmt: skip
    ax.set_xlim(0, max_degrees)
    return counts


# ---------------------------------------------------------------------------------------------
# The unit sphere in a 3-D axes
# ---------------------------------------------------------------------------------------------

#: Fraction of a 3-D axes' square box that the sphere spans. Not all of it: mplot3d's 2-D view
#: box is off-centre by 1.4 % of its side, and the weight rings reach a little past the rim.
SPHERE_FILL = 0.95


def fit_unit_sphere(ax, fraction: float) -> None:
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


def draw_unit_sphere_wireframe(ax: Axes, front=None) -> Axes:
    """A light wireframe of the unit sphere, 15° a line: all of it (``front`` None), or only
    the hemisphere facing ``front``, drawn in that direction's ``map_frame`` so that its rim
    (the meridians λ = ±90°) is the sphere's outline, plus the rim drawn darker. Returns ``ax``.
    """
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
        return ax
    frame = map_frame(front)
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
    return ax
