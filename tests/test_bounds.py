"""The sympy derivation of the bounds on m, its numeric cross-check and ``sphereviz bounds``.

Truths used: the paper's results (m_min = 2 + √3 and 3, the polynomials m² − 4m + 1 and
(m − 3)(m + 1), the case threshold and the wrapped condition) as exact sympy objects, and
the independent dense-grid geometry of ``sphereviz.geometry`` for the derived expressions.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import sympy as sp

from sphereviz import bounds, geometry

m, theta = bounds.m, bounds.theta


@pytest.fixture(scope="module")
def binary():
    return bounds.derive_binary_bound()


@pytest.fixture(scope="module")
def multiclass():
    return bounds.derive_multiclass_bound()


@pytest.fixture(scope="module")
def check():
    return bounds.numeric_cross_check()


def test_binary_bound_is_two_plus_sqrt3_exactly(binary):
    assert isinstance(binary.m_min, sp.Expr)
    assert sp.simplify(binary.m_min - (2 + sp.sqrt(3))) == 0
    assert binary.smallest_integer_m == 4
    assert binary.solution == sp.Interval(2 + sp.sqrt(3), sp.oo)
    assert sp.expand(binary.polynomial - (m**2 - 4 * m + 1)) == 0
    expected_roots = (2 - sp.sqrt(3), 2 + sp.sqrt(3))
    assert len(binary.roots) == 2
    for root, expected in zip(binary.roots, expected_roots, strict=True):
        assert sp.simplify(root - expected) == 0


def test_binary_case_threshold_and_wrapped_condition(binary):
    assert sp.simplify(binary.case_threshold - (m - 1) * sp.pi / m) == 0
    assert isinstance(binary.wrapped_condition, sp.GreaterThan)
    assert binary.wrapped_condition.lhs == theta
    assert sp.simplify(binary.wrapped_condition.rhs - 2 * sp.pi / (m - 1)) == 0
    assert sp.expand(binary.wrapped_polynomial - (m**2 - 4 * m + 1)) == 0


def test_binary_expressions_are_the_papers(binary):
    assert sp.simplify(binary.toward - theta / (m + 1)) == 0
    assert sp.simplify(binary.away - theta / (m - 1)) == 0
    assert sp.simplify(binary.away_wrapped - (2 * sp.pi - theta) / (m + 1)) == 0
    assert sp.simplify(binary.min_inter - (m - 1) * theta / (m + 1)) == 0
    assert sp.simplify(binary.max_intra_wrapped - 2 * sp.pi / (m + 1)) == 0


def test_derived_binary_expressions_match_the_dense_grid(binary):
    intra_first = sp.lambdify((m, theta), binary.max_intra_first)
    intra_wrapped = sp.lambdify((m, theta), binary.max_intra_wrapped)
    inter = sp.lambdify((m, theta), binary.min_inter)
    threshold = sp.lambdify(m, binary.case_threshold)
    resolution = 7200
    step = 2 * math.pi / resolution
    for m_value in (1.5, 2.5, 3.0, 4.0, 5.5):
        for theta_deg in (20, 60, 100, 140, 175):
            theta_value = math.radians(theta_deg)
            regions = geometry.circle_regions(
                [0.0, theta_value],
                "a-softmax",
                m_value,
                rule="boundary",
                method="grid",
                resolution=resolution,
            )
            first = theta_value <= threshold(m_value)
            intra = (intra_first if first else intra_wrapped)(m_value, theta_value)
            assert regions.max_intra_class_angle == pytest.approx(intra, abs=2 * step + 1e-9)
            assert regions.min_inter_class_angle == pytest.approx(
                inter(m_value, theta_value), abs=2 * step + 1e-9
            )


@pytest.mark.parametrize(
    "m_value, expected",
    [
        (1, sp.EmptySet),
        (sp.Rational(3, 2), sp.EmptySet),
        (2.9, sp.EmptySet),
        (3, sp.FiniteSet(sp.pi)),
        (sp.Rational(7, 2), sp.Interval(sp.Rational(4, 5) * sp.pi, sp.pi)),
        (sp.Rational(37, 10), sp.Interval(sp.Rational(20, 27) * sp.pi, sp.pi)),
        (2 + sp.sqrt(3), sp.Interval.Lopen(0, sp.pi)),
        (4, sp.Interval.Lopen(0, sp.pi)),
        (6.5, sp.Interval.Lopen(0, sp.pi)),
    ],
)
def test_binary_criterion_angles_closed_form(m_value, expected):
    """No θ₁₂ below m = 3; [2π/(m−1), π] for 3 ≤ m < 2 + √3; all of (0, π] from 2 + √3 on."""
    assert bounds.binary_criterion_angles(m_value) == expected


def _holds_at(angles: sp.Set, theta_value: float) -> bool:
    """θ₁₂ (a float) lies in the set, up to the library's criterion tolerance at its lower end."""
    if angles.is_empty:
        return False
    return float(angles.inf) - geometry.CRITERION_TOLERANCE <= theta_value <= math.pi


