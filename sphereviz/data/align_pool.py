"""Decoding and aligning many images in worker processes, into a preallocated crop file.

:func:`create_crop_file` makes the ``.npy`` (blocks allocated up front, ``posix_fallocate``);
:func:`align_to_file` sends chunks of images to worker processes, each writing its chunk of
crops straight into the file (one write per chunk at the chunk's offset), so no image array is
pickled back and nothing is written through a memory map: a full disk is an ``OSError`` with a
message, never a SIGBUS. Workers (spawned) end with the command that started them, even when it
is SIGKILLed (:func:`~sphereviz.worker_pool.end_with_parent`). :func:`align_images` is the
in-memory form, for an evaluation set.
"""

from __future__ import annotations

import concurrent.futures
import math
import multiprocessing
import os
import signal
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from sphereviz.data.align import (
    CROP_SHAPE,
    LandmarkFrame,
    UnreadableImageError,
    check_crop_not_uniform,
    load_face_crop,
)
from sphereviz.data.readers import CropReader
from sphereviz.worker_pool import end_with_parent


def _init_worker(parent_pid: int | None = None) -> None:
    import cv2

    cv2.setNumThreads(0)  # one process per core; OpenCV's own threads would only compete
    if parent_pid is not None:
        end_with_parent(parent_pid, signal.SIGKILL)  # nothing to unwind: the chunk is rewritten


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
                mp_context=multiprocessing.get_context("spawn"),  # no torch: see worker_pool
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
