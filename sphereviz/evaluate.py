"""Evaluation: closed-set accuracy and open-set verification on LFW-format pairs.

Pure functions on feature arrays come first (they are what the tests check against
brute-force computations); the glue that runs a trained model over aligned LFW crops and the
``sphereviz evaluate-lfw`` command come last.

The verification protocol is the official SphereFace one (its ``evaluation.m``):

1. feature of a face = concat(f(image), f(horizontally flipped image))  (or their sum);
2. for each of the 10 folds: μ = mean feature of both sides of the pairs of the other 9
   folds; subtract μ, L2-normalise, score each pair by cosine similarity;
3. choose the threshold that maximises accuracy on the 9 folds, apply it to the 10th;
4. report the mean ± standard deviation of the 10 fold accuracies.

ROC, AUC, EER and TAR@FAR use every pair's score from step 2 (each scored with its own
fold's mean) and scikit-learn's ``roc_curve`` / ``roc_auc_score``.

**Scoring variants.** Public implementations disagree on steps 1-3 (docs §8), which is why an
LFW number rarely matches the paper's. :data:`LFW_PROTOCOLS` names each variant, who uses it,
and :func:`protocol_table` scores all of them on the same features:

=======================  ===============  ==================  ================================
protocol                 flip             mean subtraction    threshold
=======================  ===============  ==================  ================================
official (default)       concatenate      9 training folds    grid (−10000:10000)/10000 on the
                                                              9 folds, mean of all best ones
exact-threshold          concatenate      9 training folds    exact, smallest best midpoint
sum-flip                 sum              9 training folds    official grid
no-flip                  f(I) only        9 training folds    official grid
no-mean-subtraction      concatenate      none                official grid
all-pairs-threshold      concatenate      all pairs           exact best over **all** pairs,
                                                              no cross-validation (optimistic)
=======================  ===============  ==================  ================================
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sphereviz.devices import require_device
from sphereviz.geometry.metrics import (  # the pure metrics; named here too, as always
    THRESHOLD_RULES,
    RocSummary,
    _check_same,
    _threshold,
    accuracy,
    best_threshold,
    closed_set_accuracy,
    cosine_logits,
    cosine_scores,
    official_threshold,
    roc_summary,
)
from sphereviz.models import FLIP_MODES, combine_flip_features, extract_features

__all__ = [
    "LFW_PROTOCOLS",
    "LfwEvaluation",
    "LfwPairFeatures",
    "LfwProtocol",
    "RocSummary",
    "VerificationResult",
    "accuracy",
    "all_pairs_verification",
    "best_threshold",
    "closed_set_accuracy",
    "cosine_logits",
    "cosine_scores",
    "evaluate_lfw",
    "evaluate_lfw_protocols",
    "format_protocol_table",
    "lfw_pair_features",
    "lfw_protocol",
    "official_threshold",
    "protocol_features",
    "protocol_table",
    "verify_with_protocol",
    "roc_summary",
    "single_split_verification",
    "verification_accuracy",
]

# ---------------------------------------------------------------------------------------------
# Closed set: which of the C training classes is this?


# ---------------------------------------------------------------------------------------------
# Open set: are these two faces the same person?


@dataclass(frozen=True)
class VerificationResult:
    """Per-fold outcome of the verification protocol.

    ``scores`` holds each pair's cosine similarity after its test fold's mean subtraction;
    ``accuracy_std`` is the sample standard deviation (ddof = 1) of the fold accuracies, and
    ``accuracy_standard_error`` = std/√folds, as the LFW README asks to report.
    """

    fold_accuracies: np.ndarray
    thresholds: np.ndarray
    scores: np.ndarray
    same: np.ndarray

    @property
    def accuracy_mean(self) -> float:
        return float(np.mean(self.fold_accuracies))

    @property
    def accuracy_std(self) -> float:
        if self.fold_accuracies.size < 2:
            return 0.0
        return float(np.std(self.fold_accuracies, ddof=1))

    @property
    def accuracy_standard_error(self) -> float:
        return self.accuracy_std / math.sqrt(self.fold_accuracies.size)


def verification_accuracy(
    features_a, features_b, same, folds, subtract_mean: bool = True, threshold: str = "exact"
) -> VerificationResult:
    """The official k-fold protocol (10 folds of 600 pairs on LFW View 2).

    For each fold f: μ_f = mean of the rows of a and b over the pairs not in f (zero when
    ``subtract_mean`` is False); s_i = cos⟨a_i − μ_f, b_i − μ_f⟩ for every pair; t_f =
    ``best_threshold`` on the pairs not in f; accuracy_f = mean over f of [s_i > t_f] == same_i.
    ``folds`` gives each pair's fold index (from the pairs file), not a random split.
    ``threshold``: "exact" (``best_threshold``) or "official-grid" (``official_threshold``).
    """
    if threshold not in THRESHOLD_RULES:
        raise ValueError(f"threshold must be one of {THRESHOLD_RULES}, got {threshold!r}")
    a, b = _check_pair_features(features_a, features_b)
    same = _check_same(same, a.shape[0])
    folds = np.asarray(folds)
    if folds.shape != same.shape:
        raise ValueError(f"folds must have one entry per pair ({same.size}), got {folds.shape}")
    fold_ids = np.unique(folds)
    if fold_ids.size < 2:
        raise ValueError(
            "verification_accuracy needs at least 2 folds (the threshold is chosen on the "
            "others); use single_split_verification for a train/test split"
        )
    fold_accuracies, thresholds = [], []
    scores = np.empty(same.size)
    for fold in fold_ids:
        test, train = folds == fold, folds != fold
        mean = np.concatenate([a[train], b[train]]).mean(axis=0) if subtract_mean else None
        fold_scores = cosine_scores(a, b, mean)
        fold_threshold = _threshold(fold_scores[train], same[train], threshold)
        scores[test] = fold_scores[test]
        thresholds.append(fold_threshold)
        fold_accuracies.append(np.mean((fold_scores[test] > fold_threshold) == same[test]))
    return VerificationResult(np.array(fold_accuracies), np.array(thresholds), scores, same)


def single_split_verification(
    train_a,
    train_b,
    train_same,
    test_a,
    test_b,
    test_same,
    subtract_mean: bool = True,
    threshold: str = "exact",
) -> VerificationResult:
    """LFW View 1: mean and threshold from the training pairs (pairsDevTrain), accuracy on
    the test pairs (pairsDevTest). Returned as a one-fold ``VerificationResult``.
    ``threshold`` as in ``verification_accuracy``."""
    train_a, train_b = _check_pair_features(train_a, train_b)
    test_a, test_b = _check_pair_features(test_a, test_b)
    if train_a.shape[1] != test_a.shape[1]:
        raise ValueError(
            f"train and test features differ in dimension: {train_a.shape[1]} vs {test_a.shape[1]}"
        )
    train_same = _check_same(train_same, train_a.shape[0])
    test_same = _check_same(test_same, test_a.shape[0])
    mean = np.concatenate([train_a, train_b]).mean(axis=0) if subtract_mean else None
    chosen = _threshold(cosine_scores(train_a, train_b, mean), train_same, threshold)
    test_scores = cosine_scores(test_a, test_b, mean)
    fold_accuracy = np.mean((test_scores > chosen) == test_same)
    return VerificationResult(np.array([fold_accuracy]), np.array([chosen]), test_scores, test_same)


def all_pairs_verification(
    features_a, features_b, same, subtract_mean: bool = True
) -> VerificationResult:
    """No cross-validation: mean and exact best threshold from all pairs, accuracy on the same
    pairs (what OpenSphere and arcface-pytorch report). **Optimistic**: the threshold has seen
    the pairs it is scored on, so it is never below the best single-threshold accuracy.
    Returned as a one-fold ``VerificationResult``."""
    a, b = _check_pair_features(features_a, features_b)
    same = _check_same(same, a.shape[0])
    return single_split_verification(a, b, same, a, b, same, subtract_mean, "exact")


# ---------------------------------------------------------------------------------------------
# The scoring variants of the public implementations (docs §8)


@dataclass(frozen=True)
class LfwProtocol:
    """One way of scoring LFW pairs: the flip fusion, the mean subtraction, the threshold.

    ``flip``: "concat", "sum" or None (f(I) only); ``mean``: "training-folds", "all-pairs" or
    None; ``threshold``: "official-grid" or "exact"; ``cross_validated``: the threshold is
    chosen on the other folds (False: on all pairs, ``optimistic``). ``used_by`` names who
    scores LFW this way.
    """

    name: str
    flip: str | None
    mean: str | None
    threshold: str
    cross_validated: bool
    used_by: str

    @property
    def optimistic(self) -> bool:
        return not self.cross_validated


LFW_PROTOCOLS: dict[str, LfwProtocol] = {
    protocol.name: protocol
    for protocol in (
        LfwProtocol("official", "concat", "training-folds", "official-grid", True,
                    "official SphereFace release (evaluation.m): the paper's numbers"),
        LfwProtocol("exact-threshold", "concat", "training-folds", "exact", True,
                    "sphereviz before --protocol: the exact smallest best midpoint"),
        LfwProtocol("sum-flip", "sum", "training-folds", "official-grid", True,
                    "insightface, OpenSphere (they sum f(I) + f(flip I))"),
        LfwProtocol("no-flip", None, "training-folds", "official-grid", True,
                    "the popular PyTorch port (flip computed, then unused)"),
        LfwProtocol("no-mean-subtraction", "concat", None, "official-grid", True,
                    "insightface, the PyTorch port, OpenSphere, arcface-pytorch"),
        LfwProtocol("all-pairs-threshold", "concat", "all-pairs", "exact", False,
                    "OpenSphere, arcface-pytorch; optimistic: no cross-validation"),
    )
}  # fmt: skip
"""The scoring variants of docs §8, in table order; ``official`` is the default."""


def lfw_protocol(name: str) -> LfwProtocol:
    """The protocol called ``name``, or a ValueError listing the names."""
    if name not in LFW_PROTOCOLS:
        raise ValueError(
            f"unknown LFW protocol {name!r}; choose one of: {', '.join(LFW_PROTOCOLS)} (or all)"
        )
    return LFW_PROTOCOLS[name]


def protocol_features(features, flipped_features, flip: str | None) -> np.ndarray:
    """The feature of each face for a protocol's ``flip``: [f; f_flip], f + f_flip, or f."""
    if flip is None:
        return np.asarray(features)
    return combine_flip_features(features, flipped_features, flip)


