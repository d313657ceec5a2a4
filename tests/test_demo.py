"""``sphereviz demo``: the target-logit table against the formulas, and the whole job end to end.

The table's values come from the losses' own ``margin_logits``; here they are compared with
numbers written out by hand from the paper's definitions: ψ(θ) = (−1)^k cos(mθ) − 2k on
[kπ/m, (k+1)π/m] (SphereFace eq. 7), CosFace cos θ − m, ArcFace cos(θ + m) (with InsightFace's
fallback cos θ − m·sin m once θ + m > π).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from sphereviz import demo

ANGLES = (0, 30, 45, 60, 90, 120, 180)
SQRT3_2 = math.sqrt(3) / 2
SQRT2_2 = math.sqrt(2) / 2
COS = [1.0, SQRT3_2, SQRT2_2, 0.5, 0.0, -0.5, -1.0]

#: ψ by hand. m = 2: cos 2θ on [0°, 90°], then −cos 2θ − 2 (k = 1).
#: m = 4: k = 0 on [0°, 45°], k = 1 on [45°, 90°] (−cos 4θ − 2), k = 2 on [90°, 135°]
#: (cos 4θ − 4), k = 3 on [135°, 180°] (−cos 4θ − 6).
#: (cos 240° = −1/2, cos 360° = 1, cos 480° = −1/2, cos 720° = 1)
PSI_2 = [1.0, 0.5, 0.0, -0.5, -1.0, 0.5 - 2, -1.0 - 2]
PSI_4 = [1.0, -0.5, 1.0 - 2, 0.5 - 2, 1.0 - 4, -0.5 - 4, -1.0 - 6]
EXPECTED = {
    "softmax (W=e1, b=0)": COS,
    "modified softmax": COS,
    "A-Softmax m=2 (λ=0)": PSI_2,
    "A-Softmax m=4 (λ=0)": PSI_4,
    "L-Softmax m=4 (λ=0)": PSI_4,  # unit weights: L-Softmax's ‖W‖ = 1 gives ψ too
    "NormFace s=1": COS,
    "CosFace m=0.35 s=1": [c - 0.35 for c in COS],
    "ArcFace m=0.5 s=1": [
        math.cos(math.radians(a) + 0.5)
        if math.radians(a) + 0.5 <= math.pi
        else math.cos(math.radians(a)) - 0.5 * math.sin(0.5)
        for a in ANGLES
    ],
    # SphereFace-R m = 1.5: k = 0 up to 120° (cos 1.5θ), then −cos 1.5θ − 2 (cos 270° = 0)
    "SphereFace-R m=1.5 s=1": [
        1.0,
        SQRT2_2,
        math.cos(math.radians(67.5)),
        0.0,
        -SQRT2_2,
        -1.0,
        -0.0 - 2,
    ],
    # SphereFace2, r = 1, b = 0: g(cos θ) − m with g(c) = 2((c + 1)/2)³ − 1, m = 0.4
    "SphereFace2 m=0.4 r=1 (b=0)": [2 * ((c + 1) / 2) ** 3 - 1 - 0.4 for c in COS],
}


def test_target_logit_table_matches_the_formulas_written_out():
    rows = {row["loss"]: row for row in demo.target_logit_table()}
    assert set(rows) == set(EXPECTED)
    for label, expected in EXPECTED.items():
        got = [rows[label][f"{a}°"] for a in ANGLES]
        # 1e-7: ArcFace floors sin θ at √eps (1.5e-8 in float64) to keep its gradient finite
        assert got == pytest.approx(expected, abs=1e-7), label
    # ψ end points: ψ(π) = 1 − 2m
    assert rows["A-Softmax m=4 (λ=0)"]["180°"] == pytest.approx(1 - 2 * 4)


def test_target_logit_table_scales_with_the_feature_norm():
    unit = {row["loss"]: row for row in demo.target_logit_table()}
    for row in demo.target_logit_table(norm=3.0):
        if row["loss"].startswith(("NormFace", "CosFace", "ArcFace", "SphereFace")):
            assert row["60°"] == pytest.approx(unit[row["loss"]]["60°"])  # x is normalised
        else:
            assert row["60°"] == pytest.approx(3.0 * unit[row["loss"]]["60°"])  # ‖x‖ ψ(θ)


def test_format_table_aligns_columns():
    text = demo.format_table([{"name": "a", "x": 1.0}, {"name": "long name", "x": -22.5}])
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[2].startswith("a ") and lines[3].endswith("-22.500")


@pytest.fixture
def cached_mnist(monkeypatch):
    """Decode the embedded MNIST once per test instead of once per run (4 s each, on the CSV
    parser); the data and everything downstream are unchanged."""
    import sphereviz.data

    original = sphereviz.data.load_mnist
    cache = {}

    def load_mnist(root=None, download=False):
        if root is not None or download:
            return original(root, download)
        if "embedded" not in cache:
            cache["embedded"] = original()
        return cache["embedded"]

    monkeypatch.setattr(sphereviz.data, "load_mnist", load_mnist)


LOSSES = [
    ("softmax", None),
    ("modified-softmax", 1),
    ("a-softmax", 2),
    ("a-softmax", 3),
    ("a-softmax", 4),
]


def test_demo_runs_are_the_mnist_demo_preset_one_seed_3d():
    """The default: the five losses, 3-D, seed 0, each the ``mnist-demo`` preset itself (so
    its recipe, and the run cache's folder for it, are the full comparison's)."""
    from sphereviz import sweep
    from sphereviz.config import TrainConfig

    specs = demo.demo_run_specs()
    assert [(demo.margin_of(s), s.dim, s.seed) for s in specs] == [(m, 3, 0) for _, m in LOSSES]
    for spec in specs:
        assert spec.config == TrainConfig.preset(
            "mnist-demo", loss=spec.loss, m=spec.m, dim=3, seed=0
        )
        assert spec.config.epochs == 10 and spec.config.batch_size == 32
    full = {s.name: s.config for s in sweep.mnist_run_specs()}
    assert all(full[s.name] == s.config for s in specs)
    assert len(full) == 30
    # --dims keeps the given order; --seeds adds the seeds of each configuration
    both = demo.demo_run_specs(seeds=(0, 1), dims=(2, 3))
    assert [s.dim for s in both] == [2] * 10 + [3] * 10
    assert sorted({s.seed for s in both}) == [0, 1]
    with pytest.raises(ValueError, match=r"dims \[4\] are not among"):
        demo.demo_run_specs(dims=(4,))


def test_training_time_estimate_counts_rounds_of_workers():
    assert demo.training_time_estimate(60.0, 30, 2) == 900.0  # 15 rounds
    assert demo.training_time_estimate(60.0, 5, 2) == 180.0  # 3 rounds, the last one alone
    assert demo.training_time_estimate(60.0, 5, 8) == 60.0
    assert demo.training_time_estimate(60.0, 0, 2) == 0.0
    with pytest.raises(ValueError, match="workers must be ≥ 1"):
        demo.training_time_estimate(60.0, 3, 0)


def test_seconds_per_run_are_the_trained_runs_else_the_recorded_ones():
    from types import SimpleNamespace

    def item(reused, seconds, epochs):
        run = SimpleNamespace(metrics=[{"seconds": s} for s in epochs])
        return SimpleNamespace(reused=reused, seconds=seconds, run=run)

    mixed = [item(False, 50.0, [9.0]), item(False, 70.0, [9.0]), item(True, 0.0, [1.0, 2.0])]
    assert demo.measured_seconds_per_run(mixed) == (60.0, "the mean of the 2 runs trained now")
    reused = [item(True, 0.0, [1.0, 2.0]), item(True, 0.0, [4.0, 5.0])]
    seconds, source = demo.measured_seconds_per_run(reused)
    assert seconds == pytest.approx(6.0) and "recorded" in source


def test_the_device_line_names_the_cpu_kernels_torch_runs():
    """A run's last digits depend on the CPU kernels (AVX2 and AVX-512 round differently), so
    the demo names them: here the plain ones, which every CPU has, forced through PyTorch's own
    ``ATEN_CPU_CAPABILITY``."""
    kernels = "default"
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "from sphereviz import demo; print(demo._device_note())"],
        env={**os.environ, "ATEN_CPU_CAPABILITY": kernels, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout.strip().startswith(f"cpu ({kernels.upper()} kernels), ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "0", "0"], "--seeds 0 0: give each value once"),
        (["--seeds", "-1"], "--seeds -1: seeds are ≥ 0"),
        (["--dims", "3", "3"], "--dims 3 3: give each value once"),
        (["--dims", "4"], "argument --dims: invalid choice: 4"),
    ],
)
def test_bad_seeds_or_dims_are_a_one_line_error(argv, message, capsys):
    with pytest.raises(SystemExit) as raised:
        demo.main(argv)
    assert raised.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("sphereviz demo: error: ") and message in error


def _files_under(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def _ignored_by_git(paths: list[str]) -> list[str]:
    """The paths (relative to the checkout) that the checkout's .gitignore ignores."""
    import shutil
    import subprocess

    from conftest import REPO_ROOT

    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=REPO_ROOT, capture_output=True,
        text=True,
    )  # fmt: skip
    return result.stdout.split()


