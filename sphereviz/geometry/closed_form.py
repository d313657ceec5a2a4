"""Closed forms of the regions: the binary case (Property 2) and uniform classes (Property 3)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sphereviz.geometry._common import (
    CRITERION_TOLERANCE,
    TWO_PI,
    _check_angle,
    _margin_values,
)
from sphereviz.losses.registry import loss_spec
from sphereviz.validation import check_int

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
    spec = loss_spec(loss)
    if spec.plain_score == "logit":
        raise ValueError(
            "softmax has a closed form only with equal weight norms and no biases, where it is "
            "modified softmax: pass loss='modified-softmax'"
        )
    if spec.region_rule == "argmax":
        return 0.0
    if spec.region_rule == "claims":
        raise ValueError(
            "SphereFace2 has no pairwise closed form: each class claims a cap on its own "
            "(sphereface2_cap_angle); use circle_regions(..., method='grid')"
        )
    return float(_margin_values(spec.name, m, "boundary")[0])


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
    kind = loss_spec(loss).closed_form
    if kind != "angle":
        if kind == "cosine offset":
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
    m = margin if loss_spec(loss).has_margin else 1.0
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
    spec = loss_spec(loss)
    if spec.closed_form == "cosine offset":
        q = margin / (2.0 * math.sin(theta / 2.0))
        half_width = theta / 2.0 - math.asin(q) if q < 1.0 else 0.0
    elif spec.closed_form == "additive angle":
        half_width = (theta - margin) / 2.0
    else:
        half_width = theta / ((margin if spec.has_margin else 1.0) + 1.0)
    if half_width <= 0.0:
        return _EMPTY
    return ClosedFormRegion(
        -half_width, half_width, 2.0 * half_width, theta - 2.0 * half_width, "uniform"
    )


def uniform_weight_angles(num_classes: int, offset: float = 0.0) -> np.ndarray:
    """K weight angles uniformly spaced on the circle: offset + 2πk/K."""
    check_int("num_classes", num_classes, min=2)
    return np.mod(offset + TWO_PI * np.arange(num_classes) / num_classes, TWO_PI)
