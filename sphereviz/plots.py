"""Matplotlib figures of SphereFace: ψ curves, decision regions, the bound map, learned features.

Every ``plot_*`` function returns a ``matplotlib.figure.Figure`` and never calls ``show``;
save it with ``style.save_figure``. ``draw_*`` functions draw into an existing axes (and
clear it first), so a widget can redraw the same figure without building a new one.

Angles on axes are in degrees; every function argument that is an angle is in radians.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from sphereviz import margins
from sphereviz.style import class_colors

__all__ = [
    "draw_psi",
    "plot_features_2d",
    "plot_features_sphere",
    "plot_psi",
    "plot_training_curves",
    "project_to_sphere",
]


# ---------------------------------------------------------------------------------------------
# ψ(θ) and the target logits of the margin losses
# ---------------------------------------------------------------------------------------------


def draw_psi(
    ax: Axes,
    ms: Sequence[int] = (1, 2, 3, 4),
    cosface_margin: float | None = 0.35,
    arcface_margin: float | None = 0.5,
    show_cos_m_theta: bool = True,
    num_points: int = 721,
) -> None:
    """Draw ψ(θ) (SphereFace eq. 7) for each m, against cos(mθ), CosFace and ArcFace targets.

    ψ(θ) = (−1)^k cos(mθ) − 2k on [kπ/m, (k+1)π/m] (solid), cos(mθ) (dashed, only where it
    differs from ψ, i.e. m ≥ 2), CosFace cos θ − m (dash-dot) and ArcFace cos(θ + m) (dotted).
    Each line's label names it, e.g. ``"ψ, m=4"``, so tests and legends can find it.
    """
    ms = [margins.check_integer_margin(m) for m in ms]
    ax.clear()
    theta = np.linspace(0.0, math.pi, num_points)
    degrees = np.degrees(theta)
    colors = class_colors(max(len(ms), 1))
    for color, m in zip(colors, ms, strict=True):
        ax.plot(degrees, margins.psi(theta, m), color=color, label=f"ψ, m={m}")
        if show_cos_m_theta and m >= 2:
            ax.plot(
                degrees,
                np.cos(m * theta),
                color=color,
                linestyle="--",
                linewidth=0.8,
                alpha=0.7,
                label=f"cos({m}θ)",
            )
    if cosface_margin is not None:
        ax.plot(
            degrees,
            np.cos(theta) - cosface_margin,
            color="0.35",
            linestyle="-.",
            label=f"CosFace cos θ − {cosface_margin:g}",
        )
    if arcface_margin is not None:
        ax.plot(
            degrees,
            np.cos(theta + arcface_margin),
            color="0.1",
            linestyle=":",
            label=f"ArcFace cos(θ + {arcface_margin:g})",
        )
    ax.set_xlim(0, 180)
    ax.set_xticks(np.arange(0, 181, 45))
    ax.set_xlabel("θ (degrees)")
    ax.set_ylabel("target logit / ‖x‖")
    ax.axhline(0.0, color="0.8", linewidth=0.5, zorder=0)
    ax.legend(loc="lower left", fontsize="small", ncol=2)


def plot_psi(
    ms: Sequence[int] = (1, 2, 3, 4),
    cosface_margin: float | None = 0.35,
    arcface_margin: float | None = 0.5,
    show_cos_m_theta: bool = True,
) -> Figure:
    """ψ(θ) for m = 1…4 against cos(mθ), with CosFace and ArcFace targets (see ``draw_psi``)."""
    fig, ax = plt.subplots()
    draw_psi(ax, ms, cosface_margin, arcface_margin, show_cos_m_theta)
    ax.set_title("A-Softmax ψ(θ) and other margin targets")
    return fig


# ---------------------------------------------------------------------------------------------
# Learned features
# ---------------------------------------------------------------------------------------------


def _as_features_and_labels(features, labels) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, dtype=float)
    labels = np.asarray(labels)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(
            f"features must be a non-empty (n_samples, n_dims) array, got shape {features.shape}"
        )
    if labels.shape != (features.shape[0],):
        raise ValueError(
            f"labels must have shape ({features.shape[0]},) to match features, got {labels.shape}"
        )
    if not np.all(np.isfinite(features)):
        raise ValueError("features contain NaN or inf; check the run that produced them")
    return features, labels


def _unit_rows(array: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms > 0, norms, 1.0)


def project_to_sphere(
    features, class_weights=None, dim: int = 3
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Unit vectors in ``dim`` dimensions for features (and class weights) of any dimension.

    d == dim: x / ‖x‖. d > dim: the features are first normalised (x / ‖x‖), PCA
    (scikit-learn) is fitted on them, both features and weights are mapped **linearly** onto
    the ``dim`` leading principal axes (x ↦ V x, without subtracting the mean, so the origin
    and thus the angles' vertex stay put) and normalised again. Returns
    ``(points, weights_or_None, description)``; the description names the projection, for
    an axis title.
    """
    features = np.asarray(features, dtype=float)
    if features.ndim != 2 or features.shape[1] < dim:
        raise ValueError(
            f"features must be (n_samples, n_dims) with n_dims >= {dim}, got shape "
            f"{features.shape}; 2-D features go on the circle (plot_features_2d)"
        )
    weights = None if class_weights is None else np.asarray(class_weights, dtype=float)
    if weights is not None and (weights.ndim != 2 or weights.shape[1] != features.shape[1]):
        raise ValueError(
            f"class_weights must be (n_classes, {features.shape[1]}) to match the features, "
            f"got shape {weights.shape}"
        )
    if features.shape[1] == dim:
        description = f"{dim}-D features, normalised"
        return (
            _unit_rows(features),
            None if weights is None else _unit_rows(weights),
            description,
        )
    unit_features = _unit_rows(features)
    pca = PCA(n_components=dim, svd_solver="full").fit(unit_features)
    axes = pca.components_
    description = f"PCA to {dim}-D of {features.shape[1]}-D features, normalised"
    projected_weights = None if weights is None else _unit_rows(weights @ axes.T)
    return _unit_rows(unit_features @ axes.T), projected_weights, description


