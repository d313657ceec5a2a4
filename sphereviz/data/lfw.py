"""The LFW protocol files: pairs (View 1 and View 2), people lists, and aligned crops of pairs.

Paths are relative to LFW's images folder, ``Name/Name_0001.jpg``. LFW's own README
(``README.txt``) describes the files; in short:

* ``pairs.txt`` (View 2): header ``10 300``, then 10 folds, each 300 same-person lines
  ``name i j`` followed by 300 different-person lines ``name1 i name2 j``;
* ``pairsDevTrain.txt`` / ``pairsDevTest.txt`` (View 1): header ``N``, then N same-person and
  N different-person lines (one fold);
* ``people.txt`` (View 2): header ``10``, then per fold a count and ``name count`` lines;
  ``peopleDevTrain.txt`` / ``peopleDevTest.txt`` (View 1): a count, then ``name count`` lines.
  View 1's train and test people are disjoint.

Where LFW is: :func:`default_lfw_root` (``SPHEREVIZ_LFW``, else the folder ``sphereviz
fetch-lfw`` fills by default, else ``../shared/data/lfw`` beside this repository's checkout),
and its landmark file :func:`default_landmarks` (``<root>/lfw_landmark.txt``).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sphereviz.data.align import read_landmarks
from sphereviz.data.align_pool import align_images
from sphereviz.data.face_cache import FaceCache
from sphereviz.data.prepare import prepare_faces
from sphereviz.fileio import read_text_file, user_cache_dir

LFW_LANDMARK_FRAME = 250  # the landmark file was measured on the original 250×250 images
LANDMARK_FILE_NAME = "lfw_landmark.txt"
LFW_ENVIRONMENT_VARIABLE = "SPHEREVIZ_LFW"
_REPOSITORY = Path(__file__).resolve().parents[2]


class LfwNotFoundError(FileNotFoundError):
    """No LFW folder (or no landmark file in it); the message says how to get one."""


def fetch_lfw_default_dir() -> Path:
    """Where ``sphereviz fetch-lfw`` puts LFW when not told ``--to``.

    ``lfw`` in :func:`~sphereviz.fileio.user_cache_dir` (``~/.cache/sphereviz/lfw``).
    """
    return user_cache_dir() / "lfw"


def checkout_lfw_dir() -> Path | None:
    """``../shared/data/lfw`` beside the repository checkout this package runs from, or None
    when the package is not in a checkout (installed from a wheel)."""
    if not (_REPOSITORY / "pyproject.toml").is_file():
        return None
    return _REPOSITORY.parent / "shared" / "data" / "lfw"


def is_lfw_root(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds LFW's ``images/`` folder (``sphereviz fetch-lfw`` renames it into
    place last, so a fetched folder with ``images/`` is complete)."""
    return (Path(path) / "images").is_dir()


def default_lfw_root() -> Path:
    """The LFW folder every face command and notebook uses unless given one.

    In order: ``$SPHEREVIZ_LFW`` (an error if it is set but holds no ``images/``), the
    ``sphereviz fetch-lfw`` default folder (:func:`fetch_lfw_default_dir`), then
    ``../shared/data/lfw`` beside the repository checkout (:func:`checkout_lfw_dir`).
    None of them: :class:`LfwNotFoundError`, one line naming ``sphereviz fetch-lfw`` and
    ``SPHEREVIZ_LFW``.
    """
    variable = os.environ.get(LFW_ENVIRONMENT_VARIABLE, "")
    if variable:
        root = Path(variable).expanduser()
        if not is_lfw_root(root):
            raise LfwNotFoundError(
                f"{LFW_ENVIRONMENT_VARIABLE}={variable} holds no LFW (no images/ folder in it); "
                f"run `sphereviz fetch-lfw --to {variable}` to download LFW there, or point "
                f"{LFW_ENVIRONMENT_VARIABLE} at a folder with images/<Name>/*.jpg"
            )
        return root
    candidates = [fetch_lfw_default_dir(), checkout_lfw_dir()]
    for candidate in candidates:
        if candidate is not None and is_lfw_root(candidate):
            return candidate
    looked = " nor ".join(str(c) for c in candidates if c is not None)
    raise LfwNotFoundError(
        f"LFW not found: {LFW_ENVIRONMENT_VARIABLE} is not set and neither {looked} holds "
        f"images/; run `sphereviz fetch-lfw` (downloads it to {candidates[0]}), or set "
        f"{LFW_ENVIRONMENT_VARIABLE} to the LFW folder you have"
    )


