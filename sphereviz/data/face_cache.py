"""The face cache's on-disk format: what a cache folder holds, opening one, checking one.

A cache is a folder::

    images.npy           uint8 N×112×96×3 (RGB), opened memory-mapped
    labels.npy           int64 N
    identity_names.npy   str, one per class (label k ↔ identity_names[k])
    paths.npy            str N, each image's path relative to the root
    manifest.json        inputs, parameters, counts, skipped files, content hash (written last)

:func:`load_face_cache` opens one (every file checked against the manifest);
:func:`_existing_cache_hash` tells :func:`~sphereviz.data.prepare.prepare_faces` whether the
folder it is to write holds a valid cache (and refuses a folder that is something else). The
cache is built by :mod:`sphereviz.data.prepare`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sphereviz.data.align import CROP_SHAPE
from sphereviz.data.arrays import ArrayDataset
from sphereviz.fileio import read_text_file

CACHE_FORMAT = "sphereviz-face-cache"
CACHE_VERSION = 1
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True, eq=False)
class FaceCache(ArrayDataset):
    """A prepared face cache: an :class:`ArrayDataset` (images memory-mapped) plus provenance.

    Attributes beyond the dataset's: ``paths`` (each image's path relative to the face root),
    ``manifest`` (the parsed ``manifest.json``), ``directory`` (the cache folder) and ``reused``
    (whether the last :func:`~sphereviz.data.prepare.prepare_faces` call found it up to date).
    """

    paths: np.ndarray = field(repr=False, default_factory=lambda: np.array([], dtype=str))
    manifest: dict = field(repr=False, default_factory=dict)
    directory: Path = Path()
    reused: bool = False

    @property
    def dataset(self) -> ArrayDataset:
        """The plain dataset (same arrays, no copies)."""
        return ArrayDataset(self.images, self.labels, self.class_names, self.source)

    @property
    def identity_names(self) -> list[str]:
        return self.class_names


def load_face_cache(path: str | os.PathLike) -> FaceCache:
    """Open a cache written by :func:`~sphereviz.data.prepare.prepare_faces`; ``images`` is a
    read-only memory map."""
    directory = Path(path)
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"{directory} is not a face cache (no {MANIFEST_NAME}); build one with "
            "`sphereviz prepare-faces --root FACES --out CACHE`"
        )
    try:
        manifest = json.loads(read_text_file(manifest_path, "face cache manifest"))
    except ValueError as error:
        raise ValueError(
            f"{manifest_path}: not readable JSON ({error}); rebuild the cache with "
            "`sphereviz prepare-faces --force`"
        ) from error
    _check_manifest(manifest, manifest_path)
    if manifest.get("format") != CACHE_FORMAT or manifest.get("version") != CACHE_VERSION:
        raise ValueError(
            f"{manifest_path}: format {manifest.get('format')!r} version "
            f"{manifest.get('version')!r}, expected {CACHE_FORMAT!r} version {CACHE_VERSION}; "
            "rebuild it with `sphereviz prepare-faces`"
        )
    try:
        images = np.load(directory / "images.npy", mmap_mode="r")
        labels = np.load(directory / "labels.npy")
        names = [str(name) for name in np.load(directory / "identity_names.npy")]
        paths = np.load(directory / "paths.npy")
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{directory}: damaged face cache ({error}); rebuild it with `sphereviz prepare-faces`"
        ) from error
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{directory / 'labels.npy'}: labels must be a 1-D integer array, got "
            f"{labels.dtype} with shape {labels.shape} (float labels would be silently "
            "truncated); rebuild the cache with `sphereviz prepare-faces --force`"
        )
    labels = labels.astype(np.int64, copy=False)
    if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
        raise ValueError(
            f"{directory / 'labels.npy'}: labels must lie in 0 … {len(names) - 1} (one per name "
            f"of identity_names.npy), got {labels.min()} … {labels.max()}; rebuild the cache "
            "with `sphereviz prepare-faces --force`"
        )
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != CROP_SHAPE:
        raise ValueError(
            f"{directory / 'images.npy'}: expected uint8 N×{'×'.join(map(str, CROP_SHAPE))} "
            f"crops, got {images.dtype} {images.shape}; rebuild it with `sphereviz prepare-faces`"
        )
    expected_shape = tuple(manifest["shape"])
    if images.shape != expected_shape or len(labels) != len(images) or len(paths) != len(images):
        raise ValueError(
            f"{manifest_path}: damaged face cache: the manifest says {expected_shape}, the "
            f"arrays hold images {images.shape}, {len(labels)} labels and {len(paths)} paths; "
            "rebuild it with `sphereviz prepare-faces --force`"
        )
    source = f"faces from {manifest['inputs']['root']}, cached in {directory}"
    return FaceCache(images, labels, names, source, paths, manifest, directory)


MANIFEST_REQUIRED = {"format": str, "version": int, "shape": list, "inputs": dict}


def _check_manifest(manifest, path: Path) -> None:
    """ValueError unless ``manifest`` is an object with the keys a cache needs."""
    if not isinstance(manifest, dict):
        raise ValueError(
            f"{path}: expected a JSON object, got {type(manifest).__name__}; rebuild the cache "
            "with `sphereviz prepare-faces --force`"
        )
    problems = [
        f"{key!r} {'missing' if key not in manifest else 'is not a ' + kind.__name__}"
        for key, kind in MANIFEST_REQUIRED.items()
        if not isinstance(manifest.get(key), kind)
    ]
    inputs = manifest.get("inputs")
    if isinstance(inputs, dict) and not isinstance(inputs.get("root"), str):
        problems.append("'inputs.root' missing")
    if problems:
        raise ValueError(
            f"{path}: not a complete face cache manifest ({', '.join(problems)}); rebuild the "
            "cache with `sphereviz prepare-faces --force`"
        )


def _existing_cache_hash(out: Path) -> str | None:
    """The content hash of a valid cache at ``out``, or ``None``.

    Raises ``ValueError`` when ``out`` holds something other than a cache (it is never
    overwritten then).
    """
    if not out.exists():
        return None
    if not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder path for the cache")
    manifest_path = out / MANIFEST_NAME
    if not manifest_path.is_file():
        if any(out.iterdir()):
            raise ValueError(
                f"--out {out} is a non-empty folder that is not a face cache (no "
                f"{MANIFEST_NAME}); refusing to overwrite it: choose another --out"
            )
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        manifest = {}
    if not isinstance(manifest, dict):
        manifest = {}
    if manifest.get("format") != CACHE_FORMAT:
        raise ValueError(
            f"--out {out} holds a {MANIFEST_NAME} that is not a sphereviz face cache's; "
            "refusing to overwrite it: choose another --out"
        )
    try:
        load_face_cache(out)
    except (OSError, ValueError, KeyError):
        return None
    return manifest.get("content_hash")
