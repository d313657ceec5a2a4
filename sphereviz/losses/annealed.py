"""The shared base of A-Softmax and L-Softmax: an integer margin m with λ annealing.

The trained target logit is r·(λ cos θ_y + ψ(θ_y)) / (1 + λ), written here as
r·((1 − a)ψ(θ_y) + a cos θ_y) with a = λ/(1 + λ), so a huge λ gives exactly r·cos θ_y.
It is computed by ``integer_margin.annealed_target_logit`` (Chebyshev form, k from the value
of cos θ: no acos; backward in closed form), which equals ``margins.psi_from_cos`` mixed with
cos θ, in a handful of kernels.

The iteration counter is a registered buffer (``iteration``, in ``state_dict``), so a
checkpoint resumes the schedule and torch.compile sees a tensor, not a Python int that would
force a recompile each step. As in the official Caffe layers, a training forward increments it
FIRST: the very first training forward uses iteration 1. Eval-mode forwards leave it alone and
use λ at the current iteration (the schedule's ``base`` before any training).
"""

from __future__ import annotations

import torch

from sphereviz.losses.base import MarginLoss
from sphereviz.losses.integer_margin import (
    annealed_target_logit,
    piece_boundaries,
    piece_coefficients,
)
from sphereviz.losses.registry import check_margin
from sphereviz.margins import LambdaSchedule

__all__ = ["AnnealedMarginLoss"]


class AnnealedMarginLoss(MarginLoss):
    """Integer-margin loss with target r·(λ cos θ_y + ψ(θ_y))/(1 + λ); λ = 0 if no schedule."""

    has_margin = True
    loss_name = "A-Softmax"

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        margin: int,
        lambda_schedule: LambdaSchedule | None,
    ):
        margin = check_margin(self.loss_name, margin)  # the loss_name is also a registry name
        if lambda_schedule is not None and not isinstance(lambda_schedule, LambdaSchedule):
            raise ValueError(
                f"lambda_schedule must be a sphereviz.margins.LambdaSchedule or None (λ = 0, "
                f"pure ψ), got {type(lambda_schedule).__name__}"
            )
        super().__init__(num_classes, embedding_size)
        self.margin = margin
        self.lambda_schedule = lambda_schedule
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))
        # the constants of ψ on the loss's device, in float64 (exact boundaries for float64
        # inputs; cast per step otherwise); not in state_dict, since m defines them
        self.register_buffer("piece_boundaries", piece_boundaries(margin), persistent=False)
        self.register_buffer("piece_coefficients", piece_coefficients(margin), persistent=False)

    def advance_schedule(self) -> None:
        if self.training:
            with torch.no_grad():
                self.iteration.add_(1)

    def annealing_lambda(self) -> torch.Tensor:
        """λ at the current iteration as a 0-d tensor (0 when there is no schedule)."""
        if self.lambda_schedule is None:
            return torch.zeros((), dtype=torch.float64, device=self.iteration.device)
        return self.lambda_schedule.value(self.iteration)

    @property
    def current_lambda(self) -> float | None:
        """λ used by the last training forward; None before the first one (0.0: no schedule)."""
        if self.lambda_schedule is None:
            return 0.0
        iteration = int(self.iteration)
        return self.lambda_schedule.value(iteration) if iteration > 0 else None

    def margin_target_logit(self, cos_theta: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        """r·(λ cos θ + ψ(θ))/(1 + λ) = r·((1 − a)ψ(θ) + a cos θ), a = λ/(1 + λ)."""
        lam = self.annealing_lambda()
        cos_weight = (lam / (1 + lam)).to(cos_theta.dtype)
        boundaries = self.piece_boundaries.to(cos_theta.dtype)
        coefficients = self.piece_coefficients.to(cos_theta.dtype)
        return annealed_target_logit(
            cos_theta, radius, cos_weight, self.margin, boundaries, coefficients
        )

    def extra_repr(self) -> str:
        schedule = self.lambda_schedule
        return f"{super().extra_repr()}, margin={self.margin}, lambda_schedule={schedule}"
