"""The lower bounds on m (SphereFace §3.4, Properties 2 and 3), derived with sympy, not typed in.

Binary case: the boundary equations mφ = θ₁₂ − φ, mφ = θ₁₂ + φ and, once θ₁₂ > (m−1)π/m, the
wrapped mφ = 2π − θ₁₂ − φ give the reach of class 1's region; from them the max intra-class
and min inter-class angles, the inequality intra ≤ inter, the polynomial m² − 4m + 1 ≥ 0 and,
only once both cases are solved, m_min ≥ 2 + √3 (smallest integer 4). Uniformly spaced K
classes: (m − 3)(m + 1) ≥ 0, m_min = 3 for every K. ``numeric_cross_check`` applies the
decision rule to dense grids of points (``sphereviz.geometry``) and confirms the criterion
flips exactly at those values.

``sphereviz bounds`` prints the derivation step by step; ``--json`` adds a summary line.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import sympy as sp

from sphereviz import geometry
from sphereviz.derivation import (
    IFF,
    IMPLIES,
    Derivation,
    DerivationStep,
    _plain,
    _root_set,
    _solve_one,
    _step,
)
from sphereviz.fileio import print_json_summary
from sphereviz.validation import check_real

__all__ = [
    "BinaryBound",
    "Derivation",
    "DerivationStep",
    "MulticlassBound",
    "NumericCheck",
    "binary_criterion_angles",
    "derive_binary_bound",
    "derive_multiclass_bound",
    "main",
    "numeric_cross_check",
    "summary",
]

m = sp.Symbol("m", positive=True)
theta = sp.Symbol("theta_12", positive=True)
phi = sp.Symbol("phi", positive=True)
num_classes = sp.Symbol("K", integer=True, positive=True)
_DOMAIN = sp.Interval.open(1, sp.oo)  # m > 1: m = 1 is modified softmax, with no margin at all


def _positive_for_m_above_one(expression: sp.Expr) -> bool:
    """Sympy's own check that ``expression`` > 0 for every m > 1 (θ, K > 0)."""
    above = sp.Symbol("s", positive=True)
    return bool(sp.factor(expression.subs(m, 1 + above)).is_positive)


def _clear_denominators(intra: sp.Expr, inter: sp.Expr, multiplier: sp.Expr):
    """Multiply intra ≤ inter by a positive multiplier; return (lhs, rhs) as polynomials."""
    if not _positive_for_m_above_one(multiplier):
        raise ArithmeticError(f"multiplier {multiplier} is not positive for m > 1")
    return sp.factor(sp.cancel(intra * multiplier)), sp.factor(sp.cancel(inter * multiplier))


# --------------------------------------------------------------------------------------------
# Property 2: two classes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BinaryBound:
    """Every quantity of the binary derivation, as sympy expressions in m and θ₁₂."""

    toward: sp.Expr  # reach of class 1's region towards W₂: θ₁₂/(m+1)
    away: sp.Expr  # reach away from W₂ (first case): θ₁₂/(m−1)
    case_threshold: sp.Expr  # the first case holds for θ₁₂ ≤ (m−1)π/m
    away_wrapped: sp.Expr  # reach away from W₂ in the wrapped case: (2π − θ₁₂)/(m+1)
    max_intra_first: sp.Expr
    max_intra_wrapped: sp.Expr
    min_inter: sp.Expr
    polynomial: sp.Expr  # m² − 4m + 1 (≥ 0)
    roots: tuple[sp.Expr, ...]
    wrapped_condition: sp.Rel  # θ₁₂ ≥ 2π/(m−1)
    wrapped_polynomial: sp.Expr  # the condition over the whole wrapped range: same polynomial
    solution: sp.Set  # {m > 1 : polynomial ≥ 0}
    m_min: sp.Expr
    smallest_integer_m: int
    derivation: Derivation = field(repr=False)


