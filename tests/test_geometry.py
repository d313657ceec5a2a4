"""Decision regions, the criterion and feature statistics (sphereviz.geometry).

Truths used: the paper's worked numbers (SphereFace §3.3), closed forms against an independent
dense-grid evaluation of the decision rule, the boundary equations themselves, brute-force
loops, a hand-computed Angular Fisher Score, and rotations of the circle into 3-D.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from sphereviz import geometry
from sphereviz.geometry import (
    binary_closed_form,
    circle_regions,
    classify_points,
    uniform_closed_form,
    uniform_weight_angles,
)

RESOLUTION = 7200  # 0.05° grid for the agreement tests
STEP = 2 * math.pi / RESOLUTION
GRID_TOLERANCE = 2 * STEP + 1e-9  # a grid span/gap is within two steps of the true one


def test_importing_geometry_does_not_import_torch():
    code = "import sys, sphereviz.geometry, sphereviz.bounds; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------------------- known numbers


@pytest.mark.parametrize("method", ["closed-form", "grid"])
@pytest.mark.parametrize(
    ("weights_deg", "m", "span_deg", "gap_deg", "holds"),
    [
        ([0, 90], 4, 48.0, 54.0, True),
        ([0, 90], 3, 67.5, 45.0, False),
        ([0, 120, 240], 3, 60.0, 60.0, True),
    ],
)
def test_papers_worked_numbers(method, weights_deg, m, span_deg, gap_deg, holds):
    regions = circle_regions(np.radians(weights_deg), "a-softmax", m, method=method)
    default_step_deg = 360 / geometry.CIRCLE_RESOLUTION
    tolerance = 1e-9 if method == "closed-form" else 2 * default_step_deg + 1e-9
    assert math.degrees(regions.max_intra_class_angle) == pytest.approx(span_deg, abs=tolerance)
    assert math.degrees(regions.min_inter_class_angle) == pytest.approx(gap_deg, abs=tolerance)
    assert math.degrees(regions.angular_margin) == pytest.approx(gap_deg, abs=tolerance)
    assert regions.criterion_holds is holds
    assert regions.method == method


def test_binary_margin_is_the_papers_angular_margin():
    for theta12_deg in (30, 75, 120, 170):
        for m in (2, 3, 4, 5):
            regions = circle_regions(np.radians([10, 10 + theta12_deg]), "sphereface", m)
            assert math.degrees(regions.angular_margin) == pytest.approx(
                (m - 1) / (m + 1) * theta12_deg, abs=1e-9
            )


# ------------------------------------------------------- closed forms against the dense grid


def _grid(weight_angles, loss, m, rule="boundary"):
    return circle_regions(weight_angles, loss, m, rule=rule, method="grid", resolution=RESOLUTION)


def _assert_same_regions(closed, grid):
    assert closed.criterion_holds == grid.criterion_holds or (
        abs(closed.max_intra_class_angle - closed.min_inter_class_angle) < 2 * GRID_TOLERANCE
    )
    assert grid.max_intra_class_angle == pytest.approx(
        closed.max_intra_class_angle, abs=GRID_TOLERANCE
    )
    assert grid.min_inter_class_angle == pytest.approx(
        closed.min_inter_class_angle, abs=GRID_TOLERANCE
    )
    for closed_arcs, grid_arcs in zip(closed.arcs, grid.arcs, strict=True):
        assert len(closed_arcs) == len(grid_arcs) == 1
        (closed_start, closed_end), (grid_start, grid_end) = closed_arcs[0], grid_arcs[0]
        start_error = (grid_start - closed_start + math.pi) % (2 * math.pi) - math.pi
        assert abs(start_error) <= STEP + 1e-9
        assert (grid_end - grid_start) == pytest.approx(
            closed_end - closed_start, abs=2 * STEP + 1e-9
        )


def test_binary_a_softmax_closed_form_matches_grid_in_both_cases():
    cases = set()
    for m in (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 2 + math.sqrt(3), 4.0, 5.0, 6.0):
        for theta12_deg in range(10, 181, 10):
            angles = np.radians([25.0, 25.0 + theta12_deg])
            closed = circle_regions(angles, "a-softmax", m, rule="boundary", method="closed-form")
            _assert_same_regions(closed, _grid(angles, "a-softmax", m))
            cases.add(binary_closed_form(math.radians(theta12_deg), "a-softmax", m).case)
    assert cases == {"first", "wrapped"}


def test_binary_weights_given_clockwise_give_the_mirrored_regions():
    angles = np.radians([100.0, 40.0])  # W2 is 60° clockwise from W1
    closed = circle_regions(angles, "a-softmax", 4, method="closed-form")
    _assert_same_regions(closed, _grid(angles, "a-softmax", 4))


@pytest.mark.parametrize(
    ("loss", "margins"),
    [("cosface", [0.0, 0.1, 0.35, 0.8, 1.5]), ("arcface", [0.0, 0.2, 0.5, 1.0, 2.0])],
)
def test_binary_cosface_and_arcface_closed_forms_match_grid(loss, margins):
    for m in margins:
        for theta12_deg in range(20, 181, 20):
            angles = np.radians([0.0, theta12_deg])
            closed = circle_regions(angles, loss, m, method="closed-form")
            grid = _grid(angles, loss, m)
            if closed.method == "closed-form" and not all(closed.arcs):
                assert not any(grid.arcs), (loss, m, theta12_deg)
                assert not closed.criterion_holds and not grid.criterion_holds
                continue
            _assert_same_regions(closed, grid)


@pytest.mark.parametrize("loss", ["a-softmax", "cosface", "arcface", "modified-softmax"])
def test_uniform_closed_form_matches_grid(loss):
    margins = {
        "a-softmax": [1.5, 2.0, 3.0, 4.0],
        "cosface": [0.05, 0.2],
        "arcface": [0.1, 0.4],
        "modified-softmax": [None],
    }[loss]
    for num_classes in range(2, 13):
        angles = uniform_weight_angles(num_classes, offset=0.3)
        for m in margins:
            closed = circle_regions(angles, loss, m, rule="boundary", method="closed-form")
            grid = _grid(angles, loss, m)
            if not all(closed.arcs):
                assert not any(grid.arcs)
                continue
            _assert_same_regions(closed, grid)


def test_closed_form_edges_satisfy_the_boundary_equations():
    for m in (1.5, 3.0, 4.0):
        for theta12 in np.radians([30.0, 90.0, 150.0, 180.0]):
            region = binary_closed_form(theta12, "a-softmax", m)
            # near edge φ = end: m·φ = θ₁₂ − φ;  far edge φ = start < 0: m·|φ| = θ₂(φ)
            assert m * region.end == pytest.approx(theta12 - region.end)
            far = -region.start
            angle_to_w2 = min(theta12 + far, 2 * math.pi - theta12 - far)
            assert m * far == pytest.approx(angle_to_w2)


def test_cosface_uniform_region_can_be_empty_and_the_grid_agrees():
    # 10 classes 36° apart: cos 0 − 0.35 = 0.65 < cos 36°, so W_i itself is not in its region.
    assert uniform_closed_form(10, "cosface", 0.35).case == "empty"
    regions = circle_regions(uniform_weight_angles(10), "cosface", 0.35, method="grid")
    assert np.all(regions.grid_labels == -1) and not regions.criterion_holds


# ---------------------------------------------------------------- the criterion flips at m_min


def test_binary_criterion_flips_at_two_plus_sqrt3_in_the_first_case():
    theta12 = math.radians(120.0)  # first case for every m near 2 + √3
    m_min = 2 + math.sqrt(3)
    for m, expected in [(3, False), (m_min - 0.02, False), (m_min, True), (4, True)]:
        closed = binary_closed_form(theta12, "a-softmax", m)
        assert closed.case == "first"
        assert closed.criterion_holds is expected
        grid = circle_regions([0.0, theta12], "a-softmax", m, rule="boundary", method="grid")
        assert grid.criterion_holds is expected, m


def test_uniform_criterion_flips_at_three_for_every_k():
    for num_classes in range(3, 13):
        angles = uniform_weight_angles(num_classes)
        for m, expected in [(2.9, False), (3.0, True), (3.1, True)]:
            assert uniform_closed_form(num_classes, "a-softmax", m).criterion_holds is expected
            grid = circle_regions(angles, "a-softmax", m, rule="boundary", method="grid")
            assert grid.criterion_holds is expected, (num_classes, m)


# ------------------------------------------------------------------------ the decision rule


def test_psi_rule_and_boundary_rule_give_the_same_regions_for_integer_m():
    rng = np.random.default_rng(3)
    for m in (1, 2, 3, 4, 5):
        for _ in range(3):
            angles = rng.uniform(0, 2 * np.pi, size=rng.integers(2, 7))
            psi = _grid(angles, "a-softmax", m, rule="psi").grid_labels
            boundary = _grid(angles, "a-softmax", m, rule="boundary").grid_labels
            assert np.count_nonzero(psi != boundary) <= 2  # at most grid points on an edge


def test_classify_points_matches_a_direct_loop_over_classes():
    rng = np.random.default_rng(0)
    points, weights = rng.normal(size=(300, 4)), rng.normal(size=(5, 4))
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    cos = unit @ (weights / np.linalg.norm(weights, axis=1, keepdims=True)).T
    theta = np.arccos(np.clip(cos, -1, 1))
    rules = {
        "cosface": (0.3, lambda i, j, n: cos[n, i] - 0.3 > cos[n, j]),
        "arcface": (0.5, lambda i, j, n: theta[n, i] + 0.5 < theta[n, j]),
        "a-softmax": (3, lambda i, j, n: 3 * theta[n, i] < theta[n, j]),
    }
    for loss, (m, beats) in rules.items():
        expected = np.full(len(points), -1)
        for n in range(len(points)):
            for i in range(len(weights)):
                if all(beats(i, j, n) for j in range(len(weights)) if j != i):
                    expected[n] = i
        np.testing.assert_array_equal(classify_points(points, weights, loss, m), expected)


def test_softmax_regions_use_norms_and_biases():
    weights = np.array([[1.0, 0.0], [-1.0, 0.0]])
    points = np.array([[0.2, 0.0], [0.2, 0.0]]) * [[1], [100]]
    # W₁ᵀx + 0 vs W₂ᵀx + 1: a small x goes to class 1 (the bias wins), a large one to class 0.
    labels = classify_points(points, weights, "softmax", biases=[0.0, 1.0])
    np.testing.assert_array_equal(labels, [1, 0])
    regions = circle_regions([0.0, math.pi / 2], "softmax", weight_norms=[2.0, 1.0])
    assert regions.method == "grid" and not regions.criterion_holds  # argmax: no gap at all
    boundary = np.arctan2(2.0, 1.0)  # 2cos φ = sin φ
    labels = regions.grid_labels
    switch = regions.grid_angles[np.flatnonzero(np.diff(labels))[0] + 1]
    assert switch == pytest.approx(boundary, abs=2 * math.pi / geometry.CIRCLE_RESOLUTION)


@pytest.mark.parametrize("resolution", [360, 3600, 3601])
def test_regions_that_meet_between_grid_points_have_no_gap(resolution):
    """Softmax's argmax covers the whole circle: its regions touch, so every gap is exactly 0."""
    regions = circle_regions(
        np.radians([30.0, 150.0, 250.0]), "softmax", weight_norms=[1.3, 0.8, 1.0],
        biases=[0.2, 0.0, -0.1], resolution=resolution,
    )  # fmt: skip
    assert regions.method == "grid" and (regions.grid_labels >= 0).all()
    assert regions.angular_margin == 0.0 and regions.min_inter_class_angle == 0.0
    assert [gap for *_, gap in regions.gaps] == [0.0, 0.0, 0.0]
    assert (regions.inter_class_angles[~np.eye(3, dtype=bool)] == 0.0).all()
    measures = geometry.grid_measures(regions.grid_labels, 3)
    assert measures.min_inter_class_angle.tolist() == [0.0]


