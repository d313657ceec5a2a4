"""The contract every loss of the family keeps, checked against slow independent references.

References are written here in float64 with acos (the form the losses must NOT use) and the
paper's formulas; gradients are checked numerically with torch.autograd.gradcheck.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sphereviz.losses import (
    LOSS_NAMES,
    ArcFaceLoss,
    ASoftmaxLoss,
    CosFaceLoss,
    LSoftmaxLoss,
    MarginLoss,
    ModifiedSoftmaxLoss,
    NormFaceLoss,
    SoftmaxLoss,
    SphereFace2Loss,
    SphereFaceRLoss,
    make_loss,
)
from sphereviz.losses.head import unit_column_matmul
from sphereviz.margins import LambdaSchedule

NUM_CLASSES, EMBEDDING_SIZE = 5, 3
CONSTANT_LAMBDA = LambdaSchedule(base=0.5, gamma=0.0, power=1.0, lambda_min=0.0)  # λ = 0.5
# cos θ_y of the test samples: every piece of ψ for m = 2, 3, 4 and ArcFace's fallback region
TARGET_COSINES = [0.97, 0.6, 0.2, -0.3, -0.75, -0.97]

# (name, kwargs): every loss, with a constant λ so repeated forwards compute the same function
CONFIGURATIONS = [
    ("softmax", {}),
    ("modified-softmax", {}),
    ("a-softmax", {"lambda_schedule": CONSTANT_LAMBDA}),
    ("a-softmax", {"lambda_schedule": None}),
    ("a-softmax", {"margin": 2, "lambda_schedule": None}),
    ("a-softmax", {"margin": 3, "lambda_schedule": CONSTANT_LAMBDA}),
    ("l-softmax", {"lambda_schedule": CONSTANT_LAMBDA}),
    ("l-softmax", {"margin": 3, "lambda_schedule": None}),
    ("normface", {"scale": 10.0}),
    ("cosface", {"margin": 0.35, "scale": 30.0}),
    ("arcface", {"margin": 0.5, "scale": 64.0}),
    ("arcface", {"margin": 0.5, "scale": 64.0, "easy_margin": True}),
]
CONFIG_IDS = [f"{name}-{i}" for i, (name, _) in enumerate(CONFIGURATIONS)]


def build(name, dtype=torch.float64, seed=0, **kwargs) -> MarginLoss:
    torch.manual_seed(seed)
    loss = make_loss(name, NUM_CLASSES, EMBEDDING_SIZE, **kwargs).to(dtype)
    if isinstance(loss, SoftmaxLoss):
        with torch.no_grad():
            loss.b.normal_()
    return loss


def embeddings_at_cosines(loss: MarginLoss, labels, cosines, seed=1) -> torch.Tensor:
    """Embeddings whose angle to their own class weight W_y has exactly the given cosines."""
    generator = torch.Generator().manual_seed(seed)
    weights = loss.W.detach().double()
    rows = []
    for label, cosine in zip(labels.tolist(), cosines, strict=True):
        axis = weights[:, label] / weights[:, label].norm()
        other = torch.randn(EMBEDDING_SIZE, generator=generator, dtype=torch.float64)
        other = other - (other @ axis) * axis
        other = other / other.norm()
        norm = 0.5 + 3 * torch.rand((), generator=generator, dtype=torch.float64)
        rows.append(norm * (cosine * axis + math.sqrt(1 - cosine**2) * other))
    return torch.stack(rows).to(loss.W.dtype)


def sample_batch(loss: MarginLoss, cosines=TARGET_COSINES):
    labels = torch.arange(len(cosines)) % NUM_CLASSES
    return embeddings_at_cosines(loss, labels, cosines), labels


# ----- slow references (float64, acos) -------------------------------------------------------


def reference_psi(theta: torch.Tensor, m: int) -> torch.Tensor:
    k = torch.clamp(torch.floor(m * theta / math.pi), 0, m - 1)
    return (-1.0) ** k * torch.cos(m * theta) - 2 * k


def reference_logits(loss: MarginLoss, x, labels, with_margin: bool) -> torch.Tensor:
    """The (margined) logits of the paper's table, from angles θ = acos(x̂·Ŵ) in float64."""
    x, weights = x.double(), loss.W.detach().double()
    if isinstance(loss, SoftmaxLoss):
        return x @ weights + loss.b.detach().double()
    x_norms = x.norm(dim=1, keepdim=True)
    w_norms = weights.norm(dim=0, keepdim=True)
    theta = torch.acos(((x / x_norms) @ (weights / w_norms)).clamp(-1, 1))
    rows = torch.arange(len(labels))
    theta_y = theta[rows, labels]
    if isinstance(loss, (ASoftmaxLoss, LSoftmaxLoss, ModifiedSoftmaxLoss)):
        radius = x_norms * (w_norms if isinstance(loss, LSoftmaxLoss) else 1.0)
        logits = radius * torch.cos(theta)
        if isinstance(loss, ModifiedSoftmaxLoss) or not with_margin:
            return logits
        lam = float(loss.annealing_lambda())
        target = (lam * torch.cos(theta_y) + reference_psi(theta_y, loss.margin)) / (1 + lam)
        logits[rows, labels] = radius.expand_as(logits)[rows, labels] * target
        return logits
    logits = loss.scale * torch.cos(theta)
    if not with_margin or isinstance(loss, NormFaceLoss) and not loss.has_margin:
        return logits
    if isinstance(loss, CosFaceLoss):
        logits[rows, labels] = loss.scale * (torch.cos(theta_y) - loss.margin)
    elif isinstance(loss, ArcFaceLoss):
        m = loss.margin
        if loss.easy_margin:
            use_margin = torch.cos(theta_y) > 0
            fallback = torch.cos(theta_y)
        else:
            use_margin = theta_y + m <= math.pi
            fallback = torch.cos(theta_y) - m * math.sin(m)
        target = torch.where(use_margin, torch.cos(theta_y + m), fallback)
        logits[rows, labels] = loss.scale * target
    return logits


