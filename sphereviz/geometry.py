"""Decision regions, angular distances and the paper's criterion, on the circle and the sphere.

Pure numpy, no torch import: the margin formulas come from ``sphereviz.margins``, the loss
names, default margins and m ranges from ``sphereviz.losses.registry``. Angles and angular
margins are in radians everywhere.

**The decision rule.** A feature x lies in class i's "correctly classified with margin" region
when class i's margined target score beats every other class's plain score (SphereFace §3):

================  =====================================  ==================================
loss              target score of class i                plain score of class j
================  =====================================  ==================================
softmax           W_iᵀx + b_i (no margin: plain argmax)   W_jᵀx + b_j
modified-softmax  cos θ_i (no margin)                     cos θ_j
normface          cos θ_i (no margin; s is irrelevant)    cos θ_j
a-softmax         ψ(θ_i)                                  cos θ_j
l-softmax         ‖W_i‖ ψ(θ_i)                            ‖W_j‖ cos θ_j
cosface           cos θ_i − m   (s is irrelevant)         cos θ_j
arcface           cos(θ_i + m)  (s is irrelevant)         cos θ_j
sphereface-r      ψ_m(θ_i), real m ≥ 1 (s is irrelevant)  cos θ_j
================  =====================================  ==================================

SphereFace-R's ψ_m is A-Softmax's ψ for any real m (``losses.sphereface_r.real_psi_from_cos``);
ψ_m(θ) ≤ −1 beyond π/m, so its ψ rule is the boundary rule m·θ_i < θ_j, shown exactly.

**SphereFace2** has no softmax and no pairwise rule: class i *claims* x where
r·(g(cos θ_i) − m) + b > 0, g(c) = 2((c + 1)/2)^t − 1 (a cap of half-angle
``sphereface2_cap_angle`` round W_i), with r, b and t in a :class:`ClaimRule`. A point is in
class i's region when class i alone claims it; ``claim_counts`` says how many claim each
point, so the points that no class claims, or several, can be drawn as such.

For a-softmax/l-softmax, ``rule="psi"`` uses the real ψ of eq. (7) (integer m) and
``rule="boundary"`` the paper's idealised rule m·θ_i < θ_j (any real m ≥ 1), which is what
its boundary equations describe. For integer m the two rules give the same regions: ψ(θ) =
cos(mθ) while mθ ≤ π and ψ(θ) < −1 ≤ cos θ_j beyond, so ψ(θ_i) > cos θ_j ⇔ mθ_i < θ_j.
ArcFace uses the loss's fallback cos θ − m·sin m for θ ≥ π − m (``margins.arcface_target``,
the one formula the loss calls too), which keeps the target decreasing in θ; inside the
closed-form region it never applies.

**The criterion** (SphereFace §3.3, Definition of m_min): the maximal intra-class angle (the
span of one class's region, the largest angle between two of its points) is no larger than
the minimal inter-class angle (the smallest angle between points of two different regions).
Every region must be non-empty for it to hold.

Closed forms (binary case, uniformly spaced classes) and a dense-grid evaluation of the
decision rule give every number two ways; tests check they agree to grid resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sphereviz.losses.registry import LOSS_NAMES, MARGIN_FREE_LOSSES, check_margin
from sphereviz.losses.registry import canonical_loss_name as _resolve_loss_name
from sphereviz.margins import (
    annealed_psi,
    arcface_target,
    blend_with_cosine,
    cosface_target,
    initial_bias,
    real_psi_from_cos,
    similarity_adjustment,
)
from sphereviz.validation import check_choice, check_int, check_real

__all__ = [
    "AnnealedMargin",
    "CIRCLE_RESOLUTION",
    "CRITERION_TOLERANCE",
    "LOSS_NAMES",
    "margin_target",
    "CircleRegions",
    "ClaimRule",
    "ClosedFormRegion",
    "GridMeasures",
    "PairAngles",
    "SphereRegionAngles",
    "angles_to_class_weights",
    "annealed_margin",
    "angular_fisher_score",
    "binary_closed_form",
    "canonical_loss_name",
    "circle_points",
    "circle_regions",
    "default_rule",
    "claim_counts",
    "class_mean_directions",
    "classify_points",
    "FeatureCriterion",
    "effective_m",
    "equal_error_rate",
    "feature_criterion",
    "feature_summary",
    "fibonacci_sphere",
    "grid_measures",
    "min_pairwise_angle",
    "pair_angles",
    "project_to_sphere",
    "sphere_region_angles",
    "sphereface2_bias_for_cap",
    "sphereface2_cap_angle",
    "uniform_closed_form",
    "uniform_weight_angles",
    "unit_rows",
]

TWO_PI = 2.0 * math.pi
CIRCLE_RESOLUTION = 3600
"""Default number of grid points on the circle (0.1° apart)."""
CRITERION_TOLERANCE = 1e-9
"""Radians of slack in max intra ≤ min inter, so that exact equality (K = 3, m = 3) holds."""
_SAME_POINT = 1e-9

_MARGIN_FREE = MARGIN_FREE_LOSSES  # the names, default margins and m ranges: losses.registry
_RULES = ("psi", "boundary")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def canonical_loss_name(loss: str) -> str:
    """The canonical name of ``loss`` (case-insensitive, "_" for "-", the aliases of
    ``sphereviz.losses.registry``, the table ``losses.make_loss`` also uses)."""
    return _resolve_loss_name(loss, LOSS_NAMES)


def default_rule(loss: str, m) -> str:
    """The rule that shows ``m`` for ``loss``: "boundary" for A-/L-Softmax with a fractional m
    (the paper's m·θ_i < θ_j, since ψ needs an integer m), "psi" otherwise (for an integer m
    the two rules give the same regions). The one place that switch is made."""
    loss = canonical_loss_name(loss)
    fractional = m is not None and np.any(np.asarray(m, dtype=float) % 1 != 0)
    return "boundary" if loss in ("a-softmax", "l-softmax") and fractional else "psi"


def _margin_values(loss: str, m, rule: str) -> np.ndarray:
    """Validate m for ``loss`` and return it as a 1-D float array (m may be a scalar or 1-D).

    Each value is checked against the loss's range in ``losses.registry`` (None: its default
    margin); A-/L-Softmax take a fractional m >= 1 under ``rule="boundary"`` only.
    """
    check_choice("rule", rule, _RULES)
    if loss in _MARGIN_FREE:
        return np.zeros(1)
    hint = None
    if rule == "psi" and loss in ("a-softmax", "l-softmax"):
        hint = "use rule='boundary' (the paper's m·θ_i < θ_j) or CosFace/ArcFace for fractional m"
    if np.ndim(m) == 0:  # None (the default margin) or one number, of any numeric type
        return np.array([float(check_margin(loss, m, fractional=rule == "boundary", hint=hint))])
    values = np.asarray(m, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"m must be a number or a 1-D array of numbers, got {m!r}")
    for value in values:
        check_margin(loss, float(value), fractional=rule == "boundary", hint=hint)
    return values


def _as_matrix(values, name: str, columns: int | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be a 2-D array (rows are vectors), got shape {array.shape}")
    if columns is not None and array.shape[1] != columns:
        raise ValueError(
            f"{name} must have {columns} columns (the dimension of the other argument), "
            f"got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must contain only finite numbers")
    return array


def _row_norms(array: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(array, axis=1)
    if np.any(norms == 0):
        raise ValueError(
            f"{name} has zero-length rows (at {np.flatnonzero(norms == 0)[:5]}); "
            "an angle needs a direction"
        )
    return norms


def unit_rows(array) -> np.ndarray:
    """Each row of a 2-D ``array`` scaled to unit length: x ↦ x / ‖x‖₂.

    A zero row has no direction and stays the zero row (it is divided by 1, not by 0), so no
    NaN appears; use it where zero rows cannot occur or do not matter (plots). The checked
    statistics of this module refuse zero rows instead (``_checked_unit_rows``).
    """
    array = np.asarray(array, dtype=float)
    if array.ndim != 2:
        raise ValueError(
            f"unit_rows needs a 2-D array (one vector per row), got shape {array.shape}; "
            "for a single vector pass array[None, :]"
        )
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms > 0, norms, 1.0)


def _checked_unit_rows(array: np.ndarray, name: str) -> np.ndarray:
    """``unit_rows(array)``, refusing zero-length rows (an angle needs a direction)."""
    _row_norms(array, name)
    return unit_rows(array)


def _optional_vector(values, name: str, length: int, positive: bool = False) -> np.ndarray | None:
    if values is None:
        return None
    array = np.asarray(values, dtype=float)
    if array.shape != (length,) or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be {length} finite numbers (one per class), got {values!r}")
    if positive and np.any(array <= 0):
        raise ValueError(f"{name} must be > 0, got {values!r}")
    return array


def _check_labels(labels, count: int, num_classes: int | None = None) -> np.ndarray:
    array = np.asarray(labels)
    if array.shape != (count,):
        raise ValueError(f"labels must be a 1-D array of {count} class indices, got {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.all(array == np.round(array)):
            raise ValueError("labels must be integer class indices")
    array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise ValueError("labels must be class indices >= 0")
    if num_classes is not None and array.size and array.max() >= num_classes:
        raise ValueError(
            f"labels go up to {array.max()} but there are only {num_classes} class weights; "
            "labels must index the rows of class_weights"
        )
    return array


# --------------------------------------------------------------------------------------------
# SphereFace2's one-vs-all rule
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimRule:
    """SphereFace2's per-class rule besides m: scale r, shared bias b, exponent t of g.

    ``bias=None`` takes the loss's starting bias for the number of classes and m
    (``losses.sphereface2.initial_bias`` with α = ``alpha``), what an untrained model has.
    """

    scale: float = 40.0
    bias: float | None = None
    t: float = 3.0
    alpha: float = 0.7

    def __post_init__(self):
        check_real("ClaimRule.scale", self.scale, min=0, include_min=False)
        check_real("ClaimRule.t", self.t, min=1)
        check_real("ClaimRule.alpha", self.alpha, min=0, max=1, include_min=False,
                   include_max=False)  # fmt: skip
        if self.bias is not None:
            check_real("ClaimRule.bias", self.bias, finite=False, hint="or None for b₀")

    def bias_for(self, num_classes: int, m: float) -> float:
        """b, or the closed-form starting bias of SphereFace2 when ``bias`` is None."""
        if self.bias is not None:
            return float(self.bias)
        return initial_bias(num_classes, m, self.scale, self.alpha, self.t)


def sphereface2_cap_angle(m: float, scale: float, bias: float, t: float) -> float:
    """Half-angle of the cap a SphereFace2 class claims: r·(g(cos θ) − m) + b > 0 ⇔ θ < φ.

    g(c) = 2((c + 1)/2)^t − 1 is increasing, so the cap is cos θ > c*,
    c* = 2·((1 + m − b/r)/2)^{1/t} − 1; φ = acos(c*), 0 when no point is claimed (c* ≥ 1) and
    π when every point is (1 + m − b/r ≤ 0).
    """
    level = (1.0 + m - bias / scale) / 2.0
    if level <= 0.0:
        return math.pi
    threshold = 2.0 * level ** (1.0 / t) - 1.0
    if threshold >= 1.0:
        return 0.0
    return math.acos(max(threshold, -1.0))


def sphereface2_bias_for_cap(cap_angle: float, m: float, scale: float = 40.0, t: float = 3.0):
    """The bias b whose caps have half-angle ``cap_angle`` (radians): b = r·(m − g(cos φ)),
    the inverse of ``sphereface2_cap_angle``."""
    if not 0.0 < cap_angle < math.pi:
        raise ValueError(f"cap_angle must be in (0, π) radians, got {cap_angle!r}")
    return scale * (m - (2.0 * ((math.cos(cap_angle) + 1.0) / 2.0) ** t - 1.0))


def claim_counts(points, weights, m=None, claim_rule: ClaimRule | None = None) -> np.ndarray:
    """SphereFace2's claims: a boolean (N, K), True where class k claims point n.

    Class k claims x where r·(g(cos θ_k) − m) + b > 0 (directions only, any dimension);
    ``claims.sum(1)`` is how many classes claim each point (0: none, ≥ 2: contested).
    """
    margin = float(_margin_values("sphereface2", m, "psi")[0])
    rule = ClaimRule() if claim_rule is None else claim_rule
    weights = _as_matrix(weights, "weights")
    points = _as_matrix(points, "points", columns=weights.shape[1])
    unit_points = _checked_unit_rows(points, "points")
    unit_weights = _checked_unit_rows(weights, "weights")
    cos = np.clip(unit_points @ unit_weights.T, -1.0, 1.0)
    adjusted = 2.0 * ((cos + 1.0) / 2.0) ** rule.t - 1.0
    bias = rule.bias_for(weights.shape[0], margin)
    return rule.scale * (adjusted - margin) + bias > 0


# --------------------------------------------------------------------------------------------
# The decision rule, in any dimension
# --------------------------------------------------------------------------------------------


def classify_points(
    points,
    weights,
    loss: str = "a-softmax",
    m=None,
    *,
    rule: str = "psi",
    biases=None,
    annealing_lambda: float = 0.0,
    claim_rule: ClaimRule | None = None,
) -> np.ndarray:
    """The class whose margin region contains each point, or −1 where no class's does.

    ``points`` (N, d) and ``weights`` (K, d) in any dimension d. For softmax the points and
    weights are used as given (‖x‖ and ‖W_j‖ matter, plus ``biases``); l-softmax uses ‖W_j‖;
    every other loss uses directions only. ``m`` defaults to the paper's value (A-Softmax 4,
    CosFace 0.35, ArcFace 0.5 rad) and is ignored for the margin-free losses. ``m`` may also be
    a 1-D array: the result is then (len(m), N), one row per margin, computed in one pass.

    Only the plain-score winner w can win with margin (every target is ≤ its plain score),
    so the rule reduces to: target_w > max_{j≠w} plain_j. A-Softmax/L-Softmax with
    ``annealing_lambda`` = λ > 0 use the trained target (λ cos θ + ψ(θ))/(1 + λ).
    SphereFace2 (``claim_rule``: r, b, t) gives the class that alone claims the point, −1
    where none or several do (``claim_counts`` tells those apart).
    """
    loss = canonical_loss_name(loss)
    if claim_rule is not None and loss != "sphereface2":
        raise ValueError(f"claim_rule is SphereFace2's rule; {loss} does not take it")
    margins = _margin_values(loss, m, rule)
    weights = _as_matrix(weights, "weights")
    points = _as_matrix(points, "points", columns=weights.shape[1])
    if weights.shape[0] < 2:
        raise ValueError(f"need at least 2 class weights, got {weights.shape[0]}")
    check_real("annealing_lambda", annealing_lambda, min=0)
    if annealing_lambda > 0 and loss not in ("a-softmax", "l-softmax"):
        raise ValueError(
            "annealing_lambda must be >= 0 and applies to a-softmax and l-softmax only, "
            f"got {annealing_lambda!r} for {loss}"
        )
    biases = _optional_vector(biases, "biases", weights.shape[0])
    if biases is not None and loss != "softmax" and np.any(biases != 0):
        raise ValueError(f"biases only exist in softmax; {loss} has b = 0 (pass biases=None)")
    if loss == "sphereface2":
        rows = []
        for margin in _margin_values(loss, m, rule):
            claims = claim_counts(points, weights, margin, claim_rule)
            rows.append(np.where(claims.sum(1) == 1, np.argmax(claims, 1), -1).astype(np.int64))
        return rows[0] if np.ndim(m) == 0 else np.stack(rows)
    weight_norms = _row_norms(weights, "weights")
    cos = np.zeros((points.shape[0], weights.shape[0]))
    if loss == "softmax":
        plain = points @ weights.T + (0.0 if biases is None else biases)
    else:
        unit_points = _checked_unit_rows(points, "points")
        cos = np.clip(unit_points @ (weights / weight_norms[:, None]).T, -1.0, 1.0)
        plain = cos * weight_norms if loss == "l-softmax" else cos
    labels = _margin_winner(plain, cos, weight_norms, loss, margins, rule, annealing_lambda)
    if np.ndim(m) == 0:
        return labels[0]
    return np.repeat(labels, np.size(m), axis=0) if loss in _MARGIN_FREE else labels


def _margin_winner(plain, cos, weight_norms, loss, margins, rule, annealing_lambda):
    rows = np.arange(plain.shape[0])
    winner = np.argmax(plain, axis=1)
    others = plain.copy()
    others[rows, winner] = -np.inf
    runner_up = others.max(axis=1)
    if loss in _MARGIN_FREE:
        wins = (plain[rows, winner] > runner_up)[None, :]
    elif loss == "a-softmax" and rule == "boundary" and annealing_lambda == 0:
        # cos(min(mθ_w, π)) > cos θ_r  ⇔  mθ_w < θ_r: compare angles, no cosine per margin
        wins = margins[:, None] * np.arccos(cos[rows, winner]) < np.arccos(runner_up)
    else:
        target = _margin_target(cos[rows, winner], loss, margins, rule, annealing_lambda)
        if loss == "l-softmax":
            target = target * weight_norms[winner]
        wins = target > runner_up
    return np.where(wins, winner, -1).astype(np.int64)


def margin_target(theta, loss: str = "a-softmax", m=None, annealing_lambda: float = 0.0,
                  *, rule: str = "psi") -> np.ndarray:  # fmt: skip
    """The margined target score f(θ) per unit ‖x‖ (or s) of ``loss``, as the regions use it.

    cos θ for the margin-free losses; A-/L-Softmax (λ cos θ + ψ(θ))/(1 + λ) (the boundary
    rule: cos(min(mθ, π)) in place of ψ); CosFace cos θ − m; ArcFace cos(θ + m), and past
    θ = π − m the loss's fallback cos θ − m·sin m, which keeps the target decreasing;
    SphereFace-R ψ_m(θ), real m; SphereFace2 g(cos θ) − m with t = 3 (its true-class logit
    per unit r, without the bias b: the class claims θ where this exceeds −b/r).
    """
    loss = canonical_loss_name(loss)
    margins = _margin_values(loss, m, rule)
    cos_theta = np.cos(np.asarray(theta, dtype=float))
    if loss in _MARGIN_FREE:
        return cos_theta
    if loss == "sphereface2":
        return similarity_adjustment(cos_theta, ClaimRule().t) - margins[0]
    flat = _margin_target(cos_theta.ravel(), loss, margins, rule, annealing_lambda)[0]
    return flat.reshape(cos_theta.shape)


def _margin_target(cos_winner, loss, margins, rule, annealing_lambda) -> np.ndarray:
    """The margined target score f(θ) for every margin (rows) and point (columns)."""
    m = margins[:, None]
    if loss == "cosface":
        return cosface_target(cos_winner, m)
    if loss == "arcface":
        return arcface_target(cos_winner, m)
    if loss == "sphereface-r":
        return np.stack([real_psi_from_cos(cos_winner, value) for value in margins])
    theta = np.arccos(cos_winner)
    if rule == "boundary":
        return blend_with_cosine(np.cos(np.minimum(m * theta, math.pi)), cos_winner,
                                 annealing_lambda)  # fmt: skip
    return np.stack([annealed_psi(theta, int(value), annealing_lambda) for value in margins])


# --------------------------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClosedFormRegion:
    """One class's margin region in closed form, relative to its own weight at angle 0.

    Binary case: the other weight is at +θ₁₂ and the other class's region is the mirror image
    [θ₁₂ − end, θ₁₂ − start]. Uniform case: the neighbours are at ±2π/K and the region is
    symmetric, start = −end. ``case`` is "first" (θ₁₂ ≤ (m−1)π/m), "wrapped" (the far edge is
    bounded by W₂ measured the other way round), "uniform", or "empty" (no region: start, end
    and the angles are NaN and the criterion fails).
    """

    start: float
    end: float
    max_intra_class_angle: float
    min_inter_class_angle: float
    case: str

    @property
    def criterion_holds(self) -> bool:
        """max intra-class angle ≤ min inter-class angle (False for an empty region)."""
        if self.case == "empty":
            return False
        return self.max_intra_class_angle <= self.min_inter_class_angle + CRITERION_TOLERANCE


_EMPTY = ClosedFormRegion(math.nan, math.nan, math.nan, math.nan, "empty")


def _closed_form_margin(loss: str, m) -> float:
    loss = canonical_loss_name(loss)
    if loss == "softmax":
        raise ValueError(
            "softmax has a closed form only with equal weight norms and no biases, where it is "
            "modified softmax: pass loss='modified-softmax'"
        )
    if loss in _MARGIN_FREE:
        return 0.0
    if loss == "sphereface2":
        raise ValueError(
            "SphereFace2 has no pairwise closed form: each class claims a cap on its own "
            "(sphereface2_cap_angle); use circle_regions(..., method='grid')"
        )
    return float(_margin_values(loss, m, "boundary")[0])


def binary_closed_form(theta12: float, loss: str = "a-softmax", m=None) -> ClosedFormRegion:
    """Class 1's region for two classes whose weights are θ₁₂ apart (0 < θ₁₂ ≤ π), exactly.

    A-Softmax (SphereFace §3.3, Property 2; any real m ≥ 1 under the boundary rule, identical
    to the ψ rule for integer m): the region reaches θ₁₂/(m+1) towards W₂ (mφ = θ₁₂ − φ) and
    θ₁₂/(m−1) away from it (mφ = θ₁₂ + φ) while θ₁₂ ≤ (m−1)π/m; beyond that the far side wraps
    and reaches (2π − θ₁₂)/(m+1). Max intra = the sum of the two; min inter = (m−1)θ₁₂/(m+1).
    Modified softmax/NormFace are m = 1 (half circles, no gap).

    CosFace: cos φ − m > cos(φ − θ₁₂) ⇔ 2 sin(θ₁₂/2) sin(θ₁₂/2 − φ) > m, so with
    q = m / (2 sin(θ₁₂/2)) < 1 the region is (θ₁₂/2 − π + asin q, θ₁₂/2 − asin q): span
    π − 2 asin q, gap 2 asin q. ArcFace: θ₁ + m < θ₂ gives ((θ₁₂ + m)/2 − π, (θ₁₂ − m)/2) for
    θ₁₂ > m: span π − m, gap m.
    """
    theta12 = _check_angle(theta12, "theta12")
    margin = _closed_form_margin(loss, m)
    loss = canonical_loss_name(loss)
    if loss in ("cosface", "arcface"):
        if loss == "cosface":
            q = margin / (2.0 * math.sin(theta12 / 2.0))
            if q >= 1.0:
                return _EMPTY
            half_gap = math.asin(q)
        else:
            if theta12 <= margin:
                return _EMPTY
            half_gap = margin / 2.0
        start, end = theta12 / 2.0 - math.pi + half_gap, theta12 / 2.0 - half_gap
        return ClosedFormRegion(start, end, end - start, 2.0 * half_gap, "first")
    m = 1.0 if loss in _MARGIN_FREE else margin
    toward = theta12 / (m + 1.0)
    if m > 1.0 and theta12 <= (m - 1.0) * math.pi / m:
        away, case = theta12 / (m - 1.0), "first"
    else:
        away, case = (TWO_PI - theta12) / (m + 1.0), "wrapped"
    return ClosedFormRegion(-away, toward, toward + away, (m - 1.0) * theta12 / (m + 1.0), case)


def uniform_closed_form(num_classes: int, loss: str = "a-softmax", m=None) -> ClosedFormRegion:
    """Each class's region when K weights are uniformly spaced on the circle (θ = 2π/K).

    Each side of class i's region is bounded by its nearest neighbour (SphereFace Property 3):
    A-Softmax reaches θ/(m+1) each side, so the span is 2θ/(m+1) and the gap between
    neighbours (m−1)θ/(m+1). CosFace reaches e = θ/2 − asin(m / (2 sin(θ/2))), ArcFace
    e = (θ − m)/2 (gap m); the region is empty when e ≤ 0. K = 2 is the binary case θ₁₂ = π.
    """
    check_int("num_classes", num_classes, min=2)
    theta = TWO_PI / num_classes
    margin = _closed_form_margin(loss, m)
    loss = canonical_loss_name(loss)
    if loss == "cosface":
        q = margin / (2.0 * math.sin(theta / 2.0))
        half_width = theta / 2.0 - math.asin(q) if q < 1.0 else 0.0
    elif loss == "arcface":
        half_width = (theta - margin) / 2.0
    else:
        half_width = theta / ((1.0 if loss in _MARGIN_FREE else margin) + 1.0)
    if half_width <= 0.0:
        return _EMPTY
    return ClosedFormRegion(
        -half_width, half_width, 2.0 * half_width, theta - 2.0 * half_width, "uniform"
    )


def _check_angle(theta12, name: str) -> float:
    """The angle between two weights, in (0, π] radians."""
    return check_real(
        f"{name} (the angle between two weights, in radians)", theta12, min=0, max=math.pi,
        include_min=False, hint="for degrees pass math.radians(...)",
    )  # fmt: skip


def uniform_weight_angles(num_classes: int, offset: float = 0.0) -> np.ndarray:
    """K weight angles uniformly spaced on the circle: offset + 2πk/K."""
    check_int("num_classes", num_classes, min=2)
    return np.mod(offset + TWO_PI * np.arange(num_classes) / num_classes, TWO_PI)


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


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array)
    array.setflags(write=False)
    return array


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
    angles = np.asarray(weight_angles, dtype=float)
    if angles.ndim != 1 or angles.size < 2 or not np.all(np.isfinite(angles)):
        raise ValueError(
            f"weight_angles must be >= 2 finite angles in radians, got {weight_angles!r}"
        )
    angles = np.mod(angles, TWO_PI)
    num_classes = angles.size
    norms = _optional_vector(weight_norms, "weight_norms", num_classes, positive=True)
    norms = np.ones(num_classes) if norms is None else norms
    check_real("radius (the feature norm ‖x‖)", radius, min=0, include_min=False)
    check_choice("method", method, ("auto", "closed-form", "grid"))
    grid_angles = _grid_angles(resolution)
    weights = norms[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = classify_points(
        circle_points(resolution, radius),
        weights,
        loss,
        m,
        rule=rule,
        biases=biases,
        annealing_lambda=annealing_lambda,
        claim_rule=claim_rule,
    )
    margin = None if loss in _MARGIN_FREE else float(_margin_values(loss, m, rule)[0])
    contested, counts = (), None
    if loss == "sphereface2":
        counts = claim_counts(circle_points(resolution), weights, margin, claim_rule).sum(1)
        (contested_runs,) = _runs_per_row(np.where(counts >= 2, 0, -1)[None, :])
        contested = tuple(
            (start, start + length)
            for start, length in _arcs_from_runs(contested_runs, resolution, 1)[0]
        )
    if loss == "sphereface2" and method == "closed-form":
        raise ValueError(
            "SphereFace2 has no closed form for its regions on the circle; use method='grid'"
        )
    closed = None
    if method != "grid" and loss != "sphereface2":
        closed = _closed_form_arcs(angles, loss, margin, norms, biases, annealing_lambda)
        if closed is None and method == "closed-form":
            raise ValueError(
                "no closed form for this configuration: it needs 2 classes or uniformly spaced "
                "weights, equal weight norms, no biases and no annealing; use method='grid'"
            )
    touching = 0.0
    if closed is not None:
        region, arcs = closed
        spans = [region.max_intra_class_angle if class_arcs else math.nan for class_arcs in arcs]
        max_intra, min_inter = region.max_intra_class_angle, region.min_inter_class_angle
        source = "closed-form"
    else:
        (runs,) = _runs_per_row(labels[None, :])
        arcs = _arcs_from_runs(runs, resolution, num_classes)
        spans = [_span(class_arcs) for class_arcs in arcs]
        touching = _grid_touching(resolution)
        gap_angles = [gap for *_, gap in _neighbour_gaps(arcs, touching)]
        max_intra = max((s for s in spans if not math.isnan(s)), default=math.nan)
        min_inter = min(gap_angles, default=math.inf)
        source = "grid"
    inter = np.zeros((num_classes, num_classes))
    for i in range(num_classes):
        for j in range(i + 1, num_classes):
            distance = _set_distance(arcs[i], arcs[j])
            inter[i, j] = inter[j, i] = 0.0 if distance <= touching else distance
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


def _closed_form_arcs(angles, loss, margin, norms, biases, annealing_lambda):
    """(ClosedFormRegion, arcs per class) when a closed form applies, else None."""
    if annealing_lambda > 0 or not np.allclose(norms, norms[0], rtol=1e-12, atol=0):
        return None
    if loss == "softmax":
        if biases is not None and np.any(np.asarray(biases) != 0):
            return None
        loss = "modified-softmax"
    if loss in ("l-softmax", "sphereface-r"):  # SphereFace-R's ψ rule is mθ_i < θ_j, exactly
        loss = "a-softmax"
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
# The sphere (any dimension)
# --------------------------------------------------------------------------------------------


def fibonacci_sphere(num_points: int) -> np.ndarray:
    """``num_points`` nearly uniform unit vectors on S² (the Fibonacci / golden-angle lattice).

    Point k: z_k = 1 − (2k + 1)/n, azimuth k·π(3 − √5); every point covers area 4π/n.
    """
    check_int("num_points", num_points, min=1)
    index = np.arange(num_points)
    z = 1.0 - (2.0 * index + 1.0) / num_points
    azimuth = index * math.pi * (3.0 - math.sqrt(5.0))
    ring = np.sqrt(1.0 - z * z)
    return np.stack([ring * np.cos(azimuth), ring * np.sin(azimuth), z], axis=1)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not objects
class SphereRegionAngles:
    """Max intra-class angle per class (NaN if empty) and the min inter-class angle, radians."""

    max_intra_class_angles: np.ndarray
    min_inter_class_angle: float

    @property
    def criterion_holds(self) -> bool:
        spans = self.max_intra_class_angles
        if np.any(np.isnan(spans)):
            return False
        return bool(spans.max() <= self.min_inter_class_angle + CRITERION_TOLERANCE)


def sphere_region_angles(
    points, labels, num_classes: int, chunk_size: int = 2048
) -> SphereRegionAngles:
    """The criterion's numbers for labelled sample points on a sphere of any dimension.

    Brute force over all pairs of labelled points (label −1 is ignored), in row chunks so the
    memory stays at chunk_size × N. With dense samples (``fibonacci_sphere``) this estimates
    the regions' spans and gaps from the inside, like ``grid_measures`` on the circle.
    """
    points = _as_matrix(points, "points")
    labels = np.asarray(labels)
    if labels.shape != (points.shape[0],):
        raise ValueError(f"labels must have one entry per point, got shape {labels.shape}")
    keep = labels >= 0
    unit = _checked_unit_rows(points[keep], "points") if keep.any() else points[:0]
    kept_labels = labels[keep].astype(np.int64)
    largest = np.full(num_classes, np.nan)
    smallest_inter = math.inf
    for begin in range(0, unit.shape[0], chunk_size):
        block = np.clip(unit[begin : begin + chunk_size] @ unit.T, -1.0, 1.0)
        block_labels = kept_labels[begin : begin + chunk_size]
        same = block_labels[:, None] == kept_labels[None, :]
        if (~same).any():
            smallest_inter = min(smallest_inter, float(np.arccos(block[~same].max())))
        lowest_same = np.where(same, block, np.inf).min(axis=1)
        for label in np.unique(block_labels):
            angle = float(np.arccos(lowest_same[block_labels == label].min()))
            largest[label] = np.fmax(largest[label], angle)
    return SphereRegionAngles(_frozen(largest), smallest_inter)


# --------------------------------------------------------------------------------------------
# Statistics of learned features (any dimension)
# --------------------------------------------------------------------------------------------


def _features_and_labels(features, labels, num_classes: int | None = None):
    features = _as_matrix(features, "features")
    labels = _check_labels(labels, features.shape[0], num_classes)
    unit = _checked_unit_rows(features, "features")
    return features, unit, labels


def angles_to_class_weights(features, labels, class_weights) -> tuple[np.ndarray, np.ndarray]:
    """Per feature: the angle θ_y to its own class weight and the angle to the nearest other.

    Returns (own, nearest_other), radians, each (N,). θ_j = arccos(x·W_j / (‖x‖‖W_j‖)).
    """
    weights = _as_matrix(class_weights, "class_weights")
    if weights.shape[0] < 2:
        raise ValueError("class_weights needs at least 2 rows (one per class)")
    features, unit, labels = _features_and_labels(features, labels, weights.shape[0])
    if features.shape[1] != weights.shape[1]:
        raise ValueError(
            f"features have dimension {features.shape[1]} but class_weights {weights.shape[1]}"
        )
    unit_weights = _checked_unit_rows(weights, "class_weights")
    angles = np.arccos(np.clip(unit @ unit_weights.T, -1.0, 1.0))
    rows = np.arange(labels.size)
    own = angles[rows, labels]
    others = angles.copy()
    others[rows, labels] = np.inf
    return own, others.min(axis=1)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not objects
class PairAngles:
    """Angles (radians) between pairs of features of the same / of different classes.

    ``exhaustive`` is True when every pair is included; otherwise each kind holds
    ``max_pairs`` pairs drawn uniformly, with replacement, from the pairs of that kind.
    """

    same_class: np.ndarray
    different_class: np.ndarray
    exhaustive: bool


def pair_angles(features, labels, *, max_pairs: int = 100_000, seed: int = 0) -> PairAngles:
    """Same-class and different-class pair angles, for the paper's angle histograms (Fig. 5).

    All N(N−1)/2 pairs when there are at most ``max_pairs`` of them; otherwise ``max_pairs``
    same-class and ``max_pairs`` different-class pairs sampled uniformly with a fixed ``seed``
    (so the result is deterministic).
    """
    check_int("max_pairs", max_pairs, min=1)
    _, unit, labels = _features_and_labels(features, labels)
    count = labels.size
    if count * (count - 1) // 2 <= max_pairs:
        first, second = np.triu_indices(count, k=1)
        angles = _pair_angle(unit, first, second)
        same = labels[first] == labels[second]
        return PairAngles(_frozen(angles[same]), _frozen(angles[~same]), True)
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    classes, class_start, class_size = np.unique(
        labels[order], return_index=True, return_counts=True
    )
    same_pairs = class_size * (class_size - 1)
    if same_pairs.sum() > 0:
        chosen = rng.choice(classes.size, size=max_pairs, p=same_pairs / same_pairs.sum())
        size, start = class_size[chosen], class_start[chosen]
        first = rng.integers(0, size)
        second = rng.integers(0, size - 1)
        second = second + (second >= first)  # a different member of the same class
        same_angles = _pair_angle(unit, order[start + first], order[start + second])
    else:
        same_angles = np.empty(0)
    class_of = np.searchsorted(classes, labels)
    others_count = count - class_size[class_of]
    if others_count.sum() > 0:
        first = rng.choice(count, size=max_pairs, p=others_count / others_count.sum())
        own = class_of[first]
        rank = rng.integers(0, others_count[first])
        rank = rank + np.where(rank >= class_start[own], class_size[own], 0)  # skip own class
        different_angles = _pair_angle(unit, first, order[rank])
    else:
        different_angles = np.empty(0)
    return PairAngles(_frozen(same_angles), _frozen(different_angles), False)


def _pair_angle(unit: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    return np.arccos(np.clip(np.einsum("ij,ij->i", unit[first], unit[second]), -1.0, 1.0))


def angular_fisher_score(features, labels) -> float:
    """Angular Fisher Score (SphereFace appendix), lower is better: AFS = S_w / S_b.

    S_w = Σ_i Σ_{x∈X_i} (1 − cos⟨x, μ_i⟩),  S_b = Σ_i n_i (1 − cos⟨μ_i, μ⟩), with μ_i the mean
    of class i's features and μ the mean of all features (means of the features as given, not
    of their unit vectors). Returns NaN when μ or a μ_i is the zero vector (cosine undefined),
    and inf when S_b = 0 (all class means point the same way).
    """
    features, unit, labels = _features_and_labels(features, labels)
    overall = features.mean(axis=0)
    classes, class_of, counts = np.unique(labels, return_inverse=True, return_counts=True)
    means = np.zeros((classes.size, features.shape[1]))
    np.add.at(means, class_of, features)
    means /= counts[:, None]
    scale = np.abs(features).max()
    mean_norms = np.linalg.norm(means, axis=1)
    if np.linalg.norm(overall) <= 1e-12 * scale or np.any(mean_norms <= 1e-12 * scale):
        return math.nan
    unit_means = means / mean_norms[:, None]
    within = float(np.sum(1.0 - np.einsum("ij,ij->i", unit, unit_means[class_of])))
    between = float(np.sum(counts * (1.0 - unit_means @ (overall / np.linalg.norm(overall)))))
    return math.inf if between <= 0 else within / between


def class_mean_directions(features, labels) -> tuple[np.ndarray, np.ndarray]:
    """(classes present, unit vector of each class's mean feature), sorted by class."""
    features, _, labels = _features_and_labels(features, labels)
    classes, class_of, counts = np.unique(labels, return_inverse=True, return_counts=True)
    means = np.zeros((classes.size, features.shape[1]))
    np.add.at(means, class_of, features)
    norms = np.linalg.norm(means, axis=1)
    directions = np.where(norms[:, None] > 0, means / np.maximum(norms, 1e-300)[:, None], np.nan)
    return classes, directions


def min_pairwise_angle(vectors) -> float:
    """The smallest angle between two distinct rows of ``vectors`` (radians; NaN rows skipped)."""
    vectors = np.asarray(vectors, dtype=float)
    vectors = vectors[np.all(np.isfinite(vectors), axis=1)]
    if vectors.shape[0] < 2:
        return math.nan
    unit = _checked_unit_rows(vectors, "vectors")
    cos = np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(cos, -np.inf)
    return float(np.arccos(cos.max()))


def equal_error_rate(scores, same) -> float:
    """The rate where false accepts equal false rejects (FAR = 1 − TAR) of a score that is
    larger for "same" pairs; linear interpolation on the ROC curve (scikit-learn's)."""
    from scipy.optimize import brentq
    from sklearn.metrics import roc_curve

    same = np.asarray(same, dtype=bool)
    if same.all() or not same.any():
        raise ValueError("an equal error rate needs both same-class and different-class pairs")
    fpr, tpr, _ = roc_curve(same, np.asarray(scores, dtype=float))
    return float(brentq(lambda x: 1.0 - x - np.interp(x, fpr, tpr), 0.0, 1.0))


@dataclass(frozen=True)
class FeatureCriterion:
    """The paper's criterion measured on features (radians), exactly and robustly.

    - ``max_intra_class_angle``: the largest angle between two features of one class;
    - ``min_inter_class_angle``: the smallest angle between features of two classes (the
      criterion holds when max intra ≤ min inter: every class fits in a cone that no other
      class's feature enters);
    - ``intra_class_angle_high`` / ``inter_class_angle_low``: the ``percentile``-th highest
      same-class and lowest different-class pair angle, the same test without its outliers;
    - ``median_same_class_angle``, ``median_different_class_angle``;
    - ``pair_angle_eer``: the equal error rate of "same class ⇔ angle < t" over the pairs.
    """

    max_intra_class_angle: float
    min_inter_class_angle: float
    intra_class_angle_high: float
    inter_class_angle_low: float
    median_same_class_angle: float
    median_different_class_angle: float
    pair_angle_eer: float
    percentile: float

    @property
    def criterion_holds(self) -> bool:
        return self.max_intra_class_angle <= self.min_inter_class_angle

    @property
    def robust_criterion_holds(self) -> bool:
        return self.intra_class_angle_high <= self.inter_class_angle_low


def feature_criterion(
    features, labels, *, percentile: float = 5.0, max_pairs: int = 200_000, seed: int = 0
) -> FeatureCriterion:
    """Max intra / min inter over **all** pairs (in blocks), percentiles, medians and EER over
    the pairs of ``pair_angles`` (all of them, or ``max_pairs`` of each kind, seeded)."""
    check_real("percentile", percentile, min=0, max=50, include_min=False, include_max=False)
    _, unit, labels = _features_and_labels(features, labels)
    if np.unique(labels).size < 2 or np.bincount(labels).max() < 2:
        raise ValueError("the criterion needs two classes and a class with two features")
    max_intra, min_inter = 0.0, math.pi
    for start in range(0, labels.size, 2048):
        block = slice(start, start + 2048)
        cos = np.clip(unit[block] @ unit.T, -1.0, 1.0)
        same = labels[block, None] == labels[None, :]
        same[np.arange(cos.shape[0]), np.arange(start, start + cos.shape[0])] = False
        different = labels[block, None] != labels[None, :]
        if same.any():
            max_intra = max(max_intra, float(np.arccos(cos[same].min())))
        min_inter = min(min_inter, float(np.arccos(cos[different].max())))
    pairs = pair_angles(unit, labels, max_pairs=max_pairs, seed=seed)
    angles = np.concatenate([pairs.same_class, pairs.different_class])
    is_same = np.concatenate([np.ones(pairs.same_class.size, bool),
                              np.zeros(pairs.different_class.size, bool)])  # fmt: skip
    return FeatureCriterion(
        max_intra_class_angle=max_intra,
        min_inter_class_angle=min_inter,
        intra_class_angle_high=float(np.percentile(pairs.same_class, 100 - percentile)),
        inter_class_angle_low=float(np.percentile(pairs.different_class, percentile)),
        median_same_class_angle=float(np.median(pairs.same_class)),
        median_different_class_angle=float(np.median(pairs.different_class)),
        pair_angle_eer=equal_error_rate(-angles, is_same),
        percentile=float(percentile),
    )


def feature_summary(features, labels, class_weights) -> dict:
    """Headline statistics of learned embeddings: one name for each quantity, used everywhere.

    Angles in degrees, on the features as given (a test split):

    - ``mean_angle_to_own_class_deg``: the mean of θ_y, the angle to the own class weight W_y;
    - ``mean_angle_to_nearest_other_class_deg``: the mean angle to the nearest other weight;
    - ``median_same_class_angle_deg``: the median angle between two features of one class;
    - ``max_intra_class_angle_deg`` / ``min_inter_class_angle_deg``: the paper's criterion
      on the features (``feature_criterion``), with ``criterion_holds``;
    - ``intra_class_angle_p95_deg`` / ``inter_class_angle_p5_deg``: the same without the
      outliers (95th percentile of same-class pairs, 5th of different-class pairs), with
      ``robust_criterion_holds``;
    - ``pair_angle_eer``: the equal error rate of thresholding pair angles;
    - ``min_class_mean_angle_deg``: the smallest angle between the mean directions of two
      classes (the centres the features form), ``min_class_weight_angle_deg`` the same
      between the class weights;
    - ``angular_fisher_score`` (lower is better), ``nearest_weight_accuracy``.
    """
    own, nearest_other = angles_to_class_weights(features, labels, class_weights)
    labels = np.asarray(labels).astype(np.int64)
    weights = np.asarray(class_weights, dtype=float)
    _, directions = class_mean_directions(features, labels)
    criterion = feature_criterion(features, labels)
    return {
        "mean_angle_to_own_class_deg": float(np.degrees(own.mean())),
        "mean_angle_to_nearest_other_class_deg": float(np.degrees(nearest_other.mean())),
        "median_same_class_angle_deg": math.degrees(criterion.median_same_class_angle),
        "max_intra_class_angle_deg": math.degrees(criterion.max_intra_class_angle),
        "min_inter_class_angle_deg": math.degrees(criterion.min_inter_class_angle),
        "criterion_holds": criterion.criterion_holds,
        "intra_class_angle_p95_deg": math.degrees(criterion.intra_class_angle_high),
        "inter_class_angle_p5_deg": math.degrees(criterion.inter_class_angle_low),
        "robust_criterion_holds": criterion.robust_criterion_holds,
        "pair_angle_eer": criterion.pair_angle_eer,
        "min_class_mean_angle_deg": float(np.degrees(min_pairwise_angle(directions))),
        "min_class_weight_angle_deg": float(np.degrees(min_pairwise_angle(weights))),
        "angular_fisher_score": float(angular_fisher_score(features, labels)),
        "nearest_weight_accuracy": float(np.mean(own < nearest_other)),
        "num_samples": int(labels.size),
        "num_classes": int(weights.shape[0]),
    }


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
            f"{features.shape}; 2-D features go on the circle (plots.plot_features_2d)"
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
            unit_rows(features),
            None if weights is None else unit_rows(weights),
            description,
        )
    from sklearn.decomposition import PCA  # imported here: it takes seconds, and few plots need it

    unit_features = unit_rows(features)
    pca = PCA(n_components=dim, svd_solver="full").fit(unit_features)
    axes = pca.components_
    description = f"PCA {features.shape[1]}-D → {dim}-D, normalised"
    projected_weights = None if weights is None else unit_rows(weights @ axes.T)
    return unit_rows(unit_features @ axes.T), projected_weights, description


