"""The one registry of the losses: names, aliases, titles, margins and their ranges (no torch).

Every layer that needs to know something about a loss by name reads it here: ``make_loss``
and the trainer (names, aliases), ``geometry`` (default margins, margin-free losses, the
m-range checks), ``margin_cli``, the plots and the widgets (titles). Importing this module
imports neither torch nor the loss classes, so the math layer and ``sphereviz bounds`` stay
free of torch.

The allowed margin ranges (one per loss, used by the loss classes and by ``geometry`` alike):

============  ==============  =======  ===========================================
loss          kind of margin  default  allowed m
============  ==============  =======  ===========================================
a-softmax     integer m       4        integers >= 1 (m = 1: modified softmax)
l-softmax     integer m       4        integers >= 1
cosface       cosine offset   0.35     [0, 2]  (m = 2: cos θ − 2 ≤ −1, no region)
arcface       additive angle  0.5 rad  [0, π)  (see below)
sphereface-r  real m          1.5      [1, ∞)
sphereface2   cosine offset   0.4      [0, 1]
============  ==============  =======  ===========================================

ArcFace's loss used to accept [0, π/2] and ``geometry`` [0, π). The registry takes [0, π),
the range in which the margin means something on the circle: two classes θ₁₂ apart have
non-empty ArcFace regions exactly when m < θ₁₂ ≤ π, and ``geometry``'s closed forms (tested
against the grid up to m = 2) are exact there; at m = π the margin turns cos θ into −cos θ
everywhere. The loss is well defined on all of it. With the fallback cos θ − m·sin m past
θ = π − m (``margins.arcface_target``) the target stays decreasing in θ while
cos m + m·sin m ≥ 1, i.e. for m ≤ 2.331; beyond, it jumps up at π − m (the insightface
fallback was made for small m; typical m is 0.5 and the widget's slider stops at 1.5).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass

from sphereviz.margins import (
    FRACTIONAL_HINT,
    INTEGER_HINT,
    L_SOFTMAX_SCHEDULE,
    REAL_M_HINT,
    SPHEREFACE_SCHEDULE,
    LambdaSchedule,
    arcface_target,
    check_integer_margin,
    cosface_target,
    psi_from_cos,
    real_psi_from_cos,
)
from sphereviz.validation import check_real

__all__ = [
    "FRACTIONAL_HINT",
    "LOSS_ALIASES",
    "LOSS_NAMES",
    "LOSS_SPECS",
    "MARGIN_FREE_LOSSES",
    "MARGIN_KINDS",
    "PLAIN_SCORES",
    "REGION_RULES",
    "LossSpec",
    "canonical_loss_name",
    "check_integer_margin",
    "check_margin",
    "loss_spec",
]

REGION_RULES = ("argmax", "margin", "claims")
"""How a loss's regions are decided (see :class:`LossSpec`)."""
PLAIN_SCORES = ("logit", "cosine", "weighted cosine")
"""What a class scores without margin: W·x + b, cos θ, ‖W‖ cos θ."""
MARGIN_KINDS = ("none", "integer m", "real m", "cosine offset", "additive angle")
"""The kinds of margin: none, A-Softmax's integer multiplier of the angle, SphereFace-R's
real multiplier, an offset subtracted from the cosine, an angle added to θ (radians)."""


