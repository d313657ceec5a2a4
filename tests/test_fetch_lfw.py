"""``sphereviz fetch-lfw`` against a loopback HTTP server, and where the face commands find LFW.

The server (``http.server`` in a thread, with HTTP Range) serves a tiny LFW made here: a
``lfw.tgz`` of a few real LFW faces scaled up to the original 250×250 frame, small but valid
protocol files, and the landmark lines of those faces. The URLs and checksums are passed in
(``files=``) or, for the command, put in place of :data:`LFW_FILES`; nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO_ROOT

from sphereviz.data import fetch_lfw as fetch_module
from sphereviz.data import lfw as lfw_module
from sphereviz.data.fetch_lfw import FetchError, RemoteFile, download, fetch_lfw, main
from sphereviz.data.lfw import (
    LfwNotFoundError,
    default_landmarks,
    default_lfw_root,
    load_lfw_crops,
    read_pairs,
    read_people,
)

PEOPLE = {"Ariel_Sharon": 2, "Colin_Powell": 2, "Tony_Blair": 2}
SYNTHETIC = {
    "pairs.txt": b"1 1\nAriel_Sharon\t1\t2\nColin_Powell\t1\tTony_Blair\t2\n",
    "pairsDevTrain.txt": b"1\nTony_Blair\t1\t2\nAriel_Sharon\t2\tColin_Powell\t1\n",
    "pairsDevTest.txt": b"1\nColin_Powell\t1\t2\nAriel_Sharon\t1\tTony_Blair\t1\n",
    "people.txt": b"1\n3\nAriel_Sharon\t2\nColin_Powell\t2\nTony_Blair\t2\n",
    "peopleDevTrain.txt": b"2\nAriel_Sharon\t2\nColin_Powell\t2\n",
    "peopleDevTest.txt": b"1\nTony_Blair\t2\n",
    "lfw_landmark.LICENSE": b"MIT License\n\nCopyright (c) 2017 carwin\n",
}


def image_paths() -> list[str]:
    return [f"{name}/{name}_{k:04d}.jpg" for name, n in PEOPLE.items() for k in range(1, n + 1)]


def make_tiny_lfw(lfw_root: Path | None) -> dict[str, bytes]:
    """The files of a tiny LFW: real faces scaled to 250×250 when the LFW copy is here, else
    random images (enough for the download tests), and their landmark lines."""
    rng = np.random.default_rng(0)
    table = {}
    if lfw_root is not None:
        for line in (lfw_root / "lfw_landmark.txt").read_text().splitlines():
            fields = line.split("\t")
            table[fields[0]] = fields[1:]
    buffer = io.BytesIO()
    landmark_lines = []
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in image_paths():
            if lfw_root is not None:
                small = cv2.imread(str(lfw_root / "images" / path))
                image = cv2.resize(small, (250, 250), interpolation=cv2.INTER_CUBIC)
                points = table[path]
            else:
                image = rng.integers(0, 256, (250, 250, 3), dtype=np.uint8)
                points = ["100", "110", "150", "110", "125", "140", "105", "165", "145", "165"]
            data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 98])[1].tobytes()
            info = tarfile.TarInfo(f"lfw/{path}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            landmark_lines.append("\t".join([path, *points]))
    return {
        **SYNTHETIC,
        "lfw_landmark.txt": ("\n".join(landmark_lines) + "\n").encode(),
        "lfw.tgz": buffer.getvalue(),
    }


class Server:
    """A loopback HTTP server of ``files`` (name → bytes) that honours ``Range: bytes=N-``.

    ``ignore_range``: names served whole whatever the Range; ``cut_after``: name → bytes after
    which the first response for it closes the connection (announcing the full length).
    ``requests`` records ``(name, range header or None, bytes sent)``.
    """

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.ignore_range: set[str] = set()
        self.wrong_range: set[str] = set()  # answered 206 from half the byte asked for
        self.cut_after: dict[str, int] = {}
        self.requests: list[tuple[str, str | None, int]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                if name not in server.files:
                    server.requests.append((name, self.headers.get("Range"), 0))
                    self.send_error(404)
                    return
                data = server.files[name]
                asked = self.headers.get("Range")
                start = 0
                if asked and name not in server.ignore_range:
                    start = int(asked.removeprefix("bytes=").split("-")[0])
                    start = start // 2 if name in server.wrong_range else start
                    if start >= len(data):
                        server.requests.append((name, asked, 0))
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = server.cut_after.pop(name, None)
                sent = body if cut is None else body[:cut]
                # recorded before the bytes go out: the client may have read them all, and the
                # test looked at the record, before this thread runs again
                server.requests.append((name, asked, len(sent)))
                self.wfile.write(sent)
                self.wfile.flush()
                if cut is not None:
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def remote_files(self, wrong: str | None = None) -> list[RemoteFile]:
        """The served files as :class:`RemoteFile`; ``wrong``: the one given a wrong sha256."""
        remotes = []
        for name, data in self.files.items():
            digest = hashlib.sha256(data + (b"x" if name == wrong else b"")).hexdigest()
            unpack = "lfw" if name == "lfw.tgz" else None
            remotes.append(RemoteFile(name, f"{self.url}/{name}", digest, "a test", unpack))
        return remotes

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    served = Server(make_tiny_lfw(None))
    yield served
    served.close()


def expected_layout() -> set[str]:
    return {*SYNTHETIC, "lfw_landmark.txt", "SOURCES.md", "images"}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_fetch_lays_the_folder_out_as_the_face_commands_expect(server, tmp_path, monkeypatch):
    target = tmp_path / "lfw"
    assert fetch_lfw(target, server.remote_files(), progress=False, log=lambda _: None) == target
    assert {path.name for path in target.iterdir()} == expected_layout()
    assert sorted(str(p.relative_to(target / "images")) for p in target.rglob("*.jpg")) == sorted(
        image_paths()
    )
    for name, data in SYNTHETIC.items():
        assert (target / name).read_bytes() == data
    assert len(read_pairs(target / "pairs.txt")) == 2
    assert [p.name for p in read_people(target / "peopleDevTrain.txt")] == list(PEOPLE)[:2]
    assert cv2.imread(str(target / "images" / image_paths()[0])).shape == (250, 250, 3)
    assert "sha256" in (target / "SOURCES.md").read_text()
    monkeypatch.setenv("SPHEREVIZ_LFW", str(target))
    assert default_lfw_root() == target
    assert default_landmarks(target) == target / "lfw_landmark.txt"
    # a second run downloads nothing and keeps the folder as it is
    before = len(server.requests)
    fetch_lfw(target, server.remote_files(), progress=False, log=lambda _: None)
    assert len(server.requests) == before
    assert {path.name for path in target.iterdir()} == expected_layout()


def test_the_original_250_frame_and_the_downscaled_copy_give_the_same_crops(lfw_root, tmp_path):
    """The fetched images are 250×250, the copy here 150×150; the landmark file is in the 250
    frame and rescaled to each image, so both align the same faces (the downscaled copy, scaled
    back up, is the only difference: crops agree to a few grey levels, different faces do not)."""
    served = Server(make_tiny_lfw(lfw_root))
    try:
        target = fetch_lfw(tmp_path / "lfw", served.remote_files(), progress=False, log=print)
    finally:
        served.close()
    paths = image_paths()
    fetched = load_lfw_crops(paths, target).astype(np.float64)
    here = load_lfw_crops(paths, lfw_root).astype(np.float64)
    same_face = np.abs(fetched - here).mean(axis=(1, 2, 3))
    other_face = np.abs(fetched - np.roll(here, 2, axis=0)).mean(axis=(1, 2, 3))
    assert same_face.max() < 6.0, same_face
    assert other_face.min() > 4 * same_face.max(), (same_face, other_face)
    wrong = load_lfw_crops(paths, target, landmark_frame=150).astype(np.float64)
    assert np.abs(wrong - here).mean(axis=(1, 2, 3)).min() > 4 * same_face.max()  # frame matters


def test_a_partial_download_is_resumed_with_a_range_request(server, tmp_path):
    target = tmp_path / "lfw"
    target.mkdir()
    archive = server.files["lfw.tgz"]
    kept = len(archive) // 3
    (target / "lfw.tgz.part").write_bytes(archive[:kept])
    fetch_lfw(target, server.remote_files(), progress=False, log=lambda _: None)
    asked = [(r, sent) for name, r, sent in server.requests if name == "lfw.tgz"]
    assert asked == [(f"bytes={kept}-", len(archive) - kept)]
    assert {path.name for path in target.iterdir()} == expected_layout()


@pytest.mark.parametrize("answer", ["ignore_range", "wrong_range"])
def test_a_server_that_ignores_range_gets_the_whole_file_again(server, tmp_path, answer):
    target = tmp_path / "lfw"
    target.mkdir()
    (target / "pairs.txt.part").write_bytes(b"garbage that a resume would keep")
    getattr(server, answer).add("pairs.txt")
    remote = next(r for r in server.remote_files() if r.name == "pairs.txt")
    assert download(remote, target).read_bytes() == SYNTHETIC["pairs.txt"]
    assert not (target / "pairs.txt.part").exists()


def test_a_broken_transfer_is_resumed_or_kept_for_the_next_run(server, tmp_path):
    target = tmp_path / "lfw"
    target.mkdir()
    archive = next(r for r in server.remote_files() if r.name == "lfw.tgz")
    server.cut_after["lfw.tgz"] = 1000
    assert download(archive, target).read_bytes() == server.files["lfw.tgz"]
    assert [r for name, r, _ in server.requests if name == "lfw.tgz"] == [None, "bytes=1000-"]
    (target / "lfw.tgz").unlink()
    server.cut_after["lfw.tgz"] = 700
    with pytest.raises(FetchError, match=r"cannot download .*lfw.tgz .*700 bytes kept"):
        download(archive, target, attempts=1)
    assert not (target / "lfw.tgz").exists()
    assert (target / "lfw.tgz.part").stat().st_size == 700
    download(archive, target, attempts=1)
    assert (target / "lfw.tgz").read_bytes() == server.files["lfw.tgz"]


def test_a_checksum_mismatch_is_refused_and_leaves_nothing_that_looks_complete(
    server, tmp_path, monkeypatch
):
    target = tmp_path / "lfw"
    with pytest.raises(FetchError, match=r"pairs.txt with sha256 [0-9a-f]{64}, not") as caught:
        fetch_lfw(target, server.remote_files(wrong="pairs.txt"), progress=False, log=print)
    assert "\n" not in str(caught.value)
    assert not (target / "pairs.txt").exists() and not (target / "pairs.txt.part").exists()
    assert not (target / "images").exists()
    monkeypatch.setenv("SPHEREVIZ_LFW", str(target))
    with pytest.raises(LfwNotFoundError, match="sphereviz fetch-lfw"):
        default_lfw_root()
    with pytest.raises(FetchError, match="lfw.tgz with sha256"):  # the archive: not unpacked
        fetch_lfw(target, server.remote_files(wrong="lfw.tgz"), progress=False, log=print)
    assert not (target / "images").exists() and not list(target.glob(".unpack-*"))
    (target / "people.txt").write_bytes(b"not the file")
    with pytest.raises(FetchError, match=r"people.txt is there but its sha256"):
        fetch_lfw(target, server.remote_files(), progress=False, log=print)


def test_an_archive_without_lfw_inside_is_refused_and_not_unpacked(server, tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("other/a.jpg")
        tar.addfile(info, io.BytesIO(b""))
    server.files["lfw.tgz"] = buffer.getvalue()
    with pytest.raises(FetchError, match="no lfw/ folder inside"):
        fetch_lfw(tmp_path / "lfw", server.remote_files(), progress=False, log=print)
    assert not (tmp_path / "lfw" / "images").exists()
    assert not list((tmp_path / "lfw").glob(".unpack-*"))


def test_without_a_network_the_command_fails_in_one_line_within_60_s(tmp_path):
    port = closed_port()
    environment = {
        **os.environ,
        "SPHEREVIZ_FETCH_LFW_MIRROR": f"http://127.0.0.1:{port}",
        "PYTHONPATH": str(REPO_ROOT),
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "sphereviz", "fetch-lfw", "--to", str(tmp_path / "lfw"),
         "--no-progress"],
        capture_output=True, text=True, env=environment, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert time.monotonic() - started < 60
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"sphereviz fetch-lfw: error: cannot download http://127.0.0.1:{port}/pairsDevTrain.txt"
    )
    assert "without a network" in lines[0] and "fetch-lfw --help" in lines[0]
    assert not (tmp_path / "lfw" / "images").exists()


def test_a_file_in_place_of_the_folder_is_one_line(tmp_path, capsys):
    from sphereviz.cli import main as cli_main

    (tmp_path / "lfw").write_text("")
    assert cli_main(["fetch-lfw", "--to", str(tmp_path / "lfw"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sphereviz fetch-lfw: error: ")


def test_a_server_that_never_answers_times_out(tmp_path):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/pairs.txt"
        started = time.monotonic()
        with pytest.raises(FetchError, match="timed out"):
            download(RemoteFile("pairs.txt", url, "0" * 64, "a test"), tmp_path, timeout=1)
        assert time.monotonic() - started < 10


def test_the_command_prints_the_folder_and_its_counts(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fetch_module, "LFW_FILES", tuple(server.remote_files()))
    assert main(["--to", str(tmp_path / "lfw"), "--no-progress", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert f"LFW is ready in {tmp_path / 'lfw'}: 6 images of 3 people" in out[-2]
    assert "SPHEREVIZ_LFW=" in out[-2]
    assert json.loads(out[-1]) == {"folder": str(tmp_path / "lfw"), "images": 6, "people": 3}
    with pytest.raises(SystemExit):
        main(["--to", str(tmp_path / "lfw"), "--timeout", "0"])
    assert "--timeout must be > 0" in capsys.readouterr().err


def test_the_urls_and_checksums_are_scikit_learns():
    lfw = pytest.importorskip("sklearn.datasets._lfw")
    ours = {remote.name: (remote.url, remote.sha256) for remote in fetch_module.LFW_FILES}
    for theirs in (lfw.ARCHIVE, *lfw.TARGETS):
        assert ours[theirs.filename] == (theirs.url, theirs.checksum)


def test_the_pinned_checksums_are_those_of_the_lfw_copy_here(lfw_root):
    """The copy in ../shared/data/lfw holds the official protocol files (its pairs files have
    scikit-learn's checksums) and the landmark file and licence of the SphereFace port."""
    for remote in fetch_module.LFW_FILES:
        if remote.unpack is None:
            assert fetch_module.sha256_of(lfw_root / remote.name) == remote.sha256, remote.name


# --- where LFW is found -------------------------------------------------------------------------


def lfw_folder(path: Path) -> Path:
    (path / "images").mkdir(parents=True)
    return path


@pytest.fixture()
def nowhere(tmp_path, monkeypatch):
    """No SPHEREVIZ_LFW, an empty cache folder, and a checkout with no shared/ beside it."""
    monkeypatch.delenv("SPHEREVIZ_LFW", raising=False)
    monkeypatch.delenv("SPHEREVIZ_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "pyproject.toml").write_text("")
    monkeypatch.setattr(lfw_module, "_REPOSITORY", checkout)
    return tmp_path


def test_default_lfw_root_looks_in_order(nowhere, monkeypatch):
    with pytest.raises(LfwNotFoundError) as caught:
        default_lfw_root()
    message = str(caught.value)
    assert "\n" not in message
    assert "sphereviz fetch-lfw" in message and "SPHEREVIZ_LFW" in message
    shared = lfw_folder(nowhere / "shared" / "data" / "lfw")
    assert default_lfw_root() == shared
    fetched = lfw_folder(nowhere / "cache" / "sphereviz" / "lfw")
    assert default_lfw_root() == fetched
    chosen = lfw_folder(nowhere / "mine")
    monkeypatch.setenv("SPHEREVIZ_LFW", str(chosen))
    assert default_lfw_root() == chosen
    monkeypatch.setenv("SPHEREVIZ_LFW", str(nowhere / "empty"))
    with pytest.raises(LfwNotFoundError, match=r"SPHEREVIZ_LFW=.*empty holds no LFW.*fetch-lfw"):
        default_lfw_root()


def test_the_cache_folder_is_sphereviz_cache_then_xdg_then_home(tmp_path, monkeypatch):
    from sphereviz.fileio import user_cache_dir

    for name in ("SPHEREVIZ_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "sphereviz"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "sphereviz"
    monkeypatch.setenv("SPHEREVIZ_CACHE", str(tmp_path / "mine"))
    assert user_cache_dir() == tmp_path / "mine"
    assert lfw_module.fetch_lfw_default_dir() == tmp_path / "mine" / "lfw"


def test_a_missing_landmark_file_names_fetch_lfw(tmp_path):
    root = lfw_folder(tmp_path / "lfw")
    with pytest.raises(LfwNotFoundError, match=r"lfw_landmark.txt not found.*sphereviz fetch-lfw"):
        default_landmarks(root)
    with pytest.raises(LfwNotFoundError, match="sphereviz fetch-lfw"):
        load_lfw_crops(["A/A_0001.jpg"], root)


def test_evaluate_lfw_without_lfw_is_one_line_naming_fetch_lfw(nowhere, capsys):
    from sphereviz.evaluate import main as evaluate_main

    assert evaluate_main(["--run", str(nowhere / "no-run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sphereviz evaluate-lfw: error: LFW not found")
    assert "sphereviz fetch-lfw" in err[0] and "SPHEREVIZ_LFW" in err[0]


def test_figures_faces_alone_uses_the_default_lfw(nowhere, capsys):
    from sphereviz.figures import main as figures_main

    assert figures_main(["--faces", "--out", str(nowhere / "fig"), "--quick"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sphereviz fetch-lfw" in err[0]
    assert not (nowhere / "fig").exists()