@cache
def derive_binary_bound() -> BinaryBound:
    """Derive Property 2 (m_min ≥ 2 + √3) from the A-Softmax boundary equations.

    The steps solve both cases (first: θ₁₂ ≤ (m−1)π/m; wrapped: beyond it) before they conclude
    on m_min: each gives m² − 4m + 1 ≥ 0, so the criterion holds for every θ₁₂ from 2 + √3 on.
    """
    steps = [
        _step(
            "Two classes: W1 at angle 0, W2 at θ12 in (0, π], a feature x at angle φ. A-Softmax "
            "puts x in class 1's region where ψ(θ1) > cos θ2, i.e. where m·θ1 < θ2; the region's "
            "edges are where m·θ1 = θ2.",
            sp.Eq(m * sp.Symbol("theta_1"), sp.Symbol("theta_2")),
        )
    ]
    toward, away, case_threshold, away_wrapped = _binary_edges(steps)
    intra_first, inter, polynomial, roots, solution, m_min = _binary_first_case(steps, toward, away)
    intra_wrapped, wrapped_condition, wrapped_polynomial = _binary_wrapped_case(
        steps, toward, away_wrapped, inter, case_threshold, polynomial
    )
    smallest_integer = _binary_conclusion(steps, m_min, intra_first, inter)
    return BinaryBound(
        toward=toward,
        away=away,
        case_threshold=case_threshold,
        away_wrapped=away_wrapped,
        max_intra_first=intra_first,
        max_intra_wrapped=intra_wrapped,
        min_inter=inter,
        polynomial=polynomial,
        roots=roots,
        wrapped_condition=wrapped_condition,
        wrapped_polynomial=wrapped_polynomial,
        solution=solution,
        m_min=m_min,
        smallest_integer_m=smallest_integer,
        derivation=Derivation("Property 2: two classes, m >= 2 + sqrt(3)", tuple(steps)),
    )


def _binary_edges(steps: list) -> tuple:
    """The edges of class 1's region: towards W2, away from it, the case threshold and the
    wrapped far edge (Property 2's first steps, appended to ``steps``)."""
    toward = _solve_one(sp.Eq(m * phi, theta - phi), phi)
    steps.append(
        _step(
            "Towards W2 (x between W1 and W2): θ1 = φ and θ2 = θ12 − φ. Solve for φ:",
            sp.Eq(m * phi, theta - phi),
            IMPLIES,
            sp.Eq(phi, toward),
        )
    )
    away = _solve_one(sp.Eq(m * phi, theta + phi), phi)
    steps.append(
        _step(
            "Away from W2: θ1 = φ and θ2 = θ12 + φ (while θ12 + φ ≤ π). Solve for φ:",
            sp.Eq(m * phi, theta + phi),
            IMPLIES,
            sp.Eq(phi, away),
        )
    )
    case_threshold = _solve_one(sp.Eq(theta + away, sp.pi), theta)
    steps.append(
        _step(
            "That edge is valid while θ12 + θ12/(m−1) ≤ π; solve the equality for θ12 to get "
            "the case threshold (first case: θ12 at most this):",
            sp.Eq(theta + away, sp.pi),
            IMPLIES,
            sp.Eq(theta, case_threshold),
        )
    )
    away_wrapped = _solve_one(sp.Eq(m * phi, 2 * sp.pi - theta - phi), phi)
    steps.append(
        _step(
            "Beyond it (θ12 > (m−1)π/m) the far side wraps: the angle to W2 is measured the "
            "other way round, θ2 = 2π − θ12 − φ. Solve for φ:",
            sp.Eq(m * phi, 2 * sp.pi - theta - phi),
            IMPLIES,
            sp.Eq(phi, away_wrapped),
        )
    )
    return toward, away, case_threshold, away_wrapped


