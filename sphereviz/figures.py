"""The figure set for papers, and ``sphereviz figures``: every figure of the project in one folder.

``sphereviz figures [--out figures/] [--runs DIR] [--faces LFW_ROOT] [--analytic-only] [--json]``
writes, into ``--out``:

- **analytic figures** (no training): ψ(θ) against cos(mθ), CosFace and ArcFace; the decision
  regions on the circle for softmax, modified softmax and A-Softmax m = 2, 3, 4 with two and
  with four classes; the map of where max intra-class angle ≤ min inter-class angle holds
  over (θ₁₂, m) and (K, m), with SphereFace's bounds m = 2 + √3 and m = 3;
- **MNIST figures** from the ten demo runs (softmax, modified softmax, A-Softmax m = 2, 3, 4;
  3-D and 2-D features), trained on demand into ``--runs`` and reused when a run folder with the
  same config is already there: the paper's Fig. 2 (2-D features, raw and on the circle), its
  Fig. 5 (3-D features on the unit sphere for m = 1…4, static and interactive), pair-angle
  histograms and training curves;
- with ``--faces LFW_ROOT``, the paper's Fig. 5 on real faces: the six LFW identities with the
  most images, aligned by their landmarks, SFNet-4 with 3-D features for m = 1…4.

Static figures are PDF + SVG + PNG written by ``style.save_figure`` (byte-identical on rerun);
interactive spheres are HTML pages that load one shared ``plotly.min.js`` beside them (copied
from the installed plotly, nothing fetched from a CDN). ``README.md`` gives each figure's
caption and the command that made it; ``index.html`` is an offline gallery of them all;
``figures.json`` is the machine-readable list that both are written from.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from sphereviz import plots
from sphereviz.fileio import print_json_summary
from sphereviz.gallery import FigureRecord, update_gallery
from sphereviz.losses.registry import loss_spec
from sphereviz.recipes import describe_recipe
from sphereviz.style import publication_style, save_figure
from sphereviz.sweep import (
    DEFAULT_RUNS,
    MNIST_DIMS,
    QUICK_SEEDS,
    SEEDS,
    ensure_runs,
    faces_run_specs,
    mnist_run_specs,
)

if TYPE_CHECKING:
    from sphereviz.config import TrainConfig
    from sphereviz.runs import PreparedRun, Run

__all__ = [
    "DEFAULT_FACES_CACHE",
    "DEFAULT_OUT",
    "accuracy_curves_figure",
    "analytic_figures",
    "angle_histograms_figure",
    "bound_map_figure",
    "faces_figures",
    "features_2d_figure",
    "generate_figures",
    "geometry_note",
    "main",
    "mnist_figures",
    "psi_figure",
    "regions_figure",
    "sphere_html",
    "sphere_panels_figure",
]

DEFAULT_OUT = Path("figures")
DEFAULT_FACES_CACHE = Path("build") / "faces" / "lfw-top6"
DEFAULT_LFW = Path("<default LFW folder>")  # `--faces` alone: resolved by default_lfw_root()
STATIC_FORMATS = ("pdf", "svg", "png")


def _save_static(fig: Figure, out: Path, name: str) -> tuple[str, ...]:
    save_figure(fig, out / name, STATIC_FORMATS)
    plt.close(fig)
    return tuple(f"{name}.{fmt}" for fmt in STATIC_FORMATS)


# ---------------------------------------------------------------------------------------------
# Analytic figures
# ---------------------------------------------------------------------------------------------


def psi_figure() -> Figure:
    """ψ(θ) for m = 1…4 (SphereFace eq. 7) against cos(mθ), CosFace and ArcFace targets."""
    with publication_style("single", aspect=0.8):
        fig = plots.plot_psi(ms=(1, 2, 3, 4), cosface_margin=0.35, arcface_margin=0.5)
        fig.tight_layout()
    return fig


#: Softmax's weights and biases in the region figures: unequal norms and a bias move its
#: boundary off the bisector, which is what modified softmax (‖W‖ = 1, b = 0) removes.
SOFTMAX_NORMS = {2: (1.3, 0.8), 4: (1.3, 0.8, 1.0, 1.1)}
SOFTMAX_BIASES = {2: (0.2, 0.0), 4: (0.2, 0.0, -0.1, 0.0)}


def regions_figure(num_classes: int = 2) -> Figure:
    """Decision regions on the unit circle: softmax, modified softmax, A-Softmax m = 2, 3, 4.

    Two classes: W₁, W₂ 90° apart; four classes: 90° apart (uniform). A-Softmax class i wins
    where ψ(θ_i) > max_{j≠i} cos θ_j; hatched: no class wins by the margin. Under each panel the
    angular margin, max intra-class and min inter-class angles (``geometry.circle_regions``).
    """
    if num_classes not in SOFTMAX_NORMS:
        raise ValueError(f"num_classes must be 2 or 4 for the region figure, got {num_classes!r}")
    panels = [
        plots.regions_for(
            "softmax",
            num_classes=num_classes,
            weight_norms=SOFTMAX_NORMS[num_classes],
            biases=SOFTMAX_BIASES[num_classes],
        ),
        plots.regions_for("modified-softmax", num_classes=num_classes),
        *(plots.regions_for("a-softmax", m=m, num_classes=num_classes) for m in (2, 3, 4)),
    ]
    titles = [
        "softmax\n(unequal ‖W‖, bias)",
        "modified softmax\n(A-Softmax m = 1)",
        None,
        None,
        None,
    ]
    with publication_style("double"):
        return plots.plot_regions(panels, titles=titles)


def bound_map_figure() -> Figure:
    """Where max intra ≤ min inter holds over (θ₁₂, m) and (K, m): bounds 2 + √3 and 3."""
    with publication_style("double"):
        return plots.plot_bound_map()


def analytic_figures(
    out: str | Path, command: str = "sphereviz figures --analytic-only"
) -> list[FigureRecord]:
    """Write the analytic figures into ``out``; return their records."""
    out = Path(out)
    made = [
        (
            "psi_curves",
            psi_figure,
            "ψ(θ) of A-Softmax against other margins",
            "The target logit per unit feature norm as a function of the angle θ to the own "
            "class weight. Solid: A-Softmax's ψ(θ) = (−1)^k cos(mθ) − 2k on [kπ/m, (k+1)π/m] for "
            "m = 1…4 (SphereFace eq. 7), monotonically decreasing with ψ(π) = 1 − 2m; dashed: "
            "cos(mθ), which ψ follows on [0, π/m] only; dash-dot: CosFace cos θ − 0.35; dotted: "
            "ArcFace cos(θ + 0.5).",
            "sphereviz.figures.psi_figure()",
        ),
        (
            "regions_two_classes",
            lambda: regions_figure(2),
            "Decision regions of two classes on the circle",
            "Two classes, W₁ and W₂ 90° apart. Thick arcs: where each class wins (softmax with "
            "unequal weight norms and a bias; modified softmax, i.e. A-Softmax m = 1; A-Softmax "
            "m = 2, 3, 4); hatched: no class wins by the margin. Below each circle: the angular "
            "margin (m−1)θ₁₂/(m+1), the max intra-class and min inter-class angle, and whether "
            "max intra ≤ min inter holds. At θ₁₂ = 90° only m = 4 satisfies it (48° vs 54°); "
            "Property 2 (m ≥ 2 + √3) is the bound for every θ₁₂.",
            "sphereviz.figures.regions_figure(2)",
        ),
        (
            "regions_four_classes",
            lambda: regions_figure(4),
            "Decision regions of four classes on the circle",
            "Four uniformly spaced classes (90° apart), same losses as the two-class figure. "
            "With uniformly spaced classes the criterion max intra ≤ min inter holds from m = 3 "
            "on (45° = 45° at m = 3, 36° < 54° at m = 4), SphereFace's Property 3.",
            "sphereviz.figures.regions_figure(4)",
        ),
        (
            "bound_map",
            bound_map_figure,
            "Where the angular criterion holds: the bounds on m",
            "Dark: max intra-class angle ≤ min inter-class angle, from the closed forms of the "
            "regions, for real m from 1 to 8. Left: two classes over (θ₁₂, m); above the line "
            "m = 2 + √3 ≈ 3.73 it holds for every θ₁₂ (Property 2; smallest integer m = 4). "
            "Right: K uniformly spaced classes over (K, m); it holds from m = 3 for every K "
            "(Property 3). `sphereviz bounds` derives both lines with sympy.",
            "sphereviz.figures.bound_map_figure()",
        ),
        (
            "regions_sphereface_line",
            plots.plot_sphereface_line_regions,
            "A-Softmax, SphereFace-R and SphereFace2 on the circle and the sphere",
            "Top: four classes 90° apart. A-Softmax m = 4 (ψ), SphereFace-R m = 1.5 (the real "
            "ψ_m, exact) and SphereFace2 m = 0.4 with caps of 62°: each class claims "
            "r·(g(cos θ) − m) + b > 0; dark cross-hatched: claimed by several classes, dashed: "
            "the softmax rule. Bottom: the same on the sphere with tetrahedron weights; light "
            "grey: no class, dark: several.",
            "sphereviz.plots.plot_sphereface_line_regions()",
        ),
    ]
    records = []
    for name, make, title, caption, python in made:
        files = _save_static(make(), out, name)
        records.append(FigureRecord(name, "analytic", title, caption, command, python, files))
    return records


# ---------------------------------------------------------------------------------------------
# Figures of trained runs
# ---------------------------------------------------------------------------------------------


def _embeddings(run: Run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    embeddings = run.embeddings
    if not embeddings:
        raise ValueError(f"run {run.path} has no embeddings.npz; finish training it first")
    return embeddings["features"], embeddings["labels"], embeddings["class_weights"]


def features_2d_figure(runs: Sequence[tuple[str, Run]]) -> Figure:
    """SphereFace's Fig. 2 on MNIST: 2-D features raw (top) and as x/‖x‖ on the circle (bottom).

    One column per run; class weights W_j are ticks clear of the points, and around the circle
    each class's angles are a ring histogram on one count scale for all columns, so classes
    that overlap on the circle can still be counted.
    """
    if not runs:
        raise ValueError("runs is empty; pass (label, run) pairs of 2-D runs")
    panels = [(label, *_embeddings(run)) for label, run in runs]
    with publication_style("double"):
        return plots.plot_features_2d_panels(panels, marker_size=1.5)


def sphere_panels_figure(runs: Sequence[tuple[str, Run]], class_names=None) -> Figure:
    """SphereFace's Fig. 5: 3-D features on the unit sphere, one panel per run (m = 1…4)."""
    panels = []
    for label, run in runs:
        features, labels, weights = _embeddings(run)
        panels.append((label, features, labels, weights))
    with publication_style("double"):
        fig = plots.plot_features_sphere(
            panels, marker_size=3.0, columns=len(panels), rasterized=True
        )
        plots.class_legend(fig, panels[0][2], class_names)
    return fig