@dataclass(frozen=True)
class LossSpec:
    """What the library knows about one loss, by name (no torch, no class).

    ``name`` is canonical (lower case, "-"), ``aliases`` other names users type, ``title``
    the short name in plot titles, ``label`` the longer one a menu shows. The margin: its
    ``margin_kind`` (one of :data:`MARGIN_KINDS`), ``default_margin`` (None: no margin), the
    allowed range ``margin_min``/``margin_max`` (None: unbounded) with closed or open ends,
    and ``margin_hint``, what a message about a bad margin suggests ("{m}" is replaced by the
    value given). ``default_scale`` is the logit scale s (None: the loss has no s) and
    ``anneals`` whether the loss mixes cos θ in with λ (A-Softmax, L-Softmax), following its
    official ``schedule``.

    The decision rule (``geometry``): ``region_rule`` is "argmax" (no margin: the plain scores'
    argmax), "margin" (class i's ``target`` f(cos θ_i, m) beats every other plain score) or
    "claims" (SphereFace2: each class claims a cap on its own). ``plain_score`` is what a class
    scores without margin: "logit" W·x + b (softmax), "cosine" cos θ, or "weighted cosine"
    ‖W‖ cos θ (L-Softmax). ``target`` is the torch-free margin function of ``margins`` (None
    without a margin), ``closed_form`` which closed form the regions have (see the property),
    ``equal_norms_as`` the loss whose regions this one's are when all weight norms are equal
    and there are no biases (softmax: modified softmax; L-Softmax: A-Softmax).
    """

    name: str
    title: str
    margin_kind: str = "none"
    default_margin: float | None = None
    margin_min: float | None = None
    margin_max: float | None = None
    include_margin_min: bool = True
    include_margin_max: bool = True
    margin_hint: str | None = None
    default_scale: float | None = None
    anneals: bool = False
    aliases: tuple[str, ...] = ()
    label: str = ""
    target: Callable | None = None
    region_rule: str = ""
    plain_score: str = "cosine"
    schedule: LambdaSchedule | None = None
    equal_norms_as: str | None = None

    def __post_init__(self):
        if self.margin_kind not in MARGIN_KINDS:
            raise ValueError(f"margin_kind must be one of {MARGIN_KINDS}, got {self.margin_kind!r}")
        if (self.margin_kind == "none") != (self.default_margin is None):
            raise ValueError(f"{self.name}: a default margin exactly when the loss has a margin")
        if not self.label:
            object.__setattr__(self, "label", self.title)
        if not self.region_rule:
            object.__setattr__(self, "region_rule", "margin" if self.has_margin else "argmax")
        if self.region_rule not in REGION_RULES or self.plain_score not in PLAIN_SCORES:
            raise ValueError(f"{self.name}: region_rule {self.region_rule!r} or plain_score "
                             f"{self.plain_score!r} unknown")  # fmt: skip
        if (self.region_rule == "margin") != (self.target is not None):
            raise ValueError(f"{self.name}: a target function exactly for the margin rule")
        if self.anneals != (self.schedule is not None):
            raise ValueError(f"{self.name}: an annealing schedule exactly when the loss anneals")

    @property
    def has_margin(self) -> bool:
        """False for softmax, modified softmax and NormFace."""
        return self.margin_kind != "none"

    @property
    def integer_margin(self) -> bool:
        """True for the losses whose m multiplies the angle and must be an integer (A-Softmax,
        L-Softmax)."""
        return self.margin_kind == "integer m"

    @property
    def multiplies_angle(self) -> bool:
        """True where m multiplies θ, the target following cos(mθ) near θ = 0 (A-Softmax,
        L-Softmax, SphereFace-R)."""
        return self.margin_kind in ("integer m", "real m")

    @property
    def takes_boundary_rule(self) -> bool:
        """True where ψ needs an integer m but the paper's rule m·θ_i < θ_j takes any real m ≥ 1
        (the integer-m losses)."""
        return self.integer_margin

    @property
    def closed_form(self) -> str | None:
        """The closed form of the regions with equal weight norms (SphereFace Properties 2, 3):
        "angle" (the region reaches θ/(m+1): A-/L-Softmax, SphereFace-R, and m = 1 for the
        cosine losses without margin), "cosine offset" (CosFace), "additive angle" (ArcFace),
        None (softmax, whose biases and norms matter, and SphereFace2's claims)."""
        if self.plain_score == "logit" or self.region_rule == "claims":
            return None
        if self.margin_kind in ("cosine offset", "additive angle"):
            return self.margin_kind
        return "angle"


LOSS_SPECS: dict[str, LossSpec] = {
    spec.name: spec
    for spec in (
        LossSpec("softmax", "softmax", plain_score="logit", equal_norms_as="modified-softmax"),
        LossSpec("modified-softmax", "modified softmax"),
        LossSpec(
            "a-softmax", "A-Softmax", "integer m", 4, margin_min=1, margin_hint=INTEGER_HINT,
            anneals=True, aliases=("sphereface", "asoftmax"), label="A-Softmax (SphereFace)",
            target=psi_from_cos, schedule=SPHEREFACE_SCHEDULE,
        ),
        LossSpec(
            "l-softmax", "L-Softmax", "integer m", 4, margin_min=1, margin_hint=INTEGER_HINT,
            anneals=True, aliases=("largemargin", "lsoftmax"), target=psi_from_cos,
            schedule=L_SOFTMAX_SCHEDULE, plain_score="weighted cosine", equal_norms_as="a-softmax",
        ),
        LossSpec("normface", "NormFace", default_scale=30.0, aliases=("norm-softmax",)),
        LossSpec(
            "cosface", "CosFace", "cosine offset", 0.35, margin_min=0.0, margin_max=2.0,
            margin_hint="a cosine offset, typical is 0.35", default_scale=64.0,
            aliases=("am-softmax", "amsoftmax", "lmcl"), target=cosface_target,
        ),
        LossSpec(
            "arcface", "ArcFace", "additive angle", 0.5, margin_min=0.0, margin_max=math.pi,
            include_margin_max=False, default_scale=64.0, target=arcface_target,
            margin_hint="an angle in radians, typical is 0.5; for degrees pass math.radians({m})",
        ),
        LossSpec(
            "sphereface-r", "SphereFace-R", "real m", 1.5, margin_min=1.0,
            margin_hint=REAL_M_HINT,
            default_scale=30.0, aliases=("spherefacer", "sphereface-revived"),
            target=real_psi_from_cos,
        ),
        LossSpec(
            "sphereface2", "SphereFace2", "cosine offset", 0.4, margin_min=0.0, margin_max=1.0,
            margin_hint="a cosine offset, typical is 0.4", default_scale=40.0,
            region_rule="claims",
        ),
    )
}  # fmt: skip
"""Every loss by canonical name, in the order of ``make_loss``'s table."""

