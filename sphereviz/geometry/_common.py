"""What every part of ``sphereviz.geometry`` shares: constants, the loss name and m checks
(from ``losses.registry``), and the checks of arrays, labels and angles."""

from __future__ import annotations

import math

import numpy as np

from sphereviz.losses.registry import LOSS_NAMES, MARGIN_FREE_LOSSES, check_margin, loss_spec
from sphereviz.losses.registry import canonical_loss_name as _resolve_loss_name
from sphereviz.validation import check_choice, check_real

TWO_PI = 2.0 * math.pi
CIRCLE_RESOLUTION = 3600
"""Default number of grid points on the circle (0.1° apart)."""
CRITERION_TOLERANCE = 1e-9
"""Radians of slack in max intra ≤ min inter, so that exact equality (K = 3, m = 3) holds."""
_SAME_POINT = 1e-9

_MARGIN_FREE = MARGIN_FREE_LOSSES  # the names, default margins and m ranges: losses.registry
_RULES = ("psi", "boundary")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def canonical_loss_name(loss: str) -> str:
    """The canonical name of ``loss`` (case-insensitive, "_" for "-", the aliases of
    ``sphereviz.losses.registry``, the table ``losses.make_loss`` also uses)."""
    return _resolve_loss_name(loss, LOSS_NAMES)


def default_rule(loss: str, m) -> str:
    """The rule that shows ``m`` for ``loss``: "boundary" for A-/L-Softmax with a fractional m
    (the paper's m·θ_i < θ_j, since ψ needs an integer m), "psi" otherwise (for an integer m
    the two rules give the same regions). The one place that switch is made."""
    loss = canonical_loss_name(loss)
    fractional = m is not None and np.any(np.asarray(m, dtype=float) % 1 != 0)
    return "boundary" if loss_spec(loss).takes_boundary_rule and fractional else "psi"


def _margin_values(loss: str, m, rule: str) -> np.ndarray:
    """Validate m for ``loss`` and return it as a 1-D float array (m may be a scalar or 1-D).

    Each value is checked against the loss's range in ``losses.registry`` (None: its default
    margin); A-/L-Softmax take a fractional m >= 1 under ``rule="boundary"`` only.
    """
    check_choice("rule", rule, _RULES)
    if loss in _MARGIN_FREE:
        return np.zeros(1)
    hint = None
    if rule == "psi" and loss_spec(loss).takes_boundary_rule:
        hint = "use rule='boundary' (the paper's m·θ_i < θ_j) or CosFace/ArcFace for fractional m"
    if np.ndim(m) == 0:  # None (the default margin) or one number, of any numeric type
        return np.array([float(check_margin(loss, m, fractional=rule == "boundary", hint=hint))])
    values = np.asarray(m, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"m must be a number or a 1-D array of numbers, got {m!r}")
    for value in values:
        check_margin(loss, float(value), fractional=rule == "boundary", hint=hint)
    return values


def _as_matrix(values, name: str, columns: int | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be a 2-D array (rows are vectors), got shape {array.shape}")
    if columns is not None and array.shape[1] != columns:
        raise ValueError(
            f"{name} must have {columns} columns (the dimension of the other argument), "
            f"got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must contain only finite numbers")
    return array


def _row_norms(array: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(array, axis=1)
    if np.any(norms == 0):
        raise ValueError(
            f"{name} has zero-length rows (at {np.flatnonzero(norms == 0)[:5]}); "
            "an angle needs a direction"
        )
    return norms


def unit_rows(array) -> np.ndarray:
    """Each row of a 2-D ``array`` scaled to unit length: x ↦ x / ‖x‖₂.

    A zero row has no direction and stays the zero row (it is divided by 1, not by 0), so no
    NaN appears; use it where zero rows cannot occur or do not matter (plots). The checked
    statistics of this module refuse zero rows instead (``_checked_unit_rows``).
    """
    array = np.asarray(array, dtype=float)
    if array.ndim != 2:
        raise ValueError(
            f"unit_rows needs a 2-D array (one vector per row), got shape {array.shape}; "
            "for a single vector pass array[None, :]"
        )
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms > 0, norms, 1.0)


def _checked_unit_rows(array: np.ndarray, name: str) -> np.ndarray:
    """``unit_rows(array)``, refusing zero-length rows (an angle needs a direction)."""
    _row_norms(array, name)
    return unit_rows(array)


def _optional_vector(values, name: str, length: int, positive: bool = False) -> np.ndarray | None:
    if values is None:
        return None
    array = np.asarray(values, dtype=float)
    if array.shape != (length,) or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be {length} finite numbers (one per class), got {values!r}")
    if positive and np.any(array <= 0):
        raise ValueError(f"{name} must be > 0, got {values!r}")
    return array


def _check_labels(labels, count: int, num_classes: int | None = None) -> np.ndarray:
    array = np.asarray(labels)
    if array.shape != (count,):
        raise ValueError(f"labels must be a 1-D array of {count} class indices, got {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.all(array == np.round(array)):
            raise ValueError("labels must be integer class indices")
    array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise ValueError("labels must be class indices >= 0")
    if num_classes is not None and array.size and array.max() >= num_classes:
        raise ValueError(
            f"labels go up to {array.max()} but there are only {num_classes} class weights; "
            "labels must index the rows of class_weights"
        )
    return array


def _check_angle(theta12, name: str) -> float:
    """The angle between two weights, in (0, π] radians."""
    return check_real(
        f"{name} (the angle between two weights, in radians)", theta12, min=0, max=math.pi,
        include_min=False, hint="for degrees pass math.radians(...)",
    )  # fmt: skip


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array)
    array.setflags(write=False)
    return array
