"""LFW protocol files: pairs (View 1, View 2), people lists, missing images, aligned crops."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from sphereviz.data import (
    Pair,
    lfw_image_path,
    load_lfw_crops,
    pair_image_index,
    read_pairs,
    read_people,
    resolve_pairs,
    view1_training_people,
)
from sphereviz.data.align import align_face, decode_image, read_landmarks
from sphereviz.data.lfw import DroppedFoldsWarning, MissingPairImagesWarning, scorable_folds

BETSY = "Betsy_Coffin/Betsy_Coffin_0001.jpg"


def test_view2_pairs_are_10_folds_of_300_same_and_300_different(lfw_root):
    pairs = read_pairs(lfw_root / "pairs.txt")
    assert len(pairs) == 6000
    for fold in range(10):
        in_fold = [pair for pair in pairs if pair.fold == fold]
        assert sum(pair.same for pair in in_fold) == 300
        assert sum(not pair.same for pair in in_fold) == 300
    # The file's first data line is "Abel_Pacheco 1 4".
    assert pairs[0] == Pair(
        "Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0004.jpg", True, 0
    )
    for pair in pairs:
        same_name = pair.path_a.split("/")[0] == pair.path_b.split("/")[0]
        assert same_name == pair.same


def test_view1_pairs(lfw_root):
    train = read_pairs(lfw_root / "pairsDevTrain.txt")
    test = read_pairs(lfw_root / "pairsDevTest.txt")
    assert len(train) == 2200 and sum(pair.same for pair in train) == 1100
    assert len(test) == 1000 and sum(pair.same for pair in test) == 500
    assert {pair.fold for pair in train + test} == {0}


def test_missing_image_pair_is_reported_and_skipped(lfw_root):
    pairs = read_pairs(lfw_root / "pairsDevTest.txt")
    # Independent count: lines of the raw file that use Betsy_Coffin's image 1.
    raw_lines = (lfw_root / "pairsDevTest.txt").read_text().splitlines()[1:]
    expected = 0
    for line in raw_lines:
        fields = line.split()
        names = [(fields[0], fields[1]), (fields[0], fields[2])] if len(fields) == 3 else [
            (fields[0], fields[1]), (fields[2], fields[3])
        ]  # fmt: skip
        expected += any(name == "Betsy_Coffin" and int(n) == 1 for name, n in names)
    assert expected >= 1
    with pytest.warns(MissingPairImagesWarning, match=BETSY):
        usable, skipped = resolve_pairs(pairs, lfw_root / "images")
    assert len(skipped) == expected and len(usable) == len(pairs) - expected
    assert all(BETSY in (pair.path_a, pair.path_b) for pair in skipped)


def test_view2_pairs_all_resolve(lfw_root, recwarn):
    pairs = read_pairs(lfw_root / "pairs.txt")
    usable, skipped = resolve_pairs(pairs, lfw_root / "images")
    assert len(usable) == 6000 and skipped == []
    assert not [w for w in recwarn if issubclass(w.category, MissingPairImagesWarning)]


def test_malformed_pairs_files_name_the_line(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("1\nA 1 2\nB 1 2\n")  # the second block must be different-person lines
    with pytest.raises(ValueError, match=r"pairs.txt:3: expected 'name1 i name2 j'"):
        read_pairs(path)
    path.write_text("2 1\nA 1 2\nB 1 C 2\n")
    with pytest.raises(ValueError, match="4 lines, the file has 2"):
        read_pairs(path)
    path.write_text("1\nA one 2\nB 1 C 2\n")
    with pytest.raises(ValueError, match="pairs.txt:2: expected an integer"):
        read_pairs(path)


def test_a_pair_of_an_image_with_itself_is_refused_with_its_line(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("2\nA 1 2\nA 3 3\nA 1 B 1\nA 2 C 1\n")
    with pytest.raises(ValueError, match=r"pairs.txt:3: A 3 3 pairs an image with itself"):
        read_pairs(path)
    path.write_text("1\nA 0003 3\nA 1 B 1\n")  # the same image number, written otherwise
    with pytest.raises(ValueError, match=r"pairs.txt:2: .*pairs an image with itself"):
        read_pairs(path)
    path.write_text("1\nA 1 2\nB 1 B 2\n")  # one person in the different-person block
    with pytest.raises(ValueError, match=r"pairs.txt:3: a different-person pair names B twice"):
        read_pairs(path)


@pytest.mark.parametrize(
    ("body", "line", "name"),
    [
        ("A..B 1 2\nA 1 B 1\n", 2, "A..B"),
        ("A 1 2\nA 1 B.. 1\n", 3, "B.."),
        ("A 1 2\nA 1 ..B 1\n", 3, "..B"),
        ("A\\B 1 2\nA 1 B 1\n", 2, "A\\\\B"),
        ("A 1 2\nA/../B 1 C 1\n", 3, "A/../B"),
        ("A\x00B 1 2\nA 1 B 1\n", 2, "A\\x00B"),
    ],
)
def test_pair_names_holding_dot_dot_or_a_separator_are_refused(tmp_path, body, line, name):
    path = tmp_path / "pairs.txt"
    path.write_text("1\n" + body)
    with pytest.raises(ValueError, match=rf"pairs.txt:{line}: '{re.escape(name)}' is not a"):
        read_pairs(path)


def test_a_fold_without_one_kind_of_pair_is_dropped_and_named():
    def fold_pairs(fold, same, different):
        return [Pair(f"S{fold}{k}/a.jpg", f"S{fold}{k}/b.jpg", True, fold) for k in range(same)] + [
            Pair(f"D{fold}{k}/a.jpg", f"E{fold}{k}/b.jpg", False, fold) for k in range(different)
        ]  # fmt: skip

    # fold 0 whole; fold 1 lost its different-person pairs, fold 2 its same-person pairs, fold 3
    # every pair; fold 4 kept one of each kind
    usable = (fold_pairs(0, 3, 3) + fold_pairs(1, 3, 0) + fold_pairs(2, 0, 2)
              + fold_pairs(4, 1, 1))  # fmt: skip
    with pytest.warns(DroppedFoldsWarning) as caught:
        kept, dropped = scorable_folds(usable, range(5), "pairs.txt")
    assert dropped == [1, 2, 3]
    assert kept == fold_pairs(0, 3, 3) + fold_pairs(4, 1, 1)
    (message,) = [str(w.message) for w in caught]
    assert "dropped 3 of 5 folds of pairs.txt" in message and "2 folds are scored" in message
    assert "fold 2 (no different-person pair" in message
    assert "fold 3 (no same-person pair" in message and "fold 4 (no pair " in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # complete folds: nothing to say
        assert scorable_folds(kept, [0, 4]) == (kept, [])


def test_people_files(lfw_root):
    people = read_people(lfw_root / "people.txt")
    assert {person.fold for person in people} == set(range(10))
    # LFW: 5,749 people and 13,233 images in all (README); View 2 uses each person once.
    assert len(people) == len({person.name for person in people}) == 5749
    assert sum(person.num_images for person in people) == 13233
    train = read_people(lfw_root / "peopleDevTrain.txt")
    test = read_people(lfw_root / "peopleDevTest.txt")
    assert len(train) == 4038 and len(test) == 1711
    assert not {p.name for p in train} & {p.name for p in test}


def test_view1_training_people_are_disjoint_from_view1_test_pairs(lfw_root):
    names = view1_training_people(lfw_root, min_images=5)
    train_people = {p.name: p.num_images for p in read_people(lfw_root / "peopleDevTrain.txt")}
    assert names == sorted(names) and len(names) > 100
    for name in names[:: max(1, len(names) // 20)]:
        assert train_people[name] >= 5
        assert len(list((lfw_root / "images" / name).glob("*.jpg"))) >= 5
    test_pairs = read_pairs(lfw_root / "pairsDevTest.txt")
    test_names = {path.split("/")[0] for pair in test_pairs for path in (pair.path_a, pair.path_b)}
    assert not set(names) & test_names
    assert set(view1_training_people(lfw_root, min_images=20)) < set(names)
    with pytest.raises(ValueError, match="min_images"):
        view1_training_people(lfw_root, min_images=0)


def test_pair_image_index_round_trips():
    pairs = [
        Pair(lfw_image_path("A", 1), lfw_image_path("A", 2), True, 0),
        Pair(lfw_image_path("A", 2), lfw_image_path("B", 7), False, 1),
    ]
    paths, index_a, index_b = pair_image_index(pairs)
    assert paths == ["A/A_0001.jpg", "A/A_0002.jpg", "B/B_0007.jpg"]
    for pair, a, b in zip(pairs, index_a, index_b, strict=True):
        assert (paths[a], paths[b]) == (pair.path_a, pair.path_b)


def test_load_lfw_crops_of_a_few_pairs(lfw_root):
    pairs = read_pairs(lfw_root / "pairs.txt")[:3] + read_pairs(lfw_root / "pairs.txt")[300:303]
    paths, index_a, _ = pair_image_index(pairs)
    crops = load_lfw_crops(paths, lfw_root)
    assert crops.shape == (len(paths), 112, 96, 3) and crops.dtype == np.uint8
    table = read_landmarks(lfw_root / "lfw_landmark.txt")
    first = paths[index_a[0]]
    direct = align_face(decode_image(lfw_root / "images" / first), table[first], 250)
    np.testing.assert_array_equal(crops[index_a[0]], direct)
    with pytest.raises(ValueError, match="no landmarks"):
        load_lfw_crops(["Nobody/Nobody_0001.jpg"], lfw_root)
