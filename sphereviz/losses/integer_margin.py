"""The annealed target logit of A-Softmax and L-Softmax, with its derivative in closed form.

    f_y = r·(λ cos θ + ψ(θ))/(1 + λ) = r·((1 − a)·ψ(θ) + a·cos θ),   a = λ/(1 + λ),
    ψ(θ) = (−1)^k T_m(cos θ) − 2k,   dψ/d(cos θ) = (−1)^k · m · U_{m−1}(cos θ),

with T_m and U_{m−1} the Chebyshev polynomials of the first and second kind (cos mθ = T_m(cos θ),
d T_m/dc = m U_{m−1}). The margin only touches N numbers, so on a GPU its cost is the number of
kernel launches, not arithmetic: autograd through ``margins.psi_from_cos`` takes about 40 small
kernels for m = 4; this Function takes 6 forward and 6 backward, for any m. The piece index k is
a binary search among the piece boundaries cos(jπ/m), and its sign and offset a gather from a
table, both kept by the loss as buffers on its device, so no constant is copied from the host
at each step.
"""

from __future__ import annotations

import math

import torch

__all__ = ["annealed_target_logit", "piece_boundaries", "piece_coefficients"]


def piece_boundaries(m: int) -> torch.Tensor:
    """cos(jπ/m) for j = m−1 … 1, ascending: θ ≥ jπ/m ⇔ cos θ ≤ cos(jπ/m).

    ``torch.searchsorted(piece_boundaries(m), c)`` counts the boundaries below c, which is
    m − 1 − k for the piece k of c (a c equal to a boundary belongs to the upper piece, k).
    """
    return torch.tensor(
        [math.cos(j * math.pi / m) for j in range(m - 1, 0, -1)], dtype=torch.float64
    )


def piece_coefficients(m: int) -> torch.Tensor:
    """Rows ((−1)^k, −2k) for k = m−1 … 0, indexed by the count from ``piece_boundaries``."""
    return torch.tensor(
        [[(-1.0) ** k, -2.0 * k] for k in range(m - 1, -1, -1)], dtype=torch.float64
    )


def annealed_target_logit(
    cos_theta: torch.Tensor,
    radius: torch.Tensor,
    cos_weight: torch.Tensor,
    m: int,
    boundaries: torch.Tensor,
    coefficients: torch.Tensor,
) -> torch.Tensor:
    """r·((1 − a)ψ(θ) + a cos θ) for cos θ (N,), r (N,) and a 0-d weight a = λ/(1 + λ).

    ``boundaries`` and ``coefficients`` are ``piece_boundaries(m)`` and
    ``piece_coefficients(m)`` in the dtype and on the device of ``cos_theta``. Differentiable
    in cos θ and r (the backward is the closed form in the module docstring); a is a constant.
    """
    return _AnnealedTarget.apply(cos_theta, radius, cos_weight, m, boundaries, coefficients)


class _AnnealedTarget(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cos_theta, radius, cos_weight, m, boundaries, coefficients):
        boundaries_below = torch.searchsorted(boundaries, cos_theta)  # m − 1 − k, no gradient
        sign_and_offset = coefficients[boundaries_below]
        sign = sign_and_offset[:, 0]
        psi = torch.addcmul(sign_and_offset[:, 1], sign, _chebyshev_t(cos_theta, m))
        mixed = torch.lerp(psi, cos_theta, cos_weight)  # exact cos θ when a = 1
        ctx.m = m
        ctx.save_for_backward(cos_theta, radius, cos_weight, sign, mixed)
        return radius * mixed

    @staticmethod
    def backward(ctx, grad_target):
        cos_theta, radius, cos_weight, sign, mixed = ctx.saved_tensors
        grad_cos = grad_radius = None
        if ctx.needs_input_grad[0]:
            # d mixed/dc = a + (1 − a)·(−1)^k·m·U_{m−1}(c)
            dpsi = sign * _chebyshev_u(cos_theta, ctx.m - 1)
            dmixed = torch.addcmul(cos_weight, dpsi, (1 - cos_weight) * ctx.m)
            grad_cos = (grad_target * radius).mul_(dmixed)
        if ctx.needs_input_grad[1]:
            grad_radius = grad_target * mixed
        return grad_cos, grad_radius, None, None, None, None


def _chebyshev_t(c: torch.Tensor, n: int) -> torch.Tensor:
    return c if n == 1 else torch.special.chebyshev_polynomial_t(c, n)


def _chebyshev_u(c: torch.Tensor, n: int) -> torch.Tensor:
    return torch.ones_like(c) if n == 0 else torch.special.chebyshev_polynomial_u(c, n)
