"""Measure the narrower SFNet of the quick modes (``recipes.QUICK_SFNET_WIDTH``).

Not part of ``make bench``. Two parts:

1. Speed: one training step (forward, backward, Adam) of SFNet-4 on a batch of 8 random
   112×96 faces, one torch thread, channels-last as the trainer feeds it, at first-stage
   widths 64 (the paper's), 32 and 16, with 3-D and 512-D features: the median over
   ``--steps`` timed steps after three untimed ones.
2. With ``--train``: what the width does to notebook 04's quick run (the six largest LFW
   identities, 40 images each, batches of 8, 300 optimiser steps, A-Softmax m = 1 and m = 4)
   over ``--seeds``, at widths 64 and 16: held-out accuracy and mean angle to the own class
   weight, mean ± std over the seeds, and the seconds of each run's training epochs (two runs
   at a time; recorded by the run, so also for runs reused from ``--work``).

Usage: ``python benchmarks/measure_sfnet_width.py [--train --work /tmp/DIR --seeds 0 1] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from common import find_lfw

from sphereviz.recipes import QUICK_FACES_BATCH as BATCH  # the face notebooks' quick batch

LFW_ROOT = find_lfw()

WIDTHS = (64, 32, 16)


def step_milliseconds(width: int, dim: int, steps: int) -> float:
    """Median milliseconds of one SFNet-4 training step at this width and feature dimension."""
    import torch

    from sphereviz.models import SFNet

    torch.manual_seed(0)
    model = SFNet(4, embedding_dim=dim, width=width).to(memory_format=torch.channels_last)
    images = torch.randn(BATCH, 3, 112, 96).contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters())
    times = []
    for step in range(steps + 3):
        started = time.perf_counter()
        optimizer.zero_grad()
        model(images).square().mean().backward()
        optimizer.step()
        if step >= 3:
            times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def quick_run_rows(work: Path, seeds: list[int]) -> list[dict]:
    """Notebook 04's quick runs at widths 64 and 16 (m = 1, 4 × ``seeds``), over the seeds."""
    from sphereviz import demo, sweep
    from sphereviz.aggregate import over_seeds
    from sphereviz.config import TrainConfig
    from sphereviz.data import LFW_LANDMARK_FRAME, default_landmarks, lfw_images_dir, prepare_faces
    from sphereviz.recipes import quick_faces_overrides
    from sphereviz.runs import RunSpec

    faces = prepare_faces(
        lfw_images_dir(LFW_ROOT),
        work / "faces-lfw-top6-quick",
        landmarks=default_landmarks(LFW_ROOT),
        landmark_frame=LFW_LANDMARK_FRAME,
        top_k_identities=6,
        max_images_per_identity=40,
        progress=False,
    )
    recipe = {**sweep.FACES_RECIPE, "device": "cpu", "faces_cache": str(faces.directory)}
    recipe.update(quick_faces_overrides(len(faces), recipe["test_fraction"]))
    specs = []
    for width in (64, 16):
        for seed in seeds:
            for m in (1, 4):
                changes = {"sfnet_width": width, "loss": "a-softmax", "m": m, "seed": seed}
                config = TrainConfig(**{**recipe, **changes})
                name = f"w{width}-m{m}-s{seed}-{config.recipe_hash()}"
                specs.append(RunSpec(name, f"width {width}, m = {m}", "a-softmax", m, config))
    prepared = sweep.ensure_runs(specs, work / "runs", log=lambda _: None)
    rows = demo.summary_rows(prepared)  # test accuracy and the geometry of the test features
    for row, item in zip(rows, prepared, strict=True):
        epochs_seconds = sum(epoch["seconds"] for epoch in item.run.metrics)  # also when reused
        row.update(label=item.spec.label, train_seconds=float(epochs_seconds))
    metrics = ("test_accuracy", "mean_angle_to_own_class_deg", "train_seconds")
    return over_seeds(rows, ("label",), metrics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per width")
    parser.add_argument("--train", action="store_true", help="also train notebook 04's runs")
    parser.add_argument("--work", type=Path, default=Path("build/measure-sfnet-width"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    speed = [
        {"width": width, "dim": dim, "ms_per_step": step_milliseconds(width, dim, args.steps)}
        for dim in (3, 512)
        for width in WIDTHS
    ]
    report = {"batch": BATCH, "torch_threads": 1, "speed": speed}
    if args.train:
        report["quick_runs"] = quick_run_rows(args.work, args.seeds)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"SFNet-4 training step, batch {BATCH}, one torch thread (median ms):")
    for row in speed:
        print(f"  width {row['width']:>2}, {row['dim']:>3}-D features: {row['ms_per_step']:6.1f}")
    for entry in report.get("quick_runs", []):
        print(
            f"{entry['label']:>18}: accuracy {entry['test_accuracy_mean']:.3f} ± "
            f"{entry['test_accuracy_std']:.3f}, angle to own W "
            f"{entry['mean_angle_to_own_class_deg_mean']:.1f} ± "
            f"{entry['mean_angle_to_own_class_deg_std']:.1f}°, "
            f"{entry['train_seconds_mean']:.0f} s of training epochs a run (seeds {entry['seeds']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
