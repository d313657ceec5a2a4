"""Open-set verification on digits: train on some classes, verify pairs of the others.

The paper's point (SphereFace, §1 and §4.2): a face-recognition feature must tell apart
identities that were never in training. MNIST (or Fashion-MNIST) plays the same game when the
network is trained on classes 0–5 and tested on pairs of classes 6–9, which it has never
seen. Three pieces:

1. :func:`make_verification_pairs`: balanced same/different pairs of held-out labels in k
   folds whose images are disjoint (each image is in one fold), seeded;
2. :func:`open_set_verification`: features of the held-out images from a trained run, the
   official k-fold protocol (``evaluate.verification_accuracy``: mean subtraction and the
   threshold chosen on the other folds), the EER of the pair scores, and the paper's
   criterion (max intra-class / min inter-class angle) on the unseen classes;
3. :func:`open_set_experiment`: trains every loss × seed on the training classes (one torch
   thread per process, runs cached in a run folder), and tabulates mean ± std over seeds of
   closed-set accuracy and open-set accuracy and EER. ``sphereviz open-set``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from sphereviz import aggregate
from sphereviz.geometry import feature_criterion, unit_rows
from sphereviz.validation import check_int
from sphereviz.worker_pool import worker_pool

__all__ = [
    "DEFAULT_LOSSES",
    "SUMMARY_METRICS",
    "OpenSetResult",
    "VerificationPairs",
    "format_table",
    "held_out_dataset",
    "loss_label",
    "make_verification_pairs",
    "open_set_experiment",
    "open_set_verification",
    "summarise",
    "verify_features",
]

#: The losses compared by default: (loss name, margin m or None), as in the paper's Table 3.
DEFAULT_LOSSES: tuple[tuple[str, int | None], ...] = (
    ("softmax", None),
    ("modified-softmax", None),
    ("a-softmax", 2),
    ("a-softmax", 3),
    ("a-softmax", 4),
)
TRAIN_CLASSES = (0, 1, 2, 3, 4, 5)
TEST_CLASSES = (6, 7, 8, 9)


# ---------------------------------------------------------------------------------------------
# Pairs


@dataclass(frozen=True)
class VerificationPairs:
    """Pairs of images for verification: pair i is (``index_a[i]``, ``index_b[i]``), ``same[i]``
    says whether both have one label, ``folds[i]`` is its fold (0 … k−1)."""

    index_a: np.ndarray
    index_b: np.ndarray
    same: np.ndarray
    folds: np.ndarray

    def __len__(self) -> int:
        return int(self.same.size)


def make_verification_pairs(
    labels, pairs_per_kind: int = 3000, folds: int = 10, seed: int = 0
) -> VerificationPairs:
    """Balanced same/different pairs of the images with ``labels``, in ``folds`` folds.

    The images are split into ``folds`` parts, stratified by label (each label's images are
    shuffled and dealt out in turn), so the folds share no image, as LFW's folds share no
    person (with four held-out digits they cannot share no class). Each fold gets
    ``pairs_per_kind / folds`` same-label pairs and as many different-label pairs, drawn
    without replacement from all the unordered pairs of its images. Deterministic for a seed.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a non-empty 1-D integer array, got shape {labels.shape}")
    pairs_per_kind = check_int("pairs_per_kind", pairs_per_kind, min=1)
    folds = check_int("folds", folds, min=2)
    if pairs_per_kind % folds:
        raise ValueError(
            f"pairs_per_kind ({pairs_per_kind}) must be a multiple of folds ({folds}), so that "
            "every fold holds as many pairs of each kind; e.g. 3000 pairs in 10 folds"
        )
    if np.unique(labels).size < 2:
        raise ValueError("different-label pairs need at least two labels among the images")
    rng = np.random.default_rng(seed)
    image_fold = np.empty(labels.size, dtype=np.int64)
    offset = 0
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        image_fold[members] = (offset + np.arange(members.size)) % folds
        offset += members.size
    per_fold = pairs_per_kind // folds
    parts = []
    for fold in range(folds):
        members = np.flatnonzero(image_fold == fold)
        first, second = np.triu_indices(members.size, k=1)
        first, second = members[first], members[second]
        same = labels[first] == labels[second]
        for kind in (True, False):
            candidates = np.flatnonzero(same == kind)
            if candidates.size < per_fold:
                raise ValueError(
                    f"fold {fold} has only {candidates.size} "
                    f"{'same' if kind else 'different'}-label pairs, {per_fold} asked; lower "
                    "pairs_per_kind or folds, or give more images"
                )
            chosen = np.sort(rng.choice(candidates, per_fold, replace=False))
            parts.append((first[chosen], second[chosen], np.full(per_fold, kind), fold))
    return VerificationPairs(
        index_a=np.concatenate([p[0] for p in parts]),
        index_b=np.concatenate([p[1] for p in parts]),
        same=np.concatenate([p[2] for p in parts]),
        folds=np.concatenate([np.full(p[0].size, p[3]) for p in parts]),
    )


