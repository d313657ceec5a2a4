"""``sphereviz prepare-faces``: decode, align and cache a face folder as memory-mappable arrays.

The folder may also be CASIA-WebFace's packed forms, insightface's RecordIO or a zip plus a
landmark list (:mod:`sphereviz.data.sources`); they share the selection and the cache.

This module is the orchestration: it checks the inputs, selects the images to align, writes
the manifest, warns about skipped images and compacts the crops. The cache's files are
:mod:`sphereviz.data.face_cache`'s; the worker processes that align into them,
:mod:`sphereviz.data.align_pool`'s; the build folder renamed into place when complete (and its
recovery after a crash), :mod:`sphereviz.data.build_folder`'s.

The content hash covers the selected files (relative path, size, mtime), the landmark file's
stamp, the selection and alignment parameters and the cache format. A second call with the same
inputs only lists the folder, recomputes the hash and reuses the cache; any change rebuilds it.

Reliability: one writer per cache (``.<name>.lock`` beside it, :mod:`sphereviz.locks`; a
second ``prepare-faces`` into the same ``--out`` refuses and names the holder); every run,
also one that reuses the cache, first puts back a cache left hidden by a crash between the two
renames of a rebuild and removes what killed builds left. The space needed is checked before
writing and the file's blocks are allocated up front (``posix_fallocate``); nothing is written
through a memory map, so a full disk is an ``OSError`` with a message, never a SIGBUS. Images
that decode but cannot hold a face (too small, landmarks off the image or with coincident
eyes, a crop almost all one colour) are skipped and counted by reason in the manifest.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from sphereviz.data.align import CROP_SHAPE, CROPS, REFERENCE_POINTS, LandmarkFrame, read_landmarks
from sphereviz.data.align_pool import (
    _create_npy,
    _write_rows,
    align_to_file,
    create_crop_file,
)
from sphereviz.data.build_folder import (
    BUILD_OWNER_NAME,
    _recover_interrupted_replacement,
    _remove_abandoned_builds,
    _replace_directory,
    _start_build_folder,
)
from sphereviz.data.face_cache import (
    CACHE_FORMAT,
    CACHE_VERSION,
    MANIFEST_NAME,
    FaceCache,
    _existing_cache_hash,
    load_face_cache,
)
from sphereviz.data.faces import CASIA_LFW_OVERLAP, FaceFolder
from sphereviz.data.readers import CropReader, file_stamp
from sphereviz.data.sources import FaceSource, open_face_source
from sphereviz.errors import report_error
from sphereviz.fileio import (
    check_free_space,
    check_regular_file,
    check_writable_folder,
    print_json_summary,
)
from sphereviz.locks import FolderLock
from sphereviz.validation import check_choice

__all__ = [
    "SKIP_KINDS",
    "SkippedImagesWarning",
    "build_parser",
    "main",
    "prepare_faces",
    "skip_reasons",
]

_ALIGNMENT = {
    "recordio": "packed 112×112, columns 8…103 (ArcFace template = SphereFace's + 8 px in x)",
    "zip": "5-point similarity",
}


class SkippedImagesWarning(UserWarning):
    """Some images could not be decoded (or had no landmarks) and were left out."""


# ---------------------------------------------------------------------------------------------
# The inputs, the work and the build.


def _content_hash(
    folder: FaceFolder | FaceSource, landmarks_stamp: dict | None, parameters: dict
) -> str:
    digest = hashlib.sha256()
    header = {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "root": str(Path(folder.root).resolve()),
        "landmarks": landmarks_stamp,
        "parameters": parameters,
        "crop": list(CROP_SHAPE),
        "reference_points": REFERENCE_POINTS.tolist(),
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    for face in folder.files:
        digest.update(f"\n{face.relative_path}\t{face.size}\t{face.mtime_ns}".encode())
    return digest.hexdigest()


def prepare_faces(
    root: str | os.PathLike,
    out: str | os.PathLike,
    landmarks: str | os.PathLike | None = None,
    landmark_frame: LandmarkFrame = None,
    identities: Sequence[str] | None = None,
    top_k_identities: int | None = None,
    min_images_per_identity: int = 1,
    max_images_per_identity: int | None = None,
    exclude: Sequence[str] = CASIA_LFW_OVERLAP,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    force: bool = False,
    crop: str = "window",
) -> FaceCache:
    """Decode, align and cache the faces of ``root/<identity>/<image>`` into the folder ``out``.

    ``root`` may also be one of the packed CASIA-WebFace forms (found by
    :func:`~sphereviz.data.sources.detect_form`): a folder with insightface's ``train.rec`` +
    ``train.idx`` (:mod:`~sphereviz.data.recordio`; ``landmarks`` must be ``None``) or a
    ``.zip`` whose landmark list ``landmarks`` is (:mod:`~sphereviz.data.casia_zip`). The
    manifest records the form (``inputs.form``); damaged records and members are skipped as
    unreadable images are.

    Selection options are :class:`~sphereviz.data.faces.FaceFolder`'s. With a ``landmarks``
    file (LFW's format, see :func:`~sphereviz.data.align.read_landmarks`; ``landmark_frame``
    the image size the landmarks were measured on), every image is aligned by the 5-point
    similarity transform and images without a landmark line are skipped; without one, every
    image gets the fixed centre crop ``crop``: "window" (LFW's average alignment, for
    face-detector crops such as LFW and CASIA-WebFace) or "whole" (faces that fill the image
    already, such as the ORL faces: all of the image at the crop's aspect). Unreadable images
    are skipped, counted, named in a :class:`SkippedImagesWarning` and listed in the manifest.

    Returns the cache (``reused=True`` when an up-to-date cache was found and nothing was
    decoded). ``force=True`` rebuilds regardless.

    ``workers`` processes (default: every core) decode in parallel. They are spawned, so a
    *script* that calls this with more than one worker needs the usual
    ``if __name__ == "__main__":`` guard; notebooks and the ``sphereviz prepare-faces`` command
    need nothing.
    """
    started = time.perf_counter()
    out = Path(out)
    folder = open_face_source(
        root,
        landmarks=landmarks,
        identities=identities,
        top_k_identities=top_k_identities,
        min_images_per_identity=min_images_per_identity,
        max_images_per_identity=max_images_per_identity,
        exclude=exclude,
        seed=seed,
    )
    inputs = _describe_inputs(folder, landmarks, landmark_frame, crop)
    check_writable_folder(out.parent, "face cache folder")
    with FolderLock(out, "face cache"):
        _recover_interrupted_replacement(out)
        _remove_abandoned_builds(out)  # on every run, also one that reuses the cache
        if _existing_cache_hash(out) == inputs.content_hash and not force:
            return dataclasses.replace(load_face_cache(out), reused=True)
        work = _select_work(folder, inputs.landmarks_path, inputs.landmark_frame)
        out.parent.mkdir(parents=True, exist_ok=True)
        crop_bytes = math.prod(CROP_SHAPE)
        check_free_space(
            out.parent, len(work.positions) * crop_bytes + 2**20,
            f"a cache of {len(work.positions)} faces",
        )  # fmt: skip
        building = _start_build_folder(out)
        try:
            built = _align_into(building, folder, work, inputs, workers, progress)
            manifest = _manifest(folder, inputs, built, time.perf_counter() - started)
            (building / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
            (building / BUILD_OWNER_NAME).unlink()
            _replace_directory(building, out)
        finally:
            if building.exists():
                shutil.rmtree(building, ignore_errors=True)
        _warn_about_skipped(folder, built.skipped, out)
        return load_face_cache(out)


@dataclass(frozen=True)
class _Inputs:
    """What a cache is built from and its content hash (the cache is reused when it matches)."""

    landmarks_path: Path | None
    landmark_frame: LandmarkFrame
    crop: str
    landmarks_stamp: dict | None
    source_stamp: dict | None
    parameters: dict
    content_hash: str


def _describe_inputs(folder, landmarks, landmark_frame: LandmarkFrame, crop: str) -> _Inputs:
    """Check the landmark and crop options; stamp the landmark file (and a packed source's
    files), collect the parameters and hash them with the selected files' sizes and times."""
    crop = check_choice("crop", crop, CROPS)
    landmarks_path = None if landmarks is None else Path(landmarks)
    if landmarks_path is not None:
        check_regular_file(landmarks_path, "landmark file")
    if landmarks_path is None and landmark_frame is not None:
        raise ValueError("landmark_frame only makes sense with a landmarks file")
    if crop == "whole" and (landmarks_path is not None or folder.form != "folder"):
        raise ValueError(
            "crop 'whole' is for a folder of images without landmarks; with landmarks (or a "
            "packed form) the faces are aligned, so leave the crop at 'window'"
        )
    centre = "centre crop" if crop == "window" else "whole image"
    folder_alignment = "5-point similarity" if landmarks_path else centre
    parameters = {
        **folder.parameters(),
        "landmark_frame": landmark_frame,
        "alignment": _ALIGNMENT.get(folder.form, folder_alignment),
    }
    landmarks_stamp = None if landmarks_path is None else file_stamp(landmarks_path)
    source_stamp = None
    inputs_stamp = landmarks_stamp
    if folder.form != "folder":
        parameters["form"] = folder.form
        source_stamp = folder.stamp()
        inputs_stamp = {"landmarks": landmarks_stamp, "source_files": source_stamp}
    content_hash = _content_hash(folder, inputs_stamp, parameters)
    return _Inputs(
        landmarks_path, landmark_frame, crop, landmarks_stamp, source_stamp, parameters,
        content_hash,
    )  # fmt: skip


@dataclass
class _Work:
    """The selected images that go to the workers: their positions in the source, the
    reader's reference to each (None: the folder's file paths), their landmarks, the reader,
    and the images already skipped (no landmark line, missing from a packed file)."""

    positions: list[int]
    items: list | None
    points: np.ndarray | None
    reader: CropReader | None
    skipped: list[dict]


def _select_work(folder, landmarks_path: Path | None, landmark_frame: LandmarkFrame) -> _Work:
    if folder.form != "folder":
        work = folder.work()
        return _Work(work.positions, work.items, work.landmarks, work.reader, list(work.skipped))
    positions = list(range(len(folder)))
    if landmarks_path is None:
        return _Work(positions, None, None, None, [])
    relative_paths = folder.relative_paths
    table = read_landmarks(landmarks_path, landmark_frame)
    skipped = [
        {"path": relative_paths[i], "reason": f"no landmarks in {landmarks_path.name}"}
        for i in positions
        if relative_paths[i] not in table
    ]
    positions = [i for i in positions if relative_paths[i] in table]
    points = np.stack([table[relative_paths[i]] for i in positions]) if positions else None
    return _Work(positions, None, points, None, skipped)


@dataclass
class _Built:
    """What :func:`_align_into` wrote: the kept images' labels (renumbered over the identities
    that kept an image), those identities' names, the identities left without one, and every
    skipped image (sorted by path)."""

    labels: np.ndarray
    names: list[str]
    dropped: list[str]
    skipped: list[dict]


def _align_into(building: Path, folder, work: _Work, inputs: _Inputs, workers, progress) -> _Built:
    """Align the work into ``building/images.npy`` (failures compacted away) and write the
    labels, identity names and paths beside it."""
    relative_paths, positions = folder.relative_paths, work.positions
    images_path = building / "images.npy"
    offset = create_crop_file(images_path, len(positions))
    items = work.items
    if items is None:
        root_text = os.fspath(folder.root)
        items = [os.path.join(root_text, relative_paths[i]) for i in positions]
    failures = align_to_file(
        images_path, offset, items, work.points, inputs.landmark_frame, workers, progress,
        reader=work.reader, crop=inputs.crop,
    )  # fmt: skip
    failed = {index for index, _ in failures}
    skipped = work.skipped + [
        {"path": relative_paths[positions[index]], "reason": reason} for index, reason in failures
    ]
    kept = [i for position, i in enumerate(positions) if position not in failed]
    if not kept:
        raise ValueError(
            f"none of the {len(folder)} selected images under {folder.root} could be "
            f"decoded and aligned (e.g. {skipped[0]['reason'] if skipped else '?'})"
        )
    if failed:
        _compact(images_path, [p for p in range(len(positions)) if p not in failed])
    labels = folder.labels[kept]
    present = np.unique(labels)
    present_set = set(present.tolist())
    dropped = [name for k, name in enumerate(folder.identity_names) if k not in present_set]
    names = [folder.identity_names[k] for k in present]
    labels = np.searchsorted(present, labels).astype(np.int64)
    np.save(building / "labels.npy", labels)
    np.save(building / "identity_names.npy", np.array(names, dtype=str))
    np.save(building / "paths.npy", np.array([relative_paths[i] for i in kept], dtype=str))
    skipped.sort(key=lambda item: item["path"])
    return _Built(labels, names, dropped, skipped)


def _manifest(folder, inputs: _Inputs, built: _Built, seconds: float) -> dict:
    """``manifest.json``: format, content hash, inputs, parameters, counts, every skip."""
    names, labels, skipped = built.names, built.labels, built.skipped
    return {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "content_hash": inputs.content_hash,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs": {
            "root": str(Path(folder.root).resolve()),
            "form": folder.form,
            "landmarks": inputs.landmarks_stamp,
            "source_files": inputs.source_stamp,
            "selected_files": len(folder),
        },
        "parameters": inputs.parameters,
        "shape": [len(labels), *CROP_SHAPE],
        "counts": {
            "images": len(labels),
            "identities": len(names),
            "skipped": len(skipped),
            "skipped_by_reason": skip_reasons(skipped),
            "empty_identities": len(folder.empty_identities),
            "excluded_identities": len(folder.excluded_identities),
            "dropped_identities": len(built.dropped),
        },
        "images_per_identity": dict(zip(names, np.bincount(labels).tolist(), strict=True)),
        "skipped": skipped,
        "empty_identities": folder.empty_identities,
        "excluded_identities": folder.excluded_identities,
        "dropped_identities": built.dropped,
        "skipped_links": getattr(folder, "skipped_links", []),
        "build_seconds": round(seconds, 3),
    }


