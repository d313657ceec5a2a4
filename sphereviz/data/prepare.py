"""``sphereviz prepare-faces``: decode, align and cache a face folder as memory-mappable arrays.

The folder may also be CASIA-WebFace's packed forms, insightface's RecordIO or a zip plus a
landmark list (:mod:`sphereviz.data.sources`); they share the selection and the cache.

A cache is a folder::

    images.npy           uint8 N×112×96×3 (RGB), opened memory-mapped
    labels.npy           int64 N
    identity_names.npy   str, one per class (label k ↔ identity_names[k])
    paths.npy            str N, each image's path relative to the root
    manifest.json        inputs, parameters, counts, skipped files, content hash (written last)

The content hash covers the selected files (relative path, size, mtime), the landmark file's
stamp, the selection and alignment parameters and the cache format. A second call with the same
inputs only lists the folder, recomputes the hash and reuses the cache; any change rebuilds it.
A build happens in a temporary sibling folder that is renamed into place only when complete,
so an interrupted run never leaves a cache that looks valid. A build folder records the process
that owns it; one whose process was killed (SIGKILL, power loss) is removed by the next build.

Decoding and alignment run in worker processes over chunks of images; each worker writes its
chunk of crops straight into the preallocated ``images.npy`` (one write per chunk at the
chunk's offset), so no image array is pickled back. Workers end with the command that started
them, even when it is SIGKILLed (see :func:`_end_with_parent`).

Reliability: one writer per cache (``.<name>.lock`` beside it, :mod:`sphereviz.locks`; a
second ``prepare-faces`` into the same ``--out`` refuses and names the holder); every run,
also one that reuses the cache, first puts back a cache left hidden by a crash between the two
renames of a rebuild and removes what killed builds left. The space needed is checked before
writing and the file's blocks are allocated up front (``posix_fallocate``); nothing is written
through a memory map, so a full disk is an ``OSError`` with a message, never a SIGBUS. Images
that decode but cannot hold a face (too small, landmarks off the image or with coincident
eyes, a crop almost all one colour) are skipped and counted by reason in the manifest.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from sphereviz.data.align import (
    CROP_SHAPE,
    CROPS,
    REFERENCE_POINTS,
    LandmarkFrame,
    UnreadableImageError,
    check_crop_not_uniform,
    load_face_crop,
    read_landmarks,
)
from sphereviz.data.arrays import ArrayDataset
from sphereviz.data.faces import CASIA_LFW_OVERLAP, FaceFolder
from sphereviz.data.readers import CropReader, file_stamp
from sphereviz.data.sources import FaceSource, open_face_source
from sphereviz.errors import report_error
from sphereviz.fileio import (
    check_free_space,
    check_regular_file,
    check_writable_folder,
    chmod_as_umask,
    print_json_summary,
    read_text_file,
)
from sphereviz.locks import FolderLock
from sphereviz.validation import check_choice

CACHE_FORMAT = "sphereviz-face-cache"
CACHE_VERSION = 1
MANIFEST_NAME = "manifest.json"
_ARRAY_FILES = ("images.npy", "labels.npy", "identity_names.npy", "paths.npy")


_ALIGNMENT = {
    "recordio": "packed 112×112, columns 8…103 (ArcFace template = SphereFace's + 8 px in x)",
    "zip": "5-point similarity",
}


class SkippedImagesWarning(UserWarning):
    """Some images could not be decoded (or had no landmarks) and were left out."""


@dataclass(frozen=True, eq=False)
class FaceCache(ArrayDataset):
    """A prepared face cache: an :class:`ArrayDataset` (images memory-mapped) plus provenance.

    Attributes beyond the dataset's: ``paths`` (each image's path relative to the face root),
    ``manifest`` (the parsed ``manifest.json``), ``directory`` (the cache folder) and ``reused``
    (whether the last :func:`prepare_faces` call found it up to date).
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
    """Open a cache written by :func:`prepare_faces`; ``images`` is a read-only memory map."""
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
            f"{directory}: damaged face cache (images {images.shape}, {len(labels)} labels, "
            f"{len(paths)} paths; manifest says {expected_shape}); rebuild it"
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