# ---------------------------------------------------------------------------------------------
# Verification of held-out classes


@dataclass(frozen=True)
class OpenSetResult:
    """Open-set verification of one model on held-out classes.

    ``accuracy_mean`` ± ``accuracy_std``: the k-fold protocol's accuracy (std over folds,
    ddof 1); ``eer``, ``auc``: of the pair scores (each pair scored with its fold's mean);
    ``criterion``: ``geometry.feature_criterion`` on the held-out features, in degrees.
    """

    accuracy_mean: float
    accuracy_std: float
    eer: float
    auc: float
    pairs: int
    images: int
    criterion: dict

    def summary(self) -> dict:
        return {
            "open_set_accuracy": self.accuracy_mean,
            "open_set_accuracy_fold_std": self.accuracy_std,
            "open_set_eer": self.eer,
            "open_set_auc": self.auc,
            "pairs": self.pairs,
            "images": self.images,
            **self.criterion,
        }


def participation_ratio(features) -> float:
    """The effective number of dimensions the directions of ``features`` spread over.

    PR = (Σ_k λ_k)² / Σ_k λ_k², with λ_k the eigenvalues of the covariance of the unit
    vectors x_i/‖x_i‖: d for directions spread evenly over R^d, 1 for directions that vary
    along one axis only. Open-set features that collapse onto the few training-class weights
    have a PR near the number of training classes or below, whatever d is.
    """
    covariance = np.atleast_2d(np.cov(unit_rows(np.asarray(features, float)), rowvar=False))
    eigenvalues = np.linalg.eigvalsh(covariance)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    return float(eigenvalues.sum() ** 2 / np.sum(eigenvalues**2))


def weight_span_fraction(features, class_weights) -> float:
    """How much of each feature's direction lies in the span of the training class weights.

    The mean over features of ‖P u_i‖², u_i = x_i/‖x_i‖, with P the orthogonal projection onto
    span{W_1 … W_C} (C ≤ d): 1 when every feature is a combination of the class weights, C/d
    for directions spread evenly over R^d. A feature of an unseen class that lies in the span
    is described only by how much it resembles each training class.
    """
    basis, _ = np.linalg.qr(np.asarray(class_weights, float).T)  # d × C, orthonormal columns
    return float(np.mean(np.sum((unit_rows(np.asarray(features, float)) @ basis) ** 2, axis=1)))


