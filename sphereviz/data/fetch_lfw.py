"""``sphereviz fetch-lfw``: download LFW into a folder laid out as the face commands expect.

``sphereviz fetch-lfw [--to DIR]`` (default :func:`~sphereviz.data.lfw.fetch_lfw_default_dir`)
leaves::

    DIR/images/<Name>/<Name>_NNNN.jpg     the original 250×250 images (lfw.tgz's lfw/ folder)
    DIR/pairs.txt                         View 2: 10 folds of 300 + 300 pairs
    DIR/pairsDevTrain.txt, pairsDevTest.txt   View 1
    DIR/people.txt, peopleDevTrain.txt, peopleDevTest.txt
    DIR/lfw_landmark.txt, lfw_landmark.LICENSE   5-point landmarks (250×250 frame), MIT
    DIR/SOURCES.md                        where each file came from, with its sha256

Where from (:data:`LFW_FILES`): the archive and the pairs files from the mirrors and with the
sha256 of scikit-learn's LFW fetcher (``sklearn.datasets._lfw.ARCHIVE`` and ``TARGETS``; a test
checks that they still agree); the people files from the LFW site (the sha256 of the official
files); the landmarks and their licence from clcarwin/sphereface_pytorch, pinned to a commit.

How (what scikit-learn's ``_fetch_remote`` does not: resume, a progress bar, atomic unpacking):
each file is downloaded to ``NAME.part`` (a ``.part`` left by an interrupted run is resumed
with an HTTP ``Range`` request), its sha256 checked (a mismatch removes it and stops), then
renamed to ``NAME``; the archive is unpacked into a temporary folder inside DIR whose ``lfw/``
is renamed to ``images/`` in one step, after every other file is in place, so a folder with
``images/`` is complete (that is what :func:`~sphereviz.data.lfw.default_lfw_root` looks for).
A file already in DIR with the right sha256 is kept, so a machine without a network is served
by putting the files there by hand (``--help`` lists them) and running the command again.

``SPHEREVIZ_FETCH_LFW_MIRROR=URL`` replaces each file's URL by ``URL/NAME`` (the tests point it
at a loopback server; the checksums stay the same).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sphereviz import __version__
from sphereviz.data.lfw import LANDMARK_FILE_NAME, fetch_lfw_default_dir, is_lfw_root
from sphereviz.errors import report_error
from sphereviz.fileio import check_free_space
from sphereviz.locks import FolderBusyError, FolderLock

MIRROR_VARIABLE = "SPHEREVIZ_FETCH_LFW_MIRROR"
DEFAULT_TIMEOUT = 20.0  # seconds per connection attempt and per read
CHUNK = 1 << 20
_LANDMARK_REPOSITORY = "clcarwin/sphereface_pytorch"
_LANDMARK_COMMIT = "e2f11f0b0f394cf75b9f65ce8d353e4390b0948c"
_LANDMARK_BASE = (
    f"https://raw.githubusercontent.com/{_LANDMARK_REPOSITORY}/{_LANDMARK_COMMIT}"
)  # fmt: skip


@dataclass(frozen=True)
class RemoteFile:
    """One file to download: its name in DIR, its URL, its sha256 and where it comes from.

    ``unpack``: for an archive, the folder inside it that becomes ``DIR/images``.
    """

    name: str
    url: str
    sha256: str
    origin: str
    unpack: str | None = None


#: scikit-learn's ``sklearn.datasets._lfw.TARGETS`` (figshare copies of the LFW site's files).
_SKLEARN = "scikit-learn's LFW fetcher (figshare copy of the LFW site's file)"
_LFW_SITE = "the LFW site (University of Massachusetts, Amherst)"
_LANDMARKS = (
    f"{_LANDMARK_REPOSITORY} at commit {_LANDMARK_COMMIT[:7]}, MIT License, "
    "Copyright (c) 2017 carwin"
)

LFW_FILES: tuple[RemoteFile, ...] = (
    RemoteFile(
        "pairsDevTrain.txt",
        "https://ndownloader.figshare.com/files/5976012",
        "1d454dada7dfeca0e7eab6f65dc4e97a6312d44cf142207be28d688be92aabfa",
        _SKLEARN,
    ),
    RemoteFile(
        "pairsDevTest.txt",
        "https://ndownloader.figshare.com/files/5976009",
        "7cb06600ea8b2814ac26e946201cdb304296262aad67d046a16a7ec85d0ff87c",
        _SKLEARN,
    ),
    RemoteFile(
        "pairs.txt",
        "https://ndownloader.figshare.com/files/5976006",
        "ea42330c62c92989f9d7c03237ed5d591365e89b3e649747777b70e692dc1592",
        _SKLEARN,
    ),
    RemoteFile(
        "people.txt",
        "http://vis-www.cs.umass.edu/lfw/people.txt",
        "bc8fa2b7f25c895cf7efb6de4f4fc27ca8b8d1cfa63350ad8b96eae2b198d365",
        _LFW_SITE,
    ),
    RemoteFile(
        "peopleDevTrain.txt",
        "http://vis-www.cs.umass.edu/lfw/peopleDevTrain.txt",
        "2e58df13ba4cc143189336e001cc2c195f1dfa5b29a6475c02857be353c2a2fa",
        _LFW_SITE,
    ),
    RemoteFile(
        "peopleDevTest.txt",
        "http://vis-www.cs.umass.edu/lfw/peopleDevTest.txt",
        "c3ed1f90499473401542101a56c14c1d82396bb8218c67a356d7460601047555",
        _LFW_SITE,
    ),
    RemoteFile(
        LANDMARK_FILE_NAME,
        f"{_LANDMARK_BASE}/data/lfw_landmark.txt",
        "e517ec9b03232baaf10c7d5f82f0df6f500bb6cca1ead1126642cd42ff3ad039",
        _LANDMARKS,
    ),
    RemoteFile(
        "lfw_landmark.LICENSE",
        f"{_LANDMARK_BASE}/LICENSE",
        "18ef1dfc9c78211e82d9526348fc26fb047e789f43e088ad8b4466c03bb70fb9",
        f"the licence of {LANDMARK_FILE_NAME}: {_LANDMARKS}",
    ),
    RemoteFile(
        "lfw.tgz",  # scikit-learn's ARCHIVE; unpacked into images/, then removed
        "https://ndownloader.figshare.com/files/5976018",
        "055f7d9c632d7370e6fb4afc7468d40f970c34a80d4c6f50ffec63f5a8d536c0",
        "scikit-learn's LFW fetcher (figshare copy of the LFW site's lfw.tgz)",
        unpack="lfw",
    ),
)


class FetchError(Exception):
    """A download or a check failed; the message says which URL and what to do."""


class _NetworkError(Exception):
    """The network failed; ``retry``: after some progress, so another attempt may finish."""

    def __init__(self, reason: str, retry: bool = False):
        super().__init__(reason)
        self.retry = retry


def mirrored(files: Sequence[RemoteFile]) -> tuple[RemoteFile, ...]:
    """``files`` with URLs under ``$SPHEREVIZ_FETCH_LFW_MIRROR`` when it is set."""
    mirror = os.environ.get(MIRROR_VARIABLE, "").rstrip("/")
    if not mirror:
        return tuple(files)
    return tuple(replace(remote, url=f"{mirror}/{remote.name}") for remote in files)


def sha256_of(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return " ".join(str(error).split()) or type(error).__name__


def _open(url: str, offset: int, timeout: float):
    """The response to a GET of ``url`` from byte ``offset``; None when the server says the
    range starts at the end (HTTP 416: a ``.part`` that is already whole)."""
    headers = {"User-Agent": f"sphereviz/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and offset:
            return None
        raise _NetworkError(_reason(error)) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise _NetworkError(_reason(error)) from None


def _range_start(response) -> int | None:
    """The first byte of a 206 response (``Content-Range: bytes START-END/TOTAL``)."""
    value = response.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _transfer(remote: RemoteFile, part: Path, timeout: float, progress: bool) -> None:
    """Append what the server has beyond ``part``'s size (all of it when it ignores Range)."""
    from tqdm.auto import tqdm

    offset = part.stat().st_size if part.exists() else 0
    response = _open(remote.url, offset, timeout)
    if response is None:
        return
    with response:
        if offset and response.status == 206 and _range_start(response) != offset:
            part.unlink()
            raise _NetworkError(f"the server sent another range than bytes={offset}-", True)
        if offset and response.status != 206:
            offset = 0  # the server ignored the range and sends the whole file: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        if total is not None and offset == 0:
            check_free_space(part.parent, total * (2 if remote.unpack else 1), remote.name)
        received = 0
        with (
            open(part, "ab" if offset else "wb") as out,
            tqdm(
                total=total, initial=offset, desc=remote.name, unit="B", unit_scale=True,
                unit_divisor=1024, disable=not progress, leave=False,
            ) as bar,
        ):  # fmt: skip
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as error:
                    raise _NetworkError(_reason(error), received > 0) from None
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and offset + received < total:
            raise _NetworkError(
                f"the connection closed after {offset + received} of {total} bytes", received > 0
            )


