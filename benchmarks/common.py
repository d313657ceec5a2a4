"""What every benchmark shares: one row schema, targets, timing, machine facts, tables, JSON.

A row is a plain dict (JSON-ready) with these keys (:data:`ROW_KEYS`):

==================  ========================================================================
``benchmark``       the benchmark's number in the performance table (1 … 7)
``what``            what is measured, e.g. "A-Softmax head fwd+bwd, N=256 d=512 C=10572 (cpu)"
``variant``         which implementation or case
``value``           the headline number in ``unit``: the median over ``samples`` unless a
                    benchmark derives it (e.g. images/s from the median seconds)
``unit``            "ms", "s", "img/s", …
``repeats``         how many samples the median is over
``samples``         every measured value, in ``unit`` (warm-up excluded)
``baseline``        the baseline's value, measured in the same run, in the same unit
``baseline_variant`` which row is the baseline
``ratio``           value / baseline (a time ratio < 1 or a throughput ratio > 1 is faster)
``target``          the goal in words ("≤ 1.3× baseline; ≤ 60 s"), None when there is none
``met``             True / False, None when there is no target or no value (skipped)
``load``            the 1-minute load average when the row was measured (2 shared cores)
``note``            e.g. "skipped: no CUDA"
``details``         anything else a benchmark reports (CPU seconds, p90, accuracy, …)
==================  ========================================================================
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_lfw() -> Path:
    """The LFW folder the face benchmarks read: ``sphereviz.data.lfw.default_lfw_root()``
    ($SPHEREVIZ_LFW, the ``sphereviz fetch-lfw`` folder, ../shared/data/lfw beside the checkout);
    when there is none, the folder it would be (reported by a benchmark as not found)."""
    from sphereviz.data.lfw import LfwNotFoundError, default_lfw_root, fetch_lfw_default_dir

    try:
        return default_lfw_root()
    except LfwNotFoundError:
        return Path(os.environ.get("SPHEREVIZ_LFW") or fetch_lfw_default_dir())


ROW_KEYS = (
    "benchmark",
    "what",
    "variant",
    "value",
    "unit",
    "repeats",
    "samples",
    "baseline",
    "baseline_variant",
    "ratio",
    "target",
    "met",
    "load",
    "note",
    "details",
)

#: Environment variables that change how torch's CPU threads behave; recorded in each report.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MKL_NUM_THREADS")

_COMPARISONS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "<=": ("≤", lambda a, b: a <= b),
    "<": ("<", lambda a, b: a < b),
    ">=": ("≥", lambda a, b: a >= b),
    ">": (">", lambda a, b: a > b),
}


@dataclass(frozen=True)
class Target:
    """A goal: the row's ``quantity`` ("value" or "ratio") compared with ``bound`` by ``op``.

    ``Target("ratio", "<=", 1.3)`` reads "≤ 1.3× baseline"; ``Target("value", "<=", 60, "s")``
    reads "≤ 60 s".
    """

    quantity: str
    op: str
    bound: float
    unit: str = ""

    def __post_init__(self) -> None:
        if self.quantity not in ("value", "ratio"):
            raise ValueError(f"target quantity must be 'value' or 'ratio', got {self.quantity!r}")
        if self.op not in _COMPARISONS:
            raise ValueError(f"target op must be one of {list(_COMPARISONS)}, got {self.op!r}")
        if not math.isfinite(self.bound):
            raise ValueError(f"target bound must be a finite number, got {self.bound}")

    def holds(self, value: float | None, ratio: float | None) -> bool | None:
        """Whether the goal is met; None when the quantity was not measured."""
        measured = value if self.quantity == "value" else ratio
        if measured is None or not math.isfinite(measured):
            return None
        return bool(_COMPARISONS[self.op][1](measured, self.bound))

    def describe(self) -> str:
        symbol = _COMPARISONS[self.op][0]
        if self.quantity == "ratio":
            return f"{symbol} {self.bound:g}× baseline"
        return f"{symbol} {self.bound:g} {self.unit}".rstrip()


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline; None when either is missing or the baseline is zero."""
    if value is None or baseline is None or baseline == 0:
        return None
    return value / baseline


def median(samples: Sequence[float]) -> float | None:
    return statistics.median(samples) if samples else None


def make_row(
    benchmark: int,
    what: str,
    variant: str,
    samples: Sequence[float] | None,
    unit: str,
    *,
    value: float | None = None,
    baseline: float | None = None,
    baseline_variant: str | None = None,
    targets: Iterable[Target] = (),
    note: str | None = None,
    details: dict | None = None,
) -> dict:
    """One result row (see the module docstring); ``value`` defaults to the median of samples.

    ``met`` is True when every target holds, False when one fails, None when there is no
    target or nothing was measured.
    """
    samples = [float(s) for s in samples or ()]
    if value is None:
        value = median(samples)
    targets = tuple(targets)
    row_ratio = ratio(value, baseline)
    verdicts = [target.holds(value, row_ratio) for target in targets]
    met = None if not verdicts or None in verdicts else all(verdicts)
    return {
        "benchmark": int(benchmark),
        "what": what,
        "variant": variant,
        "value": _rounded(value),
        "unit": unit,
        "repeats": len(samples),
        "samples": [_rounded(s) for s in samples],
        "baseline": _rounded(baseline),
        "baseline_variant": baseline_variant,
        "ratio": _rounded(row_ratio),
        "target": "; ".join(t.describe() for t in targets) or None,
        "met": met,
        "load": round(os.getloadavg()[0], 2),
        "note": note,
        "details": details or {},
    }


