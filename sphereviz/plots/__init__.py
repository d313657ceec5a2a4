"""Matplotlib figures of SphereFace, one module per topic, with every name re-exported here.

- ``curves``: ψ(θ) and the target logits of the margin losses;
- ``regions``: decision regions on the unit circle and, for the SphereFace line, on the sphere;
- ``bound_map``: where max intra ≤ min inter holds over (θ₁₂, m) and (K, m);
- ``histograms``: same-class and different-class pair angles;
- ``verification``: open-set score histograms and ROC curves;
- ``features``: learned features on the plane, the circle and the sphere, and run panels;
- ``training``: training curves; ``schedule``: the λ schedule and its effective m;
- ``sphere_views``: the view direction, the equal-area map, ring and own-angle histograms;
- ``interactive3d``: plotly spheres and their offline export (import it as
  ``from sphereviz.plots import interactive3d``; it loads plotly, so the package does not).

Every ``plot_*`` function returns a ``matplotlib.figure.Figure`` and never calls ``show``;
save it with ``style.save_figure``. ``draw_*`` functions draw into an existing axes without
clearing it and return it (or, where they compute something, what they computed); a widget
that redraws the same axes calls ``clear_drawing(ax)`` first, which is far cheaper than
``ax.clear()``. Titles and labels that a figure needs changed are arguments, not patches.

Angles on axes are in degrees; every function argument that is an angle is in radians.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from sphereviz.geometry import project_to_sphere  # the math lives in geometry; kept by name here
from sphereviz.plots import sphere_views
from sphereviz.plots._common import clear_drawing
from sphereviz.plots.bound_map import (
    binary_criterion_map,
    plot_bound_map,
    uniform_criterion_map,
)
from sphereviz.plots.curves import (
    draw_psi,
    draw_target_curve,
    plot_psi,
    target_curve,
)
from sphereviz.plots.features import (
    BACK_MODES,
    VIEW_MODES,
    WEIGHT_TICK_SPAN_CIRCLE,
    WEIGHT_TICK_SPAN_RAW,
    as_run,
    class_legend,
    class_names_present,
    draw_raw_features_2d,
    draw_unit_circle_features,
    draw_unit_sphere_features,
    plot_features_2d,
    plot_features_2d_panels,
    plot_features_sphere,
    run_class_names,
    run_panel,
)
from sphereviz.plots.histograms import (
    draw_angle_histograms,
    plot_angle_histograms,
)
from sphereviz.plots.regions import (
    TETRAHEDRON_WEIGHTS,
    describe_regions,
    draw_regions,
    draw_sphere_regions,
    plot_regions,
    plot_sphereface_line_regions,
    regions_for,
    sphere_region_labels,
    uncovered_arcs,
    weight_name,
)
from sphereviz.plots.schedule import (
    draw_lambda_schedule,
    lambda_schedule_series,
    plot_lambda_schedule,
)
from sphereviz.plots.training import (
    plot_accuracy_curves,
    plot_training_curves,
)
from sphereviz.plots.verification import (
    DIFFERENT_PEOPLE_COLOR,
    SAME_PERSON_COLOR,
    draw_roc_curves,
    draw_verification_scores,
    drawn_threshold,
    format_rate,
    plot_verification,
)

__all__ = [
    "as_run",
    "BACK_MODES",
    "binary_criterion_map",
    "class_legend",
    "class_names_present",
    "clear_drawing",
    "describe_regions",
    "DIFFERENT_PEOPLE_COLOR",
    "draw_angle_histograms",
    "draw_lambda_schedule",
    "draw_psi",
    "draw_raw_features_2d",
    "draw_regions",
    "draw_roc_curves",
    "draw_sphere_regions",
    "draw_target_curve",
    "draw_unit_circle_features",
    "draw_unit_sphere_features",
    "draw_verification_scores",
    "drawn_threshold",
    "format_rate",
    "lambda_schedule_series",
    "plot_accuracy_curves",
    "plot_angle_histograms",
    "plot_bound_map",
    "plot_features_2d",
    "plot_features_2d_panels",
    "plot_features_sphere",
    "plot_lambda_schedule",
    "plot_psi",
    "plot_regions",
    "plot_sphereface_line_regions",
    "plot_training_curves",
    "plot_verification",
    "project_to_sphere",
    "regions_for",
    "run_class_names",
    "run_panel",
    "SAME_PERSON_COLOR",
    "sphere_region_labels",
    "sphere_views",
    "target_curve",
    "TETRAHEDRON_WEIGHTS",
    "uncovered_arcs",
    "uniform_criterion_map",
    "VIEW_MODES",
    "weight_name",
    "WEIGHT_TICK_SPAN_CIRCLE",
    "WEIGHT_TICK_SPAN_RAW",
]


def __getattr__(name: str) -> ModuleType:
    """``plots.interactive3d`` imported on first use: plotly takes a second to load."""
    if name == "interactive3d":
        return importlib.import_module("sphereviz.plots.interactive3d")
    raise AttributeError(f"module 'sphereviz.plots' has no attribute {name!r}")
