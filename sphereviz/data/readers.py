"""What the readers of the packed face forms share with the cache builder.

:class:`Work` is what a non-folder source (:mod:`.recordio`, :mod:`.casia_zip`) hands
:mod:`sphereviz.data.prepare`: the selected images and a picklable :class:`CropReader` that the
worker processes call. :func:`decode_bgr` decodes image bytes as
:func:`~sphereviz.data.align.decode_image_bgr` decodes files. The readers and
:mod:`.sources`, which opens them, both import this module, never each other at module level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from sphereviz.data.align import CROP_SHAPE, LandmarkFrame, UnreadableImageError

__all__ = ["CropReader", "Work", "decode_bgr", "empty_crops", "file_stamp"]


class CropReader(Protocol):
    """A picklable reader that a worker process calls once per chunk of many images."""

    def read_crops(
        self, items: Sequence, landmarks: np.ndarray | None, landmark_frame: LandmarkFrame
    ) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """``len(items)×112×96×3`` RGB crops (zeros where one fails) and the ``(position,
        reason)`` failures, each reason naming the file and the offset or member."""


@dataclass(frozen=True)
class Work:
    """What a non-folder source hands the cache builder.

    ``positions``: the selected images (indices into ``relative_paths``) that go to the
    workers; ``items``: the reader's reference to each; ``landmarks``: ``len(positions)×5×2``
    or ``None``; ``skipped``: ``{"path", "reason"}`` of selected images known to be missing
    before any decoding; ``reader``: the :class:`CropReader`.
    """

    positions: list[int]
    items: list
    landmarks: np.ndarray | None
    skipped: list[dict]
    reader: CropReader


def decode_bgr(data: bytes | memoryview, where: str) -> np.ndarray:
    """Decode image bytes into ``uint8`` ``H×W×3`` BGR (grey replicated), as
    :func:`~sphereviz.data.align.decode_image_bgr` does for files; ``where`` names the file
    and offset or member in the :class:`~sphereviz.data.align.UnreadableImageError`."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    if not len(buffer):
        raise UnreadableImageError(f"{where}: empty image")
    if buffer[0] == 0xFF and buffer[1] == 0xD8:
        end = len(buffer)
        while end > 2 and buffer[end - 1] == 0:
            end -= 1
        if buffer[end - 2] != 0xFF or buffer[end - 1] != 0xD9:
            raise UnreadableImageError(f"{where}: truncated JPEG (no end-of-image marker)")
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if image is None:
        raise UnreadableImageError(f"{where}: not a decodable image")
    return image


def empty_crops(count: int) -> np.ndarray:
    return np.zeros((count, *CROP_SHAPE), dtype=np.uint8)


def file_stamp(path: Path) -> dict:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
