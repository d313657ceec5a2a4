"""Checks of scalar arguments at the public boundary, in the style of scikit-learn's
``check_scalar``: one line per error, saying what was wrong, the value got and what to do.

A wrong *type* (a string, a bool, a float where an integer is needed) raises ``TypeError``;
a number of the right type outside its range raises ``ValueError``. Any ``numbers.Integral``
counts as an integer and any ``numbers.Real`` as a real number, so ``np.int64`` and
``np.float32`` pass; ``bool`` is never a number here (``True`` is not a class count).

    check_int("num_classes", 1, min=2)
    → ValueError: num_classes must be an integer >= 2, got 1
    check_real("margin", 2.0, min=0, max=math.pi / 2, owner="ArcFace", hint="typical is 0.5")
    → ValueError: margin must be a finite number in [0, 1.5708] for ArcFace, got 2.0;
      typical is 0.5

No torch, no numpy: this module is imported by every layer, the math layer included.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import TypeVar

__all__ = ["check_choice", "check_int", "check_real", "describe_range"]

T = TypeVar("T")


def describe_range(
    min: float | None = None,
    max: float | None = None,
    *,
    include_min: bool = True,
    include_max: bool = True,
) -> str:
    """The range as the messages write it: ">= 1", "> 0", "<= 2", "in [0, 1)" or ""."""
    if min is not None and max is not None:
        left, right = "[" if include_min else "(", "]" if include_max else ")"
        return f"in {left}{_number(min)}, {_number(max)}{right}"
    if min is not None:
        return f"{'>=' if include_min else '>'} {_number(min)}"
    if max is not None:
        return f"{'<=' if include_max else '<'} {_number(max)}"
    return ""


def check_int(
    name: str,
    value,
    *,
    min: int | None = None,
    max: int | None = None,
    hint: str | None = None,
    owner: str | None = None,
    integral_floats: bool = False,
) -> int:
    """``value`` as an ``int`` if it is an integer in [min, max] (either end may be None).

    TypeError unless ``value`` is a ``numbers.Integral`` other than ``bool``; ValueError
    outside the range. A float such as 4.0 is a TypeError too, unless ``integral_floats``
    (for numbers that came through a float, e.g. ``--m 4``): then a float with an integer
    value is that integer and any other real number (2.5, nan) is a ValueError. ``owner``
    (e.g. "A-Softmax") is named after the requirement, ``hint`` (what to do) after the value.
    """
    requirement = _requirement("an integer", describe_range(min, max))
    number = value
    if integral_floats and isinstance(value, Real) and not isinstance(value, bool | Integral):
        if not (math.isfinite(value) and float(value).is_integer()):
            raise ValueError(_message(name, requirement, owner, value, hint))
        number = int(value)
    if isinstance(number, bool) or not isinstance(number, Integral):
        raise TypeError(_message(name, requirement, owner, value, hint, show_type=True))
    if (min is not None and number < min) or (max is not None and number > max):
        raise ValueError(_message(name, requirement, owner, value, hint))
    return int(number)


def check_real(
    name: str,
    value,
    *,
    min: float | None = None,
    max: float | None = None,
    include_min: bool = True,
    include_max: bool = True,
    finite: bool = True,
    hint: str | None = None,
    owner: str | None = None,
) -> float:
    """``value`` as a ``float`` if it is a real number in its range.

    The range is [min, max], with each end open when ``include_min``/``include_max`` is False
    and absent when None. ``finite=True`` refuses ±inf; NaN is always refused (it lies in no
    range). TypeError unless ``value`` is a ``numbers.Real`` other than ``bool``; ValueError
    for a value outside the range.
    """
    range_text = describe_range(min, max, include_min=include_min, include_max=include_max)
    requirement = _requirement("a finite number" if finite else "a number", range_text)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(_message(name, requirement, owner, value, hint, show_type=True))
    number = float(value)
    below = min is not None and (number < min if include_min else number <= min)
    above = max is not None and (number > max if include_max else number >= max)
    if math.isnan(number) or (finite and math.isinf(number)) or below or above:
        raise ValueError(_message(name, requirement, owner, value, hint))
    return number


def check_choice(
    name: str, value: T, choices: Iterable[T], *, hint: str | None = None, owner: str | None = None
) -> T:
    """``value`` itself if it equals one of ``choices``.

    TypeError when every choice is a string and ``value`` is not one; ValueError (listing the
    choices) when ``value`` is none of them.
    """
    choices = tuple(choices)
    listed = ", ".join(repr(choice) for choice in choices)
    requirement = f"one of {listed}"
    if all(isinstance(choice, str) for choice in choices) and not isinstance(value, str):
        raise TypeError(_message(name, requirement, owner, value, hint, show_type=True))
    try:
        found = value in choices
    except TypeError:  # an unhashable or uncomparable value is no choice
        found = False
    if not found:
        raise ValueError(_message(name, requirement, owner, value, hint))
    return value


def _requirement(kind: str, range_text: str) -> str:
    return f"{kind} {range_text}" if range_text else kind


def _message(name, requirement, owner, value, hint, show_type: bool = False) -> str:
    got = _shown(value)
    if show_type:
        got = f"{type(value).__name__} {got}"
    text = f"{name} must be {requirement}{f' for {owner}' if owner else ''}, got {got}"
    return f"{text}; {hint}" if hint else text


def _shown(value) -> str:
    """A number as str() writes it (``np.float64(2.0)`` as 2.0), anything else by repr()."""
    if isinstance(value, Real) and not isinstance(value, bool):
        return str(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _number(bound: float) -> str:
    return f"{bound:.6g}" if isinstance(bound, float) else str(bound)
