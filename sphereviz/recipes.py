"""The recipes of the experiments, as data: which runs the demo and the figures need.

An experiment is a list of :class:`RunSpec`: the demo's MNIST comparison
(:func:`mnist_run_specs`, 5 losses × (3-D, 2-D) × seeds, the ``mnist-demo`` preset of
:data:`sphereviz.config.PRESETS`) and the face runs of SphereFace's Fig. 5
(:func:`faces_run_specs`), with the settings they are built from. Pure data and
:class:`~sphereviz.config.TrainConfig`: no torch at import, no trainer, so the gallery and the
figure captions can name the recipes; :mod:`sphereviz.sweep` trains them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sphereviz.config import MIN_STEPS, TrainConfig
from sphereviz.model_names import canonical_model_name

__all__ = [
    "DEFAULT_RUNS",
    "FACES_RECIPE",
    "MNIST_DIMS",
    "MNIST_LOSSES",
    "QUICK_FACES_OVERRIDES",
    "QUICK_MNIST_OVERRIDES",
    "QUICK_NOTEBOOK_MNIST_OVERRIDES",
    "QUICK_SEEDS",
    "QUICK_SFNET_WIDTH",
    "SEEDS",
    "RunSpec",
    "describe_recipe",
    "faces_run_specs",
    "mnist_run_specs",
    "quick_faces_overrides",
]

DEFAULT_RUNS = Path("build") / "runs"
"""Where trained runs are kept and looked for (``--runs``)."""

#: The demo's comparison: (loss, m, short label). m = 1 of A-Softmax is modified softmax.
MNIST_LOSSES: tuple[tuple[str, int | None, str], ...] = (
    ("softmax", None, "softmax"),
    ("modified-softmax", None, "modified softmax (m=1)"),
    ("a-softmax", 2, "A-Softmax m=2"),
    ("a-softmax", 3, "A-Softmax m=3"),
    ("a-softmax", 4, "A-Softmax m=4"),
)
MNIST_DIMS = (3, 2)
#: Seeds of every configuration: numbers are reported as mean ± std over them, and the panel
#: figures draw the first (a representative run, not the best one).
SEEDS = (0, 1, 2)
QUICK_SEEDS = (0, 1)
"""``--quick`` (tests): two seeds, enough for a standard deviation."""
#: ``--quick``: a few seconds per run, for tests and a first look (accuracy well above chance,
#: not the converged geometry).
QUICK_MNIST_OVERRIDES: dict = {
    "epochs": 2,
    "max_train_samples": 512,
    "max_test_samples": 300,
    "width": 8,
    "batch_size": 16,  # 64 steps: the margin-biting floor is reached after 32 of them
}
#: Notebook 03 and its solutions in quick mode, on the ``mnist-demo`` preset (batch 32): 3
#: epochs on 3,200 digits, the trainer's 300 optimiser steps, with the MnistNet at width 8
#: (half the cost of a run at the preset's 16). Measured by ``benchmarks/measure_quick_mnist.py``
#: (seeds 0–2): the mean angle to the own weight falls from m = 1 to m = 4 by more than the
#: seeds' spread at width 8, and by more than it at width 16 only over three seeds, not two.
QUICK_NOTEBOOK_MNIST_OVERRIDES: dict = {
    "epochs": 3,
    "max_train_samples": 3200,
    "max_test_samples": 400,
    "width": 8,
}
#: SphereFace's Fig. 5 on a CPU: SFNet-4 with 3-D features on the six largest LFW identities
#: (1,217 aligned 112×96 crops; 80 % train, 20 % test), Adam, random flips, batch 32 (310
#: optimiser steps in 10 epochs), the margin-biting λ schedule of every recipe.
FACES_RECIPE: dict = {
    "dataset": "faces",
    "model": "sfnet4",
    "dim": 3,
    "shift": 0,
    "flip": True,
    "test_fraction": 0.2,
    "epochs": 10,
    "batch_size": 32,
    "optimizer": "adam",
    "lr": 1e-3,
}
QUICK_SFNET_WIDTH = 16
"""The SFNet of the notebooks' quick modes and ``--quick``: 16/32/64/128 channels instead of the
paper's 64/128/256/512, a tenth of the cost of a training step on one CPU core (26 ms against
263 ms for batches of 8 with 3-D features; ``benchmarks/measure_sfnet_width.py``), so a quick run
takes the trainer's 300 optimiser steps in seconds."""
QUICK_FACES_OVERRIDES: dict = {"epochs": 2, "sfnet_width": QUICK_SFNET_WIDTH}
QUICK_FACES_BATCH = 8
"""The batch of the face notebooks' quick mode: small, so that few faces still give many steps."""


