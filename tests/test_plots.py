"""Matplotlib figures: each returns a Figure, and what it draws equals the math."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sphereviz import margins, plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def lines_by_label(ax) -> dict[str, matplotlib.lines.Line2D]:
    return {line.get_label(): line for line in ax.get_lines()}


def toy_features(dim: int, n_per_class: int = 20, classes: int = 3, seed: int = 0):
    """Points scattered around ``classes`` random directions, at random radii."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))
    labels = np.repeat(np.arange(classes), n_per_class)
    radii = rng.uniform(0.5, 20.0, size=(len(labels), 1))
    features = radii * (centres[labels] + 0.3 * rng.normal(size=(len(labels), dim)))
    return features, labels, centres


# ---------------------------------------------------------------------------------------------
# ψ
# ---------------------------------------------------------------------------------------------


def test_psi_curves_equal_margins_psi_and_independent_forms():
    fig = plots.plot_psi(ms=(1, 2, 3, 4), cosface_margin=0.35, arcface_margin=0.5)
    assert isinstance(fig, Figure)
    lines = lines_by_label(fig.axes[0])
    for m in (1, 2, 3, 4):
        degrees, values = lines[f"ψ, m={m}"].get_data()
        theta = np.radians(degrees)
        np.testing.assert_allclose(values, margins.psi(theta, m), atol=1e-12)
        # ψ(θ) = cos(mθ) on [0, π/m]; ψ(π) = 1 − 2m (the paper's eq. 7 end points)
        head = theta <= math.pi / m
        np.testing.assert_allclose(values[head], np.cos(m * theta[head]), atol=1e-12)
        assert values[-1] == pytest.approx(1 - 2 * m)
    degrees, cosface = lines["CosFace cos θ − 0.35"].get_data()
    np.testing.assert_allclose(cosface, np.cos(np.radians(degrees)) - 0.35)
    degrees, arcface = lines["ArcFace cos(θ + 0.5)"].get_data()
    np.testing.assert_allclose(arcface, np.cos(np.radians(degrees) + 0.5))
    assert "cos(1θ)" not in lines  # identical to ψ for m = 1, so not drawn twice
    degrees, cos4 = lines["cos(4θ)"].get_data()
    np.testing.assert_allclose(cos4, np.cos(4 * np.radians(degrees)))


def test_psi_rejects_fractional_m():
    with pytest.raises(ValueError, match="CosFace or ArcFace"):
        plots.plot_psi(ms=(1.5,))


# ---------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------


def test_features_2d_projected_panel_lies_on_unit_circle_and_keeps_angles():
    features, labels, weights = toy_features(dim=2)
    fig = plots.plot_features_2d(features, labels, class_weights=weights)
    raw_ax, unit_ax = fig.axes
    raw = np.concatenate([c.get_offsets() for c in raw_ax.collections])
    # the unit panel's points; its other collections are the ring histogram's bars
    unit = np.concatenate([c.get_offsets() for c in unit_ax.collections
                           if isinstance(c, matplotlib.collections.PathCollection)])  # fmt: skip
    assert len(unit) == len(features)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(np.arctan2(unit[:, 1], unit[:, 0]), np.arctan2(raw[:, 1], raw[:, 0]))
    # the raw panel is the features themselves, grouped by class
    order = np.argsort(labels, kind="stable")
    np.testing.assert_allclose(raw, features[order])


def test_features_2d_rejects_wrong_dimension():
    features, labels, _ = toy_features(dim=3)
    with pytest.raises(ValueError, match="2-D features"):
        plots.plot_features_2d(features, labels)
    with pytest.raises(ValueError, match="labels must have shape"):
        plots.plot_features_2d(features[:, :2], labels[:-1])


