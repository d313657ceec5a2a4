"""Open-set verification: cosine-score histograms and ROC curves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sphereviz.plots._common import (
    legend_below,
)
from sphereviz.style import COLUMN_WIDTHS_INCH, OKABE_ITO, class_colors

if TYPE_CHECKING:
    from sphereviz import evaluate  # imported when needed: it loads torch


__all__ = [
    "DIFFERENT_PEOPLE_COLOR",
    "draw_roc_curves",
    "draw_verification_scores",
    "drawn_threshold",
    "format_rate",
    "plot_verification",
    "SAME_PERSON_COLOR",
]


SAME_PERSON_COLOR = OKABE_ITO[0]
DIFFERENT_PEOPLE_COLOR = OKABE_ITO[1]


def drawn_threshold(result: evaluate.VerificationResult) -> float:
    """The threshold a score histogram shows: the mean of the fold thresholds.

    One fold (View 1, ``single_split_verification``): its threshold itself. k folds (View 2,
    ``verification_accuracy``): each fold has its own threshold t_f, chosen on the other
    folds, so the line is at t̄ = (1/k) Σ_f t_f and the span [min t_f, max t_f] is shaded.
    """
    return float(np.mean(result.thresholds))


def draw_verification_scores(
    ax: Axes, result: evaluate.VerificationResult, title: str | None = None, bins: int = 40
) -> Axes:
    """Histograms of the cosine scores of same-person and different-people pairs, into ``ax``.

    ``result.scores[result.same]`` (label ``"same person"``) and ``result.scores[~result.same]``
    (``"different people"``) are counted over ``bins`` equal bins on [−1, 1] (scores clipped
    to it against rounding); the vertical line (``"threshold"``) is ``drawn_threshold(result)``;
    with several folds the range of the fold thresholds is shaded (``"fold thresholds"``). The
    title is ``title`` and, on a second line, the verification accuracy (mean ± sample std
    over folds). ``ax`` is not cleared first; no legend is drawn (``plot_verification`` puts
    one below the panels). Returns ``ax``.
    """
    _check_verification_result(result, title or "result")
    edges = np.linspace(-1.0, 1.0, bins + 1)
    scores = np.clip(result.scores, -1.0, 1.0)  # a cosine of 1 + 1e-16 still counts
    ax.hist(scores[result.same], bins=edges, color=SAME_PERSON_COLOR, alpha=0.65,
            label="same person")  # fmt: skip
    ax.hist(scores[~result.same], bins=edges, color=DIFFERENT_PEOPLE_COLOR, alpha=0.65,
            label="different people")  # fmt: skip
    if result.thresholds.size > 1:
        ax.axvspan(result.thresholds.min(), result.thresholds.max(), color="0.5", alpha=0.25,
                   linewidth=0, label="fold thresholds")  # fmt: skip
    ax.axvline(drawn_threshold(result), color="black", linewidth=1.0, label="threshold")
    ax.set_xlim(-1.0, 1.0)
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("pairs")
    accuracy = f"accuracy {result.accuracy_mean:.3f}"
    if result.fold_accuracies.size > 1:
        accuracy += f" ± {result.accuracy_std:.3f}"
    ax.set_title(accuracy if title is None else f"{title}\n{accuracy}")
    return ax


def format_rate(rate: float) -> str:
    """A false accept rate as researchers write it: 1e-3, 5e-4, 0.05."""
    if rate < 0.01:
        return np.format_float_scientific(rate, trim="-", exp_digits=1)
    return f"{rate:g}"


def draw_roc_curves(
    ax: Axes,
    results: Mapping[str, evaluate.VerificationResult],
    far: float = 1e-3,
    legend: bool = True,
) -> dict[str, evaluate.RocSummary]:
    """ROC curves (TAR against FAR) of each named result, with TAR@FAR marked, into ``ax``.

    Each curve is ``evaluate.roc_summary`` of the result's scores (scikit-learn's
    ``roc_curve``: FAR = FP/(FP + TN), TAR = TP/(TP + FN) at every threshold), labelled
    ``"<name>: AUC <auc>, TAR@FAR=<far> <tar>"`` with TAR@FAR = max{TAR : FAR ≤ far}; a ring
    marks that operating point on the curve. With fewer than 1/far different-people pairs the
    only FAR ≤ far is 0, so TAR@FAR is then the TAR at zero false accepts. The dashed
    diagonal is chance (AUC 0.5). ``legend=False`` leaves the legend to the caller
    (``plot_verification`` puts it beside the panels). Returns the RocSummary of each name.
    """
    from sphereviz import evaluate

    if len(results) == 0:
        raise ValueError("results is empty; pass {name: evaluate.VerificationResult}")
    summaries = {}
    for color, (name, result) in zip(_roc_colors(len(results)), results.items(), strict=True):
        _check_verification_result(result, name)
        try:
            roc = evaluate.roc_summary(result.scores, result.same, far)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from error
        summaries[name] = roc
        ax.plot(roc.fpr, roc.tpr, color=color, label=f"{name}: AUC {roc.auc:.3f}, "
                f"TAR@FAR={format_rate(far)} {roc.tar_at_far:.3f}")  # fmt: skip
        at_far = np.flatnonzero(roc.fpr <= far)[-1]  # fpr and tpr never decrease along the ROC
        ax.plot(roc.fpr[at_far], roc.tpr[at_far], marker="o", markersize=5, color=color,
                markerfacecolor="none", linestyle="", label=f"_TAR@FAR {name}",
                clip_on=False)  # fmt: skip
    ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle="--", label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(f"ROC\n(ring: TAR@FAR={format_rate(far)})")
    if legend:
        ax.legend(loc="lower right", fontsize="small")
    return summaries


def plot_verification(
    results: Mapping[str, evaluate.VerificationResult], far: float = 1e-3
) -> Figure:
    """Open-set verification of one or more models (e.g. softmax vs A-Softmax on LFW).

    One panel per named result (``draw_verification_scores``: same-person and different-people
    cosine-score histograms, the threshold, the accuracy in the title), then one panel of ROC
    curves (``draw_roc_curves``: AUC and TAR@FAR=``far`` in the legend, the operating point
    marked, the chance diagonal). ``results`` maps a name (the loss) to what
    ``evaluate.single_split_verification`` or ``evaluate.verification_accuracy`` returned.
    The histogram key is a figure legend below the panels and the ROC key one to the right of
    them, so no legend covers data. With several folds the line is the mean fold threshold
    (``drawn_threshold``).
    """
    if len(results) == 0:
        raise ValueError(
            "results is empty; pass {name: evaluate.VerificationResult}, e.g. "
            "{'softmax': single_split_verification(...), 'a-softmax': ...}"
        )
    for name, result in results.items():
        _check_verification_result(result, name)
    if not 0 < far < 1:
        raise ValueError(f"far must be a false accept rate in (0, 1), e.g. 1e-3; got {far!r}")
    panels = len(results) + 1
    width = max(COLUMN_WIDTHS_INCH["double"], 2.4 * panels + 2.0)
    fig, axes = plt.subplots(1, panels, squeeze=False, figsize=(width, 2.6), layout="constrained")
    for ax, (name, result) in zip(axes[0][:-1], results.items(), strict=True):
        draw_verification_scores(ax, result, title=name)
    roc_ax = axes[0][-1]
    draw_roc_curves(roc_ax, results, far, legend=False)
    fig.legend(*roc_ax.get_legend_handles_labels(), loc="outside right center",
               fontsize="small", frameon=False)  # fmt: skip
    legend_below(fig, axes[0][:-1])
    return fig


def _roc_colors(n: int) -> list[str]:
    """Curve colours that are not the histograms' blue and orange (unless there are many)."""
    distinct = [c for c in OKABE_ITO if c not in (SAME_PERSON_COLOR, DIFFERENT_PEOPLE_COLOR)]
    return distinct[:n] if n <= len(distinct) else class_colors(n)


def _check_verification_result(result, name: str) -> None:
    from sphereviz import evaluate

    if not isinstance(result, evaluate.VerificationResult):
        raise ValueError(
            f"{name}: expected an evaluate.VerificationResult (from single_split_verification "
            f"or verification_accuracy), got {type(result).__name__}"
        )
