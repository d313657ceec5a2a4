"""insightface's packed form (MXNet RecordIO) read without MXNet, against a writer from the spec.

The writer below follows dmlc-core's ``RecordIOWriter::WriteRecord`` and MXNet's
``recordio.pack`` (not the reader under test); the packed images are LFW faces aligned to
insightface's 112×112 ArcFace template, as insightface made ``faces_webface_112x112``.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import link_lfw_folder

from sphereviz.data import FaceFolder, prepare_faces
from sphereviz.data.align import (
    REFERENCE_POINTS,
    read_landmarks,
    scale_landmarks,
    similarity_transform,
)
from sphereviz.data.prepare import SkippedImagesWarning
from sphereviz.data.recordio import (
    ARCFACE_REFERENCE_POINTS,
    PackedFaces,
    RecordFile,
    read_record,
    scan_records,
    unpack_image_record,
    write_packed_faces,
)
from sphereviz.data.sources import detect_form

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEC_MAGIC = 0xCED7230A
# insightface/python-package/insightface/utils/face_align.py, `arcface_dst` (x, y), 112×112.
INSIGHTFACE_ARCFACE_DST = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
]
# Eight LFW people with at least 10 images; each gets its first 10 (sorted by file name).
PEOPLE = [
    "Ariel_Sharon", "Colin_Powell", "Donald_Rumsfeld", "George_W_Bush", "Gerhard_Schroeder",
    "Hugo_Chavez", "Junichiro_Koizumi", "Tony_Blair",
]  # fmt: skip
PER_PERSON = 10  # ≥ 10 per identity: train holds out 10 %, at least one of each


# --- the writer, from the spec -----------------------------------------------------------------


def write_record(file, payload: bytes) -> None:
    """dmlc-core's WriteRecord: split at every aligned magic (dropped), flags 1/2/3, pad to 4."""
    magic = struct.pack("<I", SPEC_MAGIC)
    start = 0
    for i in range(0, len(payload) // 4 * 4, 4):
        if payload[i : i + 4] == magic:
            flag = 1 if start == 0 else 2
            file.write(magic + struct.pack("<I", flag << 29 | (i - start)) + payload[start:i])
            start = i + 4
    flag = 3 if start else 0
    file.write(magic + struct.pack("<I", flag << 29 | (len(payload) - start)) + payload[start:])
    file.write(b"\0" * (-len(payload) % 4))


def pack(labels, image: bytes = b"", record_id: int = 0) -> bytes:
    """MXNet's recordio.pack: IRHeader(flag, label, id, id2) (+ flag float32 labels) + image."""
    labels = np.atleast_1d(np.asarray(labels, dtype=np.float32))
    if len(labels) == 1:
        return struct.pack("<IfQQ", 0, float(labels[0]), record_id, 0) + image
    return struct.pack("<IfQQ", len(labels), 0.0, record_id, 0) + labels.tobytes() + image


def write_indexed(folder: Path, payloads: list[bytes], name: str = "train") -> list[int]:
    """``name.rec`` + ``name.idx`` (MXIndexedRecordIO: ``id\\toffset`` lines); the offsets."""
    folder.mkdir(parents=True, exist_ok=True)
    offsets = []
    with open(folder / f"{name}.rec", "wb") as rec:
        for payload in payloads:
            offsets.append(rec.tell())
            write_record(rec, payload)
    (folder / f"{name}.idx").write_text("".join(f"{i}\t{o}\n" for i, o in enumerate(offsets)))
    return offsets


def write_insightface(folder: Path, classes: list[list[bytes]]) -> list[int]:
    """insightface's layout: record 0 = header [a, b); images 1 … a−1 with their class as the
    label; identity records a … b−1 with [start, end) of their images; a property file."""
    images = [(label, data) for label, datas in enumerate(classes) for data in datas]
    first_identity = len(images) + 1
    payloads = [pack([first_identity, first_identity + len(classes)])]
    payloads += [pack(label, data, i + 1) for i, (label, data) in enumerate(images)]
    start = 1
    for label, datas in enumerate(classes):
        payloads.append(pack([start, start + len(datas)], record_id=first_identity + label))
        start += len(datas)
    (folder / "property").parent.mkdir(parents=True, exist_ok=True)
    (folder / "property").write_text(f"{len(classes)},112,112\n")
    return write_indexed(folder, payloads)


# --- the packed LFW faces ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lfw_people(lfw_root):
    """``{person: [(relative path, BGR image, 112×112 ArcFace-aligned BGR)], …}``."""
    table = read_landmarks(lfw_root / "lfw_landmark.txt")
    template = np.array(INSIGHTFACE_ARCFACE_DST)
    people = {}
    for person in PEOPLE:
        files = sorted((lfw_root / "images" / person).glob("*.jpg"))[:PER_PERSON]
        entries = []
        for path in files:
            relative = f"{person}/{path.name}"
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            points = scale_landmarks(table[relative], image.shape, 250)
            matrix = similarity_transform(points, template)
            aligned = cv2.warpAffine(image, matrix, (112, 112), flags=cv2.INTER_LINEAR)
            entries.append((relative, image, aligned))
        people[person] = entries
    return people


def encoded(people, extension: str) -> list[list[bytes]]:
    return [
        [cv2.imencode(extension, aligned)[1].tobytes() for _, _, aligned in entries]
        for entries in people.values()
    ]


@pytest.fixture()
def packed_png(lfw_people, tmp_path):
    folder = tmp_path / "faces_webface_112x112"
    write_insightface(folder, encoded(lfw_people, ".png"))
    return folder


@pytest.fixture()
def lfw_folder(lfw_root, tmp_path):
    return link_lfw_folder(lfw_root, tmp_path / "lfw_folder", PEOPLE, PER_PERSON)


def test_arcface_template_is_sphereface_template_shifted_by_8_px():
    np.testing.assert_allclose(ARCFACE_REFERENCE_POINTS, INSIGHTFACE_ARCFACE_DST, atol=0)
    np.testing.assert_allclose(
        np.array(INSIGHTFACE_ARCFACE_DST) - REFERENCE_POINTS, [[8, 0]] * 5, atol=1e-12
    )


def test_packed_crops_are_columns_8_to_104_bit_equal_and_match_the_folder_form(
    lfw_root, lfw_people, packed_png, lfw_folder, tmp_path
):
    assert detect_form(packed_png) == "recordio"
    packed = prepare_faces(packed_png, tmp_path / "packed", workers=2, progress=False)
    folder = prepare_faces(
        lfw_folder, tmp_path / "folder", landmarks=lfw_root / "lfw_landmark.txt",
        landmark_frame=250, workers=1, progress=False,
    )  # fmt: skip
    assert packed.manifest["inputs"]["form"] == "recordio"
    assert folder.manifest["inputs"]["form"] == "folder"
    assert packed.manifest["counts"]["skipped"] == 0
    # same identities (class k ↔ the k-th name in sorted order), labels and counts
    assert packed.identity_names == [f"{k:05d}" for k in range(len(PEOPLE))]
    assert folder.identity_names == PEOPLE
    np.testing.assert_array_equal(packed.labels, folder.labels)
    expected = [cv2.cvtColor(aligned, cv2.COLOR_BGR2RGB) for e in lfw_people.values()
                for _, _, aligned in e]  # fmt: skip
    # lossless payloads: bit-equal to the fixed crop of what was packed
    np.testing.assert_array_equal(packed.images, np.stack(expected)[:, :, 8:104])
    # the same faces as the folder form's 5-point alignment, up to the warp's fixed-point
    # rounding: so columns 8…103 of the ArcFace 112×112 are SphereFace's 112×96
    difference = np.abs(packed.images.astype(int) - folder.images.astype(int))
    # (measured: 99.998 % of the values equal, the others off by 1)
    assert np.mean(difference == 0) > 0.999 and difference.max() <= 1


def test_jpeg_payloads_decode_as_opencv_decodes_them(lfw_people, tmp_path):
    classes = encoded(lfw_people, ".jpg")
    write_insightface(tmp_path / "packed", classes)
    cache = prepare_faces(tmp_path / "packed", tmp_path / "cache", workers=1, progress=False)
    decoded = [
        cv2.cvtColor(cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        for datas in classes for d in datas
    ]  # fmt: skip
    np.testing.assert_array_equal(cache.images, np.stack(decoded)[:, :, 8:104])


def test_selection_matches_the_folder_form(packed_png, lfw_folder):
    for options in (
        {"top_k_identities": 3},
        {"max_images_per_identity": 2, "seed": 5},
        {"identities": ["00002", "00006"]},
    ):
        packed = PackedFaces(packed_png, **options)
        folder_options = dict(options)
        if "identities" in options:
            folder_options["identities"] = [PEOPLE[int(name)] for name in options["identities"]]
        folder = FaceFolder(lfw_folder, **folder_options)
        assert [PEOPLE[int(n)] for n in packed.identity_names] == folder.identity_names
        np.testing.assert_array_equal(packed.labels, folder.labels)
        # the same images: record id r is the (r−1)-th image in identity-major order
        all_paths = FaceFolder(lfw_folder).relative_paths
        picked = [all_paths[int(path.split("#")[1]) - 1] for path in packed.relative_paths]
        assert picked == folder.relative_paths


def test_random_access_by_index_equals_a_sequential_scan(tmp_path):
    rng = np.random.default_rng(0)
    magic = struct.pack("<I", SPEC_MAGIC)
    payloads = [
        rng.bytes(37),
        magic + rng.bytes(12) + magic + magic + rng.bytes(5),  # split into 4 parts
        rng.bytes(3) + magic + rng.bytes(9),  # magic not aligned: one part
        rng.bytes(64) + magic,  # ends on the magic: an empty last part
        b"",
        rng.bytes(1001),
    ]
    offsets = write_indexed(tmp_path, payloads)
    data = (tmp_path / "train.rec").read_bytes()
    assert struct.unpack_from("<I", data, offsets[1] + 4)[0] >> 29 == 1  # the writer did split
    scanned = list(scan_records(data))
    assert [offset for offset, _ in scanned] == offsets
    assert [payload for _, payload in scanned] == payloads
    with RecordFile(tmp_path / "train.rec", tmp_path / "train.idx") as indexed:
        for record_id in rng.permutation(len(payloads)):
            assert indexed[int(record_id)] == payloads[record_id]
    with RecordFile(tmp_path / "train.rec") as unindexed:  # no .idx: the index from a scan
        assert unindexed.offsets == dict(enumerate(offsets))


def test_library_writer_writes_what_the_spec_writer_writes(lfw_people, tmp_path):
    classes = encoded(lfw_people, ".jpg")[:3]
    classes[1] = [*classes[1], struct.pack("<I", SPEC_MAGIC) * 3]  # a split record too
    write_insightface(tmp_path / "spec", classes)
    write_packed_faces(tmp_path / "lib", classes)
    for name in ("train.rec", "train.idx", "property"):
        assert (tmp_path / "lib" / name).read_bytes() == (tmp_path / "spec" / name).read_bytes()


def test_unpack_image_record_single_and_vector_labels():
    single = unpack_image_record(pack(7.0, b"JPEGDATA", record_id=42))
    assert (single.flag, single.labels.tolist(), single.id, single.image) == (
        0, [7.0], 42, b"JPEGDATA"
    )  # fmt: skip
    vector = unpack_image_record(pack([3, 9], b"xy"))
    assert (vector.flag, vector.labels.tolist(), vector.image) == (2, [3.0, 9.0], b"xy")
    with pytest.raises(ValueError, match="shorter than the 24-byte"):
        unpack_image_record(b"\0" * 10)


# --- damage ------------------------------------------------------------------------------------


def plain_rec(lfw_people, folder: Path) -> tuple[list[int], int]:
    """A .rec without insightface's header (every record labelled); offsets and count."""
    payloads = [
        pack(label, data, i)
        for i, (label, data) in enumerate(
            (label, data) for label, datas in enumerate(encoded(lfw_people, ".jpg"))
            for data in datas
        )
    ]  # fmt: skip
    return write_indexed(folder, payloads), len(payloads)


def damaged_cache(folder: Path, out: Path):
    with pytest.warns(SkippedImagesWarning) as caught:
        cache = prepare_faces(folder, out, workers=1, progress=False, force=True)
    return cache, str(caught[0].message)


def test_truncated_rec_skips_the_cut_record_and_names_file_and_offset(lfw_people, tmp_path):
    offsets, count = plain_rec(lfw_people, tmp_path / "p")
    rec = tmp_path / "p" / "train.rec"
    os.truncate(rec, offsets[-1] + 100)
    cache, message = damaged_cache(tmp_path / "p", tmp_path / "c")
    assert len(cache) == count - 1 and cache.manifest["counts"]["skipped"] == 1
    reason = cache.manifest["skipped"][0]["reason"]
    assert f"train.rec offset {offsets[-1]}" in reason and "truncated .rec" in reason
    assert f"offset {offsets[-1]}" in message


def test_bad_magic_wrong_length_and_disagreeing_idx_are_skipped(lfw_people, tmp_path):
    offsets, count = plain_rec(lfw_people, tmp_path / "p")
    rec = tmp_path / "p" / "train.rec"
    data = bytearray(rec.read_bytes())
    data[offsets[3] : offsets[3] + 4] = b"\xde\xad\xbe\xef"  # bad magic
    lrec = struct.unpack_from("<I", data, offsets[7] + 4)[0]
    struct.pack_into("<I", data, offsets[7] + 4, lrec + 400)  # too long: runs into record 8
    struct.pack_into("<I", data, offsets[11] + 4, lrec // 2)  # too short: a cut JPEG
    rec.write_bytes(bytes(data))
    lines = (tmp_path / "p" / "train.idx").read_text().splitlines()
    lines[15] = f"15\t{offsets[15] + 4}"  # .idx disagrees with the .rec
    lines[20] = f"20\t{len(data) + 64}"  # .idx points past the end of the .rec
    (tmp_path / "p" / "train.idx").write_text("\n".join(lines) + "\n")
    cache, _ = damaged_cache(tmp_path / "p", tmp_path / "c")
    reasons = {item["path"]: item["reason"] for item in cache.manifest["skipped"]}
    assert len(cache) == count - 5 and cache.manifest["counts"]["skipped"] == 5
    assert (
        f"offset {offsets[3]}" in reasons["train.rec#3"] and "bad magic" in reasons["train.rec#3"]
    )
    assert f"offset {offsets[7]}" in reasons["train.rec#7"]
    assert f"next indexed record at offset {offsets[8]}" in reasons["train.rec#7"]
    assert f"offset {offsets[11]}" in reasons["train.rec#11"]
    assert (
        "bad magic" in reasons["train.rec#15"] and str(offsets[15] + 4) in reasons["train.rec#15"]
    )
    assert "end of the file" in reasons["train.rec#20"]
    kept = {int(path.split("#")[1]) for path in cache.paths}
    assert kept == set(range(count)) - {3, 7, 11, 15, 20}


def test_truncated_insightface_rec_counts_the_lost_identity_records(lfw_people, tmp_path):
    offsets = write_insightface(tmp_path / "p", encoded(lfw_people, ".jpg"))
    os.truncate(tmp_path / "p" / "train.rec", offsets[-1] + 10)  # cuts the last identity record
    cache, message = damaged_cache(tmp_path / "p", tmp_path / "c")
    assert cache.num_classes == len(PEOPLE) - 1
    last = len(offsets) - 1
    assert cache.manifest["skipped"] == [
        {"path": f"train.rec#{last}", "reason": cache.manifest["skipped"][0]["reason"]}
    ]
    assert f"train.rec offset {offsets[-1]}" in message


def test_an_image_label_that_disagrees_with_its_identity_record_is_skipped(lfw_people, tmp_path):
    classes = encoded(lfw_people, ".jpg")
    offsets = write_insightface(tmp_path / "p", classes)
    rec = tmp_path / "p" / "train.rec"
    data = bytearray(rec.read_bytes())
    struct.pack_into("<f", data, offsets[5] + 8 + 4, 7.0)  # record 5 is class 0's
    rec.write_bytes(bytes(data))
    cache, _ = damaged_cache(tmp_path / "p", tmp_path / "c")
    assert [item["path"] for item in cache.manifest["skipped"]] == ["train.rec#5"]
    assert (
        "label 7 disagrees with its identity record's class 0"
        in (cache.manifest["skipped"][0]["reason"])
    )


def test_packed_cache_is_reused_and_rebuilt_when_the_rec_changes(lfw_people, tmp_path):
    classes = encoded(lfw_people, ".jpg")
    write_insightface(tmp_path / "p", classes)
    first = prepare_faces(tmp_path / "p", tmp_path / "c", workers=1, progress=False)
    assert prepare_faces(tmp_path / "p", tmp_path / "c", workers=1, progress=False).reused
    write_insightface(tmp_path / "p", [datas[:-1] for datas in classes])
    again = prepare_faces(tmp_path / "p", tmp_path / "c", workers=1, progress=False)
    assert not again.reused and len(again) == len(first) - len(classes)
    assert again.manifest["inputs"]["source_files"]["property"] == [len(PEOPLE), 112, 112]


def test_read_record_rejects_a_header_cut_short():
    with pytest.raises(ValueError, match="offset 0: no room for a record header"):
        read_record(b"\x0a\x23", 0, 2, "x.rec")


# --- the command -------------------------------------------------------------------------------


def run_cli(*argv: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "sphereviz", *argv, "--json"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def train_on(cache: Path, out: Path) -> dict:
    return run_cli(
        "train", "--dataset", "faces", "--faces-cache", str(cache), "--epochs", "1",
        "--max-train-samples", "64", "--model", "sfnet4", "--sfnet-width", "16", "--dim", "32",
        "--batch-size", "16", "--device", "cpu", "--threads", "1", "--no-progress",
        "--out", str(out),
    )  # fmt: skip


@pytest.mark.slow
def test_cli_prepare_faces_on_a_packed_folder_makes_a_cache_that_trains(packed_png, tmp_path):
    summary = run_cli(
        "prepare-faces", "--root", str(packed_png), "--out", str(tmp_path / "cache"),
        "--top-k-identities", "6", "--workers", "2",
    )  # fmt: skip
    assert summary["identities"] == 6 and summary["images"] == 6 * PER_PERSON
    assert summary["shape"] == [6 * PER_PERSON, 112, 96, 3]
    trained = train_on(tmp_path / "cache", tmp_path / "run")
    assert trained["epochs"] == 1
    # --sfnet-width reached the run: its config, and the first stage of the network it saved
    from sphereviz.runs import load_run

    run = load_run(tmp_path / "run")
    assert run.config.sfnet_width == 16
    assert run.load_model().stages[0][0].out_channels == 16
