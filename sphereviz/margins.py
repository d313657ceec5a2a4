"""The margin functions of SphereFace: ψ(θ), T_m(cos θ), the annealed target and λ's schedule.

One source of truth for each formula. Every function accepts numpy arrays and torch tensors
(and Python floats), and returns the same kind it was given. torch is never imported here: a
tensor is recognised by its type, so the math layer (``geometry``, ``bounds``, ``sphereviz
margin``) runs in a Python without torch.

References: W. Liu et al., "SphereFace: Deep Hypersphere Embedding for Face Recognition",
CVPR 2017, eq. (6)-(7); the official Caffe ``MarginInnerProduct`` layer for the annealing.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from sphereviz.validation import check_int, check_real

__all__ = [
    "FRACTIONAL_HINT",
    "LambdaSchedule",
    "annealed_psi",
    "blend_with_cosine",
    "chebyshev_cos",
    "check_integer_margin",
    "psi",
    "psi_from_cos",
    "psi_k",
]


def _is_tensor(value) -> bool:
    """True for a torch tensor, without importing torch (it is loaded if one exists)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


FRACTIONAL_HINT = "use CosFace or ArcFace for fractional margins"
"""What an error about a fractional m for A-Softmax / L-Softmax suggests."""


def check_integer_margin(
    m, loss_name: str = "A-Softmax", *, fractional_hint: str = FRACTIONAL_HINT
) -> int:
    """Return ``m`` as an int, or raise an error a student understands.

    A-Softmax and L-Softmax multiply the angle by an integer m >= 1; ψ is only defined
    (continuous and monotonic on [0, π]) for integers. A float with an integer value (4.0,
    from a command line) is that integer. Fractional margins are what CosFace and ArcFace
    are for, so the message says so (``fractional_hint``) instead of truncating silently.
    TypeError for a non-number, ValueError for a number that is not an integer >= 1.
    """
    fractional = isinstance(m, Real) and not isinstance(m, Integral) and math.isfinite(m)
    if fractional and not float(m).is_integer():
        hint = fractional_hint
    else:
        hint = "m = 1 is the plain (modified) softmax, m = 4 is the SphereFace default"
    return check_int("m", m, min=1, owner=loss_name, hint=hint, integral_floats=True)


def chebyshev_cos(cos_theta, m: int):
    """cos(mθ) from cos θ alone: the Chebyshev polynomial T_m(c), by the recurrence.

    T_0 = 1, T_1 = c, T_{n+1} = 2c·T_n − T_{n−1}   (so T_2 = 2c² − 1, T_4 = 8c⁴ − 8c² + 1).

    Needs no acos, so it is smooth at c = ±1, which is why the official layer uses it.
    """
    m = check_integer_margin(m, "chebyshev_cos") if m != 0 else 0
    if not _is_tensor(cos_theta):
        cos_theta = np.asarray(cos_theta, dtype=float)
    previous, current = _ones_like(cos_theta), cos_theta
    if m == 0:
        return previous
    for _ in range(m - 1):
        previous, current = current, 2 * cos_theta * current - previous
    return current


def psi_k(theta, m: int):
    """The piece index k = ⌊mθ/π⌋ of ψ, clipped to {0, …, m−1} (θ = π belongs to k = m−1).

    For a tensor the index is computed from a detached θ, so it never carries a gradient
    (an acos upstream would otherwise turn 0·∞ into NaN at cos θ = ±1).
    """
    m = check_integer_margin(m)
    if _is_tensor(theta):
        return (theta.detach() * (m / math.pi)).floor().clamp(0, m - 1)
    return np.clip(np.floor(np.asarray(theta, dtype=float) * (m / math.pi)), 0, m - 1)


def psi(theta, m: int):
    """ψ(θ) = (−1)^k cos(mθ) − 2k  for θ ∈ [kπ/m, (k+1)π/m], k ∈ {0, …, m−1}.

    SphereFace eq. (7). ψ equals cos(mθ) on [0, π/m], is continuous and strictly decreasing
    on [0, π], and ψ(π) = 1 − 2m. With m = 1 it is cos θ (modified softmax).
    """
    m = check_integer_margin(m)
    k = psi_k(theta, m)
    if _is_tensor(theta):
        sign = 1.0 - 2.0 * k.remainder(2)
        return sign * (m * theta).cos() - 2.0 * k
    theta = np.asarray(theta, dtype=float)
    sign = 1.0 - 2.0 * np.mod(k, 2)
    return sign * np.cos(m * theta) - 2.0 * k


