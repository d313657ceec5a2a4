"""margins.cosface_target / arcface_target: the one formula the losses and geometry share,
checked in float64 against the formulas each used to write out (a second formula), the ArcFace
fallback region included."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sphereviz import geometry
from sphereviz.losses import make_loss
from sphereviz.margins import arcface_target, cosface_target

THETA = np.linspace(0.0, math.pi, 2001)
COS = np.cos(THETA)


def old_loss_arcface(cos_theta: torch.Tensor, m: float, easy_margin: bool) -> torch.Tensor:
    """ArcFaceLoss.margin_target_logit / s as it was written before the shared formula."""
    sin_theta = torch.sqrt(
        (1.0 - cos_theta * cos_theta).clamp_min(torch.finfo(cos_theta.dtype).eps)
    )
    plus = cos_theta * math.cos(m) - sin_theta * math.sin(m)
    if easy_margin:
        return torch.where(cos_theta > 0, plus, cos_theta)
    return torch.where(cos_theta > math.cos(math.pi - m), plus, cos_theta - m * math.sin(m))


def old_geometry_arcface(cos_theta: np.ndarray, m: float) -> np.ndarray:
    """geometry._margin_target's ArcFace branch as it was written before."""
    theta = np.arccos(cos_theta)
    plus = np.cos(np.minimum(theta + m, math.pi))
    return np.where(theta <= math.pi - m, plus, cos_theta - m * np.sin(m))


@pytest.mark.parametrize("m", [0.0, 0.1, 0.5, 1.0, 1.5, 2.5])
@pytest.mark.parametrize("easy_margin", [False, True])
def test_arcface_target_on_tensors_is_the_losses_formula_exactly(m, easy_margin):
    c = torch.tensor(COS, dtype=torch.float64)
    new = arcface_target(c, m, easy_margin)
    assert isinstance(new, torch.Tensor) and new.dtype == torch.float64
    torch.testing.assert_close(new, old_loss_arcface(c, m, easy_margin), rtol=0, atol=0)


@pytest.mark.parametrize("m", [0.1, 0.5, 1.0, 1.5, 2.3, 2.5])
def test_arcface_target_on_arrays_is_geometrys_formula_and_cos_theta_plus_m(m):
    new = arcface_target(COS, m)
    assert isinstance(new, np.ndarray)
    beyond = THETA >= math.pi - m - 1e-9  # the fallback region (and its edge, where they differ)
    np.testing.assert_allclose(new[~beyond], np.cos(THETA[~beyond] + m), atol=1e-12)
    np.testing.assert_allclose(new[beyond], COS[beyond] - m * math.sin(m), atol=1e-12)
    np.testing.assert_allclose(new[~beyond], old_geometry_arcface(COS, m)[~beyond], atol=1e-12)
    # decreasing in θ (never rises again past π − m) exactly while cos m + m·sin m ≥ 1
    assert np.all(np.diff(new) < 0) == (math.cos(m) + m * math.sin(m) >= 1)
    # the numpy and tensor forms agree away from c = ±1 (the tensor floors 1 − c² at eps)
    inner = np.abs(COS) < 1 - 1e-6
    as_tensor = arcface_target(torch.tensor(COS), m).numpy()
    np.testing.assert_allclose(new[inner], as_tensor[inner], atol=1e-15)


def test_arcface_target_takes_a_column_of_margins_and_easy_margin():
    margins = np.array([[0.2], [0.7]])
    rows = arcface_target(COS, margins)
    assert rows.shape == (2, COS.size)
    for row, m in zip(rows, margins[:, 0], strict=True):
        np.testing.assert_array_equal(row, arcface_target(COS, float(m)))
    easy = arcface_target(COS, 0.5, easy_margin=True)
    np.testing.assert_array_equal(easy[COS <= 0], COS[COS <= 0])
    assert arcface_target(1.0, 0.5) == pytest.approx(math.cos(0.5), abs=1e-15)


def test_cosface_target():
    np.testing.assert_array_equal(cosface_target(COS, 0.35), COS - 0.35)
    c = torch.tensor(COS)
    torch.testing.assert_close(cosface_target(c, 0.35), c - 0.35, rtol=0, atol=0)
    assert cosface_target(0.5, 0.25) == 0.25


@pytest.mark.parametrize(
    ("name", "formula"), [("arcface", arcface_target), ("cosface", cosface_target)]
)
def test_the_losses_and_geometry_call_the_formula(name, formula):
    """The margined target logit of the loss is s times the formula; geometry's target too."""
    torch.manual_seed(0)
    loss = make_loss(name, 3, 2, margin=0.5, scale=10.0).double()
    x = torch.randn(64, 2, dtype=torch.float64)
    labels = torch.randint(0, 3, (64,))
    weights = loss.class_weights()
    cos = torch.nn.functional.normalize(x, dim=1) @ weights.t()
    target = loss.margin_logits(x, labels).gather(1, labels[:, None])[:, 0]
    expected = 10.0 * formula(cos.gather(1, labels[:, None])[:, 0], 0.5)
    torch.testing.assert_close(target, expected, rtol=1e-12, atol=1e-12)
    theta = np.linspace(0.05, 3.1, 50)
    np.testing.assert_allclose(
        geometry.margin_target(theta, name, 0.5), formula(np.cos(theta), 0.5), atol=1e-15
    )