def angle_histograms_figure(runs: Sequence[tuple[str, Run]]) -> Figure:
    """Angles of same-class and different-class pairs of features, one panel per run."""
    panels = []
    for label, run in runs:
        features, labels, _ = _embeddings(run)
        panels.append((label, features, labels))
    with publication_style("double"):
        return plots.plot_angle_histograms(panels, count_label_first_only=True)


def accuracy_curves_figure(prepared: Sequence[PreparedRun]) -> Figure:
    """Test accuracy (plain cosine logits, no margin) per epoch: 3-D runs left, 2-D right."""
    dims = sorted({p.spec.dim for p in prepared}, reverse=True)
    panels = [
        (
            f"{dim}-D features",
            [(p.spec.label, p.run.metrics) for p in prepared if p.spec.dim == dim],
        )
        for dim in dims
    ]
    with publication_style("double", aspect=0.32):
        return plots.plot_accuracy_curves(panels)


def training_curves_figure(run: Run, label: str) -> Figure:
    """Loss, train/test accuracy and the annealing λ of one run (``plots.plot_training_curves``)."""
    with publication_style("double", aspect=0.3):
        return plots.plot_training_curves(run.metrics, title=label)


def sphere_html(
    run: Run,
    label: str,
    loss: str,
    m: int | None,
    path_stem: Path,
    class_names: Sequence[str] | None = None,
) -> Path:
    """The interactive sphere of a 3-D run (``interactive3d.sphere_figure``), offline HTML.

    ``class_names`` (indexed by label, like a data set's) name the classes in the legend;
    None takes the run's own (``plots.run_class_names``: the digits, the face identities) and
    falls back to ``class <label>`` when they are unknown.
    """
    from sphereviz.plots import interactive3d

    features, labels, weights = _embeddings(run)
    if class_names is None:
        class_names = plots.run_class_names(run)
    figure = interactive3d.sphere_figure(
        features, labels, weights, loss=loss, m=m, title=label, boundary_resolution=120,
        class_names=None if class_names is None else plots.class_names_present(class_names, labels),
    )  # fmt: skip
    (written,) = interactive3d.export_plotly(
        figure, path_stem, formats=("html",), plotlyjs="directory"
    )
    return written