@pytest.mark.slow
def test_quick_demo_writes_only_under_build_and_the_full_comparison_reuses_it(
    tmp_path, monkeypatch, capsys, cached_mnist
):
    """`sphereviz demo --quick` from a checkout-like folder: its runs go to build/runs, its
    figures to build/demo and nothing anywhere else (both ignored by git, so `git status` stays
    clean); then the full comparison (two seeds here) reuses those five runs."""
    monkeypatch.chdir(tmp_path)
    assert demo.main(["--quick", "--json", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    first = json.loads(printed.strip().splitlines()[-1])
    written = _files_under(tmp_path)
    assert {path.parts[:2] for path in written} == {("build", "runs"), ("build", "demo")}
    assert not (tmp_path / "figures").exists()
    samples = [str(written[0]), str(written[-1])]
    assert sorted(_ignored_by_git(samples)) == sorted(samples)

    rows = first["runs"]
    assert [(r["loss"], r["m"], r["dim"], r["seed"]) for r in rows] == [
        (loss, m, 3, 0) for loss, m in LOSSES
    ]
    assert not any(r["reused"] for r in rows)
    assert (
        first["figures"].count("mnist_sphere") == 1 and "mnist_features_2d" not in first["figures"]
    )
    out = tmp_path / "build" / "demo"
    assert (out / "index.html").is_file() and (out / "mnist_sphere_m4.html").is_file()
    assert not (out / "mnist_features_2d.png").exists()
    assert "Command: `sphereviz demo --quick`" in (out / "README.md").read_text(encoding="utf-8")
    assert "one seed (0), so no spread" in printed
    # the full comparison's time, from these five runs' own times and the worker count
    full = first["full_comparison"]
    workers = min(os.cpu_count() or 1, 30)
    per_run = np.mean([r["train_seconds"] for r in rows])
    assert (full["runs"], full["missing_runs"], full["workers"]) == (30, 25, workers)
    assert full["seconds_per_run"] == pytest.approx(per_run, abs=0.01)
    assert full["seconds_from_empty"] == pytest.approx(math.ceil(30 / workers) * per_run, abs=0.2)
    assert f"{full['seconds_from_empty'] / 60:.1f} min" in printed

    code = demo.main(["--quick", "--json", "--no-progress", "--seeds", "0", "1", "--dims", "3",
                      "2", "--out", "build/full"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed.strip().splitlines()[-1])
    assert "m_min >= 2 + sqrt(3)" in printed  # the bounds derivation was printed
    assert summary["bounds"]["binary_m_min"] == "2 + sqrt(3)"
    assert summary["bounds"]["multiclass_m_min"] == "3"
    assert summary["bounds"]["numeric_check_agrees"] is True

    rows = summary["runs"]
    assert len(rows) == 20  # 5 losses × 2 dimensions × 2 seeds
    assert sorted((r["loss"], r["m"], r["dim"]) for r in rows) == sorted(
        (loss, m, dim) for dim in (2, 3) for _ in range(2) for loss, m in LOSSES
    )
    runs = tmp_path / "build" / "runs"
    for row in rows:
        assert row["test_accuracy"] > 0.2, row  # ten digits: chance is 0.1
        assert 0 <= row["mean_angle_to_own_class_deg"] < 90
        assert 0 < row["median_same_class_angle_deg"] <= 180
        assert 0 <= row["pair_angle_eer"] <= 1
        assert row["angular_fisher_score"] > 0
        assert row["reused"] is (row["dim"] == 3 and row["seed"] == 0)  # the first demo's
        assert (runs / row["run"] / "embeddings.npz").is_file()
    assert len([p for p in runs.iterdir() if p.is_dir()]) == 20
    assert summary["full_comparison"]["missing_runs"] == 10  # seed 2 of each configuration
    # mean ± std over the seeds of each configuration, recomputed from the rows
    table = summary["configurations"]
    assert len(table) == 10
    for entry in table:
        members = [r for r in rows if (r["loss"], r["m"], r["dim"]) == (entry["loss"],
                   entry["m"], entry["dim"])]  # fmt: skip
        values = [r["mean_angle_to_own_class_deg"] for r in members]
        assert entry["mean_angle_to_own_class_deg_mean"] == pytest.approx(np.mean(values))
        assert entry["mean_angle_to_own_class_deg_std"] == pytest.approx(np.std(values, ddof=1))
    assert "±" in printed

    assert "mnist_sphere" in summary["figures"] and "psi_curves" in summary["figures"]
    assert "mnist_features_2d" in summary["figures"]
    out = tmp_path / "build" / "full"
    assert (out / "index.html").is_file() and (out / "README.md").is_file()
    assert (out / "mnist_sphere_m4.html").is_file() and (out / "mnist_features_2d.png").is_file()
    assert "https://cdn" not in (out / "index.html").read_text()
    assert summary["seconds"] > 0