def verify_with_protocol(features_a, features_b, same, folds, protocol) -> VerificationResult:
    """Score pairs of already flip-fused features with ``protocol`` (a name or LfwProtocol).

    Cross-validated protocols need ``folds`` with at least 2 folds; the all-pairs one ignores
    them.
    """
    spec = protocol if isinstance(protocol, LfwProtocol) else lfw_protocol(protocol)
    if not spec.cross_validated:
        return all_pairs_verification(features_a, features_b, same, spec.mean is not None)
    return verification_accuracy(
        features_a, features_b, same, folds, spec.mean is not None, spec.threshold
    )


def protocol_table(
    features, flipped_features, index_a, index_b, same, folds, protocols="all"
) -> list[dict]:
    """Every scoring variant on the same features: one row per protocol.

    ``features`` f(I) and ``flipped_features`` f(flip I) of the distinct images (N, d); pair i
    compares images ``index_a[i]`` and ``index_b[i]``; ``same`` and ``folds`` per pair.
    ``protocols``: "all" or a list of names. Rows hold ``protocol``, ``accuracy_mean``,
    ``accuracy_std``, ``difference_from_official`` (when official is among them), ``flip``,
    ``mean``, ``threshold``, ``cross_validated``, ``optimistic`` and ``used_by``.
    """
    names = list(LFW_PROTOCOLS) if protocols == "all" else list(protocols)
    index_a, index_b = np.asarray(index_a), np.asarray(index_b)
    rows = []
    for name in names:
        spec = lfw_protocol(name)
        fused = protocol_features(features, flipped_features, spec.flip)
        result = verify_with_protocol(fused[index_a], fused[index_b], same, folds, spec)
        rows.append(_protocol_row(spec, result))
    _add_differences(rows)
    return rows