def _mean_std(values: Sequence[float], digits: int, unit: str = "") -> str:
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        return f"{values[0]:.{digits}f}{unit}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}{unit}"


def geometry_note(groups: Sequence[tuple[str, Sequence[Run]]]) -> str:
    """One sentence with each configuration's test accuracy, mean angle to the own class
    weight and Angular Fisher Score (``geometry.feature_summary`` of the test embeddings), as
    mean ± std over its runs (seeds), e.g. for a caption."""
    from sphereviz import geometry

    parts = []
    for label, runs in groups:
        stats = [geometry.feature_summary(*_embeddings(run)) for run in runs]
        accuracy = [100 * run.final_metrics["test_accuracy"] for run in runs]
        parts.append(
            f"{label}: {_mean_std(accuracy, 1, ' %')}, "
            f"{_mean_std([s['mean_angle_to_own_class_deg'] for s in stats], 1, '°')}, AFS "
            f"{_mean_std([s['angular_fisher_score'] for s in stats], 3)}"
        )
    seeds = len(groups[0][1]) if groups else 0
    over = "one seed (no spread)" if seeds == 1 else f"mean ± std over {seeds} seeds"
    return (
        "Test accuracy, mean angle of a test feature to its own class weight and Angular "
        f"Fisher Score (lower is tighter), {over}: " + "; ".join(parts) + "."
    )


