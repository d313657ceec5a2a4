"""SphereFace-R: ψ_m for a real m, the margined forward value and the detached gradient.

References are written here in float64 from angles θ = acos(x̂·Ŵ) (the form the loss must not
use) and the formulas of SphereFace-R; the gradient reference is the surrogate whose true
gradient is the detached one: (softmax(f) − onehot)·s·cos θ, with f the margined logits held
constant.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sphereviz.losses import NormFaceLoss, SphereFaceRLoss, make_loss
from sphereviz.losses.sphereface_r import real_psi_from_cos
from sphereviz.margins import psi

NUM_CLASSES, EMBEDDING_SIZE = 5, 3


def reference_psi(theta: np.ndarray, m: float) -> np.ndarray:
    """ψ_m(θ) = (−1)^k cos(mθ) − 2k with k = ⌊mθ/π⌋, straight from the definition."""
    k = np.minimum(np.floor(m * theta / math.pi), math.ceil(m) - 1)
    return (-1.0) ** k * np.cos(m * theta) - 2 * k


def batch(seed: int = 0, n: int = 8):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, EMBEDDING_SIZE, generator=generator, dtype=torch.float64) * 3
    return x, torch.arange(n) % NUM_CLASSES


def reference_logits(loss: SphereFaceRLoss, x, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """(plain s·cos θ, margined logits) from acos angles in float64."""
    cos = F.normalize(x.double(), dim=1) @ F.normalize(loss.W.double(), dim=0)
    theta = torch.acos(cos.clamp(-1, 1)).detach().numpy()
    margined = loss.scale * cos.detach().clone()
    rows = torch.arange(len(labels))
    psi_y = reference_psi(theta[rows.numpy(), labels.numpy()], loss.margin)
    margined[rows, labels] = loss.scale * torch.from_numpy(psi_y)
    return loss.scale * cos, margined


@pytest.mark.parametrize("m", [1.0, 1.35, 1.5, 1.7, 2.0, 2.5, 3.0, 4.0])
def test_real_psi_matches_the_definition_and_is_monotonic(m):
    theta = np.linspace(0, math.pi, 20001)
    values = real_psi_from_cos(np.cos(theta), m)
    np.testing.assert_allclose(values, reference_psi(theta, m), atol=1e-9)
    assert np.all(np.diff(values) < 0)  # strictly decreasing, so continuous pieces join
    assert np.max(np.abs(np.diff(values))) < 1e-3  # no jump at the piece boundaries
    inside = theta <= math.pi / m
    np.testing.assert_allclose(values[inside], np.cos(m * theta[inside]), atol=1e-9)
    torch_values = real_psi_from_cos(torch.from_numpy(np.cos(theta)), m)
    np.testing.assert_allclose(torch_values.numpy(), values, atol=1e-12)
    if float(m).is_integer():  # A-Softmax's ψ, computed by margins.psi
        np.testing.assert_allclose(values, psi(theta, int(m)), atol=1e-9)


@pytest.mark.parametrize("m", [1.5, 1.7, 3.0])
def test_margin_logits_and_loss_match_the_acos_reference(m):
    torch.manual_seed(0)
    loss = SphereFaceRLoss(NUM_CLASSES, EMBEDDING_SIZE, margin=m, scale=30.0).double()
    x, labels = batch()
    plain, margined = reference_logits(loss, x, labels)
    torch.testing.assert_close(loss.get_logits(x), plain.detach(), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(loss.margin_logits(x, labels), margined, rtol=1e-9, atol=1e-9)
    for i in range(len(labels)):  # one sample at a time: a wrong target cannot average out
        expected = F.cross_entropy(margined[i : i + 1], labels[i : i + 1])
        torch.testing.assert_close(loss(x[i : i + 1], labels[i : i + 1]), expected)


@pytest.mark.parametrize("m", [1.5, 2.5])
def test_gradient_is_that_of_the_plain_cosine_logit(m):
    """∂L/∂f at the margined logits, times the gradient of s·cos θ (the detachment)."""
    torch.manual_seed(1)
    loss = SphereFaceRLoss(NUM_CLASSES, EMBEDDING_SIZE, margin=m, scale=30.0).double()
    x, labels = batch(seed=2)
    x.requires_grad_()
    loss(x, labels).backward()

    weights = loss.W.detach().clone().requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    reference = SphereFaceRLoss(NUM_CLASSES, EMBEDDING_SIZE, margin=m, scale=30.0).double()
    with torch.no_grad():
        reference.W.copy_(weights)
    _, margined = reference_logits(reference, x_ref, labels)
    plain = loss.scale * F.normalize(x_ref, dim=1) @ F.normalize(weights, dim=0)
    dloss_dlogits = (F.softmax(margined, 1) - F.one_hot(labels, NUM_CLASSES)) / len(labels)
    (dloss_dlogits.detach() * plain).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(loss.W.grad, weights.grad, rtol=1e-9, atol=1e-12)
    # and it is not the true gradient of the margined value (the point of the detachment)
    true = torch.autograd.grad(F.cross_entropy(margined_true(loss, x_ref, labels), labels), x_ref)
    assert not torch.allclose(true[0], x.grad, atol=1e-6)


def margined_true(loss, x, labels):
    """The margined logits with a differentiable ψ_m (acos), for the true-gradient contrast."""
    cos = F.normalize(x, dim=1) @ F.normalize(loss.W.detach(), dim=0)
    theta = torch.acos(cos.clamp(-1 + 1e-12, 1 - 1e-12))
    k = torch.floor(loss.margin * theta.detach() / math.pi).clamp(max=math.ceil(loss.margin) - 1)
    psi_all = (1 - 2 * torch.remainder(k, 2)) * torch.cos(loss.margin * theta) - 2 * k
    target = F.one_hot(labels, NUM_CLASSES).bool()
    return loss.scale * torch.where(target, psi_all, cos)


def test_m_equal_one_is_normface_and_gradcheck_holds():
    """At m = 1 the detached term is zero, so the gradient is the true one (gradcheck)."""
    torch.manual_seed(0)
    loss = SphereFaceRLoss(NUM_CLASSES, EMBEDDING_SIZE, margin=1.0, scale=10.0).double()
    normface = NormFaceLoss(NUM_CLASSES, EMBEDDING_SIZE, scale=10.0).double()
    with torch.no_grad():
        normface.W.copy_(loss.W)
    x, labels = batch()
    torch.testing.assert_close(loss(x, labels), normface(x, labels), rtol=1e-12, atol=1e-12)

    def loss_of(embeddings, weights):
        return torch.func.functional_call(loss, {"W": weights}, (embeddings, labels))

    inputs = (x.clone().requires_grad_(), loss.W.detach().clone().requires_grad_())
    assert torch.autograd.gradcheck(loss_of, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
def test_half_precision_autocast_is_finite_and_float32(half):
    torch.manual_seed(3)
    loss = SphereFaceRLoss(NUM_CLASSES, EMBEDDING_SIZE)
    x = torch.cat([loss.W.detach().t()[:3] * 2, torch.randn(3, EMBEDDING_SIZE)]).to(half)
    x.requires_grad_()
    labels = torch.tensor([0, 1, 3, 2, 4, 0])  # rows 0, 1 exactly at their own weight
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(x, labels)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert torch.isfinite(x.grad.float()).all() and torch.isfinite(loss.W.grad).all()


def test_defaults_names_and_shapes():
    loss = make_loss("sphereface-r", 7, 4)
    assert (loss.margin, loss.scale) == (1.5, 30.0)
    assert loss.W.shape == (4, 7) and loss.current_lambda is None
    for alias in ("spherefacer", "sphereface-revived", "SphereFace_R"):
        assert type(make_loss(alias, 7, 4, margin=1.7, scale=64)) is SphereFaceRLoss


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": 0.5}, r"finite number >= 1 for SphereFace-R, got 0.5"),
        ({"margin": -2}, r">= 1.*m = 1 is NormFace"),
        ({"margin": float("nan")}, "finite number >= 1"),
        ({"scale": 0}, "scale must be a finite number > 0"),
        ({"lambda_schedule": None}, "accepts: margin, scale"),
    ],
)
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_loss("sphereface-r", 10, 2, **kwargs)


def test_a_margin_of_a_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="m must be a finite number >= 1 for SphereFace-R"):
        make_loss("sphereface-r", 10, 2, margin="1.5")