def test_one_empty_grid_point_between_regions_is_still_a_gap():
    labels = np.full(360, -1)
    labels[10:100], labels[101:200] = 0, 1  # point 100 belongs to no class
    measures = geometry.grid_measures(labels, 2)
    step = 2 * math.pi / 360
    assert measures.min_inter_class_angle[0] == pytest.approx(2 * step)  # 99 → 101
    labels[100] = 1  # now the regions meet between points 99 and 100
    assert geometry.grid_measures(labels, 2).min_inter_class_angle[0] == 0.0


def test_array_of_margins_equals_one_call_per_margin():
    angles = np.radians([0.0, 70.0, 200.0])
    weights = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    points = geometry.circle_points(720)
    margins = [1.0, 2.5, 4.0]
    together = classify_points(points, weights, "a-softmax", margins, rule="boundary")
    for row, m in zip(together, margins, strict=True):
        single = classify_points(points, weights, "a-softmax", m, rule="boundary")
        np.testing.assert_array_equal(row, single)


def test_grid_measures_handle_regions_split_in_several_arcs():
    labels = np.full(360, -1)
    labels[0:10] = 0  # class 0 at 0°…9° and at 180°…189°: its span is 180°
    labels[180:190] = 0
    labels[100:110] = 1
    measures = geometry.grid_measures(labels, 2)
    assert math.degrees(measures.max_intra_class_angle[0]) == pytest.approx(180.0)
    # from class 1's last point (109°) to class 0's first point at 180°
    assert math.degrees(measures.min_inter_class_angle[0]) == pytest.approx(71.0)
    assert not measures.criterion_holds[0]


