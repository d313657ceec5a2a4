"""CASIA-WebFace as the popular PyTorch port has it: ``CASIA-WebFace.zip`` plus a landmark list.

The landmark list (``casia_landmark.txt`` there) has one line per image::

    <path inside the zip>\\t<class id>\\t<x1>\\t<y1>\\t…\\t<x5>\\t<y5>

the five points in :data:`~sphereviz.data.align.LANDMARK_NAMES` order, in the pixel frame of
the image (250×250 for CASIA-WebFace). An image's identity is its parent folder, so a list may
name ``0000045/001.jpg`` or ``CASIA-WebFace/0000045/001.jpg`` (any top folders); a path with
no folder (``001.jpg``) takes its class id as its identity. The port's zip keeps the images
under a top folder (``CASIA-WebFace/0000045/001.jpg``); a path of the list that is not a
member as it stands is looked up under the zip's single top folder, and a list whose paths
carry a top folder that the zip lacks is matched by ``<identity>/<file>``.

Members are read straight from the zip (never extracted) in the worker processes, which
decode them and align them by the same 5-point similarity transform as the folder form
(:func:`~sphereviz.data.align.align_face`), so a zip and a folder of the same files give
bit-equal crops. A member that is missing, or that fails its CRC or decompression, is skipped
and counted, the reason naming the zip, the member and its header's byte offset.
"""

from __future__ import annotations

import functools
import os
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from sphereviz.data.align import (
    LandmarkFrame,
    UnreadableImageError,
    align_face,
    normalise_relative_path,
)
from sphereviz.data.faces import FaceFile, SelectedFaces
from sphereviz.data.readers import Work, decode_bgr, empty_crops, file_stamp


@dataclass(frozen=True)
class ListedImage:
    """One line of the landmark list."""

    path: str
    class_id: int
    landmarks: np.ndarray  # 5×2 (x, y), float32
    identity: str = ""  # the parent folder of ``path`` (else the class id); set by the reader


def listed_identity(image_path: str, class_id: int) -> str:
    """The identity of a listed image: its parent folder, else (no folder) its class id.

    ``CASIA-WebFace/0000045/001.jpg`` → ``0000045``; ``0000045/001.jpg`` → ``0000045``;
    ``001.jpg`` with class id 7 → ``7``.
    """
    parts = image_path.split("/")
    return parts[-2] if len(parts) > 1 else str(class_id)


def read_landmark_list(path: str | os.PathLike) -> list[ListedImage]:
    """Parse a landmark list ``<path>\\t<class id>\\t<x1>\\t<y1>…<y5>`` (tabs, or spaces).

    Blank lines are ignored; any other malformed line is a ``ValueError`` naming the file and
    line; so is an identity (the image's parent folder, :func:`listed_identity`) listed with
    two class ids.
    """
    path = Path(path)
    listed: list[ListedImage] = []
    class_of: dict[str, tuple[int, int]] = {}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            fields = [f.strip() for f in (line.split("\t") if "\t" in line else line.split())]
            fields = [f for f in fields if f]
            if not fields:
                continue
            if len(fields) != 12:
                raise ValueError(
                    f"{path}:{number}: expected '<path>\\t<class id>\\t<x1>\\t<y1>…<y5>' (12 "
                    f"fields), got {len(fields)}; an LFW-format file (no class id) goes with a "
                    "face folder, not a zip"
                )
            try:
                class_id = int(fields[1])
                points = np.array([float(v) for v in fields[2:]], dtype=np.float32)
            except ValueError as error:
                raise ValueError(f"{path}:{number}: not a number ({error})") from None
            image_path = normalise_relative_path(fields[0])
            identity = listed_identity(image_path, class_id)
            seen = class_of.setdefault(identity, (class_id, number))
            if seen[0] != class_id:
                raise ValueError(
                    f"{path}:{number}: identity {identity} has class id {class_id} here but "
                    f"{seen[0]} on line {seen[1]} (an identity is its images' folder); one "
                    "identity needs one class id"
                )
            listed.append(ListedImage(image_path, class_id, points.reshape(5, 2), identity))
    if not listed:
        raise ValueError(f"{path}: no lines found; expected '<path>\\t<class id>\\t<x1>…<y5>'")
    return listed


@functools.lru_cache(maxsize=2)
def _open_zip(path: str, size: int, mtime_ns: int) -> zipfile.ZipFile:
    """One open zip per worker process (reading the central directory of 494,414 members
    once, not once per chunk); the stamp in the key reopens a changed file."""
    return zipfile.ZipFile(path)


