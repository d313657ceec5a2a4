"""Train a network with a loss of the family: one readable loop, and ``sphereviz train``.

Read top to bottom: the pieces the loop needs (data, optimizer, augmentation, processes), the
loop itself in :func:`train`, then the command line. What a run is (the configuration, its
presets, the model + loss it builds) lives in :mod:`sphereviz.config`;
a run is written as a folder (see :mod:`sphereviz.runs`).

What the loop does each step: draw a seeded batch (uint8 → normalised float; random shift for
digits, random flip for faces), compute features x = model(images), the loss with its margin
on the target logit (the A-Softmax λ counter advances inside the loss), step the optimizer and
the multistep learning-rate schedule. After each epoch: accuracy on the evaluation split from
the plain logits (``loss.get_logits``: no margin), the checkpoint (atomic), the embeddings and
``on_epoch``.

Devices: ``auto`` picks CUDA, then Apple MPS, then the CPU. Convolutions run in channels-last
memory format everywhere. On CUDA the model runs under bf16 autocast (the losses compute the
margin in float32 regardless), with the uint8 training set resident on the GPU when it fits.
Under ``torchrun`` with WORLD_SIZE > 1 the model is wrapped in DistributedDataParallel; every
process draws the same global batch order and keeps its strided share, and only rank 0 writes
the run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from sphereviz.build import Classifier, build_model_and_loss
from sphereviz.config import (
    DATASETS,
    OPTIMIZERS,
    PRESETS,
    SCHEDULES,
    ScheduleWarning,
    TrainConfig,
    recipe_differences,
)
from sphereviz.datasets import load_datasets
from sphereviz.datasets import select_classes as select_classes  # named here, as before
from sphereviz.datasets import split_faces as split_faces
from sphereviz.devices import require_device
from sphereviz.distributed import Distributed, process_group, sum_over_processes
from sphereviz.errors import report_error
from sphereviz.fileio import check_writable_folder, disk_full_as_error, print_json_summary
from sphereviz.geometry.metrics import accuracy
from sphereviz.locks import FolderLock
from sphereviz.losses.registry import LOSS_ALIASES, LOSS_NAMES
from sphereviz.models import extract_features
from sphereviz.runs import (
    CHECKPOINT_NAME,
    CLASSES_NAME,
    CONFIG_NAME,
    EMBEDDINGS_NAME,
    METRICS_NAME,
    Run,
    load_checkpoint,
    read_json,
    save_checkpoint,
    write_class_names,
    write_config,
    write_embeddings,
    write_metrics,
)

__all__ = [
    "TrainingDivergedError",
    "main",
    "random_shift",
    "train",
]


# ---------------------------------------------------------------------------------------------
# The pieces the loop needs


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image of an (N, C, H, W) batch by its own random (dy, dx) ∈ [−s, s]²,
    filling with the border value; done on the whole batch on its device (two gathers)."""
    if max_shift == 0:
        return images
    n, channels, height, width = images.shape
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator).to(images.device)
    padded = F.pad(images, (max_shift,) * 4, mode="replicate")
    rows = offsets[0].view(n, 1, 1, 1) + torch.arange(height, device=images.device).view(
        1, 1, -1, 1
    )
    padded = padded.gather(2, rows.expand(n, channels, height, width + 2 * max_shift))
    cols = offsets[1].view(n, 1, 1, 1) + torch.arange(width, device=images.device).view(1, 1, 1, -1)
    return padded.gather(3, cols.expand(n, channels, height, width))


