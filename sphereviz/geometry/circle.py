"""Regions on the circle: arcs, a dense grid of the decision rule, spans, gaps, the criterion."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sphereviz.geometry._common import (
    _MARGIN_FREE,
    _SAME_POINT,
    CIRCLE_RESOLUTION,
    CRITERION_TOLERANCE,
    TWO_PI,
    _frozen,
    _margin_values,
    _optional_vector,
    canonical_loss_name,
)
from sphereviz.geometry.closed_form import binary_closed_form, uniform_closed_form
from sphereviz.geometry.rule import ClaimRule, claim_counts, classify_points
from sphereviz.losses.registry import loss_spec
from sphereviz.validation import check_choice, check_int, check_real

# --------------------------------------------------------------------------------------------
# Arcs on the circle: spans, gaps and distances of unions of arcs
# --------------------------------------------------------------------------------------------
# Internally an arc is (start, length) with 0 ≤ length ≤ 2π; the public form is (start, end).


def _ccw(from_angle: float, to_angle: float) -> float:
    """Counter-clockwise distance from one angle to another, in [0, 2π); ~2π counts as 0."""
    distance = (to_angle - from_angle) % TWO_PI
    return 0.0 if distance > TWO_PI - _SAME_POINT else distance


def _arc_distance(first: tuple[float, float], second: tuple[float, float]) -> float:
    """The smallest angle between a point of one arc and a point of the other."""
    (start_a, length_a), (start_b, length_b) = first, second
    if _ccw(start_a, start_b) <= length_a or _ccw(start_b, start_a) <= length_b:
        return 0.0
    return min(_ccw(start_a + length_a, start_b), _ccw(start_b + length_b, start_a))


def _set_distance(arcs_a, arcs_b) -> float:
    return min((_arc_distance(a, b) for a in arcs_a for b in arcs_b), default=math.inf)


def _span(arcs: list[tuple[float, float]]) -> float:
    """The largest angle between two points of a union of arcs (NaN when empty).

    If the complement has a gap G ≥ π the set fits in an arc of 2π − G, which is its span;
    otherwise the span is π − (distance from the set to its antipodal image).
    """
    if not arcs:
        return math.nan
    arcs = sorted(arcs)
    if any(length >= TWO_PI - _SAME_POINT for _, length in arcs):
        return math.pi
    largest_gap = max(
        _ccw(start + length, arcs[(index + 1) % len(arcs)][0]) if len(arcs) > 1 else TWO_PI - length
        for index, (start, length) in enumerate(arcs)
    )
    if largest_gap >= math.pi:
        return TWO_PI - largest_gap
    antipodal = [((start + math.pi) % TWO_PI, length) for start, length in arcs]
    return math.pi - _set_distance(arcs, antipodal)


def _neighbour_gaps(arcs_by_class, touching: float = 0.0) -> list[tuple[int, int, float]]:
    """(class before, class after, angle) for each stretch between regions of two classes.

    A stretch of at most ``touching`` counts as 0: grid regions on neighbouring grid points
    meet between them (``_grid_touching``).
    """
    ordered = sorted(
        (start, length, label) for label, arcs in enumerate(arcs_by_class) for start, length in arcs
    )
    gaps = []
    for index, (start, length, label) in enumerate(ordered):
        next_start, _, next_label = ordered[(index + 1) % len(ordered)]
        if next_label != label:
            angle = _ccw(start + length, next_start)
            angle = min(angle, TWO_PI - angle)
            gaps.append((label, next_label, 0.0 if angle <= touching else angle))
    return gaps


# --------------------------------------------------------------------------------------------
# Grid labels → runs → arcs
# --------------------------------------------------------------------------------------------


def circle_points(resolution: int = CIRCLE_RESOLUTION, radius: float = 1.0) -> np.ndarray:
    """``resolution`` points radius·(cos φ, sin φ), φ = 2πk/resolution, as an (N, 2) array."""
    angles = _grid_angles(resolution)
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _grid_angles(resolution: int) -> np.ndarray:
    check_int("resolution", resolution, min=8, hint="the number of grid points")
    return TWO_PI * np.arange(resolution) / resolution


def _runs_per_row(labels: np.ndarray):
    """For each row of grid labels (B, N): the runs (start index, end index incl., label).

    The end may be ≥ N for the run that wraps round through index 0.
    """
    rows, size = labels.shape
    changes = labels != np.roll(labels, 1, axis=1)
    change_rows, change_columns = np.nonzero(changes)
    offsets = np.searchsorted(change_rows, np.arange(rows + 1))
    for row in range(rows):
        starts = change_columns[offsets[row] : offsets[row + 1]]
        if starts.size == 0:
            yield [(0, size, int(labels[row, 0]))]  # one label everywhere: the whole circle
            continue
        ends = np.append(starts[1:], starts[0] + size) - 1
        yield list(zip(starts.tolist(), ends.tolist(), labels[row, starts].tolist(), strict=True))


def _grid_touching(size: int) -> float:
    """The stretch between two regions on neighbouring grid points: one step, measured as 0.

    Runs are arcs through their grid points, so regions that meet between two neighbouring
    points are one step apart; their true gap is 0. (A gap of one empty point measures two.)
    """
    return 1.5 * TWO_PI / size


def _arcs_from_runs(runs, size: int, num_classes: int) -> list[list[tuple[float, float]]]:
    """Grid runs as arcs from the first to the last grid point of each run (inner arcs)."""
    step = TWO_PI / size
    arcs: list[list[tuple[float, float]]] = [[] for _ in range(num_classes)]
    for start, end, label in runs:
        if label >= 0:
            length = TWO_PI if end - start >= size else (end - start) * step
            arcs[label].append((start * step, length))
    return arcs


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not objects
class GridMeasures:
    """The criterion's two numbers for each row of a batch of grid labels (radians)."""

    max_intra_class_angle: np.ndarray
    min_inter_class_angle: np.ndarray
    all_regions_nonempty: np.ndarray

    @property
    def criterion_holds(self) -> np.ndarray:
        return self.all_regions_nonempty & (
            self.max_intra_class_angle <= self.min_inter_class_angle + CRITERION_TOLERANCE
        )