def _by_configuration(prepared: Sequence[PreparedRun]) -> list[list[PreparedRun]]:
    """The runs grouped by configuration (loss, m, dim), in order, each sorted by seed."""
    groups: dict[tuple, list[PreparedRun]] = {}
    for item in prepared:
        groups.setdefault(item.spec.configuration, []).append(item)
    return [sorted(group, key=lambda item: item.spec.seed) for group in groups.values()]


def mnist_figures(
    out: str | Path, prepared: Sequence[PreparedRun], command: str = "sphereviz figures"
) -> list[FigureRecord]:
    """Write the MNIST figures from the demo's runs (see :func:`mnist_run_specs`): Fig. 2 when
    there are 2-D runs, the sphere figures when there are 3-D runs (the demo's default)."""
    out = Path(out)
    representative, by_dim, sphere_runs, sphere_groups, groups_2d = _mnist_selection(prepared)
    seed_note = (
        f"Panels: seed {representative[0].spec.seed} of each configuration (a representative "
        "run, not the best)."
    )
    config = prepared[0].spec.config
    recipe = describe_recipe(config)
    data = _mnist_data_text(config, len(representative[0].run.embeddings["features"]))
    records = []

    def record(name, title, caption, python, files):
        records.append(FigureRecord(name, "mnist", title, caption, command, python, files))

    panels_2d = [(p.spec.label, p.run) for p in by_dim[2]]
    if panels_2d:
        record(
            "mnist_features_2d",
            "SphereFace Fig. 2 on MNIST: 2-D features",
            f"Test features of the 2-D runs on {data}. Top: raw features; bottom: normalised, "
            "x/‖x‖, on the unit circle; rays: class weight directions W_j. Softmax separates "
            "classes by norm and angle together; modified softmax (‖W‖ = 1, b = 0) and A-Softmax "
            "only by angle, so on the circle each class is an arc around its W_j; in two "
            f"dimensions ten classes leave little room. {geometry_note(groups_2d)} {seed_note} "
            f"Recipe: {recipe}.",
            "sphereviz.figures.features_2d_figure([(label, run), ...])",
            _save_static(features_2d_figure(panels_2d), out, "mnist_features_2d"),
        )
    if by_dim[3]:
        sphere_titles = [(f"m = {p.spec.m or 1}", p.run) for p in sphere_runs]
        files = _save_static(sphere_panels_figure(sphere_titles), out, "mnist_sphere")
        html_files = _mnist_sphere_pages(sphere_runs, out)
        record(
            "mnist_sphere",
            "SphereFace Fig. 5 on MNIST: 3-D features on the unit sphere, m = 1…4",
            f"Test features of the 3-D runs on {data}, normalised onto the unit sphere, for "
            "A-Softmax m = 1 (modified softmax), 2, 3, 4; lines: class weight directions. The "
            "interactive pages (rotate, zoom, hide classes) also draw the boundary of each "
            f"class's margined region, ψ(θ_i) > max_j cos θ_j. "
            f"{geometry_note(sphere_groups)} {seed_note} Recipe: {recipe}.",
            "sphereviz.figures.sphere_panels_figure([(label, run), ...]); "
            "sphereviz.figures.sphere_html(run, ...)",
            files + tuple(html_files),
        )
        record(
            "mnist_angle_histograms",
            "Angles between pairs of MNIST features, m = 1…4",
            "Histograms of the angle between the test features of two digits of the same class "
            "(blue) and of different classes (vermillion), 3-D runs, A-Softmax m = 1…4 (as in "
            "SphereFace's Fig. 5). Same-class pairs gather near 0° and different-class pairs "
            "spread over the rest; the overlap between the two is what verification with one "
            f"threshold on the angle gets wrong. {seed_note}",
            "sphereviz.figures.angle_histograms_figure([(label, run), ...])",
            _save_static(
                angle_histograms_figure([(f"m = {p.spec.m or 1}", p.run) for p in sphere_runs]),
                out,
                "mnist_angle_histograms",
            ),
        )
    record(
        "mnist_accuracy",
        "Test accuracy of the MNIST runs per epoch",
        "Closed-set test accuracy after each epoch, from the plain cosine logits (no margin), "
        "for softmax, modified softmax and A-Softmax m = 2, 3, 4 with "
        f"{_dims_text([dim for dim in MNIST_DIMS if by_dim[dim]])} features. {seed_note} "
        f"Recipe: {recipe}.",
        "sphereviz.figures.accuracy_curves_figure(prepared_runs)",
        _save_static(accuracy_curves_figure(representative), out, "mnist_accuracy"),
    )
    if by_dim[3]:
        record(*_mnist_training_curves(by_dim[3], out))
    return records


