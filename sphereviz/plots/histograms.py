"""Histograms of same-class and different-class pair angles (SphereFace Fig. 5)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sphereviz import geometry
from sphereviz.plots._common import (
    as_features_and_labels,
    keep_tick_label_sizes,
    legend_below,
    share_count_axis,
)
from sphereviz.style import COLUMN_WIDTHS_INCH, OKABE_ITO

__all__ = [
    "draw_angle_histograms",
    "plot_angle_histograms",
]


#: Labelled angles of the histogram axes (degrees): five labels (every 45°) run together in a
#: panel a quarter of a double column wide; the minor ticks keep the 45° marks.
_ANGLE_TICKS_DEGREES = (0, 90, 180)
_ANGLE_MINOR_TICKS_DEGREES = (45, 135)


def draw_angle_histograms(
    ax: Axes, features, labels, bins: int = 45, max_pairs: int = 100_000
) -> geometry.PairAngles:
    """Histograms (degrees) of same-class and different-class pair angles (SphereFace Fig. 5).

    Pair angles come from ``geometry.pair_angles`` (all pairs up to ``max_pairs``, else a
    fixed-seed sample). Bars are counts, labelled ``"same class"`` / ``"different class"``;
    the angle axis is labelled at 0, 90 and 180°, with minor ticks at 45° and 135°.
    ``ax`` is not cleared first (a widget that redraws calls ``clear_drawing``). No legend:
    the caller places one where it covers no bar (see ``plot_angle_histograms``). Returns the
    PairAngles drawn.
    """
    features, labels = as_features_and_labels(features, labels)
    angles = geometry.pair_angles(features, labels, max_pairs=max_pairs)
    edges = np.linspace(0.0, 180.0, bins + 1)
    ax.hist(np.degrees(angles.same_class), bins=edges, color=OKABE_ITO[0], alpha=0.65,
            label="same class")  # fmt: skip
    ax.hist(np.degrees(angles.different_class), bins=edges, color=OKABE_ITO[5], alpha=0.65,
            label="different class")  # fmt: skip
    ax.set_xlim(0, 180)
    ax.set_xticks(_ANGLE_TICKS_DEGREES)
    ax.set_xticks(_ANGLE_MINOR_TICKS_DEGREES, minor=True)
    ax.set_xlabel("pair angle (degrees)")
    # two lines: in one, the label is taller than a panel a quarter of a page wide
    ax.set_ylabel("pairs" if angles.exhaustive else f"pairs per kind\n(sample of {max_pairs:,})")
    return angles


def plot_angle_histograms(
    runs: Sequence[tuple[str, np.ndarray, np.ndarray]],
    bins: int = 45,
    max_pairs: int = 100_000,
    count_label_first_only: bool = False,
) -> Figure:
    """One angle-histogram panel per ``(title, features, labels)`` run, e.g. m = 1…4.

    When every run has the same numbers of same-class and different-class pairs (the same test
    set, or the same sample of ``max_pairs`` of each kind), the panels share their count
    axis, so bar heights compare across panels; its label and tick labels are then written
    once, on the first panel. Runs with different numbers of pairs keep a count axis each,
    labelled on every panel, or on the first only with ``count_label_first_only``.
    The angle axis is labelled at 0, 90 and 180° only (``draw_angle_histograms``), which
    stays legible with four panels to a double column.
    The legend is a figure legend below the panels (constrained layout makes room for it),
    so it never covers a bar, however the pairs are distributed.
    """
    if len(runs) == 0:
        raise ValueError("runs is empty; pass (title, features, labels) tuples")
    width = min(COLUMN_WIDTHS_INCH["double"], 2.2 * len(runs))
    fig, axes = plt.subplots(
        1, len(runs), squeeze=False, figsize=(width, width / len(runs) + 0.3), layout="constrained"
    )
    pair_counts = set()
    for ax, (title, features, labels) in zip(axes[0], runs, strict=True):
        angles = draw_angle_histograms(ax, features, labels, bins, max_pairs)
        pair_counts.add((angles.same_class.size, angles.different_class.size))
        ax.set_title(title)
        keep_tick_label_sizes(ax)
    if len(pair_counts) == 1:
        share_count_axis(axes[0])
    elif count_label_first_only:
        for ax in axes[0][1:]:
            ax.set_ylabel("")
    legend_below(fig, axes[0][:1], one_row=len(runs) > 1)
    return fig
