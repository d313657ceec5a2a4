"""The margin under annealing: reach, gap and the effective m."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sphereviz.geometry._common import (
    _MARGIN_FREE,
    CRITERION_TOLERANCE,
    TWO_PI,
    _check_angle,
    _margin_values,
    canonical_loss_name,
)
from sphereviz.geometry.circle import _span
from sphereviz.geometry.rule import _margin_target
from sphereviz.losses.registry import loss_spec
from sphereviz.validation import check_int, check_real

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
    spec = loss_spec(loss)
    if annealing_lambda > 0 and not spec.anneals:
        raise ValueError(f"annealing_lambda applies to a-softmax and l-softmax only, not {loss}")
    if spec.region_rule == "claims":
        raise ValueError(
            "SphereFace2 has no pairwise reach or effective m: each class claims its own cap "
            "(sphereface2_cap_angle); see circle_regions(..., 'sphereface2') or the explorer"
        )
    margins = _margin_values(loss, m, rule)
    margin = None if loss in _MARGIN_FREE else float(margins[0])
    # equal weight norms, no biases: L-Softmax's regions are A-Softmax's, softmax's the
    # bisectors of modified softmax
    loss = spec.equal_norms_as or loss
    angles = theta12 * np.arange(num_classes)

    def target(phi):
        cos_phi = np.cos(np.atleast_1d(phi))
        if loss in _MARGIN_FREE:
            return cos_phi
        return _margin_target(cos_phi, loss, margins, rule, annealing_lambda)[0]

    def reach(own: int, direction: float) -> float:
        return _reach(target, np.delete(angles, own) - angles[own], direction)

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


def _reach(target, others: np.ndarray, direction: float) -> float:
    """How far from its own weight (at 0) a class's region reaches in ``direction`` (±1): the
    first φ where target(φ) ≤ max_j cos(±φ − θ_j), bracketed on a grid, solved by Brent."""
    from scipy.optimize import brentq

    grid = np.linspace(0.0, math.pi, _REACH_GRID)

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


def effective_m(m=4, annealing_lambda: float = 0.0, theta12: float = math.pi / 2) -> float:
    """The real m whose pure A-Softmax region reaches as far as A-Softmax m trained at λ.

    θ₁₂/(m_eff + 1) = reach, two classes θ₁₂ apart (``annealed_margin``); m = 4 at the
    official floor λ = 5 is m_eff = 1.617 at θ₁₂ = 90°.
    """
    return annealed_margin(m, annealing_lambda, theta12).effective_m