def default_landmarks(lfw_root: str | os.PathLike) -> Path:
    """``<lfw_root>/lfw_landmark.txt``, the default landmark file of every face command.

    Missing: :class:`LfwNotFoundError`, one line saying ``sphereviz fetch-lfw`` downloads it.
    """
    path = Path(lfw_root) / LANDMARK_FILE_NAME
    if not path.is_file():
        raise LfwNotFoundError(
            f"{path} not found: LFW's 5-point landmark file (MIT, from a public SphereFace "
            f"port); run `sphereviz fetch-lfw --to {lfw_root}` to download it there, or give "
            "the landmark file you have"
        )
    return path


@dataclass(frozen=True)
class Pair:
    """One verification pair: two image paths relative to the images folder, and the truth."""

    path_a: str
    path_b: str
    same: bool
    fold: int


@dataclass(frozen=True)
class Person:
    """One line of a people file: a name, its number of images, and its fold (0 for View 1)."""

    name: str
    num_images: int
    fold: int


class MissingPairImagesWarning(UserWarning):
    """Pairs that refer to an image missing on disk were skipped."""


class DroppedFoldsWarning(UserWarning):
    """Folds left without any same-person or any different-person pair were not scored."""


def lfw_image_path(name: str, number: int) -> str:
    """``("Aaron_Eckhart", 1)`` → ``"Aaron_Eckhart/Aaron_Eckhart_0001.jpg"``."""
    return f"{name}/{name}_{int(number):04d}.jpg"


def lfw_images_dir(lfw_root: str | os.PathLike) -> Path:
    """``lfw_root/images`` when it exists, else ``lfw_root`` itself (already the images folder)."""
    root = Path(lfw_root)
    return root / "images" if (root / "images").is_dir() else root


def _read_lines(path: Path) -> list[tuple[int, list[str]]]:
    text = read_text_file(path, "LFW protocol file")
    return [
        (number, line.split()) for number, line in enumerate(text.split("\n"), 1) if line.strip()
    ]


def _name(path: Path, number: int, text: str) -> str:
    """A person's name from a protocol file: one folder name, never a path.

    Refused: a path separator ('/', '\\', the system's own), '..' anywhere, a NUL and a
    leading '.', so that no name can reach outside the images folder.
    """
    forbidden = {"/", "\\", "..", "\0", os.sep, os.altsep or "/"}
    if text.startswith(".") or any(part in text for part in forbidden):
        raise ValueError(
            f"{path}:{number}: {text!r} is not a person's name (a folder name without '/', "
            "'\\', '..', NUL or a leading '.'); is this an LFW protocol file?"
        )
    return text


def _positive(path: Path, number: int, text: str, what: str) -> int:
    value = _integer(path, number, text)
    if value < 1:
        raise ValueError(f"{path}:{number}: {what} must be >= 1, got {value}")
    return value