def training_batches(
    batches, config: TrainConfig, rank: int, world_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of this process's batches: its strided share of each global batch, shifted."""
    for images, labels in batches:
        if world_size > 1:
            images, labels = images[rank::world_size], labels[rank::world_size]
        images = random_shift(images, config.shift, generator)
        yield images.contiguous(memory_format=torch.channels_last), labels


#: Devices with a fused PyTorch optimiser kernel that this package trains on.
FUSED_OPTIMIZER_DEVICES = frozenset({"cpu", "cuda"})


def make_optimizer(
    config: TrainConfig, parameters, lr: float | None = None
) -> torch.optim.Optimizer:
    """The recipe's optimiser at learning rate ``lr`` (default ``config.lr``).

    SGD with momentum μ and weight decay λ_wd: g ← ∇ + λ_wd·w, v ← μ·v + g, w ← w − lr·v;
    Adam (L2 weight decay, g ← ∇ + λ_wd·w, then Kingma & Ba's update). Both in PyTorch's fused
    form when every parameter is on a CPU or CUDA device: one kernel per step over all the
    parameters instead of a pass per operation and parameter, the same update to rounding
    (``tests/test_train.py``). On one core of this CPU an Adam step over notebook 05's quick
    SFNet-4 (2.9 M parameters) takes 3.7 ms instead of 38.6, and an SGD step over SFNet-20 with
    CASIA's 10,575 classes 24 ms instead of 102 (``benchmarks/measure_fused_optimizer.py``).
    """
    lr = config.lr if lr is None else lr
    parameters = list(parameters)
    fused = all(p.device.type in FUSED_OPTIMIZER_DEVICES for p in parameters) or None
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters, lr, momentum=config.momentum, weight_decay=config.weight_decay,
            fused=fused,
        )  # fmt: skip
    return torch.optim.Adam(parameters, lr, weight_decay=config.weight_decay, fused=fused)


def _check_finite(step_losses: torch.Tensor, steps_done: int, epoch: int, out) -> None:
    bad = ~torch.isfinite(step_losses[:steps_done])
    if bool(bad.any()):
        step = int(bad.nonzero()[0])
        kept = (
            f"the last good checkpoint (after epoch {epoch - 1}) is kept in {out}"
            if out is not None and epoch > 1
            else "no checkpoint was written"
        )
        raise TrainingDivergedError(
            f"the loss became {float(step_losses[step])} at epoch {epoch}, step {step + 1}; "
            f"training stopped and {kept}. Usual remedies: a larger λ_min (--lambda-min 10), a "
            "lower learning rate (--lr), or softmax pre-training (train with --loss softmax "
            "first)."
        )


# ---------------------------------------------------------------------------------------------
# The loop