@dataclass(frozen=True)
class ZipReader:
    """Worker-side reader; an item is a member name. One call reads a chunk of members."""

    zip_path: str
    size: int
    mtime_ns: int

    def read_crops(
        self, items: Sequence[str], landmarks: np.ndarray | None, landmark_frame: LandmarkFrame
    ) -> tuple[np.ndarray, list[tuple[int, str]]]:
        archive = _open_zip(self.zip_path, self.size, self.mtime_ns)
        name = Path(self.zip_path).name
        crops = empty_crops(len(items))
        failures = []
        for position, member in enumerate(items):
            where = f"{name}:{member}"
            try:
                info = archive.getinfo(member)
                where = f"{name}:{member} (offset {info.header_offset})"
                data = archive.read(info)
                image = decode_bgr(data, where)
                crop = align_face(image, landmarks[position], landmark_frame)
                cv2.cvtColor(crop, cv2.COLOR_BGR2RGB, dst=crops[position])
            except KeyError:
                failures.append((position, f"{where}: no such member"))
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
                failures.append((position, f"{where}: unreadable member ({error})"))
            except (UnreadableImageError, cv2.error) as error:
                failures.append((position, str(error)))
            except ValueError as error:
                failures.append((position, f"{where}: {error}"))
        return crops, failures


def _find_member(path: str, members: dict, prefix: str) -> str | None:
    """The zip member of a listed path: as it stands, under the zip's single top folder
    ``prefix``, or (a list naming top folders the zip lacks) by its ``<identity>/<file>``."""
    tail = "/".join(path.split("/")[-2:])
    for candidate in (path, prefix + path, tail, prefix + tail):
        if candidate in members:
            return candidate
    return None


@dataclass
class _ZipArguments:
    """:class:`ZipFaces`'s two positional arguments. A dataclass orders its fields from the
    last base to the first, so as the last base these come ahead of the selection options."""

    root: str | os.PathLike
    landmark_list: str | os.PathLike


@dataclass
class ZipFaces(SelectedFaces, _ZipArguments):
    """The images of a zip + landmark list, with :class:`FaceFolder`'s selection.

    Identity names are the images' parent folders (``0000045``, whatever top folders the list
    names); labels, as for folders, are the positions of the selected identities in sorted name
    order (the list's class ids are checked for consistency, one per identity, and kept in
    ``class_ids``).
    """

    form: str = field(default="zip", init=False)
    class_ids: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.landmark_list = Path(self.landmark_list)
        self._validate_selection()
        if not self.landmark_list.is_file():
            raise ValueError(f"landmark list {self.landmark_list} does not exist")
        try:
            with zipfile.ZipFile(self.root) as archive:
                members = {info.filename: info for info in archive.infolist()}
        except (zipfile.BadZipFile, OSError) as error:
            raise ValueError(f"{self.root}: not a readable zip ({error})") from None
        tops = {name.split("/")[0] for name in members if "/" in name}
        prefix = f"{tops.pop()}/" if len(tops) == 1 else ""
        listing: dict[str, list[tuple[str, str | None, ListedImage]]] = {}
        self.class_ids = {}
        for entry in read_landmark_list(self.landmark_list):
            found = _find_member(entry.path, members, prefix)
            self.class_ids[entry.identity] = entry.class_id
            listing.setdefault(entry.identity, []).append((entry.path, found, entry))
        for items in listing.values():
            items.sort(key=lambda item: item[0])
        self._items = self._select(
            listing,
            where=f"{self.landmark_list} (listing {self.root.name})",
            what=f"identity with at least {self.min_images_per_identity} listed images",
        )
        self.files = [
            FaceFile(
                path,
                -1 if member is None else members[member].file_size,
                -1 if member is None else members[member].CRC,
            )
            for path, member, _ in self._items
        ]

    def stamp(self) -> dict:
        return {"zip": file_stamp(self.root), "landmark_list": file_stamp(self.landmark_list)}

    def work(self) -> Work:
        positions = [i for i, (_, member, _) in enumerate(self._items) if member is not None]
        skipped = [
            {"path": path, "reason": f"{self.root.name}: no member {path} (listed in "
             f"{self.landmark_list.name})"}
            for path, member, _ in self._items
            if member is None
        ]  # fmt: skip
        landmarks = (
            np.stack([self._items[i][2].landmarks for i in positions]) if positions else None
        )
        stat = self.root.stat()
        return Work(
            positions=positions,
            items=[self._items[i][1] for i in positions],
            landmarks=landmarks,
            skipped=skipped,
            reader=ZipReader(str(self.root), stat.st_size, stat.st_mtime_ns),
        )
