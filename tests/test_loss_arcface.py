"""ArcFace's target beyond θ + m > π, CosFace and NormFace as its special cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sphereviz.losses import ArcFaceLoss, CosFaceLoss, NormFaceLoss


def target_curve(loss, cosines: np.ndarray) -> np.ndarray:
    c = torch.as_tensor(cosines, dtype=torch.float64)
    return loss.margin_target_logit(c, torch.full_like(c, loss.scale)).numpy()


@pytest.mark.parametrize("margin", [0.1, 0.5, 1.0])
def test_target_keeps_decreasing_in_theta_beyond_pi_minus_m(margin):
    loss = ArcFaceLoss(4, 2, margin=margin, scale=1.0)
    theta = np.linspace(0, math.pi, 2001)
    target = target_curve(loss, np.cos(theta))
    assert (np.diff(target) < 0).all()
    # cos(θ + m) itself would turn back up: the fallback is what keeps it monotonic
    assert not (np.diff(np.cos(theta + margin)) < 0).all()
    inside = theta < math.pi - margin - 1e-3
    np.testing.assert_allclose(target[inside], np.cos(theta[inside] + margin), atol=1e-6)
    beyond = theta > math.pi - margin
    expected_fallback = np.cos(theta[beyond]) - margin * math.sin(margin)
    np.testing.assert_allclose(target[beyond], expected_fallback, atol=1e-12)


def test_easy_margin_leaves_obtuse_angles_alone():
    loss = ArcFaceLoss(4, 2, margin=0.5, scale=2.0, easy_margin=True)
    c = np.array([-0.9, -0.1, 0.1, 0.9])
    np.testing.assert_allclose(
        target_curve(loss, c),
        2.0 * np.array([-0.9, -0.1, np.cos(np.arccos(0.1) + 0.5), np.cos(np.arccos(0.9) + 0.5)]),
        atol=1e-12,
    )


def test_target_and_its_gradient_are_finite_at_cos_plus_minus_one():
    loss = ArcFaceLoss(4, 2, margin=0.5, scale=64.0)
    c = torch.tensor([1.0, -1.0, 1 - 1e-9], dtype=torch.float64, requires_grad=True)
    target = loss.margin_target_logit(c, torch.full_like(c, 64.0))
    target.sum().backward()
    assert torch.isfinite(target).all() and torch.isfinite(c.grad).all()
    assert target[0].item() == pytest.approx(64 * math.cos(0.5), abs=0.02)


def test_zero_margins_reduce_to_normface():
    torch.manual_seed(0)
    normface = NormFaceLoss(7, 3, scale=16.0)
    x, labels = torch.randn(9, 3), torch.randint(0, 7, (9,))
    for loss in (CosFaceLoss(7, 3, margin=0.0, scale=16.0), ArcFaceLoss(7, 3, 0.0, 16.0)):
        loss.load_state_dict(normface.state_dict())
        torch.testing.assert_close(loss(x, labels), normface(x, labels))


def test_cosface_subtracts_m_from_the_target_cosine_only():
    torch.manual_seed(1)
    loss = CosFaceLoss(7, 3, margin=0.35, scale=30.0)
    x, labels = torch.randn(9, 3), torch.randint(0, 7, (9,))
    delta = loss.margin_logits(x, labels) - loss.get_logits(x)
    expected = torch.zeros(9, 7)
    expected[torch.arange(9), labels] = -30.0 * 0.35
    torch.testing.assert_close(delta, expected)
