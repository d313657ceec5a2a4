"""One writer per folder: an exclusive lock beside a run folder or a face cache while it is written.

The lock is :class:`filelock.FileLock` (an ``flock`` on ``.<name>.lock`` beside the folder), so
the operating system releases it when its process ends, killed or not: a lock left by a dead
process is simply free again. Beside it, ``.<name>.lock.holder`` records who holds it (pid,
host, command, start time), so a second writer refuses at once and names the holder, and a
writer that takes over a lock whose recorded holder is gone says so
(:attr:`FolderLock.stale_holder`).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import warnings
from pathlib import Path

from filelock import FileLock, Timeout

__all__ = ["FolderBusyError", "FolderLock", "StaleLockWarning", "lock_path_for"]


class FolderBusyError(ValueError):
    """Another process is writing the folder (it holds the folder's lock)."""


class StaleLockWarning(UserWarning):
    """The lock was free but its holder record remained: that writer was killed mid-write."""


def lock_path_for(folder: str | os.PathLike) -> Path:
    """``<parent>/.<name>.lock``: beside the folder, so it survives the folder's renames."""
    folder = Path(folder)
    name = folder.name or folder.resolve().name
    return folder.parent / f".{name}.lock"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class FolderLock:
    """Hold the exclusive writer's lock of ``folder`` (a context manager; not re-entrant).

    ``what`` names the folder's kind in messages ("run folder", "face cache"). Entering raises
    :class:`FolderBusyError` at once when another process holds the lock.
    """

    def __init__(self, folder: str | os.PathLike, what: str = "folder"):
        self.folder = Path(folder)
        self.what = what
        self.path = lock_path_for(self.folder)
        self.holder_path = self.path.with_name(self.path.name + ".holder")
        self.stale_holder: dict | None = None
        self._lock = FileLock(str(self.path), timeout=0, is_singleton=False)

    def _read_holder(self) -> dict | None:
        try:
            holder = json.loads(self.holder_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def acquire(self) -> FolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            holder = self._read_holder() or {}
            who = (
                f"process {holder.get('pid', '?')} on {holder.get('host', '?')} "
                f"({holder.get('command', '?')}, since {holder.get('started', '?')})"
                if holder
                else "another process"
            )
            raise FolderBusyError(
                f"{self.folder}: this {self.what} is being written by {who}; wait for it to "
                f"finish (or stop it), or choose another folder (lock: {self.path})"
            ) from None
        previous = self._read_holder()
        if previous is not None:  # the lock was free, so its recorded holder ended unclean
            self.stale_holder = previous
            warnings.warn(self.stale_message, StaleLockWarning, stacklevel=3)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(["sphereviz", *sys.argv[1:]])[:200],
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self.holder_path.write_text(json.dumps(holder), encoding="utf-8")
        return self

    def release(self) -> None:
        try:
            self.holder_path.unlink()
        except OSError:
            pass
        self._lock.release()

    @property
    def stale_message(self) -> str | None:
        """A line about the stale lock taken over, or None."""
        holder = self.stale_holder
        if holder is None:
            return None
        pid = holder.get("pid")
        here = holder.get("host") == socket.gethostname()
        alive = here and isinstance(pid, int) and _process_alive(pid)
        state = "gone" if not here else ("pid reused" if alive else "no longer running")
        return (
            f"{self.folder}: took over a stale lock of process {pid} on {holder.get('host')} "
            f"({state}); its writing was interrupted"
        )

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
