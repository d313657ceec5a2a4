"""Atomic build folders for the face cache, and their recovery after a crash.

A build happens in a temporary hidden sibling ``.<name>.building-*`` that is renamed into place
only when complete (:func:`_replace_directory`), so an interrupted run never leaves a cache
that looks valid. A build folder records the process that owns it; one whose process was
killed (SIGKILL, power loss) is removed by the next build (:func:`_remove_abandoned_builds`),
and a cache left hidden by a crash between the two renames of a rebuild is put back
(:func:`_recover_interrupted_replacement`). The caller holds the cache's lock.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path

from sphereviz.data.face_cache import MANIFEST_NAME, load_face_cache
from sphereviz.fileio import chmod_as_umask

BUILD_OWNER_NAME = "build-owner.json"
ABANDONED_AFTER_SECONDS = 3600
"""A build folder without an owner record counts as abandoned when untouched this long."""


def _start_build_folder(out: Path) -> Path:
    """A fresh hidden sibling of ``out`` to build in, recording this process as its owner."""
    _remove_abandoned_builds(out)
    building = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    chmod_as_umask(building, directory=True)  # mkdtemp makes 0700 whatever the umask
    owner = {"pid": os.getpid(), "host": socket.gethostname()}
    (building / BUILD_OWNER_NAME).write_text(json.dumps(owner))
    return building


def _remove_abandoned_builds(out: Path) -> list[Path]:
    """Remove the temporary siblings of ``out`` that a killed build left behind; return them.

    ``.<name>.building-*``: abandoned when the process in its owner record no longer runs on
    this host, or, with no readable record (killed before writing it), when untouched for an
    hour; a build still running, here or on another host sharing the folder, is left alone.
    ``.<name>.old-*``: the replaced cache of a finished build, garbage once ``out`` exists.
    """
    removed = []
    for candidate in out.parent.glob(f".{out.name}.building-*"):
        finished = (candidate / MANIFEST_NAME).is_file() and not (
            candidate / BUILD_OWNER_NAME
        ).exists()  # complete but never moved into place: a crash between the renames
        if finished or _build_is_abandoned(candidate):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    if out.exists():
        for candidate in out.parent.glob(f".{out.name}.old-*"):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def _build_is_abandoned(building: Path) -> bool:
    try:
        owner = json.loads((building / BUILD_OWNER_NAME).read_text())
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        try:
            return time.time() - building.stat().st_mtime > ABANDONED_AFTER_SECONDS
        except OSError:
            return False
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def _recover_interrupted_replacement(out: Path) -> Path | None:
    """Put a cache back at ``out`` after a crash between the two renames of a rebuild.

    Called with the cache's lock held. With ``out`` missing, a finished build (its owner
    record already removed, a manifest written: the state just before the renames) becomes
    ``out``; failing that, the replaced old cache ``.<name>.old-*`` is moved back. Returns
    the folder restored, or None. The leftovers are removed afterwards by
    :func:`_remove_abandoned_builds`.
    """
    if out.exists() or out.is_symlink():
        return None
    finished = [
        folder
        for folder in out.parent.glob(f".{out.name}.building-*")
        if not (folder / BUILD_OWNER_NAME).exists() and (folder / MANIFEST_NAME).is_file()
    ]
    old = list(out.parent.glob(f".{out.name}.old-*"))
    for candidate in sorted(finished, key=_mtime, reverse=True) + sorted(
        old, key=_mtime, reverse=True
    ):
        try:
            load_face_cache(candidate)
        except (OSError, ValueError, KeyError):
            continue
        os.rename(candidate, out)
        return candidate
    return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _replace_directory(new: Path, out: Path) -> None:
    """Move the finished build ``new`` to ``out``, replacing an old cache there."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(out, old)
    os.rename(new, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
