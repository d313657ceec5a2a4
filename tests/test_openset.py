"""Open-set verification of held-out digits: pairs, the protocol on known answers, the driver."""

from __future__ import annotations

import numpy as np
import pytest

from sphereviz.openset import (
    _train_and_verify,
    format_table,
    held_out_dataset,
    make_verification_pairs,
    summarise,
    verify_features,
)


def _labels(per_class: int = 60, classes=(6, 7, 8, 9)) -> np.ndarray:
    return np.repeat(np.array(classes), per_class)


# ---------------------------------------------------------------------------------------------
# Pairs


def test_pairs_are_balanced_per_fold_and_same_means_same_label():
    labels = np.random.default_rng(1).permutation(_labels())
    pairs = make_verification_pairs(labels, pairs_per_kind=200, folds=10, seed=3)
    assert len(pairs) == 400
    for fold in range(10):
        in_fold = pairs.folds == fold
        assert pairs.same[in_fold].sum() == 20 and (~pairs.same[in_fold]).sum() == 20
    np.testing.assert_array_equal(pairs.same, labels[pairs.index_a] == labels[pairs.index_b])
    assert np.all(pairs.index_a != pairs.index_b)
    unordered = {
        tuple(sorted(p)) for p in zip(pairs.index_a.tolist(), pairs.index_b.tolist(), strict=True)
    }
    assert len(unordered) == len(pairs)  # no pair twice


def test_folds_share_no_image_and_are_stratified():
    labels = _labels()
    pairs = make_verification_pairs(labels, pairs_per_kind=100, folds=5, seed=0)
    fold_of_image: dict[int, int] = {}
    for a, b, fold in zip(pairs.index_a, pairs.index_b, pairs.folds, strict=True):
        for image in (int(a), int(b)):
            assert fold_of_image.setdefault(image, int(fold)) == fold
    # every fold draws on every class (images were dealt out class by class)
    for fold in range(5):
        used = np.concatenate(
            [pairs.index_a[pairs.folds == fold], pairs.index_b[pairs.folds == fold]]
        )
        assert set(labels[used]) == {6, 7, 8, 9}


