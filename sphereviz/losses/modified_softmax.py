"""The modified softmax of SphereFace: unit class weights, no bias, no margin."""

from __future__ import annotations

from sphereviz.losses.base import MarginLoss

__all__ = ["ModifiedSoftmaxLoss"]


class ModifiedSoftmaxLoss(MarginLoss):
    """Modified softmax (SphereFace eq. (5)): f_j = ‖x‖ cos θ_j with ‖W_j‖ = 1, b = 0.

    Equal to A-Softmax with m = 1; the decision boundary is the bisector of W₁ and W₂.
    """

    normalize_weights = True