def test_regions_near_a_wrap_at_zero_are_one_arc():
    regions = circle_regions(np.radians([0.0, 180.0]), "a-softmax", 4, method="grid")
    (arc,) = regions.arcs[0]
    assert arc[0] > math.pi and arc[1] > 2 * math.pi  # starts before 0°, ends after it
    assert math.degrees(arc[1] - arc[0]) == pytest.approx(72.0, abs=0.2)  # 2·180/(m+1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"loss": "a-softmax", "m": 2.5}, "rule='boundary'"),
        ({"loss": "arcface", "m": 30}, "radians"),
        ({"loss": "cosface", "m": -0.1}, "CosFace"),
        ({"loss": "triplet", "m": 1}, "unknown loss"),
        ({"loss": "a-softmax", "m": 4, "biases": [0.0, 1.0]}, "biases"),
    ],
)
def test_bad_arguments_raise_helpful_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        circle_regions([0.0, 1.0], **kwargs)


def test_closed_form_rejects_degrees():
    with pytest.raises(ValueError, match="radians"):
        binary_closed_form(90, "a-softmax", 4)


# ---------------------------------------------------------------------------------- sphere


def _random_rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


@pytest.mark.parametrize("loss, m", [("a-softmax", 4), ("cosface", 0.2), ("arcface", 0.4)])
def test_sphere_classification_on_a_great_circle_equals_the_circle(loss, m):
    rotation = _random_rotation(7)
    angles = np.radians([15.0, 95.0, 230.0])
    regions = circle_regions(angles, loss, m, method="grid", resolution=1440)
    embed = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # the xy plane, then rotated
    weights_3d = np.stack([np.cos(angles), np.sin(angles)], axis=1) @ embed @ rotation.T
    points_3d = geometry.circle_points(1440) @ embed @ rotation.T
    labels_3d = classify_points(points_3d, weights_3d, loss, m)
    assert np.count_nonzero(labels_3d != regions.grid_labels) <= 2
    on_sphere = geometry.sphere_region_angles(points_3d, labels_3d, 3)
    assert on_sphere.max_intra_class_angles.max() == pytest.approx(
        regions.max_intra_class_angle, abs=2 * math.pi / 1440 + 1e-9
    )
    assert on_sphere.min_inter_class_angle == pytest.approx(
        regions.min_inter_class_angle, abs=2 * math.pi / 1440 + 1e-9
    )
    assert on_sphere.criterion_holds == regions.criterion_holds


