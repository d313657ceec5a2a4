"""The PyTorch port's form: a zip of the images plus a landmark list with class ids.

The zip and the list are built here from LFW images and LFW's landmark file, in the port's
layout (``CASIA-WebFace/<identity>/<file>`` members, list lines ``<identity>/<file>\\t<class
id>\\t<x1>\\t<y1>…``); the folder form on the same files is the truth.
"""

from __future__ import annotations

import os
import struct
import zipfile

import numpy as np
import pytest
from conftest import link_lfw_folder
from test_data_recordio import run_cli, train_on

from sphereviz.data import FaceFolder, prepare_faces
from sphereviz.data.casia_zip import ZipFaces, read_landmark_list
from sphereviz.data.prepare import SkippedImagesWarning, main
from sphereviz.data.sources import detect_form

PEOPLE = [
    "Ariel_Sharon", "Colin_Powell", "Donald_Rumsfeld", "Gerhard_Schroeder", "Hugo_Chavez",
    "Junichiro_Koizumi", "Tony_Blair",
]  # fmt: skip
PER_PERSON = 10  # ≥ 10 per identity: train holds out 10 %, at least one of each


@pytest.fixture()
def lfw_folder(lfw_root, tmp_path):
    return link_lfw_folder(lfw_root, tmp_path / "lfw_folder", PEOPLE, PER_PERSON)


def write_zip(
    lfw_root, lfw_folder, path, compression=zipfile.ZIP_STORED, drop=(),
    zip_top="CASIA-WebFace/", list_top="",
):  # fmt: skip
    """The zip (members under ``zip_top``) and its landmark list (paths under ``list_top``);
    ``drop``: paths listed but left out of the zip."""
    lines = {}
    for line in (lfw_root / "lfw_landmark.txt").read_text().splitlines():
        fields = line.split("\t")
        lines[fields[0]] = fields[1:]
    listing = []
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for class_id, person in enumerate(PEOPLE):
            for image in sorted((lfw_folder / person).iterdir()):
                relative = f"{person}/{image.name}"
                if relative not in drop:
                    archive.write(image, f"{zip_top}{relative}")
                listing.append("\t".join([list_top + relative, str(class_id), *lines[relative]]))
    landmark_list = path.with_name("casia_landmark.txt")
    landmark_list.write_text("\n".join(listing) + "\n")
    return landmark_list


def folder_cache(lfw_root, lfw_folder, out, **options):
    return prepare_faces(
        lfw_folder, out, landmarks=lfw_root / "lfw_landmark.txt", landmark_frame=250,
        workers=1, progress=False, **options,
    )  # fmt: skip


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_zip_gives_the_folder_forms_cache_bit_for_bit(lfw_root, lfw_folder, tmp_path, compression):
    archive = tmp_path / "CASIA-WebFace.zip"
    landmark_list = write_zip(lfw_root, lfw_folder, archive, compression)
    assert detect_form(archive) == "zip"
    zipped = prepare_faces(
        archive, tmp_path / "zip", landmarks=landmark_list, landmark_frame=250, workers=2,
        progress=False,
    )  # fmt: skip
    folder = folder_cache(lfw_root, lfw_folder, tmp_path / "folder")
    assert zipped.manifest["inputs"]["form"] == "zip"
    assert zipped.manifest["counts"]["skipped"] == 0
    assert zipped.identity_names == folder.identity_names == PEOPLE
    np.testing.assert_array_equal(zipped.labels, folder.labels)
    assert zipped.paths.tolist() == folder.paths.tolist()
    np.testing.assert_array_equal(zipped.images, folder.images)  # same bytes, same pipeline