def _binary_first_case(steps: list, toward, away) -> tuple:
    """Max intra and min inter of the first case, the polynomial m² − 4m + 1 they give, its
    roots and the solution for m > 1."""
    intra_first = sp.factor(sp.together(toward + away))
    inter = sp.factor(theta - 2 * toward)
    steps.append(
        _step(
            "Max intra-class angle (first case) = the span of class 1's region, from its far "
            "edge to its near edge:",
            (r"\mathrm{intra} =", "intra ="),
            sp.Add(toward, away, evaluate=False),
            ("=", "="),
            intra_first,
        )
    )
    steps.append(
        _step(
            "Min inter-class angle: class 2's region is the mirror image, reaching θ12/(m+1) "
            "towards W1, so the gap between the regions is",
            (r"\mathrm{inter} =", "inter ="),
            sp.Add(theta, -2 * toward, evaluate=False),
            ("=", "="),
            inter,
        )
    )
    multiplier = sp.lcm(sp.denom(intra_first), sp.denom(inter)) / theta
    lhs, rhs = _clear_denominators(intra_first, inter, multiplier)
    polynomial = sp.expand(rhs - lhs)
    if theta in polynomial.free_symbols:
        raise ArithmeticError("θ12 did not cancel from the binary inequality")
    steps.append(
        _step(
            "Require intra ≤ inter and multiply both sides by the common denominator over θ12, "
            "which is positive for m > 1 (θ12 cancels):",
            sp.Le(intra_first, inter),
            IFF,
            sp.Le(lhs, rhs),
        )
    )
    steps.append(_step("Collect on one side: the polynomial", sp.Ge(polynomial, 0)))
    roots = tuple(sorted(sp.solve(polynomial, m), key=lambda root: float(root)))
    solution = sp.solveset(polynomial >= 0, m, _DOMAIN)
    m_min = sp.simplify(solution.inf)
    steps.append(
        _step(
            "Its roots, and the solution for m > 1 (first case only; the wrapped case follows):",
            ("m \\in", "m in"),
            _root_set(roots),
            (r"\;;\;", ";"),
            sp.Ge(polynomial, 0),
            IFF,
            sp.Ge(m, m_min),
        )
    )
    return intra_first, inter, polynomial, roots, solution, m_min


def _binary_wrapped_case(steps: list, toward, away_wrapped, inter, case_threshold, polynomial):
    """The wrapped case: its condition on θ12 and, over its whole range, the same polynomial."""
    intra_wrapped = sp.factor(sp.together(toward + away_wrapped))
    wrapped_threshold = _solve_one(sp.Eq(intra_wrapped, inter), theta)
    if not _positive_for_m_above_one(sp.diff(inter - intra_wrapped, theta)):
        raise ArithmeticError("inter − intra should grow with θ12 in the wrapped case")
    wrapped_condition = sp.Ge(theta, wrapped_threshold)
    steps.append(
        _step(
            "Wrapped case: intra = θ12/(m+1) + (2π − θ12)/(m+1); intra ≤ inter holds exactly "
            "when θ12 is at least the root of intra = inter (inter − intra grows with θ12):",
            sp.Le(intra_wrapped, inter),
            IFF,
            wrapped_condition,
        )
    )
    range_gap = case_threshold - wrapped_threshold
    range_multiplier = sp.denom(sp.together(range_gap)) / sp.pi
    if not _positive_for_m_above_one(range_multiplier):
        raise ArithmeticError("the wrapped-case multiplier should be positive for m > 1")
    wrapped_polynomial = sp.expand(sp.cancel(sp.together(range_gap) * range_multiplier))
    if sp.expand(wrapped_polynomial - polynomial) != 0:
        raise ArithmeticError("the wrapped case should give the same polynomial")
    steps.append(
        _step(
            "For the whole wrapped range θ12 ≥ (m−1)π/m that needs (m−1)π/m ≥ 2π/(m−1); times "
            "m(m−1)/π > 0 this is the same polynomial again:",
            sp.Ge(case_threshold, wrapped_threshold),
            IFF,
            sp.Ge(wrapped_polynomial, 0),
        )
    )
    return intra_wrapped, wrapped_condition, wrapped_polynomial