def _warn_about_skipped(folder, skipped: list[dict], out: Path) -> None:
    """A :class:`SkippedImagesWarning` for skipped folder links and for skipped images,
    pointing at the caller of :func:`prepare_faces` (stacklevel 3)."""
    if getattr(folder, "skipped_links", []):
        warnings.warn(
            "skipped folder links: "
            + ", ".join(f"{item['path']} ({item['reason']})" for item in folder.skipped_links)
            + f"; listed in {out / MANIFEST_NAME}",
            SkippedImagesWarning,
            stacklevel=3,
        )
    if skipped:
        shown = ", ".join(f"{item['path']} ({item['reason']})" for item in skipped[:10])
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        warnings.warn(
            f"skipped {len(skipped)} of {len(folder)} images: {shown}{more}; "
            f"all are listed in {out / MANIFEST_NAME}",
            SkippedImagesWarning,
            stacklevel=3,
        )


SKIP_KINDS = ("no landmarks", "not a face", "unreadable")


def skip_reasons(skipped: list[dict]) -> dict[str, int]:
    """``{"no landmarks": n, "not a face": n, "unreadable": n}`` over the skipped images."""
    counts = dict.fromkeys(SKIP_KINDS, 0)
    for item in skipped:
        reason = item["reason"]
        kind = next((k for k in SKIP_KINDS[:2] if reason.startswith(k)), "unreadable")
        counts[kind] += 1
    return counts


