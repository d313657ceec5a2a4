"""Views that hide nothing: the chosen view direction, the equal-area map, weight markers that
cover no feature, the ring histogram and the own-angle strip, each against an independent
computation."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402

from sphereviz import plots  # noqa: E402
from sphereviz.plots import sphere_views  # noqa: E402
from sphereviz.style import class_colors  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def random_rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def cap_points(center, radius: float, count: int, rng) -> np.ndarray:
    """``count`` unit vectors uniformly spread over the spherical cap of angular ``radius``."""
    center = np.asarray(center, float) / np.linalg.norm(center)
    helper = np.eye(3)[np.argmin(np.abs(center))]
    first = np.cross(center, helper)
    first /= np.linalg.norm(first)
    second = np.cross(center, first)
    z = rng.uniform(math.cos(radius), 1.0, count)  # uniform in z is uniform in area
    phi = rng.uniform(0, 2 * math.pi, count)
    ring = np.sqrt(1 - z**2)
    return (
        z[:, None] * center
        + (ring * np.cos(phi))[:, None] * first
        + (ring * np.sin(phi))[:, None] * second
    )


def one_hemisphere_clusters(seed: int = 0, classes: int = 5, per_class: int = 60):
    """Clusters whose centres lie within 60° of a random axis u, each 8° wide: all of them lie
    on the hemisphere around u, with 22° to spare."""
    rng = np.random.default_rng(seed)
    rotation = random_rotation(seed)
    axis = rotation[:, 2]
    centres = []
    for k in range(classes):
        tilt, turn = math.radians(60) * (k > 0), 2 * math.pi * k / classes
        centres.append(
            rotation
            @ [math.sin(tilt) * math.cos(turn), math.sin(tilt) * math.sin(turn), math.cos(tilt)]
        )
    points = np.concatenate([cap_points(c, math.radians(8), per_class, rng) for c in centres])
    labels = np.repeat(np.arange(classes), per_class)
    return points, labels, np.array(centres), axis


# ---------------------------------------------------------------------------------------------
# The view direction
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", sphere_views.VIEW_METHODS)
def test_the_chosen_view_sees_every_cluster_of_one_hemisphere(seed, method):
    points, labels, centres, axis = one_hemisphere_clusters(seed)
    direction = sphere_views.view_direction(points, labels, method=method)
    assert np.linalg.norm(direction) == pytest.approx(1.0)
    # every point and every class centre faces the viewer, as they all face the known axis
    assert np.all(points @ direction > 0), (points @ direction).min()
    assert np.all(centres @ direction > 0)
    assert np.all(points @ axis > 0)


def test_the_view_of_one_cap_looks_at_its_centre():
    rng = np.random.default_rng(3)
    center = np.array([0.3, -0.8, 0.5]) / np.linalg.norm([0.3, -0.8, 0.5])
    points = cap_points(center, math.radians(20), 500, rng)
    for method in ("mean", "points"):
        direction = sphere_views.view_direction(points, method=method)
        # the mean of a cap's uniform points lies along its centre; the lattice is 4.5° apart
        assert math.degrees(math.acos(min(1.0, direction @ center))) < 6.0


def test_the_view_beats_a_fixed_view_when_the_largest_class_is_behind():
    """The old fixed view (elev 30°, azim −60°) against the chosen one, on data where the
    largest class sits on the far side of the fixed view."""
    fixed = np.array(sphere_views.map_frame([0.433, -0.75, 0.5])[0])
    rng = np.random.default_rng(4)
    largest = cap_points(-fixed, math.radians(15), 400, rng)
    small = cap_points(fixed, math.radians(15), 50, rng)
    points = np.concatenate([largest, small])
    direction = sphere_views.view_direction(points)
    assert sphere_views.visible_fraction(points, fixed) < 0.15
    assert sphere_views.visible_fraction(points, direction) >= 400 / 450


def test_view_angles_and_the_drawn_view_look_from_the_direction():
    direction = np.array([-0.2, 0.7, 0.4]) / np.linalg.norm([-0.2, 0.7, 0.4])
    elev, azim = sphere_views.view_angles(direction)
    eye = [
        math.cos(math.radians(elev)) * math.cos(math.radians(azim)),
        math.cos(math.radians(elev)) * math.sin(math.radians(azim)),
        math.sin(math.radians(elev)),
    ]
    np.testing.assert_allclose(eye, direction, atol=1e-12)

    from mpl_toolkits.mplot3d import proj3d

    fig = plt.figure(figsize=(3, 3))
    ax = fig.add_subplot(projection="3d")
    plots.draw_unit_sphere_features(ax, [direction], [0], view=direction)
    fig.canvas.draw()
    frame = sphere_views.map_frame(direction)
    xs, ys, _ = proj3d.proj_transform(*np.stack([np.zeros(3), *frame]).T, ax.get_proj())
    # the view direction projects onto the centre; the frame's e₂ is right and e₃ up
    assert xs[1] == pytest.approx(xs[0], abs=1e-9) and ys[1] == pytest.approx(ys[0], abs=1e-9)
    assert xs[2] > xs[0] and ys[2] == pytest.approx(ys[0], abs=1e-9)
    assert ys[3] > ys[0] and xs[3] == pytest.approx(xs[0], abs=1e-9)


def test_view_direction_rejects_bad_input():
    with pytest.raises(ValueError, match="method must be one of"):
        sphere_views.view_direction(np.eye(3), method="best")
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        sphere_views.view_direction(np.ones((4, 2)))
    with pytest.raises(ValueError, match="needs the labels"):
        sphere_views.view_direction(np.eye(3), method="class-means")
    with pytest.raises(ValueError, match="non-zero 3-vector"):
        sphere_views.view_angles([0, 0, 0])


def test_the_back_hemisphere_is_hidden_and_the_front_drawn_in_the_colours_of_all():
    points, labels, _, _ = one_hemisphere_clusters(5)
    points = np.concatenate([points, -points[:60]])  # class 0 again, on the far side
    labels = np.concatenate([labels, np.full(60, 5)])
    view = sphere_views.view_direction(points)
    fig = plt.figure(figsize=(3, 3))
    ax = fig.add_subplot(projection="3d")
    plots.draw_unit_sphere_features(ax, points, labels, view=view)
    drawn = {c.get_label(): np.stack(c._offsets3d, 1) for c in ax.collections
             if isinstance(c, PathCollection) and c.get_label().startswith("class")}  # fmt: skip
    front = points @ view >= 0
    assert sum(len(v) for v in drawn.values()) == front.sum()
    assert "class 5" not in drawn  # all of it is behind
    colors = class_colors(6)
    for collection in ax.collections:
        if collection.get_label() == "class 4":
            np.testing.assert_allclose(
                collection.get_facecolor()[0][:3], matplotlib.colors.to_rgb(colors[4])
            )


# ---------------------------------------------------------------------------------------------
# The equal-area map
# ---------------------------------------------------------------------------------------------


def shoelace_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def cap_boundary(center, radius: float, count: int = 4000) -> np.ndarray:
    center = np.asarray(center, float) / np.linalg.norm(center)
    helper = np.eye(3)[np.argmin(np.abs(center))]
    first = np.cross(center, helper)
    first /= np.linalg.norm(first)
    second = np.cross(center, first)
    phi = np.linspace(0, 2 * math.pi, count, endpoint=False)[:, None]
    return math.cos(radius) * center + math.sin(radius) * (
        np.cos(phi) * first + np.sin(phi) * second
    )


@pytest.mark.parametrize("projection", sphere_views.EQUAL_AREA_PROJECTIONS)
@pytest.mark.parametrize(
    ("offset_deg", "bearing_deg", "radius_deg"),
    [(0, 0, 30), (0, 0, 85), (50, 30, 25), (100, 200, 40), (60, -80, 25), (40, 150, 45)],
)
def test_the_map_keeps_the_area_of_spherical_caps(projection, offset_deg, bearing_deg, radius_deg):
    """Projected area of a cap / area of the whole map = 2π(1 − cos a) / 4π."""
    center = np.array([0.2, -0.5, 0.8]) / np.linalg.norm([0.2, -0.5, 0.8])
    frame = sphere_views.map_frame(center)
    offset, bearing = math.radians(offset_deg), math.radians(bearing_deg)
    cap_center = math.cos(offset) * frame[0] + math.sin(offset) * (
        math.cos(bearing) * frame[1] + math.sin(bearing) * frame[2]
    )
    fig = plt.figure()
    ax = fig.add_subplot(projection=projection)
    transform = ax.transProjection
    longitude, latitude = sphere_views.map_coordinates(
        cap_boundary(cap_center, math.radians(radius_deg)), center
    )
    assert np.abs(longitude).max() < math.pi - 0.05  # the cap crosses no seam of the map
    cap = shoelace_area(transform.transform(np.column_stack([longitude, latitude])))
    rim = np.linspace(-math.pi / 2, math.pi / 2, 4001)
    outline = np.concatenate(
        [np.column_stack([np.full_like(rim, math.pi), rim[::-1]]),
         np.column_stack([np.full_like(rim, -math.pi), rim])]
    )  # fmt: skip
    whole = shoelace_area(transform.transform(outline))
    expected = 2 * math.pi * (1 - math.cos(math.radians(radius_deg))) / (4 * math.pi)
    assert cap / whole == pytest.approx(expected, rel=2e-3)


def test_map_coordinates_put_the_centre_in_the_middle_and_the_right_on_the_right():
    center = np.array([1.0, 2.0, -0.5])
    frame = sphere_views.map_frame(center)
    np.testing.assert_allclose(frame @ frame.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(frame) == pytest.approx(1.0)
    angle = math.radians(30)
    points = np.array(
        [frame[0], math.cos(angle) * frame[0] + math.sin(angle) * frame[1], frame[2], -frame[0]]
    )
    longitude, latitude = sphere_views.map_coordinates(points, center)
    np.testing.assert_allclose(longitude[:2], [0, angle], atol=1e-12)  # [2]: a pole, no λ
    np.testing.assert_allclose(latitude[:3], [0, 0, math.pi / 2], atol=1e-12)
    assert abs(longitude[3]) == pytest.approx(math.pi)


def test_the_map_draws_every_point_where_map_coordinates_put_it():
    points, labels, centres, _ = one_hemisphere_clusters(6)
    points = np.concatenate([points, -points])  # the back too: the map shows all of it
    labels = np.concatenate([labels, labels])
    fig = plt.figure()
    ax = fig.add_subplot(projection="hammer")
    center = sphere_views.draw_equal_area_map(ax, points, labels, centres)
    longitude, latitude = sphere_views.map_coordinates(points, center)
    for cls in range(5):
        (collection,) = [c for c in ax.collections if c.get_label() == f"class {cls}"]
        np.testing.assert_allclose(
            collection.get_offsets(), np.column_stack([longitude, latitude])[labels == cls]
        )
    (rings,) = [c for c in ax.collections if c.get_label() == "weights"]
    assert len(rings.get_offsets()) == len(centres)
    assert np.all(rings.get_facecolor()[:, 3] == 0) if len(rings.get_facecolor()) else True
    with pytest.raises(ValueError, match="equal-area map axes"):
        sphere_views.draw_equal_area_map(fig.add_subplot(2, 1, 2), points, labels)


# ---------------------------------------------------------------------------------------------
# Weight markers cover no feature
# ---------------------------------------------------------------------------------------------


def distance_to_segment(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    along = np.clip((points - start) @ (end - start) / np.sum((end - start) ** 2), 0, 1)
    return np.linalg.norm(points - (start + along[:, None] * (end - start)), axis=1)


def circle_data(seed: int = 0, classes: int = 6, per_class: int = 150):
    rng = np.random.default_rng(seed)
    angles = 2 * math.pi * np.arange(classes) / classes
    labels = np.repeat(np.arange(classes), per_class)
    theta = angles[labels] + rng.normal(0, 0.25, labels.size)
    radii = rng.uniform(0.5, 30, labels.size)
    features = radii[:, None] * np.column_stack([np.cos(theta), np.sin(theta)])
    weights = 3.0 * np.column_stack([np.cos(angles), np.sin(angles)])
    return features, labels, weights


@pytest.mark.parametrize("panel", [0, 1])
def test_weight_ticks_on_the_plane_are_clear_of_every_feature_point(panel):
    """In pixels: each point's marker (radius √s/2 pt) is farther from every weight tick than
    half the tick's width."""
    features, labels, weights = circle_data()
    fig = plots.plot_features_2d(features, labels, weights)
    fig.canvas.draw()
    ax = fig.axes[panel]
    points = np.concatenate([c.get_offsets() for c in ax.collections
                             if isinstance(c, PathCollection)])  # fmt: skip
    assert len(points) == len(features)
    pixels = ax.transData.transform(points)
    to_pixels = fig.dpi / 72
    marker_radius = math.sqrt(3.0) / 2 * to_pixels
    ticks = [line for line in ax.lines if line.get_label().startswith("_weight")]
    assert len(ticks) == len(weights)
    for tick, w in zip(ticks, weights, strict=True):
        ends = ax.transData.transform(tick.get_xydata())
        direction = np.diff(tick.get_xydata(), axis=0)[0]
        assert direction @ w / (np.linalg.norm(direction) * np.linalg.norm(w)) > 1 - 1e-9
        clearance = distance_to_segment(pixels, ends[0], ends[1]).min()
        assert clearance > marker_radius + tick.get_linewidth() / 2 * to_pixels


