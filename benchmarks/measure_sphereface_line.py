"""Measure the SphereFace line: MNIST 3-D comparison (3 seeds) and LFW scoring variants.

Not part of ``make bench`` (it measures results, not speed). Two parts:

``mnist``: ``sphereviz train`` on the embedded MNIST digits with the default ``mnist-full``
recipe, 3-D features, seeds 0, 1, 2, for A-Softmax m = 4 (the preset's margin-biting
recipe), SphereFace-R m = 1.5 s = 30 and SphereFace2 with its defaults; two processes at a
time with one torch thread each. Prints test accuracy and the angle statistics of
``geometry.feature_summary`` on each run's ``embeddings.npz``, mean ± std over the seeds.

``faces``: ``sphereviz prepare-faces`` of LFW into a small cache, a few epochs of SFNet-4 on
it, then ``sphereviz evaluate-lfw --protocol all`` on the trained run.

Usage: ``python benchmarks/measure_sphereface_line.py mnist|faces|table --work /tmp/DIR
[--recipes ...] [--lfw DIR] [--json]`` (``table``: the table of the finished runs in --work).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from common import find_lfw

from sphereviz.aggregate import over_seeds

REPO_ROOT = Path(__file__).resolve().parents[1]
LFW_ROOT = find_lfw()
SEEDS = (0, 1, 2)
RECIPES = {
    "sphereface-r m=1.5 s=30": ["--loss", "sphereface-r", "--m", "1.5", "--scale", "30"],
    "sphereface2 (defaults)": ["--loss", "sphereface2"],
    "a-softmax m=4": ["--loss", "a-softmax", "--m", "4"],
}
STATISTICS = (
    "mean_angle_to_own_class_deg",
    "mean_angle_to_nearest_other_class_deg",
    "min_class_mean_angle_deg",
    "min_class_weight_angle_deg",
    "angular_fisher_score",
)


def sphereviz(*args: str, threads: int = 1) -> subprocess.CompletedProcess:
    """``python -m sphereviz ARGS`` with ``threads`` torch threads, this checkout first."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    command = [sys.executable, "-m", "sphereviz", *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return result


def train_mnist(work: Path, name: str, options: list[str], seed: int) -> dict:
    out = work / f"{name.split()[0]}-seed{seed}"
    started = time.perf_counter()
    sphereviz(
        "train", *options, "--dim", "3", "--seed", str(seed), "--out", str(out),
        "--threads", "1", "--no-progress", "--json",
    )  # fmt: skip
    row = {**run_row(out, name, seed), "seconds": time.perf_counter() - started}
    print(json.dumps(row), flush=True)  # each run as it finishes: a partial measurement survives
    return row


def run_row(out: Path, name: str, seed: int) -> dict:
    """Final test accuracy and the ``feature_summary`` statistics of one finished run folder."""
    from sphereviz.geometry import feature_summary

    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    with np.load(out / "embeddings.npz") as data:
        summary = feature_summary(data["features"], data["labels"], data["class_weights"])
    return {
        "recipe": name,
        "seed": seed,
        "epochs": metrics[-1]["epoch"],
        "test_accuracy": metrics[-1]["test_accuracy"],
        **{key: summary[key] for key in STATISTICS},
    }


def table_from_folders(work: Path) -> list[dict]:
    """The table of the finished runs already in ``work`` (e.g. after an interrupted run)."""
    runs = []
    for name in RECIPES:
        for seed in SEEDS:
            out = work / f"{name.split()[0]}-seed{seed}"
            if not (out / "embeddings.npz").exists():
                continue
            row = run_row(out, name, seed)
            if row["epochs"] == json.loads((out / "config.json").read_text())["epochs"]:
                runs.append(row)  # finished runs only
    return [*runs, *summary_table(runs)]


def measure_mnist(work: Path, recipes: list[str]) -> list[dict]:
    jobs = [(name, RECIPES[name], seed) for name in recipes for seed in SEEDS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda job: train_mnist(work, *job), jobs))
    return [*runs, *summary_table(runs)]


def summary_table(runs: list[dict]) -> list[dict]:
    """Mean ± sample std over the seeds of each recipe, printed as a markdown table."""
    table = over_seeds(runs, ("recipe",), ("test_accuracy", *STATISTICS))
    print(
        "| recipe (seeds) | test accuracy | angle to own W (°) | to nearest other W (°) | "
        "min angle between class means (°) | between class weights (°) | AFS |"
    )
    print("|---|---|---|---|---|---|---|")
    for entry in table:
        keys = ("test_accuracy", *STATISTICS)
        cells = [f"{entry[f'{k}_mean']:.4g} ± {entry[f'{k}_std']:.2g}" for k in keys]
        print(f"| {entry['recipe']} ({len(entry['seeds'])}) | " + " | ".join(cells) + " |")
    return table


def measure_faces(work: Path, lfw_root: Path, epochs: int = 6) -> dict:
    """LFW people with >= 20 images (20 each) aligned, SFNet-4 512-D A-Softmax, all protocols."""
    cache, run = work / "faces-cache", work / "faces-sfnet4"
    started = time.perf_counter()
    sphereviz(
        "prepare-faces", "--root", str(lfw_root / "images"), "--out", str(cache),
        "--landmarks", str(lfw_root / "lfw_landmark.txt"), "--landmark-frame", "250",
        "--min-images", "20", "--max-images", "20", "--workers", "1",
    )  # fmt: skip
    sphereviz(
        "train", "--dataset", "faces", "--faces-cache", str(cache), "--model", "sfnet4",
        "--dim", "512", "--loss", "a-softmax", "--optimizer", "adam", "--lr", "1e-3",
        "--weight-decay", "5e-4", "--lambda-gamma", "4", "--epochs", str(epochs),
        "--batch-size", "64", "--out", str(run), "--threads", "1", "--no-progress",
    )  # fmt: skip
    result = sphereviz(
        "evaluate-lfw", "--run", str(run), "--lfw", str(lfw_root), "--protocol", "all",
        "--device", "cpu", "--json",
    )  # fmt: skip
    print(result.stdout)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return {"seconds": time.perf_counter() - started, "protocols": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "part", choices=("mnist", "faces", "table"), help="table: from the run folders in --work"
    )
    parser.add_argument("--work", required=True, help="a folder for the runs (e.g. /tmp/...)")
    parser.add_argument(
        "--recipes", default=",".join(RECIPES), help=f"mnist: a comma list of {list(RECIPES)}"
    )
    parser.add_argument("--lfw", default=str(LFW_ROOT), help=f"LFW folder (default {LFW_ROOT})")
    parser.add_argument("--json", action="store_true", help="print the results as JSON last")
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    recipes = [name.strip() for name in args.recipes.split(",")]
    unknown = sorted(set(recipes) - set(RECIPES))
    if unknown:
        parser.error(f"unknown recipes {unknown}; choose from {list(RECIPES)}")
    if args.part == "mnist":
        results = measure_mnist(work, recipes)
    elif args.part == "table":
        results = table_from_folders(work)
    else:
        results = measure_faces(work, Path(args.lfw))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