def train(
    config: TrainConfig,
    progress: bool | None = None,
    on_epoch: Callable[[int, dict, dict], None] | None = None,
    resume: bool = False,
) -> Run:
    """Train ``config`` and return the :class:`~sphereviz.runs.Run`.

    Args:
        progress: a tqdm bar; None shows it only when stderr is a terminal.
        on_epoch: called as ``on_epoch(epoch, metrics, embeddings)`` after each epoch, with the
            evaluation split's ``features``, ``labels`` and ``class_weights`` as numpy arrays.
        resume: continue from ``config.out``'s last checkpoint with the results an
            uninterrupted run would give (bit for bit on the CPU). The config must equal the
            run's (only ``device`` and ``out`` may differ: the LR milestones are fractions of
            all epochs, so more epochs would be a different run). A finished run is returned
            as it is; a folder without a checkpoint starts fresh.

    Raises:
        TrainingDivergedError: the loss became NaN or infinite (the last good checkpoint stays).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    device = require_device(config.device)
    with _run_folder_lock(config, resume):
        out = Path(config.out) if config.out is not None else None
        checkpoint = _checkpoint_to_resume(config, out) if resume else None
        if out is not None and not resume and (out / CHECKPOINT_NAME).exists():
            raise ValueError(
                f"{out} already holds a run; pass resume=True (--resume) to continue it, or "
                "choose another out folder"
            )
        with process_group(device) as dist_info:
            session = _prepare(config, dist_info)
            if dist_info.is_main and not resume:
                for message in session.schedule_warnings:  # stacklevel 2: the caller of train()
                    warnings.warn(f"{config.loss}: {message}", ScheduleWarning, stacklevel=2)
            start_epoch, metrics = _restore(session, checkpoint)
            if out is not None and dist_info.is_main:
                out.mkdir(parents=True, exist_ok=True)
                write_config(out / CONFIG_NAME, config.to_dict())
                write_class_names(out / CLASSES_NAME, session.train_set.class_names)
            embeddings = _epoch_loop(session, start_epoch, metrics, out, progress, on_epoch)
            if dist_info.is_main and not embeddings:  # resumed a run that had already finished
                embeddings = evaluation_embeddings(
                    session.classifier, session.test_set, session.device
                )
    session.classifier.eval()
    return Run(
        out,
        config,
        metrics,
        embeddings,
        warnings=tuple(session.schedule_warnings),
        class_names=list(session.train_set.class_names),
        _trained=(session.classifier.model, session.classifier.loss),
    )


def _run_folder_lock(config: TrainConfig, resume: bool):
    """The run folder's writer lock (rank 0 of a job, with ``out`` set), else a null context.

    Checked first: an ``out`` that cannot be written (a read-only file system, a file in its
    place). ``resume=True`` of a folder that does not exist trains it from the start (the
    rerun-or-finish idiom of :meth:`TrainConfig.in_run_folder`); ``sphereviz train --resume``
    refuses a missing folder instead (see :func:`main`).
    """
    if config.out is None or int(os.environ.get("RANK", "0")) != 0:
        return contextlib.nullcontext()
    out = Path(config.out)
    check_writable_folder(out, "run folder")
    return FolderLock(out, "run folder")


@dataclass
class _Session:
    """What the epoch loop works with: the data, its batches, the model + loss, the optimiser."""

    config: TrainConfig
    dist: Distributed
    train_set: Any
    test_set: Any
    generator: torch.Generator
    batches: Any
    total_steps: int
    schedule_warnings: list[str]
    classifier: Classifier
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler

    @property
    def device(self) -> torch.device:
        return self.dist.device


def _prepare(config: TrainConfig, dist_info: Distributed) -> _Session:
    """Load the data, draw the seeded batches, build the model + loss, optimiser and schedule."""
    from sphereviz.data.tensors import BatchIterator

    device = dist_info.device
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    train_set, test_set = load_datasets(config)
    generator = torch.Generator().manual_seed(config.seed)
    # Every process draws the same global batch of batch_size images and keeps its share; a
    # last batch smaller than the number of processes would leave one of them empty.
    batch_size, lr = config.fitted_batch(len(train_set))
    leftover = len(train_set) % batch_size
    batches = BatchIterator(
        train_set.images,
        train_set.labels,
        batch_size,
        shuffle=True,
        flip=config.flip,
        generator=generator,
        device=device,
        drop_last=0 < leftover < dist_info.world_size,
    )
    total_steps = len(batches) * config.epochs
    torch.manual_seed(config.seed)
    model, loss = build_model_and_loss(config, train_set.num_classes, total_steps)
    loss.check_label_range = False  # ArrayDataset checked every label; no host sync per step
    # channels-last convolutions: faster on CUDA and, measured here, on the CPU too
    classifier = Classifier(model, loss).to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(config, classifier.parameters(), lr)
    milestones = [round(f * total_steps) for f in config.milestones]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, config.lr_decay)
    return _Session(
        config, dist_info, train_set, test_set, generator, batches, total_steps,
        config.schedule_warnings(total_steps), classifier, optimizer, scheduler,
    )  # fmt: skip


def _restore(session: _Session, checkpoint: dict | None) -> tuple[int, list[dict]]:
    """Weights, optimiser, schedule and RNG states of ``checkpoint``; (epochs done, metrics)."""
    if checkpoint is None:
        return 0, []
    session.classifier.model.load_state_dict(checkpoint["model"])
    session.classifier.loss.load_state_dict(checkpoint["loss"])
    session.optimizer.load_state_dict(checkpoint["optimizer"])
    session.scheduler.load_state_dict(checkpoint["scheduler"])
    torch.set_rng_state(checkpoint["rng"]["torch"])
    session.generator.set_state(checkpoint["rng"]["data"])
    if session.device.type == "cuda" and checkpoint["rng"].get("cuda") is not None:
        torch.cuda.set_rng_state(checkpoint["rng"]["cuda"], session.device)
    return int(checkpoint["epoch"]), list(checkpoint["metrics"])


def _epoch_loop(
    session: _Session,
    start_epoch: int,
    metrics: list[dict],
    out: Path | None,
    progress: bool | None,
    on_epoch: Callable[[int, dict, dict], None] | None,
) -> dict[str, np.ndarray]:
    """Epochs ``start_epoch + 1 …``: train, then (rank 0) evaluate, save and call ``on_epoch``.

    Appends each epoch's row to ``metrics``; returns the last epoch's embeddings ({} when no
    epoch was left). The DDP wrapper lives only here, so it is freed when the loop ends.
    """
    config, dist_info, classifier = session.config, session.dist, session.classifier
    network = classifier
    if dist_info.world_size > 1:
        on_cuda = session.device.type == "cuda"
        network = nn.parallel.DistributedDataParallel(
            classifier, device_ids=[session.device.index] if on_cuda else None
        )
    steps_per_epoch = len(session.batches)
    bar = tqdm(
        total=steps_per_epoch * config.epochs,
        initial=steps_per_epoch * start_epoch,
        desc=f"{config.loss} {config.dim}-D",
        unit="step",
        disable=(None if progress is None else not progress) if dist_info.is_main else True,
    )
    embeddings: dict[str, np.ndarray] = {}
    for epoch in range(start_epoch + 1, config.epochs + 1):
        started = time.perf_counter()
        totals = _train_epoch(session, network, epoch, bar, out)
        if dist_info.is_main:
            embeddings = evaluation_embeddings(classifier, session.test_set, session.device)
            metrics.append(_epoch_metrics(session, epoch, totals, embeddings, started))
            bar.set_postfix(epoch=epoch, test_accuracy=f"{metrics[-1]['test_accuracy']:.4f}")
            if out is not None:
                _write_epoch(
                    out, classifier, session.optimizer, session.scheduler, session.generator,
                    metrics, embeddings, session.total_steps, config,
                )  # fmt: skip
            if on_epoch is not None:
                on_epoch(epoch, dict(metrics[-1]), embeddings)
        if dist_info.world_size > 1:
            torch.distributed.barrier()
    bar.close()
    return embeddings


def _train_epoch(session: _Session, network: nn.Module, epoch: int, bar, out) -> torch.Tensor:
    """One epoch of optimiser steps; the (loss·n, correct, n) totals summed over processes.

    The losses stay on the device and are checked for NaN/inf every 50 steps (every step on
    the CPU), so a diverged run stops early without a host sync per step on a GPU.
    """
    dist_info, device = session.dist, session.device
    network.train()
    steps_per_epoch = len(session.batches)
    step_losses = torch.zeros(steps_per_epoch, device=device)
    totals = torch.zeros(3, device=device)  # loss·n, correct, n
    for step, (images, labels) in enumerate(
        training_batches(
            session.batches, session.config, dist_info.rank, dist_info.world_size,
            session.generator,
        )
    ):  # fmt: skip
        batch_loss = training_step(
            network, session.classifier.loss, session.optimizer, session.scheduler, images,
            labels, totals, device.type == "cuda",
        )  # fmt: skip
        step_losses[step] = batch_loss
        if device.type == "cpu" or step % 50 == 49 or step == steps_per_epoch - 1:
            _check_finite(sum_over_processes(step_losses.clone(), dist_info), step + 1, epoch, out)
            bar.set_postfix(epoch=epoch, loss=f"{float(batch_loss):.3f}", refresh=False)
        bar.update()
    return sum_over_processes(totals, dist_info)


def _epoch_metrics(
    session: _Session, epoch: int, totals: torch.Tensor, embeddings: dict, started: float
) -> dict:
    """The row of ``metrics.jsonl``: training loss and accuracy, test accuracy from the plain
    cosine logits (no margin), λ, learning rate and the epoch's wall time."""
    loss = session.classifier.loss
    with torch.no_grad():
        test_features = torch.from_numpy(embeddings["features"]).to(session.device)
        test_logits = loss.get_logits(test_features).cpu()
    return {
        "epoch": epoch,
        "loss": float(totals[0] / totals[2]),
        "train_accuracy": float(totals[1] / totals[2]),
        "test_accuracy": accuracy(test_logits.numpy(), embeddings["labels"]),
        "lambda": loss.current_lambda,
        "lr": session.scheduler.get_last_lr()[0],
        "total_steps": session.total_steps,
        "batch_size": session.batches.batch_size,
        "seconds": time.perf_counter() - started,
        "device": str(session.device),
    }


