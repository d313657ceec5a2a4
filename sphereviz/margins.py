"""The margin functions of the loss family: ψ(θ), T_m(cos θ), the annealed target, λ's
schedule, and the margined targets of CosFace, ArcFace, SphereFace-R and SphereFace2.

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
    "INTEGER_HINT",
    "LambdaSchedule",
    "REAL_M_HINT",
    "L_SOFTMAX_SCHEDULE",
    "SPHEREFACE_SCHEDULE",
    "annealed_psi",
    "arcface_target",
    "blend_with_cosine",
    "chebyshev_cos",
    "check_integer_margin",
    "cosface_target",
    "initial_bias",
    "psi",
    "psi_from_cos",
    "psi_k",
    "real_psi_from_cos",
    "similarity_adjustment",
]


INTEGER_HINT = "m = 1 is the plain (modified) softmax, m = 4 is the SphereFace default"
"""What an error about a bad integer m suggests."""


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
        hint = INTEGER_HINT
    return check_int("m", m, min=1, owner=loss_name, hint=hint, integral_floats=True)


REAL_M_HINT = "m = 1 is NormFace (no margin), the paper uses m ≈ 1.5 to 1.7"
"""What an error about SphereFace-R's real m suggests."""


def _is_tensor(value) -> bool:
    """True for a torch tensor, without importing torch (it is loaded if one exists)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


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


SPHEREFACE_SCHEDULE = LambdaSchedule()
"""The official SphereFace annealing: base 1000, γ 0.12, power 1, λ_min 5."""
L_SOFTMAX_SCHEDULE = LambdaSchedule(base=1000.0, gamma=0.000025, power=35.0, lambda_min=0.0)
"""The official L-Softmax Caffe setting (its MNIST prototxt): λ decays from 1000 towards 0."""


def cosface_target(cos_theta, m):
    """CosFace's target cosine cos θ − m (CosFace eq. 4, per unit scale s).

    ``cos_theta`` a float, numpy array or tensor; ``m`` a number (or an array that
    broadcasts against a numpy ``cos_theta``).
    """
    if not _is_tensor(cos_theta):
        cos_theta = np.asarray(cos_theta, dtype=float)
    return cos_theta - m


def arcface_target(cos_theta, m, easy_margin: bool = False):
    """ArcFace's target cosine cos(θ + m) from c = cos θ, with the loss's fallback (ArcFace eq. 3).

        cos(θ + m) = c·cos m − sin θ·sin m,  sin θ = √(1 − c²)   where c > cos(π − m),
        c − m·sin m                                               elsewhere (θ ≥ π − m),

    the fallback of the official insightface code, which keeps the target decreasing in θ
    where cos(θ + m) would rise again (for m ≤ 2.331, where cos m + m·sin m ≥ 1; a larger m
    jumps up at π − m). ``easy_margin=True`` instead gives cos(θ + m) where
    c > 0 and c elsewhere. For a tensor 1 − c² is floored at the dtype's eps, which keeps the
    gradient finite at c = ±1 (it changes sin θ only below √eps); an array is floored at 0.
    ``m`` is a number, or for a numpy ``cos_theta`` an array that broadcasts against it.
    """
    if _is_tensor(cos_theta):
        torch = sys.modules["torch"]
        m = float(m)
        c = cos_theta
        sin_theta = torch.sqrt((1.0 - c * c).clamp_min(torch.finfo(c.dtype).eps))
        cos_m, sin_m, threshold = math.cos(m), math.sin(m), math.cos(math.pi - m)
        where = torch.where
    else:
        c = np.asarray(cos_theta, dtype=float)
        m = np.asarray(m, dtype=float)
        sin_theta = np.sqrt(np.maximum(1.0 - c * c, 0.0))
        cos_m, sin_m, threshold = np.cos(m), np.sin(m), np.cos(np.pi - m)
        where = np.where
    plus = c * cos_m - sin_theta * sin_m
    if easy_margin:
        return where(c > 0, plus, c)
    return where(c > threshold, plus, c - m * sin_m)


def real_psi_from_cos(cos_theta, m: float):
    """ψ_m(θ) = (−1)^k cos(mθ) − 2k,  k = ⌊mθ/π⌋ ∈ {0, …, ⌈m⌉ − 1}, for a real m ≥ 1.

    SphereFace-R's monotonic extension: cos(mθ) on [0, π/m], continuous and strictly
    decreasing on [0, π] (pieces k and k + 1 both give −1 − 2k at θ = (k + 1)π/m), and
    ψ_m(π) = (−1)^K cos(mπ) − 2K with K = ⌈m⌉ − 1; for an integer m it is A-Softmax's ψ.
    Takes cos θ as a numpy array or a tensor and returns the same kind. θ is
    atan2(√(1 − c²), c), never acos; for a tensor the result carries **no gradient**:
    SphereFace-R only uses it inside a stop-gradient.
    """
    m = check_real("m", m, min=1.0, hint=REAL_M_HINT, owner="SphereFace-R")
    last_piece = math.ceil(m) - 1
    if _is_tensor(cos_theta):
        torch = sys.modules["torch"]
        c = cos_theta.detach().clamp(-1.0, 1.0)
        theta = torch.atan2(torch.sqrt((1.0 - c * c).clamp_min(0.0)), c)
        k = torch.floor(theta * (m / math.pi)).clamp(0, last_piece)
        sign = 1.0 - 2.0 * torch.remainder(k, 2)
        return sign * torch.cos(m * theta) - 2.0 * k
    c = np.clip(np.asarray(cos_theta, dtype=float), -1.0, 1.0)
    theta = np.arctan2(np.sqrt(np.maximum(1.0 - c * c, 0.0)), c)
    k = np.clip(np.floor(theta * (m / math.pi)), 0, last_piece)
    sign = 1.0 - 2.0 * np.mod(k, 2)
    return sign * np.cos(m * theta) - 2.0 * k


def similarity_adjustment(cos_theta, t: float):
    """g(c) = 2((c + 1)/2)^t − 1 (SphereFace2 eq. 10); c a float, numpy array or tensor."""
    return 2.0 * ((cos_theta + 1.0) / 2.0) ** t - 1.0


def initial_bias(num_classes: int, margin: float, scale: float, alpha: float, t: float) -> float:
    """The closed-form starting bias of SphereFace2 (variant C).

    b₀ = log(2z) − a_i − log(1 − z + √((1 − z)² + 4z·e^{a_y − a_i})),
    z = α/((1 − α)(C − 1)),  a_y = r(2·0.5^t − 1 − m),  a_i = r(2·0.5^t − 1 + m):
    the root in b of the expected loss's derivative when every cos θ = 0 (random features).

    For z > 1 (few classes, a large α) 1 − z + √(…) cancels to 0 in floating point once
    e^{a_y − a_i} is tiny (m = 1, r = 40, C = 2), so there it is written as
    4z·e^{a_y − a_i} / (√(…) − (1 − z)), its value without the cancellation.
    """
    z = alpha / ((1.0 - alpha) * (num_classes - 1.0))
    a_y = scale * (2.0 * 0.5**t - 1.0 - margin)
    a_i = scale * (2.0 * 0.5**t - 1.0 + margin)
    root = math.sqrt((1.0 - z) ** 2 + 4.0 * z * math.exp(a_y - a_i))
    if z <= 1.0:
        log_term = math.log(1.0 - z + root)
    else:
        log_term = math.log(4.0 * z) + (a_y - a_i) - math.log(root - (1.0 - z))
    return math.log(2.0 * z) - a_i - log_term


def _ones_like(x):
    if _is_tensor(x):
        return x.new_ones(x.shape)
    return np.ones_like(np.asarray(x, dtype=float))
