"""Decision regions, angular distances and the paper's criterion, on the circle and the sphere.

Pure numpy, no torch import: the margin formulas come from ``sphereviz.margins``, the loss
names, default margins and m ranges from ``sphereviz.losses.registry``. Angles and angular
margins are in radians everywhere.

**The decision rule.** A feature x lies in class i's "correctly classified with margin" region
when class i's margined target score beats every other class's plain score (SphereFace §3):

================  =====================================  ==================================
loss              target score of class i                plain score of class j
================  =====================================  ==================================
softmax           W_iᵀx + b_i (no margin: plain argmax)   W_jᵀx + b_j
modified-softmax  cos θ_i (no margin)                     cos θ_j
normface          cos θ_i (no margin; s is irrelevant)    cos θ_j
a-softmax         ψ(θ_i)                                  cos θ_j
l-softmax         ‖W_i‖ ψ(θ_i)                            ‖W_j‖ cos θ_j
cosface           cos θ_i − m   (s is irrelevant)         cos θ_j
arcface           cos(θ_i + m)  (s is irrelevant)         cos θ_j
sphereface-r      ψ_m(θ_i), real m ≥ 1 (s is irrelevant)  cos θ_j
================  =====================================  ==================================

SphereFace-R's ψ_m is A-Softmax's ψ for any real m (``losses.sphereface_r.real_psi_from_cos``);
ψ_m(θ) ≤ −1 beyond π/m, so its ψ rule is the boundary rule m·θ_i < θ_j, shown exactly.

**SphereFace2** has no softmax and no pairwise rule: class i *claims* x where
r·(g(cos θ_i) − m) + b > 0, g(c) = 2((c + 1)/2)^t − 1 (a cap of half-angle
``sphereface2_cap_angle`` round W_i), with r, b and t in a :class:`ClaimRule`. A point is in
class i's region when class i alone claims it; ``claim_counts`` says how many claim each
point, so the points that no class claims, or several, can be drawn as such.

For a-softmax/l-softmax, ``rule="psi"`` uses the real ψ of eq. (7) (integer m) and
``rule="boundary"`` the paper's idealised rule m·θ_i < θ_j (any real m ≥ 1), which is what
its boundary equations describe. For integer m the two rules give the same regions: ψ(θ) =
cos(mθ) while mθ ≤ π and ψ(θ) < −1 ≤ cos θ_j beyond, so ψ(θ_i) > cos θ_j ⇔ mθ_i < θ_j.
ArcFace uses the loss's fallback cos θ − m·sin m for θ ≥ π − m (``margins.arcface_target``,
the one formula the loss calls too), which keeps the target decreasing in θ; inside the
closed-form region it never applies.

**The criterion** (SphereFace §3.3, Definition of m_min): the maximal intra-class angle (the
span of one class's region, the largest angle between two of its points) is no larger than
the minimal inter-class angle (the smallest angle between points of two different regions).
Every region must be non-empty for it to hold.

Closed forms (binary case, uniformly spaced classes) and a dense-grid evaluation of the
decision rule give every number two ways; tests check they agree to grid resolution.

The package, by job: ``rule`` (the decision rule in any dimension, SphereFace2's claims),
``closed_form`` (Properties 2 and 3), ``circle`` (regions on the circle from a dense grid),
``sphere`` (regions on the sphere), ``features`` (statistics of learned features, EER),
``annealing`` (the margin under annealing, the effective m) and ``metrics`` (accuracy, cosine
scores, verification thresholds, ROC; ``sphereviz.evaluate`` names them too, and they are
imported as ``geometry.metrics`` so that importing geometry needs no scikit-learn). Every
name of the old ``geometry`` module is importable from here.
"""

from sphereviz.geometry._common import (
    CIRCLE_RESOLUTION,
    CRITERION_TOLERANCE,
    canonical_loss_name,
    default_rule,
    unit_rows,
)
from sphereviz.geometry._common import (
    TWO_PI as TWO_PI,
)
from sphereviz.geometry.annealing import AnnealedMargin, annealed_margin, effective_m
from sphereviz.geometry.circle import (
    CircleRegions,
    GridMeasures,
    circle_points,
    circle_regions,
    grid_measures,
)
from sphereviz.geometry.closed_form import (
    ClosedFormRegion,
    binary_closed_form,
    uniform_closed_form,
    uniform_weight_angles,
)
from sphereviz.geometry.features import (
    FeatureCriterion,
    PairAngles,
    angles_to_class_weights,
    angular_fisher_score,
    class_mean_directions,
    equal_error_rate,
    feature_criterion,
    feature_summary,
    min_pairwise_angle,
    pair_angles,
    project_to_sphere,
)
from sphereviz.geometry.rule import (
    ClaimRule,
    claim_counts,
    classify_points,
    margin_target,
    sphereface2_bias_for_cap,
    sphereface2_cap_angle,
)
from sphereviz.geometry.sphere import SphereRegionAngles, fibonacci_sphere, sphere_region_angles
from sphereviz.losses.registry import LOSS_NAMES

__all__ = [
    "AnnealedMargin",
    "CIRCLE_RESOLUTION",
    "CRITERION_TOLERANCE",
    "LOSS_NAMES",
    "margin_target",
    "CircleRegions",
    "ClaimRule",
    "ClosedFormRegion",
    "GridMeasures",
    "PairAngles",
    "SphereRegionAngles",
    "angles_to_class_weights",
    "annealed_margin",
    "angular_fisher_score",
    "binary_closed_form",
    "canonical_loss_name",
    "circle_points",
    "circle_regions",
    "default_rule",
    "claim_counts",
    "class_mean_directions",
    "classify_points",
    "FeatureCriterion",
    "effective_m",
    "equal_error_rate",
    "feature_criterion",
    "feature_summary",
    "fibonacci_sphere",
    "grid_measures",
    "min_pairwise_angle",
    "pair_angles",
    "project_to_sphere",
    "sphere_region_angles",
    "sphereface2_bias_for_cap",
    "sphereface2_cap_angle",
    "uniform_closed_form",
    "uniform_weight_angles",
    "unit_rows",
]
