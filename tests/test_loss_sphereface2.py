"""SphereFace2 (variant C): logits, the weighted binary loss, its detached gradient, the bias.

References are written here in float64 from the paper's formulas, element by element; the
gradient reference is the surrogate Σ ∂L/∂z · (r·cos θ + b) with ∂L/∂z held constant, whose
true gradient is the detached one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import brentq

from sphereviz.losses import SphereFace2Loss, make_loss
from sphereviz.losses.sphereface2 import initial_bias, similarity_adjustment

NUM_CLASSES, EMBEDDING_SIZE = 5, 3


def build(seed: int = 0, **kwargs) -> SphereFace2Loss:
    torch.manual_seed(seed)
    return SphereFace2Loss(NUM_CLASSES, EMBEDDING_SIZE, **kwargs).double()


def batch(seed: int = 0, n: int = 8):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, EMBEDDING_SIZE, generator=generator, dtype=torch.float64) * 2
    return x, torch.arange(n) % NUM_CLASSES


def reference_logits(loss, x, labels, weights=None, bias=None) -> torch.Tensor:
    """z_ij = r·(g(cos θ_ij) − m) + b (j = y_i), r·(g(cos θ_ij) + m) + b (j ≠ y_i): values."""
    weights = loss.W.detach() if weights is None else weights
    bias = loss.bias.detach() if bias is None else bias
    cos = (F.normalize(x, dim=1) @ F.normalize(weights, dim=0)).detach().numpy()
    z = np.empty_like(cos)
    for i, label in enumerate(labels.tolist()):
        for j in range(cos.shape[1]):
            g = 2 * ((cos[i, j] + 1) / 2) ** loss.t - 1
            offset = -loss.margin if j == label else loss.margin
            z[i, j] = loss.scale * (g + offset) + float(bias)
    return torch.from_numpy(z)


def reference_loss(loss, z: torch.Tensor, labels) -> float:
    """(λ_w·C/r) · mean_ij w_ij·(−y log σ(z) − (1 − y) log(1 − σ(z)))."""
    total = 0.0
    for i, label in enumerate(labels.tolist()):
        for j in range(z.shape[1]):
            value = float(z[i, j])
            if j == label:
                total += loss.alpha * math.log1p(math.exp(-value))
            else:
                total += (1 - loss.alpha) * math.log1p(math.exp(value))
    return loss.loss_weight * z.shape[1] / loss.scale * total / z.numel()


def test_similarity_adjustment_g():
    c = np.linspace(-1, 1, 11)
    np.testing.assert_allclose(similarity_adjustment(c, 3), 2 * ((c + 1) / 2) ** 3 - 1)
    np.testing.assert_allclose(similarity_adjustment(c, 1), c)
    assert similarity_adjustment(1.0, 3) == 1.0 and similarity_adjustment(-1.0, 3) == -1.0


@pytest.mark.parametrize("kwargs", [{}, {"margin": 0.2, "t": 1.0, "alpha": 0.5}])
def test_logits_and_loss_match_the_elementwise_reference(kwargs):
    loss = build(**kwargs)
    x, labels = batch()
    z = reference_logits(loss, x, labels)
    torch.testing.assert_close(loss.margin_logits(x, labels), z, rtol=1e-10, atol=1e-9)
    assert loss(x, labels).item() == pytest.approx(reference_loss(loss, z, labels), rel=1e-10)
    # accuracy is measured on the plain cosine: r·cos θ, no bias, no margin
    cos = F.normalize(x, dim=1) @ F.normalize(loss.W.detach(), dim=0)
    torch.testing.assert_close(loss.get_logits(x), loss.scale * cos, rtol=1e-10, atol=1e-10)


def test_gradient_is_that_of_the_plain_cosine_plus_bias():
    loss = build(seed=1)
    x, labels = batch(seed=2)
    x.requires_grad_()
    loss(x, labels).backward()

    x_ref = x.detach().clone().requires_grad_()
    weights = loss.W.detach().clone().requires_grad_()
    bias = loss.bias.detach().clone().requires_grad_()
    z = reference_logits(loss, x_ref, labels)
    targets = F.one_hot(labels, NUM_CLASSES).double()
    pair_weights = loss.alpha * targets + (1 - loss.alpha) * (1 - targets)
    factor = loss.loss_weight * NUM_CLASSES / loss.scale / z.numel()
    dloss_dz = factor * pair_weights * (torch.sigmoid(z) - targets)
    plain = loss.scale * F.normalize(x_ref, dim=1) @ F.normalize(weights, dim=0) + bias
    (dloss_dz * plain).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(loss.W.grad, weights.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(loss.bias.grad, bias.grad, rtol=1e-9, atol=1e-12)


def gradcheck_loss(loss, x, labels, names):
    def loss_of(embeddings, *parameters):
        state = dict(zip(names, parameters, strict=True))
        return torch.func.functional_call(loss, state, (embeddings, labels))

    inputs = (x.clone().requires_grad_(),) + tuple(
        getattr(loss, name).detach().clone().requires_grad_() for name in names
    )
    return torch.autograd.gradcheck(loss_of, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_gradcheck_where_the_gradient_is_the_true_one():
    """t = 1 and m = 0: g(c) = c, nothing is detached, so every gradient is the true one."""
    loss = build(margin=0.0, t=1.0, scale=5.0)
    x, labels = batch()
    assert gradcheck_loss(loss, x, labels, ["W", "bias"])
    # with the defaults the bias still enters z as + b: its gradient is always the true one
    loss = build()
    x, labels = batch(seed=4)

    def loss_of_bias(bias):
        return torch.func.functional_call(loss, {"bias": bias}, (x, labels))

    assert torch.autograd.gradcheck(loss_of_bias, (loss.bias.detach().clone().requires_grad_(),))


@pytest.mark.parametrize(
    ("num_classes", "margin", "scale", "alpha", "t"),
    [(5, 0.4, 40.0, 0.7, 3.0), (10, 0.4, 40.0, 0.7, 3.0), (100, 0.2, 30.0, 0.6, 2.0),
     (10572, 0.4, 40.0, 0.7, 3.0), (2, 0.0, 10.0, 0.5, 1.0), (2, 1.0, 40.0, 0.7, 3.0),
     (3, 0.9, 64.0, 0.9, 3.0)],
)  # fmt: skip
def test_initial_bias_zeroes_the_expected_loss_derivative_at_cos_zero(
    num_classes, margin, scale, alpha, t
):
    """At cos θ = 0: d/db [α·softplus(−(a_y + b)) + (1 − α)(C − 1)·softplus(a_i + b)] = 0."""
    a_y = scale * (2 * 0.5**t - 1 - margin)
    a_i = scale * (2 * 0.5**t - 1 + margin)

    def derivative(b):
        sigmoid = lambda v: 0.5 * (1 + math.tanh(v / 2))  # noqa: E731
        return -alpha * sigmoid(-(a_y + b)) + (1 - alpha) * (num_classes - 1) * sigmoid(a_i + b)

    root = brentq(derivative, -500, 500, xtol=1e-13)
    assert initial_bias(num_classes, margin, scale, alpha, t) == pytest.approx(root, abs=1e-9)


def test_bias_parameter_starts_at_the_closed_form_and_balances_the_real_loss():
    """Features orthogonal to every weight (cos θ = 0): the loss's own ∂L/∂b is 0 at b₀."""
    torch.manual_seed(0)
    loss = SphereFace2Loss(4, 8).double()
    assert isinstance(loss.bias, torch.nn.Parameter) and loss.bias.shape == (1,)
    assert any(p is loss.bias for p in loss.parameters())
    assert loss.bias.item() == pytest.approx(initial_bias(4, 0.4, 40.0, 0.7, 3.0), rel=1e-7)
    weights = loss.W.detach()
    basis = torch.linalg.svd(weights.t(), full_matrices=True).Vh[4:]  # ⊥ every W_j
    x = torch.randn(6, 4, dtype=torch.float64) @ basis
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    loss.reset_bias()  # b₀ again, now in float64
    loss(x, labels).backward()
    assert abs(loss.bias.grad.item()) < 1e-12
    with torch.no_grad():
        loss.bias += 1.0
    loss.bias.grad = None
    loss(x, labels).backward()
    assert loss.bias.grad.item() > 0.1  # a bias too large is pushed back down


