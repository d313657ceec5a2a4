"""ψ(θ) and the target logits of the margin losses, as curves against θ."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sphereviz import geometry, margins
from sphereviz.losses.registry import loss_spec
from sphereviz.style import OKABE_ITO, class_colors

__all__ = [
    "draw_psi",
    "draw_target_curve",
    "plot_psi",
    "target_curve",
]


def draw_psi(
    ax: Axes,
    ms: Sequence[int] = (1, 2, 3, 4),
    cosface_margin: float | None = 0.35,
    arcface_margin: float | None = 0.5,
    show_cos_m_theta: bool = True,
    num_points: int = 721,
) -> Axes:
    """Draw ψ(θ) (SphereFace eq. 7) for each m, against cos(mθ), CosFace and ArcFace targets.

    ψ(θ) = (−1)^k cos(mθ) − 2k on [kπ/m, (k+1)π/m] (solid), cos(mθ) (dashed, only where it
    differs from ψ, i.e. m ≥ 2), CosFace cos θ − m (dash-dot, ``margins.cosface_target``) and
    ArcFace cos(θ + m) (dotted; the plain curve over all of [0, π], which the loss's target
    ``margins.arcface_target`` replaces by cos θ − m·sin m past π − m: ``draw_target_curve``
    and the regions use that one).
    Each line's label names it, e.g. ``"ψ, m=4"``, so tests and legends can find it. Draws
    into ``ax`` without clearing it; returns ``ax``.
    """
    ms = [margins.check_integer_margin(m) for m in ms]
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
            margins.cosface_target(np.cos(theta), cosface_margin),
            color="0.35",
            linestyle="-.",
            label=f"CosFace cos θ − {cosface_margin:g}",
        )
    if arcface_margin is not None:
        ax.plot(
            degrees,
            np.cos(theta + arcface_margin),  # the textbook curve, without the fallback
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
    return ax


def target_curve(theta, loss: str, m=None, annealing_lambda: float = 0.0) -> np.ndarray:
    """The target logit / ‖x‖ (per unit scale s) of ``loss`` as a function of θ_y: the one
    definition the regions use, ``geometry.margin_target``.

    softmax / modified softmax / NormFace: cos θ (unit weights, no bias); A-Softmax and
    L-Softmax: (λ cos θ + ψ(θ))/(1 + λ) (integer m; ψ alone at λ = 0); CosFace: cos θ − m;
    ArcFace: cos(θ + m), with the loss's fallback past π − m; SphereFace-R: ψ_m(θ) with a
    real m (its forward value; the gradient is that of cos θ); SphereFace2: g(cos θ) − m,
    g(c) = 2((c + 1)/2)^3 − 1 (the true-class logit / r, without the bias). ``m`` defaults as
    in ``geometry`` (4, 0.35, 0.5 rad, 1.5, 0.4).
    """
    return geometry.margin_target(theta, loss, m, annealing_lambda)


def draw_target_curve(
    ax: Axes,
    loss: str,
    m=None,
    num_points: int = 361,
    legend: bool = True,
    annealing_lambda: float = 0.0,
) -> Axes:
    """Draw the target curve of one loss (see ``target_curve``) against cos θ into ``ax``.

    Lines are labelled ``"cos θ"`` (grey), ``"target"`` (solid) and, for A-Softmax with
    m ≥ 2, ``"cos(mθ)"`` (dashed). Used by the margin explorer, which redraws it on every
    change (``clear_drawing`` first) and passes ``legend=False`` (a legend costs a fifth of a
    redraw; the title then names the lines). Draws without clearing ``ax``; returns ``ax``.
    """
    loss = geometry.canonical_loss_name(loss)
    ax.set_xlim(0, 180)
    ax.set_xticks(np.arange(0, 181, 45))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.set_xlabel("θ (degrees)")
    theta = np.linspace(0.0, math.pi, num_points)
    degrees = np.degrees(theta)
    ax.plot(degrees, np.cos(theta), color="0.6", linewidth=1.0, label="cos θ")
    spec = loss_spec(loss)
    m_value = spec.default_margin if m is None else m
    if spec.multiplies_angle and m_value > 1:
        ax.plot(
            degrees, np.cos(m_value * theta), color=OKABE_ITO[0], linestyle="--", linewidth=0.8,
            alpha=0.6, label="cos(mθ)",
        )  # fmt: skip
    annealed = annealing_lambda > 0 and spec.anneals
    if annealed:
        ax.plot(degrees, target_curve(theta, loss, m), color=OKABE_ITO[0], linestyle=":",
                linewidth=1.0, label="ψ (λ = 0)")  # fmt: skip
    ax.plot(degrees, target_curve(theta, loss, m, annealing_lambda), color=OKABE_ITO[0],
            linewidth=1.8, label="target")  # fmt: skip
    ax.axhline(0.0, color="0.85", linewidth=0.5, zorder=0)
    ax.relim()
    ax.autoscale_view(scalex=False)
    name = loss_spec(loss).title
    title = f"{name} target" if m is None else f"{name} target, m = {m:g}"
    if annealed:
        title += f", λ = {annealing_lambda:g}"
    if legend:
        ax.legend(loc="lower left", fontsize="small")
    else:
        if annealed:
            title += "\n(grey: cos θ, dashed: cos(mθ), dotted: ψ at λ = 0)"
        else:
            title += (
                "\n(grey: cos θ, dashed: cos(mθ))" if len(ax.get_lines()) > 3 else "\n(grey: cos θ)"
            )
    ax.set_title(title)
    return ax


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
