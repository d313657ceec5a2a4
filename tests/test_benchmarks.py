"""The benchmark harness's pure parts: the row schema, ratios and targets, tables, JSON files.

Nothing here times anything (speed is measured by ``make bench``, never asserted in tests):
the benchmarks themselves are replaced by stubs that return fixed rows.
"""

from __future__ import annotations

import json
import sys

import pytest
from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

import bench_notebooks  # noqa: E402
import common  # noqa: E402
import run as harness  # noqa: E402
from common import Target, make_row  # noqa: E402


def test_row_has_the_schema_and_the_median_of_its_samples():
    row = make_row(1, "head", "ours", [0.3, 0.1, 0.2], "s", baseline=0.4, baseline_variant="floor")
    assert tuple(row) == common.ROW_KEYS
    assert row["value"] == pytest.approx(0.2)
    assert row["repeats"] == 3
    assert row["samples"] == [0.3, 0.1, 0.2]
    assert row["ratio"] == pytest.approx(0.5)  # 0.2 / 0.4
    assert row["met"] is None  # no target
    json.dumps(row)  # JSON-ready


def test_an_explicit_value_overrides_the_median():
    row = make_row(4, "prepare", "cold", [5.0], "img/s", value=2600.0, baseline=1300.0)
    assert row["value"] == 2600.0
    assert row["ratio"] == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("samples", "baseline", "targets", "met"),
    [
        ([1.2], 1.0, [Target("ratio", "<=", 1.3)], True),
        ([1.4], 1.0, [Target("ratio", "<=", 1.3)], False),
        ([50.0], 60.0, [Target("value", "<=", 60, "s"), Target("ratio", "<", 1.0)], True),
        ([55.0], 50.0, [Target("value", "<=", 60, "s"), Target("ratio", "<", 1.0)], False),
        ([50.0], None, [Target("value", "<=", 60, "s"), Target("ratio", "<", 1.0)], None),
        ([16000.0], 3000.0, [Target("value", ">=", 15000), Target("ratio", ">=", 4)], True),
        ([16000.0], 5000.0, [Target("value", ">=", 15000), Target("ratio", ">=", 4)], False),
        ([], 1.0, [Target("ratio", "<=", 1.3)], None),
    ],
)
def test_met_needs_every_target_and_is_none_when_unmeasured(samples, baseline, targets, met):
    row = make_row(1, "w", "v", samples, "s", baseline=baseline, targets=targets)
    assert row["met"] is met


def test_target_text():
    assert Target("ratio", "<=", 1.3).describe() == "≤ 1.3× baseline"
    assert Target("value", ">=", 15000, "img/s").describe() == "≥ 15000 img/s"
    row = make_row(2, "w", "v", [1.0], "s", targets=[Target("value", "<=", 60, "s")])
    assert row["target"] == "≤ 60 s"


@pytest.mark.parametrize(
    "arguments",
    [("speed", "<=", 1.0), ("ratio", "=<", 1.0), ("value", "<=", float("nan"))],
)
def test_a_malformed_target_is_refused(arguments):
    with pytest.raises(ValueError, match="target"):
        Target(*arguments)


def test_ratio_without_a_usable_baseline_is_none():
    assert common.ratio(1.0, None) is None
    assert common.ratio(None, 1.0) is None
    assert common.ratio(1.0, 0.0) is None
    assert common.ratio(3.0, 4.0) == pytest.approx(0.75)


def test_values_keep_four_significant_digits_and_their_integer_part():
    row = make_row(1, "w", "v", [123456.7, 12.34567, 0.000123456], "x")
    assert row["samples"] == [123457.0, 12.35, 0.0001235]


def test_a_skipped_row_says_why_and_judges_nothing():
    row = common.skipped_row(3, "SFNet", "no CUDA", [Target("value", ">=", 15000)])
    assert row["note"] == "skipped: no CUDA"
    assert row["value"] is None and row["met"] is None
    assert "skipped: no CUDA" in common.format_table([row])


def test_time_calls_excludes_warmup_and_interleaves():
    order = []
    calls = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    times = common.time_calls(calls, repeats=3, warmup=2)
    assert {name: len(values) for name, values in times.items()} == {"a": 3, "b": 3}
    assert order == ["a", "a", "b", "b"] + ["a", "b"] * 3


def _rows():
    within = [Target("ratio", "<=", 1.3)]
    return [
        make_row(1, "head", "floor", [0.1], "ms", baseline=0.1, baseline_variant="floor"),
        make_row(1, "head", "a | b", [0.12], "ms", baseline=0.1, targets=within),
        common.skipped_row(3, "SFNet", "no CUDA"),
    ]


