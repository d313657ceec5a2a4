"""Speed of ``sphereviz prepare-faces`` from the two packed CASIA-WebFace forms, on all of LFW.

Built once from the 13,232 landmarked LFW images (not timed):

- a RecordIO folder in insightface's layout (``train.rec``, ``train.idx``, ``property``): each
  image aligned to the 112×112 ArcFace template and JPEG-encoded (quality 95), as
  ``faces_webface_112x112`` is;
- a zip of the original JPEGs (stored, as the port's ``CASIA-WebFace.zip`` is) with its
  landmark list ``<path>\\t<class id>\\t<x1>…<y5>``.

Rows, measured in one run on the same machine:

- baseline: ``cv2.imdecode`` of every packed 112×112 JPEG in a plain loop on one core (the
  floor of any .rec reader: decoding);
- prepare-faces from the .rec, cold, 1 and 2 workers: listing (header and identity records),
  hashing, reading, decoding, the fixed crop and writing the cache, end to end;
- prepare-faces from the zip, cold, 2 workers: reading the central directory and the landmark
  list, members read without extraction, decoding, the 5-point similarity warp, the cache;
  its ratio is to the same baseline of small 112×112 JPEGs; compare its rate with the folder
  rows of ``bench_prepare_faces``, which do the same work from files (150×150 JPEGs, a warp
  per image).

Target (issue 18): ≥ 3,000 img/s cold from a .rec on 2 cores. ``details.cpu_seconds`` as in
``bench_prepare_faces``. Run: ``python benchmarks/bench_prepare_forms.py [--lfw-root DIR]``.
"""

from __future__ import annotations

import tempfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
from bench_prepare_faces import LANDMARK_FRAME, LFW_ROOT, cli, throughput_row
from common import Target

from sphereviz.data.align import read_landmarks, scale_landmarks, similarity_transform
from sphereviz.data.prepare import prepare_faces
from sphereviz.data.recordio import ARCFACE_REFERENCE_POINTS, write_packed_faces

WHAT = "prepare-faces from packed forms (13,232 LFW images → 112×96)"
BASELINE = "baseline: cv2.imdecode of the packed 112×112 JPEGs, 1 core"
REC_TARGET = Target("value", ">=", 3000, "img/s")


def build_forms(lfw_root: Path, scratch: Path) -> tuple[Path, Path, Path, list[bytes]]:
    """The packed folder, the zip, its landmark list, and the packed JPEGs (for the baseline)."""
    table = read_landmarks(lfw_root / "lfw_landmark.txt")
    images_dir = lfw_root / "images"
    by_person: dict[str, list[str]] = {}
    for relative in sorted(table):
        if (images_dir / relative).is_file():
            by_person.setdefault(relative.split("/")[0], []).append(relative)
    classes, jpegs, lines = [], [], []
    archive = scratch / "CASIA-WebFace.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zipped:
        for class_id, person in enumerate(sorted(by_person)):
            encoded = []
            for relative in by_person[person]:
                image = cv2.imread(str(images_dir / relative), cv2.IMREAD_COLOR)
                points = scale_landmarks(table[relative], image.shape, LANDMARK_FRAME)
                matrix = similarity_transform(points, ARCFACE_REFERENCE_POINTS)
                aligned = cv2.warpAffine(image, matrix, (112, 112), flags=cv2.INTER_LINEAR)
                encoded.append(cv2.imencode(".jpg", aligned, [cv2.IMWRITE_JPEG_QUALITY, 95])[1])
                zipped.write(images_dir / relative, f"CASIA-WebFace/{relative}")
                values = [f"{v:g}" for v in table[relative].reshape(-1)]
                lines.append("\t".join([relative, str(class_id), *values]))
            classes.append([data.tobytes() for data in encoded])
            jpegs += classes[-1]
    write_packed_faces(scratch / "faces_webface_112x112", classes)
    landmark_list = scratch / "casia_landmark.txt"
    landmark_list.write_text("\n".join(lines) + "\n")
    return scratch / "faces_webface_112x112", archive, landmark_list, jpegs


def _row(variant, images, seconds, cpu_seconds=None, baseline=None, targets=()) -> dict:
    return throughput_row(WHAT, BASELINE, variant, images, seconds, cpu_seconds, baseline, targets)


def baseline_decode(jpegs: list[bytes]) -> dict:
    previous = cv2.getNumThreads()
    cv2.setNumThreads(0)
    try:
        start, cpu_start = time.perf_counter(), time.process_time()
        for data in jpegs:
            cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        cv2.setNumThreads(previous)
    return _row(BASELINE, len(jpegs), seconds, cpu, baseline=len(jpegs) / seconds)


def _timed(variant, root, out, workers, baseline, targets=(), **options) -> dict:
    start, cpu_start = time.perf_counter(), time.process_time()
    cache = prepare_faces(root, out, workers=workers, progress=False, **options)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    assert not cache.reused and cache.manifest["counts"]["skipped"] == 0
    return _row(variant, len(cache), seconds, cpu if workers == 1 else None, baseline, targets)


def run(lfw_root: str | Path = LFW_ROOT, workers: tuple[int, ...] = (1, 2)) -> list[dict]:
    """Rows: the decode baseline, the .rec cold with each worker count, the zip cold."""
    lfw_root = Path(lfw_root)
    if not (lfw_root / "images").is_dir():
        raise FileNotFoundError(f"LFW not found at {lfw_root}; pass --lfw-root")
    with tempfile.TemporaryDirectory(prefix="bench-prepare-forms-") as scratch:
        scratch = Path(scratch)
        packed, archive, landmark_list, jpegs = build_forms(lfw_root, scratch)
        rows = [baseline_decode(jpegs)]
        baseline = rows[0]["value"]
        for count in workers:
            targets = [REC_TARGET] if count == 2 else ()
            variant = f"from train.rec cold, {count} worker(s)"
            rows.append(_timed(variant, packed, scratch / f"rec-{count}", count, baseline, targets))
        rows.append(
            _timed(
                f"from zip + landmark list cold, {workers[-1]} worker(s)", archive,
                scratch / "zip", workers[-1], baseline, landmarks=landmark_list,
                landmark_frame=LANDMARK_FRAME,
            )
        )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    return cli(__doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
