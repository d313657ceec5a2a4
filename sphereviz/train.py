"""Train a network with a loss of the family: one readable loop, and ``sphereviz train``.

Read top to bottom: the configuration (one flat dataclass with named presets), the pieces the
loop needs (device, data, model + loss, optimizer, augmentation), the loop itself in
:func:`train`, then the command line. A run is written as a folder (see :mod:`sphereviz.runs`).

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
import dataclasses
import gc
import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from sphereviz.devices import require_device
from sphereviz.errors import report_error
from sphereviz.evaluate import accuracy, extract_features
from sphereviz.fileio import check_writable_folder, disk_full_as_error, print_json_summary
from sphereviz.locks import FolderLock
from sphereviz.losses import (
    L_SOFTMAX_SCHEDULE,
    SPHEREFACE_SCHEDULE,
    canonical_loss_name,
    make_loss,
)
from sphereviz.margins import LambdaSchedule
from sphereviz.models import MODEL_NAMES, build_model
from sphereviz.runs import (
    CHECKPOINT_NAME,
    CONFIG_NAME,
    EMBEDDINGS_NAME,
    METRICS_NAME,
    Run,
    load_checkpoint,
    read_json,
    save_checkpoint,
    write_config,
    write_embeddings,
    write_metrics,
)

__all__ = [
    "DATASETS",
    "PRESETS",
    "SCHEDULES",
    "ScheduleWarning",
    "TrainConfig",
    "TrainingDivergedError",
    "build_model_and_loss",
    "load_run",
    "main",
    "random_shift",
    "resolve_device",
    "train",
]

DATASETS = ("mnist", "fashion-mnist", "faces")
OPTIMIZERS = ("sgd", "adam")
ANNEALED_LOSSES = {"a-softmax": SPHEREFACE_SCHEDULE, "l-softmax": L_SOFTMAX_SCHEDULE}
SPHEREFACE2_OPTIONS = ("alpha", "t", "loss_weight")
"""SphereFace2's own options: config fields (None: the loss's default) passed to the loss."""


# ---------------------------------------------------------------------------------------------
# Configuration


@dataclass
class TrainConfig:
    """Everything that defines a run. The defaults are the ``mnist-full`` recipe.

    Data: ``dataset`` "mnist" (``data_root=None``: the embedded 5,000 digits, 4,000 train /
    1,000 test; a folder: full MNIST), "fashion-mnist" or "faces" (a ``faces_cache`` from
    ``sphereviz prepare-faces``, split into train/test by ``test_fraction``, stratified and
    seeded). ``max_train_samples`` / ``max_test_samples`` keep the first N images;
    ``classes`` keeps only those labels of the data set, renumbered 0…k−1 in the order given
    (e.g. digits 0–5, holding 6–9 out for open-set verification).
    Augmentation: random translation by up to ±``shift`` pixels, random horizontal ``flip``.

    Model and loss: ``model`` "mnistnet" (``width`` channels) or "sfnet4" … "sfnet64";
    ``dim`` the feature dimension; ``loss`` a name of :data:`sphereviz.losses.LOSS_NAMES`;
    ``m`` its margin (integer for A-Softmax/L-Softmax, stored as an int when it is one; real
    ≥ 1 for SphereFace-R; None: the loss's default), ``scale`` s (NormFace/CosFace/ArcFace/
    SphereFace-R, r for SphereFace2); ``alpha``, ``t``, ``loss_weight`` are SphereFace2's own
    (None: 0.7, 3, 50).

    Annealing (A-/L-Softmax): the target trained is (λ cos θ + ψ(θ))/(1 + λ) with
    λ = max(λ_min, base·(1 + γ·it)^(−power)). With ``lambda_floor_at`` = f, γ is derived from
    the run's length so that λ reaches ``lambda_min`` after a fraction f of all optimiser steps
    (``LambdaSchedule.reaching_floor``): every data size anneals alike. The default (the
    "margin-biting" schedule) reaches λ_min = 0.1 at half the run, where m = 4 trains as
    m ≈ 3.8; the official constants (γ = 0.12, λ_min = 5, floor at iteration 1659 whatever the
    run's length) train m = 4 as m ≈ 1.6 (``sphereviz margin``) and are the ``official``
    schedule. λ fields left None take the loss's official value; ``anneal=False`` trains ψ
    alone (λ = 0). The λ fields are ignored by losses without annealing.

    Optimisation: ``optimizer`` "sgd" (momentum, weight decay) or "adam"; the learning rate is
    multiplied by ``lr_decay`` at each of ``milestones``, given as fractions of all steps
    (official SphereFace: 16k and 24k of 28k iterations = 0.57, 0.86).
    """

    dataset: str = "mnist"
    data_root: str | None = None
    faces_cache: str | None = None
    test_fraction: float = 0.1
    max_train_samples: int | None = None
    max_test_samples: int | None = None
    classes: tuple[int, ...] | None = None
    shift: int = 2
    flip: bool = False
    model: str = "mnistnet"
    width: int = 16
    dim: int = 3
    loss: str = "a-softmax"
    m: int | float | None = None
    scale: float | None = None
    alpha: float | None = None
    t: float | None = None
    loss_weight: float | None = None
    anneal: bool = True
    lambda_base: float | None = None
    lambda_gamma: float | None = None
    lambda_power: float | None = None
    lambda_min: float | None = 0.1
    lambda_floor_at: float | None = 0.5
    epochs: int = 20
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 3e-3
    momentum: float = 0.9
    weight_decay: float = 2e-3
    milestones: tuple[float, ...] = (0.6, 0.85)
    lr_decay: float = 0.1
    seed: int = 0
    device: str = "auto"
    out: str | None = None

    def __post_init__(self) -> None:
        self.milestones = tuple(float(f) for f in self.milestones)
        if self.classes is not None:
            self.classes = tuple(self.classes)
        self.dataset = self.dataset.lower()
        self.optimizer = self.optimizer.lower()
        self.loss = canonical_loss_name(self.loss)
        if isinstance(self.m, float) and self.m.is_integer():
            self.m = int(self.m)  # --m 4 and m=4 are one recipe
        _validate(self)

    @classmethod
    def preset(cls, name: str, **overrides) -> TrainConfig:
        """A named recipe (see :data:`PRESETS`), with any field overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["milestones"] = list(self.milestones)
        if self.classes is not None:
            data["classes"] = list(self.classes)
        return data

    def recipe(self) -> dict:
        """The config as a dict without ``out`` and ``device``, which do not change the run.

        Two configs that train the same run (on any device, into any folder) have equal
        recipes. SphereFace2's options are left out while they are None, so the recipes (and
        run folders) of the runs made before those fields existed are unchanged.
        """
        return {
            k: v
            for k, v in self.to_dict().items()
            if k not in ("out", "device") and not (k in SPHEREFACE2_OPTIONS and v is None)
        }

    def recipe_hash(self) -> str:
        """8 hex digits of SHA-256 over ``recipe()`` as JSON with sorted keys."""
        return hashlib.sha256(json.dumps(self.recipe(), sort_keys=True).encode()).hexdigest()[:8]

    def in_run_folder(self, runs_dir: str | os.PathLike, name: str) -> TrainConfig:
        """This config writing into ``runs_dir/<name>-<recipe_hash>``: one folder per recipe.

        With ``train(config, resume=True)`` a rerun reuses (or finishes) the run of the same
        recipe, and a changed parameter trains a new run beside it instead of failing.
        """
        return dataclasses.replace(self, out=str(Path(runs_dir) / f"{name}-{self.recipe_hash()}"))

    @classmethod
    def from_dict(cls, data: dict, source: str | os.PathLike = "config") -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown TrainConfig fields {unknown}")
        if "lambda_gamma" in data and "lambda_floor_at" not in data:
            data = {**data, "lambda_floor_at": None}  # a run from before lambda_floor_at
        try:
            return cls(**data)
        except (TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"{source}: invalid training config ({error})") from error

    def lambda_schedule(self, total_steps: int | None = None) -> LambdaSchedule | None:
        """The λ schedule that A-Softmax / L-Softmax get (None: pure ψ, or no annealing).

        ``total_steps``, the run's number of optimiser steps, fixes γ when ``lambda_floor_at``
        is set; without it (rebuilding a model to evaluate it) the floor is put at step 1.
        """
        if self.loss not in ANNEALED_LOSSES or not self.anneal:
            return None
        official = ANNEALED_LOSSES[self.loss]
        overrides = {
            name: value
            for name, value in (
                ("base", self.lambda_base),
                ("gamma", self.lambda_gamma),
                ("power", self.lambda_power),
                ("lambda_min", self.lambda_min),
            )
            if value is not None
        }
        schedule = dataclasses.replace(official, **overrides)
        if self.lambda_floor_at is None:
            return schedule
        floor_step = max(1.0, self.lambda_floor_at * (total_steps or 1))
        return LambdaSchedule.reaching_floor(
            floor_step, schedule.base, schedule.power, schedule.lambda_min
        )

    def describe_schedule(self) -> str:
        """The λ schedule in words, for captions and notebooks."""
        official = ANNEALED_LOSSES.get(self.loss, ANNEALED_LOSSES["a-softmax"])
        base = self.lambda_base if self.lambda_base is not None else official.base
        floor = self.lambda_min if self.lambda_min is not None else official.lambda_min
        if not self.anneal:
            return "none (λ = 0: the pure ψ from the first step)"
        name = next(
            (name for name, fields in SCHEDULES.items()
             if all(getattr(self, key) == value for key, value in fields.items())),
            "custom",
        )  # fmt: skip
        if self.lambda_floor_at is not None:
            when = f"at {100 * self.lambda_floor_at:g} % of the run's steps"
        else:
            absolute = dataclasses.replace(self, loss="a-softmax", m=4).lambda_schedule()
            when = f"at iteration {absolute.floor_iteration():.0f}"
        return f"{name}, λ from {base:g} down to its floor {floor:g} {when}"

    def schedule_warnings(self, total_steps: int) -> list[str]:
        """What makes this recipe's margin not what it says, for a run of ``total_steps``.

        A run that ends with λ above 1.5 × its floor never trained the margin it names (m = 4
        at λ = 122 is modified softmax); a run of fewer than :data:`MIN_STEPS` optimiser steps
        is too short for the annealing, the learning-rate milestones or the margin to act.
        """
        messages = []
        schedule = self.lambda_schedule(total_steps)
        if schedule is not None:
            final = schedule.value(total_steps)
            if final > 1.5 * schedule.lambda_min:
                messages.append(
                    f"λ ends at {final:.3g}, above 1.5 × its floor {schedule.lambda_min:g}: "
                    f"this m = {self.m if self.m is not None else 4} trains as effective m "
                    f"{_effective_m(self, final):.2f}; set lambda_floor_at (--lambda-floor-at "
                    "0.5) or train longer"
                )
        if total_steps < MIN_STEPS:
            messages.append(
                f"only {total_steps} optimiser steps in all (fewer than {MIN_STEPS}): raise "
                "--epochs or lower --batch-size"
            )
        return messages


MIN_STEPS = 300
"""Runs with fewer optimiser steps in all get a warning (``TrainConfig.schedule_warnings``)."""

#: λ schedules by name: ``margin-biting`` (the default: λ reaches 0.1 at half the run, from
#: base 1000, power 1) and ``official`` (the official SphereFace constants base 1000, γ 0.12,
#: power 1, λ_min 5, whatever the run's length).
SCHEDULES: dict[str, dict] = {
    "margin-biting": {
        "lambda_base": None,
        "lambda_gamma": None,
        "lambda_power": None,
        "lambda_min": 0.1,
        "lambda_floor_at": 0.5,
    },
    "official": {
        "lambda_base": 1000.0,
        "lambda_gamma": 0.12,
        "lambda_power": 1.0,
        "lambda_min": 5.0,
        "lambda_floor_at": None,
    },
}

#: Named recipes. ``mnist-full`` (the defaults) reaches ≥ 97.5 % test accuracy with A-Softmax
#: m = 4 in 3-D on the embedded MNIST subset with the margin-biting schedule; ``official`` is
#: the same with the official λ constants; ``mnist-demo`` is the shorter run of the classroom
#: demo; ``faces`` is the official SphereFace solver (SGD 0.1, momentum 0.9, weight decay
#: 5e-4, batch 256, ÷10 at 57 % and 86 %, flip) on a face cache with SFNet-20, its λ floor at
#: a fixed fraction of the run.
PRESETS: dict[str, dict] = {
    "mnist-full": {},
    "official": dict(SCHEDULES["official"]),
    "mnist-demo": {"epochs": 10},
    "faces": {
        "dataset": "faces",
        "model": "sfnet20",
        "dim": 512,
        "shift": 0,
        "flip": True,
        "lambda_floor_at": 0.2,
        "lambda_min": 5.0,
        "epochs": 30,
        "batch_size": 256,
        "optimizer": "sgd",
        "lr": 0.1,
        "weight_decay": 5e-4,
        "milestones": (16 / 28, 24 / 28),
    },
}


def _effective_m(config: TrainConfig, annealing_lambda: float) -> float:
    from sphereviz.geometry import effective_m

    return effective_m(config.m if config.m is not None else 4, annealing_lambda)


def _validate(config: TrainConfig) -> None:
    def positive_int(name: str, minimum: int = 1) -> None:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")

    if config.dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {config.dataset!r}")
    if config.dataset == "faces" and not config.faces_cache:
        raise ValueError(
            "dataset 'faces' needs faces_cache (--faces-cache DIR), a folder made by "
            "`sphereviz prepare-faces`"
        )
    for name in ("epochs", "batch_size", "dim", "width"):
        positive_int(name, 2 if name == "dim" else 1)
    positive_int("shift", 0)
    positive_int("seed", 0)
    for name in ("max_train_samples", "max_test_samples"):
        if getattr(config, name) is not None:
            positive_int(name)
    floor_at = config.lambda_floor_at
    if floor_at is not None:
        if not (isinstance(floor_at, int | float) and 0 < floor_at <= 1):
            raise ValueError(
                "lambda_floor_at is the fraction of the run at which λ reaches its floor, in "
                f"(0, 1], got {floor_at!r}"
            )
        if config.lambda_gamma is not None:
            raise ValueError(
                "give either lambda_gamma (an absolute decay rate) or lambda_floor_at (λ "
                "reaches its floor at that fraction of the run), not both; set one to None"
            )
        if config.lambda_min is not None and config.lambda_min <= 0:
            raise ValueError(
                f"lambda_floor_at needs lambda_min > 0 (the decay never reaches 0), got "
                f"{config.lambda_min!r}; use a small floor such as 0.05, or anneal=False"
            )
    if config.classes is not None:
        classes = config.classes
        if (
            len(classes) < 2
            or len(set(classes)) != len(classes)
            or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in classes)
        ):
            raise ValueError(
                f"classes must be at least 2 distinct labels >= 0 (e.g. [0, 1, 2, 3, 4, 5]), got "
                f"{list(classes)!r}"
            )
    if not 0 < config.test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {config.test_fraction!r}")
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {config.optimizer!r}")
    for name in ("lr", "lr_decay"):
        if not (isinstance(getattr(config, name), int | float) and getattr(config, name) > 0):
            raise ValueError(f"{name} must be a number > 0, got {getattr(config, name)!r}")
    if not (0 <= config.momentum < 1 and config.weight_decay >= 0):
        raise ValueError(
            f"momentum must be in [0, 1) and weight_decay >= 0, got {config.momentum!r} and "
            f"{config.weight_decay!r}"
        )
    if any(not 0 < f < 1 for f in config.milestones) or list(config.milestones) != sorted(
        config.milestones
    ):
        raise ValueError(
            "milestones are increasing fractions of the training steps in (0, 1), e.g. "
            f"(0.6, 0.85), got {config.milestones}"
        )
    if config.model.lower().replace("-", "") not in MODEL_NAMES:
        raise ValueError(f"model must be one of {', '.join(MODEL_NAMES)}, got {config.model!r}")
    _check_dataset_fits_model(config)
    if config.device != "auto":
        try:
            torch.device(config.device)
        except RuntimeError as error:
            raise ValueError(
                f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {config.device!r}"
            ) from error
    if config.out is not None and not str(config.out).strip():
        raise ValueError(
            "out is an empty path, which would write the run into the current folder; give a "
            "run folder (e.g. build/runs/my-run) or None to keep the run in memory only"
        )
    # Builds the loss once on the CPU: make_loss validates the name, m and scale.
    make_loss(config.loss, 2, config.dim, **_loss_options(config))