def _scatter_by_class(ax: Axes, points: np.ndarray, labels: np.ndarray, size: float) -> None:
    classes = np.unique(labels)
    for color, cls in zip(class_colors(len(classes)), classes, strict=True):
        chosen = points[labels == cls]
        ax.scatter(
            *chosen.T,
            s=size,
            color=color,
            alpha=0.6,
            linewidths=0,
            label=f"class {cls}",
            rasterized=len(points) > 5000,
        )


def plot_features_2d(
    features,
    labels,
    class_weights=None,
    title: str | None = None,
    marker_size: float = 3.0,
) -> Figure:
    """Learned 2-D features in raw space (left) and projected onto the unit circle (right).

    The paper's Fig. 2: the right panel shows x / ‖x‖, where only the angle matters. Class
    weight vectors W_j, when given, are drawn as rays (scaled to the data on the left,
    unit length on the right).
    """
    features, labels = _as_features_and_labels(features, labels)
    if features.shape[1] != 2:
        raise ValueError(
            f"plot_features_2d needs 2-D features, got {features.shape[1]}-D; "
            "use plot_features_sphere for 3-D or higher"
        )
    fig, (raw_ax, unit_ax) = plt.subplots(1, 2)
    unit = _unit_rows(features)
    _scatter_by_class(raw_ax, features, labels, marker_size)
    _scatter_by_class(unit_ax, unit, labels, marker_size)
    circle = np.linspace(0, 2 * math.pi, 361)
    unit_ax.plot(np.cos(circle), np.sin(circle), color="0.75", linewidth=0.5, zorder=0)
    if class_weights is not None:
        weights = np.asarray(class_weights, dtype=float)
        if weights.ndim != 2 or weights.shape[1] != 2:
            raise ValueError(f"class_weights must be (n_classes, 2), got shape {weights.shape}")
        reach = float(np.max(np.linalg.norm(features, axis=1)))
        for ax, scale in ((raw_ax, reach), (unit_ax, 1.15)):
            for color, w in zip(class_colors(len(weights)), _unit_rows(weights), strict=True):
                ax.plot([0, scale * w[0]], [0, scale * w[1]], color=color, linewidth=1.0)
    raw_ax.set_title("raw features")
    unit_ax.set_title("normalised: x / ‖x‖")
    unit_ax.set_xlim(-1.2, 1.2)
    unit_ax.set_ylim(-1.2, 1.2)
    for ax in (raw_ax, unit_ax):
        ax.set_aspect("equal", adjustable="datalim")
    if title:
        fig.suptitle(title)
    return fig