# --------------------------------------------------------------------------------------------
# The margin under annealing: reach, gap and the effective m
# --------------------------------------------------------------------------------------------

_REACH_GRID = 4097
"""Points on [0, π] at which the first crossing of the decision rule is bracketed."""


@dataclass(frozen=True)
class AnnealedMargin:
    """The margin that a loss trains, for K classes whose weights are θ₁₂ apart (radians).

    The weights sit at 0, θ₁₂, 2θ₁₂, …, (K−1)θ₁₂ (K = 2: the binary case of Property 2;
    K·θ₁₂ = 2π: uniformly spaced, Property 3). Class i's region is where its target score
    f(θ_i) beats every other class's cos θ_j; for A-Softmax under annealing f is the trained
    (λ cos θ + ψ(θ))/(1 + λ) (``margins.blend_with_cosine``).

    - ``reach``: how far class 0's region reaches toward its neighbour at θ₁₂.
    - ``effective_m``: the real m whose pure A-Softmax region reaches as far,
      θ₁₂/(m_eff + 1) = reach (m = 4, λ = 5, θ₁₂ = 90°: 1.617; λ = 0: 4).
    - ``gap``: the narrowest stretch between neighbouring regions, the paper's angular margin
      and its min inter-class angle (binary: θ₁₂ − 2·reach).
    - ``max_intra``: the largest span of a region (its max intra-class angle); the criterion
      holds when max_intra ≤ gap and every region is non-empty.
    """

    loss: str
    m: float | None
    annealing_lambda: float
    theta12: float
    num_classes: int
    reach: float
    effective_m: float
    gap: float
    max_intra: float
    criterion_holds: bool

    @property
    def min_inter(self) -> float:
        """The min inter-class angle: the same number as ``gap``."""
        return self.gap

    def summary_degrees(self) -> dict:
        """Every number of the result, angles in degrees, for ``--json`` and widgets."""
        return {
            "loss": self.loss,
            "m": self.m,
            "lambda": self.annealing_lambda,
            "theta12_deg": math.degrees(self.theta12),
            "classes": self.num_classes,
            "reach_deg": math.degrees(self.reach),
            "gap_deg": math.degrees(self.gap),
            "effective_m": self.effective_m,
            "max_intra_deg": math.degrees(self.max_intra),
            "min_inter_deg": math.degrees(self.min_inter),
            "criterion_holds": bool(self.criterion_holds),
        }


