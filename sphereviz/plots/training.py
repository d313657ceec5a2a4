"""Training curves: loss, accuracy and the annealing λ per epoch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sphereviz.style import class_colors

__all__ = [
    "plot_accuracy_curves",
    "plot_training_curves",
]


def _metric_series(metrics: Sequence[Mapping], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [row for row in metrics if row.get(key) is not None]
    epochs = np.array([row["epoch"] for row in rows], dtype=float)
    return epochs, np.array([row[key] for row in rows], dtype=float)


def plot_training_curves(metrics: Sequence[Mapping], title: str | None = None) -> Figure:
    """Loss, train/test accuracy and λ against epoch, from a run's metrics (one dict per epoch).

    Each dict needs ``epoch``; ``loss``, ``train_accuracy``, ``test_accuracy`` and ``lambda``
    are drawn when present. Accuracies are plotted as given (fractions or percent). ``title``
    goes above the three panels.
    """
    if len(metrics) == 0:
        raise ValueError("metrics is empty; pass run.metrics (one dict per epoch)")
    missing = [i for i, row in enumerate(metrics) if "epoch" not in row]
    if missing:
        raise ValueError(f"every metrics row needs an 'epoch' key; rows {missing} have none")
    fig, (loss_ax, accuracy_ax, lambda_ax) = plt.subplots(1, 3)
    loss_ax.plot(*_metric_series(metrics, "loss"), marker="o", label="loss")
    loss_ax.set_title("loss")
    for key in ("train_accuracy", "test_accuracy"):
        accuracy_ax.plot(*_metric_series(metrics, key), marker="o", label=key.replace("_", " "))
    accuracy_ax.set_title("accuracy")
    accuracy_ax.legend(fontsize="small")
    lambda_ax.plot(*_metric_series(metrics, "lambda"), marker="o", label="lambda")
    lambda_ax.set_title("annealing λ (log scale)")
    if any(row.get("lambda") for row in metrics):
        lambda_ax.set_yscale("log")
    for ax in (loss_ax, accuracy_ax, lambda_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    if title:  # laid out again around the title, from the panels' first layout
        fig.suptitle(title)
        fig.tight_layout()
    return fig


def plot_accuracy_curves(
    panels: Sequence[tuple[str, Sequence[tuple[str, Sequence[Mapping]]]]],
) -> Figure:
    """Test accuracy (%) against epoch, one panel per ``(title, [(label, metrics), ...])``.

    Each ``metrics`` is a run's metrics (one dict per epoch with ``epoch`` and a fractional
    ``test_accuracy``), drawn as 100 · test_accuracy; the panels share their accuracy axis,
    the legend is on the last one (lower right, where the curves have risen).
    """
    if len(panels) == 0 or any(len(curves) == 0 for _, curves in panels):
        raise ValueError("panels is empty; pass (title, [(label, run.metrics), ...]) tuples")
    fig, axes = plt.subplots(1, len(panels), squeeze=False, sharey=True)
    for ax, (title, curves) in zip(axes[0], panels, strict=True):
        for color, (label, metrics) in zip(class_colors(len(curves)), curves, strict=True):
            epochs = [row["epoch"] for row in metrics]
            accuracy = [100 * row["test_accuracy"] for row in metrics]
            ax.plot(epochs, accuracy, marker="o", color=color, label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig
