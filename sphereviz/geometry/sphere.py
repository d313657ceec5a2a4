"""Regions on the sphere (any dimension): a Fibonacci grid and the region angles."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sphereviz.geometry._common import CRITERION_TOLERANCE, _as_matrix, _checked_unit_rows, _frozen
from sphereviz.validation import check_int

# The sphere (any dimension)
# --------------------------------------------------------------------------------------------


def fibonacci_sphere(num_points: int) -> np.ndarray:
    """``num_points`` nearly uniform unit vectors on S² (the Fibonacci / golden-angle lattice).

    Point k: z_k = 1 − (2k + 1)/n, azimuth k·π(3 − √5); every point covers area 4π/n.
    """
    check_int("num_points", num_points, min=1)
    index = np.arange(num_points)
    z = 1.0 - (2.0 * index + 1.0) / num_points
    azimuth = index * math.pi * (3.0 - math.sqrt(5.0))
    ring = np.sqrt(1.0 - z * z)
    return np.stack([ring * np.cos(azimuth), ring * np.sin(azimuth), z], axis=1)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not objects
class SphereRegionAngles:
    """Max intra-class angle per class (NaN if empty) and the min inter-class angle, radians."""

    max_intra_class_angles: np.ndarray
    min_inter_class_angle: float

    @property
    def criterion_holds(self) -> bool:
        spans = self.max_intra_class_angles
        if np.any(np.isnan(spans)):
            return False
        return bool(spans.max() <= self.min_inter_class_angle + CRITERION_TOLERANCE)


def sphere_region_angles(
    points, labels, num_classes: int, chunk_size: int = 2048
) -> SphereRegionAngles:
    """The criterion's numbers for labelled sample points on a sphere of any dimension.

    Brute force over all pairs of labelled points (label −1 is ignored), in row chunks so the
    memory stays at chunk_size × N. With dense samples (``fibonacci_sphere``) this estimates
    the regions' spans and gaps from the inside, like ``grid_measures`` on the circle.
    """
    points = _as_matrix(points, "points")
    labels = np.asarray(labels)
    if labels.shape != (points.shape[0],):
        raise ValueError(f"labels must have one entry per point, got shape {labels.shape}")
    keep = labels >= 0
    unit = _checked_unit_rows(points[keep], "points") if keep.any() else points[:0]
    kept_labels = labels[keep].astype(np.int64)
    largest = np.full(num_classes, np.nan)
    smallest_inter = math.inf
    for begin in range(0, unit.shape[0], chunk_size):
        block = np.clip(unit[begin : begin + chunk_size] @ unit.T, -1.0, 1.0)
        block_labels = kept_labels[begin : begin + chunk_size]
        same = block_labels[:, None] == kept_labels[None, :]
        if (~same).any():
            smallest_inter = min(smallest_inter, float(np.arccos(block[~same].max())))
        lowest_same = np.where(same, block, np.inf).min(axis=1)
        for label in np.unique(block_labels):
            angle = float(np.arccos(lowest_same[block_labels == label].min()))
            largest[label] = np.fmax(largest[label], angle)
    return SphereRegionAngles(_frozen(largest), smallest_inter)


# --------------------------------------------------------------------------------------------