def test_weight_rings_on_the_sphere_are_hollow_and_wider_than_a_tight_cluster():
    """A cluster 1° wide around W: every point's marker lies inside the ring's hole."""
    rng = np.random.default_rng(7)
    weights = np.array([[0.3, 0.2, 0.93], [-0.6, 0.7, 0.2], [0.5, -0.8, 0.3]])
    weights /= np.linalg.norm(weights, axis=1, keepdims=True)
    points = np.concatenate([cap_points(w, math.radians(1.0), 80, rng) for w in weights])
    labels = np.repeat(np.arange(3), 80)
    fig = plt.figure(figsize=(3, 3))
    ax = fig.add_subplot(projection="3d")
    view = plots.draw_unit_sphere_features(ax, points, labels, weights)
    fig.canvas.draw()
    assert [line.get_label() for line in ax.lines] == ["_outline"]  # no ray through the sphere
    from mpl_toolkits.mplot3d import proj3d

    def to_pixels(xyz):
        x, y, _ = proj3d.proj_transform(*np.asarray(xyz).T, ax.get_proj())
        return ax.transData.transform(np.column_stack([x, y]))

    rings = [c for c in ax.collections if c.get_label() in ("weights", "_weights halo")]
    assert len(rings) == 2
    for ring in rings:
        assert len(ring.get_facecolor()) == 0 or np.all(ring.get_facecolor()[:, 3] == 0)
    scale = fig.dpi / 72
    hole = (math.sqrt(sphere_views.WEIGHT_RING_SIZE) / 2 - max(r.get_linewidth()[0] for r in rings)
            / 2) * scale  # fmt: skip
    marker_radius = math.sqrt(3.0) / 2 * scale
    for cls, w in enumerate(weights):
        if w @ view < 0:
            continue
        distances = np.linalg.norm(to_pixels(points[labels == cls]) - to_pixels([w]), axis=1)
        assert distances.max() + marker_radius < hole