def verify_features(
    features, labels, pairs: VerificationPairs, class_weights=None
) -> OpenSetResult:
    """The protocol on given features: k-fold accuracy, EER/AUC and the feature criterion;
    with the training ``class_weights`` also how the unseen classes collapse onto them
    (``weight_span_fraction``, ``participation_ratio``)."""
    from sphereviz.evaluate import roc_summary, verification_accuracy

    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or features.shape[0] != labels.size:
        raise ValueError(
            f"features must be (N, d) with one row per label ({labels.size}), got {features.shape}"
        )
    result = verification_accuracy(
        features[pairs.index_a], features[pairs.index_b], pairs.same, pairs.folds
    )
    roc = roc_summary(result.scores, result.same)
    criterion = feature_criterion(features, labels)
    return OpenSetResult(
        accuracy_mean=result.accuracy_mean,
        accuracy_std=result.accuracy_std,
        eer=roc.eer,
        auc=roc.auc,
        pairs=len(pairs),
        images=int(labels.size),
        criterion={
            "max_intra_class_angle_deg": math.degrees(criterion.max_intra_class_angle),
            "min_inter_class_angle_deg": math.degrees(criterion.min_inter_class_angle),
            "intra_class_angle_p95_deg": math.degrees(criterion.intra_class_angle_high),
            "inter_class_angle_p5_deg": math.degrees(criterion.inter_class_angle_low),
            "median_same_class_angle_deg": math.degrees(criterion.median_same_class_angle),
            "median_different_class_angle_deg": math.degrees(
                criterion.median_different_class_angle
            ),
            "pair_angle_eer": criterion.pair_angle_eer,
            "participation_ratio": participation_ratio(features),
            **(
                {}
                if class_weights is None
                else {"weight_span_fraction": weight_span_fraction(features, class_weights)}
            ),
        },
    )


def held_out_dataset(
    dataset: str = "mnist",
    classes: tuple[int, ...] = TEST_CLASSES,
    data_root: str | None = None,
    max_samples: int | None = None,
):
    """Every image of ``classes`` from the test and then the training split, relabelled
    0…k−1 (a model trained without these classes has seen none of them); the first
    ``max_samples`` of them when given."""
    from sphereviz.config import TrainConfig
    from sphereviz.data.arrays import ArrayDataset
    from sphereviz.datasets import load_datasets

    config = TrainConfig(dataset=dataset, data_root=data_root, classes=tuple(classes))
    train_set, test_set = load_datasets(config)
    images = np.concatenate([test_set.images, train_set.images])
    labels = np.concatenate([test_set.labels, train_set.labels])
    if max_samples is not None:
        images, labels = images[:max_samples], labels[:max_samples]
    return ArrayDataset(
        images, labels, test_set.class_names, f"{dataset} classes {list(classes)}, both splits"
    )


def open_set_verification(
    run_or_model,
    dataset,
    pairs_per_kind: int = 3000,
    folds: int = 10,
    seed: int = 0,
    device: str = "cpu",
) -> OpenSetResult:
    """Verify pairs of the held-out ``dataset`` with the features of a trained model.

    ``run_or_model``: a run folder, a :class:`~sphereviz.runs.Run` or a feature network;
    ``dataset``: an ArrayDataset of classes the model was not trained on (e.g.
    :func:`held_out_dataset`). Features f(image) (no flip: digits are not symmetric) are
    scored by cosine after the mean subtraction of ``evaluate.verification_accuracy``.
    """
    import torch

    from sphereviz.models import extract_features
    from sphereviz.runs import as_run

    if isinstance(run_or_model, torch.nn.Module):
        model, weights = run_or_model.to(device), None
    else:
        run = as_run(run_or_model)
        model, weights = run.load_model(device), run.embeddings.get("class_weights")
    pairs = make_verification_pairs(dataset.labels, pairs_per_kind, folds, seed)
    features = extract_features(model, dataset.images, device=device)
    return verify_features(features, dataset.labels, pairs, weights)


# ---------------------------------------------------------------------------------------------
# The experiment


