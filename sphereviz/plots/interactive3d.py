"""Interactive plotly figures on the unit sphere, and their offline export.

- ``sphere_figure(features, labels, class_weights, loss="a-softmax", m=4)``: a translucent
  sphere, the features as points coloured by class, the class weight directions as arrows and
  the boundaries of the margined decision regions drawn on the sphere's surface.
- ``export_plotly(fig, "out/sphere", formats=("html", "png"))``: a self-contained HTML file
  (plotly.js inlined, never the CDN) and, when a Chromium is installed, static images through
  kaleido (MathJax off, nothing downloaded).

Colours come from ``style.class_colors`` so that plotly and matplotlib figures agree.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import contourpy
import numpy as np
import plotly.graph_objects as go

from sphereviz import geometry
from sphereviz.fileio import atomic_path
from sphereviz.plots import sphere_views
from sphereviz.style import class_colors

__all__ = [
    "DEFAULT_EYE",
    "EYE_DISTANCE",
    "PLOTLYJS_FILE",
    "PLOTLYJS_TAG",
    "STATIC_FORMATS",
    "WEIGHT_ARROW_START",
    "boundary_curves",
    "check_class_names",
    "export_plotly",
    "feature_traces",
    "find_chromium",
    "region_boundary_traces",
    "sphere_figure",
    "sphere_grid",
    "sphere_layout",
    "sphere_mesh_trace",
    "weight_traces",
]

STATIC_FORMATS = ("png", "svg", "pdf")
#: The offline plotly.js that HTML pages load from their own folder, and the tag that loads it.
PLOTLYJS_FILE = "plotly.min.js"
PLOTLYJS_TAG = f'<script charset="utf-8" src="{PLOTLYJS_FILE}"></script>'
BOUNDARY_LIFT = 1.005  # boundary curves sit just above the sphere so the mesh does not hide them


# ---------------------------------------------------------------------------------------------
# Primitives
# ---------------------------------------------------------------------------------------------


def sphere_mesh_trace(resolution: int = 40, opacity: float = 0.12) -> go.Surface:
    """A translucent grey unit sphere (x² + y² + z² = 1) as a plotly Surface."""
    longitude = np.linspace(-math.pi, math.pi, 2 * resolution + 1)
    latitude = np.linspace(-math.pi / 2, math.pi / 2, resolution + 1)
    lon, lat = np.meshgrid(longitude, latitude)
    return go.Surface(
        x=np.cos(lat) * np.cos(lon),
        y=np.cos(lat) * np.sin(lon),
        z=np.sin(lat),
        opacity=opacity,
        colorscale=[[0, "#BBBBBB"], [1, "#BBBBBB"]],
        showscale=False,
        hoverinfo="skip",
        name="unit sphere",
    )


def feature_traces(
    points, labels, marker_size: float = 2.5, class_names: Sequence[str] | None = None
) -> list[go.Scatter3d]:
    """One Scatter3d of unit feature vectors per class present in ``labels``.

    Traces come in sorted label order and are named (legend entry and legend group)
    ``class <label>``, or ``class_names[i]`` for the i-th class present when names are given
    (``check_class_names``), e.g. ``"digit 3"`` or an LFW identity.
    """
    points = np.asarray(points, dtype=float)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    names = (
        [f"class {cls}" for cls in classes]
        if class_names is None
        else check_class_names(class_names, classes)
    )
    traces = []
    for color, cls, name in zip(class_colors(len(classes)), classes, names, strict=True):
        chosen = points[labels == cls]
        traces.append(
            go.Scatter3d(
                x=chosen[:, 0],
                y=chosen[:, 1],
                z=chosen[:, 2],
                mode="markers",
                marker={"size": marker_size, "color": color, "opacity": 0.8},
                name=name,
                legendgroup=name,
            )
        )
    return traces


def check_class_names(class_names: Sequence[str], classes) -> list[str]:
    """``class_names`` as a list of str, one per class in ``classes`` (the sorted labels
    present); a ValueError that names both lengths when they differ."""
    if isinstance(class_names, str):
        raise ValueError(f"class_names must be a sequence of names, got the string {class_names!r}")
    names = [str(name) for name in class_names]
    if len(names) != len(classes):
        raise ValueError(
            f"class_names has {len(names)} names but the labels hold {len(classes)} classes "
            f"({', '.join(str(c) for c in classes)}); pass one name per class present, in "
            "sorted label order (plots.class_names_present picks them from names indexed by label)"
        )
    return names


#: Where a weight arrow starts, times W_j/‖W_j‖: outside the sphere, so that it crosses no
#: cluster of features on the surface.
WEIGHT_ARROW_START = 1.08


def weight_traces(
    class_weights, length: float = 1.3, start: float = WEIGHT_ARROW_START
) -> list[go.Scatter3d | go.Cone]:
    """Each class weight direction W_j/‖W_j‖ as a short line from ``start``·W_j/‖W_j‖ to
    ``length``·W_j/‖W_j‖ plus a cone tip: outside the unit sphere, over its class's cluster
    (``start=0`` draws the line from the origin, through the cluster)."""
    if not 0 <= start < length:
        raise ValueError(f"need 0 <= start < length, got start={start!r}, length={length!r}")
    weights = np.asarray(class_weights, dtype=float)
    if weights.ndim != 2 or weights.shape[1] != 3:
        raise ValueError(f"class_weights must be (n_classes, 3), got shape {weights.shape}")
    unit = geometry.unit_rows(weights)
    traces: list[go.Scatter3d | go.Cone] = []
    for index, (color, w) in enumerate(zip(class_colors(len(unit)), unit, strict=True)):
        tip, base = length * w, start * w
        traces.append(
            go.Scatter3d(
                x=[base[0], tip[0]],
                y=[base[1], tip[1]],
                z=[base[2], tip[2]],
                mode="lines",
                line={"color": color, "width": 6},
                name=f"W{index}",
                legendgroup=f"W{index}",
            )
        )
        traces.append(
            go.Cone(
                x=[tip[0]],
                y=[tip[1]],
                z=[tip[2]],
                u=[0.15 * w[0]],
                v=[0.15 * w[1]],
                w=[0.15 * w[2]],
                anchor="tail",
                sizemode="absolute",
                sizeref=0.12,
                colorscale=[[0, color], [1, color]],
                showscale=False,
                name=f"W{index}",
                legendgroup=f"W{index}",
                showlegend=False,
                hoverinfo="name",
            )
        )
    return traces


def sphere_grid(resolution: int = 180) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A longitude × latitude grid on the unit sphere: ``(longitude, latitude, points)``.

    longitude ∈ [−π, π] (2·resolution + 1 values, both ends included so that contours close
    across the seam), latitude ∈ [−π/2, π/2] (resolution + 1 values); ``points`` has shape
    (len(latitude), len(longitude), 3).
    """
    if resolution < 4:
        raise ValueError(f"resolution must be >= 4 grid steps, got {resolution}")
    longitude = np.linspace(-math.pi, math.pi, 2 * resolution + 1)
    latitude = np.linspace(-math.pi / 2, math.pi / 2, resolution + 1)
    lon, lat = np.meshgrid(longitude, latitude)
    points = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)
    return longitude, latitude, points


