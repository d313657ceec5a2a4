"""The margin under annealing: the blended target, reach, gap and the effective m.

Independent truths: a plain bisection on the binary boundary equation (no scipy), the values
of ``shared/docs/sphereface.md`` §6, the closed forms at λ = 0 (Properties 2 and 3), the
dense-grid decision rule of ``circle_regions``, and the losses' own target logit.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from sphereviz import geometry
from sphereviz.losses import make_loss
from sphereviz.margin_cli import main as margin_main
from sphereviz.margins import LambdaSchedule, annealed_psi, blend_with_cosine, psi


def bisect_reach(m: int, lam: float, theta12: float) -> float:
    """φ where (λ cos φ + ψ(φ))/(1 + λ) = cos(θ₁₂ − φ), by 200 halvings of [0, θ₁₂/2]."""

    def excess(phi: float) -> float:
        theta = np.array([phi])
        cos_m = (-1) ** math.floor(min(m * phi / math.pi, m - 1)) * math.cos(m * phi)
        psi_value = cos_m - 2 * min(math.floor(m * phi / math.pi), m - 1)
        assert abs(psi_value - float(psi(theta, m)[0])) < 1e-12
        return (lam * math.cos(phi) + psi_value) / (1 + lam) - math.cos(theta12 - phi)

    low, high = 0.0, theta12 / 2
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if excess(middle) > 0 else (low, middle)
    return (low + high) / 2


# the table of sphereface.md §6 (gap and effective m, two classes 90° apart)
REFERENCE = [(4, 5, 21.23, 1.617), (3, 5, 15.74, 1.424), (2, 5, 8.28, 1.203), (4, 0, 54.00, 4.0)]


@pytest.mark.parametrize(("m", "lam", "gap_deg", "m_eff"), REFERENCE)
def test_reference_values(m, lam, gap_deg, m_eff):
    result = geometry.annealed_margin(m, lam, math.pi / 2)
    assert math.degrees(result.gap) == pytest.approx(gap_deg, abs=0.005)
    assert result.effective_m == pytest.approx(m_eff, abs=0.0005)
    assert geometry.effective_m(m, lam) == result.effective_m


@pytest.mark.parametrize("m", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("lam", [0.0, 0.1, 1.0, 5.0, 100.0])
@pytest.mark.parametrize("theta12_deg", [30.0, 90.0, 150.0])
def test_reach_against_bisection(m, lam, theta12_deg):
    theta12 = math.radians(theta12_deg)
    result = geometry.annealed_margin(m, lam, theta12)
    reach = bisect_reach(m, lam, theta12)
    assert result.reach == pytest.approx(reach, abs=1e-10)
    assert result.effective_m == pytest.approx(theta12 / reach - 1, rel=1e-9)
    # the gap facing each other; going round the back the regions can be closer (θ₁₂ > 90°)
    assert result.gap <= theta12 - 2 * reach + 1e-10
    if theta12_deg <= 90:
        assert result.gap == pytest.approx(theta12 - 2 * reach, abs=1e-10)


@pytest.mark.parametrize("m", [2, 3, 4])
@pytest.mark.parametrize("theta12_deg", [60.0, 90.0, 170.0])
def test_lambda_zero_is_the_closed_form(m, theta12_deg):
    theta12 = math.radians(theta12_deg)
    closed = geometry.binary_closed_form(theta12, "a-softmax", m)
    result = geometry.annealed_margin(m, 0.0, theta12)
    assert result.reach == pytest.approx(closed.end, abs=1e-10)
    assert result.effective_m == pytest.approx(m, abs=1e-9)
    assert result.max_intra == pytest.approx(min(closed.max_intra_class_angle, math.pi), abs=1e-9)
    assert result.gap == pytest.approx(closed.min_inter_class_angle, abs=1e-9)
    assert result.criterion_holds == closed.criterion_holds


@pytest.mark.parametrize(("classes", "m", "holds"), [(3, 3, True), (5, 3, True), (4, 2, False)])
def test_uniform_classes_are_property_3(classes, m, holds):
    result = geometry.annealed_margin(m, 0.0, num_classes=classes)
    closed = geometry.uniform_closed_form(classes, "a-softmax", m)
    assert result.max_intra == pytest.approx(closed.max_intra_class_angle, abs=1e-9)
    assert result.gap == pytest.approx(closed.min_inter_class_angle, abs=1e-9)
    assert result.criterion_holds is holds


@pytest.mark.parametrize(("lam", "classes", "theta12_deg"), [(5, 2, 90), (0.5, 2, 120), (2, 6, 50)])
def test_against_the_grid_decision_rule(lam, classes, theta12_deg):
    theta12 = math.radians(theta12_deg)
    result = geometry.annealed_margin(4, lam, theta12, classes)
    grid = geometry.circle_regions(
        theta12 * np.arange(classes), "a-softmax", 4, annealing_lambda=lam, method="grid"
    )
    step = 2 * math.pi / geometry.CIRCLE_RESOLUTION
    assert result.max_intra == pytest.approx(grid.max_intra_class_angle, abs=2.5 * step)
    assert result.gap == pytest.approx(grid.min_inter_class_angle, abs=2.5 * step)
    assert result.criterion_holds == grid.criterion_holds


def test_effective_m_falls_as_lambda_grows():
    values = [geometry.effective_m(4, lam) for lam in (0, 0.1, 1, 5, 50, 1e6)]
    assert values[0] == pytest.approx(4)
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    assert values[-1] == pytest.approx(1, abs=1e-3)  # λ → ∞ is modified softmax


def test_other_losses_and_errors():
    cosface = geometry.annealed_margin(0.35, loss="cosface")
    closed = geometry.binary_closed_form(math.pi / 2, "cosface", 0.35)
    assert cosface.gap == pytest.approx(closed.min_inter_class_angle, abs=1e-9)
    with pytest.raises(ValueError, match="a-softmax and l-softmax only"):
        geometry.annealed_margin(0.35, 1.0, loss="cosface")
    with pytest.raises(ValueError, match="do not fit on the circle"):
        geometry.annealed_margin(4, 0.0, math.radians(100), num_classes=4)
    with pytest.raises(ValueError, match=">= 0"):
        geometry.annealed_margin(4, -1.0)


def test_blended_target_is_the_losses_target():
    """The loss's trained target logit equals margins.annealed_psi at λ, in float64."""
    theta = torch.linspace(0, math.pi, 181, dtype=torch.float64)
    features = torch.stack([torch.cos(theta), torch.sin(theta)], dim=1) * 2.5
    labels = torch.zeros(len(theta), dtype=torch.long)
    for lam in (0.0, 0.3, 5.0):
        schedule = LambdaSchedule(base=lam, gamma=0.0, lambda_min=lam) if lam else None
        loss = make_loss("a-softmax", 2, 2, margin=4, lambda_schedule=schedule).double()
        with torch.no_grad():
            loss.W.copy_(torch.eye(2, dtype=torch.float64))
            target = loss.margin_logits(features, labels)[:, 0]
        expected = 2.5 * annealed_psi(theta.numpy(), 4, lam)
        np.testing.assert_allclose(target.numpy(), expected, atol=1e-9)
        np.testing.assert_allclose(annealed_psi(theta, 4, lam).numpy(), expected / 2.5, atol=1e-12)


def test_blend_with_cosine_limits():
    assert blend_with_cosine(-7.0, 0.5, 0.0) == -7.0
    assert blend_with_cosine(-7.0, 0.5, math.inf) == 0.5
    assert blend_with_cosine(-1.0, 1.0, 1.0) == pytest.approx(0.0)
    with pytest.raises(ValueError, match=">= 0"):
        blend_with_cosine(0.0, 0.0, -1)


def test_cli_json(capsys):
    assert margin_main(["--m", "4", "--lambda", "5", "--theta12", "90", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("gap_deg", "reach_deg", "effective_m", "max_intra_deg", "min_inter_deg"):
        assert math.isfinite(summary[key])
    assert summary["effective_m"] == pytest.approx(1.617, abs=5e-4)
    assert summary["criterion_holds"] is False
    assert margin_main(["--m", "4", "--theta12", "400"]) == 2
    assert "in degrees" in capsys.readouterr().err


def test_math_layer_runs_without_torch():
    """``sphereviz margin``/``bounds`` and geometry never import torch (a fresh interpreter)."""
    code = (
        "import sys, io, contextlib\n"
        "import sphereviz.geometry, sphereviz.margins\n"
        "from sphereviz.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['margin', '--m', '4', '--lambda', '5', '--json'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