def _check_dataset_fits_model(config: TrainConfig) -> None:
    """MnistNet reads 1×28×28 digits, SFNet 3×112×96 faces: refuse the other pairings here,
    when the config is built, rather than as a shape error deep inside torch."""
    is_sfnet = config.model.lower().replace("-", "").startswith("sfnet")
    if config.dataset == "faces" and not is_sfnet:
        raise ValueError(
            f"model {config.model!r} reads 28×28 grey digits, but dataset 'faces' gives "
            "112×96 colour crops; use an SFNet (--model sfnet20, or sfnet4 for a quick run)"
        )
    if config.dataset != "faces" and is_sfnet:
        raise ValueError(
            f"model {config.model!r} reads 112×96 colour faces, but dataset {config.dataset!r} "
            "gives 28×28 grey digits; use --model mnistnet"
        )


def _loss_options(config: TrainConfig, total_steps: int | None = None) -> dict:
    options: dict = {}
    if config.m is not None:
        options["margin"] = config.m
    if config.scale is not None:
        options["scale"] = config.scale
    for name in SPHEREFACE2_OPTIONS:
        if getattr(config, name) is not None:
            options[name] = getattr(config, name)
    if config.loss in ANNEALED_LOSSES:
        options["lambda_schedule"] = config.lambda_schedule(total_steps)
    return options


