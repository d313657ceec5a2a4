"""What defines a training run: one flat dataclass, its presets and its checks.

:class:`TrainConfig` holds every field of a run (data, model, loss and margin, the λ annealing,
the optimiser); :data:`PRESETS` and :data:`SCHEDULES` name the recipes; ``_validate`` refuses a
wrong field when the config is built, with a message that says what to do. The model and loss
of a config are built by :mod:`sphereviz.build`.

``import sphereviz.config`` loads no torch: it imports the loss registry, the margins and the
model names. Building a config checks its loss options by constructing the loss once on the
CPU (``losses.make_loss``, imported then). The trainer (:mod:`sphereviz.train`), the run
folders (:mod:`sphereviz.runs`) and evaluation build on it, never the other way round.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from sphereviz.losses.registry import LOSS_SPECS, canonical_loss_name
from sphereviz.margins import LambdaSchedule
from sphereviz.model_names import canonical_model_name, is_sfnet
from sphereviz.validation import check_choice, check_int, check_real

__all__ = [
    "ANNEALED_LOSSES",
    "DATASETS",
    "MIN_STEPS",
    "OPTIMIZERS",
    "PRESETS",
    "SCHEDULES",
    "ScheduleWarning",
    "TrainConfig",
    "recipe_differences",
]

DATASETS = ("mnist", "fashion-mnist", "faces")
OPTIMIZERS = ("sgd", "adam")
ANNEALED_LOSSES = {name: spec.schedule for name, spec in LOSS_SPECS.items() if spec.anneals}
"""The losses that anneal λ, each with its official schedule (``LossSpec.schedule``)."""
SPHEREFACE2_OPTIONS = ("alpha", "t", "loss_weight")
#: Fields added after runs existed: left out of ``recipe()`` while None (their neutral value),
#: so the recipes, hashes and run folders of the runs made before them are unchanged.
LATER_FIELDS = (*SPHEREFACE2_OPTIONS, "min_batches_per_epoch", "sfnet_width")
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

    Model and loss: ``model`` "mnistnet" (``width`` channels) or "sfnet4" … "sfnet64"
    (``sfnet_width`` channels in the first stage, doubling at each; None: the paper's 64);
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
    sfnet_width: int | None = None
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
    min_batches_per_epoch: int | None = None
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
        if isinstance(self.dataset, str):  # anything else: _validate's TypeError
            self.dataset = self.dataset.lower()
        if isinstance(self.optimizer, str):
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
        recipes. The :data:`LATER_FIELDS` are left out while they are None, so the recipes (and
        run folders) of the runs made before those fields existed are unchanged.
        """
        return {
            k: v
            for k, v in self.to_dict().items()
            if k not in ("out", "device") and not (k in LATER_FIELDS and v is None)
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

    def fitted_batch(self, num_train: int) -> tuple[int, float]:
        """The batch size and learning rate this recipe trains ``num_train`` images with.

        With ``min_batches_per_epoch`` = k set, a training set too small for k batches of
        ``batch_size`` b gets the batch b' = max(1, min(b, ⌊N / k⌋)) and, by the linear
        scaling rule (Goyal et al. 2017), the learning rate lr' = lr · b' / b: a 400-face folder
        then takes as many optimiser steps per epoch as the schedule needs instead of 2, while
        CASIA-WebFace (N ≫ k·b) keeps the recipe's b and lr. Without k: (b, lr) unchanged.
        """
        batch = self.batch_size
        if self.min_batches_per_epoch is not None:
            batch = max(1, min(batch, num_train // self.min_batches_per_epoch))
        return batch, self.lr_for_batch(batch)

    def lr_for_batch(self, batch: int) -> float:
        """lr · b' / b: the learning rate of a batch of b' images by the linear scaling rule."""
        return self.lr * batch / self.batch_size

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
#: demo (10 epochs at batch 32: 1,250 optimiser steps, where batch 128 gave m = 4 in 3-D
#: 96.2 % over 3 seeds and batch 32 97.8 %); ``faces`` is the official SphereFace solver
#: (SGD 0.1, momentum 0.9, weight decay 5e-4, batch 256, ÷10 at 57 % and 86 %, flip) on a face
#: cache with SFNet-20, its λ floor at a fixed fraction of the run.
PRESETS: dict[str, dict] = {
    "mnist-full": {},
    "official": dict(SCHEDULES["official"]),
    "mnist-demo": {"epochs": 10, "batch_size": 32},
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
        "min_batches_per_epoch": 10,
        "optimizer": "sgd",
        "lr": 0.1,
        "weight_decay": 5e-4,
        "milestones": (16 / 28, 24 / 28),
    },
}


def recipe_differences(first: dict, second: dict, first_name: str, second_name: str) -> list[str]:
    """``"name: <first_name> a, <second_name> b"`` for each recipe field that differs.

    ``first`` and ``second`` are :meth:`TrainConfig.recipe` dicts (or a checkpoint's stored
    recipe), so what a recipe leaves out (``out``, ``device``) is never a difference. Values are
    compared as JSON would store them (tuples as lists).
    """

    def plain(value):
        return json.loads(json.dumps(value))

    first, second = plain(first), plain(second)
    return [
        f"{name}: {first_name} {first.get(name)!r}, {second_name} {second.get(name)!r}"
        for name in sorted(set(first) | set(second))
        if first.get(name) != second.get(name)
    ]


def _effective_m(config: TrainConfig, annealing_lambda: float) -> float:
    from sphereviz.geometry import effective_m

    return effective_m(config.m if config.m is not None else 4, annealing_lambda)


_DEVICE = re.compile(r"(cpu|cuda|mps|xpu|meta)(:\d+)?")
"""The device strings torch.device takes (type, optionally :index), checked without torch."""


def _validate(config: TrainConfig) -> None:
    def positive_int(name: str, minimum: int = 1) -> None:
        # stored back as a plain int, so that np.int64 reaches the recipe's JSON as a number
        setattr(config, name, check_int(name, getattr(config, name), min=minimum))

    check_choice("dataset", config.dataset, DATASETS)
    if config.dataset == "faces" and not config.faces_cache:
        raise ValueError(
            "dataset 'faces' needs faces_cache (--faces-cache DIR), a folder made by "
            "`sphereviz prepare-faces`"
        )
    if config.min_batches_per_epoch is not None:
        positive_int("min_batches_per_epoch")
    for name in ("epochs", "batch_size", "dim", "width"):
        positive_int(name, 2 if name == "dim" else 1)
    positive_int("shift", 0)
    positive_int("seed", 0)
    if config.sfnet_width is not None:
        positive_int("sfnet_width")
        if not is_sfnet(config.model):
            raise ValueError(
                f"sfnet_width sets an SFNet's channels, but model is {config.model!r}; use width "
                "for MnistNet, or leave sfnet_width None"
            )
    for name in ("max_train_samples", "max_test_samples"):
        if getattr(config, name) is not None:
            positive_int(name)
    floor_at = config.lambda_floor_at
    if floor_at is not None:
        check_real(
            "lambda_floor_at", floor_at, min=0, max=1, include_min=False,
            hint="it is the fraction of the run at which λ reaches its floor",
        )  # fmt: skip
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
    check_real(
        "test_fraction", config.test_fraction, min=0, max=1, include_min=False, include_max=False
    )
    check_choice("optimizer", config.optimizer, OPTIMIZERS)
    for name in ("lr", "lr_decay"):
        check_real(name, getattr(config, name), min=0, include_min=False)
    check_real("momentum", config.momentum, min=0, max=1, include_max=False)
    check_real("weight_decay", config.weight_decay, min=0)
    if any(not 0 < f < 1 for f in config.milestones) or list(config.milestones) != sorted(
        config.milestones
    ):
        raise ValueError(
            "milestones are increasing fractions of the training steps in (0, 1), e.g. "
            f"(0.6, 0.85), got {config.milestones}"
        )
    canonical_model_name(config.model)
    _check_dataset_fits_model(config)
    if config.device != "auto" and not _DEVICE.fullmatch(str(config.device)):
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {config.device!r}"
        )
    if config.out is not None and not str(config.out).strip():
        raise ValueError(
            "out is an empty path, which would write the run into the current folder; give a "
            "run folder (e.g. build/runs/my-run) or None to keep the run in memory only"
        )
    # Builds the loss once on the CPU: make_loss validates the name, m and scale.
    from sphereviz.losses import make_loss  # torch: loaded when a config is built, not imported

    make_loss(config.loss, 2, config.dim, **_loss_options(config))


def _check_dataset_fits_model(config: TrainConfig) -> None:
    """MnistNet reads 1×28×28 digits, SFNet 3×112×96 faces: refuse the other pairings here,
    when the config is built, rather than as a shape error deep inside torch."""
    sfnet = is_sfnet(config.model)
    if config.dataset == "faces" and not sfnet:
        raise ValueError(
            f"model {config.model!r} reads 28×28 grey digits, but dataset 'faces' gives "
            "112×96 colour crops; use an SFNet (--model sfnet20, or sfnet4 for a quick run)"
        )
    if config.dataset != "faces" and sfnet:
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


class ScheduleWarning(UserWarning):
    """The recipe's λ schedule or length keeps its margin from acting (see the message)."""
