"""Helpers shared by the plot modules: input checks, axes clearing and layout."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def clear_drawing(ax: Axes) -> Axes:
    """Remove what ``draw_*`` functions drew into ``ax``, keeping its ticks, spines and limits.

    The ``draw_*`` functions draw into an axes without clearing it, so that several can share
    one; a widget that redraws on every slider step calls this first. It removes the lines,
    patches, texts, collections, images, bar containers, the legend and the title, which is
    far cheaper than ``ax.clear()``: that rebuilds every tick and spine and costs as much as
    the drawing itself. Returns ``ax``.
    """
    for container in list(ax.containers):  # histogram bars: remove them and their container
        container.remove()
    for artist in (*ax.lines, *ax.patches, *ax.texts, *ax.collections, *ax.images):
        artist.remove()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    ax.set_title("")
    return ax


def as_features_and_labels(features, labels) -> tuple[np.ndarray, np.ndarray]:
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


def share_count_axis(axes: Sequence[Axes]) -> None:
    """Give ``axes`` the first one's y axis, labelled and numbered on the first panel only.

    The shared limits are autoscaled afresh, so they take in the highest bar of every panel.
    """
    first, *others = axes
    for ax in others:
        ax.sharey(first)
        ax.set_ylabel("")
        ax.tick_params(axis="y", labelleft=False)
    first.autoscale_view(scalex=False)


def keep_tick_label_sizes(ax: Axes) -> None:
    """Fix the tick label sizes of the rcParams in force now on ``ax``'s future ticks too.

    Matplotlib makes the ticks a locator asks for when the figure is drawn, with the rcParams
    in force then: a figure made inside ``style.publication_style`` (7 pt tick labels) and
    saved outside it would get 10 pt count labels, wide enough to run into the next panel.
    """
    ax.tick_params(axis="x", which="both", labelsize=plt.rcParams["xtick.labelsize"])
    ax.tick_params(axis="y", which="both", labelsize=plt.rcParams["ytick.labelsize"])


def legend_below(fig: Figure, axes: Sequence[Axes], one_row: bool = True) -> None:
    """A figure legend of the labelled artists of ``axes`` (each label once), below the panels.

    "outside lower center" asks the figure's constrained layout to shrink the panels, so the
    legend covers no data. ``one_row=False`` stacks the entries (a single narrow panel).
    """
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(text, handle)
    fig.legend(list(entries.values()), list(entries), loc="outside lower center",
               ncol=len(entries) if one_row else 1, fontsize="small", frameon=False)  # fmt: skip