# ---------------------------------------------------------------------------------------------
# The pieces the loop needs


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class ScheduleWarning(UserWarning):
    """The recipe's λ schedule or length keeps its margin from acting (see the message)."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA if available, then Apple MPS, then the CPU; else ``name``, if this
    machine has it (a ValueError otherwise: see :func:`sphereviz.devices.require_device`)."""
    return require_device(name)


def build_model_and_loss(
    config: TrainConfig, num_classes: int, total_steps: int | None = None
) -> tuple[nn.Module, nn.Module]:
    """The feature network and the loss (which owns the class weights) of ``config``;
    ``total_steps`` fixes a λ schedule given as a fraction of the run."""
    options = {"width": config.width} if config.model.lower() == "mnistnet" else {}
    model = build_model(config.model, config.dim, **options)
    loss = make_loss(config.loss, num_classes, config.dim, **_loss_options(config, total_steps))
    return model, loss


class Classifier(nn.Module):
    """Features and loss in one module, so DistributedDataParallel also syncs W's gradient."""

    def __init__(self, model: nn.Module, loss: nn.Module):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, images: torch.Tensor, labels: torch.Tensor):
        features = self.model(images)
        return self.loss(features, labels), features


def load_datasets(config: TrainConfig):
    """``(train, test)`` ArrayDatasets of uint8 images for ``config.dataset``."""
    from sphereviz.data import load_face_cache, load_fashion_mnist, load_mnist
    from sphereviz.data.arrays import ArrayDataset

    if config.dataset == "mnist":
        train_set, test_set = load_mnist(config.data_root)
    elif config.dataset == "fashion-mnist":
        train_set, test_set = load_fashion_mnist(config.data_root)
    else:
        train_set, test_set = split_faces(load_face_cache(config.faces_cache), config)

    def first(dataset: ArrayDataset, count: int | None) -> ArrayDataset:
        if count is None or count >= len(dataset):
            return dataset
        images, labels = dataset.images[:count], dataset.labels[:count]
        return ArrayDataset(images, labels, dataset.class_names, f"{dataset.source}[:{count}]")

    if config.classes is not None:
        train_set, test_set = (select_classes(d, config.classes) for d in (train_set, test_set))
    return first(train_set, config.max_train_samples), first(test_set, config.max_test_samples)


