"""sphereviz.validation: each boundary, open and closed ends, nan/inf, numpy scalars, bool, str."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from sphereviz.validation import check_choice, check_int, check_real, describe_range


@pytest.mark.parametrize("value", [2, 3, 10, np.int64(5), np.int8(2), np.uint16(10)])
def test_check_int_accepts_integers_in_range_as_int(value):
    result = check_int("n", value, min=2, max=10)
    assert result == int(value) and type(result) is int


@pytest.mark.parametrize("value", [1, 11, -3, np.int64(1)])
def test_check_int_refuses_values_outside_the_closed_range(value):
    with pytest.raises(ValueError, match=r"^n must be an integer in \[2, 10\], got -?\d+$"):
        check_int("n", value, min=2, max=10)


@pytest.mark.parametrize("value", [True, False, 2.0, np.float64(3.0), "3", None, [3]])
def test_check_int_refuses_non_integers_with_a_type_error(value):
    with pytest.raises(TypeError, match=r"^n must be an integer >= 1, got "):
        check_int("n", value, min=1)


def test_check_int_one_sided_and_unbounded():
    assert check_int("n", -(10**30)) == -(10**30)
    assert check_int("n", 5, max=5) == 5
    with pytest.raises(ValueError, match="n must be an integer <= 5, got 6"):
        check_int("n", 6, max=5)


def test_check_int_message_names_the_owner_the_type_and_the_hint():
    with pytest.raises(TypeError) as error:
        check_int("m", "4", min=1, owner="A-Softmax", hint="pass m=4")
    assert str(error.value) == "m must be an integer >= 1 for A-Softmax, got str '4'; pass m=4"
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("value", "include_min", "include_max", "ok"),
    [
        (0.0, True, True, True),
        (1.0, True, True, True),
        (0.0, False, True, False),
        (1.0, True, False, False),
        (np.nextafter(0.0, 1.0), False, False, True),
        (np.nextafter(1.0, 0.0), False, False, True),
        (-1e-300, True, True, False),
        (1.0 + 1e-15, True, True, False),
    ],
)
def test_check_real_open_and_closed_ends(value, include_min, include_max, ok):
    def call():
        return check_real(
            "a", value, min=0.0, max=1.0, include_min=include_min, include_max=include_max
        )

    if ok:
        assert call() == float(value)
    else:
        with pytest.raises(ValueError, match=r"^a must be a finite number in [\[(]0, 1[\])]"):
            call()


def test_check_real_writes_the_brackets_the_range_has():
    assert describe_range(0.0, 1.0, include_min=False) == "in (0, 1]"
    assert describe_range(0, 2, include_max=False) == "in [0, 2)"
    assert describe_range(1) == ">= 1" and describe_range(0, include_min=False) == "> 0"
    assert describe_range(max=math.pi) == "<= 3.14159" and describe_range() == ""


@pytest.mark.parametrize("value", [math.nan, np.float32("nan"), math.inf, -math.inf])
def test_check_real_refuses_nan_and_inf_when_finite(value):
    with pytest.raises(ValueError, match=r"^x must be a finite number, got"):
        check_real("x", value)


def test_check_real_allows_inf_but_never_nan_when_not_finite():
    assert check_real("x", math.inf, finite=False) == math.inf
    assert check_real("x", -math.inf, finite=False, max=0) == -math.inf
    with pytest.raises(ValueError, match="x must be a number >= 0, got -inf"):
        check_real("x", -math.inf, min=0, finite=False)
    with pytest.raises(ValueError, match="x must be a number, got nan"):
        check_real("x", math.nan, finite=False)


@pytest.mark.parametrize(
    "value", [np.float32(0.25), np.float64(0.25), np.int64(0), Fraction(1, 4), 1, 0.25]
)
def test_check_real_accepts_any_real_number_as_float(value):
    result = check_real("x", value, min=0, max=1)
    assert result == float(value) and type(result) is float


@pytest.mark.parametrize("value", [True, "0.5", None, 1j, np.array([0.5]), [0.5]])
def test_check_real_refuses_non_numbers_with_a_type_error(value):
    with pytest.raises(TypeError, match=r"^x must be a finite number, got "):
        check_real("x", value)


def test_check_real_message_shows_numpy_scalars_plainly_and_keeps_the_hint():
    with pytest.raises(ValueError) as error:
        check_real("margin", np.float64(2.0), min=0, max=math.pi / 2, owner="ArcFace",
                   hint="typical is 0.5")  # fmt: skip
    assert str(error.value) == (
        "margin must be a finite number in [0, 1.5708] for ArcFace, got 2.0; typical is 0.5"
    )


def test_check_choice():
    assert check_choice("rule", "psi", ("psi", "boundary")) == "psi"
    with pytest.raises(ValueError) as error:
        check_choice("rule", "sine", ("psi", "boundary"), hint="psi for integer m")
    assert str(error.value) == (
        "rule must be one of 'psi', 'boundary', got 'sine'; psi for integer m"
    )
    with pytest.raises(TypeError, match="rule must be one of 'psi', 'boundary', got int 3"):
        check_choice("rule", 3, ("psi", "boundary"))
    assert check_choice("k", np.int64(2), (1, 2, 3)) == 2
    with pytest.raises(ValueError, match=r"k must be one of 1, 2, got \[1\]"):
        check_choice("k", [1], (1, 2))


@pytest.mark.parametrize(("value", "expected"), [(4.0, 4), (np.float32(2.0), 2), (3, 3)])
def test_check_int_takes_integral_floats_when_asked(value, expected):
    result = check_int("m", value, min=1, integral_floats=True)
    assert result == expected and type(result) is int
    with pytest.raises(TypeError):
        check_int("m", float(expected), min=1)


@pytest.mark.parametrize("value", [2.5, math.nan, math.inf, 0.0])
def test_check_int_integral_floats_refuses_other_reals_by_value(value):
    with pytest.raises(ValueError, match=r"^m must be an integer >= 1, got"):
        check_int("m", value, min=1, integral_floats=True)
    with pytest.raises(TypeError):
        check_int("m", "4", min=1, integral_floats=True)