def boundary_curves(
    classify: Callable[[np.ndarray], np.ndarray],
    classes: Sequence[int],
    resolution: int = 180,
) -> dict[int, list[np.ndarray]]:
    """The boundary of each class's decision region on the unit sphere, as 3-D polylines.

    ``classify`` maps (n, 3) unit vectors to class labels (any label outside ``classes``,
    e.g. −1, means "no class wins by the margin"). It is evaluated on ``sphere_grid``; for
    each class c the 0.5 level set of the indicator [label = c] over (longitude, latitude)
    is traced by marching squares (contourpy) and mapped back onto the sphere. Returns
    ``{c: [array (k, 3), ...]}`` with every point of unit norm.
    """
    longitude, latitude, points = sphere_grid(resolution)
    labels = np.asarray(classify(points.reshape(-1, 3))).reshape(points.shape[:2])
    curves: dict[int, list[np.ndarray]] = {}
    for cls in classes:
        indicator = (labels == cls).astype(float)
        generator = contourpy.contour_generator(
            x=longitude, y=latitude, z=indicator, line_type="Separate"
        )
        polylines = []
        for line in generator.lines(0.5):
            lon, lat = line[:, 0], line[:, 1]
            polylines.append(
                np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)
            )
        curves[int(cls)] = polylines
    return curves