def grid_measures(labels, num_classes: int) -> GridMeasures:
    """Max intra-class and min inter-class angle for each row of circle grid labels (B, N).

    Row b holds the labels (class or −1) of N equally spaced points φ_k = 2πk/N. Each run of
    equal labels is taken as the arc through its grid points, so a measured span is at most
    the true one and a measured gap at least the true one, each within two grid steps;
    regions on neighbouring grid points meet between them, a gap of 0. The
    min inter-class angle is the narrowest stretch between neighbouring regions of different
    classes (the shortest path between any two regions crosses one).
    """
    labels = np.asarray(labels)
    if labels.ndim == 1:
        labels = labels[None, :]
    if labels.ndim != 2:
        raise ValueError(f"labels must be (N,) or (B, N) grid labels, got shape {labels.shape}")
    size = labels.shape[1]
    intra, inter, nonempty = [], [], []
    for runs in _runs_per_row(labels):
        arcs = _arcs_from_runs(runs, size, num_classes)
        spans = [_span(class_arcs) for class_arcs in arcs]
        nonempty.append(all(class_arcs for class_arcs in arcs))
        intra.append(max((s for s in spans if not math.isnan(s)), default=math.nan))
        gaps = _neighbour_gaps(arcs, _grid_touching(size))
        inter.append(min((gap for *_, gap in gaps), default=math.inf))
    return GridMeasures(np.array(intra), np.array(inter), np.array(nonempty, dtype=bool))


# --------------------------------------------------------------------------------------------
# Regions on the circle
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not objects
class CircleRegions:
    """Decision regions of one configuration on the circle (all angles in radians).

    - ``arcs[i]``: class i's region as (start, end) arcs, start in [0, 2π), end = start +
      length (end > 2π means the arc wraps through angle 0); a class may have 0 or more arcs.
      Grid arcs run from the first to the last grid point inside the region; regions on
      neighbouring grid points touch (gap 0).
    - ``spans[i]``: the max intra-class angle of class i (NaN when its region is empty).
    - ``inter_class_angles[i, j]``: the smallest angle between regions i and j (inf if empty).
    - ``gaps``: (class before, class after, angle) for each stretch of circle between
      neighbouring regions of different classes, counter-clockwise.
    - ``angular_margin``: the narrowest such stretch, the paper's "angular margin" (for two
      A-Softmax classes (m−1)θ₁₂/(m+1)); it equals ``min_inter_class_angle``.
    - ``criterion_holds``: every region non-empty and max intra ≤ min inter.
    - ``grid_angles``, ``grid_labels``: the dense grid (class or −1) for plotting.
    - ``method``: "closed-form" or "grid", where the arcs and numbers came from.
    - SphereFace2 only: ``arcs`` are the stretches one class alone claims,
      ``contested_arcs`` those that several classes claim, ``grid_claim_counts`` the number
      of classes claiming each grid point (the rest of the circle nobody claims).
    """

    loss: str
    m: float | None
    weight_angles: np.ndarray
    arcs: tuple[tuple[tuple[float, float], ...], ...]
    spans: tuple[float, ...]
    inter_class_angles: np.ndarray
    gaps: tuple[tuple[int, int, float], ...]
    max_intra_class_angle: float
    min_inter_class_angle: float
    angular_margin: float
    criterion_holds: bool
    grid_angles: np.ndarray = field(repr=False)
    grid_labels: np.ndarray = field(repr=False)
    method: str = "grid"
    contested_arcs: tuple[tuple[float, float], ...] = ()
    grid_claim_counts: np.ndarray | None = field(default=None, repr=False)

    def summary_degrees(self) -> dict:
        """The headline numbers in degrees, for printing and widgets."""
        return {
            "max_intra_class_angle_deg": math.degrees(self.max_intra_class_angle),
            "min_inter_class_angle_deg": math.degrees(self.min_inter_class_angle),
            "angular_margin_deg": math.degrees(self.angular_margin),
            "criterion_holds": bool(self.criterion_holds),
            "method": self.method,
        }


