"""Measure issue 12's small face folder: does the faces recipe anneal and learn on 400 faces?

Not part of ``make bench`` (it measures results, not speed). The ORL/AT&T faces (40 people,
10 grey 92×112 PGMs each, the head filling the frame) are not available here, so this builds a
folder of their size, format and framing from the LFW copy beside the checkout: the 40 people
ranked 7th onwards by image count (the figure set uses the six largest), their first 10
images, grey, cut to the head (x 30…120, y 21…131 of the 150×150 image) and saved as 92×112
PGM. Then, for each ``--crop`` of ``sphereviz prepare-faces`` ("window", the default: LFW's
average face window; "whole": all of each image), it trains the ``faces`` preset, A-Softmax
m = 4, with SFNet-4 (the preset's SFNet-20 takes about 6 min an epoch on this CPU), two runs at
a time with one torch thread each, and reports the optimiser steps, the fitted batch, the
final λ, and the train and test accuracy against chance (1/40).

Finished runs in ``--work`` are reused, so an interrupted measurement continues.

Usage: ``python benchmarks/measure_small_face_folder.py --work /tmp/DIR [--seeds 0] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from measure_sphereface_line import LFW_ROOT, sphereviz
from PIL import Image

PEOPLE, IMAGES_EACH = 40, 10
HEAD_BOX = (30, 21, 120, 131)  # left, top, right, bottom in LFW's 150×150 images
ORL_SIZE = (92, 112)  # width, height
CROPS = ("window", "whole")


def build_folder(lfw_images: Path, out: Path) -> list[str]:
    """The ORL-shaped folder ``out/s<k>/<j>.pgm``; returns the LFW names used, in order."""
    images = {p: sorted(p.glob("*.jpg")) for p in lfw_images.iterdir() if p.is_dir()}
    people = sorted(images, key=lambda p: (-len(images[p]), p.name))
    chosen = [p for p in people[6:] if len(images[p]) >= IMAGES_EACH][:PEOPLE]
    for k, person in enumerate(chosen, 1):
        folder = out / f"s{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for j, path in enumerate(images[person][:IMAGES_EACH], 1):
            target = folder / f"{j}.pgm"
            if not target.is_file():
                head = Image.open(path).convert("L").crop(HEAD_BOX)
                head.resize(ORL_SIZE, Image.Resampling.LANCZOS).save(target)
    return [person.name for person in chosen]


def prepare(work: Path, crop: str) -> Path:
    """``sphereviz prepare-faces --crop crop`` of the folder (reused when up to date)."""
    cache = work / f"cache-{crop}"
    sphereviz("prepare-faces", "--root", str(work / "folder"), "--out", str(cache),
              "--crop", crop, "--workers", "1")  # fmt: skip
    return cache


def train_one(work: Path, caches: dict[str, Path], crop: str, seed: int) -> dict:
    """The faces preset on the ``crop`` cache; the run's row."""
    cache, out = caches[crop], work / f"run-{crop}-s{seed}"
    result = sphereviz(
        "train", "--preset", "faces", "--faces-cache", str(cache), "--model", "sfnet4",
        "--loss", "a-softmax", "--m", "4", "--seed", str(seed), "--out", str(out),
        "--threads", "1", "--no-progress", "--json",
        *(["--resume"] if (out / "model.pt").is_file() else []),
    )  # fmt: skip
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    row = {
        "crop": crop,
        "seed": seed,
        "total_steps": metrics[-1]["total_steps"],
        "batch_size": metrics[-1]["batch_size"],
        "final_lambda": summary["final_lambda"],
        "train_accuracy": metrics[-1]["train_accuracy"],
        "test_accuracy": summary["test_accuracy"],
        "warnings": summary["warnings"],
        "seconds": summary["seconds"],
    }
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for folder, caches, runs")
    parser.add_argument("--lfw", type=Path, default=LFW_ROOT, help="LFW folder (images/)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON last")
    args = parser.parse_args(argv)
    names = build_folder(args.lfw / "images", args.work / "folder")
    print(f"{len(names)} people × {IMAGES_EACH} images ({names[0]} … {names[-1]}); chance "
          f"{1 / len(names):.3f}")  # fmt: skip
    caches = {crop: prepare(args.work, crop) for crop in CROPS}  # before the runs share them
    jobs = [(crop, seed) for crop in CROPS for seed in args.seeds]
    with ThreadPoolExecutor(max_workers=2) as pool:
        rows = list(pool.map(lambda job: train_one(args.work, caches, *job), jobs))
    print("| crop | seed | steps | batch | final λ | train accuracy | test accuracy |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['crop']} | {row['seed']} | {row['total_steps']} | {row['batch_size']} | "
              f"{row['final_lambda']:g} | {row['train_accuracy']:.3f} | "
              f"{row['test_accuracy']:.3f} |")  # fmt: skip
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