# ---------------------------------------------------------------------------------------------
# Ring histogram and own-angle strip
# ---------------------------------------------------------------------------------------------


def test_ring_histogram_counts_equal_numpy_histograms_and_bars_stack_them():
    features, labels, weights = circle_data(seed=1)
    fig, ax = plt.subplots()
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    drawn = plots.draw_unit_circle_features(ax, unit, labels, weights, bins=36)
    angles = np.arctan2(features[:, 1], features[:, 0])
    edges = np.linspace(-math.pi, math.pi, 37)
    expected = np.stack([np.histogram(angles[labels == c], bins=edges)[0] for c in range(6)])
    np.testing.assert_array_equal(drawn.counts, expected)
    assert drawn.counts.sum() == len(features)
    # the drawn bars: for each class, the outer radius of each sector is the stack so far
    stacks = np.cumsum(expected, axis=0)
    tallest = stacks[-1].max()
    assert drawn.unit_length * tallest == pytest.approx(0.42)
    bars = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert [b.get_label() for b in bars] == [f"class {c} angles" for c in range(6)]
    for cls, bar in enumerate(bars):
        nonzero = np.flatnonzero(expected[cls])
        assert len(bar.get_paths()) == len(nonzero)
        for path, b in zip(bar.get_paths(), nonzero, strict=True):
            radii = np.linalg.norm(path.vertices, axis=1)
            middle = math.atan2(*path.vertices[:, ::-1].mean(axis=0))
            assert edges[b] <= middle <= edges[b + 1]
            assert radii.max() == pytest.approx(drawn.base_radius + stacks[cls, b] *
                                                drawn.unit_length)  # fmt: skip