def _manual_steps(folder: Path, remote: RemoteFile) -> str:
    return (
        f"to do it by hand (e.g. without a network here), download {remote.url} on another "
        f"machine, save it as {folder / remote.name} (sha256 {remote.sha256[:12]}…; `sphereviz "
        f"fetch-lfw --help` lists every file) and run `sphereviz fetch-lfw --to {folder}` "
        "again, which also resumes a partial download"
    )


def download(
    remote: RemoteFile,
    folder: str | os.PathLike,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = False,
    attempts: int = 3,
) -> Path:
    """``folder/remote.name``, downloaded (resuming ``NAME.part``) and its sha256 checked.

    A file already there is checked, not downloaded again. A transfer that breaks after some
    bytes came in is resumed up to ``attempts`` times; a server that cannot be reached fails
    at once. Every failure is a :class:`FetchError` naming the URL and the manual steps; a
    checksum mismatch removes the ``.part`` (resuming it could not fix it).
    """
    folder = Path(folder)
    final = folder / remote.name
    if final.is_file():
        actual = sha256_of(final)
        if actual != remote.sha256:
            raise FetchError(
                f"{final} is there but its sha256 is {actual}, not {remote.sha256} ({remote.url}); "
                "remove it (or replace it by the right file) and run again"
            )
        return final
    part = folder / f"{remote.name}.part"
    for attempt in range(1, attempts + 1):
        try:
            _transfer(remote, part, timeout, progress)
            break
        except _NetworkError as error:
            if not error.retry or attempt == attempts:
                kept = part.stat().st_size if part.exists() else 0
                partial = f"; {kept} bytes kept in {part}" if kept else ""
                raise FetchError(
                    f"cannot download {remote.url} ({error}){partial}; "
                    + _manual_steps(folder, remote)
                ) from None
    actual = sha256_of(part)
    if actual != remote.sha256:
        part.unlink()
        raise FetchError(
            f"{remote.url} gave {remote.name} with sha256 {actual}, not {remote.sha256}; removed "
            f"it (a wrong or changed file): run again, or " + _manual_steps(folder, remote)
        )
    os.replace(part, final)
    return final


