"""Plotly sphere figures and their offline export."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from sphereviz import geometry
from sphereviz.plots import interactive3d


def traces_named(figure: go.Figure, prefix: str) -> list:
    return [trace for trace in figure.data if (trace.name or "").startswith(prefix)]


def boundary_points(trace) -> np.ndarray:
    xyz = np.array([trace.x, trace.y, trace.z], dtype=object).T
    return np.array([row for row in xyz if row[0] is not None], dtype=float)


def toy_run(dim: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(4, dim))
    labels = np.repeat(np.arange(4), 30)
    features = rng.uniform(1, 10, (120, 1)) * (weights[labels] + 0.3 * rng.normal(size=(120, dim)))
    return features, labels, weights


def test_feature_points_lie_on_unit_sphere_grouped_by_class():
    features, labels, weights = toy_run()
    figure = interactive3d.sphere_figure(features, labels, weights, "a-softmax", 4)
    points = traces_named(figure, "class ")
    assert [trace.name for trace in points] == ["class 0", "class 1", "class 2", "class 3"]
    for cls, trace in enumerate(points):
        xyz = np.stack([trace.x, trace.y, trace.z], axis=1)
        np.testing.assert_allclose(np.linalg.norm(xyz, axis=1), 1.0, atol=1e-9)
        own = features[labels == cls]
        np.testing.assert_allclose(xyz, own / np.linalg.norm(own, axis=1, keepdims=True))


def test_weight_arrows_point_along_the_class_weights():
    _, _, weights = toy_run()
    figure = interactive3d.sphere_figure(class_weights=weights, loss=None)
    lines = [t for t in traces_named(figure, "W") if isinstance(t, go.Scatter3d)]
    assert len(lines) == 4
    for trace, w in zip(lines, weights, strict=True):
        tip = np.array([trace.x[1], trace.y[1], trace.z[1]])
        assert np.dot(tip, w) / (np.linalg.norm(tip) * np.linalg.norm(w)) == pytest.approx(1.0)
    assert traces_named(figure, "boundary") == []


@pytest.mark.parametrize("m", [2, 4])
def test_a_softmax_boundaries_satisfy_m_theta1_equals_theta2(m):
    """Two classes: class 1 wins by the margin exactly where mθ₁ < θ₂ (SphereFace §3.3)."""
    weights = np.array([[1.0, 0.0, 0.0], [math.cos(1.2), math.sin(1.2), 0.0]])
    resolution = 180
    traces = interactive3d.region_boundary_traces(weights, "a-softmax", m, resolution)
    step = math.pi / resolution
    for own, other, trace in ((0, 1, traces[0]), (1, 0, traces[1])):
        points = boundary_points(trace) / interactive3d.BOUNDARY_LIFT
        np.testing.assert_allclose(np.linalg.norm(points, axis=1), 1.0, atol=1e-9)
        unit = weights / np.linalg.norm(weights, axis=1, keepdims=True)
        theta_own = np.arccos(np.clip(points @ unit[own], -1, 1))
        theta_other = np.arccos(np.clip(points @ unit[other], -1, 1))
        # on the grid the curve is within one cell of the true boundary: |mθ₁ − θ₂| ≤ (m+1)·step
        assert np.max(np.abs(m * theta_own - theta_other)) <= (m + 1) * step
        assert len(points) > 50


def test_boundary_curves_separate_inside_from_outside():
    """The contour of a cap {angle to W < 30°} is the circle at 30° from W."""
    weight = np.array([0.0, 0.0, 1.0])

    def classify(points):
        return np.where(points @ weight > math.cos(math.radians(30)), 0, -1)

    curves = interactive3d.boundary_curves(classify, [0], resolution=90)
    (circle,) = curves[0]
    angles = np.degrees(np.arccos(circle @ weight))
    np.testing.assert_allclose(angles, 30.0, atol=2.0)  # one grid step is 2°
    np.testing.assert_allclose(np.linalg.norm(circle, axis=1), 1.0, atol=1e-12)


def marker_traces(figure: go.Figure) -> list:
    return [trace for trace in figure.data if trace.type == "scatter3d" and trace.mode == "markers"]


def test_class_names_name_the_feature_traces_and_their_legend_groups():
    features, labels, weights = toy_run()
    names = ["digit 0", "digit 1", "digit 2", "digit 3"]
    named = interactive3d.sphere_figure(features, labels, weights, loss=None, class_names=names)
    default = interactive3d.sphere_figure(features, labels, weights, loss=None)
    assert [trace.name for trace in marker_traces(named)] == names
    assert [trace.legendgroup for trace in marker_traces(named)] == names
    assert [trace.name for trace in marker_traces(default)] == [f"class {c}" for c in range(4)]
    assert [trace.legendgroup for trace in marker_traces(default)] == [
        f"class {c}" for c in range(4)
    ]
    # the names only relabel: each named trace holds its own class's points
    for cls, trace in enumerate(marker_traces(named)):
        own = features[labels == cls]
        np.testing.assert_allclose(
            np.stack([trace.x, trace.y, trace.z], 1),
            own / np.linalg.norm(own, axis=1, keepdims=True),
        )


def test_class_names_follow_sorted_labels_that_are_not_0_to_k():
    features, labels, weights = toy_run()
    relabelled = np.array([7, 3, 9, 5])[labels]  # classes present, sorted: 3, 5, 7, 9
    names = ["three", "five", "seven", "nine"]
    traces = interactive3d.feature_traces(features, relabelled, class_names=names)
    assert [trace.name for trace in traces] == names
    first = np.stack([traces[0].x, traces[0].y, traces[0].z], 1)
    np.testing.assert_array_equal(first, features[relabelled == 3])


def test_subsampling_keeps_each_name_with_its_class():
    rng = np.random.default_rng(1)
    labels = np.concatenate([np.zeros(500, int), np.ones(500, int), [2]])  # class 2: one point
    features = 0.2 * rng.normal(size=(labels.size, 3)) + np.eye(3)[labels]
    figure = interactive3d.sphere_figure(
        features, labels, max_points=50, loss=None, class_names=["north", "east", "lone"]
    )
    # the sample of 50 drops the lone point; the two names left stay with their classes
    assert [trace.name for trace in marker_traces(figure)] == ["north", "east"]
    for trace in marker_traces(figure):
        xyz = np.stack([trace.x, trace.y, trace.z], 1)
        expected_axis = {"north": 0, "east": 1, "lone": 2}[trace.name]
        assert np.all(np.argmax(xyz, axis=1) == expected_axis), trace.name


@pytest.mark.parametrize("count", [3, 5])
def test_wrong_number_of_class_names_is_an_error_naming_both_lengths(count):
    features, labels, weights = toy_run()
    names = [f"person {i}" for i in range(count)]
    message = f"class_names has {count} names but the labels hold 4 classes"
    with pytest.raises(ValueError, match=message):
        interactive3d.sphere_figure(features, labels, weights, class_names=names)
    with pytest.raises(ValueError, match=message):
        interactive3d.feature_traces(features, labels, class_names=names)
    with pytest.raises(ValueError, match="the string"):
        interactive3d.feature_traces(features, labels, class_names="abcd")
    with pytest.raises(ValueError, match="pass features and labels"):
        interactive3d.sphere_figure(class_weights=weights, class_names=names)


def test_high_dimensional_features_are_projected_and_say_so():
    features, labels, weights = toy_run(dim=10)
    figure = interactive3d.sphere_figure(features, labels, weights, "a-softmax", 4)
    assert "PCA 10-D → 3-D" in figure.layout.title.text
    assert traces_named(figure, "boundary") == []  # boundaries of projected weights would lie
    for trace in traces_named(figure, "class "):
        xyz = np.stack([trace.x, trace.y, trace.z], axis=1)
        np.testing.assert_allclose(np.linalg.norm(xyz, axis=1), 1.0, atol=1e-9)


def test_large_runs_are_subsampled_deterministically():
    rng = np.random.default_rng(3)
    features, labels = rng.normal(size=(900, 3)), rng.integers(0, 3, 900)
    first = interactive3d.sphere_figure(features, labels, max_points=300, loss=None)
    second = interactive3d.sphere_figure(features, labels, max_points=300, loss=None)
    assert sum(len(t.x) for t in traces_named(first, "class ")) == 300
    assert first.to_json() == second.to_json()


def test_html_export_is_self_contained_and_deterministic(tmp_path):
    features, labels, weights = toy_run()
    figure = interactive3d.sphere_figure(features, labels, weights, "cosface", 0.35)
    (first,) = interactive3d.export_plotly(figure, tmp_path / "a" / "sphere", formats=("html",))
    (second,) = interactive3d.export_plotly(figure, tmp_path / "b" / "sphere", formats=("html",))
    text = first.read_text(encoding="utf-8")
    assert "cdn.plot.ly" not in text
    assert 'src="http' not in text
    assert "MathJax" not in text.split("</script>", 1)[1]  # no MathJax loader after plotly.js
    assert "Plotly.newPlot" in text
    from plotly.offline import get_plotlyjs

    assert get_plotlyjs()[:2000] in text  # the plotly.js library itself is inlined
    assert first.read_bytes() == second.read_bytes()


def test_html_export_beside_a_local_plotlyjs(tmp_path):
    figure = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))
    (page,) = interactive3d.export_plotly(
        figure, tmp_path / "f", formats=("html",), plotlyjs="directory"
    )
    assert '<script charset="utf-8" src="plotly.min.js"></script>' in page.read_text()
    script = (tmp_path / "plotly.min.js").read_text()
    assert "cdn.plot.ly" not in script and len(script) > 1_000_000


def test_export_rejects_bad_arguments(tmp_path):
    figure = go.Figure()
    with pytest.raises(ValueError, match="formats"):
        interactive3d.export_plotly(figure, tmp_path / "x", formats=("gif",))
    with pytest.raises(ValueError, match="plotlyjs"):
        interactive3d.export_plotly(figure, tmp_path / "x", plotlyjs="cdn")


def test_export_without_chromium_writes_html_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(interactive3d, "find_chromium", lambda: None)
    written = interactive3d.export_plotly(go.Figure(), tmp_path / "only", formats=("png",))
    assert written == [tmp_path / "only.html"]
    message = capsys.readouterr().err.strip()
    assert "png" in message and "only.html" in message and "\n" not in message


@pytest.mark.skipif(interactive3d.find_chromium() is None, reason="no Chromium/Chrome installed")
def test_png_export_through_kaleido(tmp_path):
    from PIL import Image

    figure = go.Figure(go.Scatter(x=[0, 1, 2], y=[2, 0, 1]), layout={"width": 200, "height": 150})
    (png,) = interactive3d.export_plotly(figure, tmp_path / "small", formats=("png",), scale=1)
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.size == (200, 150)


def test_geometry_and_boundary_agree_on_who_wins():
    """Just inside the drawn boundary of class 0 geometry says class 0, just outside no class."""
    weights = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    traces = interactive3d.region_boundary_traces(weights, "a-softmax", 3, resolution=120)
    points = boundary_points(traces[0]) / interactive3d.BOUNDARY_LIFT
    towards = points + 0.05 * (weights[0] - points)
    away = points - 0.05 * (weights[0] - points)
    inside = geometry.classify_points(towards, weights, "a-softmax", 3)
    outside = geometry.classify_points(away, weights, "a-softmax", 3)
    assert np.mean(inside == 0) > 0.95
    assert np.mean(outside == -1) > 0.95
