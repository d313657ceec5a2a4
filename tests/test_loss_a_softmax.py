"""A-Softmax (SphereFace): its limits, its λ annealing counter, and a dense acos reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sphereviz.losses import ASoftmaxLoss, ModifiedSoftmaxLoss
from sphereviz.margins import LambdaSchedule

NUM_CLASSES, EMBEDDING_SIZE = 10, 4


def batch(n=32, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, EMBEDDING_SIZE, generator=generator, dtype=dtype) * 3
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=generator)
    return x, labels


def a_softmax(seed=0, **kwargs) -> ASoftmaxLoss:
    torch.manual_seed(seed)
    return ASoftmaxLoss(NUM_CLASSES, EMBEDDING_SIZE, **kwargs).double()


def slow_reference_logits(x, labels, weights, m: int, lam: float) -> torch.Tensor:
    """‖x‖(λ cos θ_y + ψ(θ_y))/(1+λ) on the targets, ‖x‖cos θ_j elsewhere; θ by acos, float64.

    ψ is evaluated piece by piece from its definition, (−1)^k cos(mθ) − 2k on [kπ/m, (k+1)π/m].
    """
    x, weights = x.double(), weights.double()
    norms = x.norm(dim=1)
    unit_x = x / norms[:, None]
    unit_w = weights / weights.norm(dim=0)
    logits = torch.empty(len(x), weights.shape[1], dtype=torch.float64)
    for i in range(len(x)):
        for j in range(weights.shape[1]):
            cosine = float(unit_x[i] @ unit_w[:, j])
            theta = math.acos(max(-1.0, min(1.0, cosine)))
            if j == labels[i]:
                k = min(int(m * theta / math.pi), m - 1)
                psi = (-1) ** k * math.cos(m * theta) - 2 * k
                logits[i, j] = norms[i] * (lam * cosine + psi) / (1 + lam)
            else:
                logits[i, j] = norms[i] * cosine
    return logits


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("lam", [0.0, 0.5, 5.0])
def test_logits_match_the_slow_acos_reference(m, lam):
    schedule = None if lam == 0 else LambdaSchedule(base=lam, gamma=0.0, lambda_min=0.0)
    loss = a_softmax(margin=m, lambda_schedule=schedule)
    x, labels = batch(n=24, seed=m)
    expected = slow_reference_logits(x, labels, loss.W.detach(), m, lam)
    torch.testing.assert_close(loss.margin_logits(x, labels), expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(loss(x, labels), F.cross_entropy(expected, labels))


def test_plain_logits_are_norm_times_cosine():
    loss = a_softmax()
    x, labels = batch()
    expected = slow_reference_logits(x, labels, loss.W.detach(), m=1, lam=0.0)
    torch.testing.assert_close(loss.get_logits(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("schedule", [LambdaSchedule(), None])
def test_m_1_is_modified_softmax(schedule):
    loss = a_softmax(margin=1, lambda_schedule=schedule)
    modified = ModifiedSoftmaxLoss(NUM_CLASSES, EMBEDDING_SIZE).double()
    modified.load_state_dict({"W": loss.W.detach()})
    x, labels = batch()
    torch.testing.assert_close(loss(x, labels), modified(x, labels), rtol=1e-14, atol=1e-14)


def test_huge_lambda_is_modified_softmax():
    loss = a_softmax(margin=4, lambda_schedule=LambdaSchedule(lambda_min=1e13))
    modified = ModifiedSoftmaxLoss(NUM_CLASSES, EMBEDDING_SIZE).double()
    modified.load_state_dict({"W": loss.W.detach()})
    x, labels = batch()
    torch.testing.assert_close(loss(x, labels), modified(x, labels), rtol=1e-11, atol=1e-11)
    # ... while the real margin makes it a harder (larger) loss
    assert a_softmax(lambda_schedule=None)(x, labels) > modified(x, labels) + 0.1


def test_the_first_training_forward_uses_iteration_1():
    loss = a_softmax()
    assert int(loss.iteration) == 0 and loss.current_lambda is None
    x, labels = batch()
    value = loss(x, labels)
    assert int(loss.iteration) == 1
    assert loss.current_lambda == pytest.approx(1000 / 1.12, rel=1e-12)
    expected = slow_reference_logits(x, labels, loss.W.detach(), m=4, lam=1000 / 1.12)
    torch.testing.assert_close(value, F.cross_entropy(expected, labels), rtol=1e-12, atol=1e-12)
    at_iteration_0 = slow_reference_logits(x, labels, loss.W.detach(), m=4, lam=1000.0)
    assert abs(value - F.cross_entropy(at_iteration_0, labels)) > 1e-6


def test_lambda_reaches_its_floor_at_iteration_1659():
    loss = a_softmax()
    x, labels = batch(n=4)
    loss.iteration.fill_(1657)
    loss(x, labels)
    assert int(loss.iteration) == 1658
    assert loss.current_lambda == pytest.approx(1000 / (1 + 0.12 * 1658), rel=1e-12)
    assert loss.current_lambda > 5
    loss(x, labels)
    assert int(loss.iteration) == 1659 and loss.current_lambda == 5.0


def test_only_training_forwards_advance_the_counter():
    loss = a_softmax()
    x, labels = batch(n=4)
    loss(x, labels)
    loss(x, labels)
    loss.eval()
    eval_value = loss(x, labels)
    loss.get_logits(x)
    loss.margin_logits(x, labels)
    assert int(loss.iteration) == 2
    # eval uses λ at the current iteration, the one of the last training forward
    expected = slow_reference_logits(x, labels, loss.W.detach(), m=4, lam=1000 / 1.24)
    torch.testing.assert_close(eval_value, F.cross_entropy(expected, labels))
    loss.train()
    loss(x, labels)
    assert int(loss.iteration) == 3


def test_counter_is_saved_and_restored_with_the_state_dict():
    loss = a_softmax()
    x, labels = batch(n=4)
    for _ in range(5):
        loss(x, labels)
    state = loss.state_dict()
    assert int(state["iteration"]) == 5 and state["iteration"].dtype == torch.long

    resumed = a_softmax(seed=123)
    resumed.load_state_dict(state)
    assert int(resumed.iteration) == 5
    assert resumed.current_lambda == loss.current_lambda
    torch.testing.assert_close(resumed(x, labels), loss(x, labels), rtol=0, atol=0)
    assert int(resumed.iteration) == int(loss.iteration) == 6


def test_counter_survives_dtype_conversion():
    loss = ASoftmaxLoss(NUM_CLASSES, EMBEDDING_SIZE)
    loss.iteration.fill_(7)
    loss = loss.double().half().float()
    assert loss.iteration.dtype == torch.long and int(loss.iteration) == 7


def test_without_schedule_lambda_is_zero():
    loss = a_softmax(lambda_schedule=None)
    assert loss.current_lambda == 0.0
    x, labels = batch()
    expected = slow_reference_logits(x, labels, loss.W.detach(), m=4, lam=0.0)
    torch.testing.assert_close(loss(x, labels), F.cross_entropy(expected, labels))


@pytest.mark.slow
def test_torch_compile_keeps_one_graph_while_the_counter_runs(monkeypatch):
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    monkeypatch.setattr(torch._dynamo.config, "error_on_recompile", True)
    loss = ASoftmaxLoss(NUM_CLASSES, EMBEDDING_SIZE)
    compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)
    x, labels = batch(n=8, dtype=torch.float32)
    values = [compiled(x, labels) for _ in range(3)]
    values[-1].backward()
    assert int(loss.iteration) == 3
    assert counters["stats"]["unique_graphs"] == 1
    # the compiled third step used λ(3), like the eager module would
    eager = ASoftmaxLoss(NUM_CLASSES, EMBEDDING_SIZE)
    eager.load_state_dict({"W": loss.W.detach(), "iteration": torch.tensor(2)})
    torch.testing.assert_close(values[-1], eager(x, labels))
    torch._dynamo.reset()
