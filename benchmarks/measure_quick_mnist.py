"""Measure notebook 03's quick mode (``recipes.QUICK_NOTEBOOK_MNIST_OVERRIDES``): does the
margin still show in 300 optimiser steps, and what does a run cost?

Not part of ``make bench`` (it measures results). For each MnistNet ``--widths`` (8, the
quick mode's, and 16, the ``mnist-demo`` preset's) trains the quick recipe (3 epochs on 3,200
embedded digits, batch 32, the margin-biting λ schedule) for modified softmax (m = 1) and
A-Softmax m = 4 with 3-D features, and SphereFace2 with 3-D and 16-D features, over
``--seeds``; then prints, mean ± std over the seeds, the test accuracy, the mean angle to the
own class weight, whether m = 4's angle is below m = 1's by more than the two spreads (the
notebook's own reading), and the seconds of each run's training (two runs at a time, one torch
thread each; recorded by the run, so also for runs reused from ``--work``).

Usage: ``python benchmarks/measure_quick_mnist.py --work /tmp/DIR [--seeds 0 1 2]
[--widths 8 16] [--json]``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

RECIPES = {  # label → the TrainConfig fields that differ from the quick recipe
    "m=1": dict(dim=3, loss="modified-softmax", m=None),
    "m=4": dict(dim=3, loss="a-softmax", m=4),
    "SphereFace2 3-D": dict(dim=3, loss="sphereface2", m=None),
    "SphereFace2 16-D": dict(dim=16, loss="sphereface2", m=None),
}
ANGLE = "mean_angle_to_own_class_deg"


def rows(work: Path, seeds: list[int], widths: list[int]) -> list[dict]:
    """One summary per (width, recipe), mean ± std over the seeds."""
    from sphereviz import demo, sweep
    from sphereviz.aggregate import over_seeds
    from sphereviz.config import TrainConfig
    from sphereviz.recipes import QUICK_NOTEBOOK_MNIST_OVERRIDES
    from sphereviz.runs import RunSpec

    specs = []
    for width in widths:
        base = TrainConfig.preset("mnist-demo", **{**QUICK_NOTEBOOK_MNIST_OVERRIDES,
                                                   "width": width})  # fmt: skip
        for seed in seeds:
            for label, changes in RECIPES.items():
                config = replace(base, seed=seed, **changes)
                name = f"w{width}-{label.replace(' ', '').replace('=', '')}-s{seed}"
                specs.append(RunSpec(f"{name}-{config.recipe_hash()}", label, config.loss,
                                     config.m, config))  # fmt: skip
    prepared = sweep.ensure_runs(specs, work)
    table = demo.summary_rows(prepared)
    for row, item in zip(table, prepared, strict=True):
        seconds = sum(epoch["seconds"] for epoch in item.run.metrics)  # also when reused
        row.update(recipe=item.spec.label, width=item.spec.config.width, seconds=seconds)
    return over_seeds(table, ("width", "recipe"), ("test_accuracy", ANGLE, "seconds"))


def margin_reading(summaries: list[dict], width: int) -> dict:
    """m = 1 against m = 4 at one width: the gap of the mean angles and the two spreads."""
    by = {s["recipe"]: s for s in summaries if s["width"] == width}
    low, high = by["m=1"], by["m=4"]
    gap = low[f"{ANGLE}_mean"] - high[f"{ANGLE}_mean"]
    spread = low[f"{ANGLE}_std"] + high[f"{ANGLE}_std"]
    return {"width": width, "gap_deg": gap, "spread_deg": spread, "beyond_spread": gap > spread}


def main() -> None:
    from sphereviz.aggregate import mean_std_text

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="run folder (reused)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--json", action="store_true", help="end with a JSON line")
    args = parser.parse_args()
    summaries = rows(args.work, args.seeds, args.widths)
    for s in summaries:
        print(
            f"width {s['width']:>2}  {s['recipe']:<17} accuracy "
            f"{mean_std_text(s, 'test_accuracy', 1, 100)} %  mean angle to own W "
            f"{mean_std_text(s, ANGLE, 1)}°  {mean_std_text(s, 'seconds', 1)} s a run"
        )
    readings = [margin_reading(summaries, width) for width in args.widths]
    for r in readings:
        print(
            f"width {r['width']}: m = 4 below m = 1 by {r['gap_deg']:.1f}° against a spread of "
            f"{r['spread_deg']:.1f}°: " + ("beyond" if r["beyond_spread"] else "within")
        )
    if args.json:
        print(json.dumps({"seeds": args.seeds, "rows": summaries, "margin": readings}))


if __name__ == "__main__":
    main()
