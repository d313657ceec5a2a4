"""Room on the sphere: Tammes angles against the known optima, SphereFace2's caps against its
own logit formula (the loss's margins module)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sphereviz.caps import (
    inverse_similarity_adjustment,
    simplex_angle,
    sphereface2_cap_radii,
    sphereface2_largest_cap,
    tammes_angle,
)
from sphereviz.margins import similarity_adjustment


@pytest.mark.parametrize(
    ("n", "expected_deg"),
    [
        (4, math.degrees(math.acos(-1 / 3))),  # tetrahedron, 109.47°
        (6, 90.0),  # octahedron
        (10, 66.1468220),  # Danzer (1963); Sloane's packing tables
        (12, math.degrees(math.atan(2))),  # icosahedron, 63.43°
    ],
)
def test_tammes_angle_reaches_the_known_optima_on_the_sphere(n, expected_deg):
    assert math.degrees(tammes_angle(n)) == pytest.approx(expected_deg, abs=1e-4)


def test_enough_dimensions_give_the_regular_simplex():
    assert tammes_angle(10, dim=16) == pytest.approx(math.acos(-1 / 9))
    assert simplex_angle(3) == pytest.approx(2 * math.pi / 3)
    # In 2-D the optimum is the regular polygon: 2π/n.
    assert tammes_angle(5, dim=2) == pytest.approx(2 * math.pi / 5, abs=1e-6)


def test_inverse_similarity_adjustment_undoes_g():
    c = np.linspace(-1, 1, 21)
    assert inverse_similarity_adjustment(similarity_adjustment(c, 3.0), 3.0) == pytest.approx(c)
    with pytest.raises(ValueError, match=r"\[−1, 1\]"):
        inverse_similarity_adjustment(1.5, 3.0)


def test_cap_radii_are_where_the_logits_change_sign():
    r, m, t, tau = 40.0, 0.4, 3.0, 0.3
    b = -r * tau
    plus, minus = sphereface2_cap_radii(tau, m, t)
    own = r * (similarity_adjustment(math.cos(plus), t) - m) + b
    other = r * (similarity_adjustment(math.cos(minus), t) + m) + b
    assert own == pytest.approx(0, abs=1e-9) and other == pytest.approx(0, abs=1e-9)
    assert plus < minus  # the margin makes the own cap the smaller
    assert math.isnan(sphereface2_cap_radii(0.7, m, t)[0])  # τ + m > 1: no direction is claimed


def test_largest_cap_is_tight_and_no_larger_cap_fits():
    separation = math.radians(66.1468)
    best = sphereface2_largest_cap(separation, 0.4, 3.0)
    assert best["fits"]
    assert best["rho_plus"] + best["rho_minus"] == pytest.approx(separation, abs=1e-9)
    # any other bias gives a smaller own cap or overlapping caps
    for tau in np.linspace(-0.59, 0.6, 200):
        plus, minus = sphereface2_cap_radii(tau, 0.4, 3.0)
        if plus + minus <= separation:
            assert plus <= best["rho_plus"] + 1e-9
    # weights 20° apart: even a point-sized own cap leaves ρ₋ = 46.6° > 20°
    assert not sphereface2_largest_cap(math.radians(20), 0.4, 3.0)["fits"]
    # without a margin the two caps are one circle: ρ₊ = ρ₋ = δ/2
    zero = sphereface2_largest_cap(separation, 0.0, 3.0)
    assert zero["rho_plus"] == pytest.approx(separation / 2, abs=1e-9)