def _dims_text(dims: Sequence[int]) -> str:
    """The dimensions as the accuracy figure's caption names them, e.g. "3-D (left) and 2-D
    (right)" (the panels of :func:`accuracy_curves_figure`)."""
    if len(dims) == 1:
        return f"{dims[0]}-D"
    return " and ".join(f"{d}-D ({side})" for d, side in zip(dims, ("left", "right"), strict=True))


def _mnist_training_curves(runs_3d: Sequence[PreparedRun], out: Path) -> tuple:
    """The record fields of the training curves of the 3-D A-Softmax m = 4 run (or the last)."""
    annealed = next((p for p in runs_3d if p.spec.m == 4), runs_3d[-1])
    return (
        "mnist_training_curves",
        "Training curves of A-Softmax m = 4 (3-D)",
        "Mean training loss, train and test accuracy, and the annealing weight λ of the "
        "target logit ‖x‖(λ cos θ + ψ(θ))/(1 + λ) per epoch, for the 3-D A-Softmax m = 4 run. "
        f"λ schedule: {annealed.spec.config.describe_schedule()}.",
        "sphereviz.figures.training_curves_figure(run, label)",
        _save_static(
            training_curves_figure(annealed.run, f"MNIST, 3-D, {annealed.spec.label}"),
            out,
            "mnist_training_curves",
        ),
    )


