"""Reliability (issue 15): one writer per folder, resume provenance, checkpoint digests, one-line
errors for foreseeable faults, no silent bad faces, no orphan processes, full and read-only
disks, file modes. Real processes, real file systems (a small tmpfs when running as root)."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import sphereviz.data.prepare as prepare_module
from sphereviz.config import TrainConfig
from sphereviz.data import load_face_cache, prepare_faces
from sphereviz.data.align import read_landmarks
from sphereviz.data.lfw import read_pairs, read_people
from sphereviz.data.mnist import load_idx_split, read_idx, write_idx
from sphereviz.data.prepare import SkippedImagesWarning
from sphereviz.devices import require_device
from sphereviz.errors import describe_error
from sphereviz.fileio import (
    DiskFullError,
    check_free_space,
    disk_full_as_error,
    write_json_atomic,
)
from sphereviz.locks import FolderBusyError, FolderLock, StaleLockWarning
from sphereviz.losses import make_loss
from sphereviz.runs import load_checkpoint, read_json, read_metrics, run_state
from sphereviz.train import main, train

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
LINUX = sys.platform.startswith("linux")


def tiny(out, **overrides) -> TrainConfig:
    settings = dict(max_train_samples=256, max_test_samples=64, epochs=1, batch_size=64,
                    width=4, device="cpu", out=str(out))  # fmt: skip
    return TrainConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished one-epoch run folder (a second of CPU)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    train(tiny(out), progress=False)
    return out


def textured(colour=(200, 120, 90), size=(120, 120)) -> Image.Image:
    """One colour with stripes in the top quarter: its crops are not uniform."""
    pixels = np.empty((size[1], size[0], 3), dtype=np.uint8)
    pixels[:] = colour
    pixels[: size[1] // 4] = 0
    pixels[: size[1] // 4, ::3] = 255
    return Image.fromarray(pixels)


def make_face_root(root: Path, per_identity: dict[str, int]) -> Path:
    for name, count in per_identity.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            colour = (40 + 7 * k % 200, 90, 220 - 5 * k % 200)
            textured(colour).save(root / name / f"{name}_{k:04d}.png")
    return root


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False):
    """Mount a small tmpfs at ``path`` (root only; the test is skipped otherwise)."""
    if not LINUX or os.geteuid() != 0:
        pytest.skip("needs root on Linux to mount a small tmpfs")
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def one_error_line(text: str, command: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith(f"sphereviz {command}: error: "), text
    assert "Traceback" not in text
    return lines[0]


# --- one writer per folder -------------------------------------------------------------------


def _hold_lock(folder: Path) -> subprocess.Popen:
    code = (
        "import sys, time; from sphereviz.locks import FolderLock; "
        f"lock = FolderLock({str(folder)!r}, 'run folder').acquire(); print('held', flush=True); "
        "time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_is_stale(tmp_path):
    out = tmp_path / "run"
    holder = _hold_lock(out)
    try:
        with pytest.raises(FolderBusyError, match=f"process {holder.pid} "):
            FolderLock(out).acquire()
        with pytest.raises(FolderBusyError, match=f"being written by process {holder.pid}"):
            train(tiny(out), progress=False)
        assert not out.exists()  # refused before writing anything
        with pytest.raises(FolderBusyError, match=str(holder.pid)):
            prepare_faces(make_face_root(tmp_path / "faces", {"a": 2}), out, workers=1,
                          progress=False)  # fmt: skip
    finally:
        holder.kill()  # SIGKILL: no cleanup runs
        holder.wait()
    with pytest.warns(StaleLockWarning, match=f"stale lock of process {holder.pid}"):
        lock = FolderLock(out).acquire()  # the OS freed the dead process's lock
    try:
        assert lock.stale_holder["pid"] == holder.pid
        assert "stale lock" in lock.stale_message and "no longer running" in lock.stale_message
    finally:
        lock.release()


def test_two_prepare_faces_commands_racing_for_one_cache(tmp_path):
    """Two real commands into one --out with different options: one builds, one refuses."""
    root = make_face_root(tmp_path / "faces", {"a": 3, "b": 3, "c": 3})
    out = tmp_path / "cache"
    commands = [
        [sys.executable, "-m", "sphereviz", "prepare-faces", "--root", str(root), "--out",
         str(out), "--workers", "1", *extra]
        for extra in ([], ["--top-k-identities", "2"])
    ]  # fmt: skip
    holder = _hold_lock(out)  # both start while a third writer holds it: both must refuse
    try:
        for command in commands:
            result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=60)
            assert result.returncode == 2
            line = one_error_line(result.stderr, "prepare-faces")
            assert f"process {holder.pid}" in line
    finally:
        holder.kill()
        holder.wait()
    racers = [subprocess.Popen(c, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) for c in commands]  # fmt: skip
    results = [(r.wait(timeout=60), *r.communicate()) for r in racers]
    codes = sorted(code for code, _, _ in results)
    assert codes[0] == 0 and codes[1] in (0, 2)  # the slower one waits its turn or refuses
    for code, _, err in results:
        if code == 2:
            assert "being written by process" in one_error_line(err, "prepare-faces")
    cache = load_face_cache(out)  # whichever won, the cache is whole and consistent
    assert len(cache) == sum(cache.manifest["images_per_identity"].values())


# --- resume and provenance -------------------------------------------------------------------


def test_resume_of_a_missing_folder_is_an_error(tmp_path, capsys):
    """``--resume`` of a mistyped folder must not silently train a whole new run.

    (The Python API's ``train(config, resume=True)`` keeps its documented rerun-or-finish
    meaning, which the notebooks use with ``TrainConfig.in_run_folder``.)"""
    assert main(["--out", str(tmp_path / "nowhere"), "--resume"]) == 2
    assert "no run to continue" in one_error_line(capsys.readouterr().err, "train")
    assert not (tmp_path / "nowhere").exists()
    fresh = train(tiny(tmp_path / "fresh"), progress=False, resume=True)  # the API idiom
    assert [row["epoch"] for row in fresh.metrics] == [1]


def test_resume_refuses_a_hand_edited_config_naming_the_fields(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    config_path = run / "config.json"
    original = json.loads(config_path.read_text())
    assert main(["--out", str(run), "--resume", "--no-progress"]) == 0  # intact: resumes
    capsys.readouterr()
    for field, value in (("lr", 0.5), ("dim", 5)):
        config_path.write_text(json.dumps({**original, field: value}))
        assert main(["--out", str(run), "--resume", "--no-progress"]) == 2
        line = one_error_line(capsys.readouterr().err, "train")
        assert f"{field}: checkpoint trained with {original[field]!r}" in line
        assert "edited by hand" in line


def test_a_flipped_bit_inside_a_checkpoint_tensor_is_a_clear_error(finished_run, tmp_path):
    path = tmp_path / "model.pt"
    shutil.copy(finished_run / "model.pt", path)
    weights = load_checkpoint(path)["model"]["embedding.weight"]
    data = bytearray(path.read_bytes())
    start = data.find(weights.numpy().tobytes())
    assert start > 0
    data[start + 5] ^= 0x10  # one bit of one weight
    path.write_bytes(bytes(data))
    flipped = torch.load(path, weights_only=True)["model"]["embedding.weight"]
    assert not torch.equal(flipped, weights)  # torch itself loads the damage silently
    with pytest.raises(ValueError, match="damaged checkpoint"):
        load_checkpoint(path)


# --- devices and one-line errors ---------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_absent_devices_are_one_line_errors(tmp_path, capsys):
    for name in ("cuda", "cuda:7"):
        with pytest.raises(ValueError, match="no usable CUDA GPU"):
            require_device(name)
    if not torch.backends.mps.is_available():
        with pytest.raises(ValueError, match="MPS is not available"):
            require_device("mps")
    with pytest.raises(ValueError, match="device must be"):
        require_device("nonsense")
    assert require_device("cpu") == torch.device("cpu")
    for device in ("cuda", "mps", "nonsense"):
        assert main(["--out", str(tmp_path / device), "--device", device]) == 2
        one_error_line(capsys.readouterr().err, "train")
        assert not (tmp_path / device).exists()


def test_debug_shows_the_traceback(tmp_path, monkeypatch, capsys):
    from sphereviz import cli

    monkeypatch.setenv("SPHEREVIZ_DEBUG", "0")
    argv = ["train", "--out", str(tmp_path / "r"), "--resume"]
    assert cli.main(argv) == 2
    one_error_line(capsys.readouterr().err, "train")
    assert cli.main([*argv, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("sphereviz train: error:")


def test_read_only_out_is_a_one_line_error(finished_run, tmp_path, capsys):
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as folder:
        assert main(["--out", str(folder / "run"), "--no-progress"]) == 2
        assert "read-only file system" in one_error_line(capsys.readouterr().err, "train")
        root = make_face_root(tmp_path / "faces", {"a": 2})
        code = prepare_module.main(["--root", str(root), "--out", str(folder / "cache")])
        assert code == 2
        assert "read-only" in one_error_line(capsys.readouterr().err, "prepare-faces")
    with tmpfs(tmp_path / "copy", "8m") as folder:  # --resume of a finished run, made read-only
        shutil.copytree(finished_run, folder / "run")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        assert main(["--out", str(folder / "run"), "--resume", "--no-progress"]) == 2
        assert "read-only" in one_error_line(capsys.readouterr().err, "train")


def test_folders_and_fifos_where_a_file_is_expected(tmp_path):
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    for reader in (read_landmarks, read_pairs, read_people, read_metrics):
        with pytest.raises(ValueError, match="is a folder"):
            reader(tmp_path)
        with pytest.raises(ValueError, match="not a regular file"):
            reader(fifo)  # would block for ever if opened
    loop = tmp_path / "loop.txt"
    loop.symlink_to(loop)
    with pytest.raises(ValueError, match="cannot be read"):
        read_landmarks(loop)
    root = make_face_root(tmp_path / "faces", {"a": 2})
    with pytest.raises(ValueError, match="is a folder"):
        prepare_faces(root, tmp_path / "c", landmarks=tmp_path, workers=1, progress=False)


def test_a_damaged_manifest_or_float_labels_are_clear_errors(tmp_path):
    root = make_face_root(tmp_path / "faces", {"a": 2, "b": 2})
    cache = prepare_faces(root, tmp_path / "cache", workers=1, progress=False)
    manifest_path = cache.directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for broken, reason in (([1, 2], "expected a JSON object"),
                           ({k: v for k, v in manifest.items() if k != "shape"}, "'shape' missing"),
                           ({**manifest, "inputs": {}}, "'inputs.root' missing")):  # fmt: skip
        manifest_path.write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=reason):
            load_face_cache(cache.directory)
    # a shape that disagrees with the arrays (found by the fuzzing below): the error names the
    # manifest, the shape it gives and the arrays' own
    manifest_path.write_text(json.dumps({**manifest, "shape": [4, 12, 96, 3]}))
    with pytest.raises(
        ValueError, match=r"manifest\.json: .*says \(4, 12, 96, 3\).*\(4, 112, 96, 3\)"
    ):
        load_face_cache(cache.directory)
    manifest_path.write_text(json.dumps(manifest))
    np.save(cache.directory / "labels.npy", np.array([0.0, 0.7, 1.0, 1.9]))
    with pytest.raises(ValueError, match="float labels would be silently truncated"):
        load_face_cache(cache.directory)


def test_cache_errors_name_the_cache_and_hints_name_real_flags(tmp_path):
    from sphereviz.train import split_faces

    root = make_face_root(tmp_path / "faces", {"a": 2, "b": 2, "c": 1})
    cache = prepare_faces(root, tmp_path / "cache", workers=1, progress=False)
    config = TrainConfig(dataset="faces", faces_cache=str(cache.directory), model="sfnet4")
    with pytest.raises(ValueError, match="fewer than 2 images") as caught:
        split_faces(cache, config)
    message = str(caught.value)
    assert str(cache.directory) in message and "--min-images-per-identity" not in message
    # the hint is a command line prepare-faces accepts, and it does what it says
    (command,) = re.findall(r"`sphereviz prepare-faces ([^`]*)`", message)
    args = prepare_module.build_parser().parse_args(shlex.split(command))
    assert (args.min_images, Path(args.out), Path(args.root)) == (2, cache.directory, root)
    assert prepare_module.main([*shlex.split(command), "--workers", "1"]) == 0
    rebuilt = load_face_cache(cache.directory)
    assert rebuilt.identity_names == ["a", "b"]
    with pytest.raises(ValueError, match=f"{re.escape(str(cache.directory))}: cannot split 4"):
        split_faces(rebuilt, dataclasses.replace(config, test_fraction=0.1))  # 1 test face, 2 ids
    for labels in ([0, 0, 1, 2], [0, -1, 1, 1]):  # a label beyond the names, a negative one
        np.save(cache.directory / "labels.npy", np.array(labels))
        with pytest.raises(ValueError, match=rf"{re.escape(str(cache.directory))}/labels.npy: "
                           r"labels must lie in 0 … 1 .*prepare-faces --force"):  # fmt: skip
            load_face_cache(cache.directory)
    np.save(cache.directory / "labels.npy", np.array([0, 0, 1, 1]))
    np.save(cache.directory / "identity_names.npy", np.array(["a"]))  # a name lost
    with pytest.raises(ValueError, match="labels.npy: labels must lie in 0 … 0 .*got 0 … 1"):
        load_face_cache(cache.directory)


def test_disk_full_messages_say_what_to_do_once():
    with pytest.raises(DiskFullError) as caught:
        check_free_space("/", 2**62, "the test")
    line = describe_error(caught.value)
    assert line.startswith("not enough disk space for the test in /")
    assert line.count("free some space") == 1 and "disk is full" not in line
    with pytest.raises(DiskFullError) as caught, disk_full_as_error("/tmp/run", 3):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/tmp/run/model.pt")
    line = describe_error(caught.value)
    assert "is full" in line and "after epoch 3) is kept" in line
    assert line.lower().count("free some space") == 1 and line.count("(the disk") == 0
    # the system's own wording still gets the advice
    system = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/x/y")
    assert describe_error(system) == (
        f"/x/y: {os.strerror(errno.ENOSPC)} (the disk is full; free some space (or write "
        "elsewhere) and rerun)"
    )


def test_dataset_and_model_must_fit_when_the_config_is_built(tmp_path):
    with pytest.raises(ValueError, match="use --model mnistnet"):
        TrainConfig(dataset="mnist", model="sfnet4")
    with pytest.raises(ValueError, match="use an SFNet"):
        TrainConfig(dataset="faces", faces_cache=str(tmp_path), model="mnistnet")
    for split, count in (("train", 3), ("test", 2)):
        stem = "train" if split == "train" else "t10k"
        write_idx(tmp_path / f"{stem}-images-idx3-ubyte", np.zeros((count, 32, 32), np.uint8))
        write_idx(tmp_path / f"{stem}-labels-idx1-ubyte", np.zeros(count, np.uint8))
    with pytest.raises(ValueError, match=r"shape \(32, 32\).*28×28"):
        load_idx_split(tmp_path, "train", [str(d) for d in range(10)], "MNIST")


def test_text_files_in_other_encodings_and_with_a_byte_order_mark(tmp_path):
    marks = tmp_path / "marks.txt"
    marks.write_bytes(b"\xef\xbb\xbfa/b.jpg 1 2 3 4 5 6 7 8 9 10\n")
    assert list(read_landmarks(marks)) == ["a/b.jpg"]  # not "\ufeffa/b.jpg": no missing face
    marks.write_bytes("Jos\xe9/b.jpg 1 2 3 4 5 6 7 8 9 10\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"marks.txt is not UTF-8 text"):
        read_landmarks(marks)
    pairs = tmp_path / "pairs.txt"
    pairs.write_bytes(b"\xef\xbb\xbf1\nA 1 2\nA 1 B 1\n")
    assert len(read_pairs(pairs)) == 2
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text('{"epoch": 1}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2: expected one JSON object"):
        read_metrics(metrics)


# --- silent wrong results ----------------------------------------------------------------------


def test_non_faces_are_skipped_and_counted_with_the_reason(tmp_path):
    root = make_face_root(tmp_path / "faces", {"alice": 3})
    (root / "bob").mkdir()
    Image.new("RGB", (1, 1), (9, 9, 9)).save(root / "bob" / "tiny.png")
    Image.new("RGB", (3, 200), (9, 9, 9)).save(root / "bob" / "sliver.png")
    Image.new("RGB", (400, 400), (128, 128, 128)).save(root / "bob" / "blank.png")
    for name in ("far", "below", "eyes", "nomark"):
        textured().save(root / "bob" / f"{name}.png")
    good = "36 50 84 50 60 70 40 95 80 95"
    lines = [f"alice/alice_{k:04d}.png {good}" for k in range(3)] + [
        f"bob/tiny.png {good}", f"bob/sliver.png {good}",
        "bob/blank.png 136 150 184 150 160 170 140 195 180 195",  # the crop lies inside
        "bob/far.png 1000 50 84 50 60 70 40 95 80 95",  # a coordinate, but not of a 120×120
        "bob/below.png 36 50 84 50 60 70 40 95 80 400",
        "bob/eyes.png 60 50 60 50 60 70 40 95 80 95",
    ]  # fmt: skip
    (tmp_path / "marks.txt").write_text("\n".join(lines) + "\n")
    with pytest.warns(SkippedImagesWarning) as caught:
        cache = prepare_faces(root, tmp_path / "cache", landmarks=tmp_path / "marks.txt",
                              workers=1, progress=False)  # fmt: skip
    assert cache.identity_names == ["alice"] and len(cache) == 3
    counts = cache.manifest["counts"]
    assert counts["skipped"] == 7
    assert counts["skipped_by_reason"] == {"no landmarks": 1, "not a face": 6, "unreadable": 0}
    reasons = {item["path"]: item["reason"] for item in cache.manifest["skipped"]}
    assert "too small" in reasons["bob/tiny.png"] and "too small" in reasons["bob/sliver.png"]
    assert "one colour" in reasons["bob/blank.png"]
    assert "far outside" in reasons["bob/far.png"] and "far outside" in reasons["bob/below.png"]
    assert "eye landmarks coincide" in reasons["bob/eyes.png"]
    assert "bob/tiny.png" in str(caught[0].message)
    # a value no image has (not finite, far below 0, beyond any image) is the file's fault
    for bad in ("1e30 50", "-5000 -5000", "nan 50"):
        lines[6] = f"bob/far.png {bad} 84 50 60 70 40 95 80 95"
        (tmp_path / "marks.txt").write_text("\n".join(lines) + "\n")
        with pytest.raises(
            ValueError, match=r"marks.txt:7: the left eye's x = .* not a coordinate"
        ):
            prepare_faces(root, tmp_path / "c2", landmarks=tmp_path / "marks.txt", workers=1,
                          progress=False)  # fmt: skip
    # the same images without landmarks: the centre crop of the small ones is refused too
    with pytest.warns(SkippedImagesWarning):
        centred = prepare_faces(root, tmp_path / "centred", workers=1, progress=False)
    assert centred.manifest["counts"]["skipped_by_reason"]["not a face"] == 3


def test_duplicate_landmark_lines_with_different_values_are_an_error(tmp_path):
    marks = tmp_path / "marks.txt"
    line = "a/b.jpg 1 2 3 4 5 6 7 8 9 10"
    marks.write_text(f"{line}\nc/d.jpg 1 2 3 4 5 6 7 8 9 10\n{line}\n")
    assert len(read_landmarks(marks)) == 2  # an identical repeat is harmless
    marks.write_text(f"{line}\n\n./a/b.jpg 1 2 3 4 5 6 7 8 9 11\n")
    with pytest.raises(ValueError, match=r"marks.txt:3: a/b.jpg is listed again .* line 1"):
        read_landmarks(marks)


def test_folder_links_are_followed_once_and_loops_are_skipped_and_named(tmp_path):
    root = make_face_root(tmp_path / "faces", {"alice": 2})
    outside = make_face_root(tmp_path / "elsewhere", {"carol": 2}) / "carol"
    (root / "carol").symlink_to(outside, target_is_directory=True)  # followed
    (root / "alice_again").symlink_to(root / "alice", target_is_directory=True)
    (root / "everyone").symlink_to(root, target_is_directory=True)
    (root / "circle").symlink_to(root / "circle")
    (root / "alice" / "loop.png").symlink_to(root / "alice" / "loop.png")
    with pytest.warns(SkippedImagesWarning, match="alice_again"):
        cache = prepare_faces(root, tmp_path / "cache", workers=1, progress=False)
    assert cache.identity_names == ["alice", "carol"] and len(cache) == 4
    skipped = {item["path"]: item["reason"] for item in cache.manifest["skipped_links"]}
    assert set(skipped) == {"alice_again", "everyone", "circle", "alice/loop.png"}
    assert "back into the face root" in skipped["everyone"]
    assert "loop" in skipped["circle"] and "loop" in skipped["alice/loop.png"]


def test_pairs_files_reject_paths_and_non_positive_counts(tmp_path):
    cases = {
        "1\n../etc 1 2\nA 1 B 1\n": r":2: '\.\./etc' is not a person's name",
        "1\nA 1 2\nA/B 1 C 1\n": r":3: 'A/B' is not a person's name",
        "1\nA 0 2\nA 1 B 1\n": r":2: an image number must be >= 1",
        "0\n": r":1: the header must be >= 1",
    }
    for text, message in cases.items():
        path = tmp_path / "pairs.txt"
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_pairs(path)
    people = tmp_path / "people.txt"
    people.write_text("2\nA 3\nB 0\n")
    with pytest.raises(ValueError, match=r"people.txt:3: a count must be >= 1"):
        read_people(people)


@pytest.mark.parametrize("name", ["normface", "cosface", "arcface"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_huge_feature_norms_keep_the_loss_and_its_gradient(name, dtype):
    """These losses only see x/‖x‖: x·c must give the same loss, and the gradient / c."""
    torch.manual_seed(0)
    loss = make_loss(name, 6, 8)
    direction = torch.randn(5, 8)
    direction = direction / direction.abs().amax(1, keepdim=True)  # largest entry ±1
    labels = torch.tensor([0, 1, 2, 3, 4])
    # powers of two scale exactly, so both inputs have the same mantissas in every dtype
    big = 2.0**15 if dtype == torch.float16 else 2.0**100  # ‖x‖² ≈ 1e60 overflows float32
    results = []
    for scale in (1.0, big):
        x = (direction * scale).to(dtype).requires_grad_(True)
        value = loss(x, labels)
        value.backward()
        results.append((float(value.detach()), x.grad.double() * scale))
    (small_loss, small_grad), (big_loss, big_grad) = results
    assert abs(big_loss - math.log(6)) > 0.05  # not the collapsed log C of cos θ = 0
    assert big_loss == pytest.approx(small_loss, rel=1e-5)
    assert float(small_grad.abs().max()) > 1e-3
    # float16 stores the big run's gradient (≈ 1/2¹⁵) as subnormals: spacing 2⁻²⁴·2¹⁵
    atol = 2.0**-24 * big * 2 if dtype == torch.float16 else 1e-4
    torch.testing.assert_close(big_grad, small_grad, rtol=1e-2, atol=atol)


# --- processes ---------------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(b")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _forked_workers(pid: int) -> list[int]:
    """The pool workers of ``pid``: its grandchildren, the children of its forkserver (its
    other child, multiprocessing's resource tracker, starts none; sphereviz.worker_pool)."""
    return [child for child in _descendants(pid) if _parent(child) != pid]


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in (b"Z", b"X")


def _wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.mark.skipif(not LINUX, reason="reads /proc")
def test_sigkill_of_prepare_faces_leaves_no_process_and_the_next_run_cleans_up(lfw_root, tmp_path):
    small = make_face_root(tmp_path / "faces", {"a": 2, "b": 2})
    out = tmp_path / "cache"
    prepare_faces(small, out, workers=1, progress=False)
    command = [sys.executable, "-m", "sphereviz", "prepare-faces", "--root",
               str(lfw_root / "images"), "--out", str(out), "--workers", "2"]  # fmt: skip
    build = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # the pool is up: 2 spawned workers and the resource tracker
        assert _wait_until(lambda: len(_descendants(build.pid)) >= 3, 60)
        assert list(tmp_path.glob(".cache.building-*"))
        family = _descendants(build.pid)
    finally:
        build.kill()
        build.wait()
    assert _wait_until(lambda: not any(_running(pid) for pid in family), 5), [
        Path(f"/proc/{pid}/cmdline").read_bytes() for pid in family if _running(pid)
    ]
    with pytest.warns(StaleLockWarning, match="stale lock"):
        again = prepare_faces(small, out, workers=1, progress=False)  # reuses the cache
    assert again.reused
    assert not list(tmp_path.glob(".cache.building-*"))  # the killed build's folder is gone


@pytest.mark.skipif(not LINUX, reason="reads /proc")
def test_a_worker_ends_with_the_command_that_started_it(tmp_path):
    worker = (
        "import signal, sys, time; from sphereviz.worker_pool import end_with_parent; "
        "end_with_parent(int(sys.argv[1]), signal.SIGKILL); print('armed', flush=True); "
        "time.sleep(60)"
    )
    parent = (  # reports the worker's pid only once its watch is armed (not on a failed import)
        "import subprocess, sys, time, os; "
        f"w = subprocess.Popen([sys.executable, '-c', {worker!r}, str(os.getpid())], "
        "stdout=subprocess.PIPE, text=True); "
        "print(w.pid if w.stdout.readline() == 'armed\\n' else 'not armed', flush=True); "
        "time.sleep(60)"
    )
    command = subprocess.Popen([sys.executable, "-c", parent], env=ENV, stdout=subprocess.PIPE,
                               text=True)  # fmt: skip
    try:
        line = command.stdout.readline()
        assert line.strip().isdigit(), f"the worker did not arm its watch: {line!r}"
        worker_pid = int(line)
        assert _running(worker_pid)
    finally:
        command.send_signal(signal.SIGKILL)
        command.wait()
    assert _wait_until(lambda: not _running(worker_pid), 5)


def test_a_crash_between_the_two_renames_is_recovered(tmp_path):
    """Killed after ``out → .old`` and before ``.building → out``: the next run recovers."""
    first = make_face_root(tmp_path / "one", {"a": 2})
    second = make_face_root(tmp_path / "two", {"a": 2, "b": 2})
    out, other = tmp_path / "cache", tmp_path / "other"
    prepare_faces(first, out, workers=1, progress=False)
    prepare_faces(second, other, workers=1, progress=False)
    os.rename(out, tmp_path / ".cache.old-1234abcd")  # the old cache, hidden
    os.rename(other, tmp_path / ".cache.building-xyz")  # the finished new one, not in place
    recovered = prepare_faces(second, out, workers=1, progress=False)
    assert recovered.reused and len(recovered) == 4  # the finished build, moved into place
    assert sorted(p.name for p in tmp_path.glob(".cache.*")) == [".cache.lock"]
    os.rename(out, tmp_path / ".cache.old-5678abcd")  # killed right after the first rename
    restored = prepare_faces(second, out, workers=1, progress=False)
    assert restored.reused and len(restored) == 4
    assert sorted(p.name for p in tmp_path.glob(".cache.*")) == [".cache.lock"]


SWEEP_SETTINGS = dict(max_train_samples=256, max_test_samples=64, epochs=30, batch_size=64,
                      width=4, device="cpu")  # fmt: skip
SWEEP_DRIVER = """
import sys
from pathlib import Path

from sphereviz.config import TrainConfig
from sphereviz.runs import RunSpec
from sphereviz.sweep import ensure_runs


def main():
    specs = [RunSpec(f"tiny-s{seed}", f"seed {seed}", "a-softmax", None,
                     TrainConfig(seed=seed, **SETTINGS)) for seed in (0, 1)]
    try:
        ensure_runs(specs, Path(sys.argv[1]), jobs=2, log=lambda line: print(line, flush=True))
    except KeyboardInterrupt:  # as sphereviz.cli reports it
        print("sweep: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
"""


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="reads /proc")
def test_sigint_to_a_parallel_sweep_stops_its_workers_and_a_rerun_resumes(tmp_path):
    """SIGINT to the parent alone (not its process group) while its two workers train: the
    whole sweep ends promptly with 130 and one line, no process is left, each run folder
    holds a finished epoch (not the whole run, no temporary file, its lock released), and a
    rerun resumes both runs to the end."""
    driver = tmp_path / "sweep.py"
    driver.write_text(SWEEP_DRIVER.replace("**SETTINGS", f"**{SWEEP_SETTINGS!r}"))
    runs = tmp_path / "runs"
    command = [sys.executable, str(driver), str(runs)]
    sweep = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)  # fmt: skip
    folders = [runs / f"tiny-s{seed}" for seed in (0, 1)]
    try:  # both workers train: each run has written its first epoch
        assert _wait_until(lambda: all((f / "model.pt").is_file() for f in folders), 180)
        family = _descendants(sweep.pid)
        assert len(family) >= 2  # the two workers (and multiprocessing's resource tracker)
        sweep.send_signal(signal.SIGINT)
        _, err = sweep.communicate(timeout=30)  # generous: the machine may be loaded
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert sweep.returncode == 130
    assert err.strip().splitlines() == ["sweep: interrupted"], err
    assert _wait_until(lambda: not any(_running(pid) for pid in family), 10), [
        Path(f"/proc/{pid}/cmdline").read_bytes() for pid in family if _running(pid)
    ]
    for seed, folder in enumerate(folders):
        config = TrainConfig(seed=seed, **SWEEP_SETTINGS)
        assert run_state(folder, config) == "partial"  # interrupted, and it does not look done
        assert 1 <= len(read_metrics(folder / "metrics.jsonl")) < config.epochs
        assert not list(folder.glob(".*.tmp"))
    assert not list(runs.glob("*.holder"))  # the workers unwound and released their locks

    rerun = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert all(f"resuming tiny-s{seed}" in rerun.stdout for seed in (0, 1)), rerun.stdout
    assert "stale lock" not in rerun.stderr
    for seed, folder in enumerate(folders):
        assert run_state(folder, TrainConfig(seed=seed, **SWEEP_SETTINGS)) == "complete"
        epochs = [row["epoch"] for row in read_metrics(folder / "metrics.jsonl")]
        assert epochs == list(range(1, SWEEP_SETTINGS["epochs"] + 1))


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="reads /proc; PR_SET_PDEATHSIG is Linux's")
def test_workers_of_a_killed_sweep_stop_and_release_their_runs(tmp_path):
    """SIGKILL to the parent (a notebook kernel killed or restarted) while its two workers
    train: the workers, orphaned, stop within seconds instead of training on, and unwind as
    after a Ctrl-C: each run keeps a finished epoch, its lock is released (no holder record
    left, so the next call does not find the run busy) and no temporary file remains."""
    driver = tmp_path / "sweep.py"
    driver.write_text(SWEEP_DRIVER.replace("**SETTINGS", f"**{SWEEP_SETTINGS!r}"))
    runs = tmp_path / "runs"
    sweep = subprocess.Popen([sys.executable, str(driver), str(runs)], env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    folders = [runs / f"tiny-s{seed}" for seed in (0, 1)]
    try:
        assert _wait_until(lambda: all((f / "model.pt").is_file() for f in folders), 180)
        workers = _forked_workers(sweep.pid)
        assert len(workers) == 2
        sweep.kill()
        sweep.wait()
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert _wait_until(lambda: not any(_running(pid) for pid in workers), 20)
    for seed, folder in enumerate(folders):
        assert run_state(folder, TrainConfig(seed=seed, **SWEEP_SETTINGS)) == "partial"
        assert not list(folder.glob(".*.tmp"))
    assert not list(runs.glob("*.holder"))


# --- the disk --------------------------------------------------------------------------------


def test_prepare_faces_on_a_full_disk_is_a_clear_error_and_cleans_up(tmp_path, capsys):
    root = make_face_root(tmp_path / "faces", {"a": 50, "b": 50})
    for k in range(10):  # skipped images force the compaction pass (a second copy)
        (root / "a" / f"broken_{k}.png").write_bytes(b"\x89PNG not really")
    with tmpfs(tmp_path / "small", "1m") as disk:
        code = prepare_module.main(["--root", str(root), "--out", str(disk / "c"), "--workers",
                                    "1"])  # fmt: skip
        assert code == 1
        assert "not enough disk space" in one_error_line(capsys.readouterr().err, "prepare-faces")
        assert [p.name for p in disk.iterdir()] == [".c.lock"]
    with tmpfs(tmp_path / "nearly", "5m") as disk:  # room for the images, not for the compaction
        result = subprocess.run(
            [sys.executable, "-m", "sphereviz", "prepare-faces", "--root", str(root), "--out",
             str(disk / "c"), "--workers", "1"], env=ENV, capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr  # was: SIGBUS, exit 135, no message
        line = [s for s in result.stderr.splitlines() if s.startswith("sphereviz prepare-faces")]
        assert len(line) == 1 and "not enough disk space for the compacted images" in line[0]
        assert [p.name for p in disk.iterdir()] == [".c.lock"]  # the build folder is gone
        assert shutil.disk_usage(disk).used < 100_000


def test_train_on_a_full_disk_says_so_and_keeps_the_last_checkpoint(tmp_path):
    with tmpfs(tmp_path / "small", "4m") as disk:
        out = disk / "run"

        def fill_the_disk(epoch, metrics, embeddings):
            if epoch == 1:
                free = shutil.disk_usage(disk).free
                (disk / "filler").write_bytes(b"\0" * max(0, free - 20_000))

        with pytest.raises(DiskFullError, match=r"is full .*\(after epoch 1\) is kept"):
            train(tiny(out, epochs=2), progress=False, on_epoch=fill_the_disk)
        assert load_checkpoint(out / "model.pt")["epoch"] == 1  # intact: its digest checks
        assert not list(out.glob(".*.tmp"))


def test_files_and_folders_respect_the_umask(finished_run, tmp_path):
    assert (finished_run / "model.pt").stat().st_mode & 0o777 == 0o666 & ~_umask()
    previous = os.umask(0o027)
    try:
        write_json_atomic(tmp_path / "x.json", {"a": 1})
        cache = prepare_faces(make_face_root(tmp_path / "f", {"a": 2}), tmp_path / "cache",
                              workers=1, progress=False)  # fmt: skip
    finally:
        os.umask(previous)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o640
    assert cache.directory.stat().st_mode & 0o777 == 0o750
    assert (cache.directory / "images.npy").stat().st_mode & 0o777 == 0o640


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- fuzzing every parser ----------------------------------------------------------------------


VALID_INPUTS = {
    "landmarks.txt": b"a/b.jpg 1 2 3 4 5 6 7 8 9 10\nc/d.jpg\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\n",
    "pairs.txt": b"2 1\nA 1 2\nA 1 B 2\nC 3 4\nC 1 D 1\n",
    "people.txt": b"2\n1\nA 2\n2\nB 1\nC 3\n",
    "metrics.jsonl": b'{"epoch": 1, "loss": 2.5}\n{"epoch": 2, "loss": 1.5}\n',
    "config.json": b'{"dataset": "mnist", "dim": 3, "epochs": 2, "lr": 0.01}',
    "images-idx3-ubyte": bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4]),
    "manifest.json": None,  # a real cache's manifest, made by the fixture
}


