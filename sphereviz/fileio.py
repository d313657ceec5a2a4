"""Small file helpers shared by every layer: atomic writes, checked text reads, the ``--json``
summary line.

Files written here get the permissions every other tool gives under the process's umask
(0644 under umask 022), not the 0600 of a temporary file.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success, rename it over ``path``.

    A crash or an exception leaves ``path`` as it was (old content or absent), never half
    written: the rename is atomic on POSIX file systems.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~current_umask())
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json_atomic(path: str | os.PathLike, data) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def print_json_summary(summary: dict) -> None:
    """Print the machine-readable summary that ``--json`` promises as the last line.

    Strict JSON: a NaN or infinite number (a one-seed standard deviation) becomes ``null``.
    """
    print(json.dumps(_finite_or_null(summary), sort_keys=True, allow_nan=False), flush=True)


def _finite_or_null(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(item) for item in value]
    return value


def current_umask() -> int:
    """The process's umask (read from /proc on Linux; elsewhere set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def chmod_as_umask(path: str | os.PathLike, directory: bool = False) -> None:
    """Give ``path`` the mode a plain ``open``/``mkdir`` would: 0666 (0777 for folders) & ~umask.

    For the files and folders made by ``tempfile`` (0600 / 0700 whatever the umask).
    """
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def user_cache_dir() -> Path:
    """Where sphereviz keeps what it can rebuild (parsed data, downloads): ``$SPHEREVIZ_CACHE``,
    else ``$XDG_CACHE_HOME/sphereviz``, else ``~/.cache/sphereviz``."""
    if os.environ.get("SPHEREVIZ_CACHE"):
        return Path(os.environ["SPHEREVIZ_CACHE"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "sphereviz"


def check_regular_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` as a Path if it is an existing regular file, else a ValueError that says why.

    A folder, a FIFO (which would block a reader for ever), a device or a socket given where a
    file is expected, a symlink loop and a missing file are each named.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ValueError(f"{what} {path} does not exist") from None
    except OSError as error:  # ELOOP, EACCES, ENAMETOOLONG …
        raise ValueError(f"{what} {path} cannot be read ({error.strerror or error})") from None
    if stat.S_ISDIR(mode):
        raise ValueError(f"{what} {path} is a folder; give the path of the file itself")
    if not stat.S_ISREG(mode):
        raise ValueError(
            f"{what} {path} is not a regular file (a FIFO, device or socket); give a file"
        )
    return path


def read_text_file(path: str | os.PathLike, what: str = "file") -> str:
    """The text of a UTF-8 file (a leading byte-order mark is dropped), checked first.

    A file in another encoding is a ValueError naming the file, the encoding expected and
    where decoding failed, instead of a ``UnicodeDecodeError`` or a wrong parse.
    """
    path = check_regular_file(path, what)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{what} {path} cannot be read ({error.strerror or error})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{what} {path} is not UTF-8 text (byte {error.start}: {error.reason}); convert it "
            "to UTF-8, e.g. `iconv -f latin1 -t utf-8`"
        ) from None


class DiskFullError(OSError):
    """The disk (or quota) filled up while writing; what was written before is kept."""


def check_writable_folder(path: str | os.PathLike, what: str = "folder") -> Path:
    """``path`` as a Path if it is (or can be made as) a writable folder, else a ValueError.

    Refused: a file in its place, a read-only file system, a folder without write permission
    (for this user), checked on ``path`` or, while it does not exist yet, on its nearest
    existing parent.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path} is a file, not a folder; give a folder path")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        try:
            read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        why = "is on a read-only file system" if read_only else "is not writable by this user"
        raise ValueError(
            f"{what} {path}: {existing} {why}; choose a writable folder (--out), or copy the "
            "run elsewhere to continue it"
        )
    return path


def free_bytes(path: str | os.PathLike) -> int:
    """Bytes free for this user on the file system holding ``path`` (or its nearest parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def check_free_space(path: str | os.PathLike, needed: int, what: str) -> None:
    """Raise :class:`DiskFullError` before writing when ``needed`` bytes would not fit."""
    free = free_bytes(path)
    if needed > free:
        raise DiskFullError(
            errno.ENOSPC,
            f"not enough disk space for {what} in {path}: needs {needed / 1e6:.1f} MB, "
            f"{free / 1e6:.1f} MB free; free some space (or choose another --out) and rerun",
        )


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` is a full disk or quota (also torch's zip writer's RuntimeError)."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    text = str(error)
    return isinstance(error, RuntimeError) and (
        "No space left" in text or "file write failed" in text or "inline_container" in text
    )


@contextmanager
def disk_full_as_error(folder: str | os.PathLike, kept_epoch: int) -> Iterator[None]:
    """Turn a full disk while writing a run's epoch files into a :class:`DiskFullError`
    that says so and that the checkpoint of epoch ``kept_epoch`` is kept."""
    try:
        yield
    except (OSError, RuntimeError) as error:
        if not is_disk_full(error) or isinstance(error, DiskFullError):
            raise
        kept = (
            f"the last good checkpoint (after epoch {kept_epoch}) is kept"
            if kept_epoch > 0
            else "no checkpoint was written yet"
        )
        raise DiskFullError(
            errno.ENOSPC,
            f"the disk holding {folder} is full ({free_bytes(folder) / 1e6:.1f} MB free); "
            f"{kept}. Free some space and continue with --resume",
        ) from error
