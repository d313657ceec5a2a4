"""The LFW scoring variants: ``official`` against a line-by-line re-implementation of the
official ``evaluation.m`` on synthetic features, the optimism of the all-pairs threshold, and
which features each variant reads."""

from __future__ import annotations

import numpy as np
import pytest

from sphereviz.evaluate import (
    LFW_PROTOCOLS,
    all_pairs_verification,
    format_protocol_table,
    official_threshold,
    protocol_table,
    verification_accuracy,
)


def synthetic_lfw(seed: int, identities: int = 60, per_identity: int = 4, dim: int = 6):
    """Features f(I), f(flip I) of noisy identity centres, and 10 folds of same/different pairs."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(identities, dim)) + 0.8  # an offset: mean subtraction matters
    labels = np.repeat(np.arange(identities), per_identity)
    features = centres[labels] + 0.9 * rng.normal(size=(labels.size, dim))
    flipped = features + 0.5 * rng.normal(size=features.shape)
    index_a, index_b, same, folds = [], [], [], []
    for fold in range(10):
        for _ in range(12):
            person = rng.integers(identities)
            first, second = rng.choice(per_identity, 2, replace=False)
            index_a.append(person * per_identity + first)
            index_b.append(person * per_identity + second)
            same.append(True)
            one, other = rng.choice(identities, 2, replace=False)
            index_a.append(one * per_identity + rng.integers(per_identity))
            index_b.append(other * per_identity + rng.integers(per_identity))
            same.append(False)
            folds += [fold, fold]
    return features, flipped, np.array(index_a), np.array(index_b), np.array(same), np.array(folds)


def official_evaluation_m(features_left, features_right, flags, folds):
    """SphereFace's evaluation.m, transcribed loop by loop (no searchsorted, no shared code)."""
    thresholds = np.arange(-10000, 10001) / 10000
    accuracies = []
    for fold in range(10):
        val, test = folds != fold, folds == fold
        mu = np.mean(np.concatenate([features_left[val], features_right[val]]), axis=0)
        left = features_left - mu
        right = features_right - mu
        left = left / np.sqrt(np.sum(left**2, axis=1, keepdims=True))
        right = right / np.sqrt(np.sum(right**2, axis=1, keepdims=True))
        scores = np.sum(left * right, axis=1)

        def get_accuracy(s, f, threshold):
            return (np.sum(s[f] > threshold) + np.sum(s[~f] < threshold)) / len(s)

        val_accuracy = np.array([get_accuracy(scores[val], flags[val], t) for t in thresholds])
        best = np.mean(thresholds[val_accuracy == np.max(val_accuracy)])
        accuracies.append(get_accuracy(scores[test], flags[test], best))
    return np.array(accuracies)


@pytest.mark.parametrize("seed", [0, 1])
def test_official_matches_the_transcribed_evaluation_m(seed):
    features, flipped, index_a, index_b, same, folds = synthetic_lfw(seed)
    fused = np.concatenate([features, flipped], axis=1)
    expected = official_evaluation_m(fused[index_a], fused[index_b], same, folds)
    rows = protocol_table(features, flipped, index_a, index_b, same, folds, ["official"])
    assert rows[0]["accuracy_mean"] == pytest.approx(expected.mean(), abs=1e-12)
    result = verification_accuracy(
        fused[index_a], fused[index_b], same, folds, threshold="official-grid"
    )
    np.testing.assert_allclose(result.fold_accuracies, expected, atol=1e-12)
    assert 0.6 < expected.mean() < 0.99  # a task where the choices can matter


