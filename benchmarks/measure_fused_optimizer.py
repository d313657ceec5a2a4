"""Measure the fused optimiser step of ``train.make_optimizer`` against PyTorch's reference one.

Not part of ``make bench``. For the networks the recipes train, built by the trainer's own
``build_model_and_loss`` (the feature network and the loss that holds the class weights), the
median milliseconds of ``optimizer.step()`` alone over ``--steps`` timed steps after three
untimed ones, on one torch thread with fixed random gradients: the recipe's optimiser as
``make_optimizer`` makes it (fused) and the same optimiser with the same settings but neither
``fused`` nor ``foreach`` (one pass per operation and parameter), and the largest weight
difference between the two after those steps.

Usage: ``python benchmarks/measure_fused_optimizer.py [--steps 30] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

#: (what, TrainConfig fields, classes): the recipes whose optimiser step is measured.
CASES = (
    ("MnistNet w16, 3-D (mnist-demo, SGD)", {"model": "mnistnet", "dim": 3, "width": 16,
     "optimizer": "sgd"}, 10),
    ("SFNet-4 w16, 512-D (notebook 05 quick, Adam)", {"dataset": "faces", "model": "sfnet4",
     "dim": 512, "sfnet_width": 16, "optimizer": "adam"}, 25),
    ("SFNet-4 w64, 512-D (paper widths, Adam)", {"dataset": "faces", "model": "sfnet4",
     "dim": 512, "optimizer": "adam"}, 25),
    ("SFNet-20, 512-D, 10,575 classes (CASIA, SGD)", {"dataset": "faces", "model": "sfnet20",
     "dim": 512, "optimizer": "sgd"}, 10575),
)  # fmt: skip


def step_milliseconds(optimizer, steps: int) -> float:
    """Median milliseconds of ``optimizer.step()`` with the gradients already in place."""
    times = []
    for step in range(steps + 3):
        started = time.perf_counter()
        optimizer.step()
        if step >= 3:
            times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def measure(fields: dict, classes: int, steps: int) -> dict:
    import torch

    from sphereviz.build import build_model_and_loss
    from sphereviz.config import TrainConfig
    from sphereviz.train import make_optimizer

    # faces_cache: named only (nothing is read); the networks need no data
    config = TrainConfig(loss="a-softmax", m=4, weight_decay=5e-4, faces_cache="-", **fields)
    results, weights = {}, {}
    for variant in ("fused (make_optimizer)", "reference (PyTorch, per parameter)"):
        torch.manual_seed(0)
        model, loss = build_model_and_loss(config, classes)
        parameters = [*model.parameters(), *loss.parameters()]
        generator = torch.Generator().manual_seed(1)
        for p in parameters:
            p.grad = torch.randn(p.shape, generator=generator)
        optimizer = make_optimizer(config, parameters)
        assert optimizer.defaults["fused"], "make_optimizer did not fuse on this device"
        if variant.startswith("reference"):  # the same class and settings, unfused
            unfused = {**optimizer.defaults, "fused": False, "foreach": False}
            optimizer = type(optimizer)(parameters, **unfused)
        results[variant] = step_milliseconds(optimizer, steps)
        weights[variant] = torch.cat([p.detach().flatten() for p in parameters])
    fused, reference = weights.values()
    return {
        "parameters": int(fused.numel()),
        "ms": results,
        "speed_up": results["reference (PyTorch, per parameter)"]
        / results["fused (make_optimizer)"],
        "max_weight_difference": float((fused - reference).abs().max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per case (30)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = [
        {"what": what, **measure(fields, classes, args.steps)} for what, fields, classes in CASES
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"optimizer.step(), one thread, median of {args.steps} steps (torch {torch.__version__})")
    for row in rows:
        fused, reference = row["ms"].values()
        print(
            f"{row['what']:<46} {row['parameters'] / 1e6:6.2f} M parameters: fused "
            f"{fused:7.2f} ms, reference {reference:7.2f} ms ({row['speed_up']:.1f}×), "
            f"max |Δw| after {args.steps + 3} steps {row['max_weight_difference']:.1e}"
        )


if __name__ == "__main__":
    main()