# ---------------------------------------------------------------------------------------------
# Decoding + alignment of many images, in worker processes.


def _init_worker(parent_pid: int | None = None) -> None:
    import cv2

    cv2.setNumThreads(0)  # one process per core; OpenCV's own threads would only compete
    if parent_pid is not None:
        _end_with_parent(parent_pid)


PARENT_POLL_SECONDS = 0.5
"""How often a worker checks that the process that started the pool still runs."""


def _end_with_parent(parent_pid: int) -> None:
    """Make this worker exit when ``parent_pid`` (the command that started the pool) ends.

    A SIGKILLed parent runs no cleanup, and pool workers are children of the forkserver, not
    of the parent, so nothing would stop them. On Linux the kernel sends SIGKILL when the
    worker's own parent (the forkserver) dies (``prctl(PR_SET_PDEATHSIG)``), and a daemon
    thread polls ``parent_pid`` every :data:`PARENT_POLL_SECONDS`, ending the worker with
    ``os._exit`` once it is gone (or a zombie). The forkserver and the resource tracker then
    see their pipes close and exit too.
    """
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while _process_running(parent_pid):
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="sphereviz-parent-watch", daemon=True).start()


def _process_running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed but not yet reaped, counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def _align_chunk(
    paths: Sequence[str],
    landmarks: np.ndarray | None,
    landmark_frame: LandmarkFrame,
    reader: CropReader | None = None,
    crop: str = "window",
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Crops of ``paths`` (zeros where one fails) and the ``(position, reason)`` failures.

    With a ``reader`` (a packed or zip source's), ``paths`` are that reader's items; ``crop``
    is the centre crop of images without landmarks (:data:`~sphereviz.data.align.CROPS`).
    """
    import cv2

    if reader is not None:
        return reader.read_crops(paths, landmarks, landmark_frame)
    crops = np.zeros((len(paths), *CROP_SHAPE), dtype=np.uint8)
    failures = []
    for position, path in enumerate(paths):
        points = None if landmarks is None else landmarks[position]
        try:
            face = load_face_crop(path, points, landmark_frame, crop)
            check_crop_not_uniform(face)
            crops[position] = face
        except (UnreadableImageError, ValueError, cv2.error) as error:
            failures.append((position, str(error)))
    return crops, failures


def _write_rows(output_path: str, data_offset: int, start: int, rows: np.ndarray) -> None:
    """Write ``rows`` over rows ``start…`` of the ``.npy`` whose data begins at ``data_offset``.

    One ``write`` per chunk instead of page-faulting a memory map row by row.
    """
    with open(output_path, "r+b") as file:
        file.seek(data_offset + start * rows[0].nbytes)
        file.write(memoryview(np.ascontiguousarray(rows)).cast("B"))


def _align_and_write(
    output_path: str,
    data_offset: int,
    start: int,
    paths: Sequence[str],
    landmarks: np.ndarray | None,
    landmark_frame: LandmarkFrame,
    reader: CropReader | None = None,
    crop: str = "window",
) -> tuple[int, list[tuple[int, str]]]:
    """Worker task: align a chunk and write it into the output file; only failures go back."""
    crops, failures = _align_chunk(paths, landmarks, landmark_frame, reader, crop)
    if len(crops):
        _write_rows(output_path, data_offset, start, crops)
    return len(paths), [(start + position, reason) for position, reason in failures]


def default_workers() -> int:
    """The cores this process may use (at most 16)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 16))


def _pool_context() -> multiprocessing.context.BaseContext:
    # forkserver: safe in a multi-threaded parent (Jupyter, torch), cheap to start on Linux.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def create_crop_file(path: str | os.PathLike, count: int) -> int:
    """Create a zero-filled ``count×112×96×3`` ``uint8`` ``.npy``; return its data offset.

    The data blocks are reserved at once (``posix_fallocate``), so a disk too small for the
    cache is an ``OSError`` (ENOSPC) here, before any decoding, instead of a sparse file whose
    later writes fail (or, written through a memory map, kill the process with SIGBUS).
    """
    return _create_npy(path, (count, *CROP_SHAPE))


