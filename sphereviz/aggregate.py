"""Mean ± standard deviation over seeds: how every experiment summarises its configurations.

A configuration trained with several seeds is reported by the mean and the sample standard
deviation of each of its numbers over the seeds,

    x̄ = (1/n) Σᵢ xᵢ,    s = √( Σᵢ (xᵢ − x̄)² / (n − 1) ),

and s is undefined (NaN) for a single seed, which is then shown as the mean alone. A
difference between two configurations smaller than their spread is not a finding. The demo
(:func:`sphereviz.demo.seed_statistics`), the open-set experiment
(:func:`sphereviz.openset.summarise`) and the benchmarks group their per-run rows with
:func:`over_seeds` and print the cells with :func:`mean_std_text`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["mean_std", "mean_std_text", "over_seeds"]


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """``(x̄, s)`` of ``values``: the mean and the sample standard deviation (ddof = 1).

    s is NaN for a single value (one seed has no spread); no values is an error.
    """
    values = np.asarray(list(values), dtype=float)
    if values.size == 0:
        raise ValueError("mean_std needs at least one value; got none")
    spread = float(values.std(ddof=1)) if values.size > 1 else math.nan
    return float(values.mean()), spread


def over_seeds(rows: Sequence[dict], by: Sequence[str], metrics: Sequence[str]) -> list[dict]:
    """One entry per configuration of ``rows``, in the order the configurations first appear.

    Rows with equal values of the ``by`` fields are one configuration (one row per seed, with
    a ``"seed"`` field). Its entry holds those ``by`` fields, ``"seeds"`` (the sorted seeds)
    and, for each name in ``metrics``, ``<name>_mean`` and ``<name>_std``
    (:func:`mean_std`).
    """
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[key] for key in by), []).append(row)
    table = []
    for values, members in groups.items():
        entry = dict(zip(by, values, strict=True))
        entry["seeds"] = sorted(row["seed"] for row in members)
        for name in metrics:
            entry[f"{name}_mean"], entry[f"{name}_std"] = mean_std(row[name] for row in members)
        table.append(entry)
    return table


def mean_std_text(entry: dict, name: str, digits: int, scale: float = 1.0) -> str:
    """``"x̄ ± s"`` of metric ``name`` of an :func:`over_seeds` entry, each times ``scale`` with
    ``digits`` decimals; the mean alone when s is NaN (one seed)."""
    mean, spread = scale * entry[f"{name}_mean"], scale * entry[f"{name}_std"]
    if math.isnan(spread):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"
