"""How much room N class directions have on the sphere, and how much SphereFace2's margin asks.

**The Tammes problem.** N unit vectors in R^d pushed as far apart as possible: the largest
δ_N such that every pair is at least δ_N apart. Caps of angular radius δ_N/2 around them do not
overlap; on S² (d = 3) the known optima are δ_4 = 109.47° (tetrahedron), δ_6 = 90°
(octahedron), δ_10 = 66.15° (Danzer 1963) and δ_12 = 63.43° (icosahedron). In d ≥ N − 1
dimensions the regular simplex reaches arccos(−1/(N − 1)). :func:`tammes_angle` solves it
numerically:

    maximise s  subject to  ⟨x_i, x_j⟩ ≤ cos s (i < j),  ‖x_i‖ = 1,

by SLSQP from several random starts (the constraint form is the one of Tammes' problem).

**SphereFace2's caps.** With c = cos θ, g(c) = 2((c + 1)/2)^t − 1 and the logit
z = r(g(c) ∓ m) + b of variant C, write τ = −b/r. Class y claims its own sample (z > 0 for
−m) within the angle ρ₊ = arccos g⁻¹(τ + m) of W_y, and a class j ≠ y claims it (z > 0 for
+m) within ρ₋ = arccos g⁻¹(τ − m) of W_j, with g⁻¹(u) = 2((u + 1)/2)^{1/t} − 1. Every binary
problem is solved with its margin only if each sample lies within ρ₊ of its own weight and
outside ρ₋ of every other: caps of radius ρ₊ and ρ₋ around two weights δ apart must not
overlap, ρ₊ + ρ₋ ≤ δ. :func:`sphereface2_largest_cap` finds, over every bias, the largest ρ₊
that N weights δ_N apart allow.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq, minimize

from sphereviz.geometry import min_pairwise_angle
from sphereviz.validation import check_int, check_real

__all__ = [
    "inverse_similarity_adjustment",
    "simplex_angle",
    "sphereface2_cap_radii",
    "sphereface2_largest_cap",
    "tammes_angle",
]


def simplex_angle(n: int) -> float:
    """arccos(−1/(n − 1)): the angle between the vertices of a regular simplex, δ_n for d ≥ n−1."""
    n = check_int("n", n, min=2)
    return math.acos(-1.0 / (n - 1))


def tammes_angle(n: int, dim: int = 3, restarts: int = 12, seed: int = 0) -> float:
    """δ_n: the largest smallest angle (radians) of ``n`` unit vectors in R^dim (see module).

    SLSQP on (x_1 … x_n, s) from ``restarts`` random starts (``seed``); the best feasible
    result's ``geometry.min_pairwise_angle``. A numerical optimum, so a lower bound on δ_n that
    reaches the known values to about 1e-6 rad for small n.
    """
    n = check_int("n", n, min=2)
    dim = check_int("dim", dim, min=2)
    restarts = check_int("restarts", restarts, min=1)
    if dim >= n - 1:
        return simplex_angle(n)
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n)])
    rng = np.random.default_rng(seed)

    def unpack(v: np.ndarray) -> tuple[np.ndarray, float]:
        return v[:-1].reshape(n, dim), v[-1]

    def separation(v: np.ndarray) -> np.ndarray:  # cos s − ⟨x_i, x_j⟩ ≥ 0
        x, s = unpack(v)
        return np.cos(s) - np.sum(x[pairs[:, 0]] * x[pairs[:, 1]], axis=1)

    def unit_norm(v: np.ndarray) -> np.ndarray:
        x, _ = unpack(v)
        return np.sum(x * x, axis=1) - 1.0

    best = 0.0
    for _ in range(restarts):
        start = rng.standard_normal((n, dim))
        start /= np.linalg.norm(start, axis=1, keepdims=True)
        v0 = np.append(start.ravel(), min_pairwise_angle(start))
        result = minimize(
            lambda v: -v[-1],
            v0,
            jac=lambda v: np.append(np.zeros(v.size - 1), -1.0),
            method="SLSQP",
            constraints=[{"type": "ineq", "fun": separation}, {"type": "eq", "fun": unit_norm}],
            options={"maxiter": 500, "ftol": 1e-12},
        )
        best = max(best, min_pairwise_angle(unpack(result.x)[0]))
    return best


def inverse_similarity_adjustment(u, t: float):
    """g⁻¹(u) = 2((u + 1)/2)^{1/t} − 1 for u ∈ [−1, 1]: the cosine c with g(c) = u."""
    t = check_real("t", t, min=1)
    u = np.asarray(u, dtype=float)
    if np.any((u < -1) | (u > 1)):
        raise ValueError(f"g⁻¹ is defined on [−1, 1], got {u}")
    return 2.0 * ((u + 1.0) / 2.0) ** (1.0 / t) - 1.0


def sphereface2_cap_radii(threshold: float, margin: float, t: float) -> tuple[float, float]:
    """(ρ₊, ρ₋) in radians for τ = −b/r = ``threshold`` (see module); NaN where a cap is empty
    (τ + m > 1: no direction gives the own class a positive logit) and π where it is the whole
    sphere (τ − m < −1)."""

    def radius(u: float) -> float:
        if u > 1:
            return math.nan
        return math.pi if u < -1 else math.acos(float(inverse_similarity_adjustment(u, t)))

    return radius(threshold + margin), radius(threshold - margin)


def sphereface2_largest_cap(separation: float, margin: float, t: float) -> dict:
    """The largest own-class cap ρ₊ that SphereFace2's margin leaves weights ``separation`` apart.

    Over every bias (τ = −b/r), the largest ρ₊ with ρ₊ + ρ₋ ≤ δ = ``separation`` (radians).
    Returns ``{"rho_plus", "rho_minus", "threshold", "fits"}``: ``fits`` is False (and ρ₊ NaN)
    when even a zero-size own cap (τ = 1 − m) has ρ₋ > δ, i.e. the margin cannot be met by
    any bias however tightly each class gathers on its weight.
    """
    separation = check_real("separation", separation, min=0, max=math.pi, include_min=False)
    margin = check_real("margin", margin, min=0, max=1)
    t = check_real("t", t, min=1)

    def excess(tau: float) -> float:
        plus, minus = sphereface2_cap_radii(tau, margin, t)
        return plus + minus - separation

    top = 1.0 - margin  # ρ₊ = 0
    if excess(top) > 0:
        return {"rho_plus": math.nan, "rho_minus": math.nan, "threshold": top, "fits": False}
    bottom = margin - 1.0  # ρ₋ = π
    if excess(bottom) <= 0:
        tau = bottom
    else:
        tau = brentq(excess, bottom, top, xtol=1e-14)
    plus, minus = sphereface2_cap_radii(tau, margin, t)
    return {"rho_plus": plus, "rho_minus": minus, "threshold": tau, "fits": True}