def test_ring_histograms_of_several_panels_share_one_count_scale():
    wide, labels, _ = circle_data(seed=3)
    tight = wide.copy()
    tight[labels == 0] = [1.0, 0.0]  # all of class 0 at one angle: a tall stack
    unit_sets = [f / np.linalg.norm(f, axis=1, keepdims=True) for f in (wide, tight)]
    length = sphere_views.ring_unit_length(unit_sets, bins=36, height=0.5)
    edges = np.linspace(-math.pi, math.pi, 37)
    tallest = max(np.histogram(np.arctan2(u[:, 1], u[:, 0]), bins=edges)[0].max()
                  for u in unit_sets)  # fmt: skip
    assert length == pytest.approx(0.5 / tallest)
    fig, axes = plt.subplots(1, 2)
    drawn = [plots.draw_unit_circle_features(ax, u, labels, bins=36, ring_unit_length=length)
             for ax, u in zip(axes, unit_sets, strict=True)]  # fmt: skip
    assert [d.unit_length for d in drawn] == [length, length]
    with pytest.raises(ValueError, match="unit_length must be a positive"):
        sphere_views.draw_ring_histogram(axes[0], unit_sets[0], labels, unit_length=0.0)


def test_own_angle_histogram_counts_the_angle_to_the_own_weight():
    features, labels, weights = circle_data(seed=2)
    fig, ax = plt.subplots()
    counts = sphere_views.draw_own_angle_histogram(ax, features, labels, weights, 45.0, 15)
    cos = np.sum(features * weights[labels], axis=1) / (
        np.linalg.norm(features, axis=1) * np.linalg.norm(weights[labels], axis=1)
    )
    own = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    expected, _ = np.histogram(np.minimum(own, 45.0), bins=np.linspace(0, 45, 16))
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == len(features)
    (median,) = [line for line in ax.lines if line.get_label() == "median θ_y"]
    assert median.get_xdata()[0] == pytest.approx(np.median(own))