def test_plain_table_has_a_line_per_row():
    lines = common.format_table(_rows()).splitlines()
    assert len(lines) == 2 + 3  # header, rule, rows
    assert "1.20×" in lines[3] and "yes" in lines[3]
    # the second row of benchmark 1 does not repeat its number and "what"
    assert lines[2].startswith("1  head") and not lines[3].lstrip().startswith(("1", "head"))
    assert lines[4].startswith("3  SFNet")


def test_markdown_table_has_equal_columns_and_escapes_pipes():
    lines = common.markdown_table(_rows()).splitlines()
    assert lines[1].startswith("|---|")
    unescaped_pipes = [line.replace("\\|", "").count("|") for line in lines]
    assert len(set(unescaped_pipes)) == 1
    assert "a \\| b" in lines[3]


def test_report_is_written_as_latest_and_timestamped_copy(tmp_path):
    report = {"machine": {"date": "2026-11-28T03:04:05+00:00"}, "rows": _rows()}
    latest, stamped = common.write_report(report, tmp_path)
    assert latest == tmp_path / "latest.json"
    assert stamped == tmp_path / "bench-20261128T030405Z.json"
    assert json.loads(latest.read_text()) == json.loads(stamped.read_text())
    assert json.loads(latest.read_text())["rows"][1]["variant"] == "a | b"


def test_machine_info_names_the_machine():
    info = common.machine_info()
    for key in ("cpu", "cores", "ram_gib", "device", "torch", "python", "date", "git_commit"):
        assert key in info
    assert info["cores"] >= 1
    assert set(info["environment"]) == set(common.THREAD_VARIABLES)


def test_only_selects_benchmarks_by_number():
    assert harness.parse_only("4,1") == [1, 4]
    assert harness.parse_only(None) == sorted(harness.BENCHMARKS)
    for bad in ("0", "1,x", ",", "99"):
        with pytest.raises(ValueError, match="--only"):
            harness.parse_only(bad)


def _stub_benchmarks():
    def fine(quick):
        return [make_row(0, "stub", "quick" if quick else "full", [1.0], "s")]

    def broken(quick):
        raise RuntimeError("no data")

    return {1: ("fine", fine), 2: ("broken", broken)}


def test_a_broken_benchmark_gives_an_error_row_and_the_rest_still_run(monkeypatch):
    monkeypatch.setattr(harness, "BENCHMARKS", _stub_benchmarks())
    rows = harness.run_benchmarks([2, 1], quick=True, log=lambda *a, **k: None)
    assert [row["benchmark"] for row in rows] == [2, 1]  # renumbered by the harness
    assert rows[0]["note"] == "error: RuntimeError: no data"
    assert rows[1]["variant"] == "quick"


def test_main_writes_the_report_and_prints_json_last(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(harness, "BENCHMARKS", _stub_benchmarks())
    status = harness.main(["--only", "1,2", "--json", "--out", str(tmp_path)])
    assert status == 1  # benchmark 2 raised
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    written = json.loads((tmp_path / "latest.json").read_text())
    assert printed == written
    assert written["options"] == {"only": [1, 2], "quick": False}
    assert [row["variant"] for row in written["rows"]] == ["full", "-"]
    assert len(list(tmp_path.glob("bench-*.json"))) == 1


def test_a_notebook_is_run_by_its_own_test_when_that_takes_only_tmp_path():
    def test_notebook_03_mnist(tmp_path):
        return ("test", tmp_path)

    def test_notebook_04_faces(tmp_path, lfw_root):
        return ("test needing more fixtures", tmp_path)

    def execute_notebook(name, output_dir):
        return ("execute", name, output_dir)

    suite = type(sys)("fake_test_notebooks")
    suite.__dict__.update(
        test_notebook_03_mnist=test_notebook_03_mnist,
        test_notebook_04_faces=test_notebook_04_faces,
        execute_notebook=execute_notebook,
    )
    assert bench_notebooks.notebook_runner(suite, "03_mnist.ipynb") is test_notebook_03_mnist
    fallback = bench_notebooks.notebook_runner(suite, "04_faces.ipynb")
    assert fallback("dir") == ("execute", "04_faces.ipynb", "dir")
    assert bench_notebooks.notebook_runner(suite, "07_new.ipynb")("d") == (
        "execute",
        "07_new.ipynb",
        "d",
    )
