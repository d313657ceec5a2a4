"""The forms a face set comes in, behind one small interface, and how a root's form is found.

A *source* lists the images of one form, applies the shared subset selection
(:class:`~sphereviz.data.faces.SelectedFaces`) and tells :mod:`sphereviz.data.prepare` how
its images are read:

========== ============================================ =========================================
form       what ``--root`` is                           how an image becomes the 112×96 crop
========== ============================================ =========================================
folder     ``root/<identity>/<image>`` (CASIA official) decode; 5-point similarity (with
                                                        ``--landmarks``) or the centre crop
recordio   a folder with ``train.rec`` + ``train.idx``  decode; columns 8…104 of the pre-aligned
           (insightface's ``faces_webface_112x112``)    112×112 image (:mod:`.recordio`)
zip        a ``.zip`` (+ ``--landmarks`` list with      read the member without extracting;
           class ids, the PyTorch port's form)          5-point similarity (:mod:`.casia_zip`)
========== ============================================ =========================================

Every source has the attributes of :class:`~sphereviz.data.faces.FaceFolder` that the cache
builder reads (``root``, ``form``, ``identity_names``, ``labels``, ``relative_paths``,
``files``, ``empty_identities``, ``excluded_identities``, ``parameters()``, ``len``); the
non-folder sources add :meth:`FaceSource.work`, which returns what the worker processes need.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from sphereviz.data.align import CROP_SHAPE, LandmarkFrame, UnreadableImageError
from sphereviz.data.faces import CASIA_LFW_OVERLAP, FaceFile, FaceFolder

FORMS = ("folder", "recordio", "zip")


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


class FaceSource(Protocol):
    """A selected face set of one form (see the module docstring)."""

    form: str
    root: Path
    identity_names: list[str]
    labels: np.ndarray
    files: list[FaceFile]
    empty_identities: list[str]
    excluded_identities: list[str]

    def __len__(self) -> int: ...

    @property
    def relative_paths(self) -> list[str]: ...

    def parameters(self) -> dict: ...

    def stamp(self) -> dict:
        """Size and modification time of the source's own files (for the cache's hash)."""

    def work(self) -> Work: ...


def detect_form(root: str | os.PathLike) -> str:
    """``"zip"`` for a zip file, ``"recordio"`` for a ``.rec`` file or a folder holding
    ``train.rec``, ``"folder"`` for any other folder; a clear ``ValueError`` otherwise."""
    path = Path(root)
    if path.is_file():
        if path.suffix.lower() == ".zip":
            return "zip"
        if path.suffix.lower() == ".rec":
            return "recordio"
        raise ValueError(
            f"face root {path} is a file but neither a .zip nor a .rec; give a face folder "
            "root/<identity>/<image>, a folder with train.rec + train.idx, or a .zip"
        )
    if path.is_dir():
        return "recordio" if (path / "train.rec").is_file() else "folder"
    raise ValueError(
        f"face root {path} is not a directory, a .zip or a .rec (it does not exist); give a "
        "face folder root/<identity>/<image>, a folder with train.rec + train.idx "
        "(insightface), or a .zip with --landmarks"
    )


def open_face_source(
    root: str | os.PathLike,
    landmarks: str | os.PathLike | None = None,
    identities: Sequence[str] | None = None,
    top_k_identities: int | None = None,
    min_images_per_identity: int = 1,
    max_images_per_identity: int | None = None,
    exclude: Sequence[str] = CASIA_LFW_OVERLAP,
    seed: int = 0,
) -> FaceFolder | FaceSource:
    """The selected images of ``root`` in whichever form it is (:func:`detect_form`).

    ``landmarks``: for a folder, an optional LFW-format file (read by the cache builder); for
    a zip, the required landmark list ``<path>\\t<class id>\\t<x1>\\t<y1>…<y5>``; for RecordIO
    it must be ``None`` (the images are aligned already).
    """
    selection = {
        "identities": identities,
        "top_k_identities": top_k_identities,
        "min_images_per_identity": min_images_per_identity,
        "max_images_per_identity": max_images_per_identity,
        "exclude": exclude,
        "seed": seed,
    }
    form = detect_form(root)
    if form == "folder":
        return FaceFolder(root, **selection)
    if form == "recordio":
        from sphereviz.data.recordio import PackedFaces

        if landmarks is not None:
            raise ValueError(
                f"{root} holds insightface's packed images, aligned already to the 112×112 "
                "template; --landmarks does not apply to them: drop it"
            )
        return PackedFaces(root, **selection)
    from sphereviz.data.casia_zip import ZipFaces

    if landmarks is None:
        raise ValueError(
            f"{root} is a zip: give its landmark list with --landmarks (lines "
            "'<path in zip>\\t<class id>\\t<x1>\\t<y1>…<x5>\\t<y5>')"
        )
    return ZipFaces(root, landmarks, **selection)


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
