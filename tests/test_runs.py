"""The run cache of sphereviz.runs: a folder's state against a recipe, finding a finished run
wherever it lies, and where a missing run is trained. Run folders are written by hand here (no
training), with the file names of sphereviz.runs."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sphereviz.config import TrainConfig
from sphereviz.runs import (
    CHECKPOINT_NAME,
    CONFIG_NAME,
    EMBEDDINGS_NAME,
    METRICS_NAME,
    RunSpec,
    find_run,
    run_state,
    target_folder,
)


def recipe(**overrides) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "dim": 3, "device": "cpu", **overrides})


def write_run(folder, config: TrainConfig, epochs: int, files: bool = True) -> None:
    """A run folder as `train` leaves it after ``epochs`` epochs (empty weight files)."""
    folder.mkdir(parents=True)
    (folder / CONFIG_NAME).write_text(json.dumps(config.to_dict()))
    (folder / METRICS_NAME).write_text("".join(f'{{"epoch": {e}}}\n' for e in range(1, epochs + 1)))
    if files:
        (folder / EMBEDDINGS_NAME).write_bytes(b"")
        (folder / CHECKPOINT_NAME).write_bytes(b"")


def test_run_state_of_each_kind_of_folder(tmp_path):
    config = recipe()
    assert run_state(tmp_path / "missing", config) == "empty"
    (tmp_path / "empty").mkdir()
    assert run_state(tmp_path / "empty", config) == "empty"
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("not a run")
    assert run_state(tmp_path / "foreign", config) == "other"
    write_run(tmp_path / "done", config, epochs=2)
    assert run_state(tmp_path / "done", config) == "complete"
    # device and out are not part of the recipe; the seed is
    assert run_state(tmp_path / "done", dataclasses.replace(config, device="auto")) == "complete"
    assert run_state(tmp_path / "done", recipe(seed=1)) == "other"
    write_run(tmp_path / "half", config, epochs=1)
    assert run_state(tmp_path / "half", config) == "partial"
    write_run(tmp_path / "no-files", config, epochs=2, files=False)
    assert run_state(tmp_path / "no-files", config) == "partial"


def test_unreadable_run_files_are_another_run(tmp_path):
    config = recipe()
    write_run(tmp_path / "bad-config", config, epochs=2)
    (tmp_path / "bad-config" / CONFIG_NAME).write_text("{not json")
    assert run_state(tmp_path / "bad-config", config) == "other"
    write_run(tmp_path / "list-config", config, epochs=2)
    (tmp_path / "list-config" / CONFIG_NAME).write_text("[1, 2]")
    assert run_state(tmp_path / "list-config", config) == "other"
    write_run(tmp_path / "bad-metrics", config, epochs=2)
    (tmp_path / "bad-metrics" / METRICS_NAME).write_text("[1]\n")
    assert run_state(tmp_path / "bad-metrics", config) == "other"


def test_find_run_looks_at_the_preferred_folder_then_every_folder(tmp_path):
    config = recipe()
    assert find_run(config, tmp_path / "missing") is None
    write_run(tmp_path / "b-elsewhere", config, epochs=2)
    write_run(tmp_path / "a-other", recipe(seed=3), epochs=2)
    assert find_run(config, tmp_path) == tmp_path / "b-elsewhere"
    write_run(tmp_path / "z-preferred", config, epochs=2)
    assert find_run(config, tmp_path, preferred="z-preferred") == tmp_path / "z-preferred"
    assert find_run(recipe(seed=7), tmp_path) is None


def test_target_folder_resumes_its_own_run_and_steps_around_another(tmp_path):
    config = recipe()
    spec = RunSpec("mnist-a", "label", "a-softmax", None, config)
    assert target_folder(spec, tmp_path) == (tmp_path / "mnist-a", False)
    write_run(tmp_path / "mnist-a", config, epochs=1)
    assert target_folder(spec, tmp_path) == (tmp_path / "mnist-a", True)
    other = RunSpec("mnist-a", "label", "a-softmax", None, recipe(seed=5))
    hashed = tmp_path / f"mnist-a-{other.config.recipe_hash()}"
    assert target_folder(other, tmp_path) == (hashed, False)
    write_run(hashed, recipe(seed=9), epochs=1)
    with pytest.raises(ValueError, match="hold other runs"):
        target_folder(other, tmp_path)


def test_a_run_saves_its_class_names_and_an_old_run_loads_without_them(tmp_path):
    import torch

    from sphereviz.runs import CLASSES_NAME, load_run
    from sphereviz.train import train

    torch.set_num_threads(1)
    config = recipe(
        classes=(7, 3, 5), max_train_samples=128, max_test_samples=60, epochs=1, batch_size=64,
        width=4, out=str(tmp_path / "run"),
    )  # fmt: skip
    trained = train(config, progress=False)
    # the labels 0, 1, 2 are the digits 7, 3, 5, in the order of `classes`
    assert trained.class_names == ["7", "3", "5"]
    assert load_run(tmp_path / "run").class_names == ["7", "3", "5"]
    assert json.loads((tmp_path / "run" / CLASSES_NAME).read_text()) == {
        "class_names": ["7", "3", "5"]
    }
    (tmp_path / "run" / CLASSES_NAME).write_text('{"class_names": [7, 3]}')
    with pytest.raises(ValueError, match="list of strings"):
        load_run(tmp_path / "run")
    (tmp_path / "run" / CLASSES_NAME).unlink()  # a run from before classes.json
    old = load_run(tmp_path / "run")
    assert old.class_names is None and old.metrics == trained.metrics


def test_recipe_differences_ignore_what_a_recipe_leaves_out():
    from sphereviz.config import recipe_differences

    here, there = recipe(device="cpu"), recipe(device="auto", out="elsewhere")
    assert recipe_differences(here.recipe(), there.recipe(), "run has", "asked for") == []
    other = recipe(seed=2, milestones=(0.5, 0.9))
    assert recipe_differences(here.recipe(), other.recipe(), "run has", "asked for") == [
        "milestones: run has [0.6, 0.85], asked for [0.5, 0.9]",
        "seed: run has 0, asked for 2",
    ]