def _binary_conclusion(steps: list, m_min, intra_first, inter) -> int:
    """m_min ≥ 2 + √3, the smallest integer m, and the check at m = 4, 3 and θ12 = 90°."""
    smallest_integer = int(sp.ceiling(m_min))
    steps.append(
        _step(
            "Both cases need the same m² − 4m + 1 ≥ 0, so in this idealised 2-D picture the "
            "criterion holds for every θ12 exactly when m ≥ 2 + √3 ≈ 3.732 (the paper's "
            "Property 2: m_min ≥ 2 + √3, a necessary bound); the smallest integer m is",
            sp.Ge(sp.Symbol("m_min"), m_min),
            (r"\approx", "~"),
            m_min.evalf(6),
            (r"\;;\;", ";"),
            sp.Eq(sp.Symbol("m_int"), smallest_integer),
        )
    )
    degrees = 180 / sp.pi
    for example_m in (4, 3):
        example = {m: example_m, theta: sp.pi / 2}
        intra_deg, inter_deg = intra_first.subs(example) * degrees, inter.subs(example) * degrees
        verdict = "holds" if intra_deg <= inter_deg else "fails"
        steps.append(
            _step(
                f"Check at m = {example_m}, θ12 = 90° (degrees): the criterion {verdict}.",
                sp.Eq(sp.Symbol("intra"), intra_deg),
                (r",\quad", "and"),
                sp.Eq(sp.Symbol("inter"), inter_deg),
            )
        )
    return smallest_integer


def binary_criterion_angles(m_value) -> sp.Set:
    """The angles θ₁₂ ∈ (0, π] at which two A-Softmax classes meet max intra ≤ min inter.

    Built from the two cases of ``derive_binary_bound`` for a given real m ≥ 1 (the boundary
    rule mθ₁ < θ₂): the first case, θ₁₂ ∈ (0, (m−1)π/m], holds exactly when m² − 4m + 1 ≥ 0;
    the wrapped case, θ₁₂ ∈ ((m−1)π/m, π], exactly when θ₁₂ ≥ 2π/(m−1). Together

        m ≥ 2 + √3:       every θ₁₂ ∈ (0, π];
        3 ≤ m < 2 + √3:   θ₁₂ ∈ [2π/(m−1), π]   (m = 3: θ₁₂ = π only, with equality);
        1 ≤ m < 3:        no θ₁₂ (2π/(m−1) > π; m = 1 has no margin at all).

    ``m_value`` is a number or an exact sympy number (``sp.Rational(7, 2)``); the result is a
    sympy set in radians (``EmptySet``, a point or an interval), exact for an exact m.
    """
    if not isinstance(m_value, sp.Basic):
        check_real("m (the A-Softmax margin)", m_value, min=1.0)
        m_value = sp.Rational(float(m_value))  # the float exactly, so no boundary moves
    elif not (m_value.is_real and m_value.is_number and bool(m_value >= 1)):
        raise ValueError(f"m (the A-Softmax margin) must be a real number >= 1, got {m_value}")
    domain = sp.Interval.Lopen(0, sp.pi)
    if m_value == 1:
        return sp.EmptySet  # modified softmax: half circles, no gap between them
    binary = derive_binary_bound()
    values = {m: m_value}
    case_threshold = sp.radsimp(sp.simplify(binary.case_threshold.subs(values)))
    first = sp.Interval.Lopen(0, case_threshold)
    first_holds = bool(sp.simplify(binary.polynomial.subs(values)) >= 0)
    wrapped = sp.Interval.Lopen(case_threshold, sp.pi)
    lowest = sp.radsimp(sp.simplify(binary.wrapped_condition.rhs.subs(values)))
    holding = sp.Interval(lowest, sp.oo)  # the wrapped condition θ₁₂ ≥ 2π/(m−1)
    angles = (first if first_holds else sp.EmptySet) | (wrapped & holding)
    return sp.simplify(angles & domain)


# --------------------------------------------------------------------------------------------
# Property 3: K uniformly spaced classes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MulticlassBound:
    """The multi-class derivation, with θ = 2π/K the angle between neighbouring weights."""

    neighbour_angle: sp.Expr  # 2π/K
    reach: sp.Expr  # each side of a region: θ/(m+1)
    max_intra: sp.Expr
    min_inter: sp.Expr
    polynomial: sp.Expr  # (m − 3)(m + 1) (≥ 0)
    solution: sp.Set
    m_min: sp.Expr
    smallest_integer_m: int
    derivation: Derivation = field(repr=False)