def _parse_config(path):
    return TrainConfig.from_dict(read_json(path), source=path)


PARSERS = {
    "landmarks.txt": read_landmarks,
    "pairs.txt": read_pairs,
    "people.txt": read_people,
    "metrics.jsonl": read_metrics,
    "config.json": _parse_config,
    "images-idx3-ubyte": read_idx,
    "manifest.json": lambda path: load_face_cache(path.parent),
}


@st.composite
def mutants(draw, valid: bytes):
    """A valid file with a few bytes replaced, inserted or deleted, or plain random bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=300))
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.sampled_from([0, 0xFF, 0xE9, 0x0A, 0x09, 0x20, 0x2F, 0x2E, 0x2D, 0x30,
                                     0x39, 0x5B, 0x7B, 0x22, 0x65, 0xEF, 0xBB, 0xBF]))  # fmt: skip
        if action == "insert" or not data:
            data.insert(position, byte)
        elif action == "replace":
            data[min(position, len(data) - 1)] = byte
        else:
            del data[min(position, len(data) - 1)]
    return bytes(data)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    cache = prepare_faces(make_face_root(folder / "faces", {"a": 2}), folder / "cache",
                          workers=1, progress=False)  # fmt: skip
    return folder, (cache.directory / "manifest.json").read_bytes()


@pytest.mark.parametrize("name", list(PARSERS))
def test_parsers_under_fuzzing_raise_only_value_errors_that_name_the_file(name, fuzz_dir):
    folder, manifest = fuzz_dir
    valid = VALID_INPUTS[name] or manifest
    path = (folder / "cache" / name) if name == "manifest.json" else folder / name
    PARSERS[name](_write(path, valid))  # the unmutated file parses

    @settings(max_examples=80, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(data=mutants(valid))
    def parse(data):
        try:
            PARSERS[name](_write(path, data))
        except ValueError as error:
            assert path.name in str(error), str(error)

    parse()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
