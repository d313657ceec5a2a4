"""The GPU checks, in one short script for a session that has a CUDA card (< 5 minutes).

Run once, from the repository root: ``.venv/bin/python benchmarks/gpu_check.py``. It prints
every number and, when the environment variable ``OUT`` names a folder, writes
``$OUT/gpu_check.json`` (the same rows as ``benchmarks/run.py``, plus the machine). Steps:

0. the card: ``nvidia-smi --query-gpu=name,memory.total,driver_version``;
1. benchmark 1 on CUDA: the A-Softmax head fwd+bwd (N=256, d=512, C=10,572) vs the floor
   ``nn.Linear`` + cross-entropy and the naive head (target ≤ 1.3× the floor), eager and
   under ``torch.compile`` (eager is launch-bound on a GPU: 4.2× the floor in the CPU's
   dispatch-bound stand-in, d = C = 16);
3. benchmark 3: SFNet-20 + A-Softmax training images/s from a synthetic uint8 cache of
   20,000 random 112×96 faces resident on the GPU, 10,572 classes, batch 256, SGD as in the
   ``faces`` preset. The step is the trainer's (``sphereviz.train.train``'s loop body: the
   resident-cache batches with flip, ``Classifier`` forward under bf16 autocast in
   channels_last, backward, SGD, LR schedule, the running train accuracy), with and without
   ``torch.compile`` of the feature network, against the same step in fp32 NCHW without
   autocast (the baseline). Warm-up steps (cuDNN autotuning, compilation) are excluded;
   target ≥ 15,000 img/s on an H100 and ≥ 4× the baseline;
2. benchmark 2 on CUDA: MNIST 3-D A-Softmax m = 4 (``mnist-full``), seconds to 97 % test
   accuracy (target ≤ 5 s), and the same recipe through a ``DataLoader`` loop.

Options: ``--only 0,1,3,2`` (steps), ``--steps N`` (timed steps per block for benchmark 3).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import torch
from common import Target, format_table, machine_info, make_row, skipped_row

SFNET_WHAT = "SFNet-20 + A-Softmax training, uint8 cache on the GPU, N=256 C=10572"
SFNET_TARGETS = (Target("value", ">=", 15_000, "img/s"), Target("ratio", ">=", 4.0))
NUM_FACES = 20_000
NUM_CLASSES = 10_572
FACE_SHAPE = (112, 96, 3)
BASELINE_VARIANT = "baseline: fp32 NCHW, no autocast"


def card_name() -> str:
    """``nvidia-smi``'s name, memory and driver of each card (or why it could not say)."""
    try:
        result = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,memory.total,driver_version",
                "--format=csv,noheader",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return f"nvidia-smi failed: {error}"
    return result.stdout.strip()