@pytest.mark.parametrize(
    ("zip_top", "list_top"),
    [("CASIA-WebFace/", "CASIA-WebFace/"), ("", "CASIA-WebFace/"), ("data/", "")],
)
def test_the_identity_is_the_parent_folder_whatever_the_top_folders(
    lfw_root, lfw_folder, tmp_path, zip_top, list_top
):
    """The issue's zip: a list naming CASIA-WebFace/<id>/<img> was refused ("identity
    CASIA-WebFace has class id 1 here but 0 on line 1"); the folder form is the truth."""
    archive = tmp_path / "CASIA-WebFace.zip"
    landmark_list = write_zip(lfw_root, lfw_folder, archive, zip_top=zip_top, list_top=list_top)
    assert read_landmark_list(landmark_list)[0].identity == PEOPLE[0]
    zipped = prepare_faces(
        archive, tmp_path / "zip", landmarks=landmark_list, landmark_frame=250, workers=1,
        progress=False,
    )  # fmt: skip
    folder = folder_cache(lfw_root, lfw_folder, tmp_path / "folder")
    assert zipped.manifest["counts"]["skipped"] == 0
    assert zipped.identity_names == folder.identity_names == PEOPLE
    np.testing.assert_array_equal(zipped.labels, folder.labels)
    np.testing.assert_array_equal(zipped.images, folder.images)
    assert ZipFaces(archive, landmark_list).class_ids == {p: k for k, p in enumerate(PEOPLE)}


def test_a_path_without_a_folder_takes_its_class_id_as_identity(tmp_path):
    listing = tmp_path / "flat.txt"
    points = ["100"] * 10
    listing.write_text(
        "\n".join("\t".join([name, cls, *points]) for name, cls in
                  [("a.jpg", "7"), ("b.jpg", "7"), ("c.jpg", "3"), ("x/y/d.jpg", "4")])
    )  # fmt: skip
    assert [entry.identity for entry in read_landmark_list(listing)] == ["7", "7", "3", "y"]
    listing.write_text("\t".join(["top/a/1.jpg", "0", *points]) + "\n"
                       + "\t".join(["other/a/2.jpg", "1", *points]) + "\n")  # fmt: skip
    with pytest.raises(ValueError, match=r"flat.txt:2: identity a has class id 1 here but 0"):
        read_landmark_list(listing)


def test_selection_matches_the_folder_form(lfw_root, lfw_folder, tmp_path):
    landmark_list = write_zip(lfw_root, lfw_folder, tmp_path / "c.zip")
    for options in (
        {"top_k_identities": 2},
        {"max_images_per_identity": 2, "seed": 3},
        {"identities": ["Tony_Blair", "Ariel_Sharon"]},
        {"exclude": ["Colin_Powell"]},
    ):
        zipped = ZipFaces(tmp_path / "c.zip", landmark_list, **options)
        folder = FaceFolder(lfw_folder, **options)
        assert zipped.identity_names == folder.identity_names
        assert zipped.relative_paths == folder.relative_paths
        np.testing.assert_array_equal(zipped.labels, folder.labels)
    assert ZipFaces(tmp_path / "c.zip", landmark_list).class_ids["Tony_Blair"] == 6