@torch.no_grad()
def evaluation_embeddings(classifier: Classifier, dataset, device: torch.device) -> dict:
    """Features, labels and class weights of ``dataset`` (eval mode), as numpy arrays."""
    classifier.eval()
    features = extract_features(classifier.model, dataset.images, device=device)
    return {
        "features": features,
        "labels": np.asarray(dataset.labels),
        "class_weights": classifier.loss.class_weights().float().cpu().numpy(),
    }


def training_step(
    network: nn.Module,
    loss: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    images: torch.Tensor,
    labels: torch.Tensor,
    totals: torch.Tensor,
    bf16: bool,
) -> torch.Tensor:
    """One optimisation step; returns the detached batch loss and adds to ``totals``.

    ``network(images, labels)`` gives (loss, features), under bf16 autocast when ``bf16`` (the
    margin itself stays in float32). ``totals`` (3,) accumulates loss·n, correct predictions
    of the plain cosine logits (no margin) and n, on the device: nothing here waits for it.
    """
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bf16):
        batch_loss, features = network(images, labels)
    optimizer.zero_grad(set_to_none=True)
    batch_loss.backward()
    optimizer.step()
    scheduler.step()
    with torch.no_grad():
        predictions = loss.get_logits(features.detach()).argmax(1)
        batch_loss = batch_loss.detach()
        totals[0] += batch_loss * len(labels)
        totals[1] += (predictions == labels).sum()
        totals[2] += len(labels)
    return batch_loss


