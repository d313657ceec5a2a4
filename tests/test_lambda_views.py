"""λ in the classroom views: the explorer's λ control, the target curve and the schedule plot.

Independent truths: ``geometry.annealed_margin`` (itself checked by bisection), the closed
forms of the blended target and of ArcFace's fallback, and the hyperbola of the schedule.
"""

from __future__ import annotations

import math
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sphereviz import geometry, plots, widgets  # noqa: E402
from sphereviz.config import TrainConfig  # noqa: E402
from sphereviz.margins import psi  # noqa: E402
from sphereviz.plots_schedule import lambda_schedule_series, plot_lambda_schedule  # noqa: E402
from sphereviz.runs import Run  # noqa: E402


def test_lambda_stops_are_logarithmic_with_zero_and_the_official_floor():
    stops = np.array(widgets.LAMBDA_STOPS)
    assert stops[0] == 0 and stops[-1] == 1000 and 5.0 in stops
    assert np.all(np.diff(stops) > 0)
    ratios = stops[2:] / stops[1:-1]
    assert np.all((ratios >= 2) & (ratios <= 2.5))  # 1-2-5: each stop 2 to 2.5× the last


def test_explorer_shows_the_effective_m_and_the_annealed_regions():
    explorer = widgets.margin_explorer(annealing_lambda=5.0)
    assert "lambda" in explorer.visible_controls()
    expected = geometry.annealed_margin(4, 5.0, math.pi / 2)
    assert explorer.effective_m() == pytest.approx(expected.effective_m)
    assert f"{expected.effective_m:.2f}" in re.sub("<[^>]+>", " ", explorer.readout.value)
    step = 360 / geometry.CIRCLE_RESOLUTION
    assert explorer.summary["angular_margin_deg"] == pytest.approx(
        math.degrees(expected.gap), abs=2.5 * step
    )
    explorer.controls["lambda"].value = 0.0
    assert explorer.effective_m() == pytest.approx(4.0)
    assert explorer.summary["angular_margin_deg"] == pytest.approx(54.0)
    explorer.controls["loss"].value = "cosface"
    assert "lambda" not in explorer.visible_controls() and explorer.effective_m() is None
    with pytest.raises(ValueError, match="annealing_lambda must be one of"):
        widgets.margin_explorer(annealing_lambda=3.0)


def test_target_curve_is_the_blended_target_and_arcface_falls_back():
    theta = np.linspace(0, math.pi, 721)
    blended = plots.target_curve(theta, "a-softmax", 4, annealing_lambda=5.0)
    np.testing.assert_allclose(blended, (5 * np.cos(theta) + psi(theta, 4)) / 6, atol=1e-12)
    arcface = plots.target_curve(theta, "arcface", 0.5)
    beyond = theta > math.pi - 0.5
    np.testing.assert_allclose(arcface[~beyond], np.cos(theta[~beyond] + 0.5), atol=1e-12)
    np.testing.assert_allclose(
        arcface[beyond], np.cos(theta[beyond]) - 0.5 * math.sin(0.5), atol=1e-12
    )
    assert np.all(np.diff(arcface) < 0)  # never rises again past π − m


def test_schedule_series_against_the_hyperbola_and_effective_m():
    config = TrainConfig(m=4)
    iterations, lambdas, effective = lambda_schedule_series(config, 640)
    gamma = (1000 / 0.1 - 1) / 320
    np.testing.assert_allclose(lambdas, np.maximum(0.1, 1000 / (1 + gamma * iterations)))
    assert iterations[0] == 1 and iterations[-1] == 640
    assert effective[-1] == pytest.approx(geometry.effective_m(4, 0.1))
    assert np.all(np.diff(effective) >= -1e-12)  # m_eff grows as λ falls
    official = lambda_schedule_series(TrainConfig.preset("official"), 640)
    assert official[2][-1] == pytest.approx(geometry.effective_m(4, 1000 / (1 + 0.12 * 640)))
    with pytest.raises(ValueError, match="no λ schedule"):
        lambda_schedule_series(TrainConfig(loss="cosface"), 640)


def test_schedule_plot_of_a_run_marks_what_it_recorded():
    config = TrainConfig(m=4, epochs=4)
    schedule = config.lambda_schedule(400)
    metrics = [
        {"epoch": e, "lambda": float(schedule.value(100 * e)), "total_steps": 400}
        for e in range(1, 5)
    ]
    fig = plot_lambda_schedule(Run(None, config, metrics, {}))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlim()[0] == pytest.approx(1)
    dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert len(dots) == 1
    np.testing.assert_allclose(dots[0].get_xdata(), [100, 200, 300, 400])
    np.testing.assert_allclose(dots[0].get_ydata(), [row["lambda"] for row in metrics])
    compared = plot_lambda_schedule(config, 400, others=[(TrainConfig.preset("official"), "o")])
    assert len(compared.axes[0].get_lines()) == 2


def test_plots_and_widgets_take_a_run_folder_path_with_clear_errors(tmp_path):
    """A path string names a run folder; a folder that is not a run, or a wrong type, is a
    one-line error that says so (not an AttributeError)."""
    from sphereviz.train import train

    config = TrainConfig(
        epochs=1, max_train_samples=64, max_test_samples=40, width=4, batch_size=32,
        device="cpu", out=str(tmp_path / "run"),
    )  # fmt: skip
    trained = train(config, progress=False)
    title, features, labels, _ = plots.run_panel(str(tmp_path / "run"))
    np.testing.assert_array_equal(features, trained.embeddings["features"])
    explorer = widgets.sphere_explorer([str(tmp_path / "run")])
    assert explorer is not None
    with pytest.raises(ValueError, match="not a run folder"):
        plots.run_panel(str(tmp_path / "missing"))
    with pytest.raises(TypeError, match="run folder path"):
        plots.run_panel(42)