def annealed_margin(
    m=None,
    annealing_lambda: float = 0.0,
    theta12: float | None = None,
    num_classes: int = 2,
    loss: str = "a-softmax",
    *,
    rule: str = "psi",
) -> AnnealedMargin:
    """Reach, gap, effective m and the paper's criterion of the margin a loss trains.

    ``m`` is the loss's margin (default: the paper's), ``annealing_lambda`` λ ≥ 0 (A-Softmax
    and L-Softmax; 0 for the pure ψ), ``theta12`` the angle between neighbouring weights
    (default π/2 for two classes, 2π/K otherwise). Each region edge is bracketed on a grid of
    ``_REACH_GRID`` angles and solved to 1e-12 rad by Brent's method, so the numbers are
    exact, not grid measurements.
    """
    from scipy.optimize import brentq

    loss = canonical_loss_name(loss)
    check_int("num_classes", num_classes, min=2)
    if theta12 is None:
        theta12 = math.pi / 2 if num_classes == 2 else TWO_PI / num_classes
    theta12 = _check_angle(theta12, "theta12")
    if num_classes * theta12 > TWO_PI + 1e-12:
        raise ValueError(
            f"{num_classes} weights {math.degrees(theta12):g}° apart do not fit on the circle; "
            f"theta12 must be at most 360°/{num_classes} = {360 / num_classes:g}°"
        )
    check_real("annealing_lambda", annealing_lambda, min=0, finite=False)
    if annealing_lambda > 0 and loss not in ("a-softmax", "l-softmax"):
        raise ValueError(f"annealing_lambda applies to a-softmax and l-softmax only, not {loss}")
    if loss == "sphereface2":
        raise ValueError(
            "SphereFace2 has no pairwise reach or effective m: each class claims its own cap "
            "(sphereface2_cap_angle); see circle_regions(..., 'sphereface2') or the explorer"
        )
    margins = _margin_values(loss, m, rule)
    margin = None if loss in _MARGIN_FREE else float(margins[0])
    if loss == "l-softmax":  # equal weight norms: L-Softmax's regions are A-Softmax's
        loss = "a-softmax"
    if loss == "softmax":  # equal norms, no biases: the bisectors of modified softmax
        loss = "modified-softmax"
    angles = theta12 * np.arange(num_classes)
    grid = np.linspace(0.0, math.pi, _REACH_GRID)

    def target(phi):
        cos_phi = np.cos(np.atleast_1d(phi))
        if loss in _MARGIN_FREE:
            return cos_phi
        return _margin_target(cos_phi, loss, margins, rule, annealing_lambda)[0]

    def reach(own: int, direction: float) -> float:
        others = np.delete(angles, own) - angles[own]

        def excess(phi):
            rival = np.cos(np.atleast_1d(phi)[:, None] * direction - others[None, :]).max(axis=1)
            return target(phi) - rival

        values = excess(grid)
        crossed = np.flatnonzero(values <= 0)
        if crossed.size == 0:
            return math.pi
        first = int(crossed[0])
        if first == 0:
            return 0.0
        return brentq(lambda phi: float(excess(phi)[0]), grid[first - 1], grid[first], xtol=1e-13)

    forward = [reach(i, 1.0) for i in range(num_classes)]
    backward = [reach(i, -1.0) for i in range(num_classes)]
    spans = [_span([(-back, back + fore)]) if back + fore > 0 else math.nan
             for fore, back in zip(forward, backward, strict=True)]  # fmt: skip
    spacing = np.diff(np.append(angles, TWO_PI))
    gaps = [
        max(0.0, float(spacing[i]) - forward[i] - backward[(i + 1) % num_classes])
        for i in range(num_classes)
    ]
    nonempty = not any(math.isnan(s) for s in spans)
    max_intra = max(spans) if nonempty else math.nan
    gap = min(gaps)
    first_reach = forward[0]
    return AnnealedMargin(
        loss=canonical_loss_name(loss) if margin is None else loss,
        m=margin,
        annealing_lambda=float(annealing_lambda),
        theta12=theta12,
        num_classes=int(num_classes),
        reach=float(first_reach),
        effective_m=theta12 / first_reach - 1.0 if first_reach > 0 else math.inf,
        gap=float(gap),
        max_intra=float(max_intra),
        criterion_holds=bool(nonempty and max_intra <= gap + CRITERION_TOLERANCE),
    )


def effective_m(m=4, annealing_lambda: float = 0.0, theta12: float = math.pi / 2) -> float:
    """The real m whose pure A-Softmax region reaches as far as A-Softmax m trained at λ.

    θ₁₂/(m_eff + 1) = reach, two classes θ₁₂ apart (``annealed_margin``); m = 4 at the
    official floor λ = 5 is m_eff = 1.617 at θ₁₂ = 90°.
    """
    return annealed_margin(m, annealing_lambda, theta12).effective_m