def _create_npy(path: str | os.PathLike, shape: tuple[int, ...]) -> int:
    """A uint8 ``.npy`` of ``shape`` with its blocks allocated; returns the data offset."""
    header = {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)}
    nbytes = math.prod(shape)
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(file, header)
        offset = file.tell()
        if nbytes:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(file.fileno(), offset, nbytes)
            else:
                file.truncate(offset + nbytes)
    return offset


def align_to_file(
    output_path: str | os.PathLike,
    data_offset: int,
    paths: Sequence[str | os.PathLike],
    landmarks: np.ndarray | None = None,
    landmark_frame: LandmarkFrame = None,
    workers: int | None = None,
    progress: bool = True,
    description: str = "aligning faces",
    reader: CropReader | None = None,
    crop: str = "window",
) -> list[tuple[int, str]]:
    """Decode and align ``paths`` into the ``.npy`` made by :func:`create_crop_file`.

    ``landmarks`` is ``None`` (the ``crop`` centre crop for every image, see
    :func:`~sphereviz.data.align.center_crop_matrix`) or ``N×5×2``. Chunks of images go
    to ``workers`` processes (1: this process), each writing its crops straight into the file.
    With a ``reader`` (:class:`~sphereviz.data.readers.CropReader`), ``paths`` are its items
    (records, zip members), read by it a chunk per call. Returns the failures as ``(index,
    reason)``; their rows stay zero.
    """
    output_path = str(output_path)
    paths = [os.fspath(path) for path in paths] if reader is None else list(paths)
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    count = len(paths)
    chunk = max(16, min(256, math.ceil(count / (workers * 8)))) if count else 1
    tasks = [
        (
            output_path,
            data_offset,
            start,
            paths[start : start + chunk],
            None if landmarks is None else landmarks[start : start + chunk],
            landmark_frame,
            reader,
            crop,
        )
        for start in range(0, count, chunk)
    ]
    failures: list[tuple[int, str]] = []
    bar = tqdm(total=count, desc=description, unit="img", disable=None if progress else True)
    try:
        if workers == 1 or len(tasks) <= 1:
            for task in tasks:
                done, chunk_failures = _align_and_write(*task)
                failures += chunk_failures
                bar.update(done)
        else:
            executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=min(workers, len(tasks)),
                mp_context=_pool_context(),
                initializer=_init_worker,
                initargs=(os.getpid(),),
            )
            try:
                futures = [executor.submit(_align_and_write, *task) for task in tasks]
                for future in concurrent.futures.as_completed(futures):
                    done, chunk_failures = future.result()
                    failures += chunk_failures
                    bar.update(done)
            finally:
                executor.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()
    return sorted(failures)


def align_images(
    paths: Sequence[str | os.PathLike],
    landmarks: np.ndarray | None = None,
    landmark_frame: LandmarkFrame = None,
    workers: int | None = 1,
    progress: bool = False,
) -> np.ndarray:
    """Decode and align a list of images into an in-memory ``uint8`` ``N×112×96×3`` RGB array.

    ``landmarks``: ``None`` (centre crop) or ``N×5×2`` (x, y) in ``landmark_frame`` (see
    :func:`sphereviz.data.align.scale_landmarks`). Every image must decode: a failure raises
    :class:`~sphereviz.data.align.UnreadableImageError` naming the files (an evaluation set
    with holes would be silently wrong).
    """
    paths = [str(path) for path in paths]
    if landmarks is not None:
        landmarks = np.asarray(landmarks, dtype=np.float32).reshape(-1, 5, 2)
        if len(landmarks) != len(paths):
            raise ValueError(f"got {len(paths)} paths but {len(landmarks)} landmark sets")
    if not paths:
        return np.zeros((0, *CROP_SHAPE), dtype=np.uint8)
    with tempfile.TemporaryDirectory(prefix="sphereviz-align-") as scratch:
        output_path = Path(scratch) / "images.npy"
        offset = create_crop_file(output_path, len(paths))
        failures = align_to_file(
            output_path, offset, paths, landmarks, landmark_frame, workers, progress, "aligning"
        )
        if failures:
            names = "; ".join(reason for _, reason in failures[:5])
            raise UnreadableImageError(f"{len(failures)} of {len(paths)} images failed: {names}")
        return np.array(np.load(output_path, mmap_mode="r"))


