"""The trainer: it learns, resumes bit for bit, stops clearly on NaN, refuses damaged files,
shards batches for DDP and runs under torchrun with two processes (gloo)."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import sphereviz.train as train_module
from sphereviz.config import TrainConfig
from sphereviz.runs import load_checkpoint, load_run
from sphereviz.train import (
    TrainingDivergedError,
    main,
    make_optimizer,
    random_shift,
    train,
    training_batches,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def tiny(**overrides) -> TrainConfig:
    """A few seconds of CPU training on a subset of the embedded MNIST."""
    settings = dict(
        max_train_samples=512,
        max_test_samples=200,
        epochs=2,
        batch_size=64,
        width=8,
        device="cpu",
    )
    return TrainConfig(**{**settings, **overrides})


def test_a_short_run_learns_and_writes_a_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        ["--loss", "a-softmax", "--m", "4", "--dim", "3", "--epochs", "3", "--batch-size", "64",
         "--max-train-samples", "1280", "--max-test-samples", "500", "--device", "cpu",
         "--width", "8", "--out", str(out), "--json", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary) == {
        "test_accuracy", "epochs", "seconds", "device", "out", "final_lambda", "total_steps",
        "batch_size", "warnings",
    }  # fmt: skip
    assert summary["total_steps"] == 60
    assert summary["warnings"] == [
        "only 60 optimiser steps in all (fewer than 300): raise --epochs or lower --batch-size"
    ]
    assert summary["epochs"] == 3 and summary["device"] == "cpu"
    assert summary["test_accuracy"] > 0.5  # chance is 0.1; 60 steps, ψ of m = 4 from step 30
    run = load_run(out)
    assert [row["epoch"] for row in run.metrics] == [1, 2, 3]
    assert run.metrics[-1]["test_accuracy"] == summary["test_accuracy"]
    assert run.embeddings["features"].shape == (500, 3)
    assert run.embeddings["class_weights"].shape == (10, 3)
    # The stored test accuracy is the angular decision rule on the stored embeddings.
    from sphereviz.evaluate import closed_set_accuracy

    embeddings = run.embeddings
    assert closed_set_accuracy(
        embeddings["features"], embeddings["labels"], embeddings["class_weights"]
    ) == pytest.approx(summary["test_accuracy"])
    # The λ schedule advanced once per training step: 20 steps of 64 (1280 images) per epoch.
    steps = 3 * 20
    assert load_checkpoint(out / "model.pt")["loss"]["iteration"] == steps
    # margin-biting default: λ reaches its floor 0.1 at half the run, 1000/(1 + γ·30) = 0.1
    gamma = (1000 / 0.1 - 1) / 30
    assert [row["lambda"] for row in run.metrics] == pytest.approx(
        [1000 / (1 + gamma * 20), 0.1, 0.1]
    )
    model = run.load_model()
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 3)


class Interrupt(Exception):
    pass


def interrupt_after_first_epoch(epoch, metrics, embeddings):
    if epoch == 1:
        raise Interrupt


def comparable(metrics):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in metrics]


@pytest.mark.slow
def test_resume_gives_the_uninterrupted_run_bit_for_bit(tmp_path):
    whole = train(tiny(out=str(tmp_path / "whole")), progress=False)
    config = tiny(out=str(tmp_path / "parts"))
    with pytest.raises(Interrupt):
        train(config, progress=False, on_epoch=interrupt_after_first_epoch)
    assert len(load_run(tmp_path / "parts").metrics) == 1
    resumed = train(config, progress=False, resume=True)
    assert comparable(resumed.metrics) == comparable(whole.metrics)
    expected = load_checkpoint(tmp_path / "whole" / "model.pt")
    actual = load_checkpoint(tmp_path / "parts" / "model.pt")
    for part in ("model", "loss"):
        assert expected[part].keys() == actual[part].keys()
        for name in expected[part]:
            assert torch.equal(expected[part][name], actual[part][name]), name
    for key, value in expected["optimizer"]["state"].items():
        assert torch.equal(value["exp_avg"], actual["optimizer"]["state"][key]["exp_avg"])
    assert torch.equal(expected["rng"]["data"], actual["rng"]["data"])
    np.testing.assert_array_equal(resumed.embeddings["features"], whole.embeddings["features"])
    # A finished run resumes to itself without training.
    again = train(config, progress=False, resume=True)
    assert comparable(again.metrics) == comparable(whole.metrics)


def test_resume_refuses_a_different_config(tmp_path):
    train(tiny(out=str(tmp_path / "run"), epochs=1), progress=False)
    with pytest.raises(ValueError, match="different config.*lr"):
        train(tiny(out=str(tmp_path / "run"), epochs=1, lr=0.1), progress=False, resume=True)
    with pytest.raises(ValueError, match="already holds a run"):
        train(tiny(out=str(tmp_path / "run"), epochs=1), progress=False)


def test_nan_in_the_data_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    clean_batches = train_module.training_batches

    def poisoned(batches, config, rank, world_size, generator):
        poisoned.epoch += 1
        for step, (images, labels) in enumerate(
            clean_batches(batches, config, rank, world_size, generator), 1
        ):
            if poisoned.epoch == 2 and step == 3:
                images = images * float("nan")
            yield images, labels

    poisoned.epoch = 0
    monkeypatch.setattr(train_module, "training_batches", poisoned)
    out = tmp_path / "run"
    with pytest.raises(TrainingDivergedError) as error:
        train(tiny(out=str(out), epochs=3), progress=False)
    message = str(error.value)
    assert "epoch 2, step 3" in message
    assert "λ_min" in message and "learning rate" in message and "softmax pre-training" in message
    assert str(out) in message
    checkpoint = load_checkpoint(out / "model.pt")
    assert checkpoint["epoch"] == 1
    assert all(
        torch.isfinite(p).all() for p in checkpoint["model"].values() if p.is_floating_point()
    )
    assert len(load_run(out).metrics) == 1


def test_a_truncated_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    out = tmp_path / "run"
    train(tiny(out=str(out), epochs=1), progress=False)
    checkpoint = out / "model.pt"
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"model\.pt.*not a readable sphereviz checkpoint"):
        load_run(out).load_model()
    with pytest.raises(ValueError, match=r"model\.pt"):
        train(tiny(out=str(out), epochs=1), progress=False, resume=True)
    torch.save({"weights": torch.zeros(3)}, checkpoint)
    with pytest.raises(ValueError, match="not a sphereviz-checkpoint"):
        load_run(out).load_model()
    torch.save(Interrupt(), checkpoint)  # an arbitrary pickled object is never executed
    with pytest.raises(ValueError, match=r"model\.pt"):
        load_run(out).load_model()
    (out / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json"):
        load_run(out)


def test_random_shift_moves_each_image_by_at_most_the_shift():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(16, 2, 7, 6)
    shifted = random_shift(images, 2, generator)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2), mode="replicate")
    crops = {(dy, dx): padded[:, :, dy : dy + 7, dx : dx + 6] for dy in range(5) for dx in range(5)}
    offsets = []
    for i in range(16):
        matches = [key for key, crop in crops.items() if torch.equal(crop[i], shifted[i])]
        assert matches, f"image {i} is not a shifted copy"
        offsets.append(matches[0])
    assert len(set(offsets)) > 1  # each image draws its own offset
    assert random_shift(images, 0, generator) is images


def test_ddp_sharding_splits_each_global_batch_between_processes():
    config = tiny(shift=0)
    batches = [(torch.arange(10.0).view(10, 1, 1, 1), torch.arange(10)) for _ in range(2)]
    shares = [
        list(training_batches(batches, config, rank, 3, torch.Generator())) for rank in range(3)
    ]
    for step in range(2):
        labels = torch.cat([shares[rank][step][1] for rank in range(3)])
        assert sorted(labels.tolist()) == list(range(10))


def test_on_epoch_sees_the_features_move(tmp_path):
    seen = []
    train(
        tiny(epochs=2, dim=2),
        progress=False,
        on_epoch=lambda epoch, metrics, embeddings: seen.append((epoch, metrics, embeddings)),
    )
    assert [epoch for epoch, _, _ in seen] == [1, 2]
    first, second = seen[0][2], seen[1][2]
    assert first["features"].shape == (200, 2) and first["class_weights"].shape == (10, 2)
    assert not np.allclose(first["features"], second["features"])
    assert {"loss", "train_accuracy", "test_accuracy", "lambda", "seconds", "device"} <= set(
        seen[1][1]
    )


def test_config_validation_and_json_round_trip():
    config = TrainConfig.preset("mnist-demo", dim=2, m=3)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert TrainConfig(loss="sphereface").loss == "a-softmax"
    with pytest.raises(ValueError, match="integer"):
        TrainConfig(loss="a-softmax", m=2.5)
    with pytest.raises(ValueError, match="faces_cache"):
        TrainConfig(dataset="faces")
    with pytest.raises(ValueError, match="milestones"):
        TrainConfig(milestones=(0.9, 0.5))
    with pytest.raises(ValueError, match="does not take"):
        TrainConfig(loss="softmax", m=4)
    with pytest.raises(ValueError, match="unknown preset"):
        TrainConfig.preset("imagenet")
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    for empty in ("", "  "):
        with pytest.raises(ValueError, match="empty path"):
            TrainConfig(out=empty)


def test_one_run_folder_per_recipe(tmp_path):
    config = TrainConfig.preset("mnist-demo", dim=3, m=4)
    same_recipe = dataclasses.replace(config, device="cpu", out="elsewhere")
    assert config.recipe_hash() == same_recipe.recipe_hash()
    assert len(config.recipe_hash()) == 8 and int(config.recipe_hash(), 16) >= 0
    for changed in ({"epochs": 11}, {"m": 3}, {"seed": 1}, {"lr": 1e-3}):
        assert dataclasses.replace(config, **changed).recipe_hash() != config.recipe_hash()
    placed = config.in_run_folder(tmp_path, "3d-m4")
    assert placed.out == str(tmp_path / f"3d-m4-{config.recipe_hash()}")
    assert dataclasses.replace(placed, out=None) == config


@pytest.mark.slow
def test_two_process_ddp_run_under_torchrun(tmp_path):
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "sphereviz", "train", "--dataset", "mnist", "--loss", "a-softmax", "--epochs", "2",
        "--batch-size", "64", "--max-train-samples", "256", "--max-test-samples", "100",
        "--device", "cpu", "--out", str(out), "--json", "--no-progress",
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1, result.stdout  # only rank 0 reports
    assert json.loads(summaries[-1])["epochs"] == 2
    run = load_run(out)
    assert [row["epoch"] for row in run.metrics] == [1, 2]
    # 256 images in global batches of 64: 4 steps per epoch, the same λ counter on both ranks
    assert load_checkpoint(out / "model.pt")["loss"]["iteration"] == 8


def synthetic_face_cache(tmp_path, identities=3, per_identity=4):
    """A tiny `prepare-faces` cache of random colour images (centre crop, no landmarks)."""
    from PIL import Image

    from sphereviz.data import prepare_faces

    rng = np.random.default_rng(0)
    for identity in range(identities):
        folder = tmp_path / "faces" / f"person{identity}"
        folder.mkdir(parents=True)
        for k in range(per_identity):
            pixels = rng.integers(0, 256, (130, 110, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{k}.png")
    return prepare_faces(tmp_path / "faces", tmp_path / "cache", workers=1, progress=False)


def test_faces_split_is_stratified_seeded_and_disjoint(tmp_path):
    from sphereviz.datasets import split_faces

    cache = synthetic_face_cache(tmp_path, identities=3, per_identity=4)
    config = TrainConfig.preset("faces", faces_cache=str(cache.directory), test_fraction=0.25)
    train_set, test_set = split_faces(cache, config)
    assert len(train_set) == 9 and len(test_set) == 3
    assert sorted(test_set.labels.tolist()) == [0, 1, 2]  # one of each identity held out
    again = split_faces(cache, config)[1]
    np.testing.assert_array_equal(again.images, test_set.images)
    rows = {image.tobytes() for image in train_set.images}
    assert not any(image.tobytes() in rows for image in test_set.images)


@pytest.mark.slow
def test_a_face_run_with_sfnet4_trains_and_evaluates(tmp_path):
    cache = synthetic_face_cache(tmp_path, identities=3, per_identity=4)
    config = TrainConfig.preset(
        "faces", faces_cache=str(cache.directory), model="sfnet4", dim=8, epochs=1,
        batch_size=4, test_fraction=0.25, device="cpu", out=str(tmp_path / "run"),
    )  # fmt: skip
    run = train(config, progress=False)
    assert run.embeddings["features"].shape == (3, 8)
    assert run.embeddings["class_weights"].shape == (3, 8)
    assert np.isfinite(run.metrics[-1]["loss"])
    assert load_run(tmp_path / "run").load_model().depth == 4


def test_training_steps_do_not_check_label_ranges_again(monkeypatch):
    """The data checked every label once; the per-batch check would sync with a GPU each step."""

    def host_sync(*args, **kwargs):
        raise AssertionError("the loss checked the label range inside the training loop")

    monkeypatch.setattr(torch, "aminmax", host_sync)
    run = train(tiny(epochs=1, dim=2), progress=False)
    assert run.metrics[-1]["test_accuracy"] > 0.1


def _updates_by_hand(optimizer: str, weights, gradients, lr, weight_decay, momentum):
    """The weights after each step of SGD with momentum (v ← μv + g, w ← w − lr·v) or of Adam
    (Kingma & Ba, bias-corrected, β = (0.9, 0.999), ε = 1e-8), with L2 weight decay
    g = ∇ + λ_wd·w, in float64."""
    w = np.asarray(weights, dtype=np.float64).copy()
    v, first, second = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for step, gradient in enumerate(gradients, start=1):
        g = gradient + weight_decay * w
        if optimizer == "sgd":
            v = g if step == 1 else momentum * v + g
            w = w - lr * v
        else:
            first = 0.9 * first + 0.1 * g
            second = 0.999 * second + 0.001 * g * g
            corrected = first / (1 - 0.9**step)
            w = w - lr * corrected / (np.sqrt(second / (1 - 0.999**step)) + 1e-8)
    return w


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_fused_optimiser_takes_the_textbook_steps(optimizer):
    """``make_optimizer`` fuses its step on the CPU and still takes the update of the formulas
    (written out here in numpy), momentum and weight decay included."""
    config = TrainConfig(optimizer=optimizer, lr=0.05, momentum=0.9, weight_decay=0.01)
    rng = np.random.default_rng(0)
    start = rng.normal(size=(3, 5)).astype(np.float32)
    gradients = [rng.normal(size=(3, 5)).astype(np.float32) for _ in range(6)]
    weight = torch.nn.Parameter(torch.from_numpy(start.copy()))
    fused = make_optimizer(config, [weight])
    assert fused.defaults["fused"] is True
    for gradient in gradients:
        weight.grad = torch.from_numpy(gradient)
        fused.step()
    expected = _updates_by_hand(optimizer, start, gradients, 0.05, 0.01, 0.9)
    np.testing.assert_allclose(weight.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(expected, start)  # the steps moved the weights


def test_config_checks_say_type_or_value_and_keep_numpy_integers_as_ints():
    with pytest.raises(TypeError, match="epochs must be an integer >= 1, got str '3'"):
        TrainConfig(epochs="3")
    with pytest.raises(TypeError, match="dataset must be one of 'mnist'"):
        TrainConfig(dataset=3)
    with pytest.raises(ValueError, match=r"momentum must be a finite number in \[0, 1\)"):
        TrainConfig(momentum=1.0)
    config = TrainConfig(epochs=np.int64(3))  # refused before; now stored as a plain int
    assert type(config.epochs) is int
    assert config.recipe_hash() == TrainConfig(epochs=3).recipe_hash()
