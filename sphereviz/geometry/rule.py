"""The decision rule in any dimension: margin targets, SphereFace2's claims, classify_points."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sphereviz.geometry._common import (
    _MARGIN_FREE,
    _as_matrix,
    _checked_unit_rows,
    _margin_values,
    _optional_vector,
    _row_norms,
    canonical_loss_name,
)
from sphereviz.losses.registry import loss_spec
from sphereviz.margins import (
    annealed_psi,
    blend_with_cosine,
    initial_bias,
    similarity_adjustment,
)
from sphereviz.validation import check_real

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
    spec = loss_spec(loss)
    if claim_rule is not None and spec.region_rule != "claims":
        raise ValueError(f"claim_rule is SphereFace2's rule; {loss} does not take it")
    margins = _margin_values(loss, m, rule)
    weights = _as_matrix(weights, "weights")
    points = _as_matrix(points, "points", columns=weights.shape[1])
    if weights.shape[0] < 2:
        raise ValueError(f"need at least 2 class weights, got {weights.shape[0]}")
    check_real("annealing_lambda", annealing_lambda, min=0)
    if annealing_lambda > 0 and not spec.anneals:
        raise ValueError(
            "annealing_lambda must be >= 0 and applies to a-softmax and l-softmax only, "
            f"got {annealing_lambda!r} for {loss}"
        )
    biases = _optional_vector(biases, "biases", weights.shape[0])
    if biases is not None and spec.plain_score != "logit" and np.any(biases != 0):
        raise ValueError(f"biases only exist in softmax; {loss} has b = 0 (pass biases=None)")
    if spec.region_rule == "claims":
        rows = []
        for margin in _margin_values(loss, m, rule):
            claims = claim_counts(points, weights, margin, claim_rule)
            rows.append(np.where(claims.sum(1) == 1, np.argmax(claims, 1), -1).astype(np.int64))
        return rows[0] if np.ndim(m) == 0 else np.stack(rows)
    weight_norms = _row_norms(weights, "weights")
    cos = np.zeros((points.shape[0], weights.shape[0]))
    if spec.plain_score == "logit":
        plain = points @ weights.T + (0.0 if biases is None else biases)
    else:
        unit_points = _checked_unit_rows(points, "points")
        cos = np.clip(unit_points @ (weights / weight_norms[:, None]).T, -1.0, 1.0)
        plain = cos * weight_norms if spec.plain_score == "weighted cosine" else cos
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
    spec = loss_spec(loss)
    if spec.region_rule == "argmax":
        wins = (plain[rows, winner] > runner_up)[None, :]
    elif (
        spec.takes_boundary_rule
        and spec.plain_score == "cosine"
        and rule == "boundary"
        and (annealing_lambda == 0)
    ):
        # cos(min(mθ_w, π)) > cos θ_r  ⇔  mθ_w < θ_r: compare angles, no cosine per margin
        wins = margins[:, None] * np.arccos(cos[rows, winner]) < np.arccos(runner_up)
    else:
        target = _margin_target(cos[rows, winner], loss, margins, rule, annealing_lambda)
        if spec.plain_score == "weighted cosine":
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
    spec = loss_spec(loss)
    if spec.region_rule == "argmax":
        return cos_theta
    if spec.region_rule == "claims":
        return similarity_adjustment(cos_theta, ClaimRule().t) - margins[0]
    flat = _margin_target(cos_theta.ravel(), loss, margins, rule, annealing_lambda)[0]
    return flat.reshape(cos_theta.shape)


def _margin_target(cos_winner, loss, margins, rule, annealing_lambda) -> np.ndarray:
    """The margined target score f(θ) for every margin (rows) and point (columns): the loss's
    own ``LossSpec.target`` (CosFace, ArcFace, SphereFace-R), or for the annealed losses
    (λ cos θ + ψ(θ))/(1 + λ) with ψ from θ (the boundary rule: cos(min(mθ, π)))."""
    spec = loss_spec(loss)
    if not spec.anneals:
        return np.stack([spec.target(cos_winner, value) for value in margins])
    m = margins[:, None]
    theta = np.arccos(cos_winner)
    if rule == "boundary":
        return blend_with_cosine(np.cos(np.minimum(m * theta, math.pi)), cos_winner,
                                 annealing_lambda)  # fmt: skip
    return np.stack([annealed_psi(theta, int(value), annealing_lambda) for value in margins])


# --------------------------------------------------------------------------------------------