def select_classes(dataset, classes: tuple[int, ...]):
    """The images of ``classes`` only, relabelled 0…k−1 in the order of ``classes``."""
    from sphereviz.data.arrays import ArrayDataset

    missing = [c for c in classes if c >= dataset.num_classes]
    if missing:
        raise ValueError(
            f"classes {missing} do not exist in {dataset.source} (labels 0…"
            f"{dataset.num_classes - 1})"
        )
    relabel = np.full(dataset.num_classes, -1, dtype=np.int64)
    relabel[list(classes)] = np.arange(len(classes))
    keep = np.flatnonzero(relabel[dataset.labels] >= 0)
    names = [dataset.class_names[c] for c in classes]
    return ArrayDataset(dataset.images[keep], relabel[dataset.labels[keep]], names,
                        f"{dataset.source}, classes {list(classes)}")  # fmt: skip


def split_faces(cache, config: TrainConfig):
    """Stratified, seeded train/test split of a face cache (closed-set accuracy)."""
    from sklearn.model_selection import train_test_split

    from sphereviz.data.arrays import ArrayDataset

    counts = cache.class_counts()
    if counts.min() < 2:
        raise ValueError(
            f"{cache.directory}: {int(np.sum(counts < 2))} identities have fewer than 2 images, "
            "so no stratified train/test split exists; rebuild the cache with "
            "`--min-images-per-identity 2` (or more)"
        )
    try:
        train_index, test_index = train_test_split(
            np.arange(len(cache)),
            test_size=config.test_fraction,
            stratify=cache.labels,
            random_state=config.seed,
        )
    except ValueError as error:
        raise ValueError(
            f"cannot split {len(cache)} faces of {cache.num_classes} identities with "
            f"test_fraction={config.test_fraction} ({error}); raise test_fraction"
        ) from error
    train_index, test_index = np.sort(train_index), np.sort(test_index)
    return (
        ArrayDataset(cache.images[train_index], cache.labels[train_index], cache.class_names,
                     f"{cache.source}, train split"),
        ArrayDataset(cache.images[test_index], cache.labels[test_index], cache.class_names,
                     f"{cache.source}, test split"),
    )  # fmt: skip


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