# ----- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kwargs"), CONFIGURATIONS, ids=CONFIG_IDS)
def test_plain_logits_match_the_formula_table(name, kwargs):
    loss = build(name, **kwargs)
    x, labels = sample_batch(loss)
    expected = reference_logits(loss, x, labels, with_margin=False)
    torch.testing.assert_close(loss.get_logits(x), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("name", "kwargs"), CONFIGURATIONS, ids=CONFIG_IDS)
def test_margin_logits_and_loss_match_the_slow_acos_reference(name, kwargs):
    loss = build(name, **kwargs)
    x, labels = sample_batch(loss)
    expected = reference_logits(loss, x, labels, with_margin=True)
    torch.testing.assert_close(loss.margin_logits(x, labels), expected, rtol=1e-9, atol=1e-9)
    for i in range(len(labels)):  # one sample at a time: a wrong target cannot average out
        value = loss(x[i : i + 1], labels[i : i + 1])
        reference = F.cross_entropy(expected[i : i + 1], labels[i : i + 1])
        torch.testing.assert_close(value, reference, rtol=1e-9, atol=1e-9)


def test_margin_moves_the_target_logit_down():
    for name, kwargs in CONFIGURATIONS:
        loss = build(name, **kwargs)
        x, labels = sample_batch(loss)
        rows = torch.arange(len(labels))
        plain = loss.get_logits(x)[rows, labels]
        margined = loss.margin_logits(x, labels)[rows, labels]
        if loss.has_margin:  # (easy-margin ArcFace leaves cos θ ≤ 0 alone)
            positive = torch.tensor(TARGET_COSINES) > 0
            assert (margined <= plain).all(), name
            assert (margined[positive] < plain[positive]).all(), name
        else:
            torch.testing.assert_close(margined, plain)


