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
non-folder sources add :meth:`FaceSource.work`, which returns what the worker processes need
(:class:`~sphereviz.data.readers.Work`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from sphereviz.data.faces import CASIA_LFW_OVERLAP, FaceFile, FaceFolder
from sphereviz.data.readers import Work

FORMS = ("folder", "recordio", "zip")


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