def make_optimizer(config: TrainConfig, parameters) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters, config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    return torch.optim.Adam(parameters, config.lr, weight_decay=config.weight_decay)


@dataclass
class Distributed:
    """This process's place in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int = 0
    world_size: int = 1
    initialised_here: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group when launched by torchrun with WORLD_SIZE > 1 (env:// init)."""
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed(device=device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    initialised_here = not dist.is_initialized()
    if initialised_here:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), initialised_here, device)


def _sum_over_processes(values: torch.Tensor, dist_info: Distributed) -> torch.Tensor:
    if dist_info.world_size > 1:
        import torch.distributed as dist

        dist.all_reduce(values)
    return values


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
        return _train(config, device, progress, on_epoch, resume)


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


def _train(
    config: TrainConfig,
    resolved_device: torch.device,
    progress: bool | None,
    on_epoch: Callable[[int, dict, dict], None] | None,
    resume: bool,
) -> Run:
    out = Path(config.out) if config.out is not None else None
    checkpoint = _checkpoint_to_resume(config, out) if resume else None
    if out is not None and not resume and (out / CHECKPOINT_NAME).exists():
        raise ValueError(
            f"{out} already holds a run; pass resume=True (--resume) to continue it, or choose "
            "another out folder"
        )
    dist_info = init_distributed(resolved_device)
    device, on_cuda = dist_info.device, dist_info.device.type == "cuda"
    if on_cuda:
        torch.backends.cudnn.benchmark = True

    from sphereviz.data.tensors import BatchIterator

    train_set, test_set = load_datasets(config)
    generator = torch.Generator().manual_seed(config.seed)
    # Every process draws the same global batch of batch_size images and keeps its share; a
    # last batch smaller than the number of processes would leave one of them empty.
    leftover = len(train_set) % config.batch_size
    batches = BatchIterator(
        train_set.images,
        train_set.labels,
        config.batch_size,
        shuffle=True,
        flip=config.flip,
        generator=generator,
        device=device,
        drop_last=0 < leftover < dist_info.world_size,
    )
    steps_per_epoch = len(batches)
    total_steps = steps_per_epoch * config.epochs
    schedule_warnings = config.schedule_warnings(total_steps)
    if dist_info.is_main and not resume:
        for message in schedule_warnings:  # stacklevel 3: the caller of train()
            warnings.warn(f"{config.loss}: {message}", ScheduleWarning, stacklevel=3)
    torch.manual_seed(config.seed)
    model, loss = build_model_and_loss(config, train_set.num_classes, total_steps)
    loss.check_label_range = False  # ArrayDataset checked every label; no host sync per step
    # channels-last convolutions: faster on CUDA and, measured here, on the CPU too
    classifier = Classifier(model, loss).to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(config, classifier.parameters())
    milestones = [round(f * total_steps) for f in config.milestones]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, config.lr_decay)

    start_epoch, metrics = 0, []
    if checkpoint is not None:
        classifier.model.load_state_dict(checkpoint["model"])
        classifier.loss.load_state_dict(checkpoint["loss"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        generator.set_state(checkpoint["rng"]["data"])
        if on_cuda and checkpoint["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(checkpoint["rng"]["cuda"], device)
        start_epoch, metrics = int(checkpoint["epoch"]), list(checkpoint["metrics"])
    if out is not None and dist_info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_config(out / CONFIG_NAME, config.to_dict())
    network = classifier
    if dist_info.world_size > 1:
        network = nn.parallel.DistributedDataParallel(
            classifier, device_ids=[device.index] if on_cuda else None
        )

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
        network.train()
        step_losses = torch.zeros(steps_per_epoch, device=device)
        totals = torch.zeros(3, device=device)  # loss·n, correct, n
        for step, (images, labels) in enumerate(
            training_batches(batches, config, dist_info.rank, dist_info.world_size, generator)
        ):
            batch_loss = training_step(
                network, classifier.loss, optimizer, scheduler, images, labels, totals, on_cuda
            )
            step_losses[step] = batch_loss
            if device.type == "cpu" or step % 50 == 49 or step == steps_per_epoch - 1:
                _check_finite(
                    _sum_over_processes(step_losses.clone(), dist_info), step + 1, epoch, out
                )
                bar.set_postfix(epoch=epoch, loss=f"{float(batch_loss):.3f}", refresh=False)
            bar.update()
        totals = _sum_over_processes(totals, dist_info)

        if dist_info.is_main:
            embeddings = evaluation_embeddings(classifier, test_set, device)
            with torch.no_grad():
                test_features = torch.from_numpy(embeddings["features"]).to(device)
                test_logits = classifier.loss.get_logits(test_features).cpu()
            metrics.append(
                {
                    "epoch": epoch,
                    "loss": float(totals[0] / totals[2]),
                    "train_accuracy": float(totals[1] / totals[2]),
                    "test_accuracy": accuracy(test_logits.numpy(), embeddings["labels"]),
                    "lambda": classifier.loss.current_lambda,
                    "lr": scheduler.get_last_lr()[0],
                    "total_steps": total_steps,
                    "seconds": time.perf_counter() - started,
                    "device": str(device),
                }
            )
            bar.set_postfix(epoch=epoch, test_accuracy=f"{metrics[-1]['test_accuracy']:.4f}")
            if out is not None:
                _write_epoch(
                    out, classifier, optimizer, scheduler, generator, metrics, embeddings,
                    total_steps, config,
                )  # fmt: skip
            if on_epoch is not None:
                on_epoch(epoch, dict(metrics[-1]), embeddings)
        if dist_info.world_size > 1:
            torch.distributed.barrier()
    bar.close()

    if dist_info.is_main and not embeddings:  # resumed a run that had already finished
        embeddings = evaluation_embeddings(classifier, test_set, device)
    if dist_info.initialised_here:
        # The DDP wrapper's reducer holds the process group: free it first, so the group (and
        # gloo's worker threads) is torn down here rather than during interpreter exit, where
        # that teardown can abort the process ("terminate called without an active exception").
        del network
        gc.collect()
        torch.distributed.destroy_process_group()
    classifier.eval()
    return Run(
        out,
        config,
        metrics,
        embeddings,
        warnings=tuple(schedule_warnings),
        _trained=(classifier.model, classifier.loss),
    )


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


def recipe_differences(first: dict, second: dict, first_name: str, second_name: str) -> list[str]:
    """``"name: <first_name> a, <second_name> b"`` for each recipe field that differs.

    Values are compared as JSON would store them (tuples as lists).
    """

    def plain(value):
        return json.loads(json.dumps(value))

    first, second = plain(first), plain(second)
    return [
        f"{name}: {first_name} {first.get(name)!r}, {second_name} {second.get(name)!r}"
        for name in sorted(set(first) | set(second))
        if first.get(name) != second.get(name)
    ]


def load_run(path: str | os.PathLike) -> Run:
    """Read a run folder (see :mod:`sphereviz.runs`)."""
    from sphereviz.runs import load_run as _load_run

    return _load_run(path)


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
        help="softmax, modified-softmax, a-softmax (sphereface), l-softmax, normface, cosface, "
        "arcface, sphereface-r, sphereface2",
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
    add("--epochs", type=int)
    add("--batch-size", dest="batch_size", type=int)
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
    except (ValueError, OSError) as error:
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
                "warnings": list(run.warnings),
                "out": str(out),
            }
        )
    return 0