def test_softmax_equals_cross_entropy_of_a_linear_layer():
    loss = build("softmax", dtype=torch.float32)
    x, labels = torch.randn(7, EMBEDDING_SIZE), torch.randint(0, NUM_CLASSES, (7,))
    expected = F.cross_entropy(F.linear(x, loss.W.t(), loss.b), labels)
    torch.testing.assert_close(loss(x, labels), expected)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_weights_are_normalised_in_every_forward(name):
    """Rescaling one W_j changes nothing for the normalised losses, everything for the others."""
    loss = build(name)
    x, labels = sample_batch(loss)
    before = loss.margin_logits(x, labels)
    with torch.no_grad():
        loss.W[:, 0] *= 7.0
    after = loss.margin_logits(x, labels)
    if name in ("softmax", "l-softmax"):
        assert not torch.allclose(before[:, 0], after[:, 0])
    else:
        torch.testing.assert_close(before, after, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_class_weights_are_detached_rows(name):
    loss = build(name)
    weights = loss.class_weights()
    assert weights.shape == (NUM_CLASSES, EMBEDDING_SIZE)
    assert not weights.requires_grad
    if name in ("softmax", "l-softmax"):
        torch.testing.assert_close(weights, loss.W.detach().t())
    else:
        unit = torch.ones(NUM_CLASSES, dtype=weights.dtype)
        torch.testing.assert_close(weights.norm(dim=1), unit)
        torch.testing.assert_close(weights * loss.W.detach().norm(dim=0)[:, None], loss.W.t())
    weights.zero_()
    assert loss.W.abs().sum() > 0  # a copy, not a view into the parameter


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_contract_attributes(name):
    loss = make_loss(name, num_classes=4, embedding_size=6)
    assert isinstance(loss, MarginLoss)
    assert isinstance(loss.W, torch.nn.Parameter) and loss.W.shape == (6, 4)
    assert (loss.num_classes, loss.embedding_size) == (4, 6)
    value = loss(torch.randn(3, 6), torch.tensor([0, 1, 3]))
    assert value.ndim == 0
    annealed = name in ("a-softmax", "l-softmax")
    assert (loss.current_lambda is not None) == annealed


# ----- gradients --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kwargs"), CONFIGURATIONS, ids=CONFIG_IDS)
def test_gradcheck_embeddings_and_weights(name, kwargs):
    loss = build(name, **kwargs)
    x, labels = sample_batch(loss)
    names = [parameter_name for parameter_name, _ in loss.named_parameters()]

    def loss_of(embeddings, *parameters):
        state = dict(zip(names, parameters, strict=True))
        return torch.func.functional_call(loss, state, (embeddings, labels))

    inputs = (x.requires_grad_(), *(p.detach().clone().requires_grad_() for p in loss.parameters()))
    assert torch.autograd.gradcheck(loss_of, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_unit_column_matmul_backward_matches_autograd_of_the_normalised_weights():
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(7, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(4, 9, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(unit_column_matmul, (x, weights))
    upstream = torch.randn(7, 9, generator=generator, dtype=torch.float64)
    ours = torch.autograd.grad((unit_column_matmul(x, weights) * upstream).sum(), (x, weights))
    plain = torch.autograd.grad(((x @ F.normalize(weights, dim=0)) * upstream).sum(), (x, weights))
    for mine, reference in zip(ours, plain, strict=True):
        torch.testing.assert_close(mine, reference, rtol=1e-12, atol=1e-12)


# ----- numerics ---------------------------------------------------------------------------------


def extreme_batch(loss: MarginLoss):
    """Rows exactly parallel / antiparallel to a class weight, and exactly zero rows."""
    weights = loss.W.detach()
    x = torch.stack(
        [3 * weights[:, 0], -2 * weights[:, 1], weights[:, 2], torch.zeros_like(weights[:, 0])]
    )
    x = torch.cat([x, -5 * weights[:, 3:4].t(), torch.zeros_like(x[:1])])
    labels = torch.tensor([0, 1, 3, 2, 3, 0])  # row 2 is parallel to W_2 but labelled 3
    return x, labels


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_finite_at_cos_plus_minus_one_and_zero_norm(name, dtype):
    loss = build(name, dtype=dtype)
    x, labels = extreme_batch(loss)
    x.requires_grad_()
    value = loss(x, labels)
    value.backward()
    assert torch.isfinite(value)
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in loss.parameters())


@pytest.mark.parametrize("name", [n for n in LOSS_NAMES if n != "softmax"])
def test_zero_embedding_gives_uniform_probabilities(name):
    loss = build(name)
    x = torch.zeros(2, EMBEDDING_SIZE, dtype=torch.float64, requires_grad=True)
    value = loss(x, torch.tensor([0, 4]))
    value.backward()
    if name in ("normface", "cosface", "arcface", "sphereface-r", "sphereface2"):
        # s·x/‖x‖ has no direction at x = 0: cos θ = 0 is taken and the gradient is zero
        assert torch.isfinite(value)
        assert (x.grad == 0).all()
    if name == "sphereface2":  # cos θ = 0 everywhere: z = r(g(0) ∓ m) + b, g(0) = 2·0.5^t − 1
        g0, b = 2 * 0.5**loss.t - 1, loss.bias.item()
        positive = loss.alpha * math.log1p(math.exp(-(loss.scale * (g0 - loss.margin) + b)))
        negative = (1 - loss.alpha) * math.log1p(math.exp(loss.scale * (g0 + loss.margin) + b))
        per_sample = (positive + (NUM_CLASSES - 1) * negative) / NUM_CLASSES
        expected = loss.loss_weight * NUM_CLASSES / loss.scale * per_sample
        assert value.item() == pytest.approx(expected, rel=1e-12)
    elif name in ("cosface", "arcface", "sphereface-r"):
        assert value > math.log(NUM_CLASSES)  # the target logit still carries its margin
    else:
        assert value.item() == pytest.approx(math.log(NUM_CLASSES), rel=1e-12)


@pytest.mark.parametrize(("name", "kwargs"), CONFIGURATIONS, ids=CONFIG_IDS)
def test_bf16_autocast_computes_the_head_in_float32(name, kwargs):
    loss = build(name, dtype=torch.float32, **kwargs)
    torch.manual_seed(3)
    features = torch.nn.Linear(4, EMBEDDING_SIZE)
    inputs = torch.randn(6, 4)
    _, labels = sample_batch(loss)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        embeddings = features(inputs)
        assert embeddings.dtype == torch.bfloat16
        value = loss(embeddings, labels)
        logits = loss.get_logits(embeddings)
    value.backward()
    assert value.dtype == torch.float32 and logits.dtype == torch.float32
    assert torch.isfinite(value)
    assert all(torch.isfinite(p.grad).all() for p in [*features.parameters(), loss.W])
    # exactly what float32 gives on the same (bf16-rounded) embeddings, outside autocast
    reference = loss(embeddings.detach().float(), labels)
    torch.testing.assert_close(value.detach(), reference, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_half_precision_extremes_stay_finite(name, half):
    loss = build(name, dtype=torch.float32)
    x, labels = extreme_batch(loss)
    x = x.to(half).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(x, labels)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert torch.isfinite(x.grad.float()).all() and torch.isfinite(loss.W.grad).all()


def test_margin_is_computed_on_the_target_entries_only(monkeypatch):
    """ψ sees N numbers, not N×C: the margin is never applied to all columns."""
    import sphereviz.losses.annealed as annealed

    seen_shapes = []
    original = annealed.annealed_target_logit

    def recording_psi(cos_theta, *args):
        seen_shapes.append(tuple(cos_theta.shape))
        return original(cos_theta, *args)

    monkeypatch.setattr(annealed, "annealed_target_logit", recording_psi)
    loss = make_loss("a-softmax", num_classes=50, embedding_size=8)
    loss(torch.randn(7, 8), torch.randint(0, 50, (7,)))
    assert seen_shapes == [(7,)]


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_no_acos_in_the_loss(name, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("acos in the gradient path")

    monkeypatch.setattr(torch, "acos", forbidden)
    monkeypatch.setattr(torch.Tensor, "acos", forbidden)
    loss = build(name, dtype=torch.float32)
    x, labels = extreme_batch(loss)
    loss(x, labels).backward()


# ----- make_loss --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("softmax", SoftmaxLoss),
        ("modified-softmax", ModifiedSoftmaxLoss),
        ("a-softmax", ASoftmaxLoss),
        ("sphereface", ASoftmaxLoss),
        ("A_Softmax", ASoftmaxLoss),
        ("l-softmax", LSoftmaxLoss),
        ("normface", NormFaceLoss),
        ("cosface", CosFaceLoss),
        ("arcface", ArcFaceLoss),
        ("sphereface-r", SphereFaceRLoss),
        ("SphereFaceR", SphereFaceRLoss),
        ("sphereface_revived", SphereFaceRLoss),
        ("sphereface2", SphereFace2Loss),
        ("asoftmax", ASoftmaxLoss),
        ("am-softmax", CosFaceLoss),
        ("LMCL", CosFaceLoss),
        ("largemargin", LSoftmaxLoss),
        ("norm-softmax", NormFaceLoss),
    ],
)
def test_make_loss_names(name, expected):
    assert type(make_loss(name, 10, 2)) is expected


def test_loss_names_are_the_documented_ones():
    assert set(LOSS_NAMES) == {
        "softmax",
        "modified-softmax",
        "a-softmax",
        "l-softmax",
        "normface",
        "cosface",
        "arcface",
        "sphereface-r",
        "sphereface2",
    }


def test_make_loss_passes_options():
    assert make_loss("a-softmax", 10, 2, margin=3).margin == 3
    cosface = make_loss("cosface", 10, 2, margin=0.2, scale=30)
    assert (cosface.margin, cosface.scale) == (0.2, 30.0)
    assert make_loss("arcface", 10, 2, easy_margin=True).easy_margin


# ----- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("a-softmax", {"margin": 2.5}, "CosFace or ArcFace"),
        ("a-softmax", {"margin": 0}, "integer >= 1"),
        ("a-softmax", {"margin": -1}, "integer >= 1"),
        ("l-softmax", {"margin": 1.5}, "L-Softmax.*CosFace or ArcFace"),
        ("a-softmax", {"lambda_schedule": 5.0}, "LambdaSchedule"),
        ("normface", {"scale": -1.0}, "scale must be a finite number > 0"),
        ("cosface", {"scale": -64.0}, "scale must be a finite number > 0"),
        ("arcface", {"scale": 0.0}, "scale must be a finite number > 0"),
        ("arcface", {"scale": float("inf")}, "scale"),
        ("arcface", {"margin": 28.6}, r"radians.*math\.radians\(28\.6\)"),
        ("arcface", {"margin": -0.1}, "radians"),
        ("cosface", {"margin": -0.35}, "CosFace"),
        ("softmax", {"margin": 4}, "does not take margin"),
        ("cosface", {"lambda_schedule": None}, "accepts: margin, scale"),
    ],
)
def test_constructor_errors(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_loss(name, 10, 2, **kwargs)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("cosface", {"scale": "64"}, "scale must be a finite number > 0 for CosFace, got str"),
        ("arcface", {"margin": [0.5]}, "margin must be a finite number"),
        ("a-softmax", {"margin": "4"}, "m must be an integer >= 1 for A-Softmax, got str"),
        ("l-softmax", {"margin": True}, "m must be an integer >= 1 for L-Softmax, got bool"),
    ],
)
def test_constructor_type_errors(name, kwargs, message):
    with pytest.raises(TypeError, match=message):
        make_loss(name, 10, 2, **kwargs)