def _write_epoch(
    out, classifier, optimizer, scheduler, generator, metrics, embeddings, total_steps, config
) -> None:
    """Checkpoint first (atomic, with the recipe it was trained with), then the files derived
    from it. A full disk is a :class:`DiskFullError`; the previous checkpoint stays."""
    device = next(classifier.parameters()).device
    rng = {"torch": torch.get_rng_state(), "data": generator.get_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    with disk_full_as_error(out, metrics[-1]["epoch"] - 1):
        _save_epoch_files(
            out, classifier, optimizer, scheduler, rng, metrics, embeddings, total_steps, config
        )


def _save_epoch_files(
    out, classifier, optimizer, scheduler, rng, metrics, embeddings, total_steps, config
) -> None:
    save_checkpoint(
        out / CHECKPOINT_NAME,
        {
            "recipe": config.recipe(),
            "epoch": metrics[-1]["epoch"],
            "num_classes": classifier.loss.num_classes,
            "model": classifier.model.state_dict(),
            "loss": classifier.loss.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng,
            "metrics": metrics,
            "total_steps": total_steps,
        },
    )
    write_embeddings(out / EMBEDDINGS_NAME, embeddings)
    write_metrics(out / METRICS_NAME, metrics)


def _checkpoint_to_resume(config: TrainConfig, out: Path | None) -> dict | None:
    """The checkpoint to continue from, after checking that the config matches the run's."""
    if out is None:
        raise ValueError("resume needs config.out, the run folder to continue")
    if out.exists() and not out.is_dir():
        raise ValueError(f"cannot resume {out}: it is a file, not a run folder")
    if not (out / CHECKPOINT_NAME).exists():
        return None
    saved = TrainConfig.from_dict(read_json(out / CONFIG_NAME), source=out / CONFIG_NAME)
    differences = recipe_differences(saved.recipe(), config.recipe(), "run has", "asked for")
    if differences:
        raise ValueError(
            f"cannot resume {out} with a different config ({'; '.join(differences)}); "
            "resume with the run's own settings or train into a new folder"
        )
    checkpoint = load_checkpoint(out / CHECKPOINT_NAME)
    trained = checkpoint.get("recipe")  # absent in checkpoints written before it was stored
    if trained is not None:
        differences = recipe_differences(
            trained, saved.recipe(), "checkpoint trained with", f"{CONFIG_NAME} says"
        )
        if differences:
            raise ValueError(
                f"cannot resume {out}: {CONFIG_NAME} no longer matches the recipe its "
                f"checkpoint was trained with ({'; '.join(differences)}); was it edited by "
                f"hand? Restore those values in {out / CONFIG_NAME}, or train a new run"
            )
    return checkpoint


# ---------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sphereviz train",
        description="Train a loss of the family on MNIST, Fashion-MNIST or a face cache.",
        argument_default=argparse.SUPPRESS,
    )
    add = parser.add_argument
    add("--preset", choices=list(PRESETS), help="start from a named recipe (default: by dataset)")
    add("--dataset", choices=DATASETS)
    add("--data-root", dest="data_root", help="IDX folder for full MNIST / Fashion-MNIST")
    add("--faces-cache", dest="faces_cache", help="a `sphereviz prepare-faces` cache folder")
    add(
        "--loss",
        help=_loss_choices_text(),
    )
    add(
        "--m",
        type=float,
        help="margin: integer m for A-/L-Softmax, real m >= 1 for SphereFace-R, cosine/angle "
        "for CosFace/ArcFace/SphereFace2",
    )
    add("--scale", type=float, help="logit scale s (NormFace, CosFace, ArcFace, SphereFace-R/2)")
    add("--alpha", type=float, help="SphereFace2: weight α of the positive term (default 0.7)")
    add("--t", type=float, help="SphereFace2: exponent t of g(c) = 2((c+1)/2)^t − 1 (default 3)")
    add("--loss-weight", dest="loss_weight", type=float, help="SphereFace2: λ_w (default 50)")
    add("--dim", type=int, help="feature dimension (2 or 3 to plot)")
    add("--model", help="mnistnet, sfnet4, sfnet10, sfnet20, sfnet36, sfnet64")
    add("--width", type=int, help="MnistNet channels of the first block (default 16)")
    add(
        "--sfnet-width",
        dest="sfnet_width",
        type=int,
        help="SFNet channels of the first stage, doubling at each (default 64, the paper's; 16: "
        "a tenth of the cost of a step, the notebooks' quick mode)",
    )
    add("--epochs", type=int)
    add("--batch-size", dest="batch_size", type=int)
    add(
        "--min-batches-per-epoch",
        dest="min_batches_per_epoch",
        type=int,
        help="shrink the batch (and lr, linearly) for a training set too small for this many "
        "batches per epoch (the faces preset: 10)",
    )
    add("--optimizer", choices=OPTIMIZERS)
    add("--lr", type=float)
    add("--weight-decay", dest="weight_decay", type=float)
    add(
        "--schedule",
        choices=list(SCHEDULES),
        help="λ schedule of A-/L-Softmax: margin-biting (default: λ reaches 0.1 at half the "
        "run) or official (γ 0.12, floor 5 at iteration 1659: m = 4 trains as m ≈ 1.6)",
    )
    add("--lambda-min", dest="lambda_min", type=float, help="λ floor of the annealing")
    add(
        "--lambda-floor-at",
        dest="lambda_floor_at",
        type=float,
        help="fraction of the run's steps at which λ reaches its floor (γ follows from it)",
    )
    add("--lambda-gamma", dest="lambda_gamma", type=float, help="absolute γ of the annealing")
    add("--no-anneal", dest="anneal", action="store_false", help="λ = 0: ψ from the start")
    add("--classes", type=int, nargs="+", help="keep only these labels (e.g. 0 1 2 3 4 5)")
    add("--max-train-samples", dest="max_train_samples", type=int)
    add("--max-test-samples", dest="max_test_samples", type=int)
    add("--device", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:N, mps")
    add("--seed", type=int)
    parser.add_argument("--out", required=True, help="the run folder to write")
    parser.add_argument(
        "--resume", action="store_true", default=False, help="continue the run in --out"
    )
    parser.add_argument(
        "--json", action="store_true", default=False, help="print a JSON summary last"
    )
    parser.add_argument(
        "--no-progress", action="store_true", default=False, help="hide the progress bar"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: all cores)"
    )
    return parser