LOSS_NAMES: tuple[str, ...] = tuple(LOSS_SPECS)
"""The canonical loss names."""

LOSS_ALIASES: dict[str, str] = {
    alias: spec.name for spec in LOSS_SPECS.values() for alias in spec.aliases
}
"""Other names of the losses, mapped to their canonical names."""

MARGIN_FREE_LOSSES: tuple[str, ...] = tuple(
    spec.name for spec in LOSS_SPECS.values() if not spec.has_margin
)
"""The losses without a margin (softmax, modified softmax, NormFace)."""


def canonical_loss_name(name: str, known: tuple[str, ...] = LOSS_NAMES) -> str:
    """The canonical name of ``name``: case-insensitive, "_" for "-", aliases resolved.

    TypeError unless ``name`` is a string; ValueError listing ``known`` and the aliases that
    lead to them when the result is not one of ``known``, and naming the closest of them
    (``difflib.get_close_matches``, as its canonical name) when one is close: "asoftmx" →
    "did you mean 'a-softmax'?".
    """
    if not isinstance(name, str):
        raise TypeError(f"the loss name must be a string such as 'a-softmax', got {name!r}")
    key = name.strip().lower().replace("_", "-")
    key = LOSS_ALIASES.get(key, key)
    if key not in known:
        aliases = tuple(alias for alias, target in LOSS_ALIASES.items() if target in known)
        close = difflib.get_close_matches(key, known + aliases, n=1)
        hint = f" (did you mean {LOSS_ALIASES.get(close[0], close[0])!r}?)" if close else ""
        raise ValueError(
            f"unknown loss {name!r}; choose one of: {', '.join(known + aliases)}{hint}"
        )
    return key


def loss_spec(name: str) -> LossSpec:
    """The :class:`LossSpec` of the loss called ``name`` (any alias, any case)."""
    return LOSS_SPECS[canonical_loss_name(name)]


def check_margin(
    name: str,
    m,
    *,
    argument: str = "m",
    fractional: bool = False,
    hint: str | None = None,
):
    """``m`` checked against the range of the loss ``name``; None gives its default margin.

    Returns an int for the integer-m losses (A-Softmax, L-Softmax; 4.0 counts as 4) and a
    float otherwise; None for the margin-free losses, which refuse any other m.
    ``fractional=True`` lets an integer-m loss take a real m >= 1 (the paper's boundary rule
    m·θ_i < θ_j of ``geometry``). ``argument`` is the name the message gives a real margin
    ("margin" for the loss constructors; an integer one is always "m"), ``hint`` replaces the
    loss's own hint (for an integer-m loss: the hint given for a fractional m). TypeError for
    a non-number, ValueError outside the range.
    """
    spec = loss_spec(name)
    if not spec.has_margin:
        if m is None:
            return None
        raise ValueError(f"{spec.title} has no margin, got {argument}={m!r}; pass None")
    if m is None:
        return spec.default_margin
    if spec.margin_kind == "integer m" and not fractional:
        return check_integer_margin(m, spec.title, fractional_hint=hint or FRACTIONAL_HINT)
    if hint is None and spec.margin_hint is not None:
        hint = spec.margin_hint.replace("{m}", f"{m}")
    return check_real(
        argument, m, min=spec.margin_min, max=spec.margin_max,
        include_min=spec.include_margin_min, include_max=spec.include_margin_max,
        hint=hint, owner=spec.title,
    )  # fmt: skip
