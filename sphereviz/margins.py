"""The margin functions of SphereFace: ψ(θ), T_m(cos θ) and the λ annealing schedule.

One source of truth for each formula. Every function accepts numpy arrays and torch tensors
(and Python floats), and returns the same kind it was given.

References: W. Liu et al., "SphereFace: Deep Hypersphere Embedding for Face Recognition",
CVPR 2017, eq. (6)-(7); the official Caffe ``MarginInnerProduct`` layer for the annealing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch

__all__ = [
    "LambdaSchedule",
    "chebyshev_cos",
    "check_integer_margin",
    "psi",
    "psi_from_cos",
    "psi_k",
]


def check_integer_margin(m, loss_name: str = "A-Softmax") -> int:
    """Return ``m`` as an int, or raise a ValueError a student understands.

    A-Softmax and L-Softmax multiply the angle by an integer m >= 1; ψ is only defined
    (continuous and monotonic on [0, π]) for integers. Fractional margins are what
    CosFace and ArcFace are for, so the message says so instead of truncating silently.
    """
    if isinstance(m, bool) or not isinstance(m, Real):
        raise ValueError(f"m must be an integer >= 1 for {loss_name}, got {m!r}")
    if isinstance(m, Integral) or float(m).is_integer():
        if int(m) >= 1:
            return int(m)
        raise ValueError(
            f"m must be an integer >= 1 for {loss_name}, got {m}; "
            "m = 1 is the plain (modified) softmax, m = 4 is the SphereFace default"
        )
    raise ValueError(
        f"m must be an integer >= 1 for {loss_name}, got {m}; "
        "use CosFace or ArcFace for fractional margins"
    )


def chebyshev_cos(cos_theta, m: int):
    """cos(mθ) from cos θ alone: the Chebyshev polynomial T_m(c), by the recurrence.

    T_0 = 1, T_1 = c, T_{n+1} = 2c·T_n − T_{n−1}   (so T_2 = 2c² − 1, T_4 = 8c⁴ − 8c² + 1).

    Needs no acos, so it is smooth at c = ±1, which is why the official layer uses it.
    """
    m = check_integer_margin(m, "chebyshev_cos") if m != 0 else 0
    if not isinstance(cos_theta, torch.Tensor):
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
    if isinstance(theta, torch.Tensor):
        k = torch.floor(theta.detach() * (m / math.pi))
        return k.clamp(0, m - 1)
    return np.clip(np.floor(np.asarray(theta, dtype=float) * (m / math.pi)), 0, m - 1)


def psi(theta, m: int):
    """ψ(θ) = (−1)^k cos(mθ) − 2k  for θ ∈ [kπ/m, (k+1)π/m], k ∈ {0, …, m−1}.

    SphereFace eq. (7). ψ equals cos(mθ) on [0, π/m], is continuous and strictly decreasing
    on [0, π], and ψ(π) = 1 − 2m. With m = 1 it is cos θ (modified softmax).
    """
    m = check_integer_margin(m)
    k = psi_k(theta, m)
    if isinstance(theta, torch.Tensor):
        sign = 1.0 - 2.0 * torch.remainder(k, 2)
        return sign * torch.cos(m * theta) - 2.0 * k
    theta = np.asarray(theta, dtype=float)
    sign = 1.0 - 2.0 * np.mod(k, 2)
    return sign * np.cos(m * theta) - 2.0 * k


def psi_from_cos(cos_theta, m: int):
    """ψ as a function of c = cos θ, with no acos: (−1)^k T_m(c) − 2k.

    k is found from the detached c by counting the piece boundaries cos(jπ/m), j = 1…m−1,
    that lie at or above c (θ ≥ jπ/m ⇔ c ≤ cos(jπ/m)). This is the form the losses use.
    """
    m = check_integer_margin(m)
    is_tensor = isinstance(cos_theta, torch.Tensor)
    c = cos_theta.detach() if is_tensor else np.asarray(cos_theta, dtype=float)
    k = 0 * c
    for j in range(1, m):
        k = k + (c <= math.cos(j * math.pi / m))
    sign = 1.0 - 2.0 * (k % 2)
    return sign * chebyshev_cos(cos_theta if is_tensor else c, m) - 2.0 * k


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
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real):
                raise ValueError(f"LambdaSchedule.{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"LambdaSchedule.{name} must be a finite number >= 0, "
                    f"got {getattr(self, name)!r}"
                )

    def value(self, iteration):
        """λ at a given iteration (an int, a numpy array or a tensor)."""
        if isinstance(iteration, torch.Tensor):
            decayed = self.base * (1 + self.gamma * iteration.double()) ** (-self.power)
            return torch.clamp(decayed, min=self.lambda_min)
        decayed = self.base * (1 + self.gamma * np.asarray(iteration, dtype=float)) ** (-self.power)
        result = np.maximum(decayed, self.lambda_min)
        return float(result) if np.ndim(result) == 0 else result


def _ones_like(x):
    if isinstance(x, torch.Tensor):
        return torch.ones_like(x)
    return np.ones_like(np.asarray(x, dtype=float))
