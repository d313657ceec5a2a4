"""λ schedules by run length, the named schedules, and the warnings for a margin that never acts.

Independent truths: the official constants (γ = 0.12 puts λ = 5 at iteration 1658⅓), the
closed form of the hyperbola, and the effective m of ``geometry.annealed_margin``.
"""

from __future__ import annotations

import math

import pytest

from sphereviz.config import PRESETS, SCHEDULES, TrainConfig
from sphereviz.geometry import effective_m
from sphereviz.margins import LambdaSchedule


def test_reaching_floor_recovers_the_official_gamma():
    official = LambdaSchedule()
    assert official.floor_iteration() == pytest.approx((1000 / 5 - 1) / 0.12)
    rebuilt = LambdaSchedule.reaching_floor(official.floor_iteration(), lambda_min=5.0)
    assert rebuilt.gamma == pytest.approx(0.12)
    squared = LambdaSchedule.reaching_floor(100, base=1500, power=2, lambda_min=0.5)
    assert 1500 * (1 + squared.gamma * 100) ** -2 == pytest.approx(0.5)


@pytest.mark.parametrize("total_steps", [60, 640, 28_000])
def test_floor_at_a_fraction_of_any_run(total_steps):
    config = TrainConfig()
    schedule = config.lambda_schedule(total_steps)
    floor_step = config.lambda_floor_at * total_steps
    assert schedule.lambda_min == 0.1
    assert schedule.value(floor_step) == pytest.approx(0.1)
    assert schedule.value(floor_step * 0.9) > 0.1
    # the same shape at the same fraction of the run, whatever its length
    assert schedule.value(0.1 * total_steps) == pytest.approx(
        1000 / (1 + (1000 / 0.1 - 1) * 0.1 / config.lambda_floor_at), rel=1e-9
    )


def test_official_schedule_is_the_official_constants():
    config = TrainConfig.preset("official")
    assert config.lambda_schedule(640) == LambdaSchedule(1000.0, 0.12, 1.0, 5.0)
    assert config.lambda_schedule(28_000) == LambdaSchedule()
    assert SCHEDULES["official"]["lambda_floor_at"] is None


def test_warnings_say_when_the_margin_cannot_act():
    official = TrainConfig.preset("official")
    (message,) = official.schedule_warnings(640)  # ends at 1000/(1 + 0.12·640) = 12.85
    assert f"λ ends at {1000 / (1 + 0.12 * 640):.3g}," in message and "effective m" in message
    assert f"{effective_m(4, 1000 / (1 + 0.12 * 640)):.2f}" in message
    assert TrainConfig().schedule_warnings(640) == []
    faces = TrainConfig.preset("faces", faces_cache="unused")
    short = faces.schedule_warnings(60)  # 400 faces, batch 256, 30 epochs
    assert len(short) == 1 and short[0].startswith("only 60 optimiser steps")
    assert faces.lambda_schedule(60).value(60) == pytest.approx(faces.lambda_min)
    assert TrainConfig(loss="cosface").schedule_warnings(640) == []


def test_m_is_one_recipe_as_int_or_float():
    assert TrainConfig(m=4).recipe() == TrainConfig(m=4.0).recipe()
    assert TrainConfig(m=4).recipe_hash() == TrainConfig(m=4.0).recipe_hash()
    assert TrainConfig(m=4).recipe_hash() != TrainConfig(m=3).recipe_hash()
    assert isinstance(TrainConfig(m=4.0).m, int)
    assert TrainConfig(loss="cosface", m=0.35).m == 0.35


def test_configs_from_before_lambda_floor_at_keep_their_absolute_gamma():
    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "lambda_floor_at"}
    old.update(lambda_gamma=0.8, lambda_min=None)
    config = TrainConfig.from_dict(old)
    assert config.lambda_floor_at is None
    assert config.lambda_schedule(640) == LambdaSchedule(gamma=0.8)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"lambda_gamma": 0.8}, "not both"),
        ({"lambda_min": 0.0}, "lambda_min > 0"),
        ({"lambda_floor_at": 1.5}, r"in \(0, 1\]"),
    ],
)
def test_bad_schedules_are_clear_errors(fields, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**fields)


def test_presets_name_their_schedule():
    assert set(PRESETS) >= {"mnist-full", "mnist-demo", "official", "faces"}
    for name in PRESETS:
        config = TrainConfig.preset(name, faces_cache="unused")
        schedule = config.lambda_schedule(1000)
        assert schedule is not None and math.isfinite(schedule.floor_iteration())


def test_the_faces_batch_fits_a_small_folder():
    faces = TrainConfig.preset("faces", faces_cache="cache")
    assert (faces.batch_size, faces.lr, faces.min_batches_per_epoch) == (256, 0.1, 10)
    # 360 training faces (the 40-person folder): ⌊360 / 10⌋ = 36 images, lr scaled linearly
    assert faces.fitted_batch(360) == (36, pytest.approx(0.1 * 36 / 256))
    assert faces.fitted_batch(2560) == (256, 0.1)  # exactly 10 batches: the recipe as it is
    assert faces.fitted_batch(450_000) == (256, 0.1)  # CASIA-WebFace
    assert faces.fitted_batch(5) == (1, pytest.approx(0.1 / 256))
    assert TrainConfig().fitted_batch(100) == (128, 3e-3)  # off by default
    with pytest.raises(ValueError, match="min_batches_per_epoch must be an integer >= 1"):
        TrainConfig(min_batches_per_epoch=0)


def test_a_small_set_trains_with_the_fitted_batch_and_lr(tmp_path):
    from sphereviz.runs import load_checkpoint
    from sphereviz.train import train

    config = TrainConfig(
        max_train_samples=200, max_test_samples=100, epochs=1, batch_size=128, width=4,
        min_batches_per_epoch=10, device="cpu", out=str(tmp_path / "run"),
    )  # fmt: skip
    with pytest.warns(UserWarning, match="only 10 optimiser steps"):
        run = train(config, progress=False)
    assert run.metrics[-1]["batch_size"] == 20 and run.metrics[-1]["total_steps"] == 10
    groups = load_checkpoint(tmp_path / "run" / "model.pt")["optimizer"]["param_groups"]
    assert groups[0]["initial_lr"] == pytest.approx(3e-3 * 20 / 128)


def test_min_batches_per_epoch_keeps_the_recipes_of_older_runs():
    older = {k: v for k, v in TrainConfig().to_dict().items() if k != "min_batches_per_epoch"}
    assert TrainConfig.from_dict(older).recipe() == TrainConfig().recipe()
    assert "min_batches_per_epoch" not in TrainConfig().recipe()
    assert TrainConfig(min_batches_per_epoch=10).recipe_hash() != TrainConfig().recipe_hash()
