"""A training run on disk: the folder that ``sphereviz train`` writes and plots read.

::

    <run>/config.json      the TrainConfig, as JSON
    <run>/metrics.jsonl    one JSON object per epoch (epoch, loss, train/test accuracy, λ, …)
    <run>/model.pt         the last checkpoint (model, loss, optimizer, LR schedule, RNG states)
    <run>/embeddings.npz   features, labels and class weights of the evaluation split
    <run>/classes.json     the data set's class names, indexed by label (runs trained before
                           it was written lack it: their ``Run.class_names`` is None)

While a run is written, ``<parent>/.<run>.lock`` beside the folder holds its writer's lock
(:mod:`sphereviz.locks`): a second ``train`` into the same folder refuses and names the holder.
The checkpoint stores the recipe it was trained with and a SHA-256 digest of its contents,
checked on load (torch does not check the zip CRCs: a flipped bit would load silently).

Every file is written atomically (a crash leaves the previous version). Nothing here executes
code from a file: checkpoints are read with ``torch.load(..., weights_only=True)`` (tensors,
numbers, strings, lists and dicts only), configs and metrics are JSON, arrays are ``.npz``
without pickles. A damaged or foreign file is a ``ValueError`` that names it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sphereviz.build import build_model_and_loss
from sphereviz.config import TrainConfig
from sphereviz.devices import require_device
from sphereviz.fileio import atomic_path, read_text_file, write_json_atomic
from sphereviz.recipes import RunSpec

__all__ = [
    "CHECKPOINT_FORMAT",
    "PreparedRun",
    "Run",
    "RunSpec",
    "as_run",
    "run_class_names",
    "content_digest",
    "find_run",
    "load_checkpoint",
    "load_run",
    "read_class_names",
    "run_state",
    "save_checkpoint",
    "target_folder",
    "write_class_names",
    "write_embeddings",
    "write_metrics",
]

CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.jsonl"
CHECKPOINT_NAME = "model.pt"
EMBEDDINGS_NAME = "embeddings.npz"
CLASSES_NAME = "classes.json"
CHECKPOINT_FORMAT = "sphereviz-checkpoint-v1"
CHECKPOINT_KEYS = (
    "format",
    "epoch",
    "num_classes",
    "model",
    "loss",
    "optimizer",
    "scheduler",
    "rng",
    "metrics",
)
EMBEDDING_KEYS = ("features", "labels", "class_weights")
DIGEST_KEY = "digest"
"""Checkpoint key of :func:`content_digest` over every other key (older checkpoints lack it)."""


@dataclass
class Run:
    """A finished (or interrupted) training run.

    Attributes:
        path: the run folder, or None for a run trained in memory (``TrainConfig.out=None``).
        config: the :class:`~sphereviz.config.TrainConfig` it was trained with.
        metrics: one dict per completed epoch, as in ``metrics.jsonl``.
        warnings: what keeps the recipe's margin from acting (``TrainConfig.schedule_warnings``).
        embeddings: ``features`` (N, d), ``labels`` (N,) and ``class_weights`` (C, d) of the
            evaluation split after the last epoch, as numpy arrays.
        class_names: the name of class k at index k, as the training set names them (digits
            "0" … "9", Fashion-MNIST items, face identities with underscores); None for a run
            written before runs stored them.
    """

    path: Path | None
    config: TrainConfig
    metrics: list[dict]
    embeddings: dict[str, np.ndarray]
    warnings: tuple[str, ...] = ()
    class_names: list[str] | None = None
    _trained: tuple[nn.Module, nn.Module] | None = field(default=None, repr=False)

    @property
    def final_metrics(self) -> dict:
        """The last epoch's metrics (empty before the first epoch)."""
        return self.metrics[-1] if self.metrics else {}

    def load_model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The feature network with the last checkpoint's weights, in eval mode."""
        return self.load_model_and_loss(device)[0]

    def load_loss(self, device: str | torch.device = "cpu") -> nn.Module:
        """The loss (it holds the class weights W) from the last checkpoint, in eval mode."""
        return self.load_model_and_loss(device)[1]

    def load_model_and_loss(
        self, device: str | torch.device = "cpu"
    ) -> tuple[nn.Module, nn.Module]:
        if self.path is None:
            if self._trained is None:
                raise ValueError("this in-memory run holds no trained model")
            model, loss = self._trained
            return model.to(device).eval(), loss.to(device).eval()
        checkpoint = load_checkpoint(self.path / CHECKPOINT_NAME, map_location=device)
        model, loss = build_model_and_loss(
            self.config, int(checkpoint["num_classes"]), checkpoint.get("total_steps")
        )
        _load_state(model, checkpoint["model"], self.path / CHECKPOINT_NAME, "model")
        _load_state(loss, checkpoint["loss"], self.path / CHECKPOINT_NAME, "loss")
        return model.to(device).eval(), loss.to(device).eval()