def skipped_row(benchmark: int, what: str, reason: str, targets: Iterable[Target] = ()) -> dict:
    """A row for a benchmark that could not run here (no CUDA, no LFW, …): ``met`` is None."""
    return make_row(benchmark, what, "-", None, "", targets=targets, note=f"skipped: {reason}")


def _rounded(number: float | None, digits: int = 4) -> float | None:
    """Round to ``digits`` significant digits, or to a whole number when that keeps more."""
    if number is None or not math.isfinite(number) or number == 0:
        return number
    return round(number, max(0, digits - 1 - math.floor(math.log10(abs(number)))))


# ----- timing ---------------------------------------------------------------------------------


def time_calls(
    calls: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    synchronize: Callable[[], None] | None = None,
    cpu_seconds: dict[str, list[float]] | None = None,
) -> dict[str, list[float]]:
    """Wall seconds of each call, ``repeats`` times, after ``warmup`` untimed calls each.

    The calls are interleaved (a, b, c, a, b, c, …) so that load from other processes falls
    on all of them alike; ``synchronize`` (e.g. ``torch.cuda.synchronize``) runs before each
    clock read so asynchronous work is counted. When given, ``cpu_seconds`` receives this
    process's CPU seconds per call (all its threads), which waiting for a busy CPU does not
    inflate.
    """
    sync = synchronize or (lambda: None)
    for call in calls.values():
        for _ in range(warmup):
            call()
    sync()
    times: dict[str, list[float]] = {name: [] for name in calls}
    cpu = cpu_seconds if cpu_seconds is not None else {}
    for name in calls:
        cpu[name] = []
    for _ in range(repeats):
        for name, call in calls.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            call()
            sync()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu_start)
    return times


def load_average() -> tuple[float, float, float]:
    """The 1-, 5- and 15-minute load averages (runnable processes; 2 means both cores busy)."""
    return tuple(round(x, 2) for x in os.getloadavg())


# ----- the machine ----------------------------------------------------------------------------


def machine_info() -> dict:
    """CPU model, cores, RAM, device, torch/python versions, date, git commit, thread env."""
    import torch

    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gib": _ram_gib(),
        "torch_threads": torch.get_num_threads(),
        "device": "cpu",
        "cuda_device": None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "load_at_start": load_average(),
        "environment": {name: os.environ.get(name) for name in THREAD_VARIABLES},
    }
    if torch.cuda.is_available():
        info["device"] = "cuda"
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


# ----- tables and files -----------------------------------------------------------------------

_COLUMNS = ("#", "what", "variant", "value", "baseline", "ratio", "target", "met", "load")


def _cells(row: dict) -> list[str]:
    unit = f" {row['unit']}" if row["unit"] else ""
    value = "-" if row["value"] is None else f"{_fmt(row['value'])}{unit}"
    baseline = "-" if row["baseline"] is None else f"{_fmt(row['baseline'])}{unit}"
    met = {True: "yes", False: "NO", None: "-"}[row["met"]]
    if row["note"]:
        value = row["note"] if row["value"] is None else f"{value} ({row['note']})"
    return [
        str(row["benchmark"]),
        row["what"],
        row["variant"],
        value,
        baseline,
        "-" if row["ratio"] is None else f"{row['ratio']:.2f}×",
        row["target"] or "-",
        met,
        f"{row['load']:.1f}",
    ]


def _fmt(number: float) -> str:
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    if abs(number) >= 10:
        return f"{number:.1f}"
    return f"{number:.3g}"


def _grouped_cells(rows: Sequence[dict]) -> list[list[str]]:
    """Each row's cells, with # and "what" left blank where they repeat the row above."""
    lines, previous = [], None
    for row in rows:
        cells = _cells(row)
        if (row["benchmark"], row["what"]) == previous:
            cells[0] = cells[1] = ""
        previous = (row["benchmark"], row["what"])
        lines.append(cells)
    return lines


def format_table(rows: Sequence[dict]) -> str:
    """A plain-text table, one line per row, columns padded to their widest cell."""
    cells = [list(_COLUMNS)] + _grouped_cells(rows)
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(rows: Sequence[dict]) -> str:
    """The same table as GitHub Markdown (for the README's Performance section)."""

    def escape(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(escape(c) for c in cells) + " |" for cells in _grouped_cells(rows)]
    return "\n".join(lines)


def write_report(report: dict, directory: Path) -> tuple[Path, Path]:
    """Write ``report`` to ``directory/latest.json`` and a timestamped copy; return both paths.

    The copy is named after the report's date (``bench-YYYYmmddTHHMMSSZ.json``).
    """
    from sphereviz.fileio import write_json_atomic

    date = dt.datetime.fromisoformat(report["machine"]["date"])
    stamped = directory / f"bench-{date.astimezone(dt.timezone.utc):%Y%m%dT%H%M%SZ}.json"
    latest = directory / "latest.json"
    for path in (stamped, latest):
        write_json_atomic(path, report)
    return latest, stamped


def print_rows(rows: Sequence[dict], as_json: bool = False) -> None:
    """What a bench module's ``main`` prints: the table, or the rows as JSON."""
    if as_json:
        print(json.dumps(list(rows), indent=2))
    else:
        print(format_table(rows))