def test_missing_and_unreadable_members_are_skipped_and_named(lfw_root, lfw_folder, tmp_path):
    archive = tmp_path / "c.zip"
    missing = f"Zico/{'x' * 3}.jpg"
    dropped = f"{PEOPLE[1]}/{sorted(os.listdir(lfw_folder / PEOPLE[1]))[0]}"
    landmark_list = write_zip(lfw_root, lfw_folder, archive, drop={dropped})
    with open(landmark_list, "a") as file:  # a listed image of an identity not in the zip
        file.write("\t".join([missing, "99", *["100"] * 10]) + "\n")
    with zipfile.ZipFile(archive) as opened:
        victim = opened.getinfo(f"CASIA-WebFace/{PEOPLE[4]}/" + sorted(
            os.listdir(lfw_folder / PEOPLE[4]))[1])  # fmt: skip
    data = bytearray(archive.read_bytes())  # corrupt the stored member's bytes: a bad CRC
    name_length, extra_length = struct.unpack_from("<HH", data, victim.header_offset + 26)
    start = victim.header_offset + 30 + name_length + extra_length + 1000
    data[start : start + 16] = b"\x00" * 16
    archive.write_bytes(bytes(data))
    with pytest.warns(SkippedImagesWarning, match="skipped 3 of"):
        cache = prepare_faces(
            archive, tmp_path / "out", landmarks=landmark_list, landmark_frame=250, workers=1,
            progress=False,
        )  # fmt: skip
    reasons = {item["path"]: item["reason"] for item in cache.manifest["skipped"]}
    assert cache.manifest["counts"]["skipped"] == 3
    assert "no member" in reasons[dropped] and "c.zip" in reasons[dropped]
    assert "no member" in reasons[missing]
    corrupt = victim.filename.removeprefix("CASIA-WebFace/")
    assert f"offset {victim.header_offset}" in reasons[corrupt]
    assert "unreadable member" in reasons[corrupt] and "CRC" in reasons[corrupt]
    assert len(cache) == len(PEOPLE) * PER_PERSON - 2
    assert "Zico" not in cache.identity_names  # its only image was missing


def test_landmark_list_errors_are_one_clear_line(lfw_root, lfw_folder, tmp_path):
    landmark_list = write_zip(lfw_root, lfw_folder, tmp_path / "c.zip")
    lines = landmark_list.read_text().splitlines()
    bad = tmp_path / "bad.txt"
    bad.write_text(lines[0] + "\n" + lines[1].replace(f"\t{0}\t", "\t5\t", 1) + "\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: identity Ariel_Sharon has class id 5"):
        read_landmark_list(bad)
    with pytest.raises(ValueError, match="LFW-format file"):
        ZipFaces(tmp_path / "c.zip", lfw_root / "lfw_landmark.txt")
    assert main(["--root", str(tmp_path / "c.zip"), "--out", str(tmp_path / "o")]) == 2
    with pytest.raises(ValueError, match="give its landmark list with --landmarks"):
        prepare_faces(tmp_path / "c.zip", tmp_path / "o", progress=False)
    (tmp_path / "not.zip").write_bytes(b"PK nonsense")
    with pytest.raises(ValueError, match="not a readable zip"):
        ZipFaces(tmp_path / "not.zip", landmark_list)


def test_cache_is_reused_and_rebuilt_when_the_zip_changes(lfw_root, lfw_folder, tmp_path):
    archive = tmp_path / "c.zip"
    landmark_list = write_zip(lfw_root, lfw_folder, archive)
    options = {"landmarks": landmark_list, "landmark_frame": 250, "progress": False}
    first = prepare_faces(archive, tmp_path / "out", workers=1, **options)
    assert not first.reused
    assert prepare_faces(archive, tmp_path / "out", workers=1, **options).reused
    write_zip(lfw_root, lfw_folder, archive, drop={first.paths[0]})
    with pytest.warns(SkippedImagesWarning):
        again = prepare_faces(archive, tmp_path / "out", workers=1, **options)
    assert not again.reused and len(again) == len(first) - 1


@pytest.mark.slow
def test_cli_prepare_faces_on_a_zip_makes_a_cache_that_trains(lfw_root, lfw_folder, tmp_path):
    archive = tmp_path / "CASIA-WebFace.zip"
    landmark_list = write_zip(lfw_root, lfw_folder, archive)
    summary = run_cli(
        "prepare-faces", "--root", str(archive), "--landmarks", str(landmark_list),
        "--landmark-frame", "250", "--out", str(tmp_path / "cache"), "--top-k-identities", "6",
        "--workers", "2",
    )  # fmt: skip
    assert summary["identities"] == 6 and summary["images"] == 6 * PER_PERSON
    assert train_on(tmp_path / "cache", tmp_path / "run")["epochs"] == 1
