"""L-Softmax: raw weights in the margin, and the official L-Softmax annealing constants."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sphereviz.losses import L_SOFTMAX_SCHEDULE, LSoftmaxLoss
from sphereviz.margins import LambdaSchedule


def test_default_schedule_is_the_official_l_softmax_one():
    loss = LSoftmaxLoss(10, 2)
    assert loss.lambda_schedule == L_SOFTMAX_SCHEDULE
    assert (L_SOFTMAX_SCHEDULE.base, L_SOFTMAX_SCHEDULE.gamma) == (1000.0, 0.000025)
    assert (L_SOFTMAX_SCHEDULE.power, L_SOFTMAX_SCHEDULE.lambda_min) == (35.0, 0.0)
    loss(torch.randn(3, 2), torch.tensor([0, 1, 2]))
    assert loss.current_lambda == pytest.approx(1000 * (1 + 0.000025) ** -35, rel=1e-12)
    loss.iteration.fill_(39_999)
    loss(torch.randn(3, 2), torch.tensor([0, 1, 2]))
    assert loss.current_lambda == pytest.approx(1000 * 2.0**-35, rel=1e-12)  # → 0: pure ψ


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_target_is_weight_norm_times_x_norm_times_psi(m):
    torch.manual_seed(m)
    loss = LSoftmaxLoss(6, 3, margin=m, lambda_schedule=None).double()
    with torch.no_grad():
        loss.W.mul_(torch.linspace(0.2, 3.0, 6, dtype=torch.float64))  # unequal ‖W_j‖
    x = torch.randn(12, 3, dtype=torch.float64)
    labels = torch.arange(12) % 6
    w_norms, x_norms = loss.W.detach().norm(dim=0), x.norm(dim=1)
    logits = (x @ loss.W.detach()).clone()
    for i, label in enumerate(labels.tolist()):
        cosine = float(logits[i, label] / (w_norms[label] * x_norms[i]))
        theta = math.acos(max(-1.0, min(1.0, cosine)))
        k = min(int(m * theta / math.pi), m - 1)
        logits[i, label] = w_norms[label] * x_norms[i] * ((-1) ** k * math.cos(m * theta) - 2 * k)
    torch.testing.assert_close(loss.margin_logits(x, labels), logits, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(loss(x, labels), F.cross_entropy(logits, labels))
    torch.testing.assert_close(loss.get_logits(x), x @ loss.W.detach())


def test_m_1_is_the_unnormalised_linear_layer_without_bias():
    loss = LSoftmaxLoss(6, 3, margin=1, lambda_schedule=LambdaSchedule())
    x, labels = torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 5])
    torch.testing.assert_close(loss(x, labels), F.cross_entropy(x @ loss.W, labels))