def test_fibonacci_sphere_is_unit_and_area_uniform():
    points = geometry.fibonacci_sphere(20_000)
    np.testing.assert_allclose(np.linalg.norm(points, axis=1), 1.0)
    # a spherical cap z > h has area fraction (1 − h)/2
    for h in (-0.5, 0.0, 0.3, 0.9):
        assert np.mean(points[:, 2] > h) == pytest.approx((1 - h) / 2, abs=1e-3)
    # a cap around any axis, too (it is not just uniform in z)
    axis = np.array([1.0, 1.0, 0.0]) / math.sqrt(2)
    assert np.mean(points @ axis > 0.5) == pytest.approx(0.25, abs=2e-3)


def test_sphere_regions_of_three_orthogonal_weights_are_symmetric():
    points = geometry.fibonacci_sphere(30_000)
    labels = classify_points(points, np.eye(3), "a-softmax", 2)
    fractions = [np.mean(labels == k) for k in range(3)]
    assert max(fractions) - min(fractions) < 5e-3
    # x with θ₀ = 0 is in class 0; the direction (1, 1, 0) is on the boundary (−1 for m = 2)
    on_axes = classify_points(np.array([[1.0, 0, 0], [1.0, 1.0, 0]]), np.eye(3), "a-softmax", 2)
    np.testing.assert_array_equal(on_axes, [0, -1])


