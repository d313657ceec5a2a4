"""What a LossSpec says about a loss's behaviour (target, region rule, plain score, closed form,
annealing) matches independent formulas and what the decision rule does."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sphereviz import geometry
from sphereviz.config import ANNEALED_LOSSES
from sphereviz.losses.registry import LOSS_SPECS, LossSpec, loss_spec

THETA = np.linspace(0.0, math.pi, 181)


def test_each_target_is_its_papers_formula():
    cos = np.cos(THETA)
    np.testing.assert_allclose(loss_spec("cosface").target(cos, 0.35), cos - 0.35)
    inside = THETA < math.pi - 0.5  # ArcFace's fallback starts at π − m
    np.testing.assert_allclose(
        loss_spec("arcface").target(cos, 0.5)[inside], np.cos(THETA[inside] + 0.5), atol=1e-12
    )
    for name in ("a-softmax", "l-softmax", "sphereface-r"):  # ψ = cos(mθ) on [0, π/m]
        first_piece = THETA <= math.pi / 3
        np.testing.assert_allclose(
            loss_spec(name).target(cos, 3)[first_piece], np.cos(3 * THETA[first_piece]),
            atol=1e-9,
        )  # fmt: skip


def test_the_rules_say_which_losses_take_what():
    assert {n for n, s in LOSS_SPECS.items() if s.region_rule == "argmax"} == {
        "softmax", "modified-softmax", "normface"
    }  # fmt: skip
    assert [n for n, s in LOSS_SPECS.items() if s.region_rule == "claims"] == ["sphereface2"]
    assert [n for n, s in LOSS_SPECS.items() if s.plain_score == "logit"] == ["softmax"]
    assert [n for n, s in LOSS_SPECS.items() if s.plain_score == "weighted cosine"] == ["l-softmax"]
    weights = np.array([[1.0, 0.0], [0.0, 1.0]])
    points = np.array([[1.0, 0.2], [0.2, 1.0]])
    geometry.classify_points(points, weights, "softmax", biases=[0.1, 0.0])  # biases: logits
    with pytest.raises(ValueError, match="biases only exist in softmax"):
        geometry.classify_points(points, weights, "normface", biases=[0.1, 0.0])
    with pytest.raises(ValueError, match="claim_rule is SphereFace2's rule"):
        geometry.classify_points(points, weights, "cosface", claim_rule=geometry.ClaimRule())


def test_equal_norms_give_the_equivalent_losses_regions():
    angles = [0.0, math.radians(100)]
    for name, spec in LOSS_SPECS.items():
        if spec.equal_norms_as is None:
            continue
        mine = geometry.circle_regions(angles, name, None, method="grid")
        theirs = geometry.circle_regions(angles, spec.equal_norms_as, None, method="grid")
        np.testing.assert_array_equal(mine.grid_labels, theirs.grid_labels)
        assert mine.max_intra_class_angle == pytest.approx(theirs.max_intra_class_angle)


def test_closed_forms_follow_the_margin_kind():
    # SphereFace-R's "angle" closed form is A-Softmax's with the same real m (boundary rule)
    real = geometry.binary_closed_form(math.pi / 2, "sphereface-r", 2.5)
    boundary = geometry.binary_closed_form(math.pi / 2, "a-softmax", 2.5)
    assert (real.start, real.end) == pytest.approx((boundary.start, boundary.end))
    assert real.end == pytest.approx((math.pi / 2) / 3.5)  # θ₁₂/(m+1)
    assert loss_spec("softmax").closed_form is None
    assert loss_spec("sphereface2").closed_form is None


def test_the_annealed_losses_carry_the_official_schedules():
    assert set(ANNEALED_LOSSES) == {n for n, s in LOSS_SPECS.items() if s.anneals}
    assert set(ANNEALED_LOSSES) == {"a-softmax", "l-softmax"}
    sphereface = ANNEALED_LOSSES["a-softmax"]
    assert (sphereface.base, sphereface.gamma, sphereface.power, sphereface.lambda_min) == (
        1000.0, 0.12, 1.0, 5.0
    )  # fmt: skip
    assert ANNEALED_LOSSES["l-softmax"].lambda_min == 0.0


def test_a_spec_refuses_behaviour_that_contradicts_itself():
    with pytest.raises(ValueError, match="a target function exactly for the margin rule"):
        LossSpec("x", "X", "cosine offset", 0.3)  # a margin but no target
    with pytest.raises(ValueError, match="a target function exactly for the margin rule"):
        LossSpec("x", "X", target=np.cos)  # a target but no margin
    with pytest.raises(ValueError, match="an annealing schedule exactly when"):
        LossSpec("x", "X", "integer m", 4, target=np.cos, anneals=True)
    with pytest.raises(ValueError, match="region_rule"):
        LossSpec("x", "X", region_rule="vote")
