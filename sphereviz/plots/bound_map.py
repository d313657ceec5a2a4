"""The bound map: where A-Softmax's criterion max intra ≤ min inter holds, over (θ₁₂, m) and
(K, m)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from sphereviz import geometry
from sphereviz.style import COLUMN_WIDTHS_INCH, OKABE_ITO

__all__ = [
    "binary_criterion_map",
    "plot_bound_map",
    "uniform_criterion_map",
]

#: The bounds m = 2 + √3 and m = 3 and the wrapped-case edge: Okabe–Ito vermillion.
BOUND_COLOR = OKABE_ITO[5]


def binary_criterion_map(theta12_degrees, ms) -> np.ndarray:
    """criterion_holds of ``geometry.binary_closed_form`` on the grid (m rows, θ₁₂ columns)."""
    return np.array(
        [
            [
                geometry.binary_closed_form(math.radians(t), "a-softmax", m).criterion_holds
                for t in theta12_degrees
            ]
            for m in ms
        ]
    )


def uniform_criterion_map(num_classes, ms) -> np.ndarray:
    """criterion_holds of ``geometry.uniform_closed_form`` on the grid (m rows, K columns)."""
    return np.array(
        [
            [
                geometry.uniform_closed_form(int(k), "a-softmax", m).criterion_holds
                for k in num_classes
            ]
            for m in ms
        ]
    )


def plot_bound_map(
    m_max: float = 8.0,
    m_step: float = 0.05,
    theta12_step_degrees: float = 1.0,
    max_classes: int = 12,
) -> Figure:
    """Where A-Softmax's criterion (max intra ≤ min inter) holds, with real m ≥ 1.

    Left: two classes, over (θ₁₂, m), from ``geometry.binary_closed_form``; the line
    m = 2 + √3 is SphereFace's Property 2 (the criterion holds for every θ₁₂ above it).
    Right: K uniformly spaced classes, over (K, m), from ``geometry.uniform_closed_form``;
    the line m = 3 is Property 3. Dark cells hold. Fractional m uses the paper's boundary
    rule mθ_i < θ_j, which equals the ψ rule at integer m.
    """
    if not m_max > 1 or not m_step > 0 or not theta12_step_degrees > 0 or max_classes < 2:
        raise ValueError(
            "need m_max > 1, m_step > 0, theta12_step_degrees > 0 and max_classes >= 2, got "
            f"{m_max}, {m_step}, {theta12_step_degrees}, {max_classes}"
        )
    ms = np.arange(1.0, m_max + m_step / 2, m_step)
    theta12 = np.arange(theta12_step_degrees, 180 + theta12_step_degrees / 2, theta12_step_degrees)
    classes = np.arange(2, max_classes + 1)
    fig, (binary_ax, uniform_ax) = plt.subplots(1, 2, figsize=(COLUMN_WIDTHS_INCH["double"], 2.8))
    colormap = ListedColormap(["#F2F2F2", OKABE_ITO[0]])  # light grey, blue
    binary_ax.pcolormesh(
        theta12, ms, binary_criterion_map(theta12, ms), cmap=colormap, vmin=0, vmax=1,
        shading="nearest", rasterized=True,
    )  # fmt: skip
    from sphereviz import bounds  # sympy: only when the map is drawn

    bound = float(bounds.derive_binary_bound().m_min)
    binary_ax.axhline(bound, color=BOUND_COLOR, linewidth=1.2, label=f"m = 2 + √3 ≈ {bound:.2f}")
    # the analytic edge of the wrapped case: θ₁₂ ≥ 2π/(m − 1), i.e. m ≥ 1 + 2π/θ₁₂, below 2 + √3
    edge_theta = np.linspace(360 / (bound - 1), 180, 200)
    binary_ax.plot(edge_theta, 1 + 360 / edge_theta, color=BOUND_COLOR, linewidth=1.2,
                   linestyle="--", label="m = 1 + 2π/θ₁₂ (wrapped case)")  # fmt: skip
    binary_ax.set_xlabel("θ₁₂ (degrees)")
    binary_ax.set_ylabel("m")
    binary_ax.set_title("two classes")
    binary_ax.legend(loc="lower right", fontsize="small", frameon=True)
    uniform_ax.pcolormesh(
        classes, ms, uniform_criterion_map(classes, ms), cmap=colormap, vmin=0, vmax=1,
        shading="nearest", rasterized=True,
    )  # fmt: skip
    multiclass = float(bounds.derive_multiclass_bound().m_min)
    uniform_ax.axhline(multiclass, color=BOUND_COLOR, linewidth=1.2, label=f"m = {multiclass:g}")
    uniform_ax.set_xlabel("K (uniformly spaced classes)")
    uniform_ax.set_title("K classes, 2π/K apart")
    uniform_ax.legend(loc="lower right", fontsize="small", frameon=True)
    fig.suptitle("max intra-class angle ≤ min inter-class angle (dark: holds)")
    fig.tight_layout()
    return fig
