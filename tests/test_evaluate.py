"""Evaluation: the verification protocol against hand-computed and brute-force results, the
ROC summaries against scikit-learn and pairwise counting, closed-set accuracy."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from sphereviz.evaluate import (
    LFW_PROTOCOLS,
    best_threshold,
    closed_set_accuracy,
    cosine_scores,
    roc_summary,
    single_split_verification,
    verification_accuracy,
)
from sphereviz.models import combine_flip_features


def features_with_scores(scores):
    """Pairs (a, b) of 2-D unit vectors whose cosine is the given score."""
    scores = np.asarray(scores, dtype=float)
    a = np.tile([1.0, 0.0], (scores.size, 1))
    b = np.stack([scores, np.sqrt(1 - scores**2)], axis=1)
    return a, b


def test_two_fold_protocol_reproduces_the_hand_computation():
    # Fold 0: same {0.9, 0.8}, different {0.1, 0.85}; fold 1: same {0.5, 0.3}, diff {0.2, 0.6}.
    # Threshold for fold 1, chosen on fold 0: candidates −0.9, 0.45, 0.825, 0.875, 1.9 give
    # 2, 3, 2, 3, 2 correct of 4 → smallest best 0.45 → fold 1: 0.5 ✓ 0.3 ✗ 0.2 ✓ 0.6 ✗ = 1/2.
    # Threshold for fold 0, chosen on fold 1: −0.8, 0.25, 0.4, 0.55, 1.6 give 2, 3, 2, 1, 2
    # → 0.25 → fold 0: 0.9 ✓ 0.8 ✓ 0.1 ✓ 0.85 ✗ = 3/4.
    scores = [0.9, 0.8, 0.1, 0.85, 0.5, 0.3, 0.2, 0.6]
    same = [1, 1, 0, 0, 1, 1, 0, 0]
    folds = [0, 0, 0, 0, 1, 1, 1, 1]
    a, b = features_with_scores(scores)
    result = verification_accuracy(a, b, same, folds, subtract_mean=False)
    np.testing.assert_allclose(result.thresholds, [0.25, 0.45])
    np.testing.assert_allclose(result.fold_accuracies, [0.75, 0.5])
    assert result.accuracy_mean == pytest.approx(0.625)
    assert result.accuracy_std == pytest.approx(math.sqrt(2 * 0.125**2))
    np.testing.assert_allclose(result.scores, scores)


def brute_force_ten_fold(a, b, same, folds):
    """The protocol written as plain loops: per-fold mean of the 9 other folds, cosine,
    every candidate threshold counted one by one, smallest best applied to the held-out fold."""
    accuracies = []
    for fold in range(10):
        train = [i for i in range(len(same)) if folds[i] != fold]
        test = [i for i in range(len(same)) if folds[i] == fold]
        rows = [a[i] for i in train] + [b[i] for i in train]
        mean = [sum(r[k] for r in rows) / len(rows) for k in range(a.shape[1])]

        scores = {}
        for i in range(len(same)):
            u = [a[i][k] - mean[k] for k in range(len(mean))]
            v = [b[i][k] - mean[k] for k in range(len(mean))]
            dot = sum(x * y for x, y in zip(u, v, strict=True))
            scores[i] = dot / math.sqrt(sum(x * x for x in u) * sum(y * y for y in v))
        score = scores.__getitem__

        train_scores = sorted({score(i) for i in train})
        candidates = [train_scores[0] - 1.0]
        candidates += [(s + t) / 2 for s, t in zip(train_scores, train_scores[1:], strict=False)]
        candidates += [train_scores[-1] + 1.0]
        best_threshold, best_correct = None, -1
        for t in candidates:
            correct = sum((score(i) > t) == bool(same[i]) for i in train)
            if correct > best_correct:
                best_threshold, best_correct = t, correct
        accuracies.append(
            sum((score(i) > best_threshold) == bool(same[i]) for i in test) / len(test)
        )
    return accuracies


def test_ten_fold_protocol_matches_brute_force_on_synthetic_features():
    rng = np.random.default_rng(7)
    n_pairs, dim = 200, 5
    same = np.tile([1] * 10 + [0] * 10, 10)
    folds = np.repeat(np.arange(10), 20)
    offset = np.array([2.0, -1.0, 0.5, 0.0, 1.0])  # a common offset: mean subtraction matters
    a = rng.normal(size=(n_pairs, dim)) + offset
    noise = rng.normal(size=(n_pairs, dim))
    b = np.where(same[:, None] == 1, a + 1.2 * noise, rng.normal(size=(n_pairs, dim)) + offset)
    result = verification_accuracy(a, b, same, folds)
    expected = brute_force_ten_fold(a, b, same, folds)
    np.testing.assert_allclose(result.fold_accuracies, expected)
    assert 0.6 < result.accuracy_mean < 1.0  # informative, not trivial, data
    assert result.accuracy_std == pytest.approx(np.std(expected, ddof=1))
    assert result.accuracy_standard_error == pytest.approx(np.std(expected, ddof=1) / math.sqrt(10))


def test_mean_subtraction_uses_only_the_other_folds():
    # Moving fold 3's features changes the mean used for every other fold, but not its own.
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    same, folds = np.tile([1, 0], 20), np.repeat(np.arange(10), 4)
    before = verification_accuracy(a, b, same, folds).scores
    a2 = a.copy()
    a2[folds == 3] += 5.0
    shifted = a2[folds == 3] - np.concatenate([a2[folds != 3], b[folds != 3]]).mean(axis=0)
    other = b[folds == 3] - np.concatenate([a2[folds != 3], b[folds != 3]]).mean(axis=0)
    after = verification_accuracy(a2, b, same, folds).scores
    np.testing.assert_allclose(after[folds == 3], cosine_scores(shifted, other))
    assert not np.allclose(after[folds != 3], before[folds != 3])


def test_best_threshold_is_the_smallest_maximiser():
    assert best_threshold([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]) == pytest.approx(0.25)
    # all one class: "accept everything" (below the smallest score) is already perfect
    assert best_threshold([0.3, 0.5], [1, 1]) == pytest.approx(-0.7)


def test_single_split_uses_train_threshold_and_mean():
    train_a, train_b = features_with_scores([0.9, 0.8, 0.1, 0.85])
    test_a, test_b = features_with_scores([0.5, 0.3, 0.2, 0.6])
    result = single_split_verification(
        train_a, train_b, [1, 1, 0, 0], test_a, test_b, [1, 1, 0, 0], subtract_mean=False
    )
    assert result.thresholds[0] == pytest.approx(0.45)
    assert result.accuracy_mean == pytest.approx(0.5)


def mann_whitney_auc(scores, same):
    pos, neg = scores[same == 1], scores[same == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (pos.size * neg.size)


def test_roc_summary_against_pairwise_counting_and_sklearn():
    rng = np.random.default_rng(3)
    same = np.r_[np.ones(150, int), np.zeros(1500, int)]
    scores = np.round(np.r_[rng.normal(1.5, 1, 150), rng.normal(0, 1, 1500)], 2)  # with ties
    summary = roc_summary(scores, same, far=1e-3)
    assert summary.auc == pytest.approx(mann_whitney_auc(scores, same))
    assert summary.auc == pytest.approx(roc_auc_score(same, scores))
    # TAR@FAR by brute force: accept score >= t; at most 1 false accept of 1500
    best = 0.0
    for t in np.r_[np.unique(scores), np.inf]:
        far = np.mean(scores[same == 0] >= t)
        if far <= 1e-3:
            best = max(best, np.mean(scores[same == 1] >= t))
    assert summary.tar_at_far == pytest.approx(best)


def test_equal_error_rate_on_a_known_case():
    # accept iff score > 0.52: one of four genuine pairs rejected, one of four impostors accepted
    scores = np.array([0.5, 0.6, 0.7, 0.9, 0.1, 0.2, 0.3, 0.55])
    same = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    assert roc_summary(scores, same).eer == pytest.approx(0.25, abs=1e-9)
    separable = np.array([0.6, 0.7, 0.1, 0.2])
    assert roc_summary(separable, [1, 1, 0, 0]).eer == pytest.approx(0.0, abs=1e-9)


def test_flip_feature_combination():
    f, g = np.array([[1.0, 2.0]]), np.array([[3.0, 5.0]])
    np.testing.assert_array_equal(combine_flip_features(f, g), [[1, 2, 3, 5]])
    np.testing.assert_array_equal(combine_flip_features(f, g, mode="sum"), [[4, 7]])
    with pytest.raises(ValueError, match="flip mode"):
        combine_flip_features(f, g, mode="mean")


def test_closed_set_accuracy_uses_angles_not_lengths():
    weights = np.array([[1.0, 0.0], [0.0, 10.0]])  # a long W_2 must not win by length
    features = np.array([[2.0, 1.0], [1.0, 3.0], [5.0, 4.0]])
    # angles to W_1 / W_2: 26.6°/63.4°, 71.6°/18.4°, 38.7°/51.3°
    assert closed_set_accuracy(features, [0, 1, 0], weights) == 1.0
    assert closed_set_accuracy(features, [0, 1, 1], weights) == pytest.approx(2 / 3)


def test_inputs_are_validated():
    a = np.ones((4, 3))
    with pytest.raises(ValueError, match="same shape"):
        verification_accuracy(a, np.ones((4, 2)), [1, 0, 1, 0], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="one entry per pair"):
        verification_accuracy(a, a, [1, 0], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="at least 2 folds"):
        verification_accuracy(a, a, [1, 0, 1, 0], [0, 0, 0, 0])
    with pytest.raises(ValueError, match="NaN"):
        verification_accuracy(a * np.nan, a, [1, 0, 1, 0], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="both"):
        roc_summary([0.1, 0.2], [1, 1])


# ---------------------------------------------------------------------------------------------
# The glue: a (random-weight) face run on a few real LFW pairs


def write_face_run(folder: Path, dim: int = 16) -> None:
    """A run folder with an untrained SFNet-4, as `sphereviz train --dataset faces` writes."""
    from sphereviz.build import build_model_and_loss
    from sphereviz.config import TrainConfig
    from sphereviz.runs import save_checkpoint, write_config

    config = TrainConfig.preset("faces", faces_cache="unused", model="sfnet4", dim=dim)
    torch.manual_seed(0)
    model, loss = build_model_and_loss(config, num_classes=5)
    folder.mkdir(parents=True)
    write_config(folder / "config.json", config.to_dict())
    save_checkpoint(
        folder / "model.pt",
        {"epoch": 1, "num_classes": 5, "model": model.state_dict(), "loss": loss.state_dict(),
         "optimizer": {}, "scheduler": {}, "rng": {}, "metrics": []},
    )  # fmt: skip


SAME = ["Abdullah_Gul\t13\t14", "Abdullah_Gul\t13\t16", "Betsy_Coffin\t1\t2"]
DIFFERENT = [
    "AJ_Lamas\t1\tZach_Safrin\t1",
    "Aaron_Guiel\t1\tReese_Witherspoon\t3",
    "Betsy_Coffin\t1\tGerard_Tronche\t1",
]


def test_evaluate_lfw_glue_on_real_pairs(lfw_root, tmp_path, capsys):
    from sphereviz.data.lfw import read_pairs
    from sphereviz.evaluate import evaluate_lfw, main

    run = tmp_path / "run"
    write_face_run(run)
    pairs = tmp_path / "pairs2.txt"  # two folds of 3 + 3 pairs, Betsy_Coffin_0001 is missing
    pairs.write_text("2\t3\n" + "\n".join(SAME + DIFFERENT + SAME + DIFFERENT) + "\n")
    with pytest.warns(UserWarning, match="Betsy_Coffin"):
        result = evaluate_lfw(run, lfw_root, pairs, device="cpu", workers=1, progress=False)
    assert (result.pairs_used, result.pairs_skipped) == (8, 4)
    assert result.protocol == "2-fold"
    # Independently: features of each distinct image and of its mirror image, concatenated.
    from sphereviz.data.lfw import load_lfw_crops, pair_image_index, resolve_pairs
    from sphereviz.runs import load_run

    with pytest.warns(UserWarning, match="Betsy_Coffin"):
        usable, _ = resolve_pairs(read_pairs(pairs), lfw_root / "images")
    paths, index_a, index_b = pair_image_index(usable)
    crops = load_lfw_crops(paths, lfw_root)
    model = load_run(run).load_model()
    x = torch.from_numpy((crops.astype(np.float32) - 127.5) / 128).permute(0, 3, 1, 2)
    with torch.no_grad():
        features = torch.cat([model(x), model(torch.flip(x, dims=[3]))], dim=1).numpy()
    expected = verification_accuracy(
        features[index_a], features[index_b], [p.same for p in usable], [p.fold for p in usable],
        threshold="official-grid",
    )  # fmt: skip
    np.testing.assert_allclose(result.verification.scores, expected.scores, rtol=1e-4, atol=1e-5)
    assert result.verification.accuracy_mean == pytest.approx(expected.accuracy_mean)
    assert result.scoring == "official"

    code = main(["--run", str(run), "--lfw", str(lfw_root), "--pairs", str(pairs), "--json",
                 "--device", "cpu"])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert {"protocol", "accuracy_mean", "accuracy_std", "auc", "eer", "pairs_used",
            "pairs_skipped"} <= set(summary)  # fmt: skip
    assert summary["pairs_skipped"] == 4 and "Betsy_Coffin" in captured.err
    assert summary["scoring"] == "official"

    # --protocol all: a table and a JSON list, every variant on the same features
    code = main(["--run", str(run), "--lfw", str(lfw_root), "--pairs", str(pairs), "--json",
                 "--device", "cpu", "--protocol", "all"])  # fmt: skip
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    table = json.loads(lines[-1])
    assert [row["scoring"] for row in table] == list(LFW_PROTOCOLS)
    assert table[0]["accuracy_mean"] == pytest.approx(summary["accuracy_mean"])
    assert [row["optimistic"] for row in table] == [False] * 5 + [True]
    assert table[0]["difference_from_official"] == 0.0
    assert sum(line.startswith("|") for line in lines) == 2 + len(LFW_PROTOCOLS)
    assert any("all-pairs-threshold (optimistic)" in line for line in lines)
    # no-flip directly: the features of the unflipped images alone
    no_flip = verification_accuracy(
        features[index_a, :16], features[index_b, :16], [p.same for p in usable],
        [p.fold for p in usable], threshold="official-grid",
    )  # fmt: skip
    assert table[3]["accuracy_mean"] == pytest.approx(no_flip.accuracy_mean)
    with pytest.raises(SystemExit):
        main(["--run", str(run), "--lfw", str(lfw_root), "--protocol", "best"])


def test_evaluate_lfw_view1_takes_the_threshold_from_dev_train(lfw_root, tmp_path):
    from sphereviz.evaluate import evaluate_lfw

    run = tmp_path / "run"
    write_face_run(run)
    view1 = tmp_path / "view1"
    view1.mkdir()
    (view1 / "pairsDevTest.txt").write_text("2\n" + "\n".join(SAME[:2] + DIFFERENT[:2]) + "\n")
    (view1 / "pairsDevTrain.txt").write_text(
        "2\nAaron_Peirsol\t1\t2\nAaron_Peirsol\t3\t4\n"
        "AJ_Cook\t1\tMarsha_Thomason\t1\nAaron_Sorkin\t2\tFrank_Keating\t1\n"
    )
    result = evaluate_lfw(run, lfw_root, view1 / "pairsDevTest.txt", device="cpu", workers=1,
                          progress=False)  # fmt: skip
    assert result.protocol == "view1-devtest"
    assert (result.pairs_used, result.pairs_skipped) == (4, 0)
    assert result.verification.fold_accuracies.size == 1
    with pytest.raises(ValueError, match="pairsDevTrain"):
        evaluate_lfw(run, lfw_root, view1 / "pairsDevTrain.txt", device="cpu", progress=False)


@pytest.mark.filterwarnings("ignore::sphereviz.data.lfw.MissingPairImagesWarning")
def test_a_fold_whose_different_person_pairs_are_all_missing_is_dropped(lfw_root, tmp_path, capsys):
    from sphereviz.data.lfw import DroppedFoldsWarning
    from sphereviz.evaluate import evaluate_lfw, main

    run = tmp_path / "run"
    write_face_run(run)
    whole = [
        "Aaron_Peirsol\t1\t2",
        "Aaron_Peirsol\t3\t4",
        "AJ_Cook\t1\tMarsha_Thomason\t1",
        "Aaron_Sorkin\t2\tFrank_Keating\t1",
    ]
    # fold 2's different-person pairs both use an image that is not there
    broken = SAME[:2] + [DIFFERENT[2], "Nobody_Here\t1\tZach_Safrin\t1"]
    pairs = tmp_path / "pairs3.txt"
    pairs.write_text("3\t2\n" + "\n".join(SAME[:2] + DIFFERENT[:2] + broken + whole) + "\n")
    with pytest.warns(DroppedFoldsWarning, match=r"dropped 1 of 3 folds .*fold 2 \(no different"):
        result = evaluate_lfw(run, lfw_root, pairs, device="cpu", workers=1, progress=False)
    assert result.protocol == "2-fold" and result.folds_in_file == 3
    assert result.dropped_folds == (1,) and result.verification.fold_accuracies.size == 2
    assert (result.pairs_used, result.pairs_skipped, result.pairs_dropped) == (8, 2, 2)
    # Independently: the same two folds alone, as a two-fold file, score the same.
    alone = tmp_path / "pairs2.txt"
    alone.write_text("2\t2\n" + "\n".join(SAME[:2] + DIFFERENT[:2] + whole) + "\n")
    expected = evaluate_lfw(run, lfw_root, alone, device="cpu", workers=1, progress=False)
    np.testing.assert_allclose(
        result.verification.fold_accuracies, expected.verification.fold_accuracies
    )
    np.testing.assert_allclose(result.verification.scores, expected.verification.scores)

    code = main(["--run", str(run), "--lfw", str(lfw_root), "--pairs", str(pairs), "--json",
                 "--device", "cpu"])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["protocol"] == "2-fold" and "10fold" not in captured.out
    assert (summary["folds_scored"], summary["folds_in_file"]) == (2, 3)
    assert summary["dropped_folds"] == [2] and summary["pairs_dropped"] == 2
    assert "2 of 3 folds scored, fold 2 dropped (2 pairs)" in captured.out
    assert "warning: dropped 1 of 3 folds" in captured.err

    # a ten-fold file with one fold of one kind only is not "view2-10fold"
    ten = tmp_path / "pairs10.txt"
    ten.write_text("10\t1\n" + "\n".join([SAME[0], DIFFERENT[0]] * 9 + [SAME[0], DIFFERENT[2]]))
    with pytest.warns(DroppedFoldsWarning, match="fold 10"):
        result = evaluate_lfw(run, lfw_root, ten, device="cpu", workers=1, progress=False)
    assert result.protocol == "9-fold" and result.summary()["folds_scored"] == 9
    # two folds of which one is left: no cross-validation is possible
    two = tmp_path / "pairs-one-left.txt"
    two.write_text("2\t1\n" + "\n".join([SAME[0], DIFFERENT[0], SAME[0], DIFFERENT[2]]))
    with pytest.warns(DroppedFoldsWarning), pytest.raises(ValueError, match="only 1 of the 2"):
        evaluate_lfw(run, lfw_root, two, device="cpu", workers=1, progress=False)


def test_extract_features_flip_modes():
    from sphereviz.models import SFNet, extract_features

    torch.manual_seed(0)
    model = SFNet(4, embedding_dim=8).eval()
    images = np.random.default_rng(0).integers(0, 256, (3, 112, 96, 3), dtype=np.uint8)
    plain = extract_features(model, images, device="cpu")
    mirrored = extract_features(model, images[:, :, ::-1].copy(), device="cpu")
    both = extract_features(model, images, device="cpu", flip="concat")
    np.testing.assert_allclose(both, np.concatenate([plain, mirrored], 1), rtol=1e-4, atol=1e-5)
    summed = extract_features(model, images, device="cpu", flip="sum")
    np.testing.assert_allclose(summed, plain + mirrored, rtol=1e-4, atol=1e-5)