def _mnist_selection(prepared: Sequence[PreparedRun]):
    """The runs each MNIST figure draws: the first seed of each configuration, those by
    dimension, the 3-D runs on the sphere (not softmax, whose features are not directions)
    and the seed groups of the 3-D and the 2-D configurations."""
    groups = _by_configuration(prepared)
    representative = [group[0] for group in groups]  # the first seed of each configuration
    by_dim = {dim: [p for p in representative if p.spec.dim == dim] for dim in MNIST_DIMS}
    if not any(by_dim.values()):
        dims = " or ".join(f"{dim}-D" for dim in MNIST_DIMS)
        raise ValueError(f"no {dims} run among {[p.spec.name for p in prepared]}")
    sphere_runs = [p for p in by_dim[3] if loss_spec(p.spec.loss).plain_score != "logit"]
    sphere_groups = [
        (f"m = {group[0].spec.m or 1}", [p.run for p in group])
        for group in groups
        if group[0].spec.dim == 3 and loss_spec(group[0].spec.loss).plain_score != "logit"
    ]
    groups_2d = [(group[0].spec.label, [p.run for p in group]) for group in groups
                 if group[0].spec.dim == 2]  # fmt: skip
    return representative, by_dim, sphere_runs, sphere_groups, groups_2d


def _mnist_sphere_pages(sphere_runs: Sequence[PreparedRun], out: Path) -> list[str]:
    """One interactive sphere page per 3-D run; the names of the pages written."""
    html_files = []
    for p in sphere_runs:
        stem = f"mnist_sphere_m{p.spec.m or 1}"
        sphere_html(p.run, f"MNIST, {p.spec.label}", "a-softmax", p.spec.m or 1, out / stem)
        html_files.append(f"{stem}.html")
    return html_files


def _mnist_data_text(config: TrainConfig, test_count: int) -> str:
    """The caption's data: the embedded MNIST subset's train size (as the run kept it) and the
    run's number of test features."""
    if config.max_test_samples is not None:
        return f"the first {test_count:,} test digits of the embedded MNIST subset"
    from sphereviz.data.mnist import load_embedded_mnist

    train_count = len(load_embedded_mnist()[0])
    if config.max_train_samples is not None:
        train_count = min(train_count, config.max_train_samples)
    return f"the embedded MNIST subset ({train_count:,} train / {test_count:,} test digits)"


