"""Pure metrics of classification and verification: accuracy, cosine scores, thresholds, ROC.

Closed set: ``accuracy`` of logits, ``closed_set_accuracy`` of the angular rule argmax_j cos θ_j.
Open set: ``cosine_scores`` cos⟨a − μ, b − μ⟩ of pairs, the exact ``best_threshold`` and the
official grid's ``official_threshold``, and ``roc_summary`` (ROC, AUC, EER, TAR@FAR). Arrays
in, numbers out, no torch; ``sphereviz.evaluate`` runs the LFW protocol with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sphereviz.geometry._common import unit_rows
from sphereviz.geometry.features import equal_error_rate

__all__ = [
    "OFFICIAL_GRID_STEPS",
    "THRESHOLD_RULES",
    "RocSummary",
    "accuracy",
    "best_threshold",
    "closed_set_accuracy",
    "cosine_logits",
    "cosine_scores",
    "official_threshold",
    "roc_summary",
]

THRESHOLD_RULES = ("exact", "official-grid")
OFFICIAL_GRID_STEPS = 10000
"""The official grid of thresholds: (−10000:10000)/10000, 20,001 values in [−1, 1]."""


def accuracy(logits, labels) -> float:
    """Fraction of rows whose largest logit is at the true label."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(
            f"logits must be (N, C) and labels (N,), got {logits.shape} and {labels.shape}"
        )
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def cosine_logits(features, class_weights) -> np.ndarray:
    """cos θ_j = xᵀW_j / (‖x‖‖W_j‖) for every sample x and class weight W_j: (N, C)."""
    features = np.asarray(features, dtype=np.float64)
    class_weights = np.asarray(class_weights, dtype=np.float64)
    if features.ndim != 2 or class_weights.ndim != 2 or features.shape[1] != class_weights.shape[1]:
        raise ValueError(
            "features must be (N, d) and class_weights (C, d) with the same d, "
            f"got {features.shape} and {class_weights.shape}"
        )
    return unit_rows(features) @ unit_rows(class_weights).T


def closed_set_accuracy(features, labels, class_weights) -> float:
    """Accuracy of the angular decision rule argmax_j cos θ_j (= argmax ‖x‖cos θ_j).

    This is the classifier that modified softmax and A-Softmax train (with the margin
    removed), so the number is comparable across m.
    """
    return accuracy(cosine_logits(features, class_weights), labels)


def cosine_scores(features_a, features_b, mean=None) -> np.ndarray:
    """cos⟨a − μ, b − μ⟩ for each pair (row) of a and b; μ = 0 when ``mean`` is None."""
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if mean is not None:
        a, b = a - mean, b - mean
    return np.sum(unit_rows(a) * unit_rows(b), axis=1)


def best_threshold(scores, same) -> float:
    """The threshold t that maximises the accuracy of "same person ⇔ score > t".

    Exact, not on a grid: the candidates are the midpoints between consecutive distinct
    scores plus one value below and one above all of them; among equally accurate candidates
    the smallest is returned.
    """
    scores, same = _check_scores(scores, same)
    distinct = np.unique(scores)
    candidates = np.concatenate(
        [[distinct[0] - 1.0], (distinct[:-1] + distinct[1:]) / 2, [distinct[-1] + 1.0]]
    )
    positives, negatives = np.sort(scores[same]), np.sort(scores[~same])
    true_accepts = positives.size - np.searchsorted(positives, candidates, side="right")
    true_rejects = np.searchsorted(negatives, candidates, side="right")
    return float(candidates[np.argmax(true_accepts + true_rejects)])


def official_threshold(scores, same, steps: int = OFFICIAL_GRID_STEPS) -> float:
    """The threshold of the official SphereFace ``evaluation.m``.

    Accuracy of "same ⇔ score > t, different ⇔ score < t" for every t of the grid
    (−steps:steps)/steps; the **mean of all grid values** that reach the best accuracy (they
    need not be contiguous). A score equal to t counts as wrong for both kinds, as there.
    """
    scores, same = _check_scores(scores, same)
    grid = np.arange(-steps, steps + 1) / steps
    positives, negatives = np.sort(scores[same]), np.sort(scores[~same])
    true_accepts = positives.size - np.searchsorted(positives, grid, side="right")
    true_rejects = np.searchsorted(negatives, grid, side="left")
    correct = true_accepts + true_rejects
    return float(np.mean(grid[correct == correct.max()]))


def _threshold(scores, same, rule: str) -> float:
    if rule == "exact":
        return best_threshold(scores, same)
    if rule == "official-grid":
        return official_threshold(scores, same)
    raise ValueError(f"threshold must be one of {THRESHOLD_RULES}, got {rule!r}")


@dataclass(frozen=True)
class RocSummary:
    """ROC of a verification score: FAR (= fpr) against TAR (= tpr), with its summaries.

    ``eer``: the rate where FAR = 1 − TAR (linear interpolation on the ROC curve);
    ``tar_at_far``: the best TAR whose FAR is at most ``far`` (no interpolation).
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auc: float
    eer: float
    far: float
    tar_at_far: float


def roc_summary(scores, same, far: float = 1e-3) -> RocSummary:
    """ROC, AUC, EER and TAR@FAR of scores where a larger score means "same person"."""
    scores, same = _check_scores(scores, same)
    if same.all() or not same.any():
        raise ValueError("ROC needs both same-person and different-person pairs")
    if not 0 < far < 1:
        raise ValueError(f"far must be in (0, 1), got {far!r}")
    from sklearn.metrics import roc_auc_score, roc_curve  # imported here: it takes a second

    fpr, tpr, thresholds = roc_curve(same, scores)
    auc = float(roc_auc_score(same, scores))
    eer = equal_error_rate(scores, same)
    tar_at_far = float(np.max(tpr[fpr <= far]))
    return RocSummary(fpr, tpr, thresholds, auc, eer, far, tar_at_far)


def _check_same(same, n: int) -> np.ndarray:
    same = np.asarray(same)
    if same.shape != (n,):
        raise ValueError(f"same must have one entry per pair ({n}), got shape {same.shape}")
    if not np.isin(same, (0, 1)).all():
        raise ValueError("same must hold booleans (or 0/1): 1 for same-person pairs")
    return same.astype(bool)


def _check_scores(scores, same) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0:
        raise ValueError(f"scores must be a non-empty 1-D array, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or inf")
    return scores, _check_same(same, scores.size)
