"""``sphereviz demo``: the main job, on the embedded default data and this machine's CPU.

1. the target logit of every loss of the family at a few angles (how each margin bends cos θ);
2. the sympy derivation of the bounds on m (2 + √3 for two classes, 3 for uniformly spaced
   classes), step by step, cross-checked numerically (``sphereviz.bounds``);
3. the MNIST comparison: softmax, modified softmax and A-Softmax m = 2, 3, 4 with 3-D features
   and seed 0 by default (5 runs of the ``mnist-demo`` preset, a few minutes on two cores);
   ``--seeds 0 1 2 --dims 3 2`` is the full comparison (30 runs), whose time here the demo
   estimates from its own runs. Runs are trained into the shared run cache ``build/runs`` or
   reused from there when a run with the same config is already there
   (``sphereviz.sweep.ensure_runs``), so ``sphereviz figures`` and notebook 06 reuse them;
4. the figures of those runs written into ``build/demo/`` (git-ignored; never the tracked
   ``figures/``, which ``make figures`` rewrites), with README captions and an offline
   ``index.html`` gallery (``sphereviz.figures``);
5. a summary table: per configuration, the test accuracy, the mean angle to the own class
   weight, the median same-class pair angle, the pair-angle EER and the Angular Fisher Score
   (``geometry.feature_summary``), as mean ± std over the seeds when there are several.

``--quick`` trains short runs (seconds each) for tests; ``--json`` ends with a JSON line.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from sphereviz.aggregate import mean_std_text, over_seeds
from sphereviz.fileio import print_json_summary
from sphereviz.losses import make_loss
from sphereviz.losses.registry import loss_spec

TABLE_ANGLES_DEG = (0, 30, 45, 60, 90, 120, 180)

DEMO_OUT = Path("build") / "demo"
"""Where the demo writes its figures (``--out``): git-ignored, so a clone stays clean."""
DEMO_SEEDS = (0,)
"""The demo's seeds (``--seeds``): one, for a first run in minutes."""
DEMO_DIMS = (3,)
"""The demo's feature dimensions (``--dims``): 3-D, the sphere of SphereFace's Fig. 5."""

TABLE_LOSSES = (
    ("softmax", "softmax (W=e1, b=0)", {}),
    ("modified-softmax", "modified softmax", {}),
    ("a-softmax", "A-Softmax m=2 (λ=0)", {"margin": 2, "lambda_schedule": None}),
    ("a-softmax", "A-Softmax m=4 (λ=0)", {"margin": 4, "lambda_schedule": None}),
    ("l-softmax", "L-Softmax m=4 (λ=0)", {"margin": 4, "lambda_schedule": None}),
    ("normface", "NormFace s=1", {"scale": 1.0}),
    ("cosface", "CosFace m=0.35 s=1", {"margin": 0.35, "scale": 1.0}),
    ("arcface", "ArcFace m=0.5 s=1", {"margin": 0.5, "scale": 1.0}),
    ("sphereface-r", "SphereFace-R m=1.5 s=1", {"margin": 1.5, "scale": 1.0}),
    ("sphereface2", "SphereFace2 m=0.4 r=1 (b=0)", {"scale": 1.0}),
)


def target_logit_table(angles_deg=TABLE_ANGLES_DEG, norm: float = 1.0) -> list[dict]:
    """The margined target logit f_y of each loss for a feature at angle θ to its class weight.

    Two classes in the plane with unit weights W₁ = e₁, W₂ = e₂ (and zero bias), a feature
    x = ‖x‖(cos θ, sin θ) labelled class 1; the value is the loss's own ``margin_logits``, so
    the table is the library's arithmetic, not a copy of the formulas. Scaled losses use s = 1
    so that every row is on the same ‖x‖cos θ footing.
    """
    angles = torch.tensor(angles_deg, dtype=torch.float64) * (math.pi / 180)
    features = norm * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    labels = torch.zeros(len(angles), dtype=torch.long)
    rows = []
    for name, label, options in TABLE_LOSSES:
        loss = make_loss(name, num_classes=2, embedding_size=2, **options).double()
        with torch.no_grad():
            loss.W.copy_(torch.eye(2, dtype=torch.float64))
            if hasattr(loss, "bias"):
                loss.bias.zero_()
            target = loss.margin_logits(features, labels)[:, 0]
        rows.append(
            {"loss": label, **{f"{a}°": float(v) for a, v in zip(angles_deg, target, strict=True)}}
        )
    return rows


