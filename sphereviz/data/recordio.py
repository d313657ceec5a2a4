"""insightface's packed CASIA-WebFace (``faces_webface_112x112``): MXNet RecordIO, without MXNet.

**The container** (dmlc-core's ``recordio.h``). A ``.rec`` file is a sequence of records,
each starting on a 4-byte boundary::

    uint32 magic = 0xced7230a
    uint32 lrec  = cflag << 29 | length      (little-endian; length < 2**29)
    length bytes of payload, then zero padding up to a multiple of 4

``cflag`` 0 is a whole record. A writer that finds the magic number at an aligned position
inside a payload splits the payload there: the parts carry ``cflag`` 1 (first), 2 (middle),
3 (last), the magic itself is dropped, and a reader joins the parts with the magic between
them. ``train.idx`` holds one ``<record id>\\t<byte offset>`` line per record.

**The payload** (MXNet's ``recordio.pack``): an image-record header ``flag`` uint32, ``label``
float32, ``id`` uint64, ``id2`` uint64 (24 bytes, ``<IfQQ``); when ``flag > 0``, ``flag``
float32 labels follow and replace the single label; the rest is the encoded image (JPEG).

**insightface's layout.** Record 0 is a header whose two labels ``[a, b)`` give the range of
the *identity records*: record ``a + k`` describes class ``k`` and its two labels are the
range ``[start, end)`` of that class's image records (ids 1 … a − 1). Image records carry
their class as the label. A ``.rec`` without that header (plain ``im2rec`` output) is read by
the label of every record instead. The ``property`` file reads ``num_classes,112,112``.

**From 112×112 to SphereFace's 112×96.** insightface aligned every image by a similarity
transform of its 5 detected landmarks onto the ArcFace template
(:data:`ARCFACE_REFERENCE_POINTS`), which is SphereFace's 96×112 template
(:data:`~sphereviz.data.align.REFERENCE_POINTS`) shifted by 8 px in x: the same face geometry
with 8 px more on each side. So columns 8 … 103 (``image[:, 8:104]``) of a packed image are
exactly SphereFace's 112×96 framing; no resampling is done. This is a fixed crop of an image
aligned already, not the 5-point similarity transform of :mod:`sphereviz.data.align`: the
landmarks, detector, interpolation and the JPEG re-encoding were insightface's, so the crops
are not pixel-equal to what the folder form gives on the original images, and warping them
again would only interpolate twice.

Damage is skipped and counted, never fatal: a bad magic, a length that runs past the end of
the file (a truncated ``.rec``) or into the next record that ``.idx`` names (the two files
disagree, or the length is wrong), an ``.idx`` offset beyond the file, a header too short,
an undecodable image; each reason names the file and the byte offset.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from sphereviz.data.align import CROP_WIDTH, REFERENCE_POINTS, LandmarkFrame, UnreadableImageError
from sphereviz.data.faces import FaceFile, SelectedFaces
from sphereviz.data.readers import Work, decode_bgr, empty_crops, file_stamp

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
LENGTH_BITS = 29
IMAGE_HEADER = struct.Struct("<IfQQ")  # flag, label, id, id2
PACKED_SIZE = 112
# insightface's ArcFace template (x, y) in the 112×112 crop (insightface/utils/face_align.py).
ARCFACE_REFERENCE_POINTS = np.array(
    [
        (38.2946, 51.6963),
        (73.5318, 51.5014),
        (56.0252, 71.7366),
        (41.5493, 92.3655),
        (70.7299, 92.2041),
    ],
    dtype=np.float64,
)
# The x shift between the two templates, and so the first column of the 112×96 crop.
CROP_LEFT = 8
CROP_COLUMNS = (CROP_LEFT, CROP_LEFT + CROP_WIDTH)
assert np.allclose(ARCFACE_REFERENCE_POINTS - (CROP_LEFT, 0), REFERENCE_POINTS, atol=1e-9)


class RecordError(ValueError):
    """A damaged record; the message names the file and the byte offset."""


@dataclass(frozen=True)
class ImageRecord:
    """An unpacked payload: ``labels`` has ``flag`` values when ``flag > 0``, else one."""

    flag: int
    labels: np.ndarray
    id: int
    id2: int
    image: bytes


def read_record(buffer, offset: int, limit: int, name: str) -> tuple[bytes, int]:
    """The payload of the record at ``offset`` (parts joined) and the offset just after it.

    ``limit`` is where the record must end at the latest: the next indexed record's offset,
    or the file size. Raises :class:`RecordError` naming ``name`` and the offset.
    """
    size = len(buffer)
    position, parts, first = offset, [], True
    while True:
        if position + 8 > min(limit, size):
            end = "the end of the file (truncated .rec)" if position + 8 > size else (
                f"the next indexed record at offset {limit} (.idx and .rec disagree)"
            )  # fmt: skip
            raise RecordError(f"{name} offset {position}: no room for a record header before {end}")
        magic, lrec = struct.unpack_from("<II", buffer, position)
        if magic != MAGIC:
            raise RecordError(
                f"{name} offset {position}: bad magic 0x{magic:08x}, expected 0x{MAGIC:08x} "
                "(not a record start: a damaged file, or an .idx offset that disagrees)"
            )
        cflag, length = lrec >> LENGTH_BITS, lrec & ((1 << LENGTH_BITS) - 1)
        if cflag not in ((0, 1) if first else (2, 3)):
            raise RecordError(
                f"{name} offset {position}: continuation flag {cflag} where a "
                f"{'record starts' if first else 'record continues'}"
            )
        start = position + 8
        padded_end = start + (length + 3) // 4 * 4
        if padded_end > limit:
            where = (
                f"the end of the file at {size} (truncated .rec)"
                if limit >= size
                else f"the next indexed record at offset {limit} (.idx and .rec disagree, "
                "or the length is wrong)"
            )
            raise RecordError(f"{name} offset {position}: length {length} runs past {where}")
        parts.append(buffer[start : start + length])
        position, first = padded_end, False
        if cflag in (0, 3):
            break
        parts.append(MAGIC_BYTES)
    return (parts[0] if len(parts) == 1 else b"".join(parts)), position


def unpack_image_record(payload: bytes, where: str = "record") -> ImageRecord:
    """Split a payload into its image-record header, labels and image bytes (MXNet's
    ``recordio.unpack``)."""
    if len(payload) < IMAGE_HEADER.size:
        raise RecordError(
            f"{where}: payload of {len(payload)} bytes is shorter than the "
            f"{IMAGE_HEADER.size}-byte image-record header"
        )
    flag, label, record_id, id2 = IMAGE_HEADER.unpack_from(payload)
    start = IMAGE_HEADER.size
    if flag > 0:
        if len(payload) < start + 4 * flag:
            raise RecordError(f"{where}: header says {flag} labels, payload too short for them")
        labels = np.frombuffer(payload, dtype="<f4", count=flag, offset=start).astype(np.float32)
        start += 4 * flag
    else:
        labels = np.array([label], dtype=np.float32)
    return ImageRecord(flag, labels, record_id, id2, payload[start:])


def write_record(file, payload: bytes) -> None:
    """Append one record to an open binary ``file`` as dmlc-core's ``WriteRecord`` does: split
    at every 4-byte-aligned magic number (flags 1, 2, 3; the magic dropped), pad to 4 bytes."""
    start = 0
    for i in range(0, len(payload) // 4 * 4, 4):
        if payload[i : i + 4] == MAGIC_BYTES:
            flag = 1 if start == 0 else 2
            file.write(MAGIC_BYTES + struct.pack("<I", flag << LENGTH_BITS | (i - start)))
            file.write(payload[start:i])
            start = i + 4
    flag = 3 if start else 0
    file.write(MAGIC_BYTES + struct.pack("<I", flag << LENGTH_BITS | (len(payload) - start)))
    file.write(payload[start:])
    file.write(b"\0" * (-len(payload) % 4))


def pack_image_record(labels, image: bytes = b"", record_id: int = 0) -> bytes:
    """MXNet's ``recordio.pack``: the image-record header (one label, or ``flag`` labels
    after it) followed by the encoded image."""
    labels = np.atleast_1d(np.asarray(labels, dtype=np.float32))
    if len(labels) == 1:
        return IMAGE_HEADER.pack(0, float(labels[0]), record_id, 0) + image
    return (
        IMAGE_HEADER.pack(len(labels), 0.0, record_id, 0) + labels.astype("<f4").tobytes() + image
    )


def write_packed_faces(folder: str | os.PathLike, classes: Sequence[Sequence[bytes]]) -> None:
    """Write ``train.rec``, ``train.idx`` and ``property`` in insightface's layout (module
    docstring) from the encoded 112×112 images of each class (class ``k`` = ``classes[k]``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    count = sum(len(images) for images in classes)
    first_identity = count + 1
    offsets = []
    with open(folder / "train.rec", "wb") as rec:

        def append(payload: bytes) -> None:
            offsets.append(rec.tell())
            write_record(rec, payload)

        append(pack_image_record([first_identity, first_identity + len(classes)]))
        for label, images in enumerate(classes):
            for image in images:
                append(pack_image_record(label, image, len(offsets)))
        start = 1
        for label, images in enumerate(classes):
            append(pack_image_record([start, start + len(images)], b"", first_identity + label))
            start += len(images)
    (folder / "train.idx").write_text("".join(f"{i}\t{o}\n" for i, o in enumerate(offsets)))
    (folder / "property").write_text(f"{len(classes)},{PACKED_SIZE},{PACKED_SIZE}\n")


def read_index(path: str | os.PathLike) -> dict[int, int]:
    """``{record id: byte offset}`` from an ``.idx`` file (``<id>\\t<offset>`` lines)."""
    path = Path(path)
    text = path.read_bytes().split()
    if len(text) % 2:
        raise ValueError(f"{path}: expected '<id>\\t<offset>' lines, got an odd number of fields")
    try:
        table = np.array(text, dtype=np.int64).reshape(-1, 2)
    except ValueError as error:
        raise ValueError(f"{path}: not an .idx file of '<id>\\t<offset>' lines ({error})") from None
    if len(table) and table.min() < 0:
        raise ValueError(f"{path}: negative record id or offset")
    return dict(zip(table[:, 0].tolist(), table[:, 1].tolist(), strict=True))


def scan_records(buffer, name: str = "record file") -> Iterator[tuple[int, bytes | RecordError]]:
    """Walk a ``.rec`` from its start without an index: ``(offset, payload)`` per record, or
    ``(offset, RecordError)`` for damage, after which the scan resumes at the next aligned
    magic number."""
    size, position = len(buffer), 0
    while position < size:
        try:
            payload, position_after = read_record(buffer, position, size, name)
        except RecordError as error:
            yield position, error
            position = _next_magic(buffer, position + 4)
            continue
        yield position, payload
        position = position_after


def _next_magic(buffer, start: int) -> int:
    start = (start + 3) // 4 * 4
    while True:
        found = buffer.find(MAGIC_BYTES, start)
        if found < 0:
            return len(buffer)
        if found % 4 == 0:
            return found
        start = (found + 3) // 4 * 4


class RecordFile:
    """A ``.rec`` opened memory-mapped, with random access by record id through its ``.idx``
    (``idx=None``: an index built by :func:`scan_records`).

    ``file[record_id]`` is the payload; :meth:`limit` is where that record must end. Without
    an ``.idx`` the ids are the records' positions in the scan, so a damaged record that the
    scan skips shifts the ids after it (the label check of :class:`PackedReader` then skips
    what no longer matches its identity record, rather than mislabel it).
    """

    def __init__(self, rec: str | os.PathLike, idx: str | os.PathLike | None = None) -> None:
        self.path = Path(rec)
        self.name = self.path.name
        self._file = open(self.path, "rb")
        size = os.fstat(self._file.fileno()).st_size
        self.buffer = (
            mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        )  # fmt: skip
        self.scan_problems: list[tuple[int, str]] = []
        if idx is not None:
            self.offsets = read_index(idx)
        else:
            self.offsets = {}
            for offset, payload in scan_records(self.buffer, self.name):
                if isinstance(payload, RecordError):
                    self.scan_problems.append((offset, str(payload)))
                else:
                    self.offsets[len(self.offsets)] = offset
        ordered = sorted(set(self.offsets.values()))
        following = dict(zip(ordered, [*ordered[1:], len(self.buffer)], strict=True))
        self._limits = {key: following[offset] for key, offset in self.offsets.items()}

    def __len__(self) -> int:
        return len(self.offsets)

    def limit(self, record_id: int) -> int:
        return self._limits[record_id]

    def __getitem__(self, record_id: int) -> bytes:
        return read_record(
            self.buffer, self.offsets[record_id], self._limits[record_id], self.name
        )[0]

    def image_record(self, record_id: int) -> ImageRecord:
        where = f"{self.name} offset {self.offsets[record_id]} (record {record_id})"
        return unpack_image_record(self[record_id], where)

    def close(self) -> None:
        if isinstance(self.buffer, mmap.mmap):
            self.buffer.close()
        self._file.close()

    def __enter__(self) -> RecordFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def packed_crop(image: np.ndarray) -> np.ndarray:
    """SphereFace's 112×96 from a packed 112×112 image: columns 8 … 103 (module docstring);
    a 112×96 image is returned as it is."""
    height, width = image.shape[:2]
    if (height, width) == (PACKED_SIZE, PACKED_SIZE):
        return image[:, CROP_COLUMNS[0] : CROP_COLUMNS[1]]
    if (height, width) == (PACKED_SIZE, CROP_WIDTH):
        return image
    raise ValueError(
        f"packed image is {width}×{height}, expected 112×112 (insightface's template) or 112×96"
    )


@dataclass(frozen=True)
class PackedReader:
    """Worker-side reader of image records; an item is ``(record id, offset, limit, class)``.

    One call opens the ``.rec`` once (memory-mapped) and reads a whole chunk of records.
    """

    rec_path: str

    def read_crops(
        self, items: Sequence, landmarks: np.ndarray | None, landmark_frame: LandmarkFrame
    ) -> tuple[np.ndarray, list[tuple[int, str]]]:
        crops = empty_crops(len(items))
        failures = []
        name = Path(self.rec_path).name
        with open(self.rec_path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            buffer = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            try:
                for position, (record_id, offset, limit, label) in enumerate(items):
                    where = f"{name} offset {offset} (record {record_id})"
                    try:
                        payload, _ = read_record(buffer, offset, limit, name)
                        record = unpack_image_record(payload, where)
                        if int(record.labels[0]) != label:
                            raise RecordError(
                                f"{where}: label {record.labels[0]:g} disagrees with its "
                                f"identity record's class {label}"
                            )
                        image = packed_crop(decode_bgr(record.image, where))
                        cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=crops[position])
                    except (RecordError, UnreadableImageError, cv2.error) as error:
                        failures.append((position, str(error)))
                    except ValueError as error:
                        failures.append((position, f"{where}: {error}"))
            finally:
                if isinstance(buffer, mmap.mmap):
                    buffer.close()
        return crops, failures


@dataclass
class PackedFaces(SelectedFaces):
    """The image records of insightface's packed form, with :class:`FaceFolder`'s selection.

    ``root``: a folder holding ``train.rec`` (+ ``train.idx``, ``property``) or a ``.rec``
    file (its ``.idx`` beside it). Identity names are the class ids, zero-padded to 5 digits
    (``"00042"``), so sorted names keep the class order. insightface's file has 10,572
    classes: the three LFW-overlap identities were removed before packing and their folder
    names are not kept, so the default ``exclude`` matches nothing here.

    Records that are damaged while listing (an identity record, a record without an ``.idx``
    line) are in ``listing_problems`` as ``{"path", "reason"}`` and go to the manifest.
    """

    form: str = field(default="recordio", init=False)
    rec_path: Path = field(init=False)
    idx_path: Path | None = field(init=False)
    listing_problems: list[dict] = field(init=False)
    properties: list[int] | None = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self._validate_selection()
        folder = self.root if self.root.is_dir() else self.root.parent
        self.rec_path = self.root / "train.rec" if self.root.is_dir() else self.root
        idx = self.rec_path.with_suffix(".idx")
        self.idx_path = idx if idx.is_file() else None
        self.properties = _read_property(folder / "property")
        self.listing_problems = []
        with RecordFile(self.rec_path, self.idx_path) as records:
            self.listing_problems += [
                {"path": f"{self.rec_path.name}@{offset}", "reason": reason}
                for offset, reason in records.scan_problems
            ]
            by_class = self._list(records)
        width = max(5, len(str(max(by_class, default=0))))
        listing = {f"{label:0{width}d}": items for label, items in sorted(by_class.items())}
        self._items = self._select(
            listing,
            where=str(self.rec_path),
            what=f"class with at least {self.min_images_per_identity} image records",
        )
        self.files = [
            FaceFile(f"{self.rec_path.name}#{record_id}", offset, limit)
            for record_id, offset, limit, _ in self._items
        ]

    def _list(self, records: RecordFile) -> dict[int, list[tuple[int, int, int, int]]]:
        """``{class: [(record id, offset, limit, class), …]}`` from the identity records, or
        from every record's own label when record 0 is not insightface's header."""
        header = None
        if 0 in records.offsets:
            try:
                header = records.image_record(0)
            except RecordError as error:
                self.listing_problems.append({"path": self._name(0), "reason": str(error)})
        by_class: dict[int, list[tuple[int, int, int, int]]] = {}

        def item(record_id: int, label: int) -> tuple[int, int, int, int] | None:
            if record_id not in records.offsets:
                self.listing_problems.append(
                    {"path": self._name(record_id), "reason": "record id missing from the .idx"}
                )
                return None
            return (record_id, records.offsets[record_id], records.limit(record_id), label)

        if header is not None and header.flag >= 2 and 0 < header.labels[0] < header.labels[1]:
            first, end = int(header.labels[0]), int(header.labels[1])
            for identity_id in range(first, end):
                label = identity_id - first
                try:
                    bounds = records.image_record(identity_id).labels
                except (RecordError, KeyError) as error:
                    reason = "identity record missing from the .idx" if isinstance(
                        error, KeyError
                    ) else str(error)  # fmt: skip
                    problem = {"path": self._name(identity_id), "reason": reason}
                    self.listing_problems.append(problem)
                    continue
                items = [item(i, label) for i in range(int(bounds[0]), int(bounds[1]))]
                by_class[label] = [entry for entry in items if entry is not None]
            return by_class
        for record_id in sorted(records.offsets):
            try:
                label = int(records.image_record(record_id).labels[0])
            except RecordError as error:
                self.listing_problems.append({"path": self._name(record_id), "reason": str(error)})
                continue
            by_class.setdefault(label, []).append(item(record_id, label))
        return by_class

    def _name(self, record_id: int) -> str:
        return f"{self.rec_path.name}#{record_id}"

    def stamp(self) -> dict:
        stamps = {"rec": file_stamp(self.rec_path), "property": self.properties}
        stamps["idx"] = None if self.idx_path is None else file_stamp(self.idx_path)
        return stamps

    def work(self) -> Work:
        return Work(
            positions=list(range(len(self._items))),
            items=list(self._items),
            landmarks=None,
            skipped=list(self.listing_problems),
            reader=PackedReader(str(self.rec_path)),
        )


def _read_property(path: Path) -> list[int] | None:
    """``[num_classes, height, width]`` from insightface's ``property`` file, if present."""
    if not path.is_file():
        return None
    try:
        return [int(value) for value in path.read_text().strip().split(",")]
    except ValueError:
        raise ValueError(
            f"{path}: expected 'num_classes,112,112', got {path.read_text()[:40]!r}"
        ) from None
