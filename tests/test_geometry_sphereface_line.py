"""Region geometry of SphereFace-R (real m, exact) and SphereFace2 (per-class caps) against
dense grids and direct evaluations of each rule written here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sphereviz import geometry
from sphereviz.geometry import ClaimRule, circle_regions, claim_counts, sphereface2_cap_angle


def psi_reference(theta: np.ndarray, m: float) -> np.ndarray:
    k = np.minimum(np.floor(m * theta / math.pi), math.ceil(m) - 1)
    return (-1.0) ** k * np.cos(m * theta) - 2 * k


def direct_sphereface_r_labels(angles: np.ndarray, weight_angles: np.ndarray, m: float):
    """ψ_m(θ_i) > max_{j≠i} cos θ_j for some i, on points at ``angles``, with acos angles."""
    theta = np.abs(np.angle(np.exp(1j * (angles[:, None] - weight_angles[None, :]))))
    labels = np.full(angles.size, -1)
    for i in range(weight_angles.size):
        others = np.delete(np.cos(theta), i, axis=1).max(axis=1)
        labels[psi_reference(theta[:, i], m) > others] = i
    return labels


@pytest.mark.parametrize("m", [1.5, 1.7, 2.5])
@pytest.mark.parametrize("theta12_degrees", [60.0, 90.0, 150.0])
def test_sphereface_r_grid_matches_the_real_m_closed_form(m, theta12_degrees):
    theta12 = math.radians(theta12_degrees)
    closed = circle_regions([0.0, theta12], "sphereface-r", m, method="closed-form")
    grid = circle_regions([0.0, theta12], "sphereface-r", m, method="grid", resolution=7200)
    step = 2 * math.pi / 7200
    assert grid.max_intra_class_angle == pytest.approx(closed.max_intra_class_angle, abs=2 * step)
    assert grid.min_inter_class_angle == pytest.approx(closed.min_inter_class_angle, abs=2 * step)
    assert closed.min_inter_class_angle == pytest.approx((m - 1) / (m + 1) * theta12)
    expected = direct_sphereface_r_labels(grid.grid_angles, np.array([0.0, theta12]), m)
    assert np.mean(grid.grid_labels == expected) > 0.999  # only ties at the boundaries differ


def test_sphereface_r_uniform_layout_and_integer_m_equals_a_softmax():
    angles = geometry.uniform_weight_angles(5)
    for m in (1.35, 2.2):
        grid = circle_regions(angles, "sphereface-r", m, method="grid", resolution=7200)
        direct = direct_sphereface_r_labels(grid.grid_angles, angles, m)
        assert np.mean(grid.grid_labels == direct) > 0.999
        closed = geometry.uniform_closed_form(5, "sphereface-r", m)
        assert grid.max_intra_class_angle == pytest.approx(closed.max_intra_class_angle, abs=2e-3)
    for m in (2, 3, 4):
        r = circle_regions(angles, "sphereface-r", m, method="grid")
        a = circle_regions(angles, "a-softmax", m, method="grid")
        np.testing.assert_array_equal(r.grid_labels, a.grid_labels)


def test_sphereface2_cap_angle_against_a_dense_grid_of_its_rule():
    rule = ClaimRule(scale=40.0, bias=10.0, t=3.0)
    phi = sphereface2_cap_angle(0.4, 40.0, 10.0, 3.0)
    theta = np.linspace(0, math.pi, 200001)
    claimed = 40.0 * (2 * ((np.cos(theta) + 1) / 2) ** 3 - 1 - 0.4) + 10.0 > 0
    assert theta[claimed].max() == pytest.approx(phi, abs=2e-5)
    points = np.stack([np.cos(theta), np.sin(theta)], 1)
    claims = claim_counts(points, [[1.0, 0.0], [-1.0, 0.0]], 0.4, rule)
    np.testing.assert_array_equal(claims[:, 0], claimed)
    assert sphereface2_cap_angle(0.4, 40.0, 100.0, 3.0) == math.pi  # every point claimed
    assert sphereface2_cap_angle(0.4, 40.0, -100.0, 3.0) == 0.0  # none


@pytest.mark.parametrize(("num_classes", "bias"), [(4, None), (3, 0.0), (6, 20.0), (8, -5.0)])
def test_sphereface2_unclaimed_and_contested_lengths_on_the_circle(num_classes, bias):
    rule = ClaimRule(bias=bias)
    regions = circle_regions(
        geometry.uniform_weight_angles(num_classes), "sphereface2", 0.4, claim_rule=rule,
        resolution=36000,
    )  # fmt: skip
    b = rule.bias_for(num_classes, 0.4)
    phi = sphereface2_cap_angle(0.4, 40.0, b, 3.0)
    spacing = 2 * math.pi / num_classes
    counts = regions.grid_claim_counts
    step = 2 * math.pi / counts.size
    assert counts.max() <= 2  # (caps narrower than 2·spacing here: no triple overlap)
    contested = num_classes * max(0.0, 2 * phi - spacing)
    unclaimed = max(0.0, 2 * math.pi - num_classes * 2 * phi)
    assert np.sum(counts >= 2) * step == pytest.approx(contested, abs=num_classes * 2 * step)
    assert np.sum(counts == 0) * step == pytest.approx(unclaimed, abs=num_classes * 2 * step)
    contested_length = sum(end - start for start, end in regions.contested_arcs)
    assert contested_length == pytest.approx(contested, abs=num_classes * 3 * step)
    sole = (regions.grid_labels >= 0).sum() * step
    assert sole == pytest.approx(2 * math.pi - contested - unclaimed, abs=num_classes * 3 * step)


def test_sphereface2_on_the_sphere_claims_caps_of_the_right_area():
    points = geometry.fibonacci_sphere(40000)
    weights = np.eye(3)
    rule = ClaimRule(bias=12.0)
    claims = claim_counts(points, weights, 0.4, rule)
    phi = sphereface2_cap_angle(0.4, 40.0, 12.0, 3.0)
    np.testing.assert_allclose(claims.mean(0), (1 - math.cos(phi)) / 2, atol=2e-3)
    labels = geometry.classify_points(points, weights, "sphereface2", 0.4, claim_rule=rule)
    count = claims.sum(1)
    assert np.all(labels[count != 1] == -1)
    np.testing.assert_array_equal(labels[count == 1], np.argmax(claims[count == 1], 1))
    assert (count == 0).any() and (count >= 2).any()


def test_default_bias_is_the_losses_starting_bias():
    from sphereviz.losses.sphereface2 import initial_bias

    assert ClaimRule().bias_for(10, 0.4) == initial_bias(10, 0.4, 40.0, 0.7, 3.0)


def test_errors_name_what_to_do():
    with pytest.raises(ValueError, match="claim_rule is SphereFace2's rule"):
        geometry.classify_points([[1.0, 0.0]], np.eye(2), "cosface", claim_rule=ClaimRule())
    with pytest.raises(ValueError, match="method='grid'"):
        circle_regions([0.0, 1.0], "sphereface2", method="closed-form")
    with pytest.raises(ValueError, match=r"m must be a finite number >= 1 for SphereFace-R"):
        circle_regions([0.0, 1.0], "sphereface-r", 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        circle_regions([0.0, 1.0], "sphereface2", 1.5)
    with pytest.raises(ValueError, match="no pairwise reach or effective m"):
        geometry.annealed_margin(0.4, loss="sphereface2")
    with pytest.raises(ValueError, match="ClaimRule.t must be a finite number >= 1"):
        ClaimRule(t=0.5)
    assert geometry.canonical_loss_name("SphereFaceR") == "sphereface-r"
    assert geometry.canonical_loss_name("lmcl") == "cosface"