# ---------------------------------------------------------------------------------------------
# The cache.


def _content_hash(
    folder: FaceFolder | FaceSource, landmarks_stamp: dict | None, parameters: dict
) -> str:
    digest = hashlib.sha256()
    header = {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "root": str(Path(folder.root).resolve()),
        "landmarks": landmarks_stamp,
        "parameters": parameters,
        "crop": list(CROP_SHAPE),
        "reference_points": REFERENCE_POINTS.tolist(),
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    for face in folder.files:
        digest.update(f"\n{face.relative_path}\t{face.size}\t{face.mtime_ns}".encode())
    return digest.hexdigest()


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


BUILD_OWNER_NAME = "build-owner.json"
ABANDONED_AFTER_SECONDS = 3600
"""A build folder without an owner record counts as abandoned when untouched this long."""


def _start_build_folder(out: Path) -> Path:
    """A fresh hidden sibling of ``out`` to build in, recording this process as its owner."""
    _remove_abandoned_builds(out)
    building = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    chmod_as_umask(building, directory=True)  # mkdtemp makes 0700 whatever the umask
    owner = {"pid": os.getpid(), "host": socket.gethostname()}
    (building / BUILD_OWNER_NAME).write_text(json.dumps(owner))
    return building


def _remove_abandoned_builds(out: Path) -> list[Path]:
    """Remove the temporary siblings of ``out`` that a killed build left behind; return them.

    ``.<name>.building-*``: abandoned when the process in its owner record no longer runs on
    this host, or, with no readable record (killed before writing it), when untouched for an
    hour; a build still running, here or on another host sharing the folder, is left alone.
    ``.<name>.old-*``: the replaced cache of a finished build, garbage once ``out`` exists.
    """
    removed = []
    for candidate in out.parent.glob(f".{out.name}.building-*"):
        finished = (candidate / MANIFEST_NAME).is_file() and not (
            candidate / BUILD_OWNER_NAME
        ).exists()  # complete but never moved into place: a crash between the renames
        if finished or _build_is_abandoned(candidate):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    if out.exists():
        for candidate in out.parent.glob(f".{out.name}.old-*"):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def _build_is_abandoned(building: Path) -> bool:
    try:
        owner = json.loads((building / BUILD_OWNER_NAME).read_text())
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        try:
            return time.time() - building.stat().st_mtime > ABANDONED_AFTER_SECONDS
        except OSError:
            return False
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def _recover_interrupted_replacement(out: Path) -> Path | None:
    """Put a cache back at ``out`` after a crash between the two renames of a rebuild.

    Called with the cache's lock held. With ``out`` missing, a finished build (its owner
    record already removed, a manifest written: the state just before the renames) becomes
    ``out``; failing that, the replaced old cache ``.<name>.old-*`` is moved back. Returns
    the folder restored, or None. The leftovers are removed afterwards by
    :func:`_remove_abandoned_builds`.
    """
    if out.exists() or out.is_symlink():
        return None
    finished = [
        folder
        for folder in out.parent.glob(f".{out.name}.building-*")
        if not (folder / BUILD_OWNER_NAME).exists() and (folder / MANIFEST_NAME).is_file()
    ]
    old = list(out.parent.glob(f".{out.name}.old-*"))
    for candidate in sorted(finished, key=_mtime, reverse=True) + sorted(
        old, key=_mtime, reverse=True
    ):
        try:
            load_face_cache(candidate)
        except (OSError, ValueError, KeyError):
            continue
        os.rename(candidate, out)
        return candidate
    return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _replace_directory(new: Path, out: Path) -> None:
    """Move the finished build ``new`` to ``out``, replacing an old cache there."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(out, old)
    os.rename(new, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def prepare_faces(
    root: str | os.PathLike,
    out: str | os.PathLike,
    landmarks: str | os.PathLike | None = None,
    landmark_frame: LandmarkFrame = None,
    identities: Sequence[str] | None = None,
    top_k_identities: int | None = None,
    min_images_per_identity: int = 1,
    max_images_per_identity: int | None = None,
    exclude: Sequence[str] = CASIA_LFW_OVERLAP,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    force: bool = False,
    crop: str = "window",
) -> FaceCache:
    """Decode, align and cache the faces of ``root/<identity>/<image>`` into the folder ``out``.

    ``root`` may also be one of the packed CASIA-WebFace forms (found by
    :func:`~sphereviz.data.sources.detect_form`): a folder with insightface's ``train.rec`` +
    ``train.idx`` (:mod:`~sphereviz.data.recordio`; ``landmarks`` must be ``None``) or a
    ``.zip`` whose landmark list ``landmarks`` is (:mod:`~sphereviz.data.casia_zip`). The
    manifest records the form (``inputs.form``); damaged records and members are skipped as
    unreadable images are.

    Selection options are :class:`~sphereviz.data.faces.FaceFolder`'s. With a ``landmarks``
    file (LFW's format, see :func:`~sphereviz.data.align.read_landmarks`; ``landmark_frame``
    the image size the landmarks were measured on), every image is aligned by the 5-point
    similarity transform and images without a landmark line are skipped; without one, every
    image gets the fixed centre crop ``crop``: "window" (LFW's average alignment, for
    face-detector crops such as LFW and CASIA-WebFace) or "whole" (faces that fill the image
    already, such as the ORL faces: all of the image at the crop's aspect). Unreadable images
    are skipped, counted, named in a :class:`SkippedImagesWarning` and listed in the manifest.

    Returns the cache (``reused=True`` when an up-to-date cache was found and nothing was
    decoded). ``force=True`` rebuilds regardless.

    ``workers`` processes (default: every core) decode in parallel. They are started with
    ``forkserver`` (``spawn`` off Linux), so a *script* that calls this with more than one
    worker needs the usual ``if __name__ == "__main__":`` guard; notebooks and the
    ``sphereviz prepare-faces`` command need nothing.
    """
    started = time.perf_counter()
    out = Path(out)
    folder = open_face_source(
        root,
        landmarks=landmarks,
        identities=identities,
        top_k_identities=top_k_identities,
        min_images_per_identity=min_images_per_identity,
        max_images_per_identity=max_images_per_identity,
        exclude=exclude,
        seed=seed,
    )
    inputs = _describe_inputs(folder, landmarks, landmark_frame, crop)
    check_writable_folder(out.parent, "face cache folder")
    with FolderLock(out, "face cache"):
        _recover_interrupted_replacement(out)
        _remove_abandoned_builds(out)  # on every run, also one that reuses the cache
        if _existing_cache_hash(out) == inputs.content_hash and not force:
            return dataclasses.replace(load_face_cache(out), reused=True)
        work = _select_work(folder, inputs.landmarks_path, inputs.landmark_frame)
        out.parent.mkdir(parents=True, exist_ok=True)
        crop_bytes = math.prod(CROP_SHAPE)
        check_free_space(
            out.parent, len(work.positions) * crop_bytes + 2**20,
            f"a cache of {len(work.positions)} faces",
        )  # fmt: skip
        building = _start_build_folder(out)
        try:
            built = _align_into(building, folder, work, inputs, workers, progress)
            manifest = _manifest(folder, inputs, built, time.perf_counter() - started)
            (building / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
            (building / BUILD_OWNER_NAME).unlink()
            _replace_directory(building, out)
        finally:
            if building.exists():
                shutil.rmtree(building, ignore_errors=True)
        _warn_about_skipped(folder, built.skipped, out)
        return load_face_cache(out)


@dataclass(frozen=True)
class _Inputs:
    """What a cache is built from and its content hash (the cache is reused when it matches)."""

    landmarks_path: Path | None
    landmark_frame: LandmarkFrame
    crop: str
    landmarks_stamp: dict | None
    source_stamp: dict | None
    parameters: dict
    content_hash: str


def _describe_inputs(folder, landmarks, landmark_frame: LandmarkFrame, crop: str) -> _Inputs:
    """Check the landmark and crop options; stamp the landmark file (and a packed source's
    files), collect the parameters and hash them with the selected files' sizes and times."""
    crop = check_choice("crop", crop, CROPS)
    landmarks_path = None if landmarks is None else Path(landmarks)
    if landmarks_path is not None:
        check_regular_file(landmarks_path, "landmark file")
    if landmarks_path is None and landmark_frame is not None:
        raise ValueError("landmark_frame only makes sense with a landmarks file")
    if crop == "whole" and (landmarks_path is not None or folder.form != "folder"):
        raise ValueError(
            "crop 'whole' is for a folder of images without landmarks; with landmarks (or a "
            "packed form) the faces are aligned, so leave the crop at 'window'"
        )
    centre = "centre crop" if crop == "window" else "whole image"
    folder_alignment = "5-point similarity" if landmarks_path else centre
    parameters = {
        **folder.parameters(),
        "landmark_frame": landmark_frame,
        "alignment": _ALIGNMENT.get(folder.form, folder_alignment),
    }
    landmarks_stamp = None if landmarks_path is None else file_stamp(landmarks_path)
    source_stamp = None
    inputs_stamp = landmarks_stamp
    if folder.form != "folder":
        parameters["form"] = folder.form
        source_stamp = folder.stamp()
        inputs_stamp = {"landmarks": landmarks_stamp, "source_files": source_stamp}
    content_hash = _content_hash(folder, inputs_stamp, parameters)
    return _Inputs(
        landmarks_path, landmark_frame, crop, landmarks_stamp, source_stamp, parameters,
        content_hash,
    )  # fmt: skip


@dataclass
class _Work:
    """The selected images that go to the workers: their positions in the source, the
    reader's reference to each (None: the folder's file paths), their landmarks, the reader,
    and the images already skipped (no landmark line, missing from a packed file)."""

    positions: list[int]
    items: list | None
    points: np.ndarray | None
    reader: CropReader | None
    skipped: list[dict]


def _select_work(folder, landmarks_path: Path | None, landmark_frame: LandmarkFrame) -> _Work:
    if folder.form != "folder":
        work = folder.work()
        return _Work(work.positions, work.items, work.landmarks, work.reader, list(work.skipped))
    positions = list(range(len(folder)))
    if landmarks_path is None:
        return _Work(positions, None, None, None, [])
    relative_paths = folder.relative_paths
    table = read_landmarks(landmarks_path, landmark_frame)
    skipped = [
        {"path": relative_paths[i], "reason": f"no landmarks in {landmarks_path.name}"}
        for i in positions
        if relative_paths[i] not in table
    ]
    positions = [i for i in positions if relative_paths[i] in table]
    points = np.stack([table[relative_paths[i]] for i in positions]) if positions else None
    return _Work(positions, None, points, None, skipped)


@dataclass
class _Built:
    """What :func:`_align_into` wrote: the kept images' labels (renumbered over the identities
    that kept an image), those identities' names, the identities left without one, and every
    skipped image (sorted by path)."""

    labels: np.ndarray
    names: list[str]
    dropped: list[str]
    skipped: list[dict]


def _align_into(building: Path, folder, work: _Work, inputs: _Inputs, workers, progress) -> _Built:
    """Align the work into ``building/images.npy`` (failures compacted away) and write the
    labels, identity names and paths beside it."""
    relative_paths, positions = folder.relative_paths, work.positions
    images_path = building / "images.npy"
    offset = create_crop_file(images_path, len(positions))
    items = work.items
    if items is None:
        root_text = os.fspath(folder.root)
        items = [os.path.join(root_text, relative_paths[i]) for i in positions]
    failures = align_to_file(
        images_path, offset, items, work.points, inputs.landmark_frame, workers, progress,
        reader=work.reader, crop=inputs.crop,
    )  # fmt: skip
    failed = {index for index, _ in failures}
    skipped = work.skipped + [
        {"path": relative_paths[positions[index]], "reason": reason} for index, reason in failures
    ]
    kept = [i for position, i in enumerate(positions) if position not in failed]
    if not kept:
        raise ValueError(
            f"none of the {len(folder)} selected images under {folder.root} could be "
            f"decoded and aligned (e.g. {skipped[0]['reason'] if skipped else '?'})"
        )
    if failed:
        _compact(images_path, [p for p in range(len(positions)) if p not in failed])
    labels = folder.labels[kept]
    present = np.unique(labels)
    present_set = set(present.tolist())
    dropped = [name for k, name in enumerate(folder.identity_names) if k not in present_set]
    names = [folder.identity_names[k] for k in present]
    labels = np.searchsorted(present, labels).astype(np.int64)
    np.save(building / "labels.npy", labels)
    np.save(building / "identity_names.npy", np.array(names, dtype=str))
    np.save(building / "paths.npy", np.array([relative_paths[i] for i in kept], dtype=str))
    skipped.sort(key=lambda item: item["path"])
    return _Built(labels, names, dropped, skipped)


def _manifest(folder, inputs: _Inputs, built: _Built, seconds: float) -> dict:
    """``manifest.json``: format, content hash, inputs, parameters, counts, every skip."""
    names, labels, skipped = built.names, built.labels, built.skipped
    return {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "content_hash": inputs.content_hash,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs": {
            "root": str(Path(folder.root).resolve()),
            "form": folder.form,
            "landmarks": inputs.landmarks_stamp,
            "source_files": inputs.source_stamp,
            "selected_files": len(folder),
        },
        "parameters": inputs.parameters,
        "shape": [len(labels), *CROP_SHAPE],
        "counts": {
            "images": len(labels),
            "identities": len(names),
            "skipped": len(skipped),
            "skipped_by_reason": skip_reasons(skipped),
            "empty_identities": len(folder.empty_identities),
            "excluded_identities": len(folder.excluded_identities),
            "dropped_identities": len(built.dropped),
        },
        "images_per_identity": dict(zip(names, np.bincount(labels).tolist(), strict=True)),
        "skipped": skipped,
        "empty_identities": folder.empty_identities,
        "excluded_identities": folder.excluded_identities,
        "dropped_identities": built.dropped,
        "skipped_links": getattr(folder, "skipped_links", []),
        "build_seconds": round(seconds, 3),
    }


def _warn_about_skipped(folder, skipped: list[dict], out: Path) -> None:
    """A :class:`SkippedImagesWarning` for skipped folder links and for skipped images,
    pointing at the caller of :func:`prepare_faces` (stacklevel 3)."""
    if getattr(folder, "skipped_links", []):
        warnings.warn(
            "skipped folder links: "
            + ", ".join(f"{item['path']} ({item['reason']})" for item in folder.skipped_links)
            + f"; listed in {out / MANIFEST_NAME}",
            SkippedImagesWarning,
            stacklevel=3,
        )
    if skipped:
        shown = ", ".join(f"{item['path']} ({item['reason']})" for item in skipped[:10])
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        warnings.warn(
            f"skipped {len(skipped)} of {len(folder)} images: {shown}{more}; "
            f"all are listed in {out / MANIFEST_NAME}",
            SkippedImagesWarning,
            stacklevel=3,
        )


SKIP_KINDS = ("no landmarks", "not a face", "unreadable")


def skip_reasons(skipped: list[dict]) -> dict[str, int]:
    """``{"no landmarks": n, "not a face": n, "unreadable": n}`` over the skipped images."""
    counts = dict.fromkeys(SKIP_KINDS, 0)
    for item in skipped:
        reason = item["reason"]
        kind = next((k for k in SKIP_KINDS[:2] if reason.startswith(k)), "unreadable")
        counts[kind] += 1
    return counts


def _compact(images_path: Path, keep: list[int]) -> None:
    """Rewrite ``images.npy`` with only the rows in ``keep`` (in chunks, never all in memory).

    Written with ``write`` into preallocated blocks, never through a memory map: a full disk
    is an ``OSError``, not a SIGBUS.
    """
    source = np.load(images_path, mmap_mode="r")
    compact_path = images_path.with_name("images.compact.npy")
    check_free_space(compact_path.parent, len(keep) * source[0].nbytes, "the compacted images")
    offset = _create_npy(compact_path, (len(keep), *source.shape[1:]))
    for start in range(0, len(keep), 4096):
        _write_rows(str(compact_path), offset, start, source[keep[start : start + 4096]])
    del source
    os.replace(compact_path, images_path)


# ---------------------------------------------------------------------------------------------
# The command.


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sphereviz prepare-faces",
        description=(
            "Decode, align (5-point similarity to SphereFace's 112×96 crop) and cache a face "
            "folder root/<identity>/<image> as memory-mappable .npy arrays. A second run with "
            "the same inputs reuses the cache."
        ),
    )
    parser.add_argument(
        "--root",
        required=True,
        help="face folder root/<identity>/<image>; or a folder with insightface's train.rec + "
        "train.idx (112×112, cropped to 112×96); or a .zip (with --landmarks: its list)",
    )
    parser.add_argument("--out", required=True, help="cache folder to write")
    parser.add_argument(
        "--landmarks",
        help="5-point landmark file: LFW format for a folder (else centre crop); for a zip its "
        "list '<path>\\t<class id>\\t<x1>\\t<y1>…<y5>' (required)",
    )
    parser.add_argument(
        "--landmark-frame",
        type=int,
        help="image size the landmarks were measured on (250 for LFW's file); default: as is",
    )
    parser.add_argument(
        "--crop",
        choices=CROPS,
        default="window",
        help="without landmarks: 'window' (default) takes LFW's average face window, for "
        "face-detector crops such as LFW and CASIA-WebFace; 'whole' keeps all of each image, "
        "for faces that fill the frame already (e.g. the ORL faces)",
    )
    parser.add_argument("--top-k-identities", type=int, help="keep the K largest identities")
    parser.add_argument("--min-images", type=int, default=1, help="min images per identity")
    parser.add_argument("--max-images", type=int, help="max images per identity (random subset)")
    parser.add_argument("--identities", help="comma-separated identity folder names to keep")
    parser.add_argument(
        "--keep-lfw-overlap",
        action="store_true",
        help=f"keep the CASIA identities that overlap LFW ({', '.join(CASIA_LFW_OVERLAP)})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the --max-images subset")
    parser.add_argument("--workers", type=int, help="worker processes (default: all cores)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--json", action="store_true", help="print a JSON summary last")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    identities = None
    if args.identities:
        identities = [name.strip() for name in args.identities.split(",") if name.strip()]
    try:
        cache = prepare_faces(
            args.root,
            args.out,
            landmarks=args.landmarks,
            landmark_frame=args.landmark_frame,
            identities=identities,
            top_k_identities=args.top_k_identities,
            min_images_per_identity=args.min_images,
            max_images_per_identity=args.max_images,
            exclude=() if args.keep_lfw_overlap else CASIA_LFW_OVERLAP,
            seed=args.seed,
            workers=args.workers,
            progress=True,
            force=args.force,
            crop=args.crop,
        )
    except (ValueError, OSError) as error:
        return report_error("prepare-faces", error, status=1 if isinstance(error, OSError) else 2)
    seconds = time.perf_counter() - started
    counts = cache.manifest["counts"]
    verb = "reused" if cache.reused else "wrote"
    reasons = counts.get("skipped_by_reason") or {}
    why = ", ".join(f"{n} {kind}" for kind, n in reasons.items() if n)
    print(
        f"{verb} {cache.directory}: {counts['images']} images of {counts['identities']} "
        f"identities, shape {list(cache.images.shape)}, {counts['skipped']} skipped"
        f"{f' ({why})' if why else ''}, {seconds:.2f} s"
    )
    if args.json:
        print_json_summary(
            {
                "images": counts["images"],
                "identities": counts["identities"],
                "skipped": counts["skipped"],
                "skipped_by_reason": counts.get("skipped_by_reason", {}),
                "shape": list(cache.images.shape),
                "seconds": round(seconds, 3),
                "reused": cache.reused,
                "out": str(cache.directory),
            }
        )
    return 0
