"""A-Softmax, the SphereFace loss (Liu et al., CVPR 2017, eq. (6)-(7))."""

from __future__ import annotations

from sphereviz.losses.annealed import AnnealedMarginLoss
from sphereviz.losses.registry import loss_spec
from sphereviz.margins import SPHEREFACE_SCHEDULE, LambdaSchedule

__all__ = ["SPHEREFACE_SCHEDULE", "ASoftmaxLoss"]


class ASoftmaxLoss(AnnealedMarginLoss):
    """A-Softmax: unit class weights, no bias, integer angular margin m.

    f_y = ‖x‖ (λ cos θ_y + ψ(θ_y)) / (1 + λ),  f_j = ‖x‖ cos θ_j  (j ≠ y),
    ψ(θ) = (−1)^k cos(mθ) − 2k on [kπ/m, (k+1)π/m]. λ follows ``lambda_schedule`` (official:
    base 1000, γ 0.12, power 1, λ_min 5); ``lambda_schedule=None`` means λ = 0, pure ψ.
    m = 1 is the modified softmax. ``get_logits`` gives ‖x‖ cos θ_j, without margin.
    """

    normalize_weights = True
    loss_name = "A-Softmax"

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        margin: int = loss_spec("a-softmax").default_margin,
        lambda_schedule: LambdaSchedule | None = SPHEREFACE_SCHEDULE,
    ):
        super().__init__(num_classes, embedding_size, margin, lambda_schedule)
