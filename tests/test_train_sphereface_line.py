"""The trainer's command line trains SphereFace-R and SphereFace2; old recipes keep their hash."""

from __future__ import annotations

import json

import pytest

from sphereviz.config import TrainConfig
from sphereviz.train import main


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--loss", "sphereface-r", "--m", "1.5", "--scale", "30"],
         {"loss": "sphereface-r", "m": 1.5, "scale": 30.0}),
        (["--loss", "sphereface2", "--alpha", "0.6", "--t", "2", "--loss-weight", "20"],
         {"loss": "sphereface2", "alpha": 0.6, "t": 2.0, "loss_weight": 20.0}),
    ],
)  # fmt: skip
def test_cli_trains_the_sphereface_line(tmp_path, capsys, options, expected):
    out = tmp_path / "run"
    code = main([*options, "--epochs", "1", "--max-train-samples", "256",
                 "--max-test-samples", "200", "--batch-size", "64", "--out", str(out),
                 "--threads", "1", "--no-progress", "--json"])  # fmt: skip
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert {key: config[key] for key in expected} == expected
    metrics = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["loss"] > 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["test_accuracy"] == metrics["test_accuracy"]


def test_sphereface2_options_are_checked_and_belong_to_sphereface2():
    with pytest.raises(ValueError, match=r"alpha must be a finite number in \(0, 1\)"):
        TrainConfig(loss="sphereface2", alpha=1.5)
    with pytest.raises(ValueError, match="does not take alpha"):
        TrainConfig(loss="cosface", alpha=0.7)
    with pytest.raises(ValueError, match=">= 1 for SphereFace-R"):
        TrainConfig(loss="sphereface-r", m=0.9)
    assert TrainConfig(loss="SphereFaceR").loss == "sphereface-r"
    assert TrainConfig(loss="am-softmax").loss == "cosface"


def test_recipes_without_the_new_options_keep_their_hash():
    recipe = TrainConfig().recipe()
    assert not {"alpha", "t", "loss_weight"} & set(recipe)
    assert "alpha" in TrainConfig(loss="sphereface2", alpha=0.6).recipe()
    assert TrainConfig(loss="sphereface2").recipe_hash() != TrainConfig().recipe_hash()