def test_pairs_are_deterministic_for_a_seed():
    labels = _labels()
    first = make_verification_pairs(labels, 100, 5, seed=7)
    again = make_verification_pairs(labels, 100, 5, seed=7)
    other = make_verification_pairs(labels, 100, 5, seed=8)
    for name in ("index_a", "index_b", "same", "folds"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.index_a, other.index_a)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pairs_per_kind": 105, "folds": 10}, "multiple of folds"),
        ({"pairs_per_kind": 100_000, "folds": 10}, "same-label pairs"),
        ({"pairs_per_kind": 100, "folds": 1}, "folds must be an integer >= 2"),
    ],
)
def test_pairs_reject_bad_requests(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_verification_pairs(_labels(), **kwargs)


def test_held_out_dataset_holds_exactly_the_unseen_digits():
    from sphereviz.data import load_mnist

    train_set, test_set = load_mnist()
    held_out = held_out_dataset("mnist", (6, 7, 8, 9))
    original = np.concatenate([test_set.labels, train_set.labels])
    images = np.concatenate([test_set.images, train_set.images])
    keep = np.isin(original, (6, 7, 8, 9))
    np.testing.assert_array_equal(held_out.images, images[keep])
    np.testing.assert_array_equal(held_out.labels, original[keep] - 6)  # relabelled 0…3


# ---------------------------------------------------------------------------------------------
# The protocol on features whose answer is known


def test_perfectly_separated_classes_verify_perfectly():
    rng = np.random.default_rng(0)
    labels = _labels(50)
    directions = np.eye(16)[labels - 6] * 5.0  # one axis per class
    features = directions + rng.normal(scale=0.05, size=directions.shape)
    pairs = make_verification_pairs(labels, 300, 10, seed=0)
    result = verify_features(features, labels, pairs)
    assert result.accuracy_mean == 1.0 and result.accuracy_std == 0.0
    assert result.eer == pytest.approx(0.0, abs=1e-9) and result.auc == 1.0
    assert (
        result.criterion["max_intra_class_angle_deg"]
        < result.criterion["min_inter_class_angle_deg"]
    )
    assert result.criterion["median_different_class_angle_deg"] == pytest.approx(90.0, abs=2.0)


def test_random_features_verify_at_chance():
    rng = np.random.default_rng(0)
    labels = _labels(100)
    features = rng.normal(size=(labels.size, 32))
    pairs = make_verification_pairs(labels, 1000, 10, seed=0)
    result = verify_features(features, labels, pairs)
    # 2,000 pairs: the standard error of a chance accuracy is 0.011
    assert result.accuracy_mean == pytest.approx(0.5, abs=0.04)
    assert result.eer == pytest.approx(0.5, abs=0.04)


def test_noisy_two_class_features_match_the_gaussian_error_rate():
    """Two classes at x = ±1 plus N(0, σ²) noise, one coordinate: the cosine of a pair is the
    sign of x_a·x_b, so a pair is called "same" iff both fall on one side of 0. A same pair is
    then accepted, and a different pair rejected, with probability p² + (1 − p)², p = Φ(1/σ)."""
    from scipy.stats import norm

    rng = np.random.default_rng(5)
    sigma = 0.8
    labels = np.repeat([0, 1], 1500)
    x = np.where(labels == 0, 1.0, -1.0) + rng.normal(scale=sigma, size=labels.size)
    features = x[:, None]
    pairs = make_verification_pairs(labels, 4000, 10, seed=0)
    result = verify_features(features, labels, pairs)
    p = norm.cdf(1 / sigma)
    assert result.accuracy_mean == pytest.approx(p**2 + (1 - p) ** 2, abs=0.02)


# ---------------------------------------------------------------------------------------------
# TrainConfig.classes and the driver's worker on a tiny run


def test_tiny_run_on_some_classes_then_verify_the_others(tmp_path):
    import torch

    from sphereviz.config import TrainConfig
    from sphereviz.runs import load_run

    torch.set_num_threads(1)
    config = TrainConfig(
        classes=(0, 1, 2), max_train_samples=256, max_test_samples=128, epochs=1, dim=4,
        loss="a-softmax", m=2, device="cpu",
    ).in_run_folder(tmp_path, "tiny")  # fmt: skip
    options = {"max_held_out": 400, "pairs_per_kind": 200, "folds": 10, "pair_seed": 0}
    row = _train_and_verify(config.to_dict(), (3, 4), options)
    run = load_run(config.out)
    assert run.embeddings["class_weights"].shape == (3, 4)  # trained on three classes only
    assert set(np.unique(run.embeddings["labels"])) == {0, 1, 2}
    assert row["closed_set_accuracy"] == run.final_metrics["test_accuracy"]
    assert row["pairs"] == 400 and row["images"] == 400
    assert 0.0 <= row["open_set_eer"] <= 1.0
    modified = (tmp_path / config.out.split("/")[-1] / "model.pt").stat().st_mtime_ns
    again = _train_and_verify(config.to_dict(), (3, 4), options)  # cached: not retrained
    assert (tmp_path / config.out.split("/")[-1] / "model.pt").stat().st_mtime_ns == modified
    assert again["open_set_accuracy"] == row["open_set_accuracy"]


def test_summarise_gives_mean_and_sample_std_over_seeds():
    rows = [
        {"loss": "a-softmax", "m": 4, "seed": seed, "closed_set_accuracy": c,
         "open_set_accuracy": o, "open_set_eer": e, "open_set_auc": 1 - e,
         "max_intra_class_angle_deg": 1.0, "min_inter_class_angle_deg": 2.0,
         "pair_angle_eer": e, "participation_ratio": 3.0, "weight_span_fraction": 0.9}
        for seed, (c, o, e) in enumerate(((0.9, 0.8, 0.2), (0.8, 0.7, 0.3), (1.0, 0.9, 0.1)))
    ]  # fmt: skip
    (entry,) = summarise(rows)
    assert entry["label"] == "a-softmax m=4" and entry["seeds"] == [0, 1, 2]
    assert entry["open_set_accuracy_mean"] == pytest.approx(0.8)
    assert entry["open_set_eer_std"] == pytest.approx(0.1)  # sqrt(((.1)²+0+(.1)²)/2)
    assert "open-set acc" in format_table([entry]) and "0.8000 ± 0.1000" in format_table([entry])


def test_command_line_rejects_overlapping_classes(capsys):
    from sphereviz.cli import main

    code = main(["open-set", "--train-classes", "0", "1", "2", "--test-classes", "2", "3"])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "classes [2] are both trained on and held out" in error


def test_participation_ratio_counts_the_dimensions_directions_use():
    from sphereviz.openset import participation_ratio

    rng = np.random.default_rng(0)
    spread = rng.normal(size=(20_000, 16))  # directions uniform on S^15: PR → 16
    assert participation_ratio(spread) == pytest.approx(16, rel=0.03)
    # four tight clusters on four orthogonal axes: the unit vectors' covariance has rank 3
    # (they sum to a constant), with 3 equal eigenvalues: PR = 3
    axes = np.repeat(np.eye(16)[:4], 500, axis=0) * rng.uniform(1, 3, size=(2000, 1))
    assert participation_ratio(axes) == pytest.approx(3.0, rel=1e-6)


def test_weight_span_fraction_is_the_energy_in_the_span_of_the_weights():
    from sphereviz.openset import weight_span_fraction

    rng = np.random.default_rng(1)
    weights = rng.normal(size=(3, 8))
    inside = rng.normal(size=(50, 3)) @ weights  # combinations of the weights: all in the span
    assert weight_span_fraction(inside, weights) == pytest.approx(1.0)
    # directions uniform on S^7: E‖P u‖² = 3/8 for a 3-D span
    assert weight_span_fraction(rng.normal(size=(40_000, 8)), weights) == pytest.approx(
        3 / 8, abs=0.01
    )
    # one feature at 60° from the span (e_0, e_1): cos² 60° = 1/4
    feature = np.array([[np.cos(np.pi / 3), 0.0, np.sin(np.pi / 3)]])
    assert weight_span_fraction(feature, np.eye(3)[:2]) == pytest.approx(0.25)