def test_official_threshold_is_the_mean_of_every_best_grid_value():
    # same {0.9, 0.3}, different {0.1, 0.5}: best 3/4 on t ∈ (0.1, 0.3) and (0.5, 0.9)
    scores, same = np.array([0.9, 0.3, 0.1, 0.5]), np.array([1, 1, 0, 0])
    best = np.r_[np.arange(1001, 3000), np.arange(5001, 9000)] / 10000
    assert official_threshold(scores, same) == pytest.approx(best.mean(), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_all_pairs_threshold_is_at_least_the_cross_validated_accuracy(seed):
    features, flipped, index_a, index_b, same, folds = synthetic_lfw(seed)
    rows = {row["protocol"]: row for row in protocol_table(
        features, flipped, index_a, index_b, same, folds)}  # fmt: skip
    optimistic = rows["all-pairs-threshold"]["accuracy_mean"]
    assert optimistic >= rows["official"]["accuracy_mean"]
    assert optimistic >= rows["exact-threshold"]["accuracy_mean"]
    assert rows["all-pairs-threshold"]["optimistic"] and not rows["official"]["optimistic"]
    # and it is the best single threshold on all pairs: brute force over every cut
    fused = np.concatenate([features, flipped], axis=1)
    result = all_pairs_verification(fused[index_a], fused[index_b], same)
    cuts = np.concatenate([[-2.0], np.sort(result.scores), [2.0]])
    brute = max(np.mean((result.scores > cut) == same) for cut in cuts)
    assert optimistic == pytest.approx(brute, abs=1e-12)


def test_no_flip_reads_only_the_unflipped_features():
    features, flipped, index_a, index_b, same, folds = synthetic_lfw(5)
    rows = protocol_table(features, flipped, index_a, index_b, same, folds)
    scrambled = np.random.default_rng(9).normal(size=flipped.shape) * 100
    other = protocol_table(features, scrambled, index_a, index_b, same, folds)
    by_name = {row["protocol"]: row for row in rows}
    other_by_name = {row["protocol"]: row for row in other}
    assert other_by_name["no-flip"]["accuracy_mean"] == by_name["no-flip"]["accuracy_mean"]
    assert other_by_name["official"]["accuracy_mean"] != by_name["official"]["accuracy_mean"]
    direct = verification_accuracy(
        features[index_a], features[index_b], same, folds, threshold="official-grid"
    )
    assert by_name["no-flip"]["accuracy_mean"] == pytest.approx(direct.accuracy_mean)


def test_sum_flip_and_no_mean_subtraction_change_one_thing_each():
    features, flipped, index_a, index_b, same, folds = synthetic_lfw(6)
    rows = {row["protocol"]: row for row in protocol_table(
        features, flipped, index_a, index_b, same, folds)}  # fmt: skip
    summed = features + flipped
    expected_sum = verification_accuracy(
        summed[index_a], summed[index_b], same, folds, threshold="official-grid"
    )
    assert rows["sum-flip"]["accuracy_mean"] == pytest.approx(expected_sum.accuracy_mean)
    fused = np.concatenate([features, flipped], axis=1)
    expected_raw = verification_accuracy(
        fused[index_a], fused[index_b], same, folds, subtract_mean=False, threshold="official-grid"
    )
    assert rows["no-mean-subtraction"]["accuracy_mean"] == pytest.approx(expected_raw.accuracy_mean)
    assert rows["official"]["difference_from_official"] == 0.0


def test_every_row_names_who_uses_it_and_the_table_prints():
    features, flipped, index_a, index_b, same, folds = synthetic_lfw(0)
    rows = protocol_table(features, flipped, index_a, index_b, same, folds)
    assert [row["protocol"] for row in rows] == list(LFW_PROTOCOLS)
    assert list(LFW_PROTOCOLS)[0] == "official"
    assert all(row["used_by"] for row in rows)
    text = format_protocol_table(rows)
    assert len(text.splitlines()) == 2 + len(rows)
    assert "all-pairs-threshold (optimistic)" in text and "evaluation.m" in text


def test_bad_protocol_and_threshold_names():
    features, flipped, index_a, index_b, same, folds = synthetic_lfw(0)
    with pytest.raises(ValueError, match="unknown LFW protocol 'paper'.*official"):
        protocol_table(features, flipped, index_a, index_b, same, folds, ["paper"])
    with pytest.raises(ValueError, match="threshold must be one of"):
        verification_accuracy(features[:4], features[4:8], [1, 0, 1, 0], [0, 0, 1, 1], True, "grid")