def circle_regions(
    weight_angles,
    loss: str = "a-softmax",
    m=None,
    *,
    weight_norms=None,
    biases=None,
    radius: float = 1.0,
    rule: str = "psi",
    annealing_lambda: float = 0.0,
    resolution: int = CIRCLE_RESOLUTION,
    method: str = "auto",
    claim_rule: ClaimRule | None = None,
) -> CircleRegions:
    """Decision regions on the circle for K classes with weights at ``weight_angles`` (radians).

    ``weight_norms`` (default 1) matter for softmax and l-softmax only, ``biases`` for softmax
    only, and ``radius`` (the feature norm ‖x‖) only for softmax with biases. ``method``:
    "closed-form" (two classes, or uniformly spaced classes; see ``binary_closed_form`` and
    ``uniform_closed_form``), "grid" (the decision rule on ``resolution`` points), or "auto"
    (closed form where one exists, else grid). The grid labels are always computed, for plots.
    SphereFace2 (``claim_rule``) is always on the grid: see ``CircleRegions`` for its fields.
    """
    loss = canonical_loss_name(loss)
    if np.ndim(m) != 0:
        raise ValueError(f"circle_regions takes one margin m, got {m!r}; call it once per m")
    angles, norms = _circle_layout(weight_angles, weight_norms)
    num_classes = angles.size
    check_real("radius (the feature norm ‖x‖)", radius, min=0, include_min=False)
    check_choice("method", method, ("auto", "closed-form", "grid"))
    grid_angles = _grid_angles(resolution)
    weights = norms[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = classify_points(circle_points(resolution, radius), weights, loss, m, rule=rule,
                             biases=biases, annealing_lambda=annealing_lambda,
                             claim_rule=claim_rule)  # fmt: skip
    margin = None if loss in _MARGIN_FREE else float(_margin_values(loss, m, rule)[0])
    claims = loss_spec(loss).region_rule == "claims"
    contested, counts = ((), None)
    if claims:
        contested, counts = _claims_on_circle(weights, margin, claim_rule, resolution, method)
    closed = None
    if method != "grid" and not claims:
        closed = _closed_form_arcs(angles, loss, margin, norms, biases, annealing_lambda)
        if closed is None and method == "closed-form":
            raise ValueError(
                "no closed form for this configuration: it needs 2 classes or uniformly spaced "
                "weights, equal weight norms, no biases and no annealing; use method='grid'"
            )
    if closed is not None:
        region, arcs = closed
        spans = [region.max_intra_class_angle if class_arcs else math.nan for class_arcs in arcs]
        max_intra, min_inter = region.max_intra_class_angle, region.min_inter_class_angle
        source, touching = "closed-form", 0.0
    else:
        arcs, spans, max_intra, min_inter, touching = _grid_arcs(labels, resolution, num_classes)
        source = "grid"
    inter = _inter_class_angles(arcs, touching)
    nonempty = all(arcs)
    holds = nonempty and max_intra <= min_inter + CRITERION_TOLERANCE
    return CircleRegions(
        loss=loss,
        m=margin,
        weight_angles=_frozen(angles),
        arcs=tuple(tuple((start, start + length) for start, length in a) for a in arcs),
        spans=tuple(float(s) for s in spans),
        inter_class_angles=_frozen(inter),
        gaps=tuple(_neighbour_gaps(arcs, touching)),
        max_intra_class_angle=float(max_intra) if nonempty else math.nan,
        min_inter_class_angle=float(min_inter) if nonempty else math.nan,
        angular_margin=float(min_inter) if nonempty else math.nan,
        criterion_holds=bool(holds),
        grid_angles=_frozen(grid_angles),
        grid_labels=_frozen(labels),
        method=source,
        contested_arcs=contested,
        grid_claim_counts=None if counts is None else _frozen(counts),
    )


def _inter_class_angles(arcs, touching: float) -> np.ndarray:
    """(K, K): the smallest angle between the regions of classes i and j (0 where they touch)."""
    num_classes = len(arcs)
    inter = np.zeros((num_classes, num_classes))
    for i in range(num_classes):
        for j in range(i + 1, num_classes):
            distance = _set_distance(arcs[i], arcs[j])
            inter[i, j] = inter[j, i] = 0.0 if distance <= touching else distance
    return inter


def _circle_layout(weight_angles, weight_norms) -> tuple[np.ndarray, np.ndarray]:
    """The weight angles in [0, 2π) and their norms (default 1), checked."""
    angles = np.asarray(weight_angles, dtype=float)
    if angles.ndim != 1 or angles.size < 2 or not np.all(np.isfinite(angles)):
        raise ValueError(
            f"weight_angles must be >= 2 finite angles in radians, got {weight_angles!r}"
        )
    angles = np.mod(angles, TWO_PI)
    norms = _optional_vector(weight_norms, "weight_norms", angles.size, positive=True)
    return angles, np.ones(angles.size) if norms is None else norms


def _claims_on_circle(weights, margin, claim_rule, resolution, method):
    """SphereFace2 on the circle: the arcs that several classes claim, and the claim counts
    (on the grid: it has no closed form)."""
    if method == "closed-form":
        raise ValueError(
            "SphereFace2 has no closed form for its regions on the circle; use method='grid'"
        )
    counts = claim_counts(circle_points(resolution), weights, margin, claim_rule).sum(1)
    (contested_runs,) = _runs_per_row(np.where(counts >= 2, 0, -1)[None, :])
    contested = tuple(
        (start, start + length)
        for start, length in _arcs_from_runs(contested_runs, resolution, 1)[0]
    )
    return contested, counts


def _grid_arcs(labels, resolution, num_classes):
    """From the grid labels: arcs per class, their spans, max intra, min inter, the touching
    distance (gaps up to it are grid steps, not gaps)."""
    (runs,) = _runs_per_row(labels[None, :])
    arcs = _arcs_from_runs(runs, resolution, num_classes)
    spans = [_span(class_arcs) for class_arcs in arcs]
    touching = _grid_touching(resolution)
    gap_angles = [gap for *_, gap in _neighbour_gaps(arcs, touching)]
    max_intra = max((s for s in spans if not math.isnan(s)), default=math.nan)
    min_inter = min(gap_angles, default=math.inf)
    return arcs, spans, max_intra, min_inter, touching


def _closed_form_arcs(angles, loss, margin, norms, biases, annealing_lambda):
    """(ClosedFormRegion, arcs per class) when a closed form applies, else None."""
    if annealing_lambda > 0 or not np.allclose(norms, norms[0], rtol=1e-12, atol=0):
        return None
    if biases is not None and np.any(np.asarray(biases) != 0):
        return None
    # equal norms, no biases: softmax has modified softmax's regions, L-Softmax A-Softmax's;
    # SphereFace-R's ψ rule is mθ_i < θ_j exactly, the "angle" closed form (LossSpec)
    loss = loss_spec(loss).equal_norms_as or loss
    num_classes = angles.size
    if num_classes == 2:
        difference = float(np.mod(angles[1] - angles[0], TWO_PI))
        theta12 = min(difference, TWO_PI - difference)
        if theta12 < _SAME_POINT:
            return None
        region = binary_closed_form(theta12, loss, margin)
        if region.case == "empty":
            return region, [[], []]
        direction = 1.0 if difference <= math.pi else -1.0
        first = (region.start, region.end)
        second = (theta12 - region.end, theta12 - region.start)
        arcs = [_placed_arc(angles[0], first, direction), _placed_arc(angles[0], second, direction)]
        return region, [[arc] for arc in arcs]
    ordered = np.sort(angles)
    spacing = np.diff(np.append(ordered, ordered[0] + TWO_PI))
    if not np.allclose(spacing, TWO_PI / num_classes, rtol=0, atol=1e-9):
        return None
    region = uniform_closed_form(num_classes, loss, margin)
    if region.case == "empty":
        return region, [[] for _ in range(num_classes)]
    return region, [[_placed_arc(angle, (region.start, region.end), 1.0)] for angle in angles]


def _placed_arc(origin: float, relative: tuple[float, float], direction: float):
    """An arc given relative to ``origin`` (mirrored when direction = −1) as (start, length)."""
    low, high = relative
    start = origin + low if direction > 0 else origin - high
    return (float(start % TWO_PI), float(high - low))


# --------------------------------------------------------------------------------------------