def test_unknown_loss_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown loss 'triplet'.*a-softmax.*sphereface"):
        make_loss("triplet", 10, 2)


@pytest.mark.parametrize(("num_classes", "embedding_size"), [(1, 2), (0, 2), (10, 0)])
def test_bad_sizes(num_classes, embedding_size):
    with pytest.raises(ValueError, match="must be an integer"):
        ASoftmaxLoss(num_classes, embedding_size)


@pytest.mark.parametrize(("num_classes", "embedding_size"), [(10.5, 2), (True, 2), (10, "2")])
def test_sizes_of_a_wrong_type(num_classes, embedding_size):
    with pytest.raises(TypeError, match="must be an integer"):
        ASoftmaxLoss(num_classes, embedding_size)


def test_sizes_may_be_numpy_integers():
    loss = ASoftmaxLoss(np.int64(10), np.int32(2))
    assert (loss.num_classes, loss.embedding_size) == (10, 2)
    assert type(loss.num_classes) is int


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_input_errors(name):
    loss = make_loss(name, num_classes=10, embedding_size=2)
    x, labels = torch.randn(4, 2), torch.tensor([0, 1, 2, 9])
    cases = [
        (torch.randn(4, 3), labels, r"shape \(4, 3\).*\(N, 2\)"),
        (torch.randn(4), labels, r"shape \(4,\).*\(N, 2\)"),
        (torch.randn(0, 2), labels[:0], "empty"),
        (np.zeros((4, 2)), labels, "torch.Tensor"),
        (torch.zeros(4, 2, dtype=torch.long), labels, "floating point"),
        (x, torch.tensor([0, 1, 2, 10]), r"\[0, 10\).*from 0 to 10"),
        (x, torch.tensor([-1, 1, 2, 3]), r"\[0, 10\).*from -1 to 3"),
        (x, labels.float(), "integer tensor"),
        (x, labels > 0, "integer tensor"),
        (x, labels[:, None], r"shape \(4, 1\).*\(4,\)"),
        (x, labels[:3], r"shape \(3,\).*4 samples"),
        (x, [0, 1, 2, 3], "torch.Tensor"),
    ]
    for embeddings, targets, message in cases:
        with pytest.raises(ValueError, match=message):
            loss(embeddings, targets)
    with pytest.raises(ValueError, match=r"shape \(4, 3\)"):
        loss.get_logits(torch.randn(4, 3))