# ---------------------------------------------------------------------------------------------
# The sphere figure draws what it claims
# ---------------------------------------------------------------------------------------------


def sphere_runs():
    runs = []
    for m in (1, 2, 3, 4):
        points, labels, centres, _ = one_hemisphere_clusters(seed=10)
        spread = np.random.default_rng(m).normal(0, 0.3 / m, points.shape)
        runs.append((f"m = {m}", 5 * (points + spread), labels, centres))
    return runs


def test_sphere_figure_has_a_view_a_map_and_a_strip_per_panel_sharing_view_and_scale():
    runs = sphere_runs()
    fig = plots.plot_features_sphere(runs)
    views = [ax for ax in fig.axes if ax.name == "3d"]
    maps = [ax for ax in fig.axes if ax.name == "hammer"]
    strips = [ax for ax in fig.axes if ax.name == "rectilinear"]
    assert len(views) == len(maps) == len(strips) == 4
    pooled = np.concatenate([f / np.linalg.norm(f, axis=1, keepdims=True) for _, f, *_ in runs])
    shared = sphere_views.view_direction(pooled)
    elev, azim = sphere_views.view_angles(shared)
    for view, map_ax, (_, features, *_) in zip(views, maps, runs, strict=True):
        assert (view.elev, view.azim) == pytest.approx((elev, azim))
        unit = features / np.linalg.norm(features, axis=1, keepdims=True)
        shown = sum(len(c.get_offsets()) for c in view.collections
                    if c.get_label().startswith("class"))  # fmt: skip
        assert shown == np.sum(unit @ shared >= 0)
        mapped = sum(len(c.get_offsets()) for c in map_ax.collections
                     if c.get_label().startswith("class"))  # fmt: skip
        assert mapped == len(features)
    assert all(s.get_ylim() == strips[0].get_ylim() for s in strips)
    assert all(s.get_xlim() == strips[0].get_xlim() for s in strips)
    tallest = max(p.get_height() for s in strips for p in s.patches)
    assert tallest <= strips[0].get_ylim()[1] < 1.2 * tallest
    # the tightest run has the smallest median angle to its own weight
    medians = [next(line.get_xdata()[0] for line in s.lines) for s in strips]
    assert medians == sorted(medians, reverse=True)


