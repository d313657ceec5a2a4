"""L-Softmax, the large-margin softmax (Liu et al., ICML 2016), SphereFace's predecessor."""

from __future__ import annotations

import torch

from sphereviz.losses.annealed import AnnealedMarginLoss
from sphereviz.losses.registry import loss_spec
from sphereviz.margins import L_SOFTMAX_SCHEDULE, LambdaSchedule

__all__ = ["L_SOFTMAX_SCHEDULE", "LSoftmaxLoss"]


class LSoftmaxLoss(AnnealedMarginLoss):
    """L-Softmax: raw (un-normalised) class weights, no bias, integer margin m.

    f_y = ‖W_y‖‖x‖ (λ cos θ_y + ψ(θ_y)) / (1 + λ),  f_j = ‖W_j‖‖x‖ cos θ_j = W_jᵀx  (j ≠ y).
    λ(it) = max(λ_min, base·(1 + γ·it)^(−power)), by default the official L-Softmax constants
    base 1000, γ 2.5e-5, power 35, λ_min 0, counted as in ``ASoftmaxLoss``.
    ``get_logits`` gives Wᵀx.
    """

    normalize_weights = False
    loss_name = "L-Softmax"

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        margin: int = loss_spec("l-softmax").default_margin,
        lambda_schedule: LambdaSchedule | None = L_SOFTMAX_SCHEDULE,
    ):
        super().__init__(num_classes, embedding_size, margin, lambda_schedule)

    def target_radius(self, norms: torch.Tensor, target_weight_norms: torch.Tensor) -> torch.Tensor:
        """‖W_y‖‖x‖."""
        return norms * target_weight_norms