# ----------------------------------------------------------------------- feature statistics


def test_angular_fisher_score_hand_computed_example():
    features = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    labels = np.array([0, 0, 1])
    # μ₀ = (½, ½), μ₁ = (3, 0), μ = (4/3, 1/3); cos⟨x, μ₀⟩ = 1/√2 for both class-0 points,
    # cos⟨μ₀, μ⟩ = 5/√34, cos⟨μ₁, μ⟩ = 4/√17.
    within = 2 * (1 - 1 / math.sqrt(2))
    between = 2 * (1 - 5 / math.sqrt(34)) + (1 - 4 / math.sqrt(17))
    assert geometry.angular_fisher_score(features, labels) == pytest.approx(within / between)


def test_angular_fisher_score_is_zero_for_collapsed_classes_and_nan_for_zero_mean():
    features = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 5.0]])
    assert geometry.angular_fisher_score(features, [0, 0, 1, 1]) == pytest.approx(0.0)
    symmetric = np.array([[1.0, 0.0], [-1.0, 0.0]])
    assert math.isnan(geometry.angular_fisher_score(symmetric, [0, 1]))


def test_pair_angles_exhaustive_equal_brute_force():
    rng = np.random.default_rng(1)
    features, labels = rng.normal(size=(30, 3)), rng.integers(0, 4, size=30)
    result = geometry.pair_angles(features, labels)
    same, different = [], []
    for i in range(30):
        for j in range(i + 1, 30):
            a, b = features[i], features[j]
            angle = math.acos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))
            (same if labels[i] == labels[j] else different).append(angle)
    assert result.exhaustive
    np.testing.assert_allclose(np.sort(result.same_class), np.sort(same), atol=1e-12)
    np.testing.assert_allclose(np.sort(result.different_class), np.sort(different), atol=1e-12)


def test_pair_angles_subsample_is_deterministic_and_drawn_from_the_right_pairs():
    rng = np.random.default_rng(2)
    features, labels = rng.normal(size=(600, 3)), rng.integers(0, 5, size=600)
    full = geometry.pair_angles(features, labels, max_pairs=10**6)
    first = geometry.pair_angles(features, labels, max_pairs=5000, seed=4)
    again = geometry.pair_angles(features, labels, max_pairs=5000, seed=4)
    other = geometry.pair_angles(features, labels, max_pairs=5000, seed=5)
    assert full.exhaustive and not first.exhaustive
    np.testing.assert_array_equal(first.same_class, again.same_class)
    assert not np.array_equal(first.same_class, other.same_class)
    assert first.same_class.size == first.different_class.size == 5000
    for sampled, exhaustive in [
        (first.same_class, full.same_class),
        (first.different_class, full.different_class),
    ]:
        reference = np.sort(exhaustive)
        index = np.clip(np.searchsorted(reference, sampled), 1, reference.size - 1)
        nearest = np.minimum(abs(reference[index] - sampled), abs(reference[index - 1] - sampled))
        assert nearest.max() < 1e-12  # every sampled angle is an angle of a pair of that kind
        standard_error = exhaustive.std() / math.sqrt(sampled.size)
        assert abs(sampled.mean() - exhaustive.mean()) < 5 * standard_error