@cache
def derive_multiclass_bound() -> MulticlassBound:
    """Derive Property 3 (m_min = 3 for any K) for K uniformly spaced weights in the plane."""
    neighbour = sp.Symbol("theta", positive=True)
    steps = [
        _step(
            "K ≥ 3 weights uniformly spaced on the circle: neighbours are θ = 2π/K apart, and "
            "each side of class i's region is bounded by its nearest neighbour (m·θ_i = θ_j).",
            sp.Eq(neighbour, 2 * sp.pi / num_classes),
        )
    ]
    reach = _solve_one(sp.Eq(m * phi, neighbour - phi), phi)
    steps.append(
        _step(
            "Towards a neighbour: θ_i = φ and θ_j = θ − φ. Solve for φ:",
            sp.Eq(m * phi, neighbour - phi),
            IMPLIES,
            sp.Eq(phi, reach),
        )
    )
    intra = sp.factor(2 * reach)
    inter = sp.factor(neighbour - 2 * reach)
    steps.append(
        _step(
            "The region reaches that far on both sides, and the neighbour's region likewise:",
            (r"\mathrm{intra} =", "intra ="),
            intra,
            (r",\quad \mathrm{inter} =", "and inter ="),
            inter,
        )
    )
    multiplier = sp.denom(intra) * sp.denom(inter) / neighbour
    lhs, rhs = _clear_denominators(intra, inter, multiplier)
    polynomial = sp.factor(rhs - lhs)
    if neighbour in polynomial.free_symbols:
        raise ArithmeticError("θ did not cancel from the multi-class inequality")
    steps.append(
        _step(
            "Require intra ≤ inter and multiply both sides by the product of the two "
            "denominators over θ, (m+1)²/θ > 0 (θ, hence K, cancels):",
            sp.Le(intra, inter),
            IFF,
            sp.Le(lhs, rhs),
            IFF,
            sp.Ge(polynomial, 0),
        )
    )
    solution = sp.solveset(polynomial >= 0, m, _DOMAIN)
    m_min = sp.simplify(solution.inf)
    smallest_integer = int(sp.ceiling(m_min))
    steps.append(
        _step(
            "For m > 1 the factor m + 1 is positive, so the solution is m ≥ 3, for every K:",
            sp.Ge(polynomial, 0),
            IFF,
            sp.Ge(m, m_min),
        )
    )
    steps.append(
        _step(
            "Check at K = 3, m = 3 (degrees): intra = inter = 60, the criterion holds with "
            "equality.",
            sp.Eq(sp.Symbol("intra"), intra.subs({m: 3, neighbour: 2 * sp.pi / 3}) * 180 / sp.pi),
            (r",\quad", "and"),
            sp.Eq(sp.Symbol("inter"), inter.subs({m: 3, neighbour: 2 * sp.pi / 3}) * 180 / sp.pi),
        )
    )
    return MulticlassBound(
        neighbour_angle=2 * sp.pi / num_classes,
        reach=reach,
        max_intra=intra,
        min_inter=inter,
        polynomial=polynomial,
        solution=solution,
        m_min=m_min,
        smallest_integer_m=smallest_integer,
        derivation=Derivation("Property 3: K uniformly spaced classes, m >= 3", tuple(steps)),
    )


# --------------------------------------------------------------------------------------------
# Numeric cross-check on dense grids
# --------------------------------------------------------------------------------------------

CHECK_RESOLUTION = 16384
"""Grid points on the circle for the cross-check (0.022° apart)."""
NEAR_BOUND_OFFSET = 0.02
"""The check includes m_min ± this: the grid resolves the criterion's violation there."""


def default_m_values() -> np.ndarray:
    """1.0, 1.05, …, 6.0 plus 2 + √3 and 3 themselves and values just either side of them."""
    binary, multiclass = 2 + math.sqrt(3), 3.0
    near = [
        bound + offset
        for bound in (binary, multiclass)
        for offset in (-NEAR_BOUND_OFFSET, 0.0, NEAR_BOUND_OFFSET)
    ]
    return np.unique(np.concatenate([np.round(np.arange(1.0, 6.0 + 1e-9, 0.05), 10), near]))