def _integer(path: Path, number: int, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{path}:{number}: expected an integer, got {text!r}") from None


def read_pairs(path: str | os.PathLike) -> list[Pair]:
    """Parse a pairs file (View 2's ``pairs.txt`` or View 1's ``pairsDev*.txt``).

    Returns the pairs in file order, with ``fold`` 0…9 (View 2) or 0 (View 1). Each fold's
    block must hold exactly its N same-person lines then its N different-person lines; anything
    else is a ``ValueError`` naming the file and line.
    """
    path = Path(path)
    lines = _read_lines(path)
    if not lines:
        raise ValueError(f"{path}: empty pairs file")
    number, header = lines[0]
    if len(header) == 2:
        folds, per_kind = (_positive(path, number, field, "the header") for field in header)
    elif len(header) == 1:
        folds, per_kind = 1, _positive(path, number, header[0], "the header")
    else:
        raise ValueError(f"{path}:{number}: header must be 'FOLDS N' or 'N', got {header}")
    body = lines[1:]
    if len(body) != folds * 2 * per_kind:
        raise ValueError(
            f"{path}: header says {folds} fold(s) × 2 × {per_kind} pairs = "
            f"{folds * 2 * per_kind} lines, the file has {len(body)}"
        )
    pairs = []
    for position, (number, fields) in enumerate(body):
        fold, within = divmod(position, 2 * per_kind)
        same = within < per_kind
        if same and len(fields) == 3:
            name, first, second = fields
            name = _name(path, number, name)
            first = _positive(path, number, first, "an image number")
            second = _positive(path, number, second, "an image number")
            if first == second:
                raise ValueError(
                    f"{path}:{number}: {name} {first} {second} pairs an image with itself (a "
                    "same-person pair needs two different images of one person)"
                )
            pair = Pair(lfw_image_path(name, first), lfw_image_path(name, second), True, fold)
        elif not same and len(fields) == 4:
            name_a, first, name_b, second = fields
            name_a, name_b = _name(path, number, name_a), _name(path, number, name_b)
            if name_a == name_b:
                raise ValueError(
                    f"{path}:{number}: a different-person pair names {name_a} twice (its truth "
                    "would be wrong); is the line in the wrong block?"
                )
            pair = Pair(
                lfw_image_path(name_a, _positive(path, number, first, "an image number")),
                lfw_image_path(name_b, _positive(path, number, second, "an image number")),
                False,
                fold,
            )
        else:
            expected = "'name i j' (same person)" if same else "'name1 i name2 j' (different)"
            raise ValueError(f"{path}:{number}: expected {expected}, got {fields}")
        pairs.append(pair)
    return pairs


def read_people(path: str | os.PathLike) -> list[Person]:
    """Parse a people file (``people.txt`` with folds, or ``peopleDev*.txt`` with one block)."""
    path = Path(path)
    lines = _read_lines(path)
    if not lines:
        raise ValueError(f"{path}: empty people file")
    folded = len(lines) > 1 and len(lines[0][1]) == 1 and len(lines[1][1]) == 1
    folds = _positive(path, lines[0][0], lines[0][1][0], "the number of folds") if folded else 1
    position = 1 if folded else 0
    people = []
    for fold in range(folds):
        if position >= len(lines):
            raise ValueError(f"{path}: ends before fold {fold + 1} of {folds}")
        number, fields = lines[position]
        if len(fields) != 1:
            raise ValueError(f"{path}:{number}: expected a count of people, got {fields}")
        count = _positive(path, number, fields[0], "a fold's count of people")
        block = lines[position + 1 : position + 1 + count]
        if len(block) != count:
            raise ValueError(f"{path}: fold {fold + 1} announces {count} people, has {len(block)}")
        for number, fields in block:
            if len(fields) != 2:
                raise ValueError(f"{path}:{number}: expected 'name count', got {fields}")
            name = _name(path, number, fields[0])
            people.append(Person(name, _positive(path, number, fields[1], "a count"), fold))
        position += 1 + count
    if position != len(lines):
        raise ValueError(f"{path}:{lines[position][0]}: unexpected lines after the last block")
    return people


def resolve_pairs(
    pairs: Sequence[Pair], images_root: str | os.PathLike
) -> tuple[list[Pair], list[Pair]]:
    """Split pairs into ``(usable, skipped)``: a pair is skipped when an image is missing.

    Each missing image is named in a :class:`MissingPairImagesWarning` (the LFW copy here lacks
    ``Betsy_Coffin/Betsy_Coffin_0001.jpg``, which ``pairsDevTest.txt`` uses).
    """
    root = Path(images_root)
    exists: dict[str, bool] = {}
    usable, skipped = [], []
    for pair in pairs:
        for path in (pair.path_a, pair.path_b):
            if path not in exists:
                exists[path] = (root / path).is_file()
        (usable if exists[pair.path_a] and exists[pair.path_b] else skipped).append(pair)
    if skipped:
        missing = sorted(path for path, present in exists.items() if not present)
        warnings.warn(
            f"skipped {len(skipped)} of {len(pairs)} pairs whose images are missing under "
            f"{root}: {', '.join(missing)}",
            MissingPairImagesWarning,
            stacklevel=2,
        )
    return usable, skipped


def scorable_folds(
    usable: Sequence[Pair], folds: Sequence[int], source: str | os.PathLike = "the pairs file"
) -> tuple[list[Pair], list[int]]:
    """Split off the folds that cannot be scored: ``(pairs of the kept folds, dropped folds)``
    (fold indices as in :class:`Pair`, from 0).

    ``usable`` are the pairs left after :func:`resolve_pairs`, ``folds`` every fold of the
    pairs file (``range(10)`` for View 2). A fold is dropped when it has no usable
    same-person pair or no usable different-person pair (all of one kind skipped for missing
    images): its accuracy would measure one kind only (1.0 for any threshold below every
    different-person score), not verification. Each dropped fold is named (1-based, as LFW's
    README counts them) in one :class:`DroppedFoldsWarning` with what it lacked.
    """
    kinds: dict[int, set[bool]] = {fold: set() for fold in folds}
    for pair in usable:
        kinds.setdefault(pair.fold, set()).add(pair.same)
    dropped = sorted(fold for fold, seen in kinds.items() if seen != {True, False})
    if dropped:
        reasons = []
        for fold in dropped:
            lacking = {
                frozenset(): "no pair",
                frozenset({True}): "no different-person pair",
                frozenset({False}): "no same-person pair",
            }[frozenset(kinds[fold])]
            reasons.append(f"fold {fold + 1} ({lacking} with both images)")
        warnings.warn(
            f"dropped {len(dropped)} of {len(kinds)} folds of {source}: {', '.join(reasons)}; "
            f"{len(kinds) - len(dropped)} folds are scored",
            DroppedFoldsWarning,
            stacklevel=2,
        )
    kept = [pair for pair in usable if pair.fold not in dropped]
    return kept, dropped


def pair_image_index(pairs: Sequence[Pair]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The distinct images of ``pairs`` and, per pair, the positions of its two images.

    Returns ``(paths, index_a, index_b)`` with ``paths[index_a[k]] == pairs[k].path_a``, so each
    image is aligned and embedded once.
    """
    paths = sorted({path for pair in pairs for path in (pair.path_a, pair.path_b)})
    position = {path: k for k, path in enumerate(paths)}
    index_a = np.array([position[pair.path_a] for pair in pairs], dtype=np.int64)
    index_b = np.array([position[pair.path_b] for pair in pairs], dtype=np.int64)
    return paths, index_a, index_b


def view1_training_people(lfw_root: str | os.PathLike, min_images: int = 5) -> list[str]:
    """View 1's training people with at least ``min_images`` images, for a training subset.

    Reads ``peopleDevTrain.txt``, keeps the people whose images folder holds at least
    ``min_images`` images, and returns their sorted names: pass them as
    ``FaceFolder(lfw_images_dir(root), identities=...)`` / ``prepare_faces(identities=...)``.
    These people are disjoint from View 1's test people (``pairsDevTest.txt``), so training on
    them and verifying on ``pairsDevTest.txt`` is an honest open-set experiment on LFW alone.
    """
    if min_images < 1:
        raise ValueError(f"min_images must be >= 1, got {min_images}")
    root = Path(lfw_root)
    people = read_people(root / "peopleDevTrain.txt")
    images = lfw_images_dir(root)
    names = []
    for person in people:
        if person.num_images < min_images:
            continue
        folder = images / person.name
        on_disk = len(list(folder.glob("*.jpg"))) if folder.is_dir() else 0
        if on_disk >= min_images:
            names.append(person.name)
    return sorted(names)


def load_lfw_crops(
    relative_paths: Sequence[str],
    lfw_root: str | os.PathLike,
    landmarks: str | os.PathLike | None = None,
    landmark_frame: int | None = LFW_LANDMARK_FRAME,
    workers: int | None = 1,
    progress: bool = False,
) -> np.ndarray:
    """Aligned ``uint8`` ``N×112×96×3`` RGB crops of LFW images (e.g. all images of the pairs).

    ``landmarks`` defaults to :func:`default_landmarks` (measured on the 250×250 originals,
    hence ``landmark_frame=250``; the points are rescaled to each image's size, so the original
    250×250 images and a downscaled copy align alike). Every image must exist and have
    landmarks; resolve pairs first with :func:`resolve_pairs`.
    """
    root = Path(lfw_root)
    landmark_path = Path(landmarks) if landmarks is not None else default_landmarks(root)
    table = read_landmarks(landmark_path, landmark_frame)
    missing = [path for path in relative_paths if path not in table]
    if missing:
        raise ValueError(
            f"{len(missing)} images have no landmarks in {landmark_path}: {', '.join(missing[:5])}"
        )
    images = lfw_images_dir(root)
    points = np.stack([table[path] for path in relative_paths]) if relative_paths else None
    return align_images(
        [images / path for path in relative_paths],
        points,
        landmark_frame,
        workers=workers,
        progress=progress,
    )


def check_lfw_root(lfw_root: str | os.PathLike) -> Path:
    """The landmark file of an LFW folder; ValueError when the folder is not an LFW copy."""
    lfw_root = Path(lfw_root)
    landmarks = lfw_root / LANDMARK_FILE_NAME
    if not is_lfw_root(lfw_root) or not landmarks.is_file():
        raise ValueError(
            f"{lfw_root} is not an LFW folder: expected one with images/<Name>/*.jpg and "
            f"{LANDMARK_FILE_NAME}; `sphereviz fetch-lfw --to {lfw_root}` downloads both"
        )
    return landmarks


def prepare_lfw_top6(
    lfw_root: str | os.PathLike, cache: str | os.PathLike, progress: bool | None = None
) -> FaceCache:
    """Align the six LFW identities with the most images into a face cache (reused if current).

    Uses LFW's 5-point landmark file (measured on the 250×250 originals) for the similarity
    transform to 112×96 crops (``sphereviz.data.prepare_faces``).
    """
    lfw_root = Path(lfw_root)
    landmarks = check_lfw_root(lfw_root)
    return prepare_faces(
        lfw_images_dir(lfw_root),
        cache,
        landmarks=landmarks,
        landmark_frame=LFW_LANDMARK_FRAME,
        top_k_identities=6,
        workers=1,
        progress=bool(progress) if progress is not None else sys.stderr.isatty(),
    )