def test_label_range_check_can_be_left_to_the_caller(monkeypatch):
    """A trainer that validated its labels once turns the per-batch host sync off."""
    loss = make_loss("a-softmax", num_classes=10, embedding_size=2)
    x, labels = torch.randn(4, 2), torch.tensor([0, 1, 2, 9])
    expected = loss(x, labels)
    loss.check_label_range = False

    def host_sync(*args, **kwargs):
        raise AssertionError("label range checked although check_label_range is False")

    monkeypatch.setattr(torch, "aminmax", host_sync)
    loss.iteration.sub_(1)  # the same λ as the first call
    torch.testing.assert_close(loss(x, labels), expected)


def test_int32_labels_are_accepted():
    loss = build("a-softmax", lambda_schedule=None)
    x, labels = sample_batch(loss)
    torch.testing.assert_close(loss(x, labels.int()), loss(x, labels))


# ----- the benchmark's naive head is a second reference ---------------------------------------


def load_benchmark(monkeypatch):
    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(folder))  # the benchmarks import their shared ``common``
    spec = importlib.util.spec_from_file_location("bench_loss_head", folder / "bench_loss_head.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_naive_head_agrees_with_a_softmax_and_benchmark_rows(monkeypatch):
    bench = load_benchmark(monkeypatch)
    schedule = LambdaSchedule(base=5.0, gamma=0.0, lambda_min=5.0)
    loss = ASoftmaxLoss(NUM_CLASSES, EMBEDDING_SIZE, lambda_schedule=schedule).double()
    x, labels = sample_batch(loss)
    naive = bench.naive_a_softmax_head(x, labels, loss.W.detach(), m=4, lam=5.0)
    torch.testing.assert_close(loss(x, labels), naive, rtol=1e-10, atol=1e-10)

    rows = bench.run(repeats=1, batch_size=4, embedding_size=3, num_classes=7)
    by_variant = {row["variant"]: row for row in rows}
    assert set(by_variant) >= {f"sphereviz {name}" for name in LOSS_NAMES}
    assert all(row["value"] > 0 for row in rows)
    assert by_variant[bench.FLOOR]["ratio"] == pytest.approx(1.0)