def test_project_to_sphere_keeps_3d_angles_and_normalises_higher_dims():
    features, _, weights = toy_features(dim=3)
    points, unit_weights, description = plots.project_to_sphere(features, weights)
    np.testing.assert_allclose(points, features / np.linalg.norm(features, axis=1)[:, None])
    np.testing.assert_allclose(np.linalg.norm(unit_weights, axis=1), 1.0)
    assert "3-D" in description

    # 3-D data embedded in 16-D by an orthonormal map: PCA finds that subspace, so the
    # angles between features (and with the weights) survive the projection.
    rng = np.random.default_rng(1)
    embedding, _ = np.linalg.qr(rng.normal(size=(16, 3)))
    points_16, weights_16, description_16 = plots.project_to_sphere(
        features @ embedding.T, weights @ embedding.T
    )
    assert "PCA" in description_16 and "16-D" in description_16
    np.testing.assert_allclose(np.linalg.norm(points_16, axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(points_16 @ points_16.T, points @ points.T, atol=1e-9)
    np.testing.assert_allclose(points_16 @ weights_16.T, points @ unit_weights.T, atol=1e-9)


def test_features_sphere_panels_lie_on_unit_sphere_and_say_projection():
    features_3d, labels, weights = toy_features(dim=3)
    features_8d, labels_8d, weights_8d = toy_features(dim=8, seed=2)
    fig = plots.plot_features_sphere(
        [("m = 1", features_3d, labels, weights), ("m = 4", features_8d, labels_8d, weights_8d)],
        back="show",
    )
    assert isinstance(fig, Figure)
    views = [ax for ax in fig.axes if ax.name == "3d"]
    assert len(views) == 2
    for ax, n in zip(views, (len(features_3d), len(features_8d)), strict=True):
        xs, ys, zs = (np.concatenate(parts) for parts in zip(*_scatter3d_offsets(ax), strict=True))
        assert len(xs) == n
        np.testing.assert_allclose(np.sqrt(xs**2 + ys**2 + zs**2), 1.0, atol=1e-9)
    assert views[0].get_title() == "m = 1"
    assert "PCA" in views[1].get_title()


def _scatter3d_offsets(ax):
    from mpl_toolkits.mplot3d.art3d import Path3DCollection

    return [c._offsets3d for c in ax.collections
            if isinstance(c, Path3DCollection) and c.get_label().startswith("class")]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Training curves
# ---------------------------------------------------------------------------------------------


def test_training_curves_draw_each_metric_against_epoch():
    metrics = [
        {"epoch": 1, "loss": 2.0, "train_accuracy": 0.5, "test_accuracy": 0.55, "lambda": 50.0},
        {"epoch": 2, "loss": 1.0, "train_accuracy": 0.8, "test_accuracy": 0.82, "lambda": 10.0},
        {"epoch": 3, "loss": 0.5, "train_accuracy": 0.9, "test_accuracy": None, "lambda": 5.0},
    ]
    fig = plots.plot_training_curves(metrics)
    loss_ax, accuracy_ax, lambda_ax = fig.axes
    np.testing.assert_array_equal(
        lines_by_label(loss_ax)["loss"].get_data(), [[1, 2, 3], [2, 1, 0.5]]
    )
    accuracy = lines_by_label(accuracy_ax)
    np.testing.assert_array_equal(accuracy["train accuracy"].get_ydata(), [0.5, 0.8, 0.9])
    np.testing.assert_array_equal(accuracy["test accuracy"].get_data(), [[1, 2], [0.55, 0.82]])
    np.testing.assert_array_equal(lines_by_label(lambda_ax)["lambda"].get_ydata(), [50, 10, 5])
    with pytest.raises(ValueError, match="epoch"):
        plots.plot_training_curves([{"loss": 1.0}])


# ---------------------------------------------------------------------------------------------
# Decision regions on the circle
# ---------------------------------------------------------------------------------------------


def region_lines(ax, class_number: int):
    return [line for line in ax.get_lines() if line.get_label() == f"class {class_number} region"]


def drawn_arc(line) -> tuple[float, float]:
    """(start, end) of an arc drawn on the unit circle, end unwrapped past start."""
    x, y = line.get_data()
    angles = np.unwrap(np.arctan2(y, x))
    return angles[0], angles[-1]


@pytest.mark.parametrize(
    ("loss", "m", "num_classes"),
    [("a-softmax", 3, 2), ("a-softmax", 4, 2), ("a-softmax", 3, 5), ("cosface", 0.35, 3),
     ("arcface", 0.5, 4), ("modified-softmax", None, 2)],
)  # fmt: skip
def test_region_arcs_drawn_match_geometry(loss, m, num_classes):
    regions = plots.regions_for(loss, m, num_classes)
    fig = plots.plot_regions(regions)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    for index, class_arcs in enumerate(regions.arcs):
        lines = region_lines(ax, index + 1)
        assert len(lines) == len(class_arcs)
        for line, (start, end) in zip(lines, class_arcs, strict=True):
            x, y = line.get_data()
            np.testing.assert_allclose(np.hypot(x, y), 1.0, atol=1e-12)
            drawn_start, drawn_end = drawn_arc(line)
            assert drawn_end - drawn_start == pytest.approx(end - start, abs=1e-9)
            assert np.cos(drawn_start - start) == pytest.approx(1.0, abs=1e-12)


def test_binary_a_softmax_regions_follow_the_paper():
    """θ₁₂ = 90°: class 1 reaches θ₁₂/(m+1) towards W₂ and θ₁₂/(m−1) away (Property 2)."""
    for m, span, gap in ((3, 67.5, 45.0), (4, 48.0, 54.0)):
        regions = plots.regions_for("a-softmax", m, 2, math.radians(90))
        fig = plots.plot_regions(regions)
        (first,) = region_lines(fig.axes[0], 1)
        start, end = drawn_arc(first)
        assert math.degrees(end - start) == pytest.approx(span)
        # W₁ is at 135°: the region runs from 135° − 90/(m+1) (towards W₂ at 45°) upwards
        assert math.degrees(start) % 360 == pytest.approx(135 - 90 / (m + 1))
        assert math.degrees(end) % 360 == pytest.approx(135 + 90 / (m - 1))
        uncovered = plots.uncovered_arcs(regions)
        narrowest = min(end - start for start, end in uncovered)
        assert math.degrees(narrowest) == pytest.approx(gap)
        assert ("criterion holds" in plots.describe_regions(regions)) == (m == 4)
        plt.close(fig)


def test_uncovered_arcs_complement_the_regions():
    regions = plots.regions_for("a-softmax", 4, 3)
    covered = sum(end - start for arcs in regions.arcs for start, end in arcs)
    uncovered = sum(end - start for start, end in plots.uncovered_arcs(regions))
    assert covered + uncovered == pytest.approx(2 * math.pi)
    # softmax with equal norms covers the whole circle: nothing left over
    assert plots.uncovered_arcs(plots.regions_for("modified-softmax")) == []


def test_describe_regions_without_a_region():
    crowded = plots.regions_for("cosface", 0.8, 12)
    assert "no region" in plots.describe_regions(crowded)
    fig = plots.plot_regions(crowded)
    assert region_lines(fig.axes[0], 1) == []


def test_draw_regions_draws_over_what_is_there_and_clear_drawing_empties_the_axes():
    fig, ax = plt.subplots()
    assert plots.draw_regions(ax, plots.regions_for("a-softmax", 2, 6)) is ax
    six_class_lines = len(region_lines(ax, 3))
    assert six_class_lines == 1
    plots.draw_regions(ax, plots.regions_for("a-softmax", 4, 2), title="two classes")
    assert len(region_lines(ax, 3)) == six_class_lines  # not cleared: the 6 classes stay
    assert ax.get_title() == "two classes"
    assert plots.clear_drawing(ax) is ax
    assert len(ax.lines) == len(ax.patches) == len(ax.texts) == len(ax.collections) == 0
    assert ax.get_title() == ""
    plots.draw_regions(ax, plots.regions_for("a-softmax", 4, 2))
    assert region_lines(ax, 3) == []  # the 6-class drawing is gone
    assert len(region_lines(ax, 1)) == 1
    assert ax.get_title() == "A-Softmax, m = 4"


def test_plot_regions_takes_one_title_per_panel():
    panels = [plots.regions_for("softmax"), plots.regions_for("a-softmax", 4)]
    fig = plots.plot_regions(panels, titles=["plain", None])
    assert [ax.get_title() for ax in fig.axes] == ["plain", "A-Softmax, m = 4"]
    with pytest.raises(ValueError, match="one title"):
        plots.plot_regions(panels, titles=["only one"])


def test_regions_for_validates_layout():
    with pytest.raises(ValueError, match="theta12"):
        plots.regions_for("a-softmax", 4, 3, theta12=1.0)
    with pytest.raises(ValueError, match="theta12 must be"):
        plots.regions_for("a-softmax", 4, 2, theta12=4.0)
    with pytest.raises(ValueError, match="num_classes"):
        plots.regions_for("a-softmax", 4, 1)


# ---------------------------------------------------------------------------------------------
# The bound map
# ---------------------------------------------------------------------------------------------


def test_bound_map_shows_the_criterion_and_the_paper_bounds():
    fig = plots.plot_bound_map(m_max=6.0, m_step=0.25, theta12_step_degrees=5.0, max_classes=8)
    binary_ax, uniform_ax = fig.axes
    ms = np.arange(1.0, 6.0 + 0.125, 0.25)
    theta12 = np.arange(5.0, 180.0 + 2.5, 5.0)
    binary = binary_ax.collections[0].get_array().reshape(len(ms), len(theta12))
    np.testing.assert_array_equal(binary, plots.binary_criterion_map(theta12, ms))
    # Property 2 from the paper's own inequality: for θ₁₂ ≤ (m−1)π/m the criterion is
    # m² − 4m + 1 ≥ 0; beyond it (wrapped case) it is θ₁₂ ≥ 2π/(m−1).
    for row, m in enumerate(ms):
        for column, t in enumerate(np.radians(theta12)):
            if m > 1 and t <= (m - 1) * math.pi / m:
                expected = m * m - 4 * m + 1 >= 0
            else:
                expected = m > 1 and t >= 2 * math.pi / (m - 1) - 1e-12
            assert bool(binary[row, column]) == expected, (m, math.degrees(t))
    uniform = uniform_ax.collections[0].get_array().reshape(len(ms), 7)
    # Property 3: K uniformly spaced classes satisfy it exactly when m ≥ 3, for every K
    np.testing.assert_array_equal(uniform, np.repeat((ms >= 3)[:, None], 7, axis=1))
    assert binary_ax.get_lines()[0].get_ydata()[0] == pytest.approx(2 + math.sqrt(3))
    assert uniform_ax.get_lines()[0].get_ydata()[0] == 3.0


# ---------------------------------------------------------------------------------------------
# Angle histograms
# ---------------------------------------------------------------------------------------------


def test_angle_histogram_counts_equal_number_of_pairs():
    features, labels, _ = toy_features(dim=3, n_per_class=15, classes=4)
    fig = plots.plot_angle_histograms([("toy", features, labels)])
    ax = fig.axes[0]
    same_bars, different_bars = ax.containers
    same_count = sum(bar.get_height() for bar in same_bars)
    different_count = sum(bar.get_height() for bar in different_bars)
    n, per_class = len(labels), 15
    assert same_count == 4 * per_class * (per_class - 1) // 2
    assert different_count == n * (n - 1) // 2 - same_count
    # and the bars are the angles themselves: recompute one class's pairs by hand
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    first, second = np.triu_indices(n, k=1)
    angles = np.degrees(np.arccos(np.clip(np.sum(unit[first] * unit[second], 1), -1, 1)))
    same = labels[first] == labels[second]
    edges = np.linspace(0, 180, 46)
    np.testing.assert_array_equal(
        [bar.get_height() for bar in same_bars], np.histogram(angles[same], edges)[0]
    )


def bar_patches_drawn(fig) -> list:
    """Every histogram bar with a non-zero height, after a draw (window extents are final)."""
    fig.canvas.draw()
    return [
        patch
        for ax in fig.axes
        for container in ax.containers
        for patch in container
        if patch.get_height() > 0
    ]


def assert_legend_clear_of_bars(fig, legend) -> None:
    bars = bar_patches_drawn(fig)
    assert bars, "no bar was drawn"
    box = legend.get_window_extent()
    covered = [bar for bar in bars if box.overlaps(bar.get_window_extent())]
    assert not covered, f"the legend {box} covers {len(covered)} bars"
    # and it is on the canvas, not cut off at an edge
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1
    assert fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1


@pytest.mark.parametrize("panels", [1, 2, 4])
@pytest.mark.parametrize("column", [None, "double"])
def test_angle_histogram_legend_covers_no_bar(panels, column):
    from contextlib import nullcontext

    from sphereviz.style import publication_style

    runs = []
    for m in range(1, panels + 1):
        features, labels, _ = toy_features(dim=3, n_per_class=15, classes=4, seed=m)
        runs.append((f"m = {m}", features, labels))
    with publication_style(column) if column else nullcontext():
        fig = plots.plot_angle_histograms(runs)
        (legend,) = fig.legends
        assert [text.get_text() for text in legend.get_texts()] == ["same class", "different class"]
        assert_legend_clear_of_bars(fig, legend)
        assert all(ax.get_legend() is None for ax in fig.axes)


def test_angle_histograms_redrawn_into_the_same_axes_replace_the_old_bars():
    features, labels, _ = toy_features(dim=3, n_per_class=15, classes=4)
    fig, ax = plt.subplots()
    plots.draw_angle_histograms(ax, features, labels)
    first = [bar.get_height() for container in ax.containers for bar in container]
    plots.draw_angle_histograms(ax, features[:30], labels[:30])
    assert len(ax.containers) == 4  # drawn over the first: nothing is cleared implicitly
    plots.clear_drawing(ax)
    plots.draw_angle_histograms(ax, features, labels)
    assert len(ax.containers) == 2 and len(ax.patches) == 2 * 45
    assert [bar.get_height() for container in ax.containers for bar in container] == first


def test_run_panel_reads_a_run():
    from sphereviz.config import TrainConfig
    from sphereviz.runs import Run

    features, labels, weights = toy_features(dim=3)
    embeddings = {"features": features, "labels": labels, "class_weights": weights}
    run = Run(None, TrainConfig(loss="a-softmax", m=3), [], embeddings)
    title, panel_features, panel_labels, panel_weights = plots.run_panel(run)
    assert title == "a-softmax, m = 3"
    np.testing.assert_array_equal(panel_features, features)
    np.testing.assert_array_equal(panel_labels, labels)
    np.testing.assert_array_equal(panel_weights, weights)
    with pytest.raises(ValueError, match="no embeddings"):
        plots.run_panel(Run(None, TrainConfig(), [], {}))


# ---------------------------------------------------------------------------------------------
# Layout of the paper figures: no text runs into other text, the spheres fill their panels
# ---------------------------------------------------------------------------------------------


def mnist_like_features(seed: int, classes: int = 10, per_class: int = 100):
    """Tight clusters around ``classes`` directions in 3-D, like MNIST's test features.

    1000 points: more than 100,000 pairs of each kind, so the histograms are of samples and
    the counts reach tens of thousands (five-digit tick labels), as in the paper figure.
    """
    return toy_features(dim=3, n_per_class=per_class, classes=classes, seed=seed)


def toy_run(features, labels, weights):
    from sphereviz.config import TrainConfig
    from sphereviz.runs import Run

    embeddings = {"features": features, "labels": labels, "class_weights": weights}
    return Run(None, TrainConfig(), [], embeddings)


def in_view(tick, axis) -> bool:
    low, high = sorted(axis.get_view_interval())
    tolerance = 1e-9 * (high - low)
    return low - tolerance <= tick.get_loc() <= high + tolerance


def drawn_texts(fig) -> list[tuple[str, int | None, object]]:
    """``(name, axes index or None, window extent)`` of every text a draw puts on the canvas.

    Titles, axis labels, the tick labels of ticks inside the view, and legend entries; empty
    and hidden texts are left out (they take no room).
    """
    fig.canvas.draw()
    found = []
    for index, ax in enumerate(fig.axes):
        texts = [("title", ax.title), ("x label", ax.xaxis.label), ("y label", ax.yaxis.label)]
        for axis_name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if in_view(tick, axis):
                    texts.append((f"{axis_name} tick {tick.label1.get_text()!r}", tick.label1))
        if ax.get_legend() is not None:
            texts += [("legend entry", text) for text in ax.get_legend().get_texts()]
        found += [(f"panel {index} {name}", index, text) for name, text in texts]
    for legend in fig.legends:
        found += [("figure legend entry", None, text) for text in legend.get_texts()]
    return [
        (name, index, text.get_window_extent())
        for name, index, text in found
        if text.get_visible() and text.get_text().strip()
    ]


def assert_no_text_overlaps(fig) -> None:
    """No two drawn texts overlap, no text enters another panel's axes, all are on the canvas."""
    texts = drawn_texts(fig)
    assert len(texts) > 10, texts
    clashes = [
        (first[0], second[0])
        for i, first in enumerate(texts)
        for second in texts[i + 1 :]
        if first[2].overlaps(second[2])
    ]
    assert not clashes, f"texts overlap: {clashes}"
    panels = [ax.get_window_extent() for ax in fig.axes]
    intrusions = [
        (name, f"panel {other}")
        for name, index, box in texts
        for other, panel in enumerate(panels)
        if index is not None and other != index and box.overlaps(panel)
    ]
    assert not intrusions, f"texts run into other panels: {intrusions}"
    outside = [name for name, _, box in texts if not fig.bbox.contains(box.x0, box.y0)
               or not fig.bbox.contains(box.x1, box.y1)]  # fmt: skip
    assert not outside, f"texts cut off at the edge of the figure: {outside}"


def four_mnist_like_runs():
    return [(f"m = {m}", *mnist_like_features(seed=m)[:2]) for m in (1, 2, 3, 4)]


@pytest.mark.parametrize("column", [None, "double"])
def test_angle_histogram_texts_overlap_nothing(column):
    from contextlib import nullcontext

    from sphereviz.style import publication_style

    # made inside the style and drawn outside it, as figures.py saves its figures
    with publication_style(column) if column else nullcontext():
        fig = plots.plot_angle_histograms(four_mnist_like_runs())
    assert_no_text_overlaps(fig)


def test_paper_angle_histogram_figure_texts_overlap_nothing():
    from sphereviz import figures

    runs = [(f"m = {m}", toy_run(*mnist_like_features(seed=m))) for m in (1, 2, 3, 4)]
    assert_no_text_overlaps(figures.angle_histograms_figure(runs))


def test_angle_histogram_tick_labels_keep_the_style_size_when_drawn_outside_it():
    from sphereviz.style import publication_rc, publication_style

    with publication_style("double"):
        fig = plots.plot_angle_histograms(four_mnist_like_runs())
    fig.canvas.draw()  # the count axis makes most of its ticks now, outside the style
    tick_sizes = {
        label.get_fontsize()
        for ax in fig.axes
        for axis in (ax.xaxis, ax.yaxis)
        for label in (tick.label1 for tick in axis.get_major_ticks() if in_view(tick, axis))
    }
    assert tick_sizes == {publication_rc()["xtick.labelsize"]}
    assert fig.axes[0].get_xticks().tolist() == [0, 90, 180]


def test_angle_histograms_share_the_count_axis_only_between_runs_with_as_many_pairs():
    runs = [(f"run {seed}", *toy_features(3, n_per_class=12, classes=4, seed=seed)[:2])
            for seed in (1, 2, 3)]  # fmt: skip
    fig = plots.plot_angle_histograms(runs)
    fig.canvas.draw()
    # the highest bar of any panel, from the pair angles computed here
    highest = 0
    for _, features, labels in runs:
        unit = features / np.linalg.norm(features, axis=1, keepdims=True)
        first, second = np.triu_indices(len(labels), k=1)
        angles = np.degrees(np.arccos(np.clip(np.sum(unit[first] * unit[second], 1), -1, 1)))
        same = labels[first] == labels[second]
        for kind in (same, ~same):
            highest = max(highest, np.histogram(angles[kind], np.linspace(0, 180, 46))[0].max())
    limits = {ax.get_ylim() for ax in fig.axes}
    assert len(limits) == 1
    assert limits.pop()[1] >= highest
    assert fig.axes[0].get_ylabel() == "pairs"
    assert [ax.get_ylabel() for ax in fig.axes[1:]] == ["", ""]
    visible = [[t.label1.get_visible() for t in ax.yaxis.get_major_ticks()] for ax in fig.axes]
    assert all(visible[0]) and not any(visible[1] + visible[2])

    # one run with fewer points has fewer pairs: its counts are not on the same scale
    runs[1] = (runs[1][0], runs[1][1][:30], runs[1][2][:30])
    fig = plots.plot_angle_histograms(runs)
    fig.canvas.draw()
    for ax in fig.axes:
        assert ax.get_ylabel() == "pairs"
        assert all(t.label1.get_visible() for t in ax.yaxis.get_major_ticks())
        tallest = max(bar.get_height() for container in ax.containers for bar in container)
        assert tallest <= ax.get_ylim()[1] < 2 * tallest
    assert fig.axes[1].get_ylim() != fig.axes[0].get_ylim()


def sphere_outline(ax) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) in pixels of the drawn wireframe sphere (its projected segments)."""
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    (wireframe,) = [c for c in ax.collections if isinstance(c, Line3DCollection)]
    pixels = ax.transData.transform(np.concatenate(wireframe.get_segments()))
    return (*pixels.min(0), *pixels.max(0))


def assert_spheres_fill_their_columns(fig, columns: int, fraction: float = 0.7) -> None:
    """Each sphere is ≥ ``fraction`` of its column wide, round, and its drawing (sphere, rays)
    stays inside its column, under its title."""
    fig.canvas.draw()
    column_width = fig.bbox.width / columns
    for index, ax in enumerate(ax for ax in fig.axes if ax.name == "3d"):
        left = fig.bbox.x0 + (index % columns) * column_width
        x0, y0, x1, y1 = sphere_outline(ax)
        assert x1 - x0 >= fraction * column_width, (index, (x1 - x0) / column_width)
        assert y1 - y0 == pytest.approx(x1 - x0, rel=0.02)  # orthographic: a circle
        drawn = [(x0, y0, x1, y1)] + [tuple(line.get_window_extent().extents) for line in ax.lines]
        title = ax.title.get_window_extent()
        for box in drawn:
            assert left <= box[0] and box[2] <= left + column_width, (index, box)
            assert box[3] <= title.y0, (index, box, title)
            assert fig.bbox.y0 <= box[1], (index, box)


@pytest.mark.parametrize("column", [None, "double"])
@pytest.mark.parametrize("columns", [4, 2])
def test_sphere_panels_fill_their_columns(column, columns):
    from contextlib import nullcontext

    from sphereviz.style import publication_style

    panels = [(f"m = {m}", *mnist_like_features(seed=m)) for m in (1, 2, 3)]
    panels.append(("m = 4", *toy_features(dim=8, seed=4)))  # a PCA panel: a two-line title
    with publication_style(column) if column else nullcontext():
        fig = plots.plot_features_sphere(panels, columns=columns)
    assert_spheres_fill_their_columns(fig, columns, fraction=0.8)
    assert_no_text_overlaps_between_titles(fig)


def assert_no_text_overlaps_between_titles(fig) -> None:
    boxes = [ax.title.get_window_extent() for ax in fig.axes if ax.get_title()]
    assert not [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
                if boxes[i].overlaps(boxes[j])]  # fmt: skip
    assert all(fig.bbox.y1 >= box.y1 for box in boxes)


def test_paper_sphere_figure_spheres_fill_their_panels_and_clear_the_legend():
    from sphereviz import figures

    runs = [(f"m = {m}", toy_run(*mnist_like_features(seed=m))) for m in (1, 2, 3, 4)]
    fig = figures.sphere_panels_figure(runs)
    assert_spheres_fill_their_columns(fig, columns=4)
    (legend,) = fig.legends
    box = legend.get_window_extent()
    for ax in fig.axes:  # spheres, maps and strips, with their tick labels
        assert box.y1 <= ax.get_tightbbox().y0, ax.name
    for ax in (ax for ax in fig.axes if ax.name == "3d"):
        x0, y0, x1, y1 = sphere_outline(ax)
        assert box.y1 <= y0
        assert all(box.y1 <= line.get_window_extent().y0 for line in ax.lines)


def test_sphere_outline_is_the_same_size_from_every_viewpoint():
    features, labels, weights = toy_features(dim=3)
    points, unit_weights, _ = plots.project_to_sphere(features, weights)
    fig = plt.figure(figsize=(3, 3))
    ax = fig.add_subplot(projection="3d")
    plots.draw_unit_sphere_features(ax, points, labels, unit_weights, back="show")
    widths = []
    for elev, azim in ((30, -60), (0, 0), (75, 40), (-45, 170)):
        ax.view_init(elev, azim)
        fig.canvas.draw()
        x0, y0, x1, y1 = sphere_outline(ax)
        widths.append(x1 - x0)
        # every weight ring, however it lies, is inside the axes box
        box = ax.get_window_extent()
        for line in [c for c in ax.collections if c.get_label() == "_weights halo"]:
            extent = line.get_window_extent()
            assert box.x0 <= extent.x0 and extent.x1 <= box.x1
            assert box.y0 <= extent.y0 and extent.y1 <= box.y1
    # the wireframe's vertices lie 15° apart: the outline can fall 1 − cos 7.5° short of them
    assert max(widths) - min(widths) <= 0.01 * max(widths)
    assert min(widths) >= 0.75 * ax.get_window_extent().width


# ---------------------------------------------------------------------------------------------
# Deterministic files from the real figures
# ---------------------------------------------------------------------------------------------

FIGURE_SCRIPT = """
import sys
import matplotlib
matplotlib.use("Agg")
from sphereviz import plots
from sphereviz.style import publication_style, save_figure

with publication_style(column="double"):
    regions = [plots.regions_for("softmax", weight_norms=[1.5, 1.0], biases=[0.2, 0.0]),
               plots.regions_for("a-softmax", 4), plots.regions_for("cosface", 0.35, 5)]
    save_figure(plots.plot_regions(regions), sys.argv[1] + "/regions")
    bound_map = plots.plot_bound_map(m_max=5.0, m_step=0.5, theta12_step_degrees=15.0,
                                     max_classes=5)
    save_figure(bound_map, sys.argv[1] + "/bounds")
"""


@pytest.mark.slow
def test_real_figures_save_byte_identically_in_two_processes(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    processes = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        command = [sys.executable, "-c", FIGURE_SCRIPT, str(tmp_path / name)]
        processes.append(subprocess.Popen(command, cwd=repo))
    assert [process.wait(timeout=300) for process in processes] == [0, 0]
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    expected = [f"{stem}.{ext}" for stem in ("bounds", "regions") for ext in ("pdf", "png", "svg")]
    assert files == expected
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


# ---------------------------------------------------------------------------------------------
# Open-set verification
# ---------------------------------------------------------------------------------------------


def synthetic_pairs(n_pairs: int, noise: float, seed: int, dim: int = 16):
    """Pairs of noisy features: same-person pairs share an identity vector (every other pair)."""
    rng = np.random.default_rng(seed)
    identities = rng.normal(size=(n_pairs, dim))
    same = np.arange(n_pairs) % 2 == 0
    strangers = rng.normal(size=(n_pairs, dim))
    a = identities + noise * rng.normal(size=(n_pairs, dim))
    b = np.where(same[:, None], identities, strangers) + noise * rng.normal(size=(n_pairs, dim))
    return a, b, same


@pytest.fixture(scope="module")
def verification_results():
    """View 1-like single splits of two 'losses', and a 10-fold View 2-like result."""
    from sphereviz import evaluate

    results = {}
    for seed, (name, noise) in enumerate((("softmax", 1.3), ("a-softmax", 0.7))):
        threshold_pairs = synthetic_pairs(400, noise, seed=2 * seed)
        test_pairs = synthetic_pairs(1200, noise, seed=2 * seed + 1)
        results[name] = evaluate.single_split_verification(*threshold_pairs, *test_pairs)
    a, b, same = synthetic_pairs(1000, 0.9, seed=7)
    results["10 folds"] = evaluate.verification_accuracy(a, b, same, np.arange(1000) % 10)
    return results


def roc_legend_texts(fig) -> list[str]:
    roc_legend = next(legend for legend in fig.legends if "chance" in legend_texts(legend))
    return legend_texts(roc_legend)


def legend_texts(legend) -> list[str]:
    return [text.get_text() for text in legend.get_texts()]


def test_verification_histograms_count_the_scores_of_each_kind_of_pair(verification_results):
    fig = plots.plot_verification(verification_results)
    assert len(fig.axes) == len(verification_results) + 1
    edges = np.linspace(-1, 1, 41)
    for ax, (name, result) in zip(fig.axes, verification_results.items(), strict=False):
        same_bars, different_bars = ax.containers
        assert same_bars[0].get_label() == "same person"  # hist labels a container's first bar
        assert different_bars[0].get_label() == "different people"
        np.testing.assert_array_equal(
            [bar.get_height() for bar in same_bars],
            np.histogram(result.scores[result.same], edges)[0],
        )
        np.testing.assert_array_equal(
            [bar.get_height() for bar in different_bars],
            np.histogram(result.scores[~result.same], edges)[0],
        )
        # every pair is in a bar: the scores are cosines, inside [−1, 1]
        assert sum(bar.get_height() for bar in (*same_bars, *different_bars)) == result.same.size
        assert ax.get_title().startswith(f"{name}\naccuracy {result.accuracy_mean:.3f}")


def test_threshold_line_is_the_split_threshold_or_the_mean_of_the_folds(verification_results):
    fig = plots.plot_verification(verification_results)
    for ax, result in zip(fig.axes, verification_results.values(), strict=False):
        (line,) = [line for line in ax.get_lines() if line.get_label() == "threshold"]
        x_values = np.unique(line.get_xdata())
        if result.thresholds.size == 1:
            assert x_values.tolist() == [result.thresholds[0]]
            assert "±" not in ax.get_title()
        else:
            assert x_values.tolist() == [pytest.approx(np.mean(result.thresholds))]
            (span,) = [p for p in ax.patches if p.get_label() == "fold thresholds"]
            corners = span.get_path().transformed(span.get_patch_transform()).vertices[:, 0]
            assert corners.min() == pytest.approx(result.thresholds.min())
            assert corners.max() == pytest.approx(result.thresholds.max())
            assert f"± {result.accuracy_std:.3f}" in ax.get_title()
        # the threshold really separates: recompute the single split's test accuracy from it
        if result.thresholds.size == 1:
            accepted = result.scores > x_values[0]
            assert np.mean(accepted == result.same) == pytest.approx(result.accuracy_mean)


def test_roc_curves_equal_scikit_learn_and_the_legend_gives_auc_and_tar(verification_results):
    from sklearn.metrics import roc_auc_score, roc_curve

    far = 0.01
    fig = plots.plot_verification(verification_results, far=far)
    roc_ax = fig.axes[-1]
    texts = roc_legend_texts(fig)
    assert texts[-1] == "chance"
    for name, result in verification_results.items():
        fpr, tpr, _ = roc_curve(result.same, result.scores)
        (curve,) = [line for line in roc_ax.get_lines() if line.get_label().startswith(f"{name}:")]
        np.testing.assert_array_equal(curve.get_xdata(), fpr)
        np.testing.assert_array_equal(curve.get_ydata(), tpr)
        # TAR@FAR by brute force: accept "score ≥ t" for every t, keep FAR ≤ far, best TAR
        positives, negatives = result.scores[result.same], result.scores[~result.same]
        thresholds = np.append(result.scores, np.inf)
        tar = (positives[None, :] >= thresholds[:, None]).mean(1)
        false_accepts = (negatives[None, :] >= thresholds[:, None]).mean(1)
        tar_at_far = tar[false_accepts <= far].max()
        assert 0 < tar_at_far < 1  # 1 % of 500+ different pairs: a real operating point
        auc = roc_auc_score(result.same, result.scores)
        expected = f"{name}: AUC {auc:.3f}, TAR@FAR=0.01 {tar_at_far:.3f}"
        assert expected in texts
        assert curve.get_label() == expected
        (ring,) = [line for line in roc_ax.get_lines() if line.get_label() == f"_TAR@FAR {name}"]
        assert ring.get_ydata()[0] == pytest.approx(tar_at_far)
        assert ring.get_xdata()[0] <= far
    diagonal = next(line for line in roc_ax.get_lines() if line.get_label() == "chance")
    np.testing.assert_array_equal(diagonal.get_xydata(), [[0, 0], [1, 1]])


def test_verification_legends_cover_no_panel(verification_results):
    fig = plots.plot_verification(verification_results)
    fig.canvas.draw()
    assert len(fig.legends) == 2 and all(ax.get_legend() is None for ax in fig.axes)
    below = next(legend for legend in fig.legends if "chance" not in legend_texts(legend))
    assert legend_texts(below) == [
        "same person",
        "different people",
        "threshold",
        "fold thresholds",
    ]
    for legend in fig.legends:
        box = legend.get_window_extent()
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent()), legend_texts(legend)
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1


def test_rates_are_written_as_researchers_quote_them():
    assert [plots.format_rate(r) for r in (1e-3, 5e-4, 1e-4, 0.01, 0.05, 0.1)] == [
        "1e-3", "5e-4", "1e-4", "0.01", "0.05", "0.1"
    ]  # fmt: skip


def test_plot_verification_rejects_bad_input(verification_results):
    with pytest.raises(ValueError, match="results is empty"):
        plots.plot_verification({})
    with pytest.raises(ValueError, match="softmax: expected an evaluate.VerificationResult"):
        plots.plot_verification({"softmax": np.zeros(3)})
    with pytest.raises(ValueError, match=r"far must be a false accept rate in \(0, 1\)"):
        plots.plot_verification(verification_results, far=1.5)
    only_same = verification_results["softmax"]
    from dataclasses import replace

    one_kind = replace(only_same, scores=only_same.scores[only_same.same],
                       same=only_same.same[only_same.same])  # fmt: skip
    with pytest.raises(ValueError, match="one kind: ROC needs both same-person and different"):
        plots.plot_verification({"one kind": one_kind})


# ---------------------------------------------------------------------------------------------
# Class names
# ---------------------------------------------------------------------------------------------


def test_class_names_present_picks_the_names_of_the_labels_present():
    names = ["zero", "one", "two", "three"]
    assert plots.class_names_present(names, [3, 1, 3, 1]) == ["one", "three"]
    assert plots.class_names_present(names, np.arange(4)) == names
    with pytest.raises(ValueError, match=r"integers in 0 … 3 to index the 4 class_names"):
        plots.class_names_present(names, [0, 4])
    with pytest.raises(ValueError, match="integers"):
        plots.class_names_present(names, [0.5, 1.0])


def test_run_class_names_come_from_the_runs_data_set(tmp_path):
    import cv2

    from sphereviz.config import TrainConfig
    from sphereviz.data import prepare_faces
    from sphereviz.runs import Run

    features, labels, weights = toy_features(dim=3)
    embeddings = {"features": features, "labels": labels, "class_weights": weights}
    mnist = Run(None, TrainConfig(dataset="mnist"), [], embeddings)
    assert plots.run_class_names(mnist) == [f"digit {d}" for d in range(10)]
    fashion = plots.run_class_names(Run(None, TrainConfig(dataset="fashion-mnist"), [], {}))
    assert fashion[0] == "T-shirt/top" and fashion[9] == "Ankle boot"

    rng = np.random.default_rng(0)
    for name in ("Carol_Wu", "Alice_Smith", "Bob_Jones"):  # the cache sorts them by name
        (tmp_path / "faces" / name).mkdir(parents=True)
        for index in range(2):
            image = rng.integers(0, 255, (250, 250, 3), dtype=np.uint8)
            cv2.imwrite(str(tmp_path / "faces" / name / f"{index}.png"), image)
    cache = prepare_faces(tmp_path / "faces", tmp_path / "cache", workers=1, progress=False)
    config = TrainConfig(dataset="faces", faces_cache=str(cache.directory), model="sfnet4")
    faces = Run(None, config, [], embeddings)  # toy weights: 3 classes, as the cache
    assert plots.run_class_names(faces) == ["Alice Smith", "Bob Jones", "Carol Wu"]
    # names that cannot belong to the run are not guessed
    four_classes = {**embeddings, "class_weights": np.ones((4, 3))}
    assert plots.run_class_names(Run(None, config, [], four_classes)) is None
    moved = TrainConfig(dataset="faces", faces_cache=str(tmp_path / "gone"), model="sfnet4")
    assert plots.run_class_names(Run(None, moved, [], embeddings)) is None


def test_run_class_names_prefer_the_runs_own_and_follow_its_classes():
    from sphereviz.config import TrainConfig
    from sphereviz.runs import Run

    # a run that stored its names (classes.json): shown as today's legends show them
    digits = Run(None, TrainConfig(dataset="mnist", classes=(3, 5, 7)), [], {},
                 class_names=["3", "5", "7"])  # fmt: skip
    assert plots.run_class_names(digits) == ["digit 3", "digit 5", "digit 7"]
    faces = Run(None, TrainConfig(dataset="faces", faces_cache="/nowhere", model="sfnet4"), [],
                {}, class_names=["Ann_Lee", "Bo_Ek"])  # fmt: skip
    assert plots.run_class_names(faces) == ["Ann Lee", "Bo Ek"]
    # an older run without names, trained on classes=(…): label k is the data set's classes[k]
    weights = np.ones((3, 2))
    old = Run(None, TrainConfig(dataset="fashion-mnist", classes=(9, 0, 1)), [],
              {"class_weights": weights})  # fmt: skip
    assert plots.run_class_names(old) == ["Ankle boot", "T-shirt/top", "Trouser"]
    old_digits = Run(None, TrainConfig(dataset="mnist", classes=(2, 8)), [], {})
    assert plots.run_class_names(old_digits) == ["digit 2", "digit 8"]