def _synthetic_face_cache(seed: int = 0):
    """20,000 random uint8 faces (N×112×96×3) and labels covering all 10,572 classes."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (NUM_FACES, *FACE_SHAPE), dtype=torch.uint8, generator=generator)
    labels = torch.arange(NUM_FACES) % NUM_CLASSES
    return images.numpy(), labels.numpy()


def _trainer_parts(
    optimised: bool, compiled: bool, images, labels, device: str = "cuda", batch_size: int = 256
):
    """Model, loss, optimizer, schedule and batches as ``train`` builds them for ``faces``.

    ``optimised`` False: the fp32 NCHW baseline (no autocast, no channels_last).
    """
    from sphereviz.config import Classifier, TrainConfig, build_model_and_loss
    from sphereviz.data.tensors import BatchIterator
    from sphereviz.train import make_optimizer, training_batches, training_step

    device = torch.device(device)
    config = TrainConfig.preset(
        "faces", faces_cache="synthetic", device=str(device), batch_size=batch_size
    )
    torch.manual_seed(config.seed)
    model, loss = build_model_and_loss(config, NUM_CLASSES)
    loss.check_label_range = False  # as train() does: no host sync for labels in each step
    classifier = Classifier(model, loss).to(device)
    if optimised:
        classifier = classifier.to(memory_format=torch.channels_last)
    if compiled:
        classifier.model = torch.compile(classifier.model)
    optimizer = make_optimizer(config, classifier.parameters())
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [10**9], config.lr_decay)
    generator = torch.Generator().manual_seed(config.seed)
    batches = BatchIterator(
        images,
        labels,
        config.batch_size,
        shuffle=True,
        flip=True,
        generator=generator,
        device=device,
    )
    if device.type == "cuda" and not batches.resident_on_device:
        raise RuntimeError("the synthetic cache did not become resident on the GPU")

    def endless_batches():
        while True:
            if optimised:
                yield from training_batches(batches, config, 0, 1, generator)
            else:
                yield from batches

    totals = torch.zeros(3, device=device)

    def step(images, labels):
        training_step(
            classifier, classifier.loss, optimizer, scheduler, images, labels, totals, optimised
        )

    return step, endless_batches(), config.batch_size


def measure_training_throughput(
    optimised: bool,
    compiled: bool,
    images,
    labels,
    steps: int = 50,
    blocks: int = 3,
    warmup_steps: int = 15,
    device: str = "cuda",
    batch_size: int = 256,
) -> dict:
    """Images/s of the training step: one rate per timed block of ``steps`` steps."""
    on_cuda = torch.device(device).type == "cuda"

    def synchronize() -> None:
        if on_cuda:
            torch.cuda.synchronize()

    torch.backends.cudnn.benchmark = True
    step, batches, batch_size = _trainer_parts(
        optimised, compiled, images, labels, device, batch_size
    )
    started = time.perf_counter()
    for _ in range(warmup_steps):
        step(*next(batches))
    synchronize()
    warmup_s = time.perf_counter() - started
    rates = []
    for _ in range(blocks):
        synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            step(*next(batches))
        synchronize()
        rates.append(steps * batch_size / (time.perf_counter() - start))
    peak = torch.cuda.max_memory_allocated() / 2**30 if on_cuda else None
    return {"rates": rates, "warmup_s": warmup_s, "peak_memory_gib": peak}


def sfnet_rows(steps: int = 50) -> list[dict]:
    """Benchmark 3 rows: the fp32 NCHW baseline, bf16 + channels_last, and the same compiled."""
    if not torch.cuda.is_available():
        return [skipped_row(3, SFNET_WHAT, "no CUDA", SFNET_TARGETS)]
    images, labels = _synthetic_face_cache()
    variants = {
        BASELINE_VARIANT: (False, False),
        "trainer: bf16 autocast + channels_last": (True, False),
        "trainer + torch.compile(model)": (True, True),
    }
    rows, baseline = [], None
    for variant, (optimised, compiled) in variants.items():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        try:
            result = measure_training_throughput(optimised, compiled, images, labels, steps)
        except Exception as error:  # torch.compile may be unavailable (no triton, …)
            rows.append(
                make_row(3, SFNET_WHAT, variant, None, "img/s", note=f"error: {error!r}"[:300])
            )
            continue
        details = {
            "warmup_s": round(result["warmup_s"], 2),
            "peak_memory_gib": round(result["peak_memory_gib"], 2),
            "card": torch.cuda.get_device_name(0),
        }
        if variant == BASELINE_VARIANT:
            baseline = statistics.median(result["rates"])
        targets = () if variant == BASELINE_VARIANT else SFNET_TARGETS
        rows.append(
            make_row(
                3,
                SFNET_WHAT,
                variant,
                result["rates"],
                "img/s",
                baseline=baseline,
                baseline_variant=BASELINE_VARIANT,
                targets=targets,
                details=details,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="0,1,3,2", help="steps to run, e.g. 0,3")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per block (#3)")
    args = parser.parse_args(argv)
    only = {int(part) for part in args.only.split(",")}
    started = time.perf_counter()
    report = {"machine": machine_info(), "rows": []}

    def show(title: str, rows: list[dict]) -> None:
        report["rows"] += rows
        print(f"\n== {title} ({time.perf_counter() - started:.0f} s since start)")
        print(format_table(rows), flush=True)

    if 0 in only:
        report["nvidia_smi"] = card_name()
        print("card:", report["nvidia_smi"], flush=True)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check here")
        return 1
    if 1 in only:
        import bench_loss_head

        show("1: loss head on CUDA", bench_loss_head.run(repeats=50, device="cuda", compiled=True))
    if 3 in only:
        show("3: SFNet-20 training throughput", sfnet_rows(args.steps))
    if 2 in only:
        import bench_mnist_training

        show("2: MNIST 3-D on CUDA", bench_mnist_training.run(quick=True, device="cuda"))
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(f"\ntotal {report['seconds']} s")
    if os.environ.get("OUT"):
        path = Path(os.environ["OUT"]) / "gpu_check.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