def _member_is_safe(member: tarfile.TarInfo) -> bool:
    parts = Path(member.name).parts
    return not (Path(member.name).is_absolute() or ".." in parts) and (
        member.isfile() or member.isdir()
    )


def unpack_images(archive: Path, folder: Path, inside: str) -> Path:
    """Unpack ``archive`` into a temporary folder in ``folder`` and rename its ``inside``
    folder to ``folder/images`` (one rename: ``images/`` is whole or absent)."""
    for stale in folder.glob(".unpack-*"):  # left by a run that was killed while unpacking
        shutil.rmtree(stale, ignore_errors=True)
    temporary = Path(tempfile.mkdtemp(prefix=".unpack-", dir=folder))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = [member for member in tar.getmembers() if _member_is_safe(member)]
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(temporary, members=members, filter="data")
                else:  # Python < 3.10.12: the members were checked above
                    tar.extractall(temporary, members=members)
        except (tarfile.TarError, EOFError) as error:
            raise FetchError(
                f"{archive}: not a readable tar archive ({error}); remove it and run again"
            ) from None
        source = temporary / inside
        if not source.is_dir():
            raise FetchError(
                f"{archive}: no {inside}/ folder inside; is it LFW's lfw.tgz? remove it and run "
                "again"
            )
        images = folder / "images"
        os.replace(source, images)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return images


def _sources_text(files: Sequence[RemoteFile]) -> str:
    lines = [
        "# LFW, as fetched by `sphereviz fetch-lfw`",
        "",
        "| file | from | sha256 |",
        "|---|---|---|",
    ]
    for remote in files:
        name = f"`{remote.name}` (unpacked: `images/`)" if remote.unpack else f"`{remote.name}`"
        lines.append(f"| {name} | {remote.origin}: <{remote.url}> | `{remote.sha256}` |")
    lines += [
        "",
        "`images/<Name>/<Name>_NNNN.jpg` are the original 250×250 images; `lfw_landmark.txt` "
        "gives 5 points per image in that frame (landmark frame 250).",
        "",
        "Terms: LFW has no licence file; it is a research benchmark. When figures or results "
        'use it, cite G. B. Huang, M. Ramesh, T. Berg, E. Learned-Miller, "Labeled Faces in the '
        'Wild: A Database for Studying Face Recognition in Unconstrained Environments", UMass '
        "Amherst Technical Report 07-49, 2007. `lfw_landmark.txt` is under the MIT License of "
        "`lfw_landmark.LICENSE` (Copyright (c) 2017 carwin).",
        "",
    ]
    return "\n".join(lines)