def _draw_unit_sphere_wireframe(ax) -> None:
    u = np.linspace(0, 2 * math.pi, 25)
    v = np.linspace(0, math.pi, 13)
    ax.plot_wireframe(
        np.outer(np.cos(u), np.sin(v)),
        np.outer(np.sin(u), np.sin(v)),
        np.outer(np.ones_like(u), np.cos(v)),
        color="0.85",
        linewidth=0.3,
    )


def plot_features_sphere(
    runs: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]],
    marker_size: float = 2.0,
    columns: int | None = None,
) -> Figure:
    """Learned features on the unit sphere, one 3-D panel per run (the paper's Fig. 5).

    ``runs`` is a sequence of ``(title, features, labels, class_weights_or_None)``, e.g. one
    per m = 1…4. 3-D features are normalised; higher-dimensional features are projected by
    ``project_to_sphere`` (PCA to 3-D without centring, then normalised), and the panel
    title says so.
    """
    if len(runs) == 0:
        raise ValueError("runs is empty; pass (title, features, labels, class_weights) tuples")
    columns = columns or len(runs)
    rows = math.ceil(len(runs) / columns)
    fig = plt.figure(figsize=(2.0 * columns, 2.1 * rows))
    for index, (title, features, labels, weights) in enumerate(runs):
        features, labels = _as_features_and_labels(features, labels)
        points, unit_weights, description = project_to_sphere(features, weights)
        ax = fig.add_subplot(rows, columns, index + 1, projection="3d")
        _draw_unit_sphere_wireframe(ax)
        _scatter_by_class(ax, points, labels, marker_size)
        if unit_weights is not None:
            for color, w in zip(class_colors(len(unit_weights)), unit_weights, strict=True):
                ax.plot(*np.stack([np.zeros(3), 1.2 * w]).T, color=color, linewidth=1.2)
        ax.set_box_aspect((1, 1, 1))
        ax.set_axis_off()
        ax.set_title(title if features.shape[1] == 3 else f"{title}\n({description})")
    return fig


# ---------------------------------------------------------------------------------------------
# Training curves
# ---------------------------------------------------------------------------------------------


def _metric_series(metrics: Sequence[Mapping], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [row for row in metrics if row.get(key) is not None]
    epochs = np.array([row["epoch"] for row in rows], dtype=float)
    return epochs, np.array([row[key] for row in rows], dtype=float)


def plot_training_curves(metrics: Sequence[Mapping]) -> Figure:
    """Loss, train/test accuracy and λ against epoch, from a run's metrics (one dict per epoch).

    Each dict needs ``epoch``; ``loss``, ``train_accuracy``, ``test_accuracy`` and ``lambda``
    are drawn when present. Accuracies are plotted as given (fractions or percent).
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
    lambda_ax.set_title("annealing λ")
    for ax in (loss_ax, accuracy_ax, lambda_ax):
        ax.set_xlabel("epoch")
    fig.tight_layout()
    return fig
