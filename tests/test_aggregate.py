"""Mean ± std over seeds: against the standard library's statistics, grouping and printing."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from sphereviz.aggregate import mean_std, mean_std_text, over_seeds
from sphereviz.fileio import print_json_summary


def test_mean_std_is_the_sample_standard_deviation():
    values = [0.91, 0.97, 0.94, 0.88]
    mean, spread = mean_std(values)
    assert mean == pytest.approx(statistics.fmean(values))
    assert spread == pytest.approx(statistics.stdev(values))  # ddof = 1


def test_one_value_has_no_spread_and_none_is_an_error():
    mean, spread = mean_std([0.5])
    assert mean == 0.5 and math.isnan(spread)
    with pytest.raises(ValueError, match="at least one value"):
        mean_std([])


def test_over_seeds_groups_by_configuration_in_order_of_appearance():
    rows = [
        {"loss": "a-softmax", "m": 4, "seed": 1, "acc": 0.9},
        {"loss": "softmax", "m": None, "seed": 0, "acc": 0.7},
        {"loss": "a-softmax", "m": 4, "seed": 0, "acc": 0.8},
        {"loss": "a-softmax", "m": 2, "seed": 0, "acc": 0.6},
    ]
    table = over_seeds(rows, ("loss", "m"), ("acc",))
    assert [(e["loss"], e["m"]) for e in table] == [("a-softmax", 4), ("softmax", None),
                                                    ("a-softmax", 2)]  # fmt: skip
    first = table[0]
    assert first["seeds"] == [0, 1]
    assert first["acc_mean"] == pytest.approx(0.85)
    assert first["acc_std"] == pytest.approx(statistics.stdev([0.9, 0.8]))
    assert math.isnan(table[1]["acc_std"])


def test_text_shows_the_spread_only_where_there_is_one():
    entry = {"acc_mean": 0.8512, "acc_std": 0.0123}
    assert mean_std_text(entry, "acc", 1, scale=100) == "85.1 ± 1.2"
    assert mean_std_text({"acc_mean": 0.8512, "acc_std": math.nan}, "acc", 3) == "0.851"


def test_json_summary_is_strict_json_with_null_for_a_missing_spread(capsys):
    print_json_summary({"table": [{"acc_mean": 0.8, "acc_std": math.nan}], "x": (1.0, math.inf)})
    line = capsys.readouterr().out.strip()
    assert "NaN" not in line and "Infinity" not in line
    parsed = json.loads(line, parse_constant=lambda name: pytest.fail(f"non-JSON {name}"))
    assert parsed == {"table": [{"acc_mean": 0.8, "acc_std": None}], "x": [1.0, None]}