def _protocol_row(spec: LfwProtocol, result: VerificationResult) -> dict:
    return {
        "protocol": spec.name,
        "accuracy_mean": result.accuracy_mean,
        "accuracy_std": result.accuracy_std,
        "flip": spec.flip,
        "mean": spec.mean,
        "threshold": spec.threshold,
        "cross_validated": spec.cross_validated,
        "optimistic": spec.optimistic,
        "used_by": spec.used_by,
    }


def _add_differences(rows: list[dict]) -> None:
    official = [row["accuracy_mean"] for row in rows if row["protocol"] == "official"]
    for row in rows:
        if official:
            row["difference_from_official"] = row["accuracy_mean"] - official[0]


def format_protocol_table(rows: list[dict]) -> str:
    """A markdown table of ``protocol_table`` rows (accuracy in %, optimistic rows marked)."""
    lines = [
        "| protocol | accuracy (%) | vs official (pp) | flip | mean | threshold | used by |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        difference = row.get("difference_from_official")
        lines.append(
            f"| {row['protocol']}{' (optimistic)' if row['optimistic'] else ''} | "
            f"{100 * row['accuracy_mean']:.2f} ± {100 * row['accuracy_std']:.2f} | "
            f"{'' if difference is None else f'{100 * difference:+.2f}'} | "
            f"{row['flip'] or 'f(I) only'} | {row['mean'] or 'none'} | {row['threshold']} | "
            f"{row['used_by']} |"
        )
    return "\n".join(lines)


def _check_pair_features(features_a, features_b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] == 0:
        raise ValueError(
            "features_a and features_b must be non-empty (N, d) arrays of the same shape, "
            f"got {a.shape} and {b.shape}"
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("features contain NaN or inf; was the model trained to divergence?")
    return a, b


# ---------------------------------------------------------------------------------------------
# LFW verification of a trained run, and ``sphereviz evaluate-lfw``

VIEW1_TRAIN_PAIRS = "pairsDevTrain.txt"


@dataclass(frozen=True)
class LfwEvaluation:
    """The outcome of :func:`evaluate_lfw`: pairs protocol (View 2's 10 folds or View 1),
    scoring variant (a name of :data:`LFW_PROTOCOLS`), per-fold result, ROC, pair counts.

    ``protocol`` is "view2-10fold" only when all 10 folds of View 2 were scored; a fold that
    is missing or dropped (see :func:`~sphereviz.data.lfw.scorable_folds`) makes it
    "<k>-fold". ``folds_in_file`` and ``dropped_folds`` (from 0) say which; ``pairs_dropped``
    counts the usable pairs of the dropped folds (``pairs_used`` are the pairs scored).
    """

    protocol: str
    verification: VerificationResult
    roc: RocSummary
    pairs_used: int
    pairs_skipped: int
    scoring: str = "official"
    folds_in_file: int = 1
    dropped_folds: tuple[int, ...] = ()
    pairs_dropped: int = 0

    def summary(self) -> dict:
        """JSON-ready numbers (what ``sphereviz evaluate-lfw --json`` prints)."""
        spec = LFW_PROTOCOLS.get(self.scoring)
        return {
            "protocol": self.protocol,
            "scoring": self.scoring,
            "optimistic": spec.optimistic if spec is not None else False,
            "used_by": spec.used_by if spec is not None else "",
            "accuracy_mean": self.verification.accuracy_mean,
            "accuracy_std": self.verification.accuracy_std,
            "accuracy_standard_error": self.verification.accuracy_standard_error,
            "fold_accuracies": self.verification.fold_accuracies.tolist(),
            "auc": self.roc.auc,
            "eer": self.roc.eer,
            "tar_at_far_1e-3": self.roc.tar_at_far,
            "pairs_used": self.pairs_used,
            "pairs_skipped": self.pairs_skipped,
            "pairs_dropped": self.pairs_dropped,
            "folds_scored": self.folds_in_file - len(self.dropped_folds),
            "folds_in_file": self.folds_in_file,
            "dropped_folds": [fold + 1 for fold in self.dropped_folds],  # 1-based, as LFW's README
        }


@dataclass(frozen=True)
class LfwPairFeatures:
    """f(I) and f(flip I) of the distinct images of a pairs file, and the pairs that use them.

    Pairs 0 … ``pairs_used`` − 1 are the test pairs; with View 1, the pairs after them are
    ``pairsDevTrain.txt``'s, which give the mean and the threshold.
    """

    features: np.ndarray
    flipped_features: np.ndarray
    index_a: np.ndarray
    index_b: np.ndarray
    same: np.ndarray
    folds: np.ndarray
    pairs_used: int
    pairs_skipped: int
    protocol: str
    folds_in_file: int = 1
    dropped_folds: tuple[int, ...] = ()
    pairs_dropped: int = 0

    def score(self, scoring: LfwProtocol) -> VerificationResult:
        """The test pairs' result under one scoring variant."""
        fused = protocol_features(self.features, self.flipped_features, scoring.flip)
        a, b, n = fused[self.index_a], fused[self.index_b], self.pairs_used
        if self.protocol != "view1-devtest":
            return verify_with_protocol(a, b, self.same, self.folds, scoring)
        if not scoring.cross_validated:  # the test pairs' own mean and threshold
            return all_pairs_verification(a[:n], b[:n], self.same[:n], scoring.mean is not None)
        return single_split_verification(
            a[n:], b[n:], self.same[n:], a[:n], b[:n], self.same[:n],
            scoring.mean is not None, scoring.threshold,
        )  # fmt: skip


def lfw_pair_features(
    run,
    lfw_root,
    pairs=None,
    landmarks=None,
    device: str = "auto",
    batch_size: int = 256,
    workers: int | None = None,
    progress: bool | None = None,
) -> LfwPairFeatures:
    """Align the images of an LFW pairs file and compute f(I), f(flip I) with a face run.

    Arguments as in :func:`evaluate_lfw`. Pairs whose images are missing are skipped and
    counted; a fold left without same-person or without different-person pairs is dropped
    (:func:`~sphereviz.data.lfw.scorable_folds`).
    """
    from sphereviz.data.lfw import (
        lfw_images_dir,
        load_lfw_crops,
        pair_image_index,
        read_pairs,
        resolve_pairs,
        scorable_folds,
    )
    from sphereviz.runs import as_run

    run = as_run(run)
    if run.config.dataset != "faces":
        raise ValueError(
            f"run {run.path} was trained on {run.config.dataset} (28×28 images); LFW "
            "verification needs a face model (train with --dataset faces)"
        )
    root = Path(lfw_root)
    pairs_path = Path(pairs) if pairs is not None else root / "pairs.txt"
    if not pairs_path.exists() and (root / pairs_path).exists():
        pairs_path = root / pairs_path
    images_root = lfw_images_dir(root)
    test_pairs = read_pairs(pairs_path)
    usable, skipped = resolve_pairs(test_pairs, images_root)
    if not usable:
        raise ValueError(f"no pair of {pairs_path} has both images under {images_root}")
    file_folds = sorted({pair.fold for pair in test_pairs})
    scored, dropped = scorable_folds(usable, file_folds, pairs_path)
    view2 = len(file_folds) > 1
    if view2 and len(file_folds) - len(dropped) < 2:
        raise ValueError(
            f"only {len(file_folds) - len(dropped)} of the {len(file_folds)} folds of "
            f"{pairs_path} have same- and different-person pairs with images under "
            f"{images_root}; cross-validation needs 2"
        )
    if not scored:
        raise ValueError(
            f"{pairs_path} has no same-person or no different-person pair with both images "
            f"under {images_root}; verification needs both"
        )
    train_usable = [] if view2 else _view1_training_pairs(pairs_path, images_root)
    pairs_dropped, usable = len(usable) - len(scored), scored
    paths, index_a, index_b = pair_image_index(usable + train_usable)
    crops = load_lfw_crops(paths, root, landmarks, workers=workers, progress=progress is not False)
    model = run.load_model(require_device(device))
    both = extract_features(model, crops, batch_size=batch_size, flip="concat")
    half = both.shape[1] // 2
    folds = np.array([pair.fold for pair in usable + train_usable])
    if view2:
        count = len(np.unique(folds))  # missing and dropped folds are not scored
        protocol = "view2-10fold" if count == len(file_folds) == 10 else f"{count}-fold"
    else:
        protocol = "view1-devtest"
    return LfwPairFeatures(
        both[:, :half], both[:, half:], np.asarray(index_a), np.asarray(index_b),
        np.array([pair.same for pair in usable + train_usable]), folds, len(usable),
        len(skipped), protocol, len(file_folds), tuple(dropped), pairs_dropped,
    )  # fmt: skip


def _view1_training_pairs(pairs_path: Path, images_root: Path) -> list:
    """View 1's training pairs (``pairsDevTrain.txt`` beside a single-fold pairs file), which
    choose the threshold for its test pairs; the usable ones, with both images on disk."""
    from sphereviz.data.lfw import read_pairs, resolve_pairs, scorable_folds

    train_path = pairs_path.parent / VIEW1_TRAIN_PAIRS
    if pairs_path.name == VIEW1_TRAIN_PAIRS or not train_path.exists():
        raise ValueError(
            f"{pairs_path} has a single fold, so the threshold must come from another set: "
            f"expected {VIEW1_TRAIN_PAIRS} beside it (View 1), or pass the 10-fold pairs.txt"
        )
    train_resolved, _ = resolve_pairs(read_pairs(train_path), images_root)
    train_usable, _ = scorable_folds(train_resolved, [0], train_path)
    if not train_usable:
        raise ValueError(
            f"{train_path} has no same-person or no different-person pair with both images "
            f"under {images_root}; the threshold needs both"
        )
    return train_usable


def evaluate_lfw(
    run,
    lfw_root,
    pairs=None,
    landmarks=None,
    flip: str | None = None,
    device: str = "auto",
    batch_size: int = 256,
    workers: int | None = None,
    progress: bool | None = None,
    protocol: str = "official",
) -> LfwEvaluation:
    """Verify LFW pairs with the features of a trained face run, the official way by default.

    Args:
        run: a run folder (or :class:`~sphereviz.runs.Run`) trained on 112×96 faces.
        lfw_root: the LFW folder (``images/``, the pairs files, ``lfw_landmark.txt``).
        pairs: a pairs file; default ``lfw_root/pairs.txt`` (View 2: 10 folds, thresholds by
            cross-validation). A one-fold file (View 1's ``pairsDevTest.txt``) is scored with
            the mean and threshold of ``pairsDevTrain.txt`` beside it.
        landmarks: 5-point landmark file (default ``lfw_root/lfw_landmark.txt``).
        flip: None (the protocol's), or "concat" / "sum" to replace the protocol's flip.
        protocol: a scoring variant of :data:`LFW_PROTOCOLS` (default "official").

    Pairs whose images are missing on disk are skipped and counted.
    """
    scoring = lfw_protocol(protocol)
    if flip is not None:
        if flip not in FLIP_MODES:
            raise ValueError(f"flip must be None or one of {FLIP_MODES}, got {flip!r}")
        scoring = dataclasses.replace(scoring, flip=flip)
    data = lfw_pair_features(run, lfw_root, pairs, landmarks, device, batch_size, workers, progress)
    return _lfw_evaluation(data, scoring)


def evaluate_lfw_protocols(
    run,
    lfw_root,
    pairs=None,
    landmarks=None,
    device: str = "auto",
    batch_size: int = 256,
    workers: int | None = None,
    progress: bool | None = None,
    protocols="all",
) -> list[LfwEvaluation]:
    """:func:`evaluate_lfw` under several scoring variants ("all", or a list of names), on
    features computed once."""
    names = list(LFW_PROTOCOLS) if protocols == "all" else list(protocols)
    specs = [lfw_protocol(name) for name in names]
    data = lfw_pair_features(run, lfw_root, pairs, landmarks, device, batch_size, workers, progress)
    return [_lfw_evaluation(data, spec) for spec in specs]


def _lfw_evaluation(data: LfwPairFeatures, scoring: LfwProtocol) -> LfwEvaluation:
    verification = data.score(scoring)
    roc = roc_summary(verification.scores, verification.same)
    return LfwEvaluation(
        data.protocol, verification, roc, data.pairs_used, data.pairs_skipped, scoring.name,
        data.folds_in_file, data.dropped_folds, data.pairs_dropped,
    )  # fmt: skip


def _counts_text(summary: dict) -> str:
    """The pair counts ("600 pairs, 0 skipped"), and the folds scored when some were dropped."""
    text = f"{summary['pairs_used']} pairs, {summary['pairs_skipped']} skipped"
    if summary["dropped_folds"]:
        folds = summary["dropped_folds"]
        text += (
            f"; {summary['folds_scored']} of {summary['folds_in_file']} folds scored, "
            f"fold{'s' if len(folds) > 1 else ''} {', '.join(map(str, folds))} dropped "
            f"({summary['pairs_dropped']} pairs)"
        )
    return text


def main(argv: list[str] | None = None) -> int:
    """``sphereviz evaluate-lfw``: verification accuracy, ROC, AUC, EER of a face run."""
    import argparse
    import sys
    import warnings

    from sphereviz.fileio import print_json_summary

    parser = argparse.ArgumentParser(
        prog="sphereviz evaluate-lfw",
        description="Open-set verification of a face run on LFW pairs (official protocol).",
    )
    parser.add_argument("--run", required=True, help="run folder trained with --dataset faces")
    parser.add_argument(
        "--lfw",
        help="LFW folder (images/, pairs files; default: $SPHEREVIZ_LFW, the `sphereviz "
        "fetch-lfw` folder, or ../shared/data/lfw beside the checkout)",
    )
    parser.add_argument("--pairs", help="pairs file (default: LFW/pairs.txt, View 2)")
    parser.add_argument("--landmarks", help="landmark file (default: LFW/lfw_landmark.txt)")
    parser.add_argument(
        "--protocol",
        default="official",
        choices=[*LFW_PROTOCOLS, "all"],
        help="scoring variant (default: official, the paper's); all: a table of every variant",
    )
    parser.add_argument(
        "--flip", choices=FLIP_MODES, default=None, help="replace the protocol's flip fusion"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--json", action="store_true", help="print a JSON summary last")
    args = parser.parse_args(argv)
    if args.protocol == "all" and args.flip is not None:
        parser.error("--flip replaces one protocol's flip; with --protocol all leave it out")
    try:
        if args.lfw is None:
            from sphereviz.data.lfw import default_lfw_root

            args.lfw = default_lfw_root()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if args.protocol == "all":
                results = evaluate_lfw_protocols(
                    args.run, args.lfw, args.pairs, args.landmarks, args.device,
                    args.batch_size, progress=None,
                )  # fmt: skip
            else:
                result = evaluate_lfw(
                    args.run, args.lfw, args.pairs, args.landmarks, args.flip, args.device,
                    args.batch_size, progress=None, protocol=args.protocol,
                )  # fmt: skip
        for warning in caught:
            print(f"warning: {warning.message}", file=sys.stderr)
    except (TypeError, ValueError, FileNotFoundError) as error:
        print(f"sphereviz evaluate-lfw: error: {error}", file=sys.stderr)
        return 2
    if args.protocol == "all":
        summaries = [result.summary() for result in results]
        rows = [
            {**_protocol_row(LFW_PROTOCOLS[item["scoring"]], result.verification)}
            for item, result in zip(summaries, results, strict=True)
        ]
        _add_differences(rows)
        for item, row in zip(summaries, rows, strict=True):
            item["difference_from_official"] = row["difference_from_official"]
        print(
            f"{summaries[0]['protocol']} ({_counts_text(summaries[0])}), every scoring variant "
            "on the same features:"
        )
        print(format_protocol_table(rows))
        if args.json:
            print_json_summary(summaries)
        return 0
    summary = result.summary()
    print(
        f"{summary['protocol']}, {summary['scoring']} scoring: accuracy "
        f"{summary['accuracy_mean']:.4f} ± "
        f"{summary['accuracy_std']:.4f}, AUC {summary['auc']:.4f}, EER {summary['eer']:.4f}, "
        f"TAR@FAR=1e-3 {summary['tar_at_far_1e-3']:.4f} ({_counts_text(summary)})"
    )
    if args.json:
        print_json_summary(summary)
    return 0