@dataclass(frozen=True, eq=False)  # holds arrays
class NumericCheck:
    """The criterion evaluated by the decision rule on dense grids of points on the circle.

    ``binary_holds[k]``: for m = m_values[k], the criterion holds at every θ₁₂ in
    ``theta12_values`` (two classes). ``uniform_holds[i, k]``: it holds for
    class_counts[i] uniformly spaced classes. Both use the boundary rule m·θ_i < θ_j, since ψ
    needs an integer m; ``psi_*`` repeat the check with the real ψ for integer m.
    """

    resolution: int
    m_values: np.ndarray
    theta12_values: np.ndarray
    class_counts: tuple[int, ...]
    binary_holds: np.ndarray
    uniform_holds: np.ndarray
    integer_m_values: np.ndarray
    psi_binary_holds: np.ndarray
    psi_uniform_holds: np.ndarray
    binary_m_min: float
    multiclass_m_min: float

    def disagreements(self) -> list[str]:
        """One line per grid result that contradicts m ≥ m_min."""
        problems = []
        for label, values, holds, bound in (
            ("binary", self.m_values, self.binary_holds, self.binary_m_min),
            ("binary psi", self.integer_m_values, self.psi_binary_holds, self.binary_m_min),
        ):
            for value, held in zip(values, holds, strict=True):
                if held != _expected(value, bound):
                    problems.append(f"{label}: m = {value:.4f} held={held}")
        for label, values, table in (
            ("uniform", self.m_values, self.uniform_holds),
            ("uniform psi", self.integer_m_values, self.psi_uniform_holds),
        ):
            for count, row in zip(self.class_counts, table, strict=True):
                for value, held in zip(values, row, strict=True):
                    if held != _expected(value, self.multiclass_m_min):
                        problems.append(f"{label} K={count}: m = {value:.4f} held={held}")
        return problems

    @property
    def agrees(self) -> bool:
        return not self.disagreements()

    @property
    def psi_agrees(self) -> bool:
        return not any("psi" in line for line in self.disagreements())


def _expected(m_value: float, bound: float) -> bool:
    return bool(m_value >= bound - 1e-12)


def numeric_cross_check(
    *,
    resolution: int = CHECK_RESOLUTION,
    m_values: Iterable[float] | None = None,
    theta12_values: Iterable[float] | None = None,
    class_counts: Iterable[int] = range(3, 13),
    integer_m_values: Iterable[int] = range(1, 7),
) -> NumericCheck:
    """Apply the decision rule to ``resolution`` points on the circle for many configurations.

    Binary: W₁ at 0, W₂ at each θ₁₂ (default 5°, 10°, …, 180°); uniform: K weights 2π/K apart.
    A grid under-measures spans and over-measures gaps by less than two steps each, so a
    criterion that holds exactly also holds on the grid, and one violated by more than four
    steps fails on it; ``default_m_values`` keep every m at least that far from equality
    except the bounds themselves.
    """
    m_grid = default_m_values() if m_values is None else np.asarray(list(m_values), float)
    if theta12_values is None:
        theta12_values = np.radians(np.arange(5.0, 180.0 + 1e-9, 5.0))
    thetas = np.asarray(list(theta12_values), dtype=float)
    counts = tuple(int(count) for count in class_counts)
    integers = np.asarray(list(integer_m_values), dtype=float)
    points = geometry.circle_points(resolution)

    def holds(weights: np.ndarray, margins: np.ndarray, rule: str) -> np.ndarray:
        labels = geometry.classify_points(points, weights, "a-softmax", margins, rule=rule)
        return geometry.grid_measures(labels, weights.shape[0]).criterion_holds

    binary = np.ones(m_grid.size, dtype=bool)
    psi_binary = np.ones(integers.size, dtype=bool)
    for theta12 in thetas:
        weights = np.array([[1.0, 0.0], [math.cos(theta12), math.sin(theta12)]])
        binary &= holds(weights, m_grid, "boundary")
        psi_binary &= holds(weights, integers, "psi")
    uniform, psi_uniform = [], []
    for count in counts:
        angles = geometry.uniform_weight_angles(count)
        weights = np.stack([np.cos(angles), np.sin(angles)], axis=1)
        uniform.append(holds(weights, m_grid, "boundary"))
        psi_uniform.append(holds(weights, integers, "psi"))
    return NumericCheck(
        resolution=resolution,
        m_values=m_grid,
        theta12_values=thetas,
        class_counts=counts,
        binary_holds=binary,
        uniform_holds=np.array(uniform).reshape(len(counts), m_grid.size),
        integer_m_values=integers,
        psi_binary_holds=psi_binary,
        psi_uniform_holds=np.array(psi_uniform).reshape(len(counts), integers.size),
        binary_m_min=float(derive_binary_bound().m_min),
        multiclass_m_min=float(derive_multiclass_bound().m_min),
    )