def test_angles_to_class_weights_and_summary_against_a_loop():
    rng = np.random.default_rng(5)
    weights = rng.normal(size=(4, 3))
    labels = rng.integers(0, 4, size=50)
    features = weights[labels] + 0.8 * rng.normal(size=(50, 3))
    own, nearest_other = geometry.angles_to_class_weights(features, labels, weights)

    def angle(a, b):
        return math.acos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))

    for n in range(50):
        assert own[n] == pytest.approx(angle(features[n], weights[labels[n]]))
        others = [angle(features[n], weights[k]) for k in range(4) if k != labels[n]]
        assert nearest_other[n] == pytest.approx(min(others))
    summary = geometry.feature_summary(features, labels, weights)
    assert summary["mean_angle_to_own_class_deg"] == pytest.approx(np.degrees(own.mean()))
    assert summary["nearest_weight_accuracy"] == pytest.approx(np.mean(own < nearest_other))
    means = np.array([features[labels == k].mean(axis=0) for k in range(4)])
    expected_means = min(angle(means[i], means[j]) for i in range(4) for j in range(i + 1, 4))
    assert summary["min_class_mean_angle_deg"] == pytest.approx(math.degrees(expected_means))
    expected_weights = min(angle(weights[i], weights[j]) for i in range(4) for j in range(i + 1, 4))
    assert summary["min_class_weight_angle_deg"] == pytest.approx(math.degrees(expected_weights))
    # the paper's criterion on the features, against every pair by a loop
    same = [
        angle(features[a], features[b])
        for a in range(50)
        for b in range(a + 1, 50)
        if labels[a] == labels[b]
    ]
    different = [angle(features[a], features[b]) for a in range(50) for b in range(a + 1, 50)
                 if labels[a] != labels[b]]  # fmt: skip
    assert summary["max_intra_class_angle_deg"] == pytest.approx(math.degrees(max(same)))
    assert summary["min_inter_class_angle_deg"] == pytest.approx(math.degrees(min(different)))
    assert summary["criterion_holds"] == (max(same) <= min(different))
    assert summary["median_same_class_angle_deg"] == pytest.approx(math.degrees(np.median(same)))
    assert summary["intra_class_angle_p95_deg"] == pytest.approx(
        math.degrees(np.percentile(same, 95))
    )
    assert summary["inter_class_angle_p5_deg"] == pytest.approx(
        math.degrees(np.percentile(different, 5))
    )
    assert summary["angular_fisher_score"] == pytest.approx(
        geometry.angular_fisher_score(features, labels)
    )


def test_feature_summary_of_features_on_their_weights():
    weights = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = np.array([0, 0, 1, 2, 2])
    features = 3.0 * weights[labels]
    summary = geometry.feature_summary(features, labels, weights)
    assert summary["mean_angle_to_own_class_deg"] == pytest.approx(0.0, abs=1e-6)
    assert summary["min_class_mean_angle_deg"] == pytest.approx(90.0)
    assert summary["min_inter_class_angle_deg"] == pytest.approx(90.0)
    assert summary["max_intra_class_angle_deg"] == pytest.approx(0.0, abs=1e-5)
    assert summary["criterion_holds"] and summary["pair_angle_eer"] == pytest.approx(0.0)
    assert summary["nearest_weight_accuracy"] == 1.0
    assert summary["angular_fisher_score"] == pytest.approx(0.0, abs=1e-12)


def test_feature_statistics_validate_labels():
    with pytest.raises(ValueError, match="class_weights"):
        geometry.feature_summary(np.ones((2, 2)), [0, 5], np.eye(2))
    with pytest.raises(ValueError, match="zero-length"):
        geometry.angles_to_class_weights(np.zeros((2, 2)), [0, 1], np.eye(2))