def test_the_trainer_optimises_the_bias():
    from sphereviz.build import Classifier, build_model_and_loss
    from sphereviz.config import TrainConfig
    from sphereviz.train import make_optimizer

    config = TrainConfig(loss="sphereface2", alpha=0.6, t=2.0, loss_weight=10.0, m=0.3)
    model, loss = build_model_and_loss(config, num_classes=10)
    assert (loss.alpha, loss.t, loss.loss_weight, loss.margin) == (0.6, 2.0, 10.0, 0.3)
    classifier = Classifier(model, loss)
    optimizer = make_optimizer(config, classifier.parameters())
    assert any(p is loss.bias for group in optimizer.param_groups for p in group["params"])
    before = loss.bias.item()
    value, _ = classifier(torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3]))
    value.backward()
    optimizer.step()
    assert loss.bias.item() != before


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
def test_half_precision_autocast_is_finite_and_float32(half):
    torch.manual_seed(3)
    loss = SphereFace2Loss(NUM_CLASSES, EMBEDDING_SIZE)
    x = torch.cat([loss.W.detach().t()[:3] * 2, -loss.W.detach().t()[3:4], torch.zeros(1, 3)])
    x = x.to(half).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(x, torch.tensor([0, 1, 3, 3, 2]))
        logits = loss.get_logits(x)
    value.backward()
    assert value.dtype == torch.float32 and logits.dtype == torch.float32
    assert torch.isfinite(value) and torch.isfinite(x.grad.float()).all()
    assert torch.isfinite(loss.W.grad).all() and torch.isfinite(loss.bias.grad).all()


def test_defaults_and_options():
    loss = make_loss("sphereface2", 10, 3)
    assert (loss.margin, loss.scale, loss.alpha, loss.t, loss.loss_weight) == (
        0.4, 40.0, 0.7, 3.0, 50.0
    )  # fmt: skip
    assert loss.W.shape == (3, 10) and loss.current_lambda is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 1.0}, r"alpha must be a finite number in \(0, 1\) for SphereFace2"),
        ({"alpha": 0}, r"alpha must be a finite number in \(0, 1\)"),
        ({"t": 0.5}, "t must be a finite number >= 1"),
        ({"loss_weight": 0}, "loss_weight must be a finite number > 0"),
        ({"margin": 1.5}, r"in \[0, 1\].*cosine offset"),
        ({"scale": -40}, "scale must be a finite number > 0"),
        ({"lambda_schedule": None}, "accepts: margin, scale, alpha, t, loss_weight"),
    ],
)
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_loss("sphereface2", 10, 2, **kwargs)