def load_run(path: str | os.PathLike) -> Run:
    """Read a run folder written by :func:`sphereviz.train.train`."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path} is not a run folder; train one with `sphereviz train --out`")
    config_path = path / CONFIG_NAME
    config = TrainConfig.from_dict(read_json(config_path), source=config_path)
    metrics = read_metrics(path / METRICS_NAME)
    total_steps = metrics[-1].get("total_steps") if metrics else None
    warnings = tuple(config.schedule_warnings(total_steps)) if total_steps else ()
    embeddings = read_embeddings(path)
    class_names = read_class_names(path)
    return Run(path, config, metrics, embeddings, warnings=warnings, class_names=class_names)


def read_json(path: Path) -> dict:
    """A JSON object from ``path``, or a ValueError naming the file."""
    if not path.exists() and not path.is_symlink():
        raise ValueError(f"{path} is missing; is {path.parent} a sphereviz run folder?")
    text = read_text_file(path, "run file")
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ValueError(f"{path}: not readable JSON ({error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_class_names(path: Path) -> list[str] | None:
    """The class names of ``classes.json`` in a run folder (None if the run predates it)."""
    file = path / CLASSES_NAME
    if not file.exists():
        return None
    names = read_json(file).get("class_names")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError(
            f'{file}: expected {{"class_names": [names…]}}, a list of strings; delete the file '
            "to load the run without class names"
        )
    return names


def write_class_names(path: Path, class_names: list[str]) -> None:
    """Write ``classes.json`` (the names of classes 0 … C−1) atomically."""
    write_json_atomic(path, {"class_names": [str(name) for name in class_names]})


def read_metrics(path: Path) -> list[dict]:
    """The per-epoch metrics of ``metrics.jsonl`` (empty when the file does not exist yet)."""
    if not path.exists():
        return []
    metrics = []
    for number, line in enumerate(read_text_file(path, "metrics file").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError as error:
                raise ValueError(f"{path}:{number}: not a JSON line ({error})") from error
            if not isinstance(row, dict):
                raise ValueError(
                    f"{path}:{number}: expected one JSON object per epoch, got "
                    f"{type(row).__name__}; the file was not written by sphereviz"
                )
            metrics.append(row)
    return metrics


def write_metrics(path: Path, metrics: list[dict]) -> None:
    """Rewrite ``metrics.jsonl`` with one line per epoch, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in metrics))


