"""ψ, T_m and the λ schedule, each checked against an independent form of the same formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sphereviz.margins import (
    LambdaSchedule,
    chebyshev_cos,
    check_integer_margin,
    psi,
    psi_from_cos,
    psi_k,
)

margins = st.integers(min_value=1, max_value=12)
angles = st.floats(min_value=0.0, max_value=math.pi, allow_nan=False)
cosines = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)


# ----- the official sign/Chebyshev forms (no k, no acos), derived case by case -------------


def official_psi(c: np.ndarray, m: int) -> np.ndarray:
    """ψ written as the official Caffe layer writes it: sign patterns of c times T_m(c).

    m = 2: one boundary at c = 0; (−1)^k = sign(c), 2k = 1 − sign(c).
    m = 3: boundaries at c = ±1/2; k = 1 exactly where |c| < 1/2, so (−1)^k = sign(|c| − 1/2),
           and k = 1 − sign(c)(1 + sign(|c| − 1/2))/2 (0 above 1/2, 1 between, 2 below −1/2).
    m = 4: s₃ = sign(c)·sign(2c² − 1), ψ = s₃·T₄(c) + 2·sign(c) + s₃ − 3 (the official form).
    """
    c = np.asarray(c, dtype=float)
    sign_c = np.sign(c)
    if m == 1:
        return c
    if m == 2:
        return sign_c * (2 * c**2 - 1) - (1 - sign_c)
    if m == 3:
        sign_1 = np.sign(np.abs(c) - 0.5)
        k = 1 - sign_c * (1 + sign_1) / 2
        return sign_1 * (4 * c**3 - 3 * c) - 2 * k
    if m == 4:
        s3 = sign_c * np.sign(2 * c**2 - 1)
        return s3 * (8 * c**4 - 8 * c**2 + 1) + 2 * sign_c + s3 - 3
    raise AssertionError(m)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_psi_equals_the_official_sign_form(m):
    c = np.concatenate([np.linspace(-1, 1, 2001), np.random.default_rng(m).uniform(-1, 1, 500)])
    expected = official_psi(c, m)
    np.testing.assert_allclose(psi_from_cos(c, m), expected, atol=1e-12, rtol=0)
    np.testing.assert_allclose(psi(np.arccos(c), m), expected, atol=1e-12, rtol=0)
    torch_values = psi_from_cos(torch.from_numpy(c), m).numpy()
    np.testing.assert_allclose(torch_values, expected, atol=1e-12, rtol=0)
    torch_theta = psi(torch.from_numpy(np.arccos(c)), m).numpy()
    np.testing.assert_allclose(torch_theta, expected, atol=1e-12, rtol=0)


@settings(max_examples=200, deadline=None)
@given(m=margins, theta=angles)
def test_psi_from_cos_matches_psi_of_theta(m, theta):
    assert psi_from_cos(math.cos(theta), m) == pytest.approx(psi(theta, m), abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(m=margins, theta=angles, step=st.floats(min_value=1e-3, max_value=math.pi))
def test_psi_is_strictly_decreasing_on_0_pi(m, theta, step):
    later = min(theta + step, math.pi)
    if later - theta < 1e-3:
        theta = later - 1e-3
    assert psi(later, m) < psi(theta, m)


@settings(max_examples=200, deadline=None)
@given(m=margins, theta=angles, step=st.floats(min_value=0.0, max_value=1e-2))
def test_psi_is_continuous_with_lipschitz_constant_m(m, theta, step):
    # |ψ'(θ)| = m·|sin mθ| ≤ m on every piece, so a jump at a piece boundary would break this.
    later = min(theta + step, math.pi)
    assert abs(psi(later, m) - psi(theta, m)) <= m * (later - theta) + 1e-12


@pytest.mark.parametrize("m", range(1, 13))
def test_psi_endpoints(m):
    assert psi(0.0, m) == pytest.approx(1.0, abs=1e-12)
    assert psi(math.pi, m) == pytest.approx(1 - 2 * m, abs=1e-12)
    assert psi_from_cos(-1.0, m) == pytest.approx(1 - 2 * m, abs=1e-12)
    # on the first piece ψ is cos(mθ)
    theta = np.linspace(0, math.pi / m, 50)
    np.testing.assert_allclose(psi(theta, m), np.cos(m * theta), atol=1e-12)


def test_psi_with_m_1_is_cos():
    theta = np.linspace(0, math.pi, 101)
    np.testing.assert_allclose(psi(theta, 1), np.cos(theta), atol=1e-15)


def test_psi_k_pieces():
    assert psi_k(0.0, 4) == 0
    assert psi_k(math.pi / 4 + 1e-9, 4) == 1
    assert psi_k(math.pi, 4) == 3  # θ = π belongs to the last piece
    assert psi_k(torch.tensor(math.pi / 2 + 1e-6), 4).item() == 2


def test_psi_from_cos_keeps_the_gradient_finite_at_plus_minus_one():
    c = torch.tensor([-1.0, 1.0, 0.0, 0.5], dtype=torch.float64, requires_grad=True)
    psi_from_cos(c, 4).sum().backward()
    assert torch.isfinite(c.grad).all()
    # dψ/dc = (−1)^k T_4'(c) with T_4' = 32c³ − 16c: at c = 1 it is 16, at c = −1 (k = 3) +16
    assert c.grad[1].item() == pytest.approx(16.0)
    assert c.grad[0].item() == pytest.approx(16.0)


@pytest.mark.parametrize("m", range(0, 11))
def test_chebyshev_cos_equals_cos_of_m_acos(m):
    c = np.linspace(-1, 1, 1001)
    np.testing.assert_allclose(chebyshev_cos(c, m), np.cos(m * np.arccos(c)), atol=1e-11)
    as_tensor = chebyshev_cos(torch.from_numpy(c), m).numpy()
    np.testing.assert_allclose(as_tensor, np.cos(m * np.arccos(c)), atol=1e-11)


def test_chebyshev_cos_closed_forms_and_list_input():
    c = np.linspace(-1, 1, 11)
    np.testing.assert_allclose(chebyshev_cos(c, 2), 2 * c**2 - 1, atol=1e-14)
    np.testing.assert_allclose(chebyshev_cos(c, 3), 4 * c**3 - 3 * c, atol=1e-14)
    np.testing.assert_allclose(chebyshev_cos(c, 4), 8 * c**4 - 8 * c**2 + 1, atol=1e-14)
    np.testing.assert_allclose(chebyshev_cos(list(c), 2), 2 * c**2 - 1, atol=1e-14)
    np.testing.assert_allclose(psi_from_cos(list(c), 2), official_psi(c, 2), atol=1e-14)


@pytest.mark.parametrize("value", [4, 4.0, np.int64(4), np.float32(4.0)])
def test_check_integer_margin_accepts_integers(value):
    assert check_integer_margin(value) == 4
    assert type(check_integer_margin(value)) is int


@pytest.mark.parametrize("value", [2.5, 0, -1, 0.0, float("nan"), float("inf"), np.int64(0)])
def test_check_integer_margin_rejects(value):
    with pytest.raises(ValueError, match="integer >= 1"):
        check_integer_margin(value)


@pytest.mark.parametrize("value", [True, "4", None, [4]])
def test_check_integer_margin_rejects_non_numbers_by_type(value):
    with pytest.raises(TypeError, match="integer >= 1"):
        check_integer_margin(value)


def test_fractional_margin_message_points_to_cosface_and_arcface():
    with pytest.raises(ValueError, match="CosFace or ArcFace"):
        psi(0.3, 1.5)


def test_lambda_schedule_official_values():
    schedule = LambdaSchedule()
    assert schedule.value(0) == pytest.approx(1000.0)
    assert schedule.value(1) == pytest.approx(1000 / 1.12, rel=1e-12)
    assert schedule.value(1658) == pytest.approx(1000 / (1 + 0.12 * 1658), rel=1e-12)
    assert schedule.value(1658) > 5.0
    assert schedule.value(1659) == 5.0
    assert schedule.value(28_000) == 5.0
    iterations = np.array([1, 1658, 1659])
    np.testing.assert_allclose(schedule.value(iterations), [1000 / 1.12, 1000 / 199.96, 5.0])
    as_tensor = schedule.value(torch.tensor(iterations))
    np.testing.assert_allclose(as_tensor.numpy(), [1000 / 1.12, 1000 / 199.96, 5.0], rtol=1e-12)


def test_lambda_schedule_power_and_floor():
    schedule = LambdaSchedule(base=1500, gamma=0.1, power=2, lambda_min=0)
    assert schedule.value(10) == pytest.approx(1500 / 2**2)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"base": -1}, ValueError),
        ({"gamma": float("nan")}, ValueError),
        ({"lambda_min": float("inf")}, ValueError),
        ({"power": "1"}, TypeError),
    ],
)
def test_lambda_schedule_rejects_bad_fields(fields, error):
    with pytest.raises(error, match=r"LambdaSchedule\.\w+ must be a finite number >= 0"):
        LambdaSchedule(**fields)
