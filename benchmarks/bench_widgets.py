"""Speed of one margin-explorer update: recompute the regions, redraw both panels, render SVG.

This is what happens on every step of the ``m`` slider in the classroom, so it has to feel
live: target ≤ 100 ms median on a laptop CPU. Each row varies one control over its range
(so every step is a real change) and reports the median and 90th percentile wall time per
update, plus the median CPU time of this process (wall time includes waiting for the CPU
when other work shares the machine; CPU time does not). The phases of one update (compute,
draw, render) are timed separately for the A-Softmax row, with PNG rendering for comparison.

Run: ``python benchmarks/bench_widgets.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

from sphereviz import plots, widgets  # noqa: E402

TARGET_MS = 100.0


def _time_calls(calls: list[Callable[[], None]]) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for call in calls:
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        call()
        wall.append((time.perf_counter() - wall_start) * 1000)
        cpu.append((time.process_time() - cpu_start) * 1000)
    return wall, cpu


def _row(name: str, wall: list[float], cpu: list[float]) -> dict:
    ordered = sorted(wall)
    return {
        "case": name,
        "updates": len(wall),
        "median_ms": round(statistics.median(wall), 1),
        "p90_ms": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1),
        "median_cpu_ms": round(statistics.median(cpu), 1),
        "target_ms": TARGET_MS,
    }


def _setter(explorer: widgets.MarginExplorer, control: str, value) -> Callable[[], None]:
    def call() -> None:
        explorer.controls[control].value = value

    return call


def run(repeats: int = 3) -> list[dict]:
    """One row per case: median / p90 wall ms and median CPU ms of an explorer update."""
    cosface_margins = [0.05 * k for k in range(1, 17)]
    angles = [10.0 * k for k in range(1, 19)]
    norms = [0.5 + 0.25 * k for k in range(11)]
    cases = [
        ("A-Softmax, 2 classes: m = 1…8", "a-softmax", 2, "m", list(range(1, 9))),
        ("A-Softmax, 6 classes: m = 1…8", "a-softmax", 6, "m", list(range(1, 9))),
        ("CosFace, 2 classes: m = 0.05…0.8", "cosface", 2, "m_cosface", cosface_margins),
        ("A-Softmax, m = 4: θ₁₂ = 10…180°", "a-softmax", 2, "theta12", angles),
        ("softmax, 2 classes: ‖W₁‖ = 0.5…3", "softmax", 2, "weight_norm", norms),
    ]
    rows = []
    for name, loss, num_classes, control, values in cases:
        explorer = widgets.margin_explorer(loss=loss, num_classes=num_classes)
        explorer.update()  # warm caches (fonts, torch import for ψ)
        calls = [_setter(explorer, control, value) for _ in range(repeats) for value in values]
        rows.append(_row(name, *_time_calls(calls)))

    explorer = widgets.margin_explorer()
    phases = {
        "  phase: compute regions": explorer.compute,
        "  phase: draw target + regions": lambda: (
            plots.draw_target_curve(explorer.target_ax, explorer.loss, explorer.m, legend=False),
            plots.draw_regions(explorer.regions_ax, explorer.regions, annotate=False),
        ),
        "  phase: render SVG (used)": lambda: widgets.figure_svg(explorer.figure),
        "  phase: render PNG (alternative)": lambda: widgets.figure_png(explorer.figure),
    }
    for name, call in phases.items():
        rows.append(_row(name, *_time_calls([call] * (8 * repeats))))
    return rows


def _print_table(rows: list[dict]) -> None:
    header = f"{'case':<40} {'updates':>7} {'median ms':>10} {'p90 ms':>8} {'CPU ms':>7}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['case']:<40} {row['updates']:>7} {row['median_ms']:>10.1f} "
            f"{row['p90_ms']:>8.1f} {row['median_cpu_ms']:>7.1f}"
        )
    print(f"target: one update ≤ {TARGET_MS:.0f} ms median")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="passes over each control range")
    _print_table(run(parser.parse_args().repeats))