def read_embeddings(path: Path) -> dict[str, np.ndarray]:
    """``features``, ``labels`` and ``class_weights`` from ``embeddings.npz`` ({} if absent)."""
    file = path / EMBEDDINGS_NAME
    if not file.exists():
        return {}
    try:
        with np.load(file, allow_pickle=False) as arrays:
            embeddings = {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{file}: not a readable .npz file ({error})") from error
    missing = [key for key in EMBEDDING_KEYS if key not in embeddings]
    if missing:
        raise ValueError(f"{file}: missing arrays {missing}; expected {list(EMBEDDING_KEYS)}")
    return embeddings


def write_embeddings(path: Path, embeddings: dict[str, np.ndarray]) -> None:
    """Write ``embeddings.npz`` atomically (no pickled objects)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        np.savez(file, **{key: np.asarray(embeddings[key]) for key in EMBEDDING_KEYS})


def content_digest(value: Any) -> str:
    """SHA-256 over a checkpoint's contents, walked in a fixed order (hex digits).

    Dicts by sorted key, lists and tuples in order, tensors by dtype, shape and raw bytes,
    numbers, strings, booleans and None by their ``repr``. torch does not check the zip CRCs
    of a checkpoint when it loads one, so a flipped bit inside a tensor would load silently;
    this digest, stored in the checkpoint and recomputed on load, catches it.
    """
    digest = hashlib.sha256()

    def walk(item: Any) -> None:
        if isinstance(item, torch.Tensor):
            tensor = item.detach().cpu().contiguous()
            digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(item, dict):
            digest.update(f"D{len(item)}".encode())
            for key in sorted(item, key=repr):
                walk(key)
                walk(item[key])
        elif isinstance(item, list | tuple):
            digest.update(f"L{len(item)}".encode())
            for element in item:
                walk(element)
        else:
            digest.update(f"V{type(item).__name__}:{item!r};".encode())

    walk(value)
    return digest.hexdigest()


def save_checkpoint(path: Path, checkpoint: dict[str, Any]) -> None:
    """``torch.save`` with a content digest, to a temporary file beside ``path``, then rename.

    The bytes are made in memory and written with one ``write``, so a full disk is an
    ``OSError`` (ENOSPC) and the previous checkpoint stays in place.
    """
    payload = {"format": CHECKPOINT_FORMAT, **checkpoint}
    payload[DIGEST_KEY] = content_digest(payload)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        file.write(buffer.getbuffer())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint without executing code from it; ValueError if damaged or foreign."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} does not exist; the run has no checkpoint yet")
    map_location = require_device(map_location)  # an absent GPU is not a damaged file
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ValueError(
            f"{path}: not a readable sphereviz checkpoint (truncated, damaged or not written by "
            f"sphereviz: {first_line}); retrain, or resume from an intact copy"
        ) from error
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path}: a PyTorch file but not a {CHECKPOINT_FORMAT} checkpoint; "
            "point to a run folder written by `sphereviz train`"
        )
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {missing}; it is incomplete")
    stored = checkpoint.pop(DIGEST_KEY, None)
    if stored is not None and stored != content_digest(checkpoint):
        raise ValueError(
            f"{path}: damaged checkpoint (its contents no longer match the SHA-256 digest "
            "stored when it was written: a flipped bit or a partial copy); resume from an "
            "intact copy or retrain"
        )
    return checkpoint


def _load_state(module: nn.Module, state: dict, path: Path, what: str) -> None:
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path}: the {what} weights do not fit the run's config ({error}); "
            "was config.json edited after training?"
        ) from error


def write_config(path: Path, config_dict: dict) -> None:
    write_json_atomic(path, config_dict)


# ---------------------------------------------------------------------------------------------
# The run cache: a run of a recipe, found wherever it lies in a folder of runs


@dataclass(frozen=True)
class PreparedRun:
    """A RunSpec with its finished run, whether it was reused, and the training time."""

    spec: RunSpec
    run: Run
    reused: bool
    seconds: float


def run_state(folder: Path, config: TrainConfig) -> str:
    """ "complete", "partial" (same config, unfinished), "other" (another config) or "empty"."""
    config_file = folder / CONFIG_NAME
    if not config_file.is_file():
        return "other" if folder.exists() and any(folder.iterdir()) else "empty"
    try:
        saved = TrainConfig.from_dict(read_json(config_file), source=config_file)
    except ValueError:
        return "other"
    if saved.recipe() != config.recipe():
        return "other"
    try:
        epochs_done = len(read_metrics(folder / METRICS_NAME))
    except ValueError:
        return "other"
    finished = epochs_done >= config.epochs
    if finished and (folder / EMBEDDINGS_NAME).is_file() and (folder / CHECKPOINT_NAME).is_file():
        return "complete"
    return "partial"


def find_run(
    config: TrainConfig, runs_dir: str | Path, preferred: str | None = None
) -> Path | None:
    """A finished run folder in ``runs_dir`` trained with ``config`` (ignoring out and device).

    ``preferred`` (a folder name) is looked at first; then every folder of ``runs_dir``.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return None
    candidates = [runs_dir / preferred] if preferred else []
    candidates += sorted(p for p in runs_dir.iterdir() if p.is_dir() and p.name != preferred)
    for folder in candidates:
        if run_state(folder, config) == "complete":
            return folder
    return None


def target_folder(spec: RunSpec, runs_dir: Path) -> tuple[Path, bool]:
    """Where to train ``spec``: its own name unless another config lives there; resume or not."""
    for folder in (runs_dir / spec.name, runs_dir / f"{spec.name}-{spec.config.recipe_hash()}"):
        state = run_state(folder, spec.config)
        if state in ("empty", "partial"):
            return folder, state == "partial"
    raise ValueError(
        f"{runs_dir / spec.name} and its hashed alternative hold other runs; "
        "remove one of them or choose another --runs folder"
    )


# ---------------------------------------------------------------------------------------------
# A run from what the caller holds, and the names of its classes


def as_run(run):
    """``run`` itself when it is a ``sphereviz.runs.Run``; the run folder it names when it is a
    path (``load_run``, which says what is wrong with a folder that is not a run)."""
    if isinstance(run, Run):
        return run
    if isinstance(run, str | os.PathLike):
        return load_run(run)
    raise TypeError(
        f"expected a sphereviz Run (from train or load_run) or a run folder path, got "
        f"{type(run).__name__}"
    )


def run_class_names(run) -> list[str] | None:
    """Legend names of a run's classes, indexed by label, or None when they are unknown.

    A run stores the names of its training set (``Run.class_names``, from ``classes.json``):
    shown as ``"digit 0"`` … ``"digit 9"`` for MNIST, as they are for Fashion-MNIST, with
    underscores as spaces for face identities. A run written before runs stored them gets
    them from its data set: the MNIST digits, the Fashion-MNIST item names, and for faces the
    identity names of the face cache that ``config.faces_cache`` points to, when that cache is
    still there and has one name per class weight; with ``config.classes`` label k is
    ``classes[k]``'s name. Otherwise None (callers then label classes by number, or pass names
    they know).
    """
    config = run.config
    names = getattr(run, "class_names", None)
    if names is None:
        names = _data_set_class_names(run)
    if names is None:
        return None
    if config.dataset == "mnist":
        return [f"digit {digit}" for digit in names]
    return [name.replace("_", " ") for name in names] if config.dataset == "faces" else names


def _data_set_class_names(run) -> list[str] | None:
    """The names of a run's classes as its data set (or face cache) names them, or None."""
    from sphereviz.data.mnist import DIGIT_NAMES, FASHION_NAMES

    config = run.config
    if config.dataset in ("mnist", "fashion-mnist"):
        names = DIGIT_NAMES if config.dataset == "mnist" else FASHION_NAMES
    elif config.dataset == "faces" and config.faces_cache:
        from sphereviz.data.face_cache import load_face_cache

        try:
            names = load_face_cache(config.faces_cache).class_names
        except (OSError, ValueError, KeyError):  # cache moved, rebuilt or damaged: unknown
            return None
    else:
        return None
    if config.classes is not None:  # trained on these labels only, relabelled 0 … k−1
        if max(config.classes) >= len(names):
            return None
        names = [names[label] for label in config.classes]
    weights = (getattr(run, "embeddings", None) or {}).get("class_weights")
    if config.dataset == "faces" and weights is not None and len(weights) != len(names):
        return None  # a cache rebuilt since: its names cannot be the run's
    return list(names)
