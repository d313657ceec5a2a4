"""Speed of ``sphereviz prepare-faces`` on all of LFW (13,232 images, 5-point alignment).

Rows, measured in one run on the same machine:

- baseline: OpenCV decode (``cv2.imdecode``) + ``cv2.warpAffine`` in a plain Python loop on one
  core, the transforms computed beforehand (the floor that a per-image pipeline can reach);
- prepare-faces cold with 1 and with 2 worker processes: listing, hashing, landmark parsing,
  the similarity fits, decoding, warping and writing the memory-mapped cache, end to end;
- prepare-faces again on the unchanged folder: the cache hit (list, hash, compare, open).

Target (task brief): ≥ 2,500 aligned images/s cold on 2 cores; cache hit < 1 s. Rows in the
schema of ``common`` (one timed run each; the cold rows' ratio is to the baseline's images/s);
``details.cpu_seconds`` (this process's CPU time, for the in-process rows) is the steadier
number when other work shares the machine.
Run: ``python benchmarks/bench_prepare_faces.py [--lfw-root DIR]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from common import Target, find_lfw, make_row, print_rows

from sphereviz.data.align import read_landmarks, scale_landmarks, similarity_transform
from sphereviz.data.prepare import prepare_faces

LFW_ROOT = find_lfw()
LANDMARK_FRAME = 250
WHAT = "prepare-faces on LFW (13,232 images, 112×96 alignment)"
BASELINE = "baseline: cv2.imdecode + warpAffine loop, 1 core"
COLD_TARGET = Target("value", ">=", 2500, "img/s")
REUSE_TARGET = Target("value", "<", 1.0, "s")


def throughput_row(
    what: str,
    baseline_variant: str,
    variant: str,
    images: int,
    seconds: float,
    cpu_seconds: float | None = None,
    baseline: float | None = None,
    targets=(),
) -> dict:
    """A throughput row (images/s) of benchmark 4; ``cpu_seconds`` is this process's CPU time
    (None when workers did the work), a number that other load on the machine disturbs less."""
    details = {
        "images": images,
        "seconds": round(seconds, 3),
        "cpu_seconds": None if cpu_seconds is None else round(cpu_seconds, 3),
    }
    rate = images / seconds if seconds > 0 else float("inf")
    return make_row(
        4,
        what,
        variant,
        [rate],
        "img/s",
        baseline=baseline,
        baseline_variant=baseline_variant,
        targets=targets,
        details=details,
    )


def _row(variant, images, seconds, cpu_seconds=None, baseline=None, targets=()) -> dict:
    return throughput_row(WHAT, BASELINE, variant, images, seconds, cpu_seconds, baseline, targets)


def baseline_decode_and_warp(lfw_root: Path) -> dict:
    """OpenCV decode + warpAffine of every image in one plain loop, on one thread."""
    table = read_landmarks(lfw_root / "lfw_landmark.txt")
    images_dir = lfw_root / "images"
    jobs = []
    for relative, points in sorted(table.items()):
        path = images_dir / relative
        if path.is_file():
            scaled = scale_landmarks(points, (150, 150), LANDMARK_FRAME)
            jobs.append((path, similarity_transform(scaled)))
    previous = cv2.getNumThreads()
    cv2.setNumThreads(0)
    try:
        start, cpu_start = time.perf_counter(), time.process_time()
        for path, matrix in jobs:
            image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
            cv2.warpAffine(image, matrix, (96, 112), flags=cv2.INTER_LINEAR)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        cv2.setNumThreads(previous)
    return _row(BASELINE, len(jobs), seconds, cpu, baseline=len(jobs) / seconds)


def run(lfw_root: str | Path = LFW_ROOT, workers: tuple[int, ...] = (1, 2)) -> list[dict]:
    """Rows: the baseline, prepare-faces cold with each worker count, and the cache hit."""
    lfw_root = Path(lfw_root)
    if not (lfw_root / "images").is_dir():
        raise FileNotFoundError(f"LFW not found at {lfw_root}; pass --lfw-root")
    rows = [baseline_decode_and_warp(lfw_root)]
    baseline = rows[0]["value"]
    options = {
        "landmarks": lfw_root / "lfw_landmark.txt",
        "landmark_frame": LANDMARK_FRAME,
        "progress": False,
    }
    with tempfile.TemporaryDirectory(prefix="bench-prepare-faces-") as scratch:
        for count in workers:
            out = Path(scratch) / f"cache-{count}"
            start, cpu_start = time.perf_counter(), time.process_time()
            cache = prepare_faces(lfw_root / "images", out, workers=count, **options)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            assert not cache.reused
            variant = f"prepare-faces cold, {count} worker(s)"
            cpu = cpu if count == 1 else None
            targets = [COLD_TARGET] if count == 2 else ()
            rows.append(_row(variant, len(cache), seconds, cpu, baseline, targets))
        start, cpu_start = time.perf_counter(), time.process_time()
        cache = prepare_faces(lfw_root / "images", out, workers=workers[-1], **options)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        assert cache.reused
        rows.append(
            make_row(
                4,
                WHAT,
                "prepare-faces again: cache hit",
                [seconds],
                "s",
                targets=[REUSE_TARGET],
                details={"images": len(cache), "cpu_seconds": round(cpu, 3)},
            )
        )
    return rows


def cli(
    description: str,
    run: Callable[[str, tuple[int, ...]], list[dict]],
    argv: list[str] | None = None,
) -> int:
    """The command line of the prepare-faces benchmarks: print ``run(lfw_root, workers)``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--lfw-root", default=str(LFW_ROOT))
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    workers = tuple(int(w) for w in args.workers.split(","))
    print_rows(run(args.lfw_root, workers), as_json=args.json)
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli(__doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