def test_annealed_a_softmax_region_lies_between_m_equal_1_and_the_pure_margin():
    # (λ cos θ + ψ(θ))/(1 + λ) lies between ψ(θ) and cos θ, so the regions are nested.
    angles = np.radians([0.0, 100.0, 220.0])
    pure = circle_regions(angles, "a-softmax", 4, method="grid").grid_labels
    annealed = circle_regions(angles, "a-softmax", 4, annealing_lambda=5.0).grid_labels
    plain = circle_regions(angles, "modified-softmax", method="grid").grid_labels
    assert np.all(annealed[pure >= 0] == pure[pure >= 0])
    assert np.all(plain[annealed >= 0] == annealed[annealed >= 0])
    assert np.count_nonzero(pure >= 0) < np.count_nonzero(annealed >= 0)
    assert np.count_nonzero(annealed >= 0) < np.count_nonzero(plain >= 0)


@pytest.mark.parametrize("block_entries", [1 << 20, 7])
def test_feature_criterion_extremes_against_every_pair(monkeypatch, block_entries):
    """Max intra / min inter equal the extremes over every pair i < j, written out with
    ``triu_indices``, in 300 small random sets (so that every kind of pair is the extreme in
    some): classes of unequal sizes, classes of one, shuffled labels, and blocks so small (7
    cosines) that a class spans several of them."""
    from sphereviz.geometry import features as feature_statistics

    monkeypatch.setattr(feature_statistics, "_BLOCK_ENTRIES", block_entries)
    rng = np.random.default_rng(11)
    for _ in range(300):
        sizes = rng.integers(1, 6, size=rng.integers(2, 5))
        sizes[0] = max(sizes[0], 2)  # the criterion needs a class with two features
        labels = rng.permutation(np.repeat(np.arange(sizes.size), sizes))
        features = rng.normal(size=(labels.size, 3))
        unit = features / np.linalg.norm(features, axis=1, keepdims=True)
        first, second = np.triu_indices(labels.size, k=1)
        angles = np.arccos(np.clip(np.sum(unit[first] * unit[second], axis=1), -1, 1))
        same = labels[first] == labels[second]
        criterion = geometry.feature_criterion(features, labels)
        assert criterion.max_intra_class_angle == pytest.approx(angles[same].max(), abs=1e-12)
        assert criterion.min_inter_class_angle == pytest.approx(angles[~same].min(), abs=1e-12)


def test_pair_angle_eer_against_a_threshold_sweep():
    """The EER of thresholding pair angles equals the crossing of FAR and FRR in a sweep."""
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(5), 30)
    features = np.eye(5)[labels] + 0.9 * rng.normal(size=(150, 5))
    criterion = geometry.feature_criterion(features, labels)
    pairs = geometry.pair_angles(features, labels)
    thresholds = np.linspace(0, math.pi, 20001)
    frr = np.array([np.mean(pairs.same_class >= t) for t in thresholds[::20]])
    far = np.array([np.mean(pairs.different_class < t) for t in thresholds[::20]])
    crossing = np.argmin(np.abs(frr - far))
    assert criterion.pair_angle_eer == pytest.approx((frr[crossing] + far[crossing]) / 2, abs=0.01)
    assert 0.05 < criterion.pair_angle_eer < 0.5


def test_unit_rows_keeps_each_direction_at_unit_length_and_leaves_a_zero_row_zero():
    rows = np.array([[3.0, 4.0], [0.0, 0.0], [-2.0, 0.0], [1e-150, 1e-150]])
    unit = geometry.unit_rows(rows)
    # independent truth: hand-computed unit vectors (3-4-5 triangle, an axis, the diagonal)
    np.testing.assert_allclose(
        unit, [[0.6, 0.8], [0.0, 0.0], [-1.0, 0.0], [math.sqrt(0.5), math.sqrt(0.5)]]
    )
    assert not np.any(np.isnan(unit))
    with pytest.raises(ValueError, match="2-D array"):
        geometry.unit_rows(np.array([3.0, 4.0]))


def test_checked_statistics_refuse_a_zero_row_that_unit_rows_lets_through():
    with pytest.raises(ValueError, match="zero-length rows"):
        geometry.min_pairwise_angle([[1.0, 0.0], [0.0, 0.0]])