def _loss_choices_text() -> str:
    """The loss names of the registry, each with its aliases: "a-softmax (sphereface, …), …"."""
    names = []
    for name in LOSS_NAMES:
        aliases = [alias for alias, target in LOSS_ALIASES.items() if target == name]
        names.append(f"{name} ({', '.join(aliases)})" if aliases else name)
    return ", ".join(names)


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    resume, as_json, no_progress = args.pop("resume"), args.pop("json"), args.pop("no_progress")
    threads = args.pop("threads")
    if threads is not None:
        if threads < 1:
            print(f"sphereviz train: error: --threads must be >= 1, got {threads}", file=sys.stderr)
            return 2
        torch.set_num_threads(threads)
    out = Path(args["out"])
    try:
        if resume and not out.is_dir():
            raise ValueError(
                f"--resume: {out} does not exist (or is not a folder), so there is no run to "
                "continue; check the path, or train a new run without --resume"
            )
        if resume and (out / CONFIG_NAME).exists():
            base = read_json(out / CONFIG_NAME)
            args.pop("preset", None)
        else:
            default_preset = "faces" if args.get("dataset") == "faces" else "mnist-full"
            base = PRESETS[args.pop("preset", default_preset)]
        if "schedule" in args:
            base = {**base, **SCHEDULES[args.pop("schedule")]}
        if "lambda_gamma" in args and "lambda_floor_at" not in args:
            args["lambda_floor_at"] = None  # an absolute γ replaces the relative floor
        config = TrainConfig.from_dict({**base, **args}, source="the options")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ScheduleWarning)  # printed below, and in --json
            run = train(config, progress=False if no_progress else None, resume=resume)
    except TrainingDivergedError as error:
        print(f"sphereviz train: diverged: {error}", file=sys.stderr)
        return 1
    except (TypeError, ValueError, OSError) as error:
        return report_error("train", error, status=1 if isinstance(error, OSError) else 2)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    final = run.final_metrics
    seconds = sum(row["seconds"] for row in run.metrics)
    print(
        f"{config.loss} on {config.dataset}, {config.dim}-D: test accuracy "
        f"{final.get('test_accuracy', float('nan')):.4f} after {final.get('epoch', 0)} epochs, "
        f"{seconds:.1f} s on {final.get('device', '?')}; run in {out}"
    )
    batch_size = final.get("batch_size", config.batch_size)
    if batch_size != config.batch_size:
        print(
            f"sphereviz train: note: the training set is too small for "
            f"{config.min_batches_per_epoch} batches of {config.batch_size} per epoch, so it "
            f"trained with batches of {batch_size} at lr {config.lr_for_batch(batch_size):.4g} "
            "(linear scaling)",
            file=sys.stderr,
        )
    for message in run.warnings:
        print(f"sphereviz train: warning: {message}", file=sys.stderr)
    if as_json:
        print_json_summary(
            {
                "test_accuracy": final.get("test_accuracy"),
                "epochs": final.get("epoch", 0),
                "seconds": seconds,
                "device": final.get("device"),
                "final_lambda": final.get("lambda"),
                "total_steps": final.get("total_steps"),
                "batch_size": final.get("batch_size", config.batch_size),
                "warnings": list(run.warnings),
                "out": str(out),
            }
        )
    return 0
