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
from dataclasses import dataclass
from numbers import Integral, Real

from sphereviz.validation import check_int, check_real

__all__ = [
    "FRACTIONAL_HINT",
    "LOSS_ALIASES",
    "LOSS_NAMES",
    "LOSS_SPECS",
    "MARGIN_FREE_LOSSES",
    "MARGIN_KINDS",
    "LossSpec",
    "canonical_loss_name",
    "check_integer_margin",
    "check_margin",
    "loss_spec",
]

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
    ``anneals`` whether the loss mixes cos θ in with λ (A-Softmax, L-Softmax).
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

    def __post_init__(self):
        if self.margin_kind not in MARGIN_KINDS:
            raise ValueError(f"margin_kind must be one of {MARGIN_KINDS}, got {self.margin_kind!r}")
        if (self.margin_kind == "none") != (self.default_margin is None):
            raise ValueError(f"{self.name}: a default margin exactly when the loss has a margin")
        if not self.label:
            object.__setattr__(self, "label", self.title)

    @property
    def has_margin(self) -> bool:
        """False for softmax, modified softmax and NormFace."""
        return self.margin_kind != "none"


_INTEGER_HINT = "m = 1 is the plain (modified) softmax, m = 4 is the SphereFace default"


FRACTIONAL_HINT = "use CosFace or ArcFace for fractional margins"
"""What an error about a fractional m for A-Softmax / L-Softmax suggests."""


def check_integer_margin(
    m, loss_name: str = "A-Softmax", *, fractional_hint: str = FRACTIONAL_HINT
) -> int:
    """Return ``m`` as an int, or raise an error a student understands.

    A-Softmax and L-Softmax multiply the angle by an integer m >= 1; ψ is only defined
    (continuous and monotonic on [0, π]) for integers. A float with an integer value (4.0,
    from a command line) is that integer. Fractional margins are what CosFace and ArcFace
    are for, so the message says so (``fractional_hint``) instead of truncating silently.
    TypeError for a non-number, ValueError for a number that is not an integer >= 1.
    """
    fractional = isinstance(m, Real) and not isinstance(m, Integral) and math.isfinite(m)
    if fractional and not float(m).is_integer():
        hint = fractional_hint
    else:
        hint = _INTEGER_HINT
    return check_int("m", m, min=1, owner=loss_name, hint=hint, integral_floats=True)


LOSS_SPECS: dict[str, LossSpec] = {
    spec.name: spec
    for spec in (
        LossSpec("softmax", "softmax"),
        LossSpec("modified-softmax", "modified softmax"),
        LossSpec(
            "a-softmax", "A-Softmax", "integer m", 4, margin_min=1, margin_hint=_INTEGER_HINT,
            anneals=True, aliases=("sphereface", "asoftmax"), label="A-Softmax (SphereFace)",
        ),
        LossSpec(
            "l-softmax", "L-Softmax", "integer m", 4, margin_min=1, margin_hint=_INTEGER_HINT,
            anneals=True, aliases=("largemargin", "lsoftmax"),
        ),
        LossSpec("normface", "NormFace", default_scale=30.0, aliases=("norm-softmax",)),
        LossSpec(
            "cosface", "CosFace", "cosine offset", 0.35, margin_min=0.0, margin_max=2.0,
            margin_hint="a cosine offset, typical is 0.35", default_scale=64.0,
            aliases=("am-softmax", "amsoftmax", "lmcl"),
        ),
        LossSpec(
            "arcface", "ArcFace", "additive angle", 0.5, margin_min=0.0, margin_max=math.pi,
            include_margin_max=False, default_scale=64.0,
            margin_hint="an angle in radians, typical is 0.5; for degrees pass math.radians({m})",
        ),
        LossSpec(
            "sphereface-r", "SphereFace-R", "real m", 1.5, margin_min=1.0,
            margin_hint="m = 1 is NormFace (no margin), the paper uses m ≈ 1.5 to 1.7",
            default_scale=30.0, aliases=("spherefacer", "sphereface-revived"),
        ),
        LossSpec(
            "sphereface2", "SphereFace2", "cosine offset", 0.4, margin_min=0.0, margin_max=1.0,
            margin_hint="a cosine offset, typical is 0.4", default_scale=40.0,
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