def test_sphere_figure_options():
    runs = sphere_runs()[:2]
    plain = plots.plot_features_sphere(runs, equal_area_map=None, own_angle_strip=False)
    assert [ax.name for ax in plain.axes] == ["3d", "3d"]
    each = plots.plot_features_sphere(runs, view="each", equal_area_map="mollweide")
    assert sorted(ax.name for ax in each.axes).count("mollweide") == 2
    given = plots.plot_features_sphere(runs, view=[0, 0, 1], own_angle_strip=False)
    assert [ax.elev for ax in given.axes if ax.name == "3d"] == pytest.approx([90, 90])
    with pytest.raises(ValueError, match="equal_area_map must be one of"):
        plots.plot_features_sphere(runs, equal_area_map="mercator")
    with pytest.raises(ValueError, match="view must be one of"):
        plots.plot_features_sphere(runs, view="best")
    with pytest.raises(ValueError, match="back must be one of"):
        plots.plot_features_sphere(runs, back="ghost")


def test_interactive_sphere_starts_from_the_same_view_as_the_static_one():
    from sphereviz.plots import interactive3d

    points, labels, centres, _ = one_hemisphere_clusters(seed=11)
    figure = interactive3d.sphere_figure(3 * points, labels, centres, loss=None)
    camera = figure.layout.scene.camera
    eye = np.array([camera.eye.x, camera.eye.y, camera.eye.z])
    np.testing.assert_allclose(eye / np.linalg.norm(eye), sphere_views.view_direction(points))
    assert np.linalg.norm(eye) == pytest.approx(interactive3d.EYE_DISTANCE)
    up = np.array([camera.up.x, camera.up.y, camera.up.z])
    assert abs(up @ eye) < 1e-9
    fixed = interactive3d.sphere_figure(3 * points, labels, centres, loss=None, view=None)
    assert fixed.layout.scene.camera.eye.x == interactive3d.DEFAULT_EYE["x"]
    # weight arrows start outside the sphere: no line through the clusters
    for trace in figure.data:
        if trace.name.startswith("W") and trace.type == "scatter3d":
            start = np.array([trace.x[0], trace.y[0], trace.z[0]])
            assert np.linalg.norm(start) == pytest.approx(interactive3d.WEIGHT_ARROW_START)