def test_binary_criterion_angles_match_the_closed_form_regions_and_the_grid():
    for m_value in np.arange(1.0, 6.0001, 0.25):
        angles = bounds.binary_criterion_angles(float(m_value))
        for theta_deg in np.arange(1.0, 180.0001, 1.0):
            theta_value = math.radians(theta_deg)
            region = geometry.binary_closed_form(theta_value, "a-softmax", float(m_value))
            assert _holds_at(angles, theta_value) == region.criterion_holds, (m_value, theta_deg)
    # the decision rule on a dense grid of directions, either side of 2π/(m−1) = 144° at m = 3.5
    for theta_deg, expected in ((140.0, False), (150.0, True)):
        theta_value = math.radians(theta_deg)
        grid = geometry.circle_regions(
            [0.0, theta_value], "a-softmax", 3.5, rule="boundary", method="grid"
        )
        assert grid.criterion_holds is expected
        assert _holds_at(bounds.binary_criterion_angles(3.5), theta_value) is expected


@pytest.mark.parametrize("bad", [0.5, -1.0, float("nan"), sp.Rational(1, 2), sp.I])
def test_binary_criterion_angles_refuses_m_below_one(bad):
    with pytest.raises(ValueError, match="m"):
        bounds.binary_criterion_angles(bad)


def test_multiclass_bound_is_three_for_every_k(multiclass):
    assert sp.simplify(multiclass.m_min - 3) == 0
    assert multiclass.smallest_integer_m == 3
    assert sp.expand(multiclass.polynomial - (m - 3) * (m + 1)) == 0
    assert bounds.num_classes not in multiclass.polynomial.free_symbols
    assert multiclass.solution == sp.Interval(3, sp.oo)


def test_derived_multiclass_expressions_match_the_dense_grid(multiclass):
    neighbour = sp.Symbol("theta", positive=True)
    intra = sp.lambdify((m, neighbour), multiclass.max_intra)
    inter = sp.lambdify((m, neighbour), multiclass.min_inter)
    resolution = 7200
    step = 2 * math.pi / resolution
    for count in (3, 5, 8, 12):
        for m_value in (1.5, 3.0, 4.5):
            regions = geometry.circle_regions(
                geometry.uniform_weight_angles(count),
                "a-softmax",
                m_value,
                rule="boundary",
                method="grid",
                resolution=resolution,
            )
            spacing = 2 * math.pi / count
            assert regions.max_intra_class_angle == pytest.approx(
                intra(m_value, spacing), abs=2 * step + 1e-9
            )
            assert regions.min_inter_class_angle == pytest.approx(
                inter(m_value, spacing), abs=2 * step + 1e-9
            )


