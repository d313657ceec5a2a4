"""The fused A-Softmax / L-Softmax target logit against ψ written out, and its closed-form gradient.

Truths: ``margins.psi_from_cos`` (Chebyshev recurrence), ψ(θ) with θ = acos c in float64
(``margins.psi``), autograd through ``psi_from_cos``, and ``torch.autograd.gradcheck``.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from sphereviz.losses.integer_margin import (
    annealed_target_logit,
    piece_boundaries,
    piece_coefficients,
)
from sphereviz.margins import psi, psi_from_cos

MARGINS = [1, 2, 3, 4, 5, 6]


def fused(c, r, lam, m):
    lam = torch.as_tensor(lam, dtype=torch.float64)
    weight = (lam / (1 + lam)).to(c.dtype)
    bounds, coefficients = piece_boundaries(m).to(c.dtype), piece_coefficients(m).to(c.dtype)
    return annealed_target_logit(c, r, weight, m, bounds, coefficients)


def written_out(c, r, lam, m):
    """r·(λ cos θ + ψ(θ))/(1 + λ), by autograd through the recurrence form of ψ."""
    return r * (lam * c + psi_from_cos(c, m)) / (1 + lam)


def cosines_with_boundaries(m, dtype=torch.float64):
    """A dense grid of cos θ plus ±1 and every piece boundary cos(jπ/m) exactly."""
    grid = torch.linspace(-1, 1, 2001, dtype=torch.float64)
    bounds = torch.tensor([math.cos(j * math.pi / m) for j in range(1, m)], dtype=torch.float64)
    return torch.cat([grid, bounds]).to(dtype)


@pytest.mark.parametrize("m", MARGINS)
@pytest.mark.parametrize("lam", [0.0, 5.0, 1000.0])
def test_value_equals_psi_of_acos(m, lam):
    c = cosines_with_boundaries(m)
    r = torch.rand_like(c) * 10 + 0.1
    theta = torch.acos(c)
    expected = r * (lam * c + psi(theta, m)) / (1 + lam)
    torch.testing.assert_close(fused(c, r, lam, m), expected, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("m", MARGINS)
def test_piece_tables_reproduce_the_piece_index(m):
    c = cosines_with_boundaries(m)
    count_below = torch.searchsorted(piece_boundaries(m), c)
    k = m - 1 - count_below
    expected_k = sum((c <= math.cos(j * math.pi / m)).long() for j in range(1, m)) + 0 * count_below
    assert torch.equal(k, expected_k)
    rows = piece_coefficients(m)[count_below]
    torch.testing.assert_close(rows[:, 0], (-1.0) ** k.double())
    torch.testing.assert_close(rows[:, 1], -2.0 * k.double())


@pytest.mark.parametrize("m", MARGINS)
@pytest.mark.parametrize("lam", [0.0, 5.0])
def test_gradient_equals_autograd_of_the_written_out_formula(m, lam):
    """Including c = ±1 and the piece boundaries, where dψ/dc = 0 from both sides."""
    c = cosines_with_boundaries(m)
    r = torch.rand_like(c) + 0.5
    grads = []
    for formula in (fused, written_out):
        c_leaf, r_leaf = c.clone().requires_grad_(), r.clone().requires_grad_()
        weights = torch.randn_like(c, generator=torch.Generator().manual_seed(0))
        (formula(c_leaf, r_leaf, lam, m) * weights).sum().backward()
        grads.append((c_leaf.grad, r_leaf.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(grads[0][1], grads[1][1], atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("m", MARGINS)
def test_gradcheck(m):
    generator = torch.Generator().manual_seed(m)
    c = (torch.rand(64, dtype=torch.float64, generator=generator) * 1.98 - 0.99).requires_grad_()
    r = (torch.rand(64, dtype=torch.float64, generator=generator) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda c, r: fused(c, r, 5.0, m), (c, r))


def test_huge_lambda_gives_exactly_the_plain_logit():
    c = torch.linspace(-1, 1, 101)
    r = torch.full_like(c, 3.0)
    assert torch.equal(fused(c, r, 1e13, 4), r * c)


def test_float32_matches_float64():
    c = cosines_with_boundaries(4)
    r = torch.rand_like(c) * 30
    value32 = fused(c.float(), r.float(), 5.0, 4)
    torch.testing.assert_close(value32.double(), fused(c, r, 5.0, 4), atol=1e-4, rtol=1e-5)


def _aten_calls(fn) -> int:
    fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sum(event.name.startswith("aten::") for event in prof.events())


def test_fewer_operations_than_autograd_through_psi():
    """The point of the Function: far fewer (on a GPU: launched) operations for N numbers."""
    c = (torch.rand(256) * 2 - 1).requires_grad_()
    r = (torch.rand(256) + 1).requires_grad_()
    weight = torch.tensor(5.0 / 6.0)
    tables = piece_boundaries(4).float(), piece_coefficients(4).float()

    def run_fused():
        annealed_target_logit(c, r, weight, 4, *tables).sum().backward()

    def run_written_out():
        written_out(c, r, 5.0, 4).sum().backward()

    assert _aten_calls(run_fused) * 2 < _aten_calls(run_written_out)
