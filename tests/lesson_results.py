"""What each lesson's ``results`` cell must print in quick mode, checked against independent
truths: the closed-form bound 2 + √3 of Property 2, the chance level of the task, the number of
identities in LFW's six largest folders, the official λ schedule's formula, a PDF's MediaBox.

Each lesson is executed once per test session, and whichever execution runs it calls
:func:`check_results`: ``tests/test_browser.py`` (JupyterLab in Chromium, the notebook saved
from the page) when it is collected, else papermill in ``tests/test_notebooks.py``. Both execute
the same quick-mode notebook, with :data:`TEST_PARAMETERS` and the same output folders
(conftest's ``lesson_outputs``).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import nbformat
import pytest
from conftest import LFW_ROOT, REPO_ROOT

#: Where the executed copy of each notebook goes, whichever execution ran it, for a human to read.
EXECUTED_DIR = REPO_ROOT / "build" / "notebooks"
JOURNAL_WIDTH_INCH = 3.0
#: The parameters, beside ``quick=True``, ``output_dir`` and ``lfw_root``, with which the tests
#: execute each lesson: fewer runs where more only repeat coverage.
TEST_PARAMETERS = {
    "03_mnist_on_the_hypersphere.ipynb": {"losses_2d": ["softmax", "a-softmax"]},
    "04_faces_on_the_sphere.ipynb": {"m_values": [1, 4]},
    "06_figures_for_papers.ipynb": {"journal_column_width_inch": JOURNAL_WIDTH_INCH},
}


def cells_tagged(notebook: nbformat.NotebookNode, tag: str) -> list[nbformat.NotebookNode]:
    """The cells of ``notebook`` that carry the tag ``tag``."""
    return [cell for cell in notebook.cells if tag in cell.get("metadata", {}).get("tags", [])]


def results_of(executed: nbformat.NotebookNode, name: str) -> dict:
    """The JSON that the ``results`` cell of the executed notebook ``name`` printed."""
    (cell,) = cells_tagged(executed, "results")
    text = "".join(
        output.get("text", "")
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stdout"
    )
    assert text.strip(), f"{name}: the results cell printed nothing"
    return json.loads(text)


def largest_lfw_folders(count: int) -> list[str]:
    """The ``count`` LFW people with the most images, counted on disk (ties by name)."""
    folders = [path for path in (LFW_ROOT / "images").iterdir() if path.is_dir()]
    sizes = {folder.name: sum(1 for _ in folder.glob("*.jpg")) for folder in folders}
    return sorted(sorted(sizes, key=lambda name: (-sizes[name], name))[:count])


def _lesson_01_softmax_to_a_softmax(results: dict) -> None:
    # The "write it yourself" cell: plain-torch A-Softmax logits and loss equal make_loss's.
    assert results["write_it_yourself_logits_match"] is True
    assert results["write_it_yourself_loss_matches"] is True
    # m = 4, θ₁ = 80°, θ₂ = 60°: cos(320°) > cos 60° though 320° > 60°; ψ(80°) < cos 60°.
    assert results["counterexample_cos_m_wins"] is (math.cos(math.radians(320)) > 0.5)
    assert results["counterexample_psi_wins"] is False
    # ψ(π) = 1 − 2m for every m (eq. 7), ψ strictly decreasing on [0, π], and the acos-free
    # Chebyshev form equal to ψ.
    assert sorted(results["psi_at_pi"], key=int) == ["1", "2", "3", "4"]
    for m_text, value in results["psi_at_pi"].items():
        assert value == pytest.approx(1 - 2 * int(m_text), abs=1e-9)
    assert all(results["psi_is_decreasing"].values())
    assert max(results["psi_chebyshev_max_error"].values()) < 1e-12
    # At 30° from its class (60° from the other) the loss grows with m: the margin bites.
    losses = [results["a_softmax_loss_at_30deg_by_m"][str(m)] for m in (1, 2, 3, 4)]
    assert losses == sorted(losses) and losses[0] < losses[-1]
    # The widget's readout at its start: the binary margin (m − 1)/(m + 1)·θ₁₂ (54° at m = 4,
    # θ₁₂ = 90°), and the paper's verdict that m = 4 satisfies the criterion there.
    m, theta12 = results["explorer_m"], results["explorer_theta12_deg"]
    assert results["explorer_margin_deg"] == pytest.approx((m - 1) / (m + 1) * theta12, abs=0.5)
    assert results["explorer_criterion_holds"] is (m >= 4)
    assert results["loss_grows_with_m"] is True
    assert set(results["scratch_checked"].values()) == {None}  # exercises 7–8 are left open


def _lesson_02_why_m_is_4(results: dict) -> None:
    assert results["m_min_binary"] == pytest.approx(2 + math.sqrt(3), abs=1e-12)
    assert results["m_min_binary_integer"] == 4
    assert results["m_min_multiclass"] == pytest.approx(3, abs=1e-12)
    assert results["m_min_multiclass_integer"] == 3
    # The dense-grid check finds the criterion switching on at the same m as the algebra.
    assert results["numeric_check_agrees"] is True
    assert results["numeric_first_binary_m"] == pytest.approx(2 + math.sqrt(3), abs=0.05)
    assert results["numeric_first_uniform_m"] == pytest.approx(3, abs=0.05)
    # The paper's worked example: θ₁₂ = 90°, m = 4: 48° < 54° holds; m = 3: 67.5° > 45° fails.
    assert results["criterion_m4_90deg"] is True
    assert results["criterion_m3_90deg"] is False
    assert results["m4_90deg_intra_inter_deg"] == pytest.approx([48.0, 54.0], abs=1e-9)
    assert results["m3_90deg_intra_inter_deg"] == pytest.approx([67.5, 45.0], abs=1e-9)
    # below 2 + √3: no θ₁₂ under m = 3, θ₁₂ ≥ 2π/(m − 1) from 3 on, m = 3 only at 180°
    assert results["criterion_none_below_m3"] is True
    assert results["criterion_from_2pi_over_m_minus_1"] is True
    assert results["criterion_everywhere_from_2_plus_sqrt3"] is True
    assert results["criterion_angles_agree_with_closed_form"] is True
    assert results["criterion_m3_holds_at_deg"] == pytest.approx([180.0], abs=1e-9)


def _lesson_03_mnist_on_the_hypersphere(results: dict) -> None:
    assert results["num_classes"] == 10
    chance = 1 / results["num_classes"]
    configurations = results["configurations"]
    # quick mode: the smallest and largest m only, 300 optimiser steps (the trainer's minimum)
    assert results["m_values"] == [1, 4] and results["total_steps"] >= 300
    assert sorted(configurations) == sorted(
        ["3-D m=1", "3-D m=4", "3-D m=4, official λ", "2-D softmax", "2-D a-softmax"]
    )
    assert results["num_runs"] == len(configurations) * 2
    for entry in configurations.values():
        assert entry["seeds"] == [0, 1]  # quick mode: two seeds, so a standard deviation
        assert 2 * chance < entry["test_accuracy_mean"] <= 1
        assert entry["test_accuracy_std"] >= 0
    assert configurations["3-D m=4"]["test_accuracy_mean"] > 4 * chance
    assert results["own_angle_ratio_m4_m1"] == pytest.approx(
        configurations["3-D m=4"]["mean_angle_to_own_class_deg_mean"]
        / configurations["3-D m=1"]["mean_angle_to_own_class_deg_mean"]
    )
    # The official schedule's λ after the run's steps: max(5, 1000 / (1 + 0.12·steps)).
    official_end = max(5.0, 1000 / (1 + 0.12 * results["total_steps"]))
    assert results["lambda_end"]["official, m = 4"] == pytest.approx(official_end, rel=1e-2)
    # SphereFace2: ten weights on S² are at most δ₁₀ = 66.147° apart (Tammes, Danzer 1963), in
    # 16-D the simplex's arccos(−1/9); no trained set of weights beats that bound.
    sphereface2 = results["sphereface2"]
    assert sphereface2["SphereFace2 3-D"]["tammes_deg"] == pytest.approx(66.1468, abs=1e-3)
    simplex = math.degrees(math.acos(-1 / 9))
    assert sphereface2["SphereFace2 16-D"]["tammes_deg"] == pytest.approx(simplex)
    for entry in sphereface2.values():
        assert entry["seeds"] == [0, 1]
        assert entry["min_weight_angle_deg_mean"] <= entry["tammes_deg"] + 1e-6
        assert 0 < entry["largest_own_cap_deg"] < entry["other_cap_deg"]
    # 16-D SphereFace2 learns the digits (97.6 ± 0.3 % measured over seeds 0, 1 at 300 steps);
    # 3-D stays far below it (54.3 ± 0.4 %): a gap of 40 points against spreads under 1.
    assert sphereface2["SphereFace2 16-D"]["test_accuracy_mean"] > 0.8
    assert (
        sphereface2["SphereFace2 16-D"]["test_accuracy_mean"]
        > sphereface2["SphereFace2 3-D"]["test_accuracy_mean"] + 0.1
    )
    assert results["schedule"].startswith("margin-biting")


def _lesson_04_faces_on_the_sphere(results: dict) -> None:
    assert results["num_identities"] == 6
    assert results["identities"] == largest_lfw_folders(6)
    assert results["crop_shape"] == [112, 96, 3]
    assert results["num_images"] == sum(results["images_per_identity"])
    assert results["embedding_dim"] == 3
    assert sorted(results["runs"], key=int) == ["1", "4"]
    # quick mode: 2 m × 1 seed (a face step costs far more than a digit step), 300 steps each
    assert results["num_runs"] == 2 and results["total_steps"] >= 300
    for run in results["runs"].values():
        assert 1 / 6 < run["accuracy"] <= 1  # above chance on six people
        assert 0 <= run["mean_angle_to_own_class_deg"] <= 180


def _lesson_05_open_set_verification(results: dict) -> None:
    # View 1 is open-set: no test person was a training person.
    assert results["train_people"] and results["view1_test_people"]
    assert set(results["train_people"]).isdisjoint(results["view1_test_people"])
    # A-Softmax at the official floor: λ ends at 5, an effective m of 1.617 (issue 12's table).
    schedule = results["a_softmax_lambda"]
    assert schedule["floor"] == 5.0 and schedule["final"] == pytest.approx(5.0)
    assert schedule["effective_m"] == pytest.approx(1.617, abs=1e-3)
    for loss in ("softmax", "a-softmax"):
        view1 = results["view1"][loss]
        assert 0.5 < view1["accuracy"] <= 1
        assert view1["pairs_in_file"] == 1000
        # SOURCES.md: this LFW copy lacks Betsy_Coffin_0001.jpg, used by one DevTest pair.
        assert view1["pairs_skipped"] == 1
        assert 0 < view1["pairs_used"] <= view1["pairs_in_file"] - view1["pairs_skipped"]
    # quick mode: 100 of each kind; the library's own count of what it kept
    assert results["view1_test_pairs_by_kind"] == {"same": 100, "different": 100}
    assert all(steps >= 300 for steps in results["total_steps"].values())
    view2 = results["view2"]
    assert view2["num_folds"] == 10
    assert len(view2["fold_accuracies_no_mean"]) == 10
    assert all(0 <= value <= 1 for value in view2["fold_accuracies_no_mean"])
    assert len(view2["fold_accuracies"]) == 10
    assert 0.5 < view2["mean_accuracy"] <= 1
    assert view2["mean_accuracy"] == pytest.approx(sum(view2["fold_accuracies"]) / 10)
    assert view2["pairs_used"] > 0
    # Digits 6-9, never seen in training, verified with the features of runs on 0-5.
    digits = results["digits_open_set"]
    assert set(digits) == {"softmax", "a-softmax m=4"}
    for entry in digits.values():
        assert entry["seeds"] == [0] and entry["closed_set_accuracy_mean"] > 0.5
        assert 0.5 < entry["open_set_accuracy_mean"] <= 1
        assert 0 <= entry["open_set_eer_mean"] < 0.5
        assert math.isnan(entry["open_set_accuracy_std"])  # one seed: no spread
        # at least the 6 training weights' span out of 16 dimensions, at most all of it
        assert 6 / 16 - 0.1 < entry["weight_span_fraction_mean"] <= 1 + 1e-9
        assert 1 <= entry["participation_ratio_mean"] <= 16


def _lesson_06_figures_for_papers(results: dict) -> None:
    written = [Path(path) for path in results["written"]]
    assert {".pdf", ".svg", ".png"} <= {path.suffix for path in written}
    for path in written:
        assert path.is_file() and path.stat().st_size > 0, path
    assert {"psi_curves", "bound_map"} <= set(results["figure_names"])
    assert results["deterministic"] is True
    # The journal-width PDF really is that wide: its page is width × 72 points.
    pdf = Path(results["journal_psi_pdf"]).read_bytes()
    media_box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert media_box, "no MediaBox in the journal PDF"
    assert float(media_box.group(1)) == pytest.approx(JOURNAL_WIDTH_INCH * 72, abs=0.5)


_CHECKS = {
    "01_from_softmax_to_a_softmax.ipynb": _lesson_01_softmax_to_a_softmax,
    "02_why_m_is_4.ipynb": _lesson_02_why_m_is_4,
    "03_mnist_on_the_hypersphere.ipynb": _lesson_03_mnist_on_the_hypersphere,
    "04_faces_on_the_sphere.ipynb": _lesson_04_faces_on_the_sphere,
    "05_open_set_verification.ipynb": _lesson_05_open_set_verification,
    "06_figures_for_papers.ipynb": _lesson_06_figures_for_papers,
}


def check_results(name: str, results: dict) -> None:
    """Assert what lesson ``name``'s ``results`` cell printed (its JSON, as a dict)."""
    _CHECKS[name](results)
