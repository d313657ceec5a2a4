"""The classroom widgets, driven headlessly: set control values, check outputs follow the math."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import ipywidgets  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402

from sphereviz import margins, widgets  # noqa: E402


def region_lines(ax) -> list:
    return [line for line in ax.get_lines() if line.get_label().endswith(" region")]


def arc_length(line) -> float:
    x, y = line.get_data()
    angles = np.unwrap(np.arctan2(y, x))
    return angles[-1] - angles[0]


@pytest.fixture
def explorer():
    return widgets.margin_explorer()


# ---------------------------------------------------------------------------------------------
# Margin explorer
# ---------------------------------------------------------------------------------------------


def test_criterion_flips_between_m3_and_m4_for_two_classes_at_90_degrees(explorer):
    """SphereFace §2: θ₁₂ = 90°: m = 3 gives span 67.5° > gap 45°, m = 4 span 48° < gap 54°."""
    assert explorer.controls["theta12"].value == 90.0
    assert explorer.m == 4
    at_m4 = explorer.summary
    readout_m4, image_m4 = explorer.readout.value, explorer.image.value
    assert at_m4["max_intra_class_angle_deg"] == pytest.approx(48.0)
    assert at_m4["min_inter_class_angle_deg"] == pytest.approx(54.0)
    assert at_m4["criterion_holds"] and "yes" in readout_m4

    explorer.controls["m"].value = 3
    at_m3 = explorer.summary
    assert at_m3["max_intra_class_angle_deg"] == pytest.approx(67.5)
    assert at_m3["min_inter_class_angle_deg"] == pytest.approx(45.0)
    assert not at_m3["criterion_holds"]
    assert "no" in explorer.readout.value and "67.5°" in explorer.readout.value
    assert explorer.image.value != image_m4

    explorer.controls["m"].value = 4  # and back: the same readout and picture as before
    assert explorer.readout.value == readout_m4
    assert explorer.image.value == image_m4


@pytest.mark.parametrize("m", [1, 2, 5])
def test_angular_margin_readout_is_m_minus_1_over_m_plus_1_theta12(explorer, m):
    """The binary angular margin of A-Softmax is (m−1)/(m+1)·θ₁₂ (SphereFace §3.3)."""
    explorer.controls["theta12"].value = 60.0
    explorer.controls["m"].value = m
    expected = (m - 1) / (m + 1) * 60.0
    assert explorer.summary["angular_margin_deg"] == pytest.approx(expected, abs=1e-9)
    assert f"{expected:.1f}°" in explorer.readout.value


def test_target_curve_is_psi_of_the_slider_m(explorer):
    explorer.controls["m"].value = 3
    target = next(line for line in explorer.target_ax.get_lines() if line.get_label() == "target")
    degrees, values = target.get_data()
    np.testing.assert_allclose(values, margins.psi(np.radians(degrees), 3), atol=1e-12)


def test_drawn_regions_follow_the_class_count(explorer):
    explorer.controls["num_classes"].value = 3
    explorer.controls["m"].value = 3
    # K = 3, m = 3: span 2θ/(m+1) = 60° equals the gap (m−1)θ/(m+1) = 60° (Property 3)
    assert explorer.summary["max_intra_class_angle_deg"] == pytest.approx(60.0)
    assert explorer.summary["min_inter_class_angle_deg"] == pytest.approx(60.0)
    assert explorer.summary["criterion_holds"]
    lines = region_lines(explorer.regions_ax)
    assert len(lines) == 3
    for line in lines:
        assert math.degrees(arc_length(line)) == pytest.approx(60.0)
    assert "theta12" not in explorer.visible_controls()


def test_only_the_current_loss_margin_slider_is_shown(explorer):
    def shown_m_sliders():
        return [c for c in explorer.controls_box.children if c.description == "m"]

    (slider,) = shown_m_sliders()
    assert isinstance(slider, ipywidgets.IntSlider)  # A-Softmax's m is an integer
    explorer.controls["loss"].value = "cosface"
    (slider,) = shown_m_sliders()
    assert isinstance(slider, ipywidgets.FloatSlider)
    slider.value = 0.5
    # CosFace, two classes θ₁₂ apart: the gap is 2·asin(m / (2 sin(θ₁₂/2)))
    expected = math.degrees(2 * math.asin(0.5 / (2 * math.sin(math.radians(45)))))
    assert explorer.summary["angular_margin_deg"] == pytest.approx(expected)
    explorer.controls["loss"].value = "arcface"
    explorer.controls["m_arcface"].value = 0.4
    # ArcFace: θ₁ + m < θ₂ leaves a gap of exactly m radians
    assert explorer.summary["angular_margin_deg"] == pytest.approx(math.degrees(0.4))
    explorer.controls["loss"].value = "modified-softmax"
    assert shown_m_sliders() == []
    assert explorer.summary["angular_margin_deg"] == pytest.approx(0.0, abs=1e-9)


def test_sphereface_r_slider_shows_fractional_m_exactly(explorer):
    explorer.controls["loss"].value = "sphereface-r"
    (slider,) = [c for c in explorer.controls_box.children if c.description == "m"]
    assert isinstance(slider, ipywidgets.FloatSlider) and slider.value == 1.5
    slider.value = 1.7
    # two classes 90° apart: the real ψ_m rule leaves (m − 1)/(m + 1)·θ₁₂ between the regions
    assert explorer.summary["angular_margin_deg"] == pytest.approx(0.7 / 2.7 * 90.0)
    assert "m = 1.7" in explorer.target_ax.get_title()


def test_sphereface2_shows_its_bias_and_what_no_class_or_several_classes_claim(explorer):
    from sphereviz import geometry

    explorer.controls["loss"].value = "sphereface2"
    explorer.controls["num_classes"].value = 3
    assert {"m_sphereface2", "bias_sphereface2"} <= set(explorer.visible_controls())
    for cap_degrees in (50.0, 70.0):  # three classes 120° apart: gaps, then overlaps
        bias = geometry.sphereface2_bias_for_cap(math.radians(cap_degrees), 0.4)
        explorer.controls["bias_sphereface2"].value = round(bias * 2) / 2
        b = explorer.controls["bias_sphereface2"].value
        cap = math.degrees(geometry.sphereface2_cap_angle(0.4, 40.0, b, 3))
        expected_unclaimed = max(0.0, 360.0 - 3 * 2 * cap)
        expected_several = 3 * max(0.0, 2 * cap - 120.0)
        assert (expected_unclaimed > 10) == (cap_degrees == 50.0)
        counts = explorer.regions.grid_claim_counts
        assert 360 * np.mean(counts == 0) == pytest.approx(expected_unclaimed, abs=0.3)
        assert 360 * np.mean(counts >= 2) == pytest.approx(expected_several, abs=0.3)
        readout = explorer.readout.value
        assert f"{360 * np.mean(counts == 0):.1f}°" in readout
        assert f"{360 * np.mean(counts >= 2):.1f}°" in readout


def test_softmax_bias_moves_the_boundary(explorer):
    explorer.controls["loss"].value = "softmax"
    assert {"weight_norm", "bias"} <= set(explorer.visible_controls())
    first_before = arc_length(region_lines(explorer.regions_ax)[0])
    explorer.controls["bias"].value = 0.5
    first_after = arc_length(region_lines(explorer.regions_ax)[0])
    # with W₁, W₂ unit vectors 90° apart the boundary is cos(φ−α₁) + b₁ = cos(φ−α₂):
    # √2·sin(φ−π/2) = −b₁ on the unit circle, so class 1 gains 2·asin(b₁/√2) of arc
    assert first_before == pytest.approx(math.pi, abs=0.01)
    assert first_after - first_before == pytest.approx(2 * math.asin(0.5 / math.sqrt(2)), abs=0.01)


def test_explorer_displays_its_widget(explorer):
    assert isinstance(explorer.widget, ipywidgets.VBox)
    assert hasattr(explorer, "_ipython_display_")
    assert b"<svg" in bytes(explorer.image.value)[:1000]
    assert explorer.image.format == "svg+xml"


def test_margin_explorer_validates_its_arguments():
    with pytest.raises(ValueError, match="unknown loss"):
        widgets.margin_explorer(loss="hinge")
    with pytest.raises(ValueError, match="CosFace or ArcFace"):
        widgets.margin_explorer(loss="a-softmax", m=2.5)
    with pytest.raises(ValueError, match="num_classes"):
        widgets.margin_explorer(num_classes=1)
    explorer = widgets.margin_explorer(loss="cosface", m=0.2, num_classes=3)
    assert explorer.m == 0.2 and explorer.controls["m"].value == 4


def test_readout_says_when_no_class_wins(explorer):
    explorer.controls["loss"].value = "cosface"
    explorer.controls["num_classes"].value = 12
    explorer.controls["m_cosface"].value = 0.8
    # 12 classes 30° apart: CosFace needs m < 2·sin(15°) ≈ 0.52 for any region to exist
    assert all(arcs == () for arcs in explorer.regions.arcs)
    assert "no class wins" in explorer.readout.value
    assert "nan" not in explorer.readout.value


# ---------------------------------------------------------------------------------------------
# Sphere explorer
# ---------------------------------------------------------------------------------------------


def synthetic_runs():
    """Four 'runs' whose features tighten around their class weights as m grows."""
    rng = np.random.default_rng(0)
    weights = np.eye(3)[[0, 1, 2, 0]] * np.array([1, 1, 1, -1])[:, None]
    labels = np.repeat(np.arange(4), 25)
    runs = []
    for m in (1, 2, 3, 4):
        features = weights[labels] + (0.6 / m) * rng.normal(size=(100, 3))
        runs.append(
            {"features": features, "labels": labels, "class_weights": weights, "loss": "a-softmax",
             "m": m, "title": f"m = {m}"}
        )  # fmt: skip
    return runs


def test_sphere_explorer_switches_runs():
    runs = synthetic_runs()
    explorer = widgets.sphere_explorer(runs)
    assert explorer.figure.layout.title.text.startswith("m = 1")
    image_m1 = explorer.histogram_image.value
    same_m1 = np.median(explorer.pair_angles.same_class)
    explorer.controls["run"].value = 3
    assert explorer.figure.layout.title.text.startswith("m = 4")
    assert explorer.histogram_image.value != image_m1
    # tighter classes: the same-class angles shrink
    assert np.median(explorer.pair_angles.same_class) < same_m1
    # all 100·99/2 pairs are counted, split by class
    counts = len(explorer.pair_angles.same_class) + len(explorer.pair_angles.different_class)
    assert counts == 100 * 99 // 2
    assert len(explorer.pair_angles.same_class) == 4 * 25 * 24 // 2
    for trace in explorer.figure.data:
        if (trace.name or "").startswith("class "):
            xyz = np.stack([trace.x, trace.y, trace.z], axis=1)
            np.testing.assert_allclose(np.linalg.norm(xyz, axis=1), 1.0, atol=1e-9)
    assert "Angular Fisher Score" in explorer.readout.value


def widget_tree(widget) -> list:
    """``widget`` and every widget inside it (children of boxes), depth first."""
    return [widget] + [
        inner for child in getattr(widget, "children", ()) for inner in widget_tree(child)
    ]


def shown_class_points(figure_widget, name: str) -> np.ndarray:
    (trace,) = [trace for trace in figure_widget.data if trace.name == name]
    return np.stack([trace.x, trace.y, trace.z], axis=1)


def test_sphere_explorer_updates_one_figure_widget_in_place():
    """The sphere is one FigureWidget that shows each run's features as x/‖x‖ when the
    slider moves."""
    import plotly.graph_objects as go

    runs = synthetic_runs()
    explorer = widgets.sphere_explorer(runs)
    figure_widget = explorer.figure_widget
    tree = widget_tree(explorer.widget)
    assert isinstance(figure_widget, go.FigureWidget) and figure_widget in tree
    for index in (3, 1):
        explorer.controls["run"].value = index
        assert explorer.figure_widget is figure_widget
        assert figure_widget.layout.title.text == explorer.figure.layout.title.text
        assert figure_widget.layout.title.text.startswith(f"m = {index + 1}")
        features, labels = runs[index]["features"], runs[index]["labels"]
        for label in range(4):
            own = features[labels == label]
            np.testing.assert_allclose(
                shown_class_points(figure_widget, f"class {label}"),
                own / np.linalg.norm(own, axis=1, keepdims=True),
                atol=1e-12,
            )


@pytest.mark.parametrize("make", ["margin_explorer", "sphere_explorer", "train_explorer"])
def test_no_explorer_holds_an_output_widget(make):
    """papermill (nbclient) can wait for ever on a cell whose ipywidgets.Output captures a
    large output (jupyter/nbclient#312), so the explorers draw into widgets of their own."""
    arguments = {"sphere_explorer": (synthetic_runs()[:2],)}.get(make, ())
    explorer = getattr(widgets, make)(*arguments)
    tree = widget_tree(explorer.widget)
    assert len(tree) > 3
    assert not [widget for widget in tree if isinstance(widget, ipywidgets.Output)]


def test_sphere_explorer_replaces_traces_when_their_number_changes():
    runs = synthetic_runs()
    no_loss = {**runs[0], "loss": None, "title": "no loss"}  # no region boundaries
    explorer = widgets.sphere_explorer([runs[3], no_loss, runs[3]])
    names = [trace.name for trace in explorer.figure_widget.data]
    assert sum(name.startswith("boundary ") for name in names) == 4
    explorer.controls["run"].value = 1
    shown = [trace.name for trace in explorer.figure_widget.data]
    assert shown == [trace.name for trace in explorer.figure.data]
    assert not [name for name in shown if name.startswith("boundary ")]
    assert len(shown) == len(names) - 4
    explorer.controls["run"].value = 2
    assert [trace.name for trace in explorer.figure_widget.data] == names


def test_sphere_explorer_keeps_the_camera_across_runs():
    """A student who turned the sphere compares the next run from the same viewpoint."""
    explorer = widgets.sphere_explorer(synthetic_runs())
    default_eye = explorer.figure.layout.scene.camera.eye.to_plotly_json()
    turned = {"x": -0.4, "y": 1.9, "z": 0.3}
    assert turned != default_eye
    # what the front end reports back when the student drags the sphere
    explorer.figure_widget.layout.scene.camera.eye = turned
    explorer.controls["run"].value = 2
    assert explorer.figure_widget.layout.scene.camera.eye.to_plotly_json() == turned
    assert explorer.figure.layout.scene.camera.eye.to_plotly_json() == turned
    assert explorer.figure.layout.title.text.startswith("m = 3")


def test_sphere_explorer_redraws_the_histograms_and_keeps_the_legend_off_the_bars():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    runs = synthetic_runs()
    explorer = widgets.sphere_explorer(runs)
    for index in (3, 1, 0):  # back to the first run after two others
        explorer.controls["run"].value = index
    ax = explorer.histogram_ax
    # only the current run's bars: 2 histograms of 45 bins, all 100·99/2 pairs once
    assert len(ax.containers) == 2 and len(ax.patches) == 90
    assert sum(bar.get_height() for c in ax.containers for bar in c) == 100 * 99 // 2
    FigureCanvasAgg(explorer.histogram_figure).draw()
    box = ax.get_legend().get_window_extent()
    bars = [bar for c in ax.containers for bar in c if bar.get_height() > 0]
    assert not [bar for bar in bars if box.overlaps(bar.get_window_extent())]
    assert box.y0 >= 0  # inside the image, below the axis label


def test_sphere_explorer_names_the_classes_when_the_runs_do():
    runs = synthetic_runs()
    names = ["Ada", "Grace", "Alan", "Edsger"]
    named = [{**run, "class_names": names} for run in runs]
    explorer = widgets.sphere_explorer(named)
    markers = [t for t in explorer.figure.data if t.type == "scatter3d" and t.mode == "markers"]
    assert [t.name for t in markers] == names
    with pytest.raises(ValueError, match="integers in 0 … 2 to index the 3 class_names"):
        widgets.sphere_explorer([{**runs[0], "class_names": names[:3]}])


def test_sphere_explorer_names_mnist_runs_by_digit():
    from sphereviz.config import TrainConfig
    from sphereviz.runs import Run

    run = synthetic_runs()[0]
    embeddings = {key: run[key] for key in ("features", "labels", "class_weights")}
    explorer = widgets.sphere_explorer([Run(None, TrainConfig(dim=3), [], embeddings)])
    markers = [t for t in explorer.figure.data if t.type == "scatter3d" and t.mode == "markers"]
    assert [t.name for t in markers] == ["digit 0", "digit 1", "digit 2", "digit 3"]


def test_sphere_explorer_needs_runs():
    with pytest.raises(ValueError, match="runs is empty"):
        widgets.sphere_explorer([])


# ---------------------------------------------------------------------------------------------
# Train explorer
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_explorer_draws_every_epoch_on_the_circle():
    from sphereviz.config import TrainConfig

    base = TrainConfig.preset(
        "mnist-demo", epochs=2, max_train_samples=128, max_test_samples=60, device="cpu"
    )
    explorer = widgets.train_explorer(base)
    explorer.controls["dim"].value = 2
    explorer.controls["m"].value = 2
    config = explorer.config()
    assert (config.loss, config.m, config.dim, config.out) == ("a-softmax", 2, 2, None)

    images = []
    run = explorer.train(on_epoch=lambda *_: images.append(explorer.image.value))
    assert explorer.progress.value == explorer.progress.max == 2
    assert [row["epoch"] for row in explorer.history] == [1, 2]
    assert len(images) == 2 and images[0] != images[1]
    assert "epoch 2" in explorer.readout.value
    assert run.embeddings["features"].shape == (60, 2)
    (ax,) = explorer.figure.axes
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]  # not the rings
    points = np.concatenate([c.get_offsets() for c in scatters])
    assert len(points) == 60
    np.testing.assert_allclose(np.linalg.norm(points, axis=1), 1.0, atol=1e-9)
    assert not explorer.controls["train"].disabled


def test_train_explorer_sets_each_loss_margin():
    explorer = widgets.train_explorer()
    explorer.controls["loss"].value = "cosface"
    assert explorer.config().m == pytest.approx(0.35)
    explorer.controls["loss"].value = "softmax"
    assert explorer.controls["m"].disabled and explorer.config().m is None
    explorer.controls["loss"].value = "a-softmax"
    assert explorer.config().m == 4 and isinstance(explorer.config().m, int)
    explorer.controls["loss"].value = "sphereface-r"
    assert explorer.config().m == pytest.approx(1.5)
    explorer.controls["loss"].value = "sphereface2"
    assert explorer.config().m == pytest.approx(0.4) and explorer.config().loss == "sphereface2"
