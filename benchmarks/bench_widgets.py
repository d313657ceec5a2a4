"""Speed of one margin-explorer update: recompute the regions, redraw both panels, render SVG.

This is what happens on every step of a slider in the classroom, so it has to feel live.
Target (benchmark 5): one update ≤ 100 ms median. Rows, measured in one run:

- baseline: the naive widget update, a fresh pyplot figure per step, ``draw_target_curve``
  and ``draw_regions`` with a legend, saved as PNG at 80 dpi, figure closed;
- the explorer itself (``widgets.margin_explorer``), one row per control swept over its
  range so that every step is a real change: what a slider step costs end to end;
- the phases of one A-Softmax update (compute, draw, SVG render; PNG for comparison).

``value`` is the median wall time; ``details`` hold the 90th percentile and the median CPU
time of this process, the steadier number when other work shares the machine.
Run: ``python benchmarks/bench_widgets.py [--repeats N] [--json]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from common import Target, make_row, print_rows  # noqa: E402

from sphereviz import plots, widgets  # noqa: E402

BENCHMARK = 5
WHAT = "margin explorer update (compute + redraw + render)"
TARGET = Target("value", "<=", 100.0, "ms")
BASELINE = "naive: new pyplot figure + legend + PNG per step"


def _timed(calls: list[Callable[[], object]]) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of each call, in order."""
    wall, cpu = [], []
    for call in calls:
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        call()
        wall.append((time.perf_counter() - wall_start) * 1000)
        cpu.append((time.process_time() - cpu_start) * 1000)
    return wall, cpu


def _row(variant: str, wall: list[float], cpu: list[float], baseline: float | None, **kw) -> dict:
    ordered = sorted(wall)
    details = {
        "p90_ms": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 2),
        "median_cpu_ms": round(statistics.median(cpu), 2),
    }
    return make_row(
        BENCHMARK, WHAT, variant, wall, "ms", baseline=baseline,
        baseline_variant=None if baseline is None else BASELINE, details=details, **kw,
    )  # fmt: skip


def _setter(explorer: widgets.MarginExplorer, control: str, value) -> Callable[[], None]:
    def call() -> None:
        explorer.controls[control].value = value

    return call


def _naive_update(m: int) -> None:
    regions = plots.regions_for("a-softmax", m)
    fig, (target_ax, regions_ax) = plt.subplots(1, 2, figsize=(8.0, 3.6))
    plots.draw_target_curve(target_ax, "a-softmax", m)
    plots.draw_regions(regions_ax, regions)
    widgets.figure_png(fig)
    plt.close(fig)


def run(repeats: int = 3) -> list[dict]:
    """Rows in the schema of ``benchmarks/common.py`` (median wall ms per update)."""
    steps = list(range(1, 9))
    _naive_update(4)  # warm caches (fonts, the torch import behind ψ)
    naive_wall, naive_cpu = _timed([lambda m=m: _naive_update(m) for m in steps * repeats])
    baseline = statistics.median(naive_wall)
    rows = [_row(BASELINE, naive_wall, naive_cpu, None)]

    cases = [
        ("A-Softmax, 2 classes: m = 1…8", "a-softmax", 2, "m", steps),
        ("A-Softmax, 6 classes: m = 1…8", "a-softmax", 6, "m", steps),
        ("CosFace, 2 classes: m = 0.05…0.8", "cosface", 2, "m_cosface",
         [0.05 * k for k in range(1, 17)]),
        ("A-Softmax m = 4: θ₁₂ = 10…180°", "a-softmax", 2, "theta12",
         [10.0 * k for k in range(1, 19)]),
        ("softmax, 2 classes: ‖W₁‖ = 0.5…3", "softmax", 2, "weight_norm",
         [0.5 + 0.25 * k for k in range(11)]),
    ]  # fmt: skip
    for variant, loss, num_classes, control, values in cases:
        explorer = widgets.margin_explorer(loss=loss, num_classes=num_classes)
        calls = [_setter(explorer, control, value) for _ in range(repeats) for value in values]
        rows.append(_row(variant, *_timed(calls), baseline, targets=(TARGET,)))

    explorer = widgets.margin_explorer()
    phases = {
        "phase: compute regions": explorer.compute,
        "phase: draw target + regions (in place)": lambda: (
            plots.clear_drawing(explorer.target_ax),
            plots.clear_drawing(explorer.regions_ax),
            plots.draw_target_curve(explorer.target_ax, "a-softmax", 4, legend=False),
            plots.draw_regions(explorer.regions_ax, explorer.regions, annotate=False),
        ),
        "phase: render SVG (what the explorer shows)": lambda: widgets.figure_svg(explorer.figure),
        "phase: render PNG 80 dpi (alternative)": lambda: widgets.figure_png(explorer.figure),
    }
    for variant, call in phases.items():
        rows.append(_row(variant, *_timed([call] * (8 * repeats)), None))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="passes over each control range")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    result = run(args.repeats)
    print_rows(result, as_json=args.json)
    if not args.json:
        for row in result:
            print(f"  {row['variant']}: median CPU {row['details']['median_cpu_ms']} ms")
