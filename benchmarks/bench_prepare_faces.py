"""Speed of ``sphereviz prepare-faces`` on all of LFW (13,232 images, 5-point alignment).

Rows, measured in one run on the same machine:

- baseline: OpenCV decode (``cv2.imdecode``) + ``cv2.warpAffine`` in a plain Python loop on one
  core, the transforms computed beforehand (the floor that a per-image pipeline can reach);
- prepare-faces cold with 1 and with 2 worker processes: listing, hashing, landmark parsing,
  the similarity fits, decoding, warping and writing the memory-mapped cache, end to end;
- prepare-faces again on the unchanged folder: the cache hit (list, hash, compare, open).

Target (task brief): ≥ 2,500 aligned images/s cold on 2 cores; cache hit < 1 s. The CPU
column (this process's CPU time, for the in-process rows) is the steadier number when other
work shares the machine.
Run: ``python benchmarks/bench_prepare_faces.py [--lfw-root DIR]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from sphereviz.data.align import read_landmarks, scale_landmarks, similarity_transform
from sphereviz.data.prepare import prepare_faces

LFW_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"
LANDMARK_FRAME = 250


def _row(variant: str, images: int, seconds: float, cpu_seconds: float | None = None) -> dict:
    """One result; ``cpu_seconds`` is this process's CPU time (None when workers did the work),
    a number that other load on the machine disturbs less than the wall time."""
    return {
        "benchmark": "prepare-faces on LFW (13,232 images, 112×96 alignment)",
        "variant": variant,
        "images": images,
        "seconds": round(seconds, 3),
        "images_per_s": round(images / seconds, 1) if seconds > 0 else float("inf"),
        "cpu_seconds": None if cpu_seconds is None else round(cpu_seconds, 3),
    }


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
    return _row("baseline: cv2.imdecode + warpAffine loop, 1 core", len(jobs), seconds, cpu)


def run(lfw_root: str | Path = LFW_ROOT, workers: tuple[int, ...] = (1, 2)) -> list[dict]:
    """Rows ``{"benchmark", "variant", "images", "seconds", "images_per_s"}``."""
    lfw_root = Path(lfw_root)
    if not (lfw_root / "images").is_dir():
        raise FileNotFoundError(f"LFW not found at {lfw_root}; pass --lfw-root")
    rows = [baseline_decode_and_warp(lfw_root)]
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
            rows.append(_row(variant, len(cache), seconds, cpu if count == 1 else None))
        start, cpu_start = time.perf_counter(), time.process_time()
        cache = prepare_faces(lfw_root / "images", out, workers=workers[-1], **options)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        assert cache.reused
        rows.append(_row("prepare-faces again: cache hit", len(cache), seconds, cpu))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw-root", default=str(LFW_ROOT))
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    args = parser.parse_args(argv)
    workers = tuple(int(w) for w in args.workers.split(","))
    rows = run(args.lfw_root, workers)
    print(rows[0]["benchmark"])
    print(f"{'variant':<52} {'images':>7} {'seconds':>8} {'images/s':>9} {'CPU s':>7}")
    for row in rows:
        cpu = "-" if row["cpu_seconds"] is None else f"{row['cpu_seconds']:.2f}"
        print(
            f"{row['variant']:<52} {row['images']:>7} {row['seconds']:>8.2f} "
            f"{row['images_per_s']:>9.0f} {cpu:>7}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