def _compact(images_path: Path, keep: list[int]) -> None:
    """Rewrite ``images.npy`` with only the rows in ``keep`` (in chunks, never all in memory).

    Written with ``write`` into preallocated blocks, never through a memory map: a full disk
    is an ``OSError``, not a SIGBUS.
    """
    source = np.load(images_path, mmap_mode="r")
    compact_path = images_path.with_name("images.compact.npy")
    check_free_space(compact_path.parent, len(keep) * source[0].nbytes, "the compacted images")
    offset = _create_npy(compact_path, (len(keep), *source.shape[1:]))
    for start in range(0, len(keep), 4096):
        _write_rows(str(compact_path), offset, start, source[keep[start : start + 4096]])
    del source
    os.replace(compact_path, images_path)


# ---------------------------------------------------------------------------------------------
# The command.


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sphereviz prepare-faces",
        description=(
            "Decode, align (5-point similarity to SphereFace's 112×96 crop) and cache a face "
            "folder root/<identity>/<image> as memory-mappable .npy arrays. A second run with "
            "the same inputs reuses the cache."
        ),
    )
    parser.add_argument(
        "--root",
        required=True,
        help="face folder root/<identity>/<image>; or a folder with insightface's train.rec + "
        "train.idx (112×112, cropped to 112×96); or a .zip (with --landmarks: its list)",
    )
    parser.add_argument("--out", required=True, help="cache folder to write")
    parser.add_argument(
        "--landmarks",
        help="5-point landmark file: LFW format for a folder (else centre crop); for a zip its "
        "list '<path>\\t<class id>\\t<x1>\\t<y1>…<y5>' (required)",
    )
    parser.add_argument(
        "--landmark-frame",
        type=int,
        help="image size the landmarks were measured on (250 for LFW's file); default: as is",
    )
    parser.add_argument(
        "--crop",
        choices=CROPS,
        default="window",
        help="without landmarks: 'window' (default) takes LFW's average face window, for "
        "face-detector crops such as LFW and CASIA-WebFace; 'whole' keeps all of each image, "
        "for faces that fill the frame already (e.g. the ORL faces)",
    )
    parser.add_argument("--top-k-identities", type=int, help="keep the K largest identities")
    parser.add_argument("--min-images", type=int, default=1, help="min images per identity")
    parser.add_argument("--max-images", type=int, help="max images per identity (random subset)")
    parser.add_argument("--identities", help="comma-separated identity folder names to keep")
    parser.add_argument(
        "--keep-lfw-overlap",
        action="store_true",
        help=f"keep the CASIA identities that overlap LFW ({', '.join(CASIA_LFW_OVERLAP)})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the --max-images subset")
    parser.add_argument("--workers", type=int, help="worker processes (default: all cores)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--json", action="store_true", help="print a JSON summary last")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    identities = None
    if args.identities:
        identities = [name.strip() for name in args.identities.split(",") if name.strip()]
    try:
        cache = prepare_faces(
            args.root,
            args.out,
            landmarks=args.landmarks,
            landmark_frame=args.landmark_frame,
            identities=identities,
            top_k_identities=args.top_k_identities,
            min_images_per_identity=args.min_images,
            max_images_per_identity=args.max_images,
            exclude=() if args.keep_lfw_overlap else CASIA_LFW_OVERLAP,
            seed=args.seed,
            workers=args.workers,
            progress=True,
            force=args.force,
            crop=args.crop,
        )
    except (ValueError, OSError) as error:
        return report_error("prepare-faces", error, status=1 if isinstance(error, OSError) else 2)
    seconds = time.perf_counter() - started
    counts = cache.manifest["counts"]
    verb = "reused" if cache.reused else "wrote"
    reasons = counts.get("skipped_by_reason") or {}
    why = ", ".join(f"{n} {kind}" for kind, n in reasons.items() if n)
    print(
        f"{verb} {cache.directory}: {counts['images']} images of {counts['identities']} "
        f"identities, shape {list(cache.images.shape)}, {counts['skipped']} skipped"
        f"{f' ({why})' if why else ''}, {seconds:.2f} s"
    )
    if args.json:
        print_json_summary(
            {
                "images": counts["images"],
                "identities": counts["identities"],
                "skipped": counts["skipped"],
                "skipped_by_reason": counts.get("skipped_by_reason", {}),
                "shape": list(cache.images.shape),
                "seconds": round(seconds, 3),
                "reused": cache.reused,
                "out": str(cache.directory),
            }
        )
    return 0
