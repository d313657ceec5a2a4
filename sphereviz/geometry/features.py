"""Statistics of learned features (any dimension): angles, Fisher score, criterion, EER."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sphereviz.geometry._common import (
    _as_matrix,
    _check_labels,
    _checked_unit_rows,
    _frozen,
    unit_rows,
)
from sphereviz.validation import check_int, check_real

# Statistics of learned features (any dimension)
# --------------------------------------------------------------------------------------------


def _features_and_labels(features, labels, num_classes: int | None = None):
    features = _as_matrix(features, "features")
    labels = _check_labels(labels, features.shape[0], num_classes)
    unit = _checked_unit_rows(features, "features")
    return features, unit, labels


def angles_to_class_weights(features, labels, class_weights) -> tuple[np.ndarray, np.ndarray]:
    """Per feature: the angle θ_y to its own class weight and the angle to the nearest other.

    Returns (own, nearest_other), radians, each (N,). θ_j = arccos(x·W_j / (‖x‖‖W_j‖)).
    """
    weights = _as_matrix(class_weights, "class_weights")
    if weights.shape[0] < 2:
        raise ValueError("class_weights needs at least 2 rows (one per class)")
    features, unit, labels = _features_and_labels(features, labels, weights.shape[0])
    if features.shape[1] != weights.shape[1]:
        raise ValueError(
            f"features have dimension {features.shape[1]} but class_weights {weights.shape[1]}"
        )
    unit_weights = _checked_unit_rows(weights, "class_weights")
    angles = np.arccos(np.clip(unit @ unit_weights.T, -1.0, 1.0))
    rows = np.arange(labels.size)
    own = angles[rows, labels]
    others = angles.copy()
    others[rows, labels] = np.inf
    return own, others.min(axis=1)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not objects
class PairAngles:
    """Angles (radians) between pairs of features of the same / of different classes.

    ``exhaustive`` is True when every pair is included; otherwise each kind holds
    ``max_pairs`` pairs drawn uniformly, with replacement, from the pairs of that kind.
    """

    same_class: np.ndarray
    different_class: np.ndarray
    exhaustive: bool


def pair_angles(features, labels, *, max_pairs: int = 100_000, seed: int = 0) -> PairAngles:
    """Same-class and different-class pair angles, for the paper's angle histograms (Fig. 5).

    All N(N−1)/2 pairs when there are at most ``max_pairs`` of them; otherwise ``max_pairs``
    same-class and ``max_pairs`` different-class pairs sampled uniformly with a fixed ``seed``
    (so the result is deterministic).
    """
    check_int("max_pairs", max_pairs, min=1)
    _, unit, labels = _features_and_labels(features, labels)
    count = labels.size
    if count * (count - 1) // 2 <= max_pairs:
        first, second = np.triu_indices(count, k=1)
        angles = _pair_angle(unit, first, second)
        same = labels[first] == labels[second]
        return PairAngles(_frozen(angles[same]), _frozen(angles[~same]), True)
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    classes, class_start, class_size = np.unique(
        labels[order], return_index=True, return_counts=True
    )
    same_pairs = class_size * (class_size - 1)
    if same_pairs.sum() > 0:
        chosen = rng.choice(classes.size, size=max_pairs, p=same_pairs / same_pairs.sum())
        size, start = class_size[chosen], class_start[chosen]
        first = rng.integers(0, size)
        second = rng.integers(0, size - 1)
        second = second + (second >= first)  # a different member of the same class
        same_angles = _pair_angle(unit, order[start + first], order[start + second])
    else:
        same_angles = np.empty(0)
    class_of = np.searchsorted(classes, labels)
    others_count = count - class_size[class_of]
    if others_count.sum() > 0:
        first = rng.choice(count, size=max_pairs, p=others_count / others_count.sum())
        own = class_of[first]
        rank = rng.integers(0, others_count[first])
        rank = rank + np.where(rank >= class_start[own], class_size[own], 0)  # skip own class
        different_angles = _pair_angle(unit, first, order[rank])
    else:
        different_angles = np.empty(0)
    return PairAngles(_frozen(same_angles), _frozen(different_angles), False)


def _pair_angle(unit: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    return np.arccos(np.clip(np.einsum("ij,ij->i", unit[first], unit[second]), -1.0, 1.0))


def angular_fisher_score(features, labels) -> float:
    """Angular Fisher Score (SphereFace appendix), lower is better: AFS = S_w / S_b.

    S_w = Σ_i Σ_{x∈X_i} (1 − cos⟨x, μ_i⟩),  S_b = Σ_i n_i (1 − cos⟨μ_i, μ⟩), with μ_i the mean
    of class i's features and μ the mean of all features (means of the features as given, not
    of their unit vectors). Returns NaN when μ or a μ_i is the zero vector (cosine undefined),
    and inf when S_b = 0 (all class means point the same way).
    """
    features, unit, labels = _features_and_labels(features, labels)
    overall = features.mean(axis=0)
    classes, class_of, counts = np.unique(labels, return_inverse=True, return_counts=True)
    means = np.zeros((classes.size, features.shape[1]))
    np.add.at(means, class_of, features)
    means /= counts[:, None]
    scale = np.abs(features).max()
    mean_norms = np.linalg.norm(means, axis=1)
    if np.linalg.norm(overall) <= 1e-12 * scale or np.any(mean_norms <= 1e-12 * scale):
        return math.nan
    unit_means = means / mean_norms[:, None]
    within = float(np.sum(1.0 - np.einsum("ij,ij->i", unit, unit_means[class_of])))
    between = float(np.sum(counts * (1.0 - unit_means @ (overall / np.linalg.norm(overall)))))
    return math.inf if between <= 0 else within / between


def class_mean_directions(features, labels) -> tuple[np.ndarray, np.ndarray]:
    """(classes present, unit vector of each class's mean feature), sorted by class."""
    features, _, labels = _features_and_labels(features, labels)
    classes, class_of, counts = np.unique(labels, return_inverse=True, return_counts=True)
    means = np.zeros((classes.size, features.shape[1]))
    np.add.at(means, class_of, features)
    norms = np.linalg.norm(means, axis=1)
    directions = np.where(norms[:, None] > 0, means / np.maximum(norms, 1e-300)[:, None], np.nan)
    return classes, directions


def min_pairwise_angle(vectors) -> float:
    """The smallest angle between two distinct rows of ``vectors`` (radians; NaN rows skipped)."""
    vectors = np.asarray(vectors, dtype=float)
    vectors = vectors[np.all(np.isfinite(vectors), axis=1)]
    if vectors.shape[0] < 2:
        return math.nan
    unit = _checked_unit_rows(vectors, "vectors")
    cos = np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(cos, -np.inf)
    return float(np.arccos(cos.max()))


def equal_error_rate(scores, same) -> float:
    """The rate where false accepts equal false rejects (FAR = 1 − TAR) of a score that is
    larger for "same" pairs; linear interpolation on the ROC curve (scikit-learn's)."""
    from scipy.optimize import brentq
    from sklearn.metrics import roc_curve

    same = np.asarray(same, dtype=bool)
    if same.all() or not same.any():
        raise ValueError("an equal error rate needs both same-class and different-class pairs")
    fpr, tpr, _ = roc_curve(same, np.asarray(scores, dtype=float))
    return float(brentq(lambda x: 1.0 - x - np.interp(x, fpr, tpr), 0.0, 1.0))


@dataclass(frozen=True)
class FeatureCriterion:
    """The paper's criterion measured on features (radians), exactly and robustly.

    - ``max_intra_class_angle``: the largest angle between two features of one class;
    - ``min_inter_class_angle``: the smallest angle between features of two classes (the
      criterion holds when max intra ≤ min inter: every class fits in a cone that no other
      class's feature enters);
    - ``intra_class_angle_high`` / ``inter_class_angle_low``: the ``percentile``-th highest
      same-class and lowest different-class pair angle, the same test without its outliers;
    - ``median_same_class_angle``, ``median_different_class_angle``;
    - ``pair_angle_eer``: the equal error rate of "same class ⇔ angle < t" over the pairs.
    """

    max_intra_class_angle: float
    min_inter_class_angle: float
    intra_class_angle_high: float
    inter_class_angle_low: float
    median_same_class_angle: float
    median_different_class_angle: float
    pair_angle_eer: float
    percentile: float

    @property
    def criterion_holds(self) -> bool:
        return self.max_intra_class_angle <= self.min_inter_class_angle

    @property
    def robust_criterion_holds(self) -> bool:
        return self.intra_class_angle_high <= self.inter_class_angle_low


#: Entries of one block of cosines in :func:`_extreme_pair_cosines` (8 MiB of float64).
_BLOCK_ENTRIES = 1 << 20


def _extreme_pair_cosines(unit: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Over all pairs of unit rows, each pair once: the lowest cosine of two rows of one class
    (the largest intra-class angle) and the highest of two rows of different classes (the
    smallest inter-class angle); +inf / −inf where there is no such pair.

    The rows are sorted by class, so that each class's pairs with itself (the upper triangle
    of its block) and with the classes after it are plain slices: no masks, about N²/2
    cosines in blocks of :data:`_BLOCK_ENTRIES`.
    """
    order = np.argsort(labels, kind="stable")
    unit, labels = unit[order], labels[order]
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], labels.size]
    lowest_same, highest_different = np.inf, -np.inf
    for start, end in zip(starts, ends, strict=True):
        own, later = unit[start:end], unit[end:]
        rows_per_block = max(1, _BLOCK_ENTRIES // max(own.shape[0] + later.shape[0], 1))
        for first in range(0, own.shape[0], rows_per_block):
            rows = own[first : first + rows_per_block]
            # the rows with themselves and the class's later rows: a row's cosine with itself
            # (1) never lowers the minimum; a last row alone has no pair left
            if own.shape[0] - first > 1:
                lowest_same = min(lowest_same, float((rows @ own[first:].T).min()))
            if later.shape[0]:
                highest_different = max(highest_different, float((rows @ later.T).max()))
    return lowest_same, highest_different


def feature_criterion(
    features, labels, *, percentile: float = 5.0, max_pairs: int = 200_000, seed: int = 0
) -> FeatureCriterion:
    """Max intra / min inter over **all** pairs (in blocks), percentiles, medians and EER over
    the pairs of ``pair_angles`` (all of them, or ``max_pairs`` of each kind, seeded)."""
    check_real("percentile", percentile, min=0, max=50, include_min=False, include_max=False)
    _, unit, labels = _features_and_labels(features, labels)
    if np.unique(labels).size < 2 or np.bincount(labels).max() < 2:
        raise ValueError("the criterion needs two classes and a class with two features")
    lowest_same, highest_different = _extreme_pair_cosines(unit, labels)
    max_intra = float(np.arccos(np.clip(lowest_same, -1.0, 1.0)))
    min_inter = float(np.arccos(np.clip(highest_different, -1.0, 1.0)))
    pairs = pair_angles(unit, labels, max_pairs=max_pairs, seed=seed)
    angles = np.concatenate([pairs.same_class, pairs.different_class])
    is_same = np.concatenate([np.ones(pairs.same_class.size, bool),
                              np.zeros(pairs.different_class.size, bool)])  # fmt: skip
    return FeatureCriterion(
        max_intra_class_angle=max_intra,
        min_inter_class_angle=min_inter,
        intra_class_angle_high=float(np.percentile(pairs.same_class, 100 - percentile)),
        inter_class_angle_low=float(np.percentile(pairs.different_class, percentile)),
        median_same_class_angle=float(np.median(pairs.same_class)),
        median_different_class_angle=float(np.median(pairs.different_class)),
        pair_angle_eer=equal_error_rate(-angles, is_same),
        percentile=float(percentile),
    )


def feature_summary(features, labels, class_weights) -> dict:
    """Headline statistics of learned embeddings: one name for each quantity, used everywhere.

    Angles in degrees, on the features as given (a test split):

    - ``mean_angle_to_own_class_deg``: the mean of θ_y, the angle to the own class weight W_y;
    - ``mean_angle_to_nearest_other_class_deg``: the mean angle to the nearest other weight;
    - ``median_same_class_angle_deg``: the median angle between two features of one class;
    - ``max_intra_class_angle_deg`` / ``min_inter_class_angle_deg``: the paper's criterion
      on the features (``feature_criterion``), with ``criterion_holds``;
    - ``intra_class_angle_p95_deg`` / ``inter_class_angle_p5_deg``: the same without the
      outliers (95th percentile of same-class pairs, 5th of different-class pairs), with
      ``robust_criterion_holds``;
    - ``pair_angle_eer``: the equal error rate of thresholding pair angles;
    - ``min_class_mean_angle_deg``: the smallest angle between the mean directions of two
      classes (the centres the features form), ``min_class_weight_angle_deg`` the same
      between the class weights;
    - ``angular_fisher_score`` (lower is better), ``nearest_weight_accuracy``.
    """
    own, nearest_other = angles_to_class_weights(features, labels, class_weights)
    labels = np.asarray(labels).astype(np.int64)
    weights = np.asarray(class_weights, dtype=float)
    _, directions = class_mean_directions(features, labels)
    criterion = feature_criterion(features, labels)
    return {
        "mean_angle_to_own_class_deg": float(np.degrees(own.mean())),
        "mean_angle_to_nearest_other_class_deg": float(np.degrees(nearest_other.mean())),
        "median_same_class_angle_deg": math.degrees(criterion.median_same_class_angle),
        "max_intra_class_angle_deg": math.degrees(criterion.max_intra_class_angle),
        "min_inter_class_angle_deg": math.degrees(criterion.min_inter_class_angle),
        "criterion_holds": criterion.criterion_holds,
        "intra_class_angle_p95_deg": math.degrees(criterion.intra_class_angle_high),
        "inter_class_angle_p5_deg": math.degrees(criterion.inter_class_angle_low),
        "robust_criterion_holds": criterion.robust_criterion_holds,
        "pair_angle_eer": criterion.pair_angle_eer,
        "min_class_mean_angle_deg": float(np.degrees(min_pairwise_angle(directions))),
        "min_class_weight_angle_deg": float(np.degrees(min_pairwise_angle(weights))),
        "angular_fisher_score": float(angular_fisher_score(features, labels)),
        "nearest_weight_accuracy": float(np.mean(own < nearest_other)),
        "num_samples": int(labels.size),
        "num_classes": int(weights.shape[0]),
    }


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
            f"{features.shape}; 2-D features go on the circle (plots.plot_features_2d)"
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
            unit_rows(features),
            None if weights is None else unit_rows(weights),
            description,
        )
    from sklearn.decomposition import PCA  # imported here: it takes seconds, and few plots need it

    unit_features = unit_rows(features)
    pca = PCA(n_components=dim, svd_solver="full").fit(unit_features)
    axes = pca.components_
    description = f"PCA {features.shape[1]}-D → {dim}-D, normalised"
    projected_weights = None if weights is None else unit_rows(weights @ axes.T)
    return unit_rows(unit_features @ axes.T), projected_weights, description


# --------------------------------------------------------------------------------------------