def fetch_lfw(
    to: str | os.PathLike | None = None,
    files: Sequence[RemoteFile] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool | None = None,
    keep_archive: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Download and lay out LFW in ``to`` (default :func:`fetch_lfw_default_dir`); return it.

    ``files``: what to download (default :data:`LFW_FILES`, under ``$SPHEREVIZ_FETCH_LFW_MIRROR``
    when set); the archive comes last and is unpacked into ``images/``, then removed unless
    ``keep_archive``. A folder that already has ``images/`` keeps it. Failures raise
    :class:`FetchError` (one line: the URL and the manual steps).
    """
    folder = Path(to).expanduser() if to is not None else fetch_lfw_default_dir()
    files = mirrored(LFW_FILES) if files is None else tuple(files)
    progress = sys.stderr.isatty() if progress is None else progress
    folder.mkdir(parents=True, exist_ok=True)  # an OSError here is the command's one line
    with FolderLock(folder, "LFW folder"):
        for remote in sorted(files, key=lambda r: r.unpack is not None):  # the archive last
            if remote.unpack is not None and is_lfw_root(folder):
                log(f"{folder / 'images'}: already there")
                continue
            had = (folder / remote.name).is_file()
            path = download(remote, folder, timeout, progress)
            log(f"{path}: {'already there' if had else 'downloaded'}, sha256 ok")
            if remote.unpack is not None:
                log(f"unpacking {path.name} → {folder / 'images'}")
                unpack_images(path, folder, remote.unpack)
                if not keep_archive:
                    path.unlink()
        (folder / "SOURCES.md").write_text(_sources_text(files), encoding="utf-8")
    return folder


def _file_table() -> str:
    return "\n".join(
        f"  {remote.name:<22} {remote.url}\n  {'':<22} sha256 {remote.sha256}"
        for remote in LFW_FILES
    )


def main(argv: list[str] | None = None) -> int:
    """``sphereviz fetch-lfw``: download LFW, its protocol files and its landmarks."""
    from sphereviz.data.lfw import LFW_ENVIRONMENT_VARIABLE
    from sphereviz.fileio import print_json_summary

    parser = argparse.ArgumentParser(
        prog="sphereviz fetch-lfw",
        description="Download LFW (the original 250×250 images), its View 1 / View 2 protocol "
        "files and the 5-point landmark file into one folder, checking each file's sha256 and "
        "resuming an interrupted download.",
        epilog=f"Files (put them in DIR by hand on a machine without a network):\n{_file_table()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--to", type=Path, default=None, metavar="DIR",
        help=f"the LFW folder to fill (default: {fetch_lfw_default_dir()}, which every face "
        f"command finds by itself; elsewhere, set {LFW_ENVIRONMENT_VARIABLE}=DIR)",
    )  # fmt: skip
    parser.add_argument(
        "--keep-archive", action="store_true", help="keep lfw.tgz after unpacking it"
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for a server (default {DEFAULT_TIMEOUT:g})",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--json", action="store_true", help="print a JSON summary last")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error(f"--timeout must be > 0, got {args.timeout:g}")
    try:
        folder = fetch_lfw(
            args.to, timeout=args.timeout, progress=False if args.no_progress else None,
            keep_archive=args.keep_archive,
        )  # fmt: skip
    except (FetchError, FolderBusyError) as error:
        return report_error("fetch-lfw", error, status=1)
    people = [path for path in (folder / "images").iterdir() if path.is_dir()]
    images = sum(len(list(person.glob("*.jpg"))) for person in people)
    hint = (
        ""
        if folder == fetch_lfw_default_dir()
        else f"; elsewhere than the default folder, set {LFW_ENVIRONMENT_VARIABLE}={folder}"
    )
    print(f"LFW is ready in {folder}: {images} images of {len(people)} people{hint}")
    if args.json:
        print_json_summary({"folder": str(folder), "images": images, "people": len(people)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