def _train_and_verify(config_dict: dict, test_classes: tuple[int, ...], options: dict) -> dict:
    """Worker: train (or reuse) one run, then verify the held-out classes with it."""
    import warnings

    from sphereviz.config import ScheduleWarning, TrainConfig
    from sphereviz.train import train

    config = TrainConfig.from_dict(config_dict)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScheduleWarning)
        run = train(config, progress=False, resume=True)
    seconds = time.perf_counter() - started
    held_out = held_out_dataset(config.dataset, test_classes, config.data_root,
                                options["max_held_out"])  # fmt: skip
    result = open_set_verification(run, held_out, options["pairs_per_kind"], options["folds"],
                                   options["pair_seed"], device="cpu")  # fmt: skip
    return {
        "loss": config.loss,
        "m": config.m,
        "seed": config.seed,
        "closed_set_accuracy": run.final_metrics["test_accuracy"],
        "final_lambda": run.final_metrics.get("lambda"),
        "wall_seconds": seconds,
        "out": config.out,
        **result.summary(),
    }


def loss_label(loss: str, m) -> str:
    return f"{loss} m={m}" if m is not None else loss


def open_set_experiment(
    losses=DEFAULT_LOSSES,
    seeds=(0, 1, 2),
    dataset: str = "mnist",
    train_classes: tuple[int, ...] = TRAIN_CLASSES,
    test_classes: tuple[int, ...] = TEST_CLASSES,
    dim: int = 16,
    runs_dir: str | os.PathLike = "build/runs/openset",
    workers: int = 2,
    data_root: str | None = None,
    max_train_samples: int | None = None,
    max_held_out: int | None = None,
    pairs_per_kind: int = 3000,
    folds: int = 10,
    pair_seed: int = 0,
    **overrides,
) -> tuple[list[dict], list[dict]]:
    """Train every (loss, m) × seed on ``train_classes`` and verify pairs of ``test_classes``.

    Every run is the default (margin-biting) recipe with ``dim``-D features and the same
    budget; ``overrides`` (e.g. ``epochs``) change every run alike. Runs live in
    ``runs_dir/<loss>-<recipe hash>`` and are reused when present (``train(resume=True)``).
    Training runs in ``workers`` processes with one torch thread each
    (:func:`~sphereviz.worker_pool.worker_pool`: a Ctrl-C stops them, each run keeping its last
    finished epoch).

    Returns ``(rows, table)``: one dict per run, and one per loss with mean and std over seeds
    (ddof 1) of closed-set accuracy, open-set accuracy and EER.
    """
    from sphereviz.config import TrainConfig

    overlap = sorted(set(train_classes) & set(test_classes))
    if overlap:
        raise ValueError(
            f"classes {overlap} are both trained on and held out; open-set classes must be "
            "unseen in training"
        )
    workers = check_int("workers", workers, min=1)
    jobs = []
    for loss, m in losses:
        for seed in seeds:
            config = TrainConfig(dataset=dataset, data_root=data_root, classes=tuple(train_classes),
                                 dim=dim, loss=loss, m=m, seed=seed, device="cpu",
                                 max_train_samples=max_train_samples, **overrides)  # fmt: skip
            name = loss_label(loss, m).replace(" m=", "-m")
            jobs.append(config.in_run_folder(runs_dir, f"{name}-seed{seed}").to_dict())
    options = {"max_held_out": max_held_out, "pairs_per_kind": pairs_per_kind, "folds": folds,
               "pair_seed": pair_seed}  # fmt: skip
    with worker_pool(workers) as map_in_workers:  # starts no more workers than jobs
        rows = list(
            map_in_workers(_train_and_verify, [(job, tuple(test_classes), options) for job in jobs])
        )
    return rows, summarise(rows)