def psi_from_cos(cos_theta, m: int):
    """ψ as a function of c = cos θ, with no acos: (−1)^k T_m(c) − 2k.

    k is found from the detached c by counting the piece boundaries cos(jπ/m), j = 1…m−1,
    that lie at or above c (θ ≥ jπ/m ⇔ c ≤ cos(jπ/m)). This is the form the losses use.
    """
    m = check_integer_margin(m)
    is_tensor = _is_tensor(cos_theta)
    c = cos_theta.detach() if is_tensor else np.asarray(cos_theta, dtype=float)
    k = 0 * c
    for j in range(1, m):
        k = k + (c <= math.cos(j * math.pi / m))
    sign = 1.0 - 2.0 * (k % 2)
    return sign * chebyshev_cos(cos_theta if is_tensor else c, m) - 2.0 * k


def blend_with_cosine(margined, cos_theta, annealing_lambda):
    """The annealed target (λ cos θ + f(θ)) / (1 + λ) of a margined target f(θ).

    The official SphereFace layer (``MarginInnerProduct``) mixes the plain cosine into the
    margined target with weight λ: λ = 0 trains f alone, a large λ is almost cos θ (modified
    softmax). Written as (1 − a)·f + a·cos θ with a = λ/(1 + λ), so λ = inf gives exactly
    cos θ. ``annealing_lambda`` ≥ 0 is a number or an array broadcasting against the others.
    """
    lam = np.asarray(annealing_lambda, dtype=float)
    if np.any(np.isnan(lam) | (lam < 0)):
        raise ValueError(f"annealing_lambda must be a number >= 0, got {annealing_lambda!r}")
    finite = np.where(np.isinf(lam), 0.0, lam)
    weight = np.where(np.isinf(lam), 1.0, finite / (1.0 + finite))
    weight = float(weight) if weight.ndim == 0 else weight
    return (1 - weight) * margined + weight * cos_theta


def annealed_psi(theta, m: int, annealing_lambda):
    """What A-Softmax trains under annealing: (λ cos θ + ψ(θ)) / (1 + λ) (``blend_with_cosine``
    of ψ, eq. (7)); ``theta`` in radians, an array or a tensor."""
    cos_theta = theta.cos() if _is_tensor(theta) else np.cos(np.asarray(theta, dtype=float))
    return blend_with_cosine(psi(theta, m), cos_theta, annealing_lambda)


@dataclass(frozen=True)
class LambdaSchedule:
    """The annealing weight of the official SphereFace code.

    λ(it) = max(λ_min, base · (1 + γ·it)^(−power)),  official base = 1000, γ = 0.12,
    power = 1, λ_min = 5 (λ first reaches 5 at iteration 1659). The trained target logit
    is ‖x‖(λ cos θ_y + ψ(θ_y)) / (1 + λ).
    """

    base: float = 1000.0
    gamma: float = 0.12
    power: float = 1.0
    lambda_min: float = 5.0

    def __post_init__(self):
        for name in ("base", "gamma", "power", "lambda_min"):
            check_real(f"LambdaSchedule.{name}", getattr(self, name), min=0)

    @classmethod
    def reaching_floor(
        cls, iteration: float, base: float = 1000.0, power: float = 1.0, lambda_min: float = 5.0
    ) -> LambdaSchedule:
        """The official shape with γ chosen so that λ first reaches ``lambda_min`` at
        ``iteration``: base·(1 + γ·it)^(−power) = λ_min ⇔ γ = ((base/λ_min)^(1/power) − 1)/it.

        This is how a recipe is made independent of the data size: the trainer passes a fixed
        fraction of the run's optimiser steps, so 400 faces and CASIA-WebFace anneal alike.
        """
        check_real("iteration", iteration, min=0, include_min=False)
        base = check_real("base", base, min=0, include_min=False)
        check_real("lambda_min", lambda_min, min=0, max=base, include_min=False,
                   include_max=False, hint="a schedule that reaches its floor needs "
                   "0 < lambda_min < base (the decay never reaches 0)")  # fmt: skip
        gamma = ((base / lambda_min) ** (1.0 / power) - 1.0) / iteration
        return cls(base=base, gamma=gamma, power=power, lambda_min=lambda_min)

    def floor_iteration(self) -> float:
        """The iteration at which λ first reaches λ_min (inf if it never does)."""
        if self.lambda_min <= 0 or self.gamma == 0 or self.power == 0:
            return 0.0 if self.base <= self.lambda_min else math.inf
        if self.base <= self.lambda_min:
            return 0.0
        return ((self.base / self.lambda_min) ** (1.0 / self.power) - 1.0) / self.gamma

    def value(self, iteration):
        """λ at a given iteration (an int, a numpy array or a tensor)."""
        if _is_tensor(iteration):
            decayed = self.base * (1 + self.gamma * iteration.double()) ** (-self.power)
            return decayed.clamp(min=self.lambda_min)
        decayed = self.base * (1 + self.gamma * np.asarray(iteration, dtype=float)) ** (-self.power)
        result = np.maximum(decayed, self.lambda_min)
        return float(result) if np.ndim(result) == 0 else result


def _ones_like(x):
    if _is_tensor(x):
        return x.new_ones(x.shape)
    return np.ones_like(np.asarray(x, dtype=float))