def test_derivation_reports_in_latex_and_text(binary, multiclass):
    for derivation in (binary.derivation, multiclass.derivation):
        assert len(derivation.steps) >= 5
        latex = derivation._repr_latex_()
        assert latex.startswith("$$") and latex.endswith("$$") and r"\frac" in latex
        markdown = derivation._repr_markdown_()
        assert markdown.count("$$") == 2 * len(derivation.steps)
        pairs = derivation.as_pairs()
        assert len(pairs) == len(derivation.steps)
        assert all(text and tex for text, tex in pairs)
    text = binary.derivation.as_text()
    assert "m**2 - 4*m + 1 >= 0" in text and "2 + sqrt(3)" in text
    assert "(m - 3)*(m + 1) >= 0" in multiclass.derivation.as_text()
    assert sp.latex(binary.polynomial) in binary.derivation.as_latex()


def test_binary_derivation_concludes_only_after_the_wrapped_case(binary):
    """The conclusion on m_min comes after both cases are solved (it needs both), states the
    paper's ≥ (a necessary bound), and is followed only by the worked examples."""
    texts = [step.text for step in binary.derivation.steps]
    explanations = [step.explanation for step in binary.derivation.steps]
    (conclusion,) = [i for i, text in enumerate(texts) if text.startswith("m_min >=")]
    wrapped = [i for i, words in enumerate(explanations) if "wrapped" in words.lower()]
    assert len(wrapped) >= 3, explanations  # the wrapped reach, its condition, its whole range
    assert max(wrapped) < conclusion, explanations
    assert "2 + sqrt(3)" in texts[conclusion] and "m_int = 4" in texts[conclusion]
    assert all(words.startswith("Check at m =") for words in explanations[conclusion + 1 :])
    assert not any(text.startswith("m_min =") for text in texts), texts


def test_numeric_check_agrees_and_flips_exactly_at_the_bounds(check):
    assert check.disagreements() == []
    assert check.agrees and check.psi_agrees
    m_min = 2 + math.sqrt(3)
    for value, expected in [
        (m_min - bounds.NEAR_BOUND_OFFSET, False),
        (m_min, True),
        (m_min + bounds.NEAR_BOUND_OFFSET, True),
    ]:
        (index,) = np.flatnonzero(np.isclose(check.m_values, value, rtol=0, atol=1e-12))
        assert bool(check.binary_holds[index]) is expected
    for value, expected in [(3 - bounds.NEAR_BOUND_OFFSET, False), (3.0, True)]:
        (index,) = np.flatnonzero(np.isclose(check.m_values, value, rtol=0, atol=1e-12))
        assert np.all(check.uniform_holds[:, index] == expected)
    integers = list(check.integer_m_values)
    assert list(check.psi_binary_holds) == [value >= 4 for value in integers]
    assert np.all(check.psi_uniform_holds == (np.array(integers) >= 3))


def test_numeric_check_reports_a_wrong_bound(check):
    wrong = dataclasses.replace(check, binary_m_min=3.5)
    assert not wrong.agrees
    assert any(line.startswith("binary") for line in wrong.disagreements())


def test_cli_json_summary(capsys):
    assert bounds.main(["--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["binary_m_min"] == "2 + sqrt(3)"
    assert sp.simplify(sp.sympify(summary["binary_m_min"]) - (2 + sp.sqrt(3))) == 0
    assert summary["binary_m_min_float"] == pytest.approx(2 + math.sqrt(3), abs=1e-12)
    assert summary["binary_smallest_integer_m"] == 4
    mm = sp.Symbol("m")
    assert sp.expand(sp.sympify(summary["binary_polynomial"]) - (mm**2 - 4 * mm + 1)) == 0
    assert sp.expand(sp.sympify(summary["multiclass_polynomial"]) - (mm - 3) * (mm + 1)) == 0
    assert sp.sympify(summary["multiclass_m_min"]) == 3
    assert summary["numeric_check_agrees"] is True
    assert any("Property 2" in line for line in lines[:-1])


def test_cli_latex_mode_prints_latex(capsys):
    assert bounds.main(["--latex"]) == 0
    out = capsys.readouterr().out
    assert r"\frac{\theta_{12}}{m + 1}" in out
    with pytest.raises(SystemExit):
        bounds.main(["--resolution", "2"])
