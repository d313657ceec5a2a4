"""The λ schedule of a recipe as it trains: λ per iteration, with the effective m beside it.

A-Softmax trains (λ cos θ + ψ(θ))/(1 + λ); while λ is large the margin is mostly absent.
``plot_lambda_schedule`` draws λ against the optimiser step on log–log axes (iteration 1
included) and, on a second axis, the effective m of that λ (``geometry.effective_m``, two
classes θ₁₂ apart, 90° by default): the m the run really trains at each step. For a run, the
λ it recorded after each epoch is marked on the curve.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sphereviz import geometry
from sphereviz.style import OKABE_ITO
from sphereviz.validation import check_int

if TYPE_CHECKING:
    from sphereviz.config import TrainConfig
    from sphereviz.runs import Run

__all__ = ["draw_lambda_schedule", "lambda_schedule_series", "plot_lambda_schedule"]


def lambda_schedule_series(
    config: TrainConfig, total_steps: int, points: int = 120, theta12: float = math.pi / 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(iterations, λ, effective m) at ``points`` log-spaced steps from 1 to ``total_steps``.

    The schedule is ``config.lambda_schedule(total_steps)``, the one the trainer builds for a
    run of that length; m is the config's (4 when it is None).
    """
    schedule = config.lambda_schedule(total_steps)
    if schedule is None:
        raise ValueError(
            f"{config.loss} has no λ schedule (only A-Softmax and L-Softmax anneal, and only "
            "with anneal=True)"
        )
    total_steps = check_int("total_steps", total_steps, min=1)
    iterations = np.unique(np.round(np.geomspace(1, total_steps, points)).astype(int))
    lambdas = np.asarray(schedule.value(iterations), dtype=float).reshape(-1)
    m = config.m if config.m is not None else 4
    effective = np.array([geometry.effective_m(m, lam, theta12) for lam in lambdas])
    return iterations, lambdas, effective


def draw_lambda_schedule(
    ax: Axes,
    config: TrainConfig,
    total_steps: int,
    recorded: tuple[np.ndarray, np.ndarray] | None = None,
    label: str | None = None,
    color: str = OKABE_ITO[0],
) -> Axes:
    """Draw λ per iteration (left axis, log) and the effective m (right axis, a twin) into
    ``ax``; ``recorded`` = (iterations, λ) of a run's epochs, marked as dots. Returns the twin.
    """
    iterations, lambdas, effective = lambda_schedule_series(config, total_steps)
    name = label or config.describe_schedule().split(",")[0]
    ax.plot(iterations, lambdas, color=color, linewidth=1.5, label=f"λ, {name}")
    if recorded is not None:
        ax.plot(*recorded, "o", color=color, markersize=3, label="λ recorded after each epoch")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1, total_steps)
    ax.set_xlabel("optimiser step (iteration)")
    ax.set_ylabel("λ")
    twin = ax.twinx()
    twin.plot(iterations, effective, color=color, linestyle="--", linewidth=1.2,
              label=f"effective m, {name}")  # fmt: skip
    twin.set_ylabel("effective m (θ₁₂ = 90°)")
    m = config.m if config.m is not None else 4
    twin.set_ylim(1, m + 0.2)
    return twin


def plot_lambda_schedule(
    source: Run | TrainConfig, total_steps: int | None = None, others=()
) -> Figure:
    """The λ schedule of a run (as it trained: its length from its metrics, its recorded λ)
    or of a config of ``total_steps`` steps; ``others``: more (config, label) pairs to compare
    on the same axes, each with the same length."""
    from sphereviz.runs import Run

    recorded = None
    if isinstance(source, Run):
        config = source.config
        if not source.metrics:
            raise ValueError(f"run {source.path} has no metrics yet; train it first")
        steps_per_epoch = None
        if source.metrics[-1].get("total_steps"):
            total_steps = total_steps or int(source.metrics[-1]["total_steps"])
            steps_per_epoch = total_steps // config.epochs
        if total_steps is None:
            raise ValueError(f"run {source.path} does not record its length; pass total_steps")
        if steps_per_epoch:
            recorded = (
                np.array([row["epoch"] * steps_per_epoch for row in source.metrics]),
                np.array([row["lambda"] for row in source.metrics], dtype=float),
            )
    else:
        config = source
        if total_steps is None:
            raise ValueError("a config's schedule needs total_steps, the run's length in steps")
    fig = Figure(figsize=(6.875, 3.2), layout="constrained")
    ax = fig.subplots()
    twins = [draw_lambda_schedule(ax, config, total_steps, recorded)]
    for (other, label), color in zip(others, OKABE_ITO[1:], strict=False):
        twins.append(draw_lambda_schedule(ax, other, total_steps, label=label, color=color))
    for twin in twins[1:]:
        twin.set_visible(False)  # one effective-m axis: the curves share its scale
        for line in twin.get_lines():
            twins[0].plot(*line.get_data(), color=line.get_color(), linestyle="--",
                          linewidth=1.2, label=line.get_label())  # fmt: skip
    top = max([config.m or 4] + [other.m or 4 for other, _ in others]) + 0.2
    twins[0].set_ylim(1, top)
    handles = ax.get_legend_handles_labels()
    twin_handles = twins[0].get_legend_handles_labels()
    fig.legend(handles[0] + twin_handles[0], handles[1] + twin_handles[1], fontsize="small",
               loc="outside lower center", ncol=2)  # fmt: skip
    ax.set_title(f"A-Softmax m = {config.m or 4}: λ and the effective m over {total_steps} steps")
    return fig
