"""Measure ``geometry.feature_criterion`` on an open-set-sized feature set, against masks.

Not part of ``make bench``. The features are synthetic: ``--classes`` classes of ``--per-class``
``--dim``-D features (as ``sphereviz open-set`` on Fashion-MNIST holds out 5 classes of 7,000
images, 16-D). The baseline is the criterion's former extremes: every row block against all rows,
with same-class and different-class boolean masks and the masked cosines gathered (about N²
cosines, two masks and two gathers). The library sorts by class and reads each class's pairs
as slices (about N²/2 cosines). Both must give the same max intra / min inter (checked), and
the two variants alternate over ``--rounds``. ``OPENBLAS_NUM_THREADS=1`` measures one core, as
a sweep worker has it.

Usage: ``OPENBLAS_NUM_THREADS=1 python benchmarks/measure_feature_criterion.py [--rounds 3]
[--json]``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import numpy as np

from sphereviz import geometry
from sphereviz.geometry import unit_rows


def masked_extremes(unit: np.ndarray, labels: np.ndarray, block: int = 2048) -> tuple[float, float]:
    """Max intra / min inter (radians) over all pairs, through boolean masks (the baseline)."""
    max_intra, min_inter = 0.0, math.pi
    for start in range(0, labels.size, block):
        rows = slice(start, start + block)
        cos = np.clip(unit[rows] @ unit.T, -1.0, 1.0)
        same = labels[rows, None] == labels[None, :]
        same[np.arange(cos.shape[0]), np.arange(start, start + cos.shape[0])] = False
        different = ~same
        different[np.arange(cos.shape[0]), np.arange(start, start + cos.shape[0])] = False
        if same.any():
            max_intra = max(max_intra, float(np.arccos(cos[same].min())))
        min_inter = min(min_inter, float(np.arccos(cos[different].max())))
    return max_intra, min_inter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--per-class", type=int, default=7000)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(args.classes), args.per_class))
    features = rng.normal(size=(labels.size, args.dim)) + 3 * np.eye(args.dim)[labels % args.dim]
    unit = unit_rows(features)
    seconds: dict[str, list[float]] = {"masks": [], "library": []}
    for _ in range(args.rounds):
        started = time.perf_counter()
        expected = masked_extremes(unit, labels)
        seconds["masks"].append(time.perf_counter() - started)
        started = time.perf_counter()
        criterion = geometry.feature_criterion(features, labels)
        seconds["library"].append(time.perf_counter() - started)
        got = (criterion.max_intra_class_angle, criterion.min_inter_class_angle)
        assert np.allclose(got, expected, rtol=0, atol=1e-12), (got, expected)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    result = {
        "features": [int(labels.size), args.dim],
        "classes": args.classes,
        "seconds": seconds,
        "median_seconds": medians,
        "note": "masks: the extremes alone; library: the whole feature_criterion",
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{labels.size} features, {args.dim}-D, {args.classes} classes, {args.rounds} rounds: "
        f"max intra / min inter through masks {medians['masks']:.2f} s (median), the whole "
        f"feature_criterion {medians['library']:.2f} s; the same extremes"
    )


if __name__ == "__main__":
    main()
