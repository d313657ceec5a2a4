"""The SphereFace line's pictures: what is drawn is what the geometry says."""

from __future__ import annotations

import math
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest

from sphereviz import geometry, plots


def labelled(ax, label: str) -> list:
    return [line for line in ax.get_lines() if line.get_label() == label]


def test_target_curves_of_the_new_losses():
    theta = np.linspace(0, math.pi, 181)
    k = np.minimum(np.floor(1.5 * theta / math.pi), 1)
    expected_r = (-1.0) ** k * np.cos(1.5 * theta) - 2 * k
    np.testing.assert_allclose(
        plots.target_curve(theta, "sphereface-r", 1.5), expected_r, atol=1e-12
    )
    expected_2 = 2 * ((np.cos(theta) + 1) / 2) ** 3 - 1 - 0.3
    np.testing.assert_allclose(
        plots.target_curve(theta, "sphereface2", 0.3), expected_2, atol=1e-12
    )


def test_sphereface2_panel_draws_contested_and_unclaimed_stretches_and_the_softmax_rule():
    # three classes 120° apart with 50° caps: 20° unclaimed between each pair; 70° caps: 20°
    for cap_degrees, unclaimed, several in [(50.0, 60.0, 0.0), (70.0, 0.0, 60.0)]:
        rule = geometry.ClaimRule(
            bias=geometry.sphereface2_bias_for_cap(math.radians(cap_degrees), 0.4)
        )
        regions = plots.regions_for("sphereface2", 0.4, 3, claim_rule=rule, resolution=7200)
        fig, ax = plt.subplots()
        plots.draw_regions(ax, regions)
        assert len(labelled(ax, "softmax rule")) == 3
        assert len(labelled(ax, "claimed by several")) == (3 if several else 0)
        # (grid arcs end at their last grid point: one-step slivers between touching arcs)
        no_class = [p for p in ax.patches if p.get_label() == "no class"]
        assert sum(p.theta2 - p.theta1 > 0.5 for p in no_class) == (3 if unclaimed else 0)
        covered = sum(end - start for start, end in plots.uncovered_arcs(regions))
        assert math.degrees(covered) == pytest.approx(unclaimed, abs=0.5)
        text = plots.describe_regions(regions)
        numbers = [float(value) for value in re.findall(r"(\d+\.\d)°", text)]
        assert numbers == pytest.approx([unclaimed, several, 360 - unclaimed - several], abs=0.3)
        plt.close(fig)


def test_sphere_labels_mark_contested_points():
    points = geometry.fibonacci_sphere(3000)
    rule = geometry.ClaimRule(bias=geometry.sphereface2_bias_for_cap(math.radians(62.0), 0.4))
    labels = plots.sphere_region_labels(points, plots.TETRAHEDRON_WEIGHTS, "sphereface2", 0.4, rule)
    counts = geometry.claim_counts(points, plots.TETRAHEDRON_WEIGHTS, 0.4, rule).sum(1)
    np.testing.assert_array_equal(labels == -2, counts >= 2)
    np.testing.assert_array_equal(labels == -1, counts == 0)
    assert (labels == -1).any() and (labels == -2).any()
    a_softmax = plots.sphere_region_labels(points, plots.TETRAHEDRON_WEIGHTS, "a-softmax", 4)
    assert (a_softmax >= -1).all()


def test_figure_set_picture_of_the_sphereface_line():
    fig = plots.plot_sphereface_line_regions(num_sphere_points=1500)
    circles, spheres = fig.axes[0::2], fig.axes[1::2]
    assert [ax.get_title() for ax in circles] == [
        "A-Softmax, m = 4", "SphereFace-R, m = 1.5", "SphereFace2, m = 0.4"
    ]  # fmt: skip
    assert all(ax.name == "3d" for ax in spheres)
    sphere2_labels = {collection.get_label() for collection in spheres[2].collections}
    assert {"no class", "claimed by several"} <= sphere2_labels
    assert "claimed by several" not in {c.get_label() for c in spheres[1].collections}
    assert labelled(circles[2], "claimed by several")
    plt.close(fig)
    flat = plots.plot_sphereface_line_regions(sphere=False)
    assert len(flat.axes) == 3
    plt.close(flat)
