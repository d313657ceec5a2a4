"""How a command reports a foreseeable fault: one line, ``sphereviz <command>: error: …``.

A bad input, a full disk, a read-only folder or a missing GPU is not a bug, so it gets one
line that says what was wrong and what to do, and a non-zero exit status. The traceback is
shown only with ``--debug`` (any command) or ``SPHEREVIZ_DEBUG=1``.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback

__all__ = ["debug_enabled", "describe_error", "report_error"]

_OS_ADVICE = {
    errno.ENOSPC: "the disk is full; free some space (or write elsewhere) and rerun",
    errno.EDQUOT: "the disk quota is exhausted; free some space and rerun",
    errno.EROFS: "the file system is read-only; choose a writable folder",
    errno.EACCES: "permission denied; choose a folder you can write, or fix its permissions",
    errno.EPERM: "operation not permitted; check the file's owner and permissions",
    errno.ELOOP: "a symbolic link loop; remove or fix the link",
    errno.ENOENT: "no such file or folder; check the path",
    errno.EISDIR: "a folder where a file is expected; give the file's path",
    errno.ENOTDIR: "a file where a folder is expected; check the path",
    errno.ENAMETOOLONG: "the path is too long",
    errno.EMFILE: "too many open files; raise `ulimit -n` or use fewer workers",
}


def debug_enabled() -> bool:
    """``SPHEREVIZ_DEBUG`` set to anything but "" or "0" (``--debug`` sets it)."""
    return os.environ.get("SPHEREVIZ_DEBUG", "") not in ("", "0")


def describe_error(error: BaseException) -> str:
    """One line for ``error``: an OSError by its file, its reason and what to do.

    The advice of :data:`_OS_ADVICE` is added to the system's own wording of the error
    ("No space left on device") only: a message written here (``DiskFullError``'s "not enough
    disk space …; free some space … and rerun") already says what to do.
    """
    if isinstance(error, OSError) and error.errno is not None:
        reason = error.strerror or os.strerror(error.errno)
        where = f"{error.filename}: " if error.filename else ""
        advice = _OS_ADVICE.get(error.errno)
        if advice and reason == os.strerror(error.errno):
            return f"{where}{reason} ({advice})"
        return f"{where}{reason}"
    text = " ".join(str(error).split()) or type(error).__name__
    return text


def report_error(command: str, error: BaseException, status: int = 2) -> int:
    """Print ``sphereviz <command>: error: <one line>`` (after the traceback under debug)."""
    if debug_enabled():
        traceback.print_exception(error)
    print(f"sphereviz {command}: error: {describe_error(error)}", file=sys.stderr, flush=True)
    return status