def _polylines_trace(polylines: list[np.ndarray], color: str, name: str) -> go.Scatter3d:
    """All polylines of one class in one trace, separated by gaps (None)."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    zs: list[float | None] = []
    for line in polylines:
        lifted = BOUNDARY_LIFT * line
        xs.extend([*lifted[:, 0].tolist(), None])
        ys.extend([*lifted[:, 1].tolist(), None])
        zs.extend([*lifted[:, 2].tolist(), None])
    return go.Scatter3d(
        x=xs,
        y=ys,
        z=zs,
        mode="lines",
        line={"color": color, "width": 5},
        name=name,
        connectgaps=False,
        hoverinfo="name",
    )


#: The camera of a sphere whose view is not chosen from data: from (1.25, 1.25, 0.8).
DEFAULT_EYE = {"x": 1.25, "y": 1.25, "z": 0.8}
EYE_DISTANCE = math.sqrt(1.25**2 + 1.25**2 + 0.8**2)


def sphere_layout(
    title: str | None = None, size: int = 600, camera: dict | None = None
) -> go.Layout:
    """A square layout with hidden axes and an equal aspect, for figures on the unit sphere.

    ``camera`` is a plotly ``scene.camera`` (e.g. ``sphere_views.plotly_camera(direction)``);
    None looks from ``DEFAULT_EYE``.
    """
    hidden = {"visible": False, "range": [-1.35, 1.35]}
    return go.Layout(
        title=title,
        width=size,
        height=size,
        margin={"l": 0, "r": 0, "t": 40 if title else 0, "b": 0},
        scene={
            "xaxis": hidden,
            "yaxis": hidden,
            "zaxis": hidden,
            "aspectmode": "cube",
            "camera": camera if camera is not None else {"eye": dict(DEFAULT_EYE)},
        },
        legend={"itemsizing": "constant"},
    )


# ---------------------------------------------------------------------------------------------
# The figure
# ---------------------------------------------------------------------------------------------


def region_boundary_traces(
    class_weights, loss: str = "a-softmax", m=None, resolution: int = 180
) -> list[go.Scatter3d]:
    """The boundaries of each class's margined decision region on the unit sphere.

    The rule is ``geometry.classify_points`` (A-Softmax: ψ(θ_i) > max_{j≠i} cos θ_j, with the
    paper's boundary rule mθ_i < θ_j for a fractional m), evaluated on a longitude × latitude
    grid and traced by ``boundary_curves``. One trace per class, named ``boundary <i>``.
    """
    weights = np.asarray(class_weights, dtype=float)
    if weights.ndim != 2 or weights.shape[1] != 3:
        raise ValueError(
            f"class_weights must be (n_classes, 3) for boundaries on the sphere, got shape "
            f"{weights.shape}"
        )
    loss = geometry.canonical_loss_name(loss)
    rule = geometry.default_rule(loss, m)

    def classify(points: np.ndarray) -> np.ndarray:
        return geometry.classify_points(points, weights, loss, m, rule=rule)

    curves = boundary_curves(classify, range(len(weights)), resolution)
    colors = class_colors(len(weights))
    return [
        _polylines_trace(curves[index], colors[index], f"boundary {index}")
        for index in range(len(weights))
    ]


def sphere_figure(
    features=None,
    labels=None,
    class_weights=None,
    loss: str | None = "a-softmax",
    m=None,
    *,
    title: str | None = None,
    boundary_resolution: int = 180,
    max_points: int = 5000,
    marker_size: float = 2.5,
    size: int = 600,
    class_names: Sequence[str] | None = None,
    view="auto",
) -> go.Figure:
    """An interactive unit sphere with features, class weight directions and region boundaries.

    - features (N, d) with labels (N,): drawn as x/‖x‖, one trace per class. d > 3 is reduced
      by ``geometry.project_to_sphere`` (PCA to 3-D without centring, then normalised), and the
      title says so. At most ``max_points`` points are drawn (a fixed-seed subsample).
    - class_weights (K, d): arrows along W_j/‖W_j‖ (projected like the features).
    - loss, m: when the weights are 3-D and ``loss`` is not None, the boundary of each class's
      margined decision region (``region_boundary_traces``) is drawn on the sphere.
    - class_names: the legend names of the classes present in ``labels``, one per class in
      sorted label order (for labels 0…K−1, ``class_names[k]`` names label k); None names
      them ``class <label>``. A length that differs from the number of classes present is a
      ValueError. ``plots.run_class_names(run)`` gives a run's names as legends show them
      (from ``Run.class_names``; for runs written before runs stored names, from the data set
      where it can).
    - view: where the camera starts. ``"auto"`` (default): from
      ``sphere_views.view_direction`` of the features (all of them, before any subsample), the
      direction that sees the most of them, as the static ``plots.plot_features_sphere``
      does, with the same screen-up (``sphere_views.plotly_camera``); without features, or
      None, from ``DEFAULT_EYE``; a 3-vector: from that direction.
    """
    if isinstance(view, str) and view != "auto":
        raise ValueError(f"view must be 'auto', None or a 3-vector direction, got {view!r}")
    camera = None
    if view is not None and not isinstance(view, str):
        camera = sphere_views.plotly_camera(view, EYE_DISTANCE)
    traces: list = [sphere_mesh_trace()]
    title_parts = [title] if title else []
    weights_3d = None
    if features is not None:
        features = np.asarray(features, dtype=float)
        labels = np.asarray(labels)
        if features.ndim != 2 or labels.shape != (features.shape[0],):
            raise ValueError(
                "features must be (n_samples, n_dims) and labels (n_samples,), got shapes "
                f"{features.shape} and {labels.shape}"
            )
        names = None
        if class_names is not None:
            classes = np.unique(labels)
            names = dict(
                zip(classes.tolist(), check_class_names(class_names, classes), strict=True)
            )
        points, weights_3d, description = geometry.project_to_sphere(features, class_weights)
        if isinstance(view, str) and view == "auto":
            camera = sphere_views.plotly_camera(sphere_views.view_direction(points), EYE_DISTANCE)
        if len(points) > max_points:
            keep = np.sort(np.random.default_rng(0).choice(len(points), max_points, replace=False))
            points, labels = points[keep], labels[keep]
            description += f", {max_points} of {len(features)} points"
        title_parts.append(description)
        kept_names = None if names is None else [names[c] for c in np.unique(labels).tolist()]
        traces.extend(feature_traces(points, labels, marker_size, kept_names))
    elif class_names is not None:
        raise ValueError("class_names name the classes of the features; pass features and labels")
    elif class_weights is not None:
        weights_3d = geometry.project_to_sphere(np.asarray(class_weights, dtype=float))[0]
    if weights_3d is not None:
        native_3d = np.asarray(class_weights).shape[1] == 3
        if loss is not None and native_3d:
            traces.extend(region_boundary_traces(weights_3d, loss, m, boundary_resolution))
        elif loss is not None:
            title_parts.append("region boundaries need 3-D weights")
        traces.extend(weight_traces(weights_3d))
    layout = sphere_layout(" · ".join(title_parts) or None, size, camera)
    figure = go.Figure(traces, layout=layout)
    return figure


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


def find_chromium() -> str | None:
    """The path of an installed Chromium/Chrome that kaleido can drive, or None.

    Looks where kaleido (through choreographer) looks: ``$BROWSER_PATH``, the PATH, the
    usual install locations (Debian's /usr/bin/chromium). Never downloads a browser.
    """
    try:
        from choreographer.browsers.chromium import Chromium

        found = Chromium.find_browser(skip_local=False)
    except Exception:  # noqa: BLE001 - any failure of the optional search means "not found"
        found = None
    return found or shutil.which("chromium") or shutil.which("chromium-browser")


def _safe_div_id(stem: str) -> str:
    return "sphereviz-" + (re.sub(r"[^A-Za-z0-9_-]", "-", stem) or "figure")


def export_plotly(
    fig: go.Figure,
    path_stem: str | os.PathLike,
    formats: Sequence[str] = ("html", "png"),
    plotlyjs: str = "inline",
    scale: float = 2.0,
) -> list[Path]:
    """Write ``fig`` as ``<path_stem>.<format>``; return the written paths.

    ``html`` works offline: ``plotlyjs="inline"`` puts the plotly.js source in the file;
    ``plotlyjs="directory"`` writes ``plotly.min.js`` beside it and refers to it relatively.
    The CDN is never used, MathJax is not loaded and the div id is derived from the file
    name, so the HTML is the same from run to run.

    ``png``/``svg``/``pdf`` are rendered by kaleido with an installed Chromium (MathJax off).
    When no Chromium is found they are skipped with a one-line message on stderr, and the
    HTML is written instead (even when not asked for) so that the figure is never lost.
    """
    if not isinstance(fig, go.Figure):
        raise ValueError(f"fig must be a plotly Figure, got {type(fig).__name__}")
    formats = [formats] if isinstance(formats, str) else list(formats)
    allowed = ("html", *STATIC_FORMATS)
    unknown = [f for f in formats if f not in allowed]
    if not formats or unknown:
        raise ValueError(f"formats must be a non-empty subset of {allowed}, got {formats!r}")
    if plotlyjs not in ("inline", "directory"):
        raise ValueError(
            f"plotlyjs must be 'inline' (self-contained HTML) or 'directory' "
            f"(plotly.min.js beside the HTML), got {plotlyjs!r}"
        )
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    static = [f for f in formats if f in STATIC_FORMATS]
    browser = find_chromium() if static else None
    if static and browser is None:
        print(
            f"note: no Chromium found, so {'/'.join(static)} export was skipped; "
            f"wrote {stem.name}.html instead (install chromium for static images)",
            file=sys.stderr,
        )
        static = []
        if "html" not in formats:
            formats.append("html")
    paths = {fmt: stem.with_name(f"{stem.name}.{fmt}") for fmt in formats}
    if "html" in formats:
        _write_html(fig, paths["html"], plotlyjs)
    if static:
        _write_static(fig, [(paths[fmt], fmt) for fmt in static], scale)
    return [paths[fmt] for fmt in formats if fmt == "html" or fmt in static]


def _write_html(fig: go.Figure, path: Path, plotlyjs: str) -> None:
    if plotlyjs == "directory":
        write_plotlyjs(path.parent)
    with atomic_path(path) as tmp:
        fig.write_html(
            tmp,
            include_plotlyjs=False,
            include_mathjax=False,
            full_html=True,
            div_id=_safe_div_id(path.stem),
            config={"displaylogo": False},
        )
        html = tmp.read_text(encoding="utf-8")
        if plotlyjs == "inline":
            loader = f'<script type="text/javascript">{_offline_plotlyjs()}</script>'
        else:
            loader = PLOTLYJS_TAG
        tmp.write_text(html.replace("<body>", f"<body>\n    {loader}", 1), encoding="utf-8")
    path.chmod(0o644)


def write_plotlyjs(folder: Path) -> Path:
    """``folder/plotly.min.js``, the offline plotly.js that pages in ``folder`` load
    (``<script src="plotly.min.js">``); written atomically when it is missing or differs."""
    script = Path(folder) / PLOTLYJS_FILE
    text = _offline_plotlyjs()
    if not script.is_file() or script.read_text(encoding="utf-8") != text:
        with atomic_path(script) as tmp:
            tmp.write_text(text, encoding="utf-8")
        script.chmod(0o644)
    return script


def _offline_plotlyjs() -> str:
    """plotly.js as shipped with plotly.py, with no address on the network left in it.

    Its only URL is the default ``topojsonURL`` of geographic maps (https://cdn.plot.ly/un/);
    it is pointed at a relative folder so that the file never reaches for the network.
    """
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().replace('"https://cdn.plot.ly/un/"', '"./topojson/"')


def _write_static(fig: go.Figure, jobs: list[tuple[Path, str]], scale: float) -> None:
    """Render every (path, format) through one kaleido/Chromium session (MathJax off)."""
    import kaleido

    figure = fig.to_dict()
    size = {"width": fig.layout.width or 700, "height": fig.layout.height or 500}

    async def render() -> list[bytes]:
        async with kaleido.Kaleido(n=1, mathjax=False) as session:
            return [
                await session.calc_fig(figure, opts={"format": fmt, "scale": scale, **size})
                for _, fmt in jobs
            ]

    for (path, _), image in zip(jobs, _run_coroutine(render), strict=True):
        with atomic_path(path) as tmp:
            tmp.write_bytes(image)
        path.chmod(0o644)


def _run_coroutine(make_coroutine):
    """Run a coroutine to completion, also from inside Jupyter (whose event loop is running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coroutine())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, make_coroutine()).result()