def quick_faces_overrides(num_faces: int, test_fraction: float) -> dict:
    """The face notebooks' quick mode on ``num_faces`` aligned faces: batches of
    :data:`QUICK_FACES_BATCH`, the narrower SFNet of :data:`QUICK_SFNET_WIDTH`, and the epochs
    that give the trainer's ``MIN_STEPS`` optimiser steps on the training share,

        epochs = ⌈MIN_STEPS / max(1, ⌊⌊N·(1 − f)⌋ / b⌋)⌉,  f = ``test_fraction``, b the batch.
    """
    batches = max(1, int(num_faces * (1 - test_fraction)) // QUICK_FACES_BATCH)
    return {
        "batch_size": QUICK_FACES_BATCH,
        "epochs": math.ceil(MIN_STEPS / batches),
        "sfnet_width": QUICK_SFNET_WIDTH,
    }


@dataclass(frozen=True)
class RunSpec:
    """A run an experiment needs: its folder name, a short label, m and its TrainConfig."""

    name: str
    label: str
    loss: str
    m: int | None
    config: TrainConfig

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def configuration(self) -> tuple:
        """What the run compares (loss, m, dimension): runs that differ only by seed share it."""
        return (self.loss, self.m, self.dim)


def mnist_run_specs(
    quick: bool = False, seeds: Sequence[int] = SEEDS, **overrides
) -> list[RunSpec]:
    """The demo's MNIST runs: 5 losses × (3-D, 2-D) × ``seeds``, the ``mnist-demo`` preset.

    ``quick`` applies :data:`QUICK_MNIST_OVERRIDES` (run names end in ``-quick``); further
    keyword arguments override TrainConfig fields of every run.
    """
    settings = {**(QUICK_MNIST_OVERRIDES if quick else {}), **overrides}
    suffix = "-quick" if quick else ""
    specs = []
    for dim in MNIST_DIMS:
        for loss, m, label in MNIST_LOSSES:
            for seed in seeds:
                config = TrainConfig.preset(
                    "mnist-demo", loss=loss, m=m, dim=dim, **{"seed": seed, **settings}
                )
                margin = f"-m{m}" if m is not None else ""
                name = f"mnist-{loss}{margin}-{dim}d-s{config.seed}{suffix}"
                specs.append(RunSpec(name, label, loss, m, config))
    return specs


def faces_run_specs(
    faces_cache: str | Path, quick: bool = False, seeds: Sequence[int] = SEEDS, **overrides
) -> list[RunSpec]:
    """The face runs of Fig. 5: SFNet-4, 3-D features, m = 1 (modified softmax) … 4, × seeds."""
    settings = {
        **FACES_RECIPE,
        **(QUICK_FACES_OVERRIDES if quick else {}),
        "faces_cache": str(faces_cache),
        **overrides,
    }
    suffix = "-quick" if quick else ""
    specs = []
    for m in (1, 2, 3, 4):
        loss, margin = ("modified-softmax", None) if m == 1 else ("a-softmax", m)
        for seed in seeds:
            config = TrainConfig(**{"seed": seed, **settings, "loss": loss, "m": margin})
            name = f"lfw-top6-m{m}-s{config.seed}{suffix}"
            specs.append(RunSpec(name, f"m={m}", loss, m, config))
    return specs


def describe_recipe(config: TrainConfig) -> str:
    """A recipe in the words of a figure caption: network, epochs, batch, optimiser, data and
    the λ schedule."""
    samples = "all" if config.max_train_samples is None else f"first {config.max_train_samples}"
    return (
        f"{config.model} (width {config.width}), {config.epochs} epochs, batch "
        f"{config.batch_size}, {config.optimizer} lr {config.lr:g}, {samples} training images"
        if canonical_model_name(config.model) == "mnistnet"
        else f"{config.model}, {config.epochs} epochs, batch {config.batch_size}, "
        f"{config.optimizer} lr {config.lr:g}"
    ) + f"; λ schedule of A-Softmax: {config.describe_schedule()}"