def faces_figures(
    out: str | Path,
    prepared: Sequence[PreparedRun],
    class_names: Sequence[str],
    command: str,
) -> list[FigureRecord]:
    """Write the face figures (Fig. 5 on LFW) from the runs of :func:`faces_run_specs` (the
    panels draw each m's first seed; the caption's numbers are over all seeds)."""
    out = Path(out)
    groups = _by_configuration(prepared)
    note = geometry_note([(f"m = {group[0].spec.m}", [p.run for p in group]) for group in groups])
    seed_note = f"Panels: seed {groups[0][0].spec.seed} of each m (a representative run)."
    config = prepared[0].spec.config
    minutes = sum(row["seconds"] for p in prepared for row in p.run.metrics) / 60
    prepared = [group[0] for group in groups]
    names = [name.replace("_", " ") for name in class_names]
    recipe = (
        f"SFNet-4, 3-D features, {config.epochs} epochs of Adam (lr {config.lr:g}, batch "
        f"{config.batch_size}, random flips) on {round(100 * (1 - config.test_fraction))} % "
        f"of the images, test features from the other {round(100 * config.test_fraction)} %; "
        f"λ schedule: {config.describe_schedule()}"
    )
    budget = (
        f"A deliberately small CPU budget (about {minutes:.0f} min of training for all "
        "runs on the two-core CPU that made this figure), far from the paper's 64-layer "
        "network trained on CASIA-WebFace."
    )
    records = []
    panels = [(f"m = {p.spec.m}", p.run) for p in prepared]
    files = _save_static(sphere_panels_figure(panels, names), out, "faces_sphere")
    html_files = []
    for p in prepared:
        stem = f"faces_sphere_m{p.spec.m}"
        sphere_html(p.run, f"LFW top-6, SFNet-4, m = {p.spec.m}", "a-softmax", p.spec.m,
                    out / stem, class_names=names)  # fmt: skip
        html_files.append(f"{stem}.html")
    records.append(
        FigureRecord(
            "faces_sphere",
            "faces",
            "SphereFace Fig. 5 on real faces: 3-D features of six LFW identities, m = 1…4",
            f"The six LFW identities with the most images ({', '.join(names)}; "
            f"aligned by their 5-point landmarks to 112×96 crops). {recipe}. Test features, "
            f"normalised onto the unit sphere. {note} {seed_note} {budget}",
            command,
            "sphereviz.figures.faces_figures(out, prepared_runs, class_names, command)",
            files + tuple(html_files),
        )
    )
    records.append(
        FigureRecord(
            "faces_angle_histograms",
            "faces",
            "Angles between pairs of face features, m = 1…4",
            "Same-class (blue) and different-class (vermillion) pair angles of the LFW test "
            f"features of the face runs. {seed_note} {recipe}.",
            command,
            "sphereviz.figures.angle_histograms_figure([(label, run), ...])",
            _save_static(angle_histograms_figure(panels), out, "faces_angle_histograms"),
        )
    )
    return records


# ---------------------------------------------------------------------------------------------
# The whole set
# ---------------------------------------------------------------------------------------------


def _command(
    analytic_only: bool, quick: bool, faces_root: str | Path | None, out: Path, runs_dir: Path
) -> str:
    words = ["sphereviz", "figures"]
    if out != DEFAULT_OUT:
        words += ["--out", str(out)]
    if analytic_only:
        words.append("--analytic-only")
    else:
        if runs_dir != DEFAULT_RUNS:
            words += ["--runs", str(runs_dir)]
        if faces_root is not None:
            words += ["--faces", str(faces_root)]
        if quick:
            words.append("--quick")
    return " ".join(words)


