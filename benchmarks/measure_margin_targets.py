"""Measure issue 12's targets: does m matter in the default MNIST recipe, over seeds?

Not part of ``make bench`` (it measures results, not speed). Trains ``sphereviz train
--dataset mnist --dim 3`` with a named preset (default ``mnist-full``, the margin-biting
schedule) for softmax, modified softmax (m = 1) and A-Softmax m = 2, 3, 4, seeds 0, 1, 2, two
processes at a time with one torch thread each, then checks on the 3-D test features:

- the mean angle to the own class weight at m = 4 is ≤ 0.6 × that at m = 1 (seed 0);
- the mean over the seeds of that angle falls monotonically over m = 1 … 4;
- the test accuracy at m = 4 is ≥ 97.5 % (each seed, and the mean).

Finished runs in ``--work`` are reused, so an interrupted measurement continues.

Usage: ``python benchmarks/measure_margin_targets.py --work /tmp/DIR [--preset mnist-full]
[--seeds 0 1 2] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from measure_sphereface_line import run_row, sphereviz

from sphereviz.aggregate import mean_std

SEEDS = (0, 1, 2)
CONFIGURATIONS = {
    "softmax": ["--loss", "softmax"],
    "m=1": ["--loss", "modified-softmax"],
    "m=2": ["--loss", "a-softmax", "--m", "2"],
    "m=3": ["--loss", "a-softmax", "--m", "3"],
    "m=4": ["--loss", "a-softmax", "--m", "4"],
}
ANGLE = "mean_angle_to_own_class_deg"
RATIO_TARGET = 0.6
ACCURACY_TARGET = 0.975


def is_complete(out: Path) -> bool:
    """Whether ``out`` holds a finished run (``runs.run_state`` of its own saved config)."""
    from sphereviz.config import TrainConfig
    from sphereviz.runs import CONFIG_NAME, read_json, run_state

    config_file = out / CONFIG_NAME
    if not config_file.is_file():
        return False
    return run_state(out, TrainConfig.from_dict(read_json(config_file))) == "complete"


def train_one(work: Path, preset: str, name: str, seed: int) -> dict:
    """One finished run's row (trained unless ``work`` holds it already)."""
    out = work / f"{preset}-{name.replace('=', '')}-s{seed}"
    started = time.perf_counter()
    finished = is_complete(out)
    if not finished:
        sphereviz(
            "train", "--preset", preset, "--dataset", "mnist", *CONFIGURATIONS[name],
            "--dim", "3", "--seed", str(seed), "--out", str(out), "--threads", "1",
            "--no-progress", "--json", *(["--resume"] if (out / "model.pt").is_file() else []),
        )  # fmt: skip
    row = {**run_row(out, name, seed), "seconds": time.perf_counter() - started,
           "reused": finished}  # fmt: skip
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def targets(rows: list[dict]) -> dict:
    """The three targets of issue 12 §2, from the per-run rows."""

    def of(name: str, key: str, seed: int | None = None) -> list[float]:
        return [r[key] for r in rows if r["recipe"] == name and seed in (None, r["seed"])]

    ratio = of("m=4", ANGLE, 0)[0] / of("m=1", ANGLE, 0)[0]
    means = [mean_std(of(f"m={m}", ANGLE))[0] for m in (1, 2, 3, 4)]
    accuracies = of("m=4", "test_accuracy")
    return {
        "angle_ratio_m4_over_m1_seed0": ratio,
        "angle_ratio_met": ratio <= RATIO_TARGET,
        "mean_angle_by_m": means,
        "monotone_met": all(a > b for a, b in zip(means[:-1], means[1:], strict=True)),
        "m4_test_accuracy": accuracies,
        "m4_mean_accuracy_met": float(np.mean(accuracies)) >= ACCURACY_TARGET,
        "m4_every_seed_met": min(accuracies) >= ACCURACY_TARGET,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| configuration | seeds | test accuracy % | mean ∠ own W (°) | AFS |",
        "|---|---|---|---|---|",
    ]
    for name in CONFIGURATIONS:
        mine = [r for r in rows if r["recipe"] == name]
        accuracy = mean_std([100 * r["test_accuracy"] for r in mine])
        angle = mean_std([r[ANGLE] for r in mine])
        afs = mean_std([r["angular_fisher_score"] for r in mine])
        lines.append(
            f"| {name} | {len(mine)} | {accuracy[0]:.1f} ± {accuracy[1]:.1f} | "
            f"{angle[0]:.2f} ± {angle[1]:.2f} | {afs[0]:.4f} ± {afs[1]:.4f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the run folders")
    parser.add_argument("--preset", default="mnist-full", help="TrainConfig preset")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON last")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    jobs = [(name, seed) for name in CONFIGURATIONS for seed in args.seeds]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda job: train_one(args.work, args.preset, *job), jobs))
    report = {"preset": args.preset, "seeds": args.seeds, "runs": rows, "targets": targets(rows)}
    print(f"preset {args.preset}, 3-D, seeds {args.seeds}")
    print(table(rows))
    for key, value in report["targets"].items():
        print(f"{key}: {value}")
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