def format_table(rows: list[dict], float_format: str = "{:7.3f}") -> str:
    """Plain-text table of a list of dicts that share their keys (first key left-aligned)."""
    keys = list(rows[0])
    cells = [
        [str(r[keys[0]])]
        + [float_format.format(r[k]) if isinstance(r[k], float) else str(r[k]) for k in keys[1:]]
        for r in rows
    ]
    widths = [max(len(str(k)), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = [
        "  ".join(
            str(k).ljust(w) if i == 0 else str(k).rjust(w)
            for i, (k, w) in enumerate(zip(keys, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for c in cells:
        lines.append(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(c, widths, strict=True))
            )
        )
    return "\n".join(lines)


def margin_of(spec) -> int | None:
    """The A-Softmax m of a run: modified softmax is m = 1, plain softmax has none."""
    if spec.m is not None:
        return int(spec.m)
    loss = loss_spec(spec.config.loss)  # no margin on the cosine (modified softmax): m = 1
    return 1 if not loss.has_margin and loss.plain_score == "cosine" else None


#: The numbers of a run that the summary compares, each ``geometry.feature_summary``'s name
#: (test accuracy: the run's last epoch, plain cosine logits, no margin).
SUMMARY_METRICS = (
    "test_accuracy",
    "mean_angle_to_own_class_deg",
    "median_same_class_angle_deg",
    "pair_angle_eer",
    "angular_fisher_score",
)


def summary_rows(prepared: Sequence) -> list[dict]:
    """One row per run: test accuracy and the geometry of its test features.

    ``test_accuracy`` is the run's last-epoch closed-set accuracy (plain cosine logits, no
    margin); the other numbers are ``geometry.feature_summary`` of the run's test embeddings
    (features, labels, class weights), under the same names.
    """
    from sphereviz import geometry

    rows = []
    for item in prepared:
        embeddings = item.run.embeddings
        stats = geometry.feature_summary(
            embeddings["features"], embeddings["labels"], embeddings["class_weights"]
        )
        rows.append(
            {
                "run": item.spec.name,
                "loss": item.spec.loss,
                "m": margin_of(item.spec),
                "dim": item.spec.dim,
                "seed": item.spec.seed,
                "epochs": len(item.run.metrics),
                "test_accuracy": float(item.run.final_metrics["test_accuracy"]),
                **{key: stats[key] for key in SUMMARY_METRICS[1:]},
                "criterion_holds": stats["criterion_holds"],
                "robust_criterion_holds": stats["robust_criterion_holds"],
                "final_lambda": item.run.final_metrics.get("lambda"),
                "warnings": list(item.run.warnings),
                "reused": item.reused,
                "train_seconds": round(item.seconds, 2),
            }
        )
    return rows


def seed_statistics(rows: Sequence[dict]) -> list[dict]:
    """Mean and standard deviation (ddof = 1) over seeds of each configuration's numbers.

    Rows that share loss, m and dim are one configuration; each metric of
    :data:`SUMMARY_METRICS` becomes ``<name>_mean`` and ``<name>_std`` (NaN for one seed),
    by :func:`sphereviz.aggregate.over_seeds`.
    """
    return over_seeds(rows, ("loss", "m", "dim"), SUMMARY_METRICS)


def format_seed_statistics(table: Sequence[dict]) -> str:
    """The per-configuration table, mean ± std (accuracy and EER in %, angles in degrees)."""
    shown = [
        {
            "loss": entry["loss"],
            "m": "-" if entry["m"] is None else str(entry["m"]),
            "dim": str(entry["dim"]),
            "seeds": str(len(entry["seeds"])),
            "test acc %": mean_std_text(entry, "test_accuracy", 1, scale=100),
            "mean ∠ own W°": mean_std_text(entry, "mean_angle_to_own_class_deg", 1),
            "median same-class pair°": mean_std_text(entry, "median_same_class_angle_deg", 1),
            "pair EER %": mean_std_text(entry, "pair_angle_eer", 1, scale=100),
            "AFS": mean_std_text(entry, "angular_fisher_score", 4),
        }
        for entry in table
    ]
    return format_table(shown)


def format_summary(rows: Sequence[dict]) -> str:
    """The per-run rows as a plain-text table (accuracy in %, angles in degrees)."""
    shown = [
        {
            "run": row["run"],
            "test acc %": f"{100 * row['test_accuracy']:.1f}",
            "mean ∠ own W°": f"{row['mean_angle_to_own_class_deg']:.1f}",
            "λ at the end": "-" if row["final_lambda"] is None else f"{row['final_lambda']:.3g}",
            "run ": "reused" if row["reused"] else f"trained {row['train_seconds']:.0f} s",
        }
        for row in rows
    ]
    return format_table(shown)


def demo_run_specs(
    quick: bool = False, seeds: Sequence[int] = DEMO_SEEDS, dims: Sequence[int] = DEMO_DIMS
) -> list:
    """The demo's MNIST runs: :func:`sphereviz.sweep.mnist_run_specs` for ``seeds``, kept to
    ``dims`` (in that order). Each is the very spec of the full comparison, so its run is the
    same folder and recipe that ``sphereviz figures`` and notebook 06 look for."""
    from sphereviz.sweep import MNIST_DIMS, mnist_run_specs

    unknown = [dim for dim in dims if dim not in MNIST_DIMS]
    if unknown:
        raise ValueError(f"dims {unknown} are not among the demo's {list(MNIST_DIMS)}")
    specs = mnist_run_specs(quick, seeds=seeds)
    return [spec for dim in dims for spec in specs if spec.dim == dim]


def training_time_estimate(seconds_per_run: float, runs: int, workers: int) -> float:
    """Wall time of training ``runs`` runs ``workers`` at a time, each ``seconds_per_run``:
    ⌈runs / workers⌉ · seconds_per_run (``sweep.ensure_runs`` keeps ``workers`` processes busy,
    one run each)."""
    if runs <= 0:
        return 0.0
    if workers < 1 or seconds_per_run < 0:
        raise ValueError(
            f"workers must be ≥ 1 and seconds_per_run ≥ 0, got {workers} and {seconds_per_run}"
        )
    return math.ceil(runs / workers) * seconds_per_run


def measured_seconds_per_run(prepared: Sequence) -> tuple[float, str]:
    """The mean training time of one run and where it comes from: the runs this call trained
    (wall time in their worker, ``PreparedRun.seconds``), else the per-epoch times the reused
    runs recorded when they were trained (``metrics.jsonl``)."""
    trained = [item.seconds for item in prepared if not item.reused]
    if trained:
        return sum(trained) / len(trained), f"the mean of the {len(trained)} runs trained now"
    recorded = [sum(row["seconds"] for row in item.run.metrics) for item in prepared]
    return (
        sum(recorded) / len(recorded),
        f"the mean training time the {len(recorded)} reused runs recorded",
    )


def full_comparison_note(prepared: Sequence, runs_dir: Path, quick: bool) -> dict:
    """How long the full comparison (every seed × every dimension of ``sweep``) would take
    here: from an empty run cache, and for the runs of it not yet in ``runs_dir``; computed
    from this demo's own per-run time and the worker count of ``sweep.ensure_runs``."""
    from sphereviz.runs import find_run
    from sphereviz.sweep import MNIST_DIMS, SEEDS

    specs = demo_run_specs(quick, SEEDS, MNIST_DIMS)
    missing = sum(find_run(s.config, runs_dir, preferred=s.name) is None for s in specs)
    per_run, source = measured_seconds_per_run(prepared)
    cpus = os.cpu_count() or 1
    workers = min(cpus, len(specs))
    return {
        "arguments": f"--seeds {' '.join(map(str, SEEDS))} --dims {' '.join(map(str, MNIST_DIMS))}",
        "runs": len(specs),
        "missing_runs": missing,
        "workers": workers,
        "seconds_per_run": per_run,
        "seconds_per_run_source": source,
        "seconds_from_empty": training_time_estimate(per_run, len(specs), workers),
        "seconds_for_missing": training_time_estimate(per_run, missing, min(cpus, missing or 1)),
    }


def format_full_comparison_note(note: dict, runs_dir: Path) -> str:
    rounds = math.ceil(note["runs"] / note["workers"])
    text = (
        f"The full comparison ({note['arguments']}: {note['runs']} runs) would take about "
        f"{note['seconds_from_empty'] / 60:.1f} min of training here from an empty {runs_dir}: "
        f"{rounds} rounds of {note['workers']} runs at a time, {note['seconds_per_run']:.0f} s "
        f"a run ({note['seconds_per_run_source']})."
    )
    if note["missing_runs"] == 0:
        return text + f" All of its runs are in {runs_dir}: it would train nothing."
    return text + (
        f" {note['missing_runs']} of its runs are not in {runs_dir} yet: about "
        f"{note['seconds_for_missing'] / 60:.1f} min."
    )


def _heading(number: int, text: str) -> None:
    print(f"\n{'=' * 78}\n{number}. {text}\n{'=' * 78}", flush=True)


def _load_note() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return f"{os.cpu_count()} CPUs"
    return f"{os.cpu_count()} CPUs, load average {one:.1f} (1 min) / {five:.1f} (5 min)"


def build_parser() -> argparse.ArgumentParser:
    from sphereviz.sweep import DEFAULT_RUNS, MNIST_DIMS, SEEDS

    parser = argparse.ArgumentParser(
        prog="sphereviz demo",
        description="The main job on this machine's CPU: the target-logit table, the bounds on m, "
        "the MNIST runs (trained or reused; 5 by default, 30 with --seeds "
        f"{' '.join(map(str, SEEDS))} --dims {' '.join(map(str, MNIST_DIMS))}), their figures "
        "and a summary table.",
    )
    parser.add_argument(
        "--runs", type=Path, default=DEFAULT_RUNS, help=f"run folders ({DEFAULT_RUNS})"
    )
    parser.add_argument("--out", type=Path, default=DEMO_OUT, help=f"figure folder ({DEMO_OUT})")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=list(DEMO_SEEDS), metavar="SEED",
        help=f"seeds of every configuration ({' '.join(map(str, DEMO_SEEDS))}; the full "
        f"comparison: {' '.join(map(str, SEEDS))})",
    )  # fmt: skip
    parser.add_argument(
        "--dims", type=int, nargs="+", default=list(DEMO_DIMS), choices=MNIST_DIMS, metavar="DIM",
        help=f"feature dimensions, from {' '.join(map(str, MNIST_DIMS))} "
        f"({' '.join(map(str, DEMO_DIMS))}; the full comparison: "
        f"{' '.join(map(str, MNIST_DIMS))})",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="short runs (seconds each), for tests")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--json", action="store_true", help="print a JSON summary last")
    return parser


def _command(args: argparse.Namespace) -> str:
    """The ``sphereviz demo`` command that made the figures (for their captions)."""
    from sphereviz.sweep import DEFAULT_RUNS

    words = ["sphereviz", "demo"]
    if tuple(args.seeds) != DEMO_SEEDS:
        words += ["--seeds", *map(str, args.seeds)]
    if tuple(args.dims) != DEMO_DIMS:
        words += ["--dims", *map(str, args.dims)]
    if args.runs != DEFAULT_RUNS:
        words += ["--runs", str(args.runs)]
    if args.out != DEMO_OUT:
        words += ["--out", str(args.out)]
    if args.quick:
        words.append("--quick")
    return " ".join(words)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    import matplotlib.pyplot as plt

    from sphereviz import bounds, figures, sweep

    plt.switch_backend("Agg")  # the demo writes figure files; it never opens a window

    start = time.perf_counter()
    progress = False if args.no_progress else None

    _heading(1, "Target logit f_y for a unit feature at angle θ to its class weight")
    logit_rows = target_logit_table()
    print(format_table(logit_rows))

    _heading(2, "Lower bounds on m (SphereFace Properties 2 and 3), derived with sympy")
    bounds_code = bounds.main([])
    bounds_result = bounds.summary()

    recipe = "quick runs" if args.quick else "the mnist-demo preset"
    seeds, dims = tuple(args.seeds), tuple(args.dims)
    specs = demo_run_specs(args.quick, seeds, dims)
    dims_text = ", ".join(f"{dim}-D" for dim in dims)
    seeds_text = f"seed{'s' if len(seeds) > 1 else ''} {' '.join(map(str, seeds))}"
    _heading(
        3,
        f"MNIST: {len(sweep.MNIST_LOSSES)} losses × ({dims_text}) features × {seeds_text}: "
        f"{len(specs)} runs of {recipe}, in {args.runs}",
    )
    print(f"device: {_device_note()}; {_load_note()}", flush=True)
    try:
        prepared = sweep.ensure_runs(specs, args.runs, progress=progress)
    except (TypeError, ValueError, FileNotFoundError) as error:
        print(f"sphereviz demo: error: {error}", file=sys.stderr)
        return 2
    full = full_comparison_note(prepared, args.runs, args.quick)
    print(f"\n{format_full_comparison_note(full, args.runs)}", flush=True)

    _heading(4, f"Figures → {args.out}")
    records = figures.generate_figures(
        args.out, runs_dir=args.runs, quick=args.quick, mnist_runs=prepared, progress=progress,
        command=_command(args),
    )  # fmt: skip
    print(f"{len(records)} figures; gallery: {args.out / 'index.html'}")

    _heading(5, "Summary: test accuracy and the angular geometry of the test features")
    rows = summary_rows(prepared)
    print(format_summary(rows))
    table = seed_statistics(rows)
    if len(seeds) > 1:
        print(f"\nmean ± std over seeds {', '.join(map(str, seeds))}:\n")
    else:
        print(f"\none seed ({seeds[0]}), so no spread; --seeds 0 1 2 gives mean ± std:\n")
    print(format_seed_statistics(table))
    print(
        "\nmean ∠ own W: mean angle between a test feature and its class weight; median "
        "same-class pair: median angle between two test features of one class; pair EER: equal "
        "error rate of 'same class ⇔ angle < t' over the pairs; AFS: Angular Fisher Score "
        "(lower: tighter). λ schedule: margin-biting (λ reaches 0.1 at half the run; "
        "`sphereviz margin --m 4 --lambda 0.1` gives its effective m)."
    )
    _print_warnings(rows)
    seconds = time.perf_counter() - start
    print(f"\nfinished in {seconds:.1f} s ({_load_note()})")
    if args.json:
        print_json_summary(
            {
                "target_logits": logit_rows,
                "bounds": {**bounds_result, "numeric_check_agrees": bounds_code == 0},
                "runs": rows,
                "configurations": table,
                "full_comparison": full,
                "figures": [r.name for r in records],
                "seconds": round(seconds, 3),
            }
        )
    return 0 if bounds_code == 0 else 1


def _parse_args(argv: list[str] | None):
    """The command line, each --seeds and --dims value given once and the seeds ≥ 0."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("seeds", "dims"):
        values = getattr(args, name)
        if len(set(values)) != len(values):
            parser.error(f"--{name} {' '.join(map(str, values))}: give each value once")
    if min(args.seeds) < 0:
        parser.error(f"--seeds {' '.join(map(str, args.seeds))}: seeds are ≥ 0")
    return args


def _print_warnings(rows: list[dict]) -> None:
    """Each distinct warning of the runs once, with how many runs gave it."""
    warned: dict[str, list[str]] = {}
    for row in rows:
        for message in row["warnings"]:
            warned.setdefault(message, []).append(row["run"])
    for message, names in warned.items():
        print(f"warning: {len(names)} of {len(rows)} runs: {message}")


def _device_note() -> str:
    """The device, and on a CPU the threads and the instruction set of torch's kernels: AVX2
    and AVX-512 kernels round differently, and over a run's steps that moves its numbers in
    the last digits."""
    from sphereviz.devices import require_device

    device = require_device("auto")
    if device.type != "cpu":
        return str(device)
    kernels = torch.backends.cpu.get_cpu_capability()
    return f"{device} ({kernels} kernels), {torch.get_num_threads()} threads"


if __name__ == "__main__":
    raise SystemExit(main())