# --------------------------------------------------------------------------------------------
# Summary and command line
# --------------------------------------------------------------------------------------------


def summary(check: NumericCheck | None = None) -> dict:
    """The headline results as JSON-ready values (sympy objects as sympy strings)."""
    binary, multiclass = derive_binary_bound(), derive_multiclass_bound()
    result = {
        "binary_polynomial": _plain(binary.polynomial),
        "binary_m_min": _plain(binary.m_min),
        "binary_m_min_float": float(binary.m_min),
        "binary_smallest_integer_m": binary.smallest_integer_m,
        "binary_case_threshold": _plain(binary.case_threshold),
        "binary_wrapped_condition": _plain(binary.wrapped_condition),
        "multiclass_polynomial": _plain(multiclass.polynomial),
        "multiclass_m_min": _plain(multiclass.m_min),
        "multiclass_m_min_float": float(multiclass.m_min),
        "multiclass_smallest_integer_m": multiclass.smallest_integer_m,
    }
    if check is not None:
        result["numeric_check_agrees"] = check.agrees
        result["numeric_check"] = {
            "resolution": check.resolution,
            "grid_step_deg": 360.0 / check.resolution,
            "num_m_values": int(check.m_values.size),
            "num_theta12_values": int(check.theta12_values.size),
            "class_counts": list(check.class_counts),
            "psi_check_agrees": check.psi_agrees,
            "disagreements": check.disagreements(),
        }
    return result


def _check_report(check: NumericCheck) -> str:
    binary_first = check.m_values[check.binary_holds].min(initial=math.inf)
    uniform_all = check.uniform_holds.all(axis=0)
    uniform_first = check.m_values[uniform_all].min(initial=math.inf)
    lines = [
        "Numeric cross-check (decision rule m*theta_i < theta_j on a grid of "
        f"{check.resolution} points, {360 / check.resolution:.4f} deg apart)",
        f"  binary, every theta_12 in {len(check.theta12_values)} values: criterion holds from "
        f"m = {binary_first:.4f} on (2 + sqrt(3) = {check.binary_m_min:.4f})",
        f"  uniform K = {check.class_counts[0]}..{check.class_counts[-1]}: criterion holds from "
        f"m = {uniform_first:.4f} on (bound 3)",
        f"  real psi, m = {', '.join(str(int(v)) for v in check.integer_m_values)}: "
        f"{'agrees' if check.psi_agrees else 'DISAGREES'}",
        f"  agrees with the derivation: {check.agrees}",
    ]
    lines += [f"  ! {line}" for line in check.disagreements()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sphereviz bounds",
        description="Derive SphereFace's lower bounds on m with sympy (m >= 2+sqrt(3) for two "
        "classes, m >= 3 for uniformly spaced classes) and check them on dense grids.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    parser.add_argument("--latex", action="store_true", help="print each step's formula as LaTeX")
    parser.add_argument(
        "--resolution",
        type=int,
        default=CHECK_RESOLUTION,
        help=f"grid points on the circle for the numeric check (default {CHECK_RESOLUTION})",
    )
    args = parser.parse_args(argv)
    if args.resolution < 8:
        parser.error(f"--resolution must be at least 8 grid points, got {args.resolution}")
    started = time.perf_counter()
    for derivation in (derive_binary_bound().derivation, derive_multiclass_bound().derivation):
        if args.latex:
            print(derivation.title)
            for number, step in enumerate(derivation.steps, start=1):
                print(f"{number:2d}. {step.explanation}\n      {step.latex}")
        else:
            print(derivation.as_text())
        print()
    check = numeric_cross_check(resolution=args.resolution)
    print(_check_report(check))
    if args.json:
        result = summary(check)
        result["seconds"] = round(time.perf_counter() - started, 3)
        print_json_summary(result)
    return 0 if check.agrees else 1