def generate_figures(
    out: str | Path = DEFAULT_OUT,
    *,
    runs_dir: str | Path = DEFAULT_RUNS,
    faces_root: str | Path | None = None,
    faces_cache: str | Path = DEFAULT_FACES_CACHE,
    analytic_only: bool = False,
    quick: bool = False,
    mnist_runs: Sequence[PreparedRun] | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
    command: str | None = None,
) -> list[FigureRecord]:
    """Regenerate the figure set into ``out`` and rewrite its README, gallery and manifest.

    ``mnist_runs``: the demo's runs when the caller already has them (else they are found in
    or trained into ``runs_dir``). ``faces_root``: an LFW folder, for the face figures.
    ``command``: the command the captions name for the trained figures (None: the
    ``sphereviz figures`` command that makes them). Returns the records of the figures written
    by this call.
    """
    from sphereviz.data.lfw import check_lfw_root, prepare_lfw_top6  # loads OpenCV

    out, runs_dir = Path(out), Path(runs_dir)
    if faces_root is not None and not analytic_only:
        check_lfw_root(faces_root)  # before any training, not after the MNIST runs
    out.mkdir(parents=True, exist_ok=True)
    if command is None:
        command = _command(analytic_only, quick, faces_root, out, runs_dir)
    analytic_command = _command(True, False, None, out, runs_dir)
    log(f"analytic figures → {out}")
    records = analytic_figures(out, analytic_command)
    if not analytic_only:
        if mnist_runs is None:
            log(f"MNIST runs in {runs_dir}")
            seeds = QUICK_SEEDS if quick else SEEDS
            mnist_runs = ensure_runs(mnist_run_specs(quick, seeds), runs_dir, progress, log)
        log(f"MNIST figures → {out}")
        records += mnist_figures(out, mnist_runs, command)
        if faces_root is not None:
            log(f"aligning the six largest LFW identities → {faces_cache}")
            cache = prepare_lfw_top6(faces_root, faces_cache, progress)
            specs = faces_run_specs(faces_cache, quick, QUICK_SEEDS if quick else SEEDS)
            face_runs = ensure_runs(specs, runs_dir, progress, log)
            log(f"face figures → {out}")
            records += faces_figures(out, face_runs, cache.class_names, command)
    update_gallery(out, records)
    return records


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sphereviz figures",
        description="Regenerate the figure set (PDF/SVG/PNG, interactive HTML, README captions "
        "and an offline index.html), training the demo runs it needs when they are not cached.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (figures/)")
    parser.add_argument(
        "--runs", type=Path, default=DEFAULT_RUNS, help="run folder cache (build/runs)"
    )
    parser.add_argument(
        "--faces", type=Path, nargs="?", default=None, const=DEFAULT_LFW, metavar="LFW_ROOT",
        help="also make Fig. 5 on the six largest LFW identities (trains SFNet-4 on the CPU); "
        "--faces alone: the default LFW folder ($SPHEREVIZ_LFW, the `sphereviz fetch-lfw` "
        "folder, or ../shared/data/lfw beside the checkout)",
    )  # fmt: skip
    parser.add_argument(
        "--faces-cache", type=Path, default=DEFAULT_FACES_CACHE,
        help=f"where the aligned faces are cached ({DEFAULT_FACES_CACHE})",
    )  # fmt: skip
    parser.add_argument(
        "--analytic-only", action="store_true", help="only the figures that need no training"
    )
    parser.add_argument(
        "--quick", action="store_true", help="short training runs (for tests and a first look)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--json", action="store_true", help="print a JSON summary last")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    plt.switch_backend("Agg")  # the command writes files; it never opens a window
    started = time.perf_counter()
    try:
        if args.faces == DEFAULT_LFW:
            from sphereviz.data.lfw import default_lfw_root

            args.faces = default_lfw_root()
        records = generate_figures(
            args.out,
            runs_dir=args.runs,
            faces_root=args.faces,
            faces_cache=args.faces_cache,
            analytic_only=args.analytic_only,
            quick=args.quick,
            progress=False if args.no_progress else None,
        )
    except (TypeError, ValueError, FileNotFoundError) as error:
        print(f"sphereviz figures: error: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    print(f"wrote {len(records)} figures to {args.out} in {seconds:.1f} s")
    if args.json:
        print_json_summary({"figures": [r.name for r in records], "seconds": round(seconds, 3)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
