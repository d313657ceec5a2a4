"""Face folders, subset selection, and the prepare-faces cache (build, reuse, rebuild, CLI)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import sphereviz.data.align_pool as align_pool
import sphereviz.data.build_folder as build_folder
from sphereviz.data import FaceFolder, load_face_cache, prepare_faces
from sphereviz.data.align import align_face, decode_image, read_landmarks
from sphereviz.data.prepare import SkippedImagesWarning, main

# identity → colours of its images (one image per colour); "bob" also gets a corrupt JPEG.
IDENTITIES = {
    "alice": [(250, 10, 10), (240, 20, 20), (230, 30, 30), (220, 40, 40), (210, 50, 50)],
    "bob": [(10, 250, 10), (20, 240, 20), (30, 230, 30)],
    "carol": [(10, 10, 250), (20, 20, 240)],
    "0166921": [(128, 128, 128), (100, 100, 100)],  # a CASIA identity that is also in LFW
}


def _leftovers(parent):
    """The hidden siblings of ``cache`` other than its lock file (kept: see sphereviz.locks)."""
    return [p for p in parent.glob(".cache.*") if p.name != ".cache.lock"]


def _textured(colour) -> Image.Image:
    """A 120×120 image of one colour with black and white stripes in its top 32 rows: the
    centre crop's middle stays that colour, and the crop is not uniform (a blank crop is
    skipped as not a face)."""
    pixels = np.empty((120, 120, 3), dtype=np.uint8)
    pixels[:] = colour
    pixels[:32] = 0
    pixels[:32, ::4] = 255
    pixels[:32, 1::4] = 255
    return Image.fromarray(pixels)


@pytest.fixture()
def face_root(tmp_path):
    root = tmp_path / "faces"
    for name, colours in IDENTITIES.items():
        (root / name).mkdir(parents=True)
        for k, colour in enumerate(colours):
            suffix = [".png", ".jpg", ".pgm"][k % 3] if name != "carol" else ".png"
            image = _textured(colour)
            (image.convert("L") if suffix == ".pgm" else image).save(
                root / name / f"{name}_{k:04d}{suffix}"
            )
    (root / "bob" / "bob_9999.jpg").write_bytes(b"\xff\xd8\xff\xe0 corrupt, no image here")
    (root / "bob" / "notes.txt").write_text("not an image")
    (root / "empty_person").mkdir()
    return root


def test_face_folder_default_selection(face_root):
    folder = FaceFolder(face_root)
    assert folder.identity_names == ["alice", "bob", "carol"]
    assert folder.excluded_identities == ["0166921"]
    assert folder.empty_identities == ["empty_person"]
    # bob's corrupt JPEG is listed (decoding decides later); notes.txt is not an image.
    assert len(folder) == 5 + 4 + 2
    np.testing.assert_array_equal(np.bincount(folder.labels), [5, 4, 2])
    assert folder.relative_paths[0] == "alice/alice_0000.png"
    for path, label in zip(folder.relative_paths, folder.labels, strict=True):
        assert path.split("/")[0] == folder.identity_names[label]


def test_face_folder_keeps_overlap_when_asked(face_root):
    folder = FaceFolder(face_root, exclude=())
    assert folder.identity_names == ["0166921", "alice", "bob", "carol"]


def test_top_k_and_min_images(face_root):
    assert FaceFolder(face_root, top_k_identities=2).identity_names == ["alice", "bob"]
    assert FaceFolder(face_root, top_k_identities=1).identity_names == ["alice"]
    assert FaceFolder(face_root, min_images_per_identity=3).identity_names == ["alice", "bob"]
    # Ties are broken by name: carol (2) and the kept-overlap 0166921 (2).
    tied = FaceFolder(face_root, exclude=(), min_images_per_identity=2, top_k_identities=3)
    assert tied.identity_names == ["0166921", "alice", "bob"]


def test_max_images_is_a_seeded_subset(face_root):
    first = FaceFolder(face_root, max_images_per_identity=2, seed=3)
    again = FaceFolder(face_root, max_images_per_identity=2, seed=3)
    everything = set(FaceFolder(face_root).relative_paths)
    assert first.relative_paths == again.relative_paths
    assert len(first) == 6 and set(first.relative_paths) <= everything
    assert first.relative_paths == sorted(first.relative_paths)
    subsets = {tuple(FaceFolder(face_root, max_images_per_identity=2, seed=s).relative_paths)
               for s in range(8)}  # fmt: skip
    assert len(subsets) > 1  # the seed matters


def test_identities_and_empty_selection_errors(face_root):
    assert FaceFolder(face_root, identities=["carol", "bob"]).identity_names == ["bob", "carol"]
    with pytest.raises(ValueError, match="not found.*nobody"):
        FaceFolder(face_root, identities=["bob", "nobody"])
    with pytest.raises(ValueError, match="empty"):
        FaceFolder(face_root, min_images_per_identity=100)
    with pytest.raises(ValueError, match="top_k_identities"):
        FaceFolder(face_root, top_k_identities=0)
    with pytest.raises(ValueError, match="not a directory"):
        FaceFolder(face_root / "nowhere")


def test_prepare_skips_corrupt_images_and_keeps_colours(face_root, tmp_path):
    with pytest.warns(SkippedImagesWarning, match="bob/bob_9999.jpg"):
        cache = prepare_faces(face_root, tmp_path / "cache", workers=1, progress=False)
    assert not cache.reused
    assert cache.images.shape == (10, 112, 96, 3) and isinstance(cache.images, np.memmap)
    assert cache.manifest["counts"] == {
        "images": 10, "identities": 3, "skipped": 1, "empty_identities": 1,
        "excluded_identities": 1, "dropped_identities": 0,
        "skipped_by_reason": {"no landmarks": 0, "not a face": 0, "unreadable": 1},
    }  # fmt: skip
    assert cache.manifest["skipped"][0]["path"] == "bob/bob_9999.jpg"
    assert cache.identity_names == ["alice", "bob", "carol"]
    for image, label, path in zip(cache.images, cache.labels, cache.paths, strict=True):
        name, index = path.split("/")[0], int(path.split("_")[-1][:4])
        assert cache.identity_names[label] == name
        colour = np.array(IDENTITIES[name][index], dtype=float)
        if path.endswith(".pgm"):  # saved as grey: ITU-R 601 luma
            colour = np.full(3, round(colour @ [0.299, 0.587, 0.114]))
        # A constant image stays constant after the crop; RGB order kept (JPEG: ±3 levels).
        np.testing.assert_allclose(image[40:70, 30:60].mean((0, 1)), colour, atol=3)


def test_cache_is_reused_without_decoding_and_rebuilt_on_change(face_root, tmp_path, monkeypatch):
    out = tmp_path / "cache"
    with pytest.warns(SkippedImagesWarning):
        first = prepare_faces(face_root, out, workers=1, progress=False)
    hash_before = first.manifest["content_hash"]

    def no_decoding(*args, **kwargs):
        raise AssertionError("a reused cache must not decode anything")

    monkeypatch.setattr(align_pool, "load_face_crop", no_decoding)
    again = prepare_faces(face_root, out, workers=1, progress=False)
    assert again.reused and again.manifest["content_hash"] == hash_before
    np.testing.assert_array_equal(again.images, first.images)
    monkeypatch.undo()

    # A new image changes the inputs: rebuilt with one more image.
    _textured((5, 5, 5)).save(face_root / "carol" / "carol_0002.png")
    with pytest.warns(SkippedImagesWarning):
        grown = prepare_faces(face_root, out, workers=1, progress=False)
    assert not grown.reused and len(grown) == 11
    # A touched file (same content, new mtime) also counts as a change.
    stamp = os.stat(face_root / "alice" / "alice_0000.png")
    os.utime(
        face_root / "alice" / "alice_0000.png", ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9)
    )
    with pytest.warns(SkippedImagesWarning):
        assert not prepare_faces(face_root, out, workers=1, progress=False).reused
    # So does a parameter.
    smaller = prepare_faces(face_root, out, top_k_identities=1, workers=1, progress=False)
    assert not smaller.reused and smaller.identity_names == ["alice"]
    assert not _leftovers(tmp_path)  # no leftover build or old folders


def test_interrupted_build_leaves_no_valid_looking_cache(face_root, tmp_path, monkeypatch):
    out = tmp_path / "cache"
    real = align_pool.load_face_crop
    decoded = []

    def interrupt_midway(*args, **kwargs):
        if len(decoded) == 4:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C after four images
        decoded.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(align_pool, "load_face_crop", interrupt_midway)
    with pytest.raises(KeyboardInterrupt):
        prepare_faces(face_root, out, workers=1, progress=False)
    assert len(decoded) == 4
    assert not out.exists()
    assert not _leftovers(tmp_path)  # the temporary build folder is gone too
    with pytest.raises(FileNotFoundError, match="not a face cache"):
        load_face_cache(out)


def test_interrupted_rebuild_keeps_the_old_cache_intact(face_root, tmp_path, monkeypatch):
    out = tmp_path / "cache"
    with pytest.warns(SkippedImagesWarning):
        old = prepare_faces(face_root, out, workers=1, progress=False)
    old_images = np.array(old.images)

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(align_pool, "_align_chunk", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        prepare_faces(face_root, out, top_k_identities=1, workers=1, progress=False)
    survivor = load_face_cache(out)
    np.testing.assert_array_equal(survivor.images, old_images)
    assert survivor.manifest["content_hash"] == old.manifest["content_hash"]


def _fake_build_folder(parent, name, owner=None, age_seconds=0.0):
    folder = parent / name
    (folder / "images.npy").parent.mkdir(parents=True)
    (folder / "images.npy").write_bytes(b"half written")
    if owner is not None:
        (folder / build_folder.BUILD_OWNER_NAME).write_text(json.dumps(owner))
    stamp = time.time() - age_seconds
    os.utime(folder, (stamp, stamp))
    return folder


def test_a_build_removes_what_killed_builds_left_and_nothing_else(face_root, tmp_path):
    """SIGKILL skips every cleanup; the next build removes the leftovers of dead processes."""
    out = tmp_path / "cache"
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(finished.stdout)  # that process has exited
    host = socket.gethostname()
    killed = _fake_build_folder(tmp_path, ".cache.building-killed", {"pid": dead_pid, "host": host})
    running = _fake_build_folder(
        tmp_path, ".cache.building-live", {"pid": os.getpid(), "host": host}
    )
    elsewhere = _fake_build_folder(
        tmp_path, ".cache.building-remote", {"pid": dead_pid, "host": host + "-other"}
    )
    old_unowned = _fake_build_folder(tmp_path, ".cache.building-old", age_seconds=7200)
    new_unowned = _fake_build_folder(tmp_path, ".cache.building-new", age_seconds=60)
    other_cache = _fake_build_folder(tmp_path, ".other.building-x", {"pid": dead_pid, "host": host})
    with pytest.warns(SkippedImagesWarning):
        prepare_faces(face_root, out, workers=1, progress=False)
    assert not killed.exists() and not old_unowned.exists()
    assert running.exists() and elsewhere.exists() and new_unowned.exists()
    assert other_cache.exists()  # another cache's build is not ours to judge
    assert not (out / build_folder.BUILD_OWNER_NAME).exists()

    replaced = _fake_build_folder(tmp_path, ".cache.old-1234abcd")  # killed mid-replacement
    with pytest.warns(SkippedImagesWarning):
        prepare_faces(face_root, out, workers=1, progress=False, force=True)
    assert not replaced.exists()
    assert sorted(p.name for p in _leftovers(tmp_path)) == [
        ".cache.building-live", ".cache.building-new", ".cache.building-remote"
    ]  # fmt: skip


def test_refuses_to_overwrite_a_folder_that_is_not_a_cache(face_root, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(ValueError, match="not a face cache"):
        prepare_faces(face_root, precious, workers=1, progress=False)
    assert (precious / "thesis.tex").read_text() == "do not delete"


def test_cli_json_summary_is_the_last_line(face_root, tmp_path, capsys):
    argv = ["--root", str(face_root), "--out", str(tmp_path / "c"), "--workers", "1", "--json"]
    with pytest.warns(SkippedImagesWarning):
        assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["images"] == 10 and summary["identities"] == 3 and summary["skipped"] == 1
    assert summary["shape"] == [10, 112, 96, 3] and summary["reused"] is False
    assert main(argv + ["--identities", "alice,carol"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["images"] == 7 and summary["identities"] == 2 and summary["skipped"] == 0
    assert main(argv + ["--identities", "alice,carol"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["reused"] is True
    assert main(["--root", str(tmp_path / "none"), "--out", str(tmp_path / "d")]) == 2
    assert "not a directory" in capsys.readouterr().err


# --- real faces: LFW with its landmark file ---------------------------------------------------

LFW_PEOPLE = ["Aaron_Peirsol", "Abdullah_Gul", "Betsy_Coffin", "Zico"]


@pytest.fixture()
def lfw_subset(lfw_root, tmp_path):
    """A few LFW identity folders symlinked into a fresh root (Betsy_Coffin is empty here)."""
    root = tmp_path / "lfw_subset"
    root.mkdir()
    for name in LFW_PEOPLE:
        source = lfw_root / "images" / name
        if source.is_dir():
            (root / name).symlink_to(source, target_is_directory=True)
        else:
            (root / name).mkdir()
    return root


def test_prepare_aligns_lfw_with_landmarks_in_parallel(lfw_root, lfw_subset, tmp_path):
    landmarks_file = lfw_root / "lfw_landmark.txt"
    serial = prepare_faces(
        lfw_subset, tmp_path / "serial", landmarks=landmarks_file, landmark_frame=250,
        workers=1, progress=False,
    )  # fmt: skip
    parallel = prepare_faces(
        lfw_subset, tmp_path / "parallel", landmarks=landmarks_file, landmark_frame=250,
        workers=2, progress=False,
    )  # fmt: skip
    assert serial.manifest["empty_identities"] == ["Betsy_Coffin"]
    expected = sum(len(list((lfw_subset / n).glob("*.jpg"))) for n in LFW_PEOPLE)
    assert len(serial) == expected and serial.manifest["counts"]["skipped"] == 0
    np.testing.assert_array_equal(serial.images, parallel.images)
    np.testing.assert_array_equal(serial.labels, parallel.labels)
    table = read_landmarks(landmarks_file)
    for k in (0, len(serial) // 2, len(serial) - 1):
        path = str(serial.paths[k])
        image = decode_image(lfw_subset / path)
        np.testing.assert_array_equal(serial.images[k], align_face(image, table[path], 250))


def test_images_without_landmarks_are_skipped(lfw_root, lfw_subset, tmp_path):
    partial = tmp_path / "partial_landmarks.txt"
    lines = (lfw_root / "lfw_landmark.txt").read_text().splitlines()
    kept = [line for line in lines if not line.startswith("Zico/Zico_0001.jpg")]
    partial.write_text("\n".join(kept) + "\n")
    with pytest.warns(SkippedImagesWarning, match="Zico/Zico_0001.jpg.*no landmarks"):
        cache = prepare_faces(
            lfw_subset, tmp_path / "c", landmarks=partial, landmark_frame=250,
            identities=["Zico", "Zico"], workers=1, progress=False,
        )  # fmt: skip
    assert "Zico/Zico_0001.jpg" not in set(cache.paths.tolist())
    assert cache.manifest["counts"]["skipped"] == 1
    shutil.rmtree(tmp_path / "c")


def test_whole_crop_is_its_own_cache_and_keeps_the_image_border(face_root, tmp_path):
    out = tmp_path / "cache"
    with pytest.warns(SkippedImagesWarning):
        window = prepare_faces(face_root, out, workers=1, progress=False)
    with pytest.warns(SkippedImagesWarning):
        whole = prepare_faces(face_root, out, workers=1, progress=False, crop="whole")
    assert not whole.reused and whole.manifest["parameters"]["alignment"] == "whole image"
    assert window.manifest["parameters"]["alignment"] == "centre crop"
    assert whole.manifest["content_hash"] != window.manifest["content_hash"]

    # The 120×120 images have black-and-white stripes in their top 32 rows. The whole crop
    # (a 102.9 px wide window, all 120 rows, scale 96/102.9) keeps all of them: 32 · 0.933 ≈ 30
    # crop rows; LFW's window (53.5 px wide from row 24.8, scale 1.79) keeps 7.2: 13 rows.
    def striped_rows(crop):
        return int((crop[..., 0].astype(int).std(axis=1) > 60).sum())

    assert 28 <= striped_rows(whole.images[0]) <= 31
    assert 11 <= striped_rows(window.images[0]) <= 15


def test_whole_crop_with_landmarks_is_a_one_line_error(lfw_root, lfw_subset, tmp_path, capsys):
    argv = ["--root", str(lfw_subset), "--out", str(tmp_path / "c"), "--crop", "whole",
            "--landmarks", str(lfw_root / "lfw_landmark.txt"), "--workers", "1"]  # fmt: skip
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "crop 'whole'" in error and "window" in error
    assert not (tmp_path / "c").exists()