#: The numbers of a run that :func:`summarise` reports over seeds.
SUMMARY_METRICS = ("closed_set_accuracy", "open_set_accuracy", "open_set_eer", "open_set_auc",
                   "max_intra_class_angle_deg", "min_inter_class_angle_deg", "pair_angle_eer",
                   "participation_ratio", "weight_span_fraction")  # fmt: skip


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and std over seeds per (loss, m), in order of rows (:func:`aggregate.over_seeds`):
    each metric of :data:`SUMMARY_METRICS` as ``<name>_mean`` and ``<name>_std`` (NaN for one
    seed), and ``label``, the loss as the tables name it."""
    table = aggregate.over_seeds(rows, ("loss", "m"), SUMMARY_METRICS)
    return [{**entry, "label": loss_label(entry["loss"], entry["m"])} for entry in table]


def format_table(table: list[dict]) -> str:
    """The table as aligned text: mean ± std over seeds. PR: the participation ratio of the
    unseen classes' features; in span W: the part of them in the span of the training
    weights."""
    columns = (("closed_set_accuracy", "closed-set acc", 4), ("open_set_accuracy",
               "open-set acc", 4), ("open_set_eer", "open-set EER", 4), ("open_set_auc", "AUC",
               4), ("participation_ratio", "PR", 2), ("weight_span_fraction", "in span W",
               3))  # fmt: skip
    cells = [
        [aggregate.mean_std_text(entry, name, digits) for name, _, digits in columns]
        for entry in table
    ]
    widths = [max([len(title)] + [len(row[i]) for row in cells]) for i, (_, title, _) in
              enumerate(columns)]  # fmt: skip
    header = f"{'loss':<18} " + " ".join(
        f"{title:>{width}}" for (_, title, _), width in zip(columns, widths, strict=True)
    )
    lines = [header, "-" * len(header)]
    for entry, row in zip(table, cells, strict=True):
        lines.append(
            f"{entry['label']:<18} "
            + " ".join(f"{cell:>{width}}" for cell, width in zip(row, widths, strict=True))
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``sphereviz open-set`` (or ``python -m sphereviz.openset``): the experiment and its table."""
    from sphereviz.fileio import print_json_summary

    parser = argparse.ArgumentParser(
        prog="sphereviz open-set",
        description="Train on classes 0-5, verify pairs of the unseen classes 6-9 (10 folds).",
    )
    parser.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default="mnist")
    parser.add_argument("--data-root", help="IDX folder (full MNIST / Fashion-MNIST)")
    parser.add_argument("--runs", default="build/runs/openset", help="folder of cached runs")
    parser.add_argument("--train-classes", type=int, nargs="+", default=list(TRAIN_CLASSES))
    parser.add_argument("--test-classes", type=int, nargs="+", default=list(TEST_CLASSES))
    parser.add_argument("--dim", type=int, default=16, help="feature dimension (default 16)")
    parser.add_argument("--epochs", type=int, help="epochs of every run (default: the recipe's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-train-samples", type=int, help="first N training images")
    parser.add_argument("--max-held-out", type=int, help="first N held-out images")
    parser.add_argument("--pairs-per-kind", type=int, default=3000)
    parser.add_argument("--json", action="store_true", help="print a JSON summary last")
    args = parser.parse_args(argv)
    overrides = {"epochs": args.epochs} if args.epochs is not None else {}
    started = time.perf_counter()
    try:
        rows, table = open_set_experiment(
            seeds=tuple(args.seeds), dataset=args.dataset, train_classes=tuple(args.train_classes),
            test_classes=tuple(args.test_classes), dim=args.dim, runs_dir=args.runs,
            workers=args.workers, data_root=args.data_root,
            max_train_samples=args.max_train_samples, max_held_out=args.max_held_out,
            pairs_per_kind=args.pairs_per_kind, **overrides,
        )  # fmt: skip
    except (TypeError, ValueError, FileNotFoundError) as error:
        print(f"sphereviz open-set: error: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    print(f"{args.dataset}: train on {args.train_classes}, verify {args.test_classes}, "
          f"{args.dim}-D, seeds {args.seeds}, {seconds:.0f} s wall")  # fmt: skip
    print(format_table(table))
    if args.json:
        print_json_summary({"dataset": args.dataset, "dim": args.dim,
                            "train_classes": args.train_classes,
                            "test_classes": args.test_classes, "wall_seconds": seconds,
                            "table": table, "runs": rows})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
